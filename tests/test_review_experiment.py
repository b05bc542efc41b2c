"""review.experiment: run metrics from hand-made run records (checked by hand), and from
the MLflow store of conftest's ``logged_store`` (a tiny marketplace trained twice)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from matplotlib.figure import Figure

from review import experiment, plots


def _records():
    metrics = {
        "test_ndcg_at_5_model": 0.4,
        "test_ndcg_at_10_model": 0.5,
        "test_ndcg_at_5_past_gmv": 0.3,
        "test_ndcg_at_10_past_gmv": 0.35,
        "test_ndcg_at_10_oracle": 0.7,
        "test_gmv_capture_at_10_model": 0.8,
        "test_queries": 12.0,
        "valid_ndcg_at_10_lambdarank": 0.55,
    }
    return [
        {
            "run_id": "old",
            "run_name": "first",
            "objective": "lambdarank",
            "start_time": pd.Timestamp("2025-01-01", tz="UTC"),
            "metrics": {"test_ndcg_at_10_model": 0.1, "test_ndcg_at_10_past_gmv": 0.2},
        },
        {
            "run_id": "new",
            "run_name": "second",
            "objective": "rank_xendcg",
            "start_time": pd.Timestamp("2025-02-01", tz="UTC"),
            "metrics": metrics,
        },
    ]


def test_tidy_run_metrics_and_views():
    runs = experiment.tidy_run_metrics(_records())
    assert len(runs) == 8  # test ranking metrics only
    assert runs["run_id"].iloc[0] == "new"  # newest first
    row = runs[(runs["run_id"] == "new") & (runs["scorer"] == "past_gmv") & (runs["k"] == 5)]
    assert row[["metric", "value", "test_queries"]].iloc[0].tolist() == ["ndcg", 0.3, 12.0]
    assert experiment.latest_run_id(runs) == "new"

    metrics = experiment.run_metrics(runs)
    assert list(metrics.index) == ["model", "past_gmv", "oracle"]
    assert list(metrics.columns) == ["ndcg@5", "ndcg@10", "gmv_capture@10"]
    assert metrics.loc["model", "gmv_capture@10"] == 0.8
    assert math.isnan(metrics.loc["oracle", "ndcg@5"])
    assert experiment.run_metrics(runs, "old").loc["past_gmv", "ndcg@10"] == 0.2

    curves = experiment.metric_curves(runs, "ndcg")
    assert list(curves.index) == [5, 10] and list(curves.columns) == ["model", "past_gmv", "oracle"]
    assert curves.loc[10, "model"] == 0.5

    overview = experiment.runs_overview(runs, "ndcg", 10)
    assert list(overview.index) == ["new", "old"]
    assert overview.loc["old", "model"] == 0.1 and overview.loc["new", "oracle"] == 0.7
    assert list(overview.columns[:3]) == ["start_time", "objective", "test_queries"]
    assert isinstance(plots.plot_metric_curves(curves), Figure)
    with pytest.raises(ValueError):
        experiment.latest_run_id(runs.iloc[:0])


def test_latest_runs_from_mlflow(logged_store):
    uri = logged_store.uri
    runs = experiment.latest_runs(uri, "review-test")
    assert runs["run_id"].nunique() == 2
    assert experiment.latest_run_id(runs) == logged_store.second.run_id
    assert set(runs["scorer"]) == {
        "model",
        "followers",
        "engagement_rate",
        "past_gmv",
        "random",
        "pointwise",
        "oracle",
    }  # truth was found
    assert set(runs["k"]) == {5, 10, 20} and runs["value"].between(0, 1).all()
    assert experiment.latest_runs(uri, "no-such-experiment").empty
    assert len(experiment.latest_runs(uri, "review-test", n=1)["run_id"].unique()) == 1
    # Same data, same seed: the two runs agree.
    overview = experiment.runs_overview(runs)
    assert overview["model"].nunique() == 1

    run_id = logged_store.second.run_id
    assert experiment.run_model_uri(uri, run_id) == logged_store.second.model_uri
    assert experiment.latest_model_uri(uri, "review-test") == logged_store.second.model_uri
    cfg = experiment.run_config(uri, run_id)
    assert cfg == experiment.quick_config()
    curves = experiment.validation_curves(uri, run_id)
    assert list(curves.columns) == ["lambdarank"] and curves.index[0] == 1
    assert len(curves) <= cfg.max_rounds
    assert not (logged_store.root / "mlruns").exists()  # artifacts beside the database
