"""Review helpers: marketplace summaries, run metrics from MLflow, fairness tables and
the waterfall of a creator's family contributions.

Hand-made frames for the numbers (checked by hand below); the tiny tables of conftest for
the summaries; one small simulated marketplace with a quickly trained, logged model
(module scope) for the functions that read MLflow.
"""

from __future__ import annotations

import math

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from features.registry import FAMILIES, FEATURE_NAMES
from marketplace import summary
from marketplace.validate import load_valid_tables
from serving import explain
from serving.briefs import check_briefs
from serving.partner_list import PARTNER_COLUMNS
from training import review
from training.model import CONTRIB_COLUMNS, Scorer

# ------------------------------------------------------------------ marketplace summary


def test_creator_summary_counts_the_tiny_tables(tiny_tables):
    creators = summary.creator_summary(tiny_tables)
    assert list(creators.index) == ["00123", "c2", "c3"]
    assert creators["market"].tolist() == ["ID", "MY", "GB"]
    assert creators["category"].tolist() == ["beauty", "(none)", "fashion"]
    assert creators["followers"].tolist() == [1010.0, 500.0, 20000.0]     # latest snapshot
    assert creators["tier"].astype(str).tolist() == ["< 10K", "< 10K", "10K-100K"]
    assert creators["posts"].tolist() == [3, 2, 3]
    assert creators["lives"].tolist() == [1, 1, 1]
    assert creators["shoppable_posts"].tolist() == [2, 1, 2]
    assert creators["views"].tolist() == [6900, 1030, 42000]
    assert creators["post_gmv"].tolist() == pytest.approx([355.75, 19.99, 612 + 1 / 3])
    assert creators["invitations"].tolist() == [2, 1, 2]
    assert creators["answered"].tolist() == [2, 1, 1]
    assert creators["accepted"].tolist() == [1, 0, 1]
    assert creators["posts_promised"].tolist() == [2, 0, 1]
    assert creators["posts_delivered"].tolist() == [2, 0, 0]
    assert creators["campaign_gmv"].tolist() == [250.5, 0.0, 0.0]


def test_group_summary_and_crosstab(tiny_tables):
    creators = summary.creator_summary(tiny_tables)
    by_tier = summary.group_summary(creators, "tier")
    assert list(by_tier.index) == ["< 10K", "10K-100K"]                  # empty tiers left out
    small = by_tier.loc["< 10K"]
    assert small["creators"] == 2 and small["creator_share"] == pytest.approx(2 / 3)
    assert small["posts_per_creator"] == 2.5
    assert small["shoppable_share"] == pytest.approx(3 / 5)
    assert small["acceptance_rate"] == pytest.approx(1 / 3)
    assert small["delivery_rate"] == 1.0
    assert small["campaign_gmv_share"] == 1.0
    assert by_tier.loc["10K-100K", "acceptance_rate"] == 0.5
    assert by_tier.loc["10K-100K", "delivery_rate"] == 0.0
    assert by_tier["creators"].sum() == 3

    crosstab = summary.market_tier_crosstab(creators)
    assert list(crosstab.index) == ["ID", "MY", "GB", "all"]
    assert list(crosstab.columns) == ["< 10K", "10K-100K", "100K-1M", "> 1M", "all"]
    assert crosstab.loc["all", "all"] == 3 and crosstab.loc["GB", "10K-100K"] == 1
    gmv = summary.market_tier_crosstab(creators, "campaign_gmv")
    assert gmv.loc["ID", "< 10K"] == 250.5 and gmv.loc["all", "all"] == 250.5


def test_campaign_summary_and_overview(tiny_tables):
    table = summary.campaign_summary(tiny_tables)
    assert list(table.index) == ["ID", "GB"]                              # pilot-market order
    assert table.loc["ID", "campaigns"] == 1
    assert table.loc["ID", "invitations_per_campaign"] == 3
    assert table.loc["ID", "answer_rate"] == pytest.approx(2 / 3)
    assert table.loc["ID", "acceptance_rate"] == pytest.approx(1 / 3)
    assert table.loc["ID", "selling_share"] == pytest.approx(1 / 3)
    assert table.loc["ID", "gmv"] == 250.5
    assert table.loc["GB", "answer_rate"] == 1.0 and table.loc["GB", "selling_share"] == 0.0
    assert math.isnan(table.loc["GB", "median_commission"])

    overview = summary.table_overview(tiny_tables)
    assert overview["rows"].to_dict() == {"creators": 3, "follower_snapshots": 4, "posts": 8,
                                          "campaigns": 2, "invitations": 5, "campaign_results": 2}
    assert overview.loc["posts", "first"] == pd.Timestamp("2025-01-02T07:45:00Z")
    assert pd.isna(overview.loc["campaign_results", "first"])


