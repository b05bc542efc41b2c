"""marketplace.summary: the tables, creators and campaigns of a marketplace summarised.

The tiny tables of conftest for the numbers (checked by hand); one tiny simulated
marketplace for the sums.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest
from matplotlib.figure import Figure

from marketplace import summary
from marketplace.validate import load_valid_tables


def test_creator_summary_counts_the_tiny_tables(tiny_tables):
    creators = summary.creator_summary(tiny_tables)
    assert list(creators.index) == ["00123", "c2", "c3"]
    assert creators["market"].tolist() == ["ID", "MY", "GB"]
    assert creators["category"].tolist() == ["beauty", "(none)", "fashion"]
    assert creators["followers"].tolist() == [1010.0, 500.0, 20000.0]  # latest snapshot
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
    assert list(by_tier.index) == ["< 10K", "10K-100K"]  # empty tiers left out
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
    assert list(table.index) == ["ID", "GB"]  # pilot-market order
    assert table.loc["ID", "campaigns"] == 1
    assert table.loc["ID", "invitations_per_campaign"] == 3
    assert table.loc["ID", "answer_rate"] == pytest.approx(2 / 3)
    assert table.loc["ID", "acceptance_rate"] == pytest.approx(1 / 3)
    assert table.loc["ID", "selling_share"] == pytest.approx(1 / 3)
    assert table.loc["ID", "gmv"] == 250.5
    assert table.loc["GB", "answer_rate"] == 1.0 and table.loc["GB", "selling_share"] == 0.0
    assert math.isnan(table.loc["GB", "median_commission"])

    overview = summary.table_overview(tiny_tables)
    assert overview["rows"].to_dict() == {
        "creators": 3,
        "follower_snapshots": 4,
        "posts": 8,
        "campaigns": 2,
        "invitations": 5,
        "campaign_results": 2,
    }
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
