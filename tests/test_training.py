"""Training: metrics, labels, split, config, the fitted model, MLflow logging and registry."""

from __future__ import annotations

import dataclasses
import json
import os

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from features.registry import BY_NAME
from marketplace.io import write_tables
from marketplace.simulate import SimConfig, simulate
from training.__main__ import main as training_main
from training.config import ConfigError, load_config
from training.model import CONTRIB_COLUMNS, Scorer
from training.run import TrainingError, train
from training.run_record import data_digest, flat_metrics
from training.sales import sales_summary
from training.tracking import load_scorer, using_tracking_uri

# ----------------------------------------------------------------------------- config


def test_config_overrides_and_rejects(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text("seed = 7\nlearning_rate = 1\nobjectives = ['rank_xendcg']\n")
    cfg = load_config(good)
    assert cfg.seed == 7 and cfg.learning_rate == 1.0 and cfg.objectives == ("rank_xendcg",)
    assert cfg.num_leaves == load_config().num_leaves
    for text, message in [
        ("sede = 7\n", "unknown key"),
        ("num_leaves = 'many'\n", "must be a number"),
        ("num_leaves = 2.5\n", "must be an integer"),
        ("objectives = ['xgboost']\n", "choose from"),
        ("test_fraction = 0.9\n", "test_fraction"),
        ("seed = \n", "not valid TOML"),
    ]:
        bad = tmp_path / "bad.toml"
        bad.write_text(text)
        with pytest.raises(ConfigError, match=message):
            load_config(bad)


def test_the_defaults_are_written_once_in_default_toml(tmp_path, monkeypatch):
    """default.toml holds every default and the dataclass none of its own, so the two
    cannot disagree; a default file lacking a key is a one-line error."""
    import tomllib

    from training import config

    assert all(
        f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        for f in dataclasses.fields(config.TrainConfig)
    )
    written = tomllib.loads(config.DEFAULT_CONFIG.read_text())
    loaded = load_config().as_dict()
    assert set(written) == set(loaded)
    assert {k: list(v) if isinstance(v, tuple) else v for k, v in loaded.items()} == written
    lacking = tmp_path / "default.toml"
    lacking.write_text(config.DEFAULT_CONFIG.read_text().replace("seed = 42\n", ""))
    monkeypatch.setattr(config, "DEFAULT_CONFIG", lacking)
    with pytest.raises(ConfigError, match="missing key.*seed"):
        load_config()


# ----------------------------------------------------------------------------- model


def test_model_beats_baselines_and_nears_the_oracle(trained):
    ndcg = trained.metrics["ndcg@10"]
    assert trained.metrics["test_queries"] >= 30
    for baseline in ("followers", "engagement_rate", "past_gmv", "random"):
        assert ndcg["model"] > ndcg[baseline] + 0.05, baseline
    assert ndcg["model"] > 0.8 * ndcg["oracle"]
    assert set(trained.metrics) >= {
        f"{m}@{k}" for m in ("ndcg", "gmv_capture") for k in (5, 10, 20)
    }


def test_training_is_reproducible(training_market, quick_cfg, trained):
    tables, truth = training_market
    again = train(tables, quick_cfg, truth["expected_gmv"])
    assert again.scorer.booster.model_to_string() == trained.scorer.booster.model_to_string()
    assert again.metrics == trained.metrics


def test_contributions_add_up_and_survive_save_load(trained, tmp_path):
    frame = trained.test.head(300)
    explained = trained.scorer.explain(frame)
    total = explained[list(CONTRIB_COLUMNS)].sum(axis=1)
    assert np.max(np.abs(total - explained["raw_score"])) < 1e-6
    paths = trained.scorer.save(tmp_path)
    assert paths["booster"].read_text().startswith("tree")  # LightGBM's own text format
    loaded = Scorer.load(paths["booster"], paths["scoring"])
    pd.testing.assert_frame_equal(loaded.explain(frame), explained, check_exact=True)


def test_score_map_is_monotone_and_bounded(trained):
    raw = np.linspace(-20, 20, 2001)
    score = trained.scorer.score(raw)
    assert np.all(np.diff(score) >= 0) and score.min() == 0.0 and score.max() == 100.0
    fit_like = trained.scorer.raw(trained.test)
    assert 10 < np.median(trained.scorer.score(fit_like)) < 90


def test_no_positive_gmv_is_an_error(training_market, quick_cfg):
    tables = dict(training_market[0])
    tables["campaign_results"] = tables["campaign_results"].assign(gmv=0.0)
    with pytest.raises(TrainingError, match="no positive gmv"):
        train(tables, quick_cfg)


def test_too_few_campaigns_is_an_error(training_market, quick_cfg):
    tables = dict(training_market[0])
    keep = tables["campaigns"]["campaign_id"].iloc[:6]
    tables["campaigns"] = tables["campaigns"][tables["campaigns"]["campaign_id"].isin(keep)]
    tables["invitations"] = tables["invitations"][tables["invitations"]["campaign_id"].isin(keep)]
    with pytest.raises(TrainingError, match="too few campaigns"):
        train(tables, quick_cfg)


# ----------------------------------------------------------------------------- command + MLflow


@pytest.fixture(scope="module")
def data_dir(training_market, tmp_path_factory):
    root = tmp_path_factory.mktemp("training")
    tables, truth = training_market
    write_tables(tables, root / "data")
    (root / "data" / "truth").mkdir()
    truth["expected_gmv"].to_parquet(root / "data" / "truth" / "expected_gmv.parquet")
    (root / "quick.toml").write_text(
        "max_rounds = 200\nearly_stopping_rounds = 30\nnum_threads = 1\n"
        "objectives = ['lambdarank']\n"
    )
    return root


@pytest.mark.slow
def test_command_trains_logs_and_registers(data_dir, tmp_path, capsys):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    metrics_file = tmp_path / "metrics.json"
    args = [
        str(data_dir / "data"),
        "--config",
        str(data_dir / "quick.toml"),
        "--truth",
        str(data_dir / "data" / "truth"),
        "--metrics-out",
        str(metrics_file),
        "--tracking-uri",
        uri,
        "--experiment",
        "t",
        "--register",
        "cs",
    ]
    state = (
        mlflow.get_tracking_uri(),
        os.environ.get("MLFLOW_TRACKING_URI"),
        os.environ.get("MLFLOW_EXPERIMENT_ID"),
    )
    assert training_main(args) == 0
    # MLflow's global tracking URI and active experiment are as they were
    assert (
        mlflow.get_tracking_uri(),
        os.environ.get("MLFLOW_TRACKING_URI"),
        os.environ.get("MLFLOW_EXPERIMENT_ID"),
    ) == state
    out = capsys.readouterr().out
    assert "run id:" in out and "models:/cs/1" in out and "oracle" in out
    assert "gate: first version: champion" in out and "served model: refitted on" in out
    assert "backtest (3 folds, 90% bootstrap intervals" in out and "mean" in out
    metrics = json.loads(metrics_file.read_text())
    assert sales_summary(metrics) in out  # the expected sales' figures, truth included
    assert "realised / truth, by decile of truth" in out
    assert set(metrics["ndcg@10"]) == {
        "model",
        "followers",
        "engagement_rate",
        "past_gmv",
        "random",
        "pointwise",
        "oracle",
    }
    assert isinstance(metrics["test_queries"], int)

    client = MlflowClient(tracking_uri=uri)
    assert str(client.get_model_version_by_alias("cs", "champion").version) == "1"
    run = client.search_runs([client.get_experiment_by_name("t").experiment_id])[0]
    assert run.data.metrics["test_ndcg_at_10_model"] == pytest.approx(metrics["ndcg@10"]["model"])
    assert run.data.metrics["test_queries"] == metrics["test_queries"]
    assert not [name for name in run.data.metrics if name.startswith("test_test")]
    assert run.data.metrics["backtest_ndcg_at_10_fold3"] == pytest.approx(
        metrics["ndcg@10"]["model"]
    )
    assert (
        run.data.metrics["backtest_ndcg_at_10_mean_lo"]
        < run.data.metrics["backtest_ndcg_at_10_mean"]
        < run.data.metrics["backtest_ndcg_at_10_mean_hi"]
    )
    assert run.data.params["seed"] == "42"
    assert int(run.data.params["served_trees"]) > int(run.data.params["best_iteration"])
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {
        "config.json",
        "data_fingerprint.json",
        "feature_registry.csv",
        "plots",
        "backtest.csv",
        "evaluated_model",
    } <= artifacts
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
    assert (
        ": tie; v1 stays champion" in out
        and "test campaigns champion v1 (its evaluated model)" in out
    )
    assert str(client.get_model_version_by_alias("cs", "champion").version) == "1"
    # A crippled model (one tree of two leaves) is refused.
    (data_dir / "weak.toml").write_text(
        "max_rounds = 1\nnum_leaves = 2\nobjectives = ['rank_xendcg']\n"
        "num_threads = 1\nbacktest_folds = 1\n"
    )
    weak = [a if a != str(data_dir / "quick.toml") else str(data_dir / "weak.toml") for a in args]
    assert training_main(weak) == 0
    assert ": worse; v1 stays champion" in capsys.readouterr().out
    assert str(client.get_model_version_by_alias("cs", "champion").version) == "1"
    # A good model against a crippled champion is promoted, with an interval above 0.
    assert training_main([*weak[:-1], "cs2"]) == 0
    assert training_main([*fast[:-3], "cs2", "--backtest", "1"]) == 0
    assert ": better; v2 is champion" in capsys.readouterr().out
    assert str(client.get_model_version_by_alias("cs2", "champion").version) == "2"
    gate = client.search_runs(
        [client.get_experiment_by_name("t").experiment_id], order_by=["attributes.start_time DESC"]
    )[0].data.metrics
    assert gate["gate_ndcg_at_10_lo"] > 0 and gate["gate_ndcg_at_10_diff"] > 0

    with using_tracking_uri(uri):
        scorer = load_scorer("models:/cs@champion")
        pyfunc = mlflow.pyfunc.load_model("models:/cs/1")
    sample = train_sample(data_dir)
    answer = pyfunc.predict(sample[scorer.features])
    pd.testing.assert_frame_equal(answer, scorer.explain(sample).reset_index(drop=True))


def train_sample(data_dir):
    from features.pairs import training_pairs
    from marketplace.validate import load_valid_tables

    return training_pairs(load_valid_tables(data_dir / "data")).tail(50).reset_index(drop=True)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--tracking-uri", "http://127.0.0.1:9"], "unreachable"),
        (["--config", "/nonexistent.toml"], "config file not found"),
        (["--truth", "/nonexistent"], "truth file not found"),
        (["--metrics-out", "/nonexistent/m.json"], "folder does not exist"),
        (["--backtest", "9"], "--backtest 9: backtest_folds x test_fraction: must be <= 0.8"),
    ],
)
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
    assert (
        training_main([str(tmp_path / "bad"), "--tracking-uri", f"sqlite:///{tmp_path}/m.db"]) == 1
    )
    captured = capsys.readouterr()
    assert "campaigns" in captured.out and "error:" in captured.err
    assert not (tmp_path / "m.db").exists()