def test_tiny_marketplace_is_valid_and_summaries_add_up(tmp_path):
    directory = summary.tiny_marketplace(tmp_path / "data", creators=120, days=150, seed=3)
    assert (directory / "truth" / "expected_gmv.parquet").is_file()
    tables = load_valid_tables(directory)
    creators = summary.creator_summary(tables)
    assert len(creators) == 120
    assert creators["posts"].sum() == len(tables["posts"])
    assert creators["invitations"].sum() == len(tables["invitations"])
    assert creators["campaign_gmv"].sum() == pytest.approx(tables["campaign_results"]["gmv"].sum())
    by_market = summary.group_summary(creators, "market")
    assert by_market["creators"].sum() == 120
    assert by_market["campaign_gmv_share"].sum() == pytest.approx(1.0)
    assert summary.campaign_summary(tables)["campaigns"].sum() == len(tables["campaigns"])
    assert isinstance(summary.plot_creator_distributions(creators), Figure)
    assert isinstance(summary.plot_group_summary(summary.group_summary(creators, "tier")), Figure)


# ------------------------------------------------------------------ fairness


@pytest.fixture
def invitees() -> pd.DataFrame:
    """Two campaigns. With top 1, a1 (score 90) and b1 (the tie at 80 goes to the
    smaller creator_id) are selected."""
    return pd.DataFrame({
        "campaign_id": ["A", "A", "A", "B", "B"],
        "creator_id": ["a1", "a2", "a3", "b2", "b1"],
        "tier": ["small", "big", "small", "small", "big"],
        "score": [90.0, 50.0, 10.0, 80.0, 80.0],
        "gmv": [0.0, 100.0, 50.0, 0.0, 30.0],
    })


def test_selected_in_top_ties_nan_and_small_campaigns(invitees):
    assert review.selected_in_top(invitees, top=1).tolist() == [True, False, False, False, True]
    assert review.selected_in_top(invitees, top=2).tolist() == [True, True, False, True, True]
    assert review.selected_in_top(invitees, top=10).all()
    with_nan = invitees.assign(score=[np.nan, 50.0, 10.0, 80.0, 80.0])
    assert review.selected_in_top(with_nan, top=2).tolist() == [False, True, True, True, True]


def test_fairness_table_by_hand(invitees):
    table = review.fairness_table(invitees, "tier", top=1)
    assert list(table.index) == ["big", "small", "all"]
    small, big, every = table.loc["small"], table.loc["big"], table.loc["all"]
    # small: a1 (selected, no sales), a3 (50), b2 (no sales)
    assert small["invitees"] == 3 and small["invitee_share"] == pytest.approx(0.6)
    assert small["mean_score"] == pytest.approx(60.0)
    assert small["selected"] == 1 and small["selection_rate"] == pytest.approx(1 / 3)
    assert small["selected_share"] == pytest.approx(0.5)
    assert small["sellers_rate"] == pytest.approx(1 / 3)
    assert small["gmv"] == 50.0 and small["gmv_share"] == pytest.approx(50 / 180)
    assert small["gmv_per_invitee"] == pytest.approx(50 / 3)
    assert small["selection_vs_gmv"] == pytest.approx(0.5 / (50 / 180))   # 1.8: over-selected
    assert small["gmv_captured"] == 0.0                                    # its seller a3 missed
    # big: a2 (100, not selected), b1 (30, selected)
    assert big["invitees"] == 2 and big["mean_score"] == pytest.approx(65.0)
    assert big["selection_rate"] == 0.5 and big["sellers_rate"] == 1.0
    assert big["gmv_share"] == pytest.approx(130 / 180)
    assert big["selection_vs_gmv"] == pytest.approx(0.5 / (130 / 180))     # 0.69: under-selected
    assert big["gmv_captured"] == pytest.approx(30 / 130)
    assert every["invitees"] == 5 and every["selected"] == 2
    assert every["selection_rate"] == pytest.approx(0.4)
    assert every["mean_score"] == pytest.approx(62.0)
    assert every["selection_vs_gmv"] == pytest.approx(1.0)
    assert every["gmv_captured"] == pytest.approx(30 / 180)
    # Ranking by another column changes the selection, not the mean score.
    by_gmv = review.fairness_table(invitees, "tier", rank_by="gmv", top=1)
    assert by_gmv.loc["big", "gmv_captured"] == 1.0 and by_gmv.loc["small", "selected"] == 0
    assert by_gmv.loc["small", "mean_score"] == pytest.approx(60.0)
    assert isinstance(review.plot_fairness(table), Figure)


