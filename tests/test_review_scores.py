"""review.scores: the score distribution by hand, and a logged model's scores on the test
split of conftest's ``logged_store`` with its family summary and fairness groups."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from mlflow.tracking import MlflowClient

from features.registry import FAMILIES
from review import experiment, fairness, plots, scores
from training.metrics import mean_ndcg


def test_score_distribution_by_hand():
    pairs = pd.DataFrame(
        {"score": [5.0, 15.0, 95.0, 95.0, 100.0], "gmv": [0.0, 10.0, 0.0, 5.0, 0.0]}
    )
    table = scores.score_distribution(pairs)
    assert len(table) == 10 and table["pairs"].sum() == 5
    top = table.iloc[-1]
    assert top["pairs"] == 3 and top["sold_rate"] == pytest.approx(1 / 3)
    assert top["share_of_sold"] == 0.5 and top["share_of_no_sales"] == pytest.approx(2 / 3)
    assert table["share_of_sold"].sum() == pytest.approx(1.0)
    assert table.iloc[0]["share_of_no_sales"] == pytest.approx(1 / 3)
    assert isinstance(plots.plot_score_distribution(pairs), Figure)


def test_the_served_model_never_scores_the_test_pairs(logged_store):
    """The run's logged model was refitted on the test campaigns: scoring them with it is
    refused; the evaluated model learned only from campaigns that ended before them."""
    uri, run_id = logged_store.uri, logged_store.second.run_id
    served = experiment.load_run_scorer(uri, experiment.run_model_uri(uri, run_id))
    cfg = experiment.run_config(uri, run_id)
    with pytest.raises(ValueError, match="in-sample.*evaluated model"):
        scores.scored_test_pairs(logged_store.tables, served, cfg)
    evaluated = experiment.evaluated_run_scorer(uri, run_id)
    assert evaluated.booster.model_to_string() != served.booster.model_to_string()
    client = MlflowClient(uri)
    bare = client.create_run(client.create_experiment("review-bare-run")).info.run_id
    with pytest.raises(ValueError, match="kept no evaluated model"):
        experiment.evaluated_run_scorer(uri, bare)


def test_scored_test_pairs_and_family_summary(logged_store):
    uri, run_id = logged_store.uri, logged_store.second.run_id
    scorer = experiment.evaluated_run_scorer(uri, run_id)
    cfg = experiment.run_config(uri, run_id)
    pairs = scores.scored_test_pairs(logged_store.tables, scorer, cfg)
    runs = experiment.latest_runs(uri, "review-test")
    run = runs[(runs["run_id"] == run_id) & (runs["scorer"] == "model")]
    scorable = pairs.groupby("campaign_id")["gmv"].agg(["size", "sum"])
    assert ((scorable["size"] >= 2) & (scorable["sum"] > 0)).sum() == run["test_queries"].iloc[0]
    # the scores are those the run's test metrics were computed from
    logged = run[(run["metric"] == "ndcg") & (run["k"] == 10)]["value"].iloc[0]
    ndcg = mean_ndcg(pairs["campaign_id"], pairs["gmv"], pairs["raw_score"], 10)
    assert ndcg == pytest.approx(logged, abs=1e-9)
    assert pairs["score"].between(0, 100).all()
    np.testing.assert_allclose(pairs["score"], scorer.score(pairs["raw_score"].to_numpy()))
    families = scores.family_summary(scorer, pairs)
    assert list(families.index) == [*FAMILIES, "other"]
    assert families["gain_share"].sum() == pytest.approx(1.0)
    assert families["contribution_share"].sum() == pytest.approx(1.0)
    assert isinstance(plots.plot_family_summary(families), Figure)
    groups = fairness.creator_groups(pairs, logged_store.tables)
    table = fairness.fairness_table(groups, "follower_tier")
    assert table.loc["all", "invitees"] == len(pairs)
    assert table.drop(index="all")["invitees"].sum() == len(pairs)
    assert table.drop(index="all")["gmv_share"].sum() == pytest.approx(1.0)
