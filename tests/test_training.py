"""Training: metrics, labels, split, config, the fitted model, MLflow logging and registry."""

from __future__ import annotations

import dataclasses
import json
import math

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from sklearn.metrics import ndcg_score

from marketplace.io import write_tables
from marketplace.simulate import SimConfig, simulate
from training.__main__ import main as training_main
from training.config import ConfigError, load_config
from training.labels import grades, label_gain
from training.metrics import evaluate, per_query
from training.model import CONTRIB_COLUMNS, Scorer
from training.run import TrainingError, train
from training.split import time_split
from training.tracking import load_scorer

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
    (root / "quick.toml").write_text("max_rounds = 200\nearly_stopping_rounds = 30\nnum_threads = 1\n")
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
    metrics = json.loads(metrics_file.read_text())
    assert set(metrics["ndcg@10"]) == {"model", "followers", "engagement_rate", "past_gmv",
                                       "random", "pointwise", "oracle"}
    assert isinstance(metrics["test_queries"], int)

    client = MlflowClient(tracking_uri=uri)
    assert str(client.get_model_version_by_alias("cs", "champion").version) == "1"
    run = client.search_runs([client.get_experiment_by_name("t").experiment_id])[0]
    assert run.data.metrics["test_ndcg_at_10_model"] == pytest.approx(metrics["ndcg@10"]["model"])
    assert run.data.params["seed"] == "42"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.json", "data_fingerprint.json", "feature_registry.csv", "plots"} <= artifacts
    assert len(client.get_metric_history(run.info.run_id, "valid_ndcg_at_10_lambdarank")) > 1

    # The same run again does not beat the champion: the alias stays.
    assert training_main(args) == 0
    assert "v1 stays champion" in capsys.readouterr().out
    assert str(client.get_model_version_by_alias("cs", "champion").version) == "1"
    # A crippled model (one tree of two leaves) does not take the alias either.
    (data_dir / "weak.toml").write_text("max_rounds = 1\nnum_leaves = 2\nobjectives = ['rank_xendcg']\n"
                                        "num_threads = 1\n")
    weak = [a if a != str(data_dir / "quick.toml") else str(data_dir / "weak.toml") for a in args]
    assert training_main(weak) == 0
    assert str(client.get_model_version_by_alias("cs", "champion").version) == "1"

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