def test_creator_groups(tiny_tables):
    pairs = pd.DataFrame({
        "campaign_id": ["k1", "k1", "k1"],
        "creator_id": ["00123", "c2", "c3"],
        "gmv": [1.0, 0.0, 0.0],
        "log_followers": np.log1p([9_000.0, 0.0, 50_000.0]),
        "log_gmv_per_shoppable_post_all": [0.5, np.nan, 0.0],
    })
    groups = review.creator_groups(pairs, tiny_tables)
    assert groups["follower_tier"].astype(str).tolist() == ["< 10K", "< 10K", "10K-100K"]
    assert groups["market"].tolist() == ["ID", "MY", "GB"]
    assert groups["category"].tolist() == ["beauty", "(none)", "fashion"]
    assert groups["past_sales"].astype(str).tolist() == ["sold before", "never sold", "never sold"]
    tables = review.fairness_tables(groups.assign(score=[3.0, 2.0, 1.0]), top=1)
    assert set(tables) == set(review.GROUP_COLUMNS)
    assert tables["past_sales"].loc["sold before", "gmv_share"] == 1.0


def test_score_distribution_by_hand():
    pairs = pd.DataFrame({"score": [5.0, 15.0, 95.0, 95.0, 100.0],
                          "gmv": [0.0, 10.0, 0.0, 5.0, 0.0]})
    table = review.score_distribution(pairs)
    assert len(table) == 10 and table["pairs"].sum() == 5
    top = table.iloc[-1]
    assert top["pairs"] == 3 and top["sold_rate"] == pytest.approx(1 / 3)
    assert top["share_of_sold"] == 0.5 and top["share_of_no_sales"] == pytest.approx(2 / 3)
    assert table["share_of_sold"].sum() == pytest.approx(1.0)
    assert table.iloc[0]["share_of_no_sales"] == pytest.approx(1 / 3)
    assert isinstance(review.plot_score_distribution(pairs), Figure)


# ------------------------------------------------------------------ run metrics


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
    runs = review.tidy_run_metrics(_records())
    assert len(runs) == 8                        # test ranking metrics only
    assert runs["run_id"].iloc[0] == "new"       # newest first
    row = runs[(runs["run_id"] == "new") & (runs["scorer"] == "past_gmv") & (runs["k"] == 5)]
    assert row[["metric", "value", "test_queries"]].iloc[0].tolist() == ["ndcg", 0.3, 12.0]
    assert review.latest_run_id(runs) == "new"

    metrics = review.run_metrics(runs)
    assert list(metrics.index) == ["model", "past_gmv", "oracle"]
    assert list(metrics.columns) == ["ndcg@5", "ndcg@10", "gmv_capture@10"]
    assert metrics.loc["model", "gmv_capture@10"] == 0.8
    assert math.isnan(metrics.loc["oracle", "ndcg@5"])
    assert review.run_metrics(runs, "old").loc["past_gmv", "ndcg@10"] == 0.2

    curves = review.metric_curves(runs, "ndcg")
    assert list(curves.index) == [5, 10] and list(curves.columns) == ["model", "past_gmv", "oracle"]
    assert curves.loc[10, "model"] == 0.5

    overview = review.runs_overview(runs, "ndcg", 10)
    assert list(overview.index) == ["new", "old"]
    assert overview.loc["old", "model"] == 0.1 and overview.loc["new", "oracle"] == 0.7
    assert list(overview.columns[:3]) == ["start_time", "objective", "test_queries"]
    assert isinstance(review.plot_metric_curves(curves), Figure)
    with pytest.raises(ValueError):
        review.latest_run_id(runs.iloc[:0])


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """A small simulated marketplace, trained twice into an SQLite store."""
    root = tmp_path_factory.mktemp("review")
    data = summary.tiny_marketplace(root / "data", creators=400, days=200, seed=11)
    uri = f"sqlite:///{root}/mlflow.db"
    before = mlflow.get_tracking_uri()
    first = review.quick_experiment(data, uri, "review-test")
    second = review.quick_experiment(data, uri, "review-test")
    mlflow.set_tracking_uri(before)
    return {"root": root, "data": data, "uri": uri, "first": first, "second": second,
            "tables": load_valid_tables(data)}


