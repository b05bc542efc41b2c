"""Training: metrics, labels, split, config, the fitted model, MLflow logging and registry."""

from __future__ import annotations

import dataclasses
import json
import math

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from sklearn.metrics import ndcg_score

from features.registry import BY_NAME
from marketplace.io import write_tables
from marketplace.simulate import SimConfig, simulate
from training.__main__ import main as training_main
from training.config import ConfigError, load_config
from training.gate import fair_campaigns, gate_decision
from training.labels import grades, label_gain
from training.metrics import bootstrap_mean_draws, evaluate, interval, per_query
from training.model import CONTRIB_COLUMNS, Scorer
from training.run import TrainingError, fold_splits, train
from training.split import backtest_splits, time_split
from training.tracking import data_digest, flat_metrics, load_scorer

# ----------------------------------------------------------------------------- metrics


def test_ndcg_hand_worked():
    # Gains 3, 0, 1 ranked in that order: DCG = 3 + 0 + 1/log2(4); ideal 3 + 1/log2(3).
    table = per_query(["q"] * 3, [3.0, 0.0, 1.0], [0.9, 0.5, 0.1], k=3)
    assert table.loc["q", "ndcg"] == pytest.approx((3 + 0.5) / (3 + 1 / math.log2(3)))
    # Top 1 holds the best item: ndcg@1 and capture@1 are both 1.
    assert per_query(["q"] * 3, [3.0, 0.0, 1.0], [0.9, 0.5, 0.1], k=1).loc["q"].tolist() == [1.0, 1.0]
    # Top 1 holds the second best: capture = 1/3, ndcg = 1/3 too.
    worst = per_query(["q"] * 3, [3.0, 0.0, 1.0], [0.1, 0.5, 0.9], k=1)
    assert worst.loc["q", "gmv_capture"] == pytest.approx(1 / 3)


def test_ndcg_agrees_with_scikit_learn():
    rng = np.random.default_rng(3)
    query = np.repeat(np.arange(40), rng.integers(2, 30, 40))
    gain = rng.lognormal(3, 2, len(query)) * (rng.random(len(query)) < 0.4)
    score = rng.random(len(query))
    ours = per_query(query, gain, score, k=10)
    for q in ours.index[:15]:
        mask = query == q
        assert ours.loc[q, "ndcg"] == pytest.approx(ndcg_score([gain[mask]], [score[mask]], k=10))


def test_ndcg_invariances_and_scorable_queries():
    query = ["a", "a", "a", "b", "b", "c"]
    gain = [5.0, 1.0, 0.0, 0.0, 0.0, 7.0]
    score = [0.2, 0.9, np.nan, 0.3, 0.4, 1.0]
    table = per_query(query, gain, score, k=2)
    assert list(table.index) == ["a"]  # b has no gmv, c has one creator
    scaled = per_query(query, [10 * g for g in gain], [3 * s + 1 for s in score], k=2)
    pd.testing.assert_frame_equal(table, scaled)
    # Ties keep the input order; NaN ranks last.
    tied = per_query(["q"] * 3, [0.0, 1.0, 2.0], [1.0, 1.0, np.nan], k=1)
    assert tied.loc["q", "gmv_capture"] == 0.0
    assert evaluate(query, gain, {"m": np.array(score)}, ks=(2,))["test_queries"] == 1


# ----------------------------------------------------------------------------- labels


def test_grades_follow_gmv_with_matching_gains():
    query = ["a"] * 5 + ["b"] * 2
    gmv = np.array([0.0, 1.0, 10.0, 100.0, 1000.0, 0.0, 3.0])
    g = grades(query, gmv, max_grade=30, steps=2)
    assert g.dtype == np.int32 and g[0] == 0 and g[4] == 30 and g[6] == 30 and g[5] == 0
    assert list(g[:5]) == sorted(g[:5])
    gains = np.array(label_gain(30, 2))[g[:5]]
    top = gains[4]
    nonzero = gmv[1:5] / 1000.0
    assert np.all(np.abs(np.log2(gains[1:5] / top / nonzero)) <= 0.25 + 1e-9)


# ----------------------------------------------------------------------------- split


def campaigns_frame(n: int) -> pd.DataFrame:
    created = pd.Timestamp("2025-01-01", tz="UTC") + pd.to_timedelta(np.arange(n) * 3, unit="D")
    return pd.DataFrame({"campaign_id": [f"k{i:03d}" for i in range(n)], "created_at": created,
                         "end_at": created + pd.Timedelta(days=20)})


