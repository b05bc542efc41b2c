"""features.candidates: the candidate rule on hand-made tables, at each of its edges, and
those tables scored end to end."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.build import build_features
from features.candidates import find_candidates
from marketplace.contract import TIMESTAMP_DTYPE
from serving.briefs import check_briefs
from serving.partner_list import (
    partner_lists,
)
from tests.conftest import DAY, ids, times

AS_OF = pd.Timestamp("2025-06-01T00:00:00Z")


def hand_tables() -> dict[str, pd.DataFrame]:
    """GB creators a..f and MY creator d, each testing one edge of the candidate rule."""
    second = pd.Timedelta(seconds=1)
    post_times = {
        "a": AS_OF - 90 * DAY,  # exactly 90 days before: counts
        "b": AS_OF,  # at as_of: does not count ...
        "b2": AS_OF - 90 * DAY - second,  # ... nor one second before the window
        "c": AS_OF - 10 * DAY,  # recent, but only 500 followers
        "d": AS_OF - DAY,  # recent, but market MY
        "e": AS_OF - pd.Timedelta(microseconds=1),  # just before as_of: counts
        "f": AS_OF - 5 * DAY,  # recent; today's snapshot is not known yet
    }
    creators = ["a", "b", "c", "d", "e", "f"]
    posts = pd.DataFrame(
        {
            "post_id": ids(*[f"p_{k}" for k in post_times]),
            "creator_id": ids(*[k[0] for k in post_times]),
            "posted_at": times(*post_times.values()),
            "format": ids(*["video"] * len(post_times)),
            "category": ids(*["beauty"] * len(post_times)),
            "is_shoppable": np.ones(len(post_times), bool),
            **{
                c: np.full(len(post_times), 100, np.int64)
                for c in ("views", "likes", "comments", "shares", "orders")
            },
            "gmv": np.full(len(post_times), 50.0),
        }
    )
    snapshots = pd.DataFrame(
        {
            "creator_id": ids("a", "b", "c", "d", "e", "f", "f"),
            "snapshot_date": times(
                AS_OF - 10 * DAY,
                AS_OF - 10 * DAY,
                AS_OF - 10 * DAY,
                AS_OF - 10 * DAY,
                AS_OF - DAY,
                AS_OF - 3 * DAY,
                AS_OF,
            ),
            "followers": np.array([5000, 5000, 500, 5000, 1500, 800, 5000], np.int64),
        }
    )
    return {
        "creators": pd.DataFrame(
            {
                "creator_id": ids(*creators),
                "market": ids("GB", "GB", "GB", "MY", "GB", "GB"),
                "joined_at": times(*[AS_OF - 400 * DAY] * 6),
                "primary_category": ids("beauty", None, "home", "beauty", "beauty", None),
            }
        ),
        "follower_snapshots": snapshots,
        "posts": posts,
        "campaigns": pd.DataFrame(
            {
                "campaign_id": ids("k"),
                "brand_id": ids("x"),
                "market": ids("GB"),
                "category": ids("beauty"),
                "created_at": times(AS_OF - 60 * DAY),
                "start_at": times(AS_OF - 55 * DAY),
                "end_at": times(AS_OF - 30 * DAY),
                "commission_rate": np.array([0.1]),
            }
        ),
        "invitations": pd.DataFrame(
            {
                "campaign_id": ids("k"),
                "creator_id": ids("a"),
                "invited_at": times(AS_OF - 60 * DAY),
                "response": ids("accepted"),
                "responded_at": times(AS_OF - 59 * DAY),
                "posts_promised": pd.array([1], dtype="Int64"),
                "posts_delivered": pd.array([1], dtype="Int64"),
            }
        ),
        "campaign_results": pd.DataFrame(
            {
                "campaign_id": ids("k"),
                "creator_id": ids("a"),
                "gmv": np.array([80.0]),
                "orders": np.array([2], np.int64),
            }
        ),
    }


def test_candidate_rule_on_its_edges():
    tables = hand_tables()
    briefs = check_briefs(
        pd.DataFrame(
            {
                "brief_id": ["gb-1000", "gb-any", "my", "gb-later"],
                "market": ["GB", "GB", "MY", "GB"],
                "category": ["beauty"] * 4,
                "as_of": [AS_OF, AS_OF, AS_OF, AS_OF + DAY],
                "min_followers": [1000, None, None, None],
            }
        )
    )
    found = find_candidates(tables, briefs)
    by_brief = found.groupby("brief")["creator_id"].apply(list).to_dict()
    assert by_brief[0] == ["a", "e"]  # c (500) and f (800 known) too few
    assert by_brief[1] == ["a", "c", "e", "f"]  # b: post at as_of, other 1 s too old
    assert by_brief[2] == ["d"]
    # A day later b's post at the old as_of counts and a's has left the window.
    assert by_brief[3] == ["b", "c", "e", "f"]
    followers = found[found["brief"] == 1].set_index("creator_id")["followers"].to_dict()
    assert followers == {"a": 5000, "c": 500, "e": 1500, "f": 800}
    # The candidates' followers are the feature builder's current followers.
    features = build_features(
        tables,
        pd.DataFrame(
            {
                "creator_id": found["creator_id"],
                "as_of": briefs["as_of"].iloc[found["brief"]].to_numpy(),
                "category": "beauty",
            }
        ).astype({"as_of": TIMESTAMP_DTYPE}),
    )
    np.testing.assert_allclose(np.expm1(features["log_followers"]), found["followers"], rtol=1e-12)


def test_hand_tables_score_end_to_end(serving_world):
    briefs = pd.DataFrame(
        {
            "brief_id": ["gb", "nobody"],
            "market": ["GB", "SG"],
            "category": ["beauty", "beauty"],
            "as_of": [AS_OF, AS_OF],
            "top_k": [3, 3],
        }
    )
    seen: list[str] = []
    out = partner_lists(hand_tables(), briefs, serving_world.scorer, "v", warn=seen.append)
    assert out["rank"].tolist() == [1, 2, 3]
    assert (np.diff(out["raw_score"]) <= 0).all()
    assert set(out["creator_id"]) <= {"a", "c", "e", "f"} and len(out) == 3
    assert len(seen) == 1 and "nobody" in seen[0]