def test_latest_runs_from_mlflow(logged):
    uri = logged["uri"]
    runs = review.latest_runs(uri, "review-test")
    assert runs["run_id"].nunique() == 2
    assert review.latest_run_id(runs) == logged["second"].run_id
    assert set(runs["scorer"]) == {"model", "followers", "engagement_rate", "past_gmv",
                                   "random", "pointwise", "oracle"}          # truth was found
    assert set(runs["k"]) == {5, 10, 20} and runs["value"].between(0, 1).all()
    assert review.latest_runs(uri, "no-such-experiment").empty
    assert len(review.latest_runs(uri, "review-test", n=1)["run_id"].unique()) == 1
    # Same data, same seed: the two runs agree.
    overview = review.runs_overview(runs)
    assert overview["model"].nunique() == 1

    run_id = logged["second"].run_id
    assert review.run_model_uri(uri, run_id) == logged["second"].model_uri
    assert review.latest_model_uri(uri, "review-test") == logged["second"].model_uri
    cfg = review.run_config(uri, run_id)
    assert cfg == review.quick_config()
    curves = review.validation_curves(uri, run_id)
    assert list(curves.columns) == ["lambdarank"] and curves.index[0] == 1
    assert len(curves) <= cfg.max_rounds
    assert not (logged["root"] / "mlruns").exists()      # artifacts beside the database


def test_scored_test_pairs_and_family_summary(logged):
    uri, run_id = logged["uri"], logged["second"].run_id
    scorer = review.load_run_scorer(uri, logged["second"].model_uri)
    cfg = review.run_config(uri, run_id)
    pairs = review.scored_test_pairs(logged["tables"], scorer, cfg)
    runs = review.latest_runs(uri, "review-test")
    test_queries = runs.loc[runs["run_id"] == run_id, "test_queries"].iloc[0]
    scorable = pairs.groupby("campaign_id")["gmv"].agg(["size", "sum"])
    assert ((scorable["size"] >= 2) & (scorable["sum"] > 0)).sum() == test_queries
    assert pairs["score"].between(0, 100).all()
    np.testing.assert_allclose(pairs["score"], scorer.score(pairs["raw_score"].to_numpy()))
    families = review.family_summary(scorer, pairs)
    assert list(families.index) == [*FAMILIES, "other"]
    assert families["gain_share"].sum() == pytest.approx(1.0)
    assert families["contribution_share"].sum() == pytest.approx(1.0)
    assert isinstance(review.plot_family_summary(families), Figure)
    groups = review.creator_groups(pairs, logged["tables"])
    table = review.fairness_table(groups, "follower_tier")
    assert table.loc["all", "invitees"] == len(pairs)
    assert table.drop(index="all")["invitees"].sum() == len(pairs)
    assert table.drop(index="all")["gmv_share"].sum() == pytest.approx(1.0)


# ------------------------------------------------------------------ waterfall


def _tiny_scorer() -> Scorer:
    rng = np.random.default_rng(0)
    x = rng.random((200, len(FEATURE_NAMES)))
    data = lgb.Dataset(x, label=x[:, 0] + x[:, 40] + 0.1 * rng.random(200),
                       feature_name=list(FEATURE_NAMES))
    booster = lgb.train({"objective": "regression", "verbosity": -1, "num_threads": 1,
                         "min_data_in_leaf": 5}, data, num_boost_round=10)
    return Scorer(booster, {"raw": [0.0, 2.0], "score": [0.0, 100.0]}, 0.1)


