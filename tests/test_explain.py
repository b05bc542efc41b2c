"""serving.explain: the waterfall of a creator's family contributions, and the helpers
that pick a brief and read its partner list."""

from __future__ import annotations

import math

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from features.registry import FAMILIES, FEATURE_NAMES
from serving import explain
from serving.briefs import check_briefs
from serving.partner_list import PARTNER_COLUMNS
from training.model import CONTRIB_COLUMNS, Scorer


def _tiny_scorer() -> Scorer:
    rng = np.random.default_rng(0)
    x = rng.random((200, len(FEATURE_NAMES)))
    data = lgb.Dataset(
        x, label=x[:, 0] + x[:, 40] + 0.1 * rng.random(200), feature_name=list(FEATURE_NAMES)
    )
    booster = lgb.train(
        {"objective": "regression", "verbosity": -1, "num_threads": 1, "min_data_in_leaf": 5},
        data,
        num_boost_round=10,
    )
    return Scorer(booster, {"raw": [0.0, 2.0], "score": [0.0, 100.0]}, 0.1)


def test_waterfall_adds_up_to_raw_score():
    scorer = _tiny_scorer()
    features = pd.DataFrame(
        np.random.default_rng(1).random((5, len(FEATURE_NAMES))), columns=list(FEATURE_NAMES)
    )
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
    row = pd.Series(
        {
            **{c: 0.0 for c in CONTRIB_COLUMNS},
            "contrib_base": 1.0,
            "contrib_sales": 0.5,
            "contrib_growth": -0.25,
            "contrib_other": 0.1,
            "raw_score": 1.35,
            "sales_index": 91.0,
            "growth_index": np.nan,
        }
    )
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
        "gb-fashion",
        "GB",
        "fashion",
        5,
    ]
    assert checked.loc[0, "as_of"] == pd.Timestamp("2025-01-08", tz="UTC")  # after the last post
    assert explain.example_brief(tiny_tables, market="ID")["category"].iloc[0] == "beauty"

    partners = pd.DataFrame({c: [0.0, 0.0, 0.0] for c in PARTNER_COLUMNS})
    partners = partners.assign(
        brief_id=["b1", "b1", "b2"],
        creator_id=["x", "y", "z"],
        rank=[1, 2, 1],
        score=[97.4, 80.6, 50.0],
        reasons=["Sells well", "Posts steadily", "-"],
        model_version="m",
    )
    view = explain.partner_view(partners)
    assert list(view.index) == [1, 2] and view["score"].tolist() == [97.0, 81.0]
    assert list(view.columns) == ["creator_id", "score", *FAMILIES, "reasons"]
    assert explain.creator_row(partners, rank=2)["creator_id"] == "y"
    assert explain.creator_row(partners, "b2")["creator_id"] == "z"
    assert explain.creator_row(partners, "b1", creator_id="y")["rank"] == 2
    with pytest.raises(KeyError):
        explain.creator_row(partners, "b1", rank=3)