# ----------------------------------------------------------------------------- refit, constraints


def test_served_model_is_refitted_on_every_labelled_campaign(trained, training_market):
    tables, _ = training_market
    campaigns = tables["campaigns"].set_index("campaign_id")
    served = campaigns.loc[list(trained.served_campaigns)]
    # It saw the newest outcomes: campaigns of the test period, up to the data's end.
    assert (served["created_at"] >= trained.split.t_test).sum() > 0.5 * len(trained.split.test)
    assert pd.Timestamp(trained.scorer.trained_until) == served["end_at"].max()
    assert pd.Timestamp(trained.evaluated.trained_until) < trained.split.t_test
    unlabelled = campaigns.drop(index=list(trained.served_campaigns))
    assert (unlabelled["end_at"] >= served["end_at"].max()).all()
    assert (
        trained.scorer.booster.num_trees() == trained.served_trees > trained.chosen.best_iteration
    )
    assert trained.scorer.reference is not None and trained.evaluated.reference is None


@pytest.mark.slow
def test_served_model_learns_from_the_newest_campaigns(training_market, quick_cfg):
    """Changing the outcome of the newest labelled campaign changes the served model and
    leaves the evaluated one (fitted before the test period) unchanged."""
    tables, _ = training_market
    cfg = dataclasses.replace(quick_cfg, backtest_folds=1)
    before = train(tables, cfg)
    newest = (
        tables["campaigns"][tables["campaigns"]["campaign_id"].isin(before.served_campaigns)]
        .sort_values("end_at")["campaign_id"]
        .iloc[-1]
    )
    changed = dict(tables)
    results = tables["campaign_results"]
    changed["campaign_results"] = results.assign(
        gmv=np.where(
            results["campaign_id"] == newest, results["gmv"][::-1].to_numpy(), results["gmv"]
        )
    )
    after = train(changed, cfg)
    assert after.evaluated.booster.model_to_string() == before.evaluated.booster.model_to_string()
    assert after.scorer.booster.model_to_string() != before.scorer.booster.model_to_string()