def test_waterfall_adds_up_to_raw_score():
    scorer = _tiny_scorer()
    features = pd.DataFrame(np.random.default_rng(1).random((5, len(FEATURE_NAMES))),
                            columns=list(FEATURE_NAMES))
    explained = scorer.explain(features)
    for _, row in explained.iterrows():
        for sort in (False, True):
            steps = explain.waterfall(row, sort=sort)
            assert steps.index[0] == "base" and steps.index[-1] == "raw_score"
            assert set(steps.index[1:-1]) == {*FAMILIES, "other"}
            assert steps.loc["base", "end"] == pytest.approx(row["contrib_base"])
            # Each step starts where the previous one ended, and the last family ends at
            # raw_score.
            np.testing.assert_allclose(steps["start"].iloc[1:-1], steps["end"].iloc[:-2])
            assert steps["end"].iloc[-2] == pytest.approx(row["raw_score"], abs=1e-9)
            assert steps.loc["raw_score", "end"] == row["raw_score"]
            assert steps["contribution"].iloc[:-1].sum() == pytest.approx(row["raw_score"])
        by_size = explain.waterfall(row, sort=True)["contribution"].iloc[1:-1].abs()
        assert by_size.is_monotonic_decreasing


def test_waterfall_carries_indices_and_rejects_broken_rows():
    row = pd.Series({**{c: 0.0 for c in CONTRIB_COLUMNS},
                     "contrib_base": 1.0, "contrib_sales": 0.5, "contrib_growth": -0.25,
                     "contrib_other": 0.1, "raw_score": 1.35, "sales_index": 91.0,
                     "growth_index": np.nan})
    steps = explain.waterfall(row)
    assert list(steps.index) == ["base", *FAMILIES, "other", "raw_score"]
    assert steps.loc["sales", ["start", "end", "index"]].tolist() == [1.0, 1.5, 91.0]
    assert steps.loc["growth", ["start", "end"]].tolist() == [1.5, 1.25]
    assert math.isnan(steps.loc["growth", "index"]) and math.isnan(steps.loc["other", "index"])
    assert steps.loc["raw_score", ["start", "end"]].tolist() == [0.0, 1.35]
    fig = explain.plot_waterfall(steps, title="c1")
    assert isinstance(fig, Figure) and len(fig.axes[0].patches) == len(steps)
    broken = row.copy()
    broken["raw_score"] = 2.0
    with pytest.raises(ValueError, match="add up"):
        explain.waterfall(broken)


def test_example_brief_partner_view_and_creator_row(tiny_tables):
    brief = explain.example_brief(tiny_tables, top_k=5)
    checked = check_briefs(brief)
    assert checked.loc[0, ["brief_id", "market", "category", "top_k"]].tolist() == [
        "gb-fashion", "GB", "fashion", 5]
    assert checked.loc[0, "as_of"] == pd.Timestamp("2025-01-08", tz="UTC")  # after the last post
    assert explain.example_brief(tiny_tables, market="ID")["category"].iloc[0] == "beauty"

    partners = pd.DataFrame({c: [0.0, 0.0, 0.0] for c in PARTNER_COLUMNS})
    partners = partners.assign(brief_id=["b1", "b1", "b2"], creator_id=["x", "y", "z"],
                               rank=[1, 2, 1], score=[97.4, 80.6, 50.0],
                               reasons=["Sells well", "Posts steadily", "-"],
                               model_version="m")
    view = explain.partner_view(partners)
    assert list(view.index) == [1, 2] and view["score"].tolist() == [97.0, 81.0]
    assert list(view.columns) == ["creator_id", "score", *FAMILIES, "reasons"]
    assert explain.creator_row(partners, rank=2)["creator_id"] == "y"
    assert explain.creator_row(partners, "b2")["creator_id"] == "z"
    assert explain.creator_row(partners, "b1", creator_id="y")["rank"] == 2
    with pytest.raises(KeyError):
        explain.creator_row(partners, "b1", rank=3)
