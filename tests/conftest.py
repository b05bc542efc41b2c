"""Shared fixtures: a tiny, hand-written, valid set of the six raw tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from marketplace.contract import STRING_DTYPE, TIMESTAMP_DTYPE
from marketplace.io import write_tables


def _ids(*values) -> pd.Series:
    return pd.Series(values, dtype=STRING_DTYPE)


def _times(*values) -> pd.Series:
    return pd.Series(pd.to_datetime(list(values), utc=True, format="ISO8601")).astype(TIMESTAMP_DTYPE)


def make_tiny_tables() -> dict[str, pd.DataFrame]:
    """Three creators (one with the numeric-looking id "00123"), two campaigns, 8 posts."""
    creators = pd.DataFrame({
        "creator_id": _ids("00123", "c2", "c3"),
        "market": _ids("ID", "MY", "GB"),
        "joined_at": _times("2024-01-10T08:00:00Z", "2024-02-01T00:00:00Z", "2024-03-05T12:30:00Z"),
        "primary_category": _ids("beauty", None, "fashion"),
    })
    follower_snapshots = pd.DataFrame({
        "creator_id": _ids("00123", "00123", "c2", "c3"),
        "snapshot_date": _times("2025-01-01", "2025-01-02", "2025-01-01", "2025-01-01"),
        "followers": np.array([1000, 1010, 500, 20000], dtype="int64"),
    })
    posts = pd.DataFrame({
        "post_id": _ids("p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8"),
        "creator_id": _ids("00123", "00123", "00123", "c2", "c2", "c3", "c3", "c3"),
        "posted_at": _times(
            "2025-01-03T10:15:00Z", "2025-01-04T20:00:00Z", "2025-01-05T18:00:00.250000Z",
            "2025-01-03T09:00:00Z", "2025-01-06T11:00:00Z", "2025-01-02T07:45:00Z",
            "2025-01-04T21:30:00Z", "2025-01-07T13:00:00Z",
        ),
        "format": _ids("video", "live", "video", "video", "live", "video", "video", "live"),
        "category": _ids("beauty", "beauty", None, "home", "home", "fashion", "fashion", "beauty"),
        "is_shoppable": np.array([True, True, False, False, True, True, False, True]),
        "views": np.array([1200, 5400, 300, 80, 950, 20000, 15000, 7000], dtype="int64"),
        "likes": np.array([100, 320, 12, 3, 40, 1500, 900, 410], dtype="int64"),
        "comments": np.array([10, 45, 0, 0, 6, 120, 70, 52], dtype="int64"),
        "shares": np.array([4, 9, 0, 0, 1, 60, 33, 12], dtype="int64"),
        "orders": np.array([3, 12, 0, 0, 2, 25, 0, 9], dtype="int64"),
        "gmv": np.array([45.5, 310.25, 0.0, 0.0, 19.99, 612.0, 0.0, 1 / 3]),
    })
    campaigns = pd.DataFrame({
        "campaign_id": _ids("k1", "k2"),
        "brand_id": _ids("b1", "b2"),
        "market": _ids("ID", "GB"),
        "category": _ids("beauty", "fashion"),
        "created_at": _times("2025-02-01T09:00:00Z", "2025-02-15T00:00:00Z"),
        "start_at": _times("2025-02-10T00:00:00Z", "2025-02-15T00:00:00Z"),
        "end_at": _times("2025-03-10T00:00:00Z", "2025-03-01T00:00:00Z"),
        "commission_rate": np.array([0.1, np.nan]),
    })
    invitations = pd.DataFrame({
        "campaign_id": _ids("k1", "k1", "k1", "k2", "k2"),
        "creator_id": _ids("00123", "c2", "c3", "c3", "00123"),
        "invited_at": _times(
            "2025-02-01T10:00:00Z", "2025-02-01T10:00:00Z", "2025-02-02T08:00:00Z",
            "2025-02-15T01:00:00Z", "2025-02-15T01:00:00Z",
        ),
        "response": _ids("accepted", "declined", "no_response", "accepted", "declined"),
        "responded_at": _times(
            "2025-02-02T12:00:00Z", "2025-02-03T09:30:00Z", None,
            "2025-02-15T03:00:00Z", "2025-02-16T00:00:00Z",
        ),
        "posts_promised": pd.array([2, None, None, 1, None], dtype="Int64"),
        "posts_delivered": pd.array([2, None, None, 0, None], dtype="Int64"),
    })
    campaign_results = pd.DataFrame({
        "campaign_id": _ids("k1", "k2"),
        "creator_id": _ids("00123", "c3"),
        "gmv": np.array([250.5, 0.0]),
        "orders": np.array([5, 0], dtype="int64"),
    })
    return {
        "creators": creators,
        "follower_snapshots": follower_snapshots,
        "posts": posts,
        "campaigns": campaigns,
        "invitations": invitations,
        "campaign_results": campaign_results,
    }


@pytest.fixture
def tiny_tables() -> dict[str, pd.DataFrame]:
    """A fresh copy of the tiny valid tables (safe to modify)."""
    return make_tiny_tables()


@pytest.fixture
def write_dir(tmp_path):
    """Write tables to a new directory under tmp_path: write_dir(tables, fmt) -> Path."""
    counter = iter(range(1_000_000))

    def write(tables: dict[str, pd.DataFrame], fmt: str = "parquet") -> Path:
        directory = tmp_path / f"data{next(counter)}_{fmt}"
        write_tables(tables, directory, fmt=fmt)
        return directory

    return write
