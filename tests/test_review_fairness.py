"""review.fairness: selection against realised gmv by creator group, on hand-made frames
checked by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from review import fairness, plots


@pytest.fixture
def invitees() -> pd.DataFrame:
    """Two campaigns. With top 1, a1 (score 90) and b1 (the tie at 80 goes to the
    smaller creator_id) are selected."""
    return pd.DataFrame(
        {
            "campaign_id": ["A", "A", "A", "B", "B"],
            "creator_id": ["a1", "a2", "a3", "b2", "b1"],
            "tier": ["small", "big", "small", "small", "big"],
            "score": [90.0, 50.0, 10.0, 80.0, 80.0],
            "gmv": [0.0, 100.0, 50.0, 0.0, 30.0],
        }
    )


def test_selected_in_top_ties_nan_and_small_campaigns(invitees):
    assert fairness.selected_in_top(invitees, top=1).tolist() == [True, False, False, False, True]
    assert fairness.selected_in_top(invitees, top=2).tolist() == [True, True, False, True, True]
    assert fairness.selected_in_top(invitees, top=10).all()
    with_nan = invitees.assign(score=[np.nan, 50.0, 10.0, 80.0, 80.0])
    assert fairness.selected_in_top(with_nan, top=2).tolist() == [False, True, True, True, True]


def test_fairness_table_by_hand(invitees):
    table = fairness.fairness_table(invitees, "tier", top=1)
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
    assert small["selection_vs_gmv"] == pytest.approx(0.5 / (50 / 180))  # 1.8: over-selected
    assert small["gmv_captured"] == 0.0  # its seller a3 missed
    # big: a2 (100, not selected), b1 (30, selected)
    assert big["invitees"] == 2 and big["mean_score"] == pytest.approx(65.0)
    assert big["selection_rate"] == 0.5 and big["sellers_rate"] == 1.0
    assert big["gmv_share"] == pytest.approx(130 / 180)
    assert big["selection_vs_gmv"] == pytest.approx(0.5 / (130 / 180))  # 0.69: under-selected
    assert big["gmv_captured"] == pytest.approx(30 / 130)
    assert every["invitees"] == 5 and every["selected"] == 2
    assert every["selection_rate"] == pytest.approx(0.4)
    assert every["mean_score"] == pytest.approx(62.0)
    assert every["selection_vs_gmv"] == pytest.approx(1.0)
    assert every["gmv_captured"] == pytest.approx(30 / 180)
    # Ranking by another column changes the selection, not the mean score.
    by_gmv = fairness.fairness_table(invitees, "tier", rank_by="gmv", top=1)
    assert by_gmv.loc["big", "gmv_captured"] == 1.0 and by_gmv.loc["small", "selected"] == 0
    assert by_gmv.loc["small", "mean_score"] == pytest.approx(60.0)
    assert isinstance(plots.plot_fairness(table), Figure)


def test_creator_groups(tiny_tables):
    pairs = pd.DataFrame(
        {
            "campaign_id": ["k1", "k1", "k1"],
            "creator_id": ["00123", "c2", "c3"],
            "gmv": [1.0, 0.0, 0.0],
            "log_followers": np.log1p([9_000.0, 0.0, 50_000.0]),
            "log_gmv_per_shoppable_post_all": [0.5, np.nan, 0.0],
        }
    )
    groups = fairness.creator_groups(pairs, tiny_tables)
    assert groups["follower_tier"].astype(str).tolist() == ["< 10K", "< 10K", "10K-100K"]
    assert groups["market"].tolist() == ["ID", "MY", "GB"]
    assert groups["category"].tolist() == ["beauty", "(none)", "fashion"]
    assert groups["past_sales"].astype(str).tolist() == ["sold before", "never sold", "never sold"]
    tables = fairness.fairness_tables(groups.assign(score=[3.0, 2.0, 1.0]), top=1)
    assert set(tables) == set(fairness.GROUP_COLUMNS)
    assert tables["past_sales"].loc["sold before", "gmv_share"] == 1.0