def test_monotone_constraints_follow_the_registry(trained):
    frame = trained.test.head(200)
    for name in trained.scorer.features:
        direction = BY_NAME[name].direction
        if direction == 0:
            continue
        known = frame[name].dropna()
        if known.empty:
            continue
        raws = [
            trained.scorer.raw(frame.assign(**{name: value}))
            for value in np.quantile(known, [0.0, 0.25, 0.5, 0.75, 1.0])
        ]
        steps = np.diff(np.array(raws), axis=0) * direction
        assert (steps >= -1e-12).all(), name


# ----------------------------------------------------------------------------- MLflow names


def test_metric_names_read_once():
    names = flat_metrics(
        {"test_queries": 5, "ndcg@10": {"model": 0.5}, "validation_ndcg@10": {"lambdarank": 0.4}}
    )
    assert names == {
        "test_queries": 5.0,
        "test_ndcg_at_10_model": 0.5,
        "validation_ndcg_at_10_lambdarank": 0.4,
    }


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
    for path, start, size in zip(parts, np.cumsum([0, *sizes[:-1]]), sizes, strict=True):
        frame[features].iloc[start : start + size].to_parquet(path, index=False)
    cfg = dataclasses.replace(load_config(), num_threads=1, min_data_in_leaf=500)
    params = {**lgb_params(cfg, "lambdarank"), "seed": 7}
    from_matrix = _dataset(frame, features, cfg, True)
    from_parts = _dataset(
        frame[["campaign_id", "gmv"]],
        features,
        cfg,
        True,
        rows=PartRows(parts, np.cumsum([0, *sizes]), np.arange(rows), features),
    )
    models = [
        lgb.train(params, data, num_boost_round=5).model_to_string()
        for data in (from_matrix, from_parts)
    ]
    assert models[0] == models[1]


def test_using_tracking_uri_restores_the_uri_and_its_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    inside = f"sqlite:///{tmp_path}/mlflow.db"
    with using_tracking_uri(inside):
        assert mlflow.get_tracking_uri() == inside
    assert "MLFLOW_TRACKING_URI" not in os.environ  # MLflow's own default again
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/other.db")
    before = mlflow.get_tracking_uri()
    with using_tracking_uri(inside):
        assert os.environ["MLFLOW_TRACKING_URI"] == inside
    assert mlflow.get_tracking_uri() == before
    assert os.environ["MLFLOW_TRACKING_URI"] == f"sqlite:///{tmp_path}/other.db"
    # MLflow still follows the variable, as before the block (no URI of its own left set)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/third.db")
    assert mlflow.get_tracking_uri() == f"sqlite:///{tmp_path}/third.db"
