"""The point-in-time rule: changing every fact not yet known at a cutoff changes no feature
computed before it, on simulated and on hand-written data; and once known, it does."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.build import build_features
from features.pairs import campaign_requests
from tests.conftest import DAY, make_tiny_tables


def change_the_future(tables: dict[str, pd.DataFrame], cutoff: pd.Timestamp, seed: int = 0):
    """A copy in which every fact not yet known at ``cutoff`` is changed or deleted."""
    rng = np.random.default_rng(seed)
    t = {name: frame.copy() for name, frame in tables.items()}

    posts = t["posts"]
    unmeasured = posts["posted_at"] + 7 * DAY > cutoff
    for col in ("views", "likes", "comments", "shares", "orders"):
        posts.loc[unmeasured, col] = rng.integers(0, 10**6, unmeasured.sum())
    posts.loc[unmeasured, "gmv"] = rng.uniform(0, 1e5, unmeasured.sum())
    later = posts["posted_at"] >= cutoff
    posts.loc[later, "is_shoppable"] = ~posts.loc[later, "is_shoppable"]
    posts.loc[later, "format"] = "live"
    posts.loc[later, "category"] = "toys"
    t["posts"] = posts[~later | (rng.random(len(posts)) < 0.5)].reset_index(drop=True)

    snaps = t["follower_snapshots"]
    unknown = snaps["snapshot_date"] + DAY > cutoff
    snaps.loc[unknown, "followers"] = rng.integers(0, 10**7, unknown.sum())
    t["follower_snapshots"] = snaps[~unknown | (rng.random(len(snaps)) < 0.5)].reset_index(
        drop=True
    )

    inv = t["invitations"].merge(
        t["campaigns"][["campaign_id", "start_at", "end_at"]], on="campaign_id", how="left"
    )
    answer_unknown = np.where(
        inv["response"] == "no_response", inv["start_at"] >= cutoff, inv["responded_at"] >= cutoff
    )
    flip = {"accepted": "declined", "declined": "accepted", "no_response": "accepted"}
    inv.loc[answer_unknown, "response"] = inv.loc[answer_unknown, "response"].map(flip)
    # A changed answer is still given after the cutoff (else it would be a past fact).
    inv.loc[answer_unknown, "responded_at"] = (
        inv.loc[answer_unknown, "invited_at"].clip(lower=cutoff) + 3 * DAY
    )
    end_unknown = (inv["end_at"] >= cutoff).to_numpy()
    inv.loc[end_unknown, "posts_promised"] = 9
    inv.loc[end_unknown, "posts_delivered"] = 0
    t["invitations"] = inv[tables["invitations"].columns]
    results = t["campaign_results"].merge(
        t["campaigns"][["campaign_id", "end_at"]], on="campaign_id"
    )
    future = (results["end_at"] >= cutoff).to_numpy()
    results.loc[future, "gmv"] = 1e9
    t["campaign_results"] = results[tables["campaign_results"].columns][
        ~future | (rng.random(len(results)) < 0.5)
    ]
    return t


def assert_past_pairs_unchanged(tables, cutoff):
    requests = campaign_requests(tables)
    past = requests[requests["as_of"] < cutoff].reset_index(drop=True)
    assert len(past) > 0
    before = build_features(tables, past)
    after = build_features(change_the_future(tables, cutoff), past)
    pd.testing.assert_frame_equal(before, after, check_exact=True)
    return before


@pytest.fixture(scope="module")
def small_tables(small_market):
    """The tables of conftest's small marketplace (shared: changed only on copies)."""
    return small_market[0]


def test_changing_the_future_moves_nothing_simulated(small_tables):
    campaigns = small_tables["campaigns"].sort_values("created_at")
    cutoff = campaigns["created_at"].iloc[len(campaigns) * 2 // 3]
    before = assert_past_pairs_unchanged(small_tables, cutoff)
    assert before.notna().mean().min() > 0.3  # the check saw real values, not NaNs


def test_changing_the_future_moves_nothing_hand_written():
    # Data this project did not generate: the hand-written tiny marketplace of conftest.
    tiny = make_tiny_tables()
    for cutoff in sorted(set(tiny["campaigns"]["created_at"])):
        requests = campaign_requests(tiny)
        if (requests["as_of"] < cutoff + DAY).any():
            assert_past_pairs_unchanged(tiny, cutoff + DAY)


def test_the_future_does_move_features_once_known(small_tables):
    # The converse: the same changes, seen from after the cutoff, do change features.
    campaigns = small_tables["campaigns"].sort_values("created_at")
    cutoff = campaigns["created_at"].iloc[len(campaigns) // 2]
    requests = campaign_requests(small_tables)
    later = requests[requests["as_of"] > cutoff + 30 * DAY].reset_index(drop=True)
    before = build_features(small_tables, later)
    after = build_features(change_the_future(small_tables, cutoff), later)
    assert not before.equals(after)
