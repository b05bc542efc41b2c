"""review.experiment and review.scores: run metrics from MLflow, and a logged model's
scores on the test split.

Hand-made run records for the tidy metrics (checked by hand); one small simulated
marketplace with a quickly trained, logged model for the functions that read MLflow.
"""

from __future__ import annotations

import math

import mlflow
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from features.registry import FAMILIES
from marketplace import summary
from marketplace.validate import load_valid_tables
from review import experiment, fairness, plots, scores


def _records():
    metrics = {"test_ndcg_at_5_model": 0.4, "test_ndcg_at_10_model": 0.5,
               "test_ndcg_at_5_past_gmv": 0.3, "test_ndcg_at_10_past_gmv": 0.35,
               "test_ndcg_at_10_oracle": 0.7, "test_gmv_capture_at_10_model": 0.8,
               "test_queries": 12.0, "valid_ndcg_at_10_lambdarank": 0.55}
    return [
        {"run_id": "old", "run_name": "first", "objective": "lambdarank",
         "start_time": pd.Timestamp("2025-01-01", tz="UTC"),
         "metrics": {"test_ndcg_at_10_model": 0.1, "test_ndcg_at_10_past_gmv": 0.2}},
        {"run_id": "new", "run_name": "second", "objective": "rank_xendcg",
         "start_time": pd.Timestamp("2025-02-01", tz="UTC"), "metrics": metrics},
    ]


def test_tidy_run_metrics_and_views():
    runs = experiment.tidy_run_metrics(_records())
    assert len(runs) == 8                        # test ranking metrics only
    assert runs["run_id"].iloc[0] == "new"       # newest first
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


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """A small simulated marketplace, trained twice into an SQLite store."""
    root = tmp_path_factory.mktemp("review")
    data = summary.tiny_marketplace(root / "data", creators=400, days=200, seed=11)
    uri = f"sqlite:///{root}/mlflow.db"
    before = mlflow.get_tracking_uri()
    first = experiment.quick_experiment(data, uri, "review-test")
    second = experiment.quick_experiment(data, uri, "review-test")
    mlflow.set_tracking_uri(before)
    return {"root": root, "data": data, "uri": uri, "first": first, "second": second,
            "tables": load_valid_tables(data)}


def test_latest_runs_from_mlflow(logged):
    uri = logged["uri"]
    runs = experiment.latest_runs(uri, "review-test")
    assert runs["run_id"].nunique() == 2
    assert experiment.latest_run_id(runs) == logged["second"].run_id
    assert set(runs["scorer"]) == {"model", "followers", "engagement_rate", "past_gmv",
                                   "random", "pointwise", "oracle"}          # truth was found
    assert set(runs["k"]) == {5, 10, 20} and runs["value"].between(0, 1).all()
    assert experiment.latest_runs(uri, "no-such-experiment").empty
    assert len(experiment.latest_runs(uri, "review-test", n=1)["run_id"].unique()) == 1
    # Same data, same seed: the two runs agree.
    overview = experiment.runs_overview(runs)
    assert overview["model"].nunique() == 1

    run_id = logged["second"].run_id
    assert experiment.run_model_uri(uri, run_id) == logged["second"].model_uri
    assert experiment.latest_model_uri(uri, "review-test") == logged["second"].model_uri
    cfg = experiment.run_config(uri, run_id)
    assert cfg == experiment.quick_config()
    curves = experiment.validation_curves(uri, run_id)
    assert list(curves.columns) == ["lambdarank"] and curves.index[0] == 1
    assert len(curves) <= cfg.max_rounds
    assert not (logged["root"] / "mlruns").exists()      # artifacts beside the database


def test_score_distribution_by_hand():
    pairs = pd.DataFrame({"score": [5.0, 15.0, 95.0, 95.0, 100.0],
                          "gmv": [0.0, 10.0, 0.0, 5.0, 0.0]})
    table = scores.score_distribution(pairs)
    assert len(table) == 10 and table["pairs"].sum() == 5
    top = table.iloc[-1]
    assert top["pairs"] == 3 and top["sold_rate"] == pytest.approx(1 / 3)
    assert top["share_of_sold"] == 0.5 and top["share_of_no_sales"] == pytest.approx(2 / 3)
    assert table["share_of_sold"].sum() == pytest.approx(1.0)
    assert table.iloc[0]["share_of_no_sales"] == pytest.approx(1 / 3)
    assert isinstance(plots.plot_score_distribution(pairs), Figure)


def test_scored_test_pairs_and_family_summary(logged):
    uri, run_id = logged["uri"], logged["second"].run_id
    scorer = experiment.load_run_scorer(uri, logged["second"].model_uri)
    cfg = experiment.run_config(uri, run_id)
    pairs = scores.scored_test_pairs(logged["tables"], scorer, cfg)
    runs = experiment.latest_runs(uri, "review-test")
    test_queries = runs.loc[runs["run_id"] == run_id, "test_queries"].iloc[0]
    scorable = pairs.groupby("campaign_id")["gmv"].agg(["size", "sum"])
    assert ((scorable["size"] >= 2) & (scorable["sum"] > 0)).sum() == test_queries
    assert pairs["score"].between(0, 100).all()
    np.testing.assert_allclose(pairs["score"], scorer.score(pairs["raw_score"].to_numpy()))
    families = scores.family_summary(scorer, pairs)
    assert list(families.index) == [*FAMILIES, "other"]
    assert families["gain_share"].sum() == pytest.approx(1.0)
    assert families["contribution_share"].sum() == pytest.approx(1.0)
    assert isinstance(plots.plot_family_summary(families), Figure)
    groups = fairness.creator_groups(pairs, logged["tables"])
    table = fairness.fairness_table(groups, "follower_tier")
    assert table.loc["all", "invitees"] == len(pairs)
    assert table.drop(index="all")["invitees"].sum() == len(pairs)
    assert table.drop(index="all")["gmv_share"].sum() == pytest.approx(1.0)