def test_time_split_follows_the_contract():
    campaigns = campaigns_frame(100)
    split = time_split(campaigns, 0.2, 0.2)
    assert split.t_test == campaigns["created_at"].iloc[80]
    assert split.test == frozenset(campaigns["campaign_id"].iloc[80:])
    ended = campaigns.set_index("campaign_id")["end_at"]
    created = campaigns.set_index("campaign_id")["created_at"]
    assert all(ended[c] < split.t_test for c in split.fit | split.valid)
    assert all(ended[c] < split.t_valid for c in split.fit)
    assert min(created[c] for c in split.valid) == split.t_valid
    assert not (split.fit & split.valid) and not ((split.fit | split.valid) & split.test)


def test_time_split_rejects_too_few_campaigns():
    with pytest.raises(ValueError, match="too few campaigns"):
        time_split(campaigns_frame(6), 0.2, 0.2)


# ----------------------------------------------------------------------------- config


def test_config_overrides_and_rejects(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text("seed = 7\nlearning_rate = 1\nobjectives = ['rank_xendcg']\n")
    cfg = load_config(good)
    assert cfg.seed == 7 and cfg.learning_rate == 1.0 and cfg.objectives == ("rank_xendcg",)
    assert cfg.num_leaves == load_config().num_leaves
    for text, message in [("sede = 7\n", "unknown key"), ("num_leaves = 'many'\n", "must be a number"),
                          ("num_leaves = 2.5\n", "must be an integer"),
                          ("objectives = ['xgboost']\n", "choose from"),
                          ("test_fraction = 0.9\n", "test_fraction"), ("seed = \n", "not valid TOML")]:
        bad = tmp_path / "bad.toml"
        bad.write_text(text)
        with pytest.raises(ConfigError, match=message):
            load_config(bad)


# ----------------------------------------------------------------------------- model


@pytest.fixture(scope="module")
def market():
    return simulate(SimConfig(creators=1500, days=300, seed=21))


@pytest.fixture(scope="module")
def quick_cfg():
    # One thread: LightGBM's threads crawl when another process holds the second core.
    return dataclasses.replace(load_config(), max_rounds=200, early_stopping_rounds=30, num_threads=1)


@pytest.fixture(scope="module")
def result(market, quick_cfg):
    tables, truth = market
    return train(tables, quick_cfg, truth["expected_gmv"])


def test_model_beats_baselines_and_nears_the_oracle(result):
    ndcg = result.metrics["ndcg@10"]
    assert result.metrics["test_queries"] >= 30
    for baseline in ("followers", "engagement_rate", "past_gmv", "random"):
        assert ndcg["model"] > ndcg[baseline] + 0.05, baseline
    assert ndcg["model"] > 0.8 * ndcg["oracle"]
    assert set(result.metrics) >= {f"{m}@{k}" for m in ("ndcg", "gmv_capture") for k in (5, 10, 20)}


def test_training_is_reproducible(market, quick_cfg, result):
    tables, truth = market
    again = train(tables, quick_cfg, truth["expected_gmv"])
    assert again.scorer.booster.model_to_string() == result.scorer.booster.model_to_string()
    assert again.metrics == result.metrics


def test_contributions_add_up_and_survive_save_load(result, tmp_path):
    frame = result.test.head(300)
    explained = result.scorer.explain(frame)
    total = explained[list(CONTRIB_COLUMNS)].sum(axis=1)
    assert np.max(np.abs(total - explained["raw_score"])) < 1e-6
    paths = result.scorer.save(tmp_path)
    assert paths["booster"].read_text().startswith("tree")  # LightGBM's own text format
    loaded = Scorer.load(paths["booster"], paths["scoring"])
    pd.testing.assert_frame_equal(loaded.explain(frame), explained, check_exact=True)


def test_score_map_is_monotone_and_bounded(result):
    raw = np.linspace(-20, 20, 2001)
    score = result.scorer.score(raw)
    assert np.all(np.diff(score) >= 0) and score.min() == 0.0 and score.max() == 100.0
    fit_like = result.scorer.raw(result.test)
    assert 10 < np.median(result.scorer.score(fit_like)) < 90


def test_no_positive_gmv_is_an_error(market, quick_cfg):
    tables = dict(market[0])
    tables["campaign_results"] = tables["campaign_results"].assign(gmv=0.0)
    with pytest.raises(TrainingError, match="no positive gmv"):
        train(tables, quick_cfg)


def test_too_few_campaigns_is_an_error(market, quick_cfg):
    tables = dict(market[0])
    keep = tables["campaigns"]["campaign_id"].iloc[:6]
    tables["campaigns"] = tables["campaigns"][tables["campaigns"]["campaign_id"].isin(keep)]
    tables["invitations"] = tables["invitations"][tables["invitations"]["campaign_id"].isin(keep)]
    with pytest.raises(TrainingError, match="too few campaigns"):
        train(tables, quick_cfg)


# ----------------------------------------------------------------------------- command + MLflow


@pytest.fixture(scope="module")
def data_dir(market, tmp_path_factory):
    root = tmp_path_factory.mktemp("training")
    tables, truth = market
    write_tables(tables, root / "data")
    (root / "data" / "truth").mkdir()
    truth["expected_gmv"].to_parquet(root / "data" / "truth" / "expected_gmv.parquet")
    (root / "quick.toml").write_text("max_rounds = 200\nearly_stopping_rounds = 30\nnum_threads = 1\n"
                                     "objectives = ['lambdarank']\n")
    return root


@pytest.mark.slow
def test_command_trains_logs_and_registers(data_dir, tmp_path, capsys):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    metrics_file = tmp_path / "metrics.json"
    args = [str(data_dir / "data"), "--config", str(data_dir / "quick.toml"),
            "--truth", str(data_dir / "data" / "truth"), "--metrics-out", str(metrics_file),
            "--tracking-uri", uri, "--experiment", "t", "--register", "cs"]
    assert training_main(args) == 0
    out = capsys.readouterr().out
    assert "run id:" in out and "models:/cs/1" in out and "oracle" in out
    assert "gate: first version: champion" in out and "served model: refitted on" in out
    assert "backtest (3 folds, 90% bootstrap intervals" in out and "mean" in out
    metrics = json.loads(metrics_file.read_text())
    assert set(metrics["ndcg@10"]) == {"model", "followers", "engagement_rate", "past_gmv",
                                       "random", "pointwise", "oracle"}
    assert isinstance(metrics["test_queries"], int)

    client = MlflowClient(tracking_uri=uri)
    assert str(client.get_model_version_by_alias("cs", "champion").version) == "1"
    run = client.search_runs([client.get_experiment_by_name("t").experiment_id])[0]
    assert run.data.metrics["test_ndcg_at_10_model"] == pytest.approx(metrics["ndcg@10"]["model"])
    assert run.data.metrics["test_queries"] == metrics["test_queries"]
    assert not [name for name in run.data.metrics if name.startswith("test_test")]
    assert run.data.metrics["backtest_ndcg_at_10_fold3"] == pytest.approx(metrics["ndcg@10"]["model"])
    assert (run.data.metrics["backtest_ndcg_at_10_mean_lo"] < run.data.metrics["backtest_ndcg_at_10_mean"]
            < run.data.metrics["backtest_ndcg_at_10_mean_hi"])
    assert run.data.params["seed"] == "42"
    assert int(run.data.params["served_trees"]) > int(run.data.params["best_iteration"])
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.json", "data_fingerprint.json", "feature_registry.csv", "plots", "backtest.csv",
            "evaluated_model"} <= artifacts
    assert "plots/backtest.png" in {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert len(client.get_metric_history(run.info.run_id, "valid_ndcg_at_10_lambdarank")) > 1
    datasets = {d.dataset.name: d for d in run.inputs.dataset_inputs}
    assert set(datasets) == {"training_pairs", "test_pairs"}
    fingerprint = mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/data_fingerprint.json")
    assert {d.dataset.digest for d in datasets.values()} == {data_digest(fingerprint)}
    assert json.loads(datasets["test_pairs"].dataset.profile)["num_rows"] > 0

    # The same model again is a tie: the alias stays.
    fast = [*args, "--backtest", "1"]
    assert training_main(fast) == 0
    out = capsys.readouterr().out
    assert ": tie; v1 stays champion" in out and "test campaigns champion v1 (its evaluated model)" in out
    assert str(client.get_model_version_by_alias("cs", "champion").version) == "1"
    # A crippled model (one tree of two leaves) is refused.
    (data_dir / "weak.toml").write_text("max_rounds = 1\nnum_leaves = 2\nobjectives = ['rank_xendcg']\n"
                                        "num_threads = 1\nbacktest_folds = 1\n")
    weak = [a if a != str(data_dir / "quick.toml") else str(data_dir / "weak.toml") for a in args]
    assert training_main(weak) == 0
    assert ": worse; v1 stays champion" in capsys.readouterr().out
    assert str(client.get_model_version_by_alias("cs", "champion").version) == "1"
    # A good model against a crippled champion is promoted, with an interval above 0.
    assert training_main([*weak[:-1], "cs2"]) == 0
    assert training_main([*fast[:-3], "cs2", "--backtest", "1"]) == 0
    assert ": better; v2 is champion" in capsys.readouterr().out
    assert str(client.get_model_version_by_alias("cs2", "champion").version) == "2"
    gate = client.search_runs([client.get_experiment_by_name("t").experiment_id],
                              order_by=["attributes.start_time DESC"])[0].data.metrics
    assert gate["gate_ndcg_at_10_lo"] > 0 and gate["gate_ndcg_at_10_diff"] > 0

    mlflow.set_tracking_uri(uri)
    scorer = load_scorer("models:/cs@champion")
    pyfunc = mlflow.pyfunc.load_model("models:/cs/1")
    sample = train_sample(data_dir)
    answer = pyfunc.predict(sample[scorer.features])
    pd.testing.assert_frame_equal(answer, scorer.explain(sample).reset_index(drop=True))


def train_sample(data_dir):
    from features.pairs import training_pairs
    from marketplace.validate import load_valid_tables

    return training_pairs(load_valid_tables(data_dir / "data")).tail(50).reset_index(drop=True)


@pytest.mark.parametrize("extra, message", [
    (["--tracking-uri", "http://127.0.0.1:9"], "unreachable"),
    (["--config", "/nonexistent.toml"], "config file not found"),
    (["--truth", "/nonexistent"], "truth file not found"),
    (["--metrics-out", "/nonexistent/m.json"], "folder does not exist"),
    (["--backtest", "9"], "--backtest 9: backtest_folds x test_fraction: must be <= 0.8"),
])
def test_command_bad_input_is_one_line(data_dir, tmp_path, capsys, extra, message):
    args = [str(data_dir / "data"), "--tracking-uri", f"sqlite:///{tmp_path}/m.db", *extra]
    assert training_main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and message in err[0]
    assert not (tmp_path / "m.db").exists()


def test_command_stops_on_invalid_data(data_dir, tmp_path, capsys):
    tables, _ = simulate(SimConfig(creators=100, days=150, seed=1))
    tables["campaigns"].loc[0, "end_at"] = tables["campaigns"].loc[0, "created_at"]
    write_tables(tables, tmp_path / "bad")
    assert training_main([str(tmp_path / "bad"), "--tracking-uri", f"sqlite:///{tmp_path}/m.db"]) == 1
    captured = capsys.readouterr()
    assert "campaigns" in captured.out and "error:" in captured.err
    assert not (tmp_path / "m.db").exists()


# ----------------------------------------------------------------------------- backtest


def test_backtest_folds_walk_forward():
    campaigns = campaigns_frame(100)
    folds = backtest_splits(campaigns, 0.2, 0.2, folds=3)
    assert folds[-1] == time_split(campaigns, 0.2, 0.2)
    created = campaigns.set_index("campaign_id")["created_at"]
    ended = campaigns.set_index("campaign_id")["end_at"]
    assert [len(f.test) for f in folds] == [20, 20, 20]
    for before, after in zip(folds, folds[1:]):
        assert before.t_end == after.t_test
        assert max(created[c] for c in before.test) < min(created[c] for c in after.test)
    for fold in folds:
        assert all(ended[c] < fold.t_test for c in fold.fit | fold.valid)
        assert all(fold.t_test <= created[c] for c in fold.test)
    with pytest.raises(ValueError, match="backtest fold 1 of 3"):
        backtest_splits(campaigns_frame(12), 0.2, 0.2, folds=3)


def test_a_small_marketplace_backtests_fewer_folds(quick_cfg):
    campaigns = campaigns_frame(40)
    pairs = pd.DataFrame({"campaign_id": campaigns["campaign_id"], "gmv": 1.0})
    splits = fold_splits({"campaigns": campaigns}, quick_cfg, pairs, folds=3)
    assert len(splits) == 2 and splits[-1] == time_split(campaigns, 0.2, 0.2)


def test_backtest_table_has_folds_mean_and_intervals(result, quick_cfg):
    table = result.backtest
    assert list(table.index) == ["1", "2", "3", "mean"]
    for metric in ("ndcg@10", "gmv_capture@10", "oracle_ndcg@10"):
        assert (table[f"{metric}_lo"] <= table[metric]).all()
        assert (table[metric] <= table[f"{metric}_hi"]).all()
        assert (table[f"{metric}_hi"] - table[f"{metric}_lo"] > 0).all()
        assert table.loc["mean", metric] == pytest.approx(table.loc[["1", "2", "3"], metric].mean())
    # The last fold is the run's own test: same campaigns, same model, same figure.
    assert table.loc["3", "ndcg@10"] == pytest.approx(result.metrics["ndcg@10"]["model"])
    assert table.loc["3", "campaigns"] == result.metrics["test_queries"]
    assert pd.Timestamp(table.loc["3", "test_from"]) == result.split.t_test
    # The interval of the mean is narrower than any fold's: more campaigns.
    width = table["ndcg@10_hi"] - table["ndcg@10_lo"]
    assert width["mean"] < width.drop("mean").min()


def test_objective_is_chosen_on_the_folds_validation(result, quick_cfg):
    mean_valid = {o: np.mean([fold[o].valid_ndcg for fold in result.folds]) for o in quick_cfg.objectives}
    assert result.chosen.objective == max(mean_valid, key=mean_valid.get)
    assert result.metrics["validation_ndcg@10"] == pytest.approx(mean_valid)


def test_bootstrap_interval_covers_the_mean_and_shrinks_with_more_campaigns():
    rng = np.random.default_rng(0)
    values = rng.normal(0.6, 0.2, 400)
    lo, hi = interval(bootstrap_mean_draws(values, 2000, np.random.default_rng(1)), 0.9)
    half = 1.645 * values.std() / np.sqrt(len(values))  # normal approximation
    assert lo[0] < values.mean() < hi[0]
    assert (hi[0] - lo[0]) == pytest.approx(2 * half, rel=0.15)
    lo4, hi4 = interval(bootstrap_mean_draws(values[:100], 2000, np.random.default_rng(1)), 0.9)
    assert hi4[0] - lo4[0] > 1.5 * (hi[0] - lo[0])


# ----------------------------------------------------------------------------- refit, constraints


def test_served_model_is_refitted_on_every_labelled_campaign(result, market):
    tables, _ = market
    campaigns = tables["campaigns"].set_index("campaign_id")
    served = campaigns.loc[list(result.served_campaigns)]
    # It saw the newest outcomes: campaigns of the test period, up to the data's end.
    assert (served["created_at"] >= result.split.t_test).sum() > 0.5 * len(result.split.test)
    assert pd.Timestamp(result.scorer.trained_until) == served["end_at"].max()
    assert pd.Timestamp(result.evaluated.trained_until) < result.split.t_test
    unlabelled = campaigns.drop(index=list(result.served_campaigns))
    assert (unlabelled["end_at"] >= served["end_at"].max()).all()
    assert result.scorer.booster.num_trees() == result.served_trees > result.chosen.best_iteration
    assert result.scorer.reference is not None and result.evaluated.reference is None


@pytest.mark.slow
def test_served_model_learns_from_the_newest_campaigns(market, quick_cfg):
    """Changing the outcome of the newest labelled campaign changes the served model and
    leaves the evaluated one (fitted before the test period) unchanged."""
    tables, _ = market
    cfg = dataclasses.replace(quick_cfg, backtest_folds=1)
    before = train(tables, cfg)
    newest = (tables["campaigns"][tables["campaigns"]["campaign_id"].isin(before.served_campaigns)]
              .sort_values("end_at")["campaign_id"].iloc[-1])
    changed = dict(tables)
    results = tables["campaign_results"]
    changed["campaign_results"] = results.assign(
        gmv=np.where(results["campaign_id"] == newest, results["gmv"][::-1].to_numpy(), results["gmv"]))
    after = train(changed, cfg)
    assert (after.evaluated.booster.model_to_string() == before.evaluated.booster.model_to_string())
    assert after.scorer.booster.model_to_string() != before.scorer.booster.model_to_string()


def test_monotone_constraints_follow_the_registry(result):
    frame = result.test.head(200)
    for name in result.scorer.features:
        direction = BY_NAME[name].direction
        if direction == 0:
            continue
        known = frame[name].dropna()
        if known.empty:
            continue
        raws = [result.scorer.raw(frame.assign(**{name: value}))
                for value in np.quantile(known, [0.0, 0.25, 0.5, 0.75, 1.0])]
        steps = np.diff(np.array(raws), axis=0) * direction
        assert (steps >= -1e-12).all(), name


# ----------------------------------------------------------------------------- the gate


def paired(challenger, champion) -> pd.DataFrame:
    return pd.DataFrame({"challenger": challenger, "champion": champion})


def test_gate_promotes_a_clearly_better_challenger():
    rng = np.random.default_rng(4)
    champion = rng.uniform(0.3, 0.9, 300)
    decision = gate_decision(paired(champion + rng.normal(0.03, 0.05, 300), champion), 0.9, 1000, 1)
    assert decision.promote and decision.verdict == "better"
    assert 0 < decision.lo < decision.diff < decision.hi and decision.campaigns == 300


def test_gate_refuses_a_worse_or_a_noisy_challenger():
    rng = np.random.default_rng(5)
    champion = rng.uniform(0.3, 0.9, 300)
    worse = gate_decision(paired(champion - rng.normal(0.03, 0.05, 300), champion), 0.9, 1000, 1)
    assert not worse.promote and worse.verdict == "worse" and worse.hi < 0
    # Better on average, but by less than the noise: the interval holds 0.
    noise = rng.normal(0.0, 0.1, 300)
    noisy = gate_decision(paired(champion + noise - noise.mean() + 0.002, champion), 0.9, 1000, 1)
    assert noisy.diff > 0 and noisy.lo < 0 < noisy.hi
    assert not noisy.promote and noisy.verdict == "not significant"


def test_gate_keeps_the_champion_on_a_tie():
    scores = np.random.default_rng(6).uniform(0.3, 0.9, 50)
    decision = gate_decision(paired(scores, scores.copy()), 0.9, 1000, 1)
    assert not decision.promote and decision.verdict == "tie"
    assert decision.diff == decision.lo == decision.hi == 0.0


def test_gate_compares_only_campaigns_the_champion_never_saw(result):
    cutoff = result.test["created_at"].sort_values().iloc[len(result.test) // 2]
    fair = fair_campaigns(result.test, cutoff.isoformat())
    assert (fair["created_at"] > cutoff).all()
    assert len(fair) == (result.test["created_at"] > cutoff).sum() > 0


# ----------------------------------------------------------------------------- MLflow names


def test_metric_names_read_once():
    names = flat_metrics({"test_queries": 5, "ndcg@10": {"model": 0.5},
                          "validation_ndcg@10": {"lambdarank": 0.4}})
    assert names == {"test_queries": 5.0, "test_ndcg_at_10_model": 0.5,
                     "validation_ndcg_at_10_lambdarank": 0.4}


def test_a_sequence_of_parquet_parts_gives_the_matrix_model_above_the_bin_sample(tmp_path):
    """Above bin_construct_sample_cnt (200,000 rows) LightGBM bins from a sample; from a
    Sequence it draws that sample with the Dataset's own seed, which must be ours."""
    from training.model import _dataset, lgb_params
    from training.table import PartRows

    rng = np.random.default_rng(3)
    rows, features = 210_000, ["a", "b", "c"]
    frame = pd.DataFrame(rng.lognormal(size=(rows, 3)), columns=features)
    frame.loc[rng.random(rows) < 0.3, "b"] = np.nan
    frame["campaign_id"] = np.repeat(np.arange(rows // 30), 30).astype(str)
    frame["gmv"] = np.where(rng.random(rows) < 0.2, frame["a"] * rng.lognormal(size=rows), 0.0)
    sizes = [70_000, 90_000, 50_000]
    parts = [tmp_path / f"part-{i}.parquet" for i in range(3)]
    for path, start, size in zip(parts, np.cumsum([0, *sizes[:-1]]), sizes):
        frame[features].iloc[start:start + size].to_parquet(path, index=False)
    cfg = dataclasses.replace(load_config(), num_threads=1, min_data_in_leaf=500)
    params = {**lgb_params(cfg, "lambdarank"), "seed": 7}
    from_matrix = _dataset(frame, features, cfg, True)
    from_parts = _dataset(frame[["campaign_id", "gmv"]], features, cfg, True,
                          rows=PartRows(parts, sizes, np.arange(rows), features))
    models = [lgb.train(params, data, num_boost_round=5).model_to_string()
              for data in (from_matrix, from_parts)]
    assert models[0] == models[1]
