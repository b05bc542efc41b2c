"""The feature builder: hand-computed values, the point-in-time rule, indices, registry."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from commands.features import main as features_main
from features.build import build_features
from features.indices import family_indices, index_name
from features.pairs import training_pairs
from features.registry import FAMILIES, FEATURE_NAMES, FEATURES, registry_frame
from marketplace.io import write_tables
from tests.conftest import DAY, ids, times

AS_OF = pd.Timestamp("2025-06-01", tz="UTC")


def hand_tables() -> dict[str, pd.DataFrame]:
    """Creator a posts 4 times and was invited twice before; b has no history at all."""
    posts = pd.DataFrame(
        {
            "post_id": ids("p1", "p2", "p3", "p4"),
            "creator_id": ids("a", "a", "a", "a"),
            "posted_at": times(AS_OF - 100 * DAY, AS_OF - 20 * DAY, AS_OF - 10 * DAY, AS_OF - DAY),
            "format": ids("video", "video", "live", "video"),
            "category": ids("beauty", "beauty", "beauty", "food"),
            "is_shoppable": np.array([False, False, True, True]),
            "views": np.array([500, 3000, 1000, 999_999]),
            "likes": np.array([50, 200, 100, 99_999]),
            "comments": np.array([5, 20, 10, 9_999]),
            "shares": np.array([1, 10, 5, 9_999]),
            "orders": np.array([0, 0, 2, 999]),
            "gmv": np.array([0.0, 0.0, 40.0, 99_999.0]),
        }
    )
    campaigns = pd.DataFrame(
        {
            "campaign_id": ids("old", "late", "now"),
            "brand_id": ids("x", "x", "y"),
            "market": ids("GB", "GB", "GB"),
            "category": ids("beauty", "beauty", "beauty"),
            "created_at": times(AS_OF - 60 * DAY, AS_OF - 5 * DAY, AS_OF),
            "start_at": times(AS_OF - 55 * DAY, AS_OF + 2 * DAY, AS_OF + DAY),
            "end_at": times(AS_OF - 30 * DAY, AS_OF + 20 * DAY, AS_OF + 30 * DAY),
            "commission_rate": np.array([0.1, 0.2, 0.15]),
        }
    )
    invitations = pd.DataFrame(
        {
            "campaign_id": ids("old", "late", "now", "now"),
            "creator_id": ids("a", "a", "a", "b"),
            "invited_at": times(AS_OF - 60 * DAY, AS_OF - 5 * DAY, AS_OF, AS_OF),
            "response": ids("accepted", "no_response", "accepted", "declined"),
            "responded_at": times(
                AS_OF - 60 * DAY + pd.Timedelta(hours=5), pd.NaT, AS_OF + DAY, AS_OF + DAY
            ),
            "posts_promised": pd.array([2, None, 1, None], dtype="Int64"),
            "posts_delivered": pd.array([1, None, 1, None], dtype="Int64"),
        }
    )
    return {
        "creators": pd.DataFrame(
            {
                "creator_id": ids("a", "b"),
                "market": ids("GB", "GB"),
                "joined_at": times(AS_OF - 200 * DAY, AS_OF - 3 * DAY),
                "primary_category": ids("beauty", None),
            }
        ),
        "follower_snapshots": pd.DataFrame(
            {
                "creator_id": ids("a", "a", "a"),
                "snapshot_date": times(AS_OF - 95 * DAY, AS_OF - 2 * DAY, AS_OF),
                "followers": np.array([800, 1000, 5000]),
            }
        ),
        "posts": posts,
        "campaigns": campaigns,
        "invitations": invitations,
        "campaign_results": pd.DataFrame(
            {
                "campaign_id": ids("old", "now"),
                "creator_id": ids("a", "a"),
                "gmv": np.array([100.0, 7777.0]),
                "orders": np.array([3, 99]),
            }
        ),
    }


@pytest.fixture(scope="module")
def hand():
    tables = hand_tables()
    requests = pd.DataFrame(
        {
            "creator_id": ids("a", "b", "a", "ghost"),
            "as_of": times(AS_OF, AS_OF, AS_OF, AS_OF),
            "category": ids("beauty", "beauty", "toys", "beauty"),
            "commission_rate": [0.15, 0.15, 0.15, np.nan],
        }
    )
    return build_features(tables, requests)


def test_registry_matches_the_builder(hand):
    assert list(hand.columns) == list(FEATURE_NAMES)
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
    assert {f.family for f in FEATURES} == set(FAMILIES) | {"other"}
    assert all(f.direction in (-1, 0, 1) and f.description for f in FEATURES)
    assert all(dtype == np.float64 for dtype in hand.dtypes)
    assert list(registry_frame().columns) == ["name", "family", "direction", "description"]


def test_posts_features_by_hand(hand):
    a = hand.iloc[0]
    # Posted in the last 30 days: 20, 10 and 1 days ago; measured (7+ days old): 20 and 10.
    assert a["posts_per_week_30d"] == pytest.approx(3 / (30 / 7))
    assert a["views_per_follower_30d"] == pytest.approx(2000 / 1000)  # snapshot 2 days ago
    assert a["log_views_per_post_90d"] == pytest.approx(math.log1p(2000))
    assert a["log_views_per_post_180d"] == pytest.approx(math.log1p(4500 / 3))
    assert a["likes_per_view_90d"] == pytest.approx(300 / 4000)
    assert a["comments_per_like_90d"] == pytest.approx(30 / 300)
    assert a["engagement_per_view_180d"] == pytest.approx((350 + 35 + 16) / 4500)
    assert a["days_since_last_post"] == pytest.approx(1.0)
    assert a["history_days"] == pytest.approx(100.0)
    assert a["tenure_days"] == pytest.approx(200.0)
    assert a["shoppable_share_90d"] == pytest.approx(2 / 3)
    assert a["lives_per_week_90d"] == pytest.approx(1 / (90 / 7))
    assert a["gpm_90d"] == pytest.approx(1000 * 40 / (1000 + 2000))
    assert a["log_gmv_per_shoppable_post_90d"] == pytest.approx(math.log1p(40))
    assert a["log_gmv_90d"] == pytest.approx(math.log1p(40))
    # Gaps in the last 90 days: 10 and 9 days -> mean 9.5, sd 0.5.
    assert a["gap_cv_90d"] == pytest.approx(0.5 / 9.5)
    assert a["active_week_share_90d"] <= 3 / (90 / 7) + 1e-12
    assert a["log_followers"] == pytest.approx(math.log1p(1000))
    assert a["follower_growth_90d"] == pytest.approx(math.log1p(1000) - math.log1p(800))
    assert a["commission_rate"] == 0.15
    # Conversion: 2 orders on 1,000 shoppable views (the 999,999-view post is unmeasured).
    assert a["orders_per_1k_views_90d"] == pytest.approx(1000 * 2 / (1000 + 2000))
    # 4 posts in 4 different weeks of the last 26: the share against a random poster's.
    rate = 4 / (180 / 7)
    assert a["active_week_share_180d"] == pytest.approx(rate)
    assert a["active_week_ratio_180d"] == pytest.approx(rate / -math.expm1(-rate))
    # Two known snapshots (800 -> 1000): growth, but no trend yet to judge a jump against.
    assert a["organic_follower_growth_90d"] == pytest.approx(
        math.log1p(1000) - math.log1p(800), abs=1e-6
    )
    assert math.isnan(a["follower_jump_all"])
    # Followers +22 %, views per post x4 (500 -> 2,000): the views match the growth.
    assert a["followers_without_views_90d"] == 0.0


def snapshot_tables(followers: list[int]) -> dict[str, pd.DataFrame]:
    """hand_tables with creator a's weekly snapshots replaced by ``followers``, the last
    one taken 7 days before AS_OF."""
    tables = hand_tables()
    n = len(followers)
    tables["follower_snapshots"] = pd.DataFrame(
        {
            "creator_id": ids(*["a"] * n),
            "snapshot_date": times(*[AS_OF - (7 + 7 * (n - 1 - k)) * DAY for k in range(n)]),
            "followers": np.array(followers),
        }
    )
    return tables


def growth_features(followers: list[int]) -> pd.Series:
    requests = pd.DataFrame(
        {"creator_id": ids("a"), "as_of": times(AS_OF), "category": ids("beauty")}
    )
    return build_features(snapshot_tables(followers), requests).iloc[0]


def test_steady_fast_growth_is_no_jump():
    # 8 % a week for 20 weeks, smoothly: fast growth, nothing bought.
    steady = growth_features([round(1000 * 1.08**k) for k in range(20)])
    assert steady["follower_jump_all"] == 0.0
    assert steady["follower_jump_180d"] == 0.0
    assert steady["organic_follower_growth_90d"] == pytest.approx(
        steady["follower_growth_90d"], abs=1e-5
    )


def test_bought_followers_are_a_jump_and_leave_organic_growth():
    # 1 % a week, then 3,000 followers bought in one week (4 weeks before the last snapshot).
    followers = [round(1000 * 1.01**k) for k in range(16)]
    followers[-4:] = [f + 3000 for f in followers[-4:]]
    row = growth_features(followers)
    log_f = np.log1p(np.array(followers, float))
    step = np.diff(log_f)  # weekly steps
    jump_at = len(followers) - 4 - 1  # the step into the first bought snapshot
    expected_jump = step[jump_at] - step[jump_at - 3 : jump_at].mean()
    assert row["follower_jump_all"] == pytest.approx(expected_jump - math.log(1.1), rel=1e-9)
    assert row["follower_jump_180d"] == row["follower_jump_all"]
    # Organic growth counts the jump only up to trend + 10 %: near 13 weeks of 1 %.
    assert row["follower_growth_90d"] > 1.0
    assert row["organic_follower_growth_90d"] == pytest.approx(
        row["follower_growth_90d"] - (expected_jump - math.log(1.1)), abs=1e-5
    )
    assert row["organic_follower_growth_90d"] < 0.25


def test_category_features_by_hand(hand):
    beauty, toys = hand.iloc[0], hand.iloc[2]
    assert beauty["category_post_share_all"] == pytest.approx(3 / 4)  # the unmeasured post counts
    assert beauty["category_view_share_all"] == pytest.approx(1.0)  # food post not measured
    assert beauty["category_gpm_all"] == pytest.approx(1000 * 40 / 3000)
    assert beauty["declared_category_match"] == 1.0
    # A category never posted in: shares and GPM are 0, not missing.
    assert toys["category_post_share_all"] == 0.0
    assert toys["category_gpm_all"] == 0.0
    assert toys["declared_category_match"] == 0.0


def test_cooperation_features_by_hand(hand):
    a = hand.iloc[0]
    # Known before as_of: 'old' (accepted after 5 h, delivered 1 of 2, gmv 100). 'late' is
    # silent but its campaign starts after as_of; 'now' is the campaign itself.
    assert a["past_invitations"] == 1
    assert a["answer_rate"] == pytest.approx((1 + 1) / (1 + 2))
    assert a["acceptance_rate"] == pytest.approx((1 + 0.5) / (1 + 2))
    assert a["response_hours"] == pytest.approx(5.0)
    assert a["delivery_rate"] == pytest.approx((1 + 1) / (2 + 2))
    assert a["campaigns_delivered"] == 1
    assert a["log_campaign_gmv_per_delivered_post"] == pytest.approx(math.log1p(100 / 2))


@pytest.mark.parametrize("row", [1, 3], ids=["never-posted-never-invited", "unknown-creator"])
def test_empty_history(hand, row):
    b = hand.iloc[row]
    assert b["past_invitations"] == 0
    assert b["answer_rate"] == pytest.approx(0.5) and b["acceptance_rate"] == pytest.approx(0.25)
    assert b["delivery_rate"] == pytest.approx(0.5)
    assert math.isnan(b["response_hours"])
    for name in (
        "views_per_follower_90d",
        "likes_per_view_90d",
        "gap_cv_180d",
        "days_since_last_post",
        "shoppable_share_all",
        "follower_growth_30d",
        "category_post_share_all",
        "comments_per_like_all",
    ):
        assert math.isnan(b[name]), name
    for name in ("posts_per_week_90d", "log_followers", "log_gmv_90d", "gpm_all"):
        assert b[name] == 0.0, name


def test_missing_request_column_is_a_one_line_error():
    with pytest.raises(ValueError, match="missing column.*category"):
        build_features(hand_tables(), pd.DataFrame({"creator_id": ids("a"), "as_of": times(AS_OF)}))


def test_same_input_same_bits(small_market):
    small_tables = small_market[0]
    first = training_pairs(small_tables)
    second = training_pairs(small_tables)
    pd.testing.assert_frame_equal(first, second, check_exact=True)
    assert list(first.columns[:4]) == ["campaign_id", "creator_id", "created_at", "gmv"]
    assert len(first) == len(small_tables["invitations"])


def test_indices_rank_peers_within_groups():
    features = build_features(*_two_peers())
    indices = family_indices(features, ["q", "q", "r"])
    assert list(indices.columns) == [index_name(f) for f in FAMILIES]
    # a posts more often than b: its volume comes first.
    assert indices.loc[0, "volume_index"] > indices.loc[1, "volume_index"]
    # b has one post: too little history for diligence (3 posts in 180 days).
    assert math.isnan(indices.loc[1, "diligence_index"])
    # A lone peer sits at the middle.
    assert indices.loc[2, "volume_index"] == 50.0
    values = indices.to_numpy()[~np.isnan(indices.to_numpy())]
    assert ((values > 0) & (values < 100)).all()


def _two_peers():
    tables = hand_tables()
    extra = (
        tables["posts"]
        .iloc[[1]]
        .reset_index(drop=True)
        .assign(post_id=ids("b1"), creator_id=ids("b"), posted_at=times(AS_OF - 40 * DAY))
    )
    tables["posts"] = pd.concat([tables["posts"], extra], ignore_index=True)
    tables["creators"]["joined_at"] = times(AS_OF - 200 * DAY, AS_OF - 200 * DAY)
    requests = pd.DataFrame(
        {
            "creator_id": ids("a", "b", "a"),
            "as_of": times(AS_OF, AS_OF, AS_OF),
            "category": ids("beauty", "beauty", "beauty"),
        }
    )
    return tables, requests


def test_indices_are_null_without_history(hand):
    indices = family_indices(hand, ["q"] * len(hand))
    b = indices.iloc[1]
    assert b.isna().all()
    assert (
        indices.iloc[0][["cooperation_index", "sales_index", "volume_index", "consistency_index"]]
        .notna()
        .all()
    )


def test_command_writes_the_pair_table(tmp_path, small_market):
    small_tables = small_market[0]
    write_tables(small_tables, tmp_path / "data")
    out = tmp_path / "pairs.parquet"
    assert features_main([str(tmp_path / "data"), "--out", str(out)]) == 0
    written = pd.read_parquet(out)
    assert list(written.columns) == [
        "campaign_id",
        "creator_id",
        "created_at",
        "gmv",
        *FEATURE_NAMES,
    ]
    assert len(written) == len(small_tables["invitations"])


def test_command_stops_on_invalid_data(tmp_path, capsys):
    tables = hand_tables()
    tables["posts"].loc[0, "views"] = -1
    write_tables(tables, tmp_path / "data")
    out = tmp_path / "pairs.parquet"
    assert features_main([str(tmp_path / "data"), "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert "posts.views" in captured.out and "error:" in captured.err
    assert not out.exists()
