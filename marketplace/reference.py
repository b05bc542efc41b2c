"""Compare a marketplace with the real TikTok sample, read the way its README reads it.

The sample (a CSV of 11,726 real public videos of 722 creators, not part of this project;
``$CREATOR_SCORES_SAMPLE`` names its file) holds up to 20 recent videos per creator with
one follower count each: columns ``creator, followers, posted_at, views, likes, comments,
shares`` (``posted_at`` without a zone). Both it and a simulated
marketplace are brought to one shape, ``creator, followers, posted_at, views, likes,
comments, shares``, and summarised by follower tier: per creator the median of each ratio
over its 20 most recent videos, then the median over the creators of a tier.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

TIER_EDGES = (-np.inf, 1e4, 1e5, 1e6, np.inf)
TIER_LABELS = ("< 10K", "10K-100K", "100K-1M", "> 1M")
SAMPLE_VARIABLE = "CREATOR_SCORES_SAMPLE"
RATIOS = (
    "views_per_follower",
    "engagement_per_view",
    "comments_per_like",
    "shares_per_like",
    "days_between_posts",
)

# Typical ratios for an account of a given size: the real sample's tier medians (views per
# follower, likes per view, comments and shares per like), anchored at log10(followers) =
# 3.5, 4.5, 5.5, 6.3 and interpolated between. The simulator draws around them; the
# authenticity features judge a creator's ratios against them, so that size alone (big
# accounts get fewer comments per like everywhere) does not read as fake engagement.
TIER_LOG10 = np.array([3.5, 4.5, 5.5, 6.3])
TIER_VIEWS_PER_FOLLOWER = np.array([1.8, 2.1, 0.97, 0.22])
TIER_LIKES_PER_VIEW = np.array([0.037, 0.032, 0.045, 0.044])
TIER_COMMENTS_PER_LIKE = np.array([0.038, 0.023, 0.013, 0.011])
TIER_SHARES_PER_LIKE = np.array([0.052, 0.038, 0.026, 0.017])


def tier_curve(log10_followers, values):
    """Interpolate a per-tier median in log space along log10(followers) (flat beyond
    the outer tiers)."""
    return np.exp(np.interp(log10_followers, TIER_LOG10, np.log(values)))


def sample_file() -> Path | None:
    """The real sample's CSV file named by ``$CREATOR_SCORES_SAMPLE``, when it exists."""
    value = os.environ.get(SAMPLE_VARIABLE)
    return Path(value) if value and Path(value).is_file() else None


def load_sample(path: Path | None = None) -> pd.DataFrame:
    """The real sample (``path``, else ``sample_file()``) in the common shape (posted_at
    as UTC, as the contract reads a zone-less time); ValueError when there is none."""
    path = path or sample_file()
    if path is None:
        raise ValueError(f"no real sample: set {SAMPLE_VARIABLE} to its CSV file")
    frame = pd.read_csv(path, dtype={"creator": "str"})
    frame["posted_at"] = pd.to_datetime(frame["posted_at"], utc=True)
    return frame[["creator", "followers", "posted_at", "views", "likes", "comments", "shares"]]


def simulated_videos(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """A marketplace's videos in the common shape, with each creator's latest followers."""
    snaps = tables["follower_snapshots"].sort_values("snapshot_date")
    latest = snaps.groupby("creator_id")["followers"].last()
    videos = tables["posts"][tables["posts"]["format"] == "video"]
    return pd.DataFrame(
        {
            "creator": videos["creator_id"],
            "followers": videos["creator_id"].map(latest),
            "posted_at": videos["posted_at"],
            **{c: videos[c] for c in ("views", "likes", "comments", "shares")},
        }
    ).dropna(subset=["followers"])


def follower_tier(followers) -> pd.Series:
    """The follower tier of each count (an ordered categorical; NaN stays NaN)."""
    values = pd.Series(followers, dtype="float64")
    return pd.cut(values, TIER_EDGES, labels=list(TIER_LABELS), right=False)


def per_creator_ratios(videos: pd.DataFrame, recent: int = 20) -> pd.DataFrame:
    """Per creator, the median of each ratio over its ``recent`` latest videos, its
    followers and tier. Ratios with a zero or missing denominator are left out."""
    latest = videos.sort_values(["creator", "posted_at"]).groupby("creator").tail(recent)
    views = latest["views"].where(latest["views"] > 0)
    likes = latest["likes"].where(latest["likes"] > 0)
    followers = latest["followers"].where(latest["followers"] > 0)
    gaps = latest.groupby("creator")["posted_at"].diff().dt.total_seconds() / 86400.0
    ratios = (
        pd.DataFrame(
            {
                "creator": latest["creator"],
                "views_per_follower": views / followers,
                "engagement_per_view": (latest["likes"] + latest["comments"] + latest["shares"])
                / views,
                "comments_per_like": latest["comments"] / likes,
                "shares_per_like": latest["shares"] / likes,
                "days_between_posts": gaps,
            }
        )
        .groupby("creator")
        .median()
    )
    ratios["followers"] = latest.groupby("creator")["followers"].first()
    ratios["tier"] = follower_tier(ratios["followers"])
    return ratios


def tier_medians(videos: pd.DataFrame) -> pd.DataFrame:
    """Creators per tier and the median over them of each per-creator ratio."""
    ratios = per_creator_ratios(videos)
    table = ratios.groupby("tier", observed=False)[list(RATIOS)].median()
    table.insert(0, "creators", ratios.groupby("tier", observed=False).size())
    return table


def compare_with_sample(simulated: pd.DataFrame, sample: pd.DataFrame) -> pd.DataFrame:
    """Ratio simulated / sample of every tier median (1.0 is a perfect match)."""
    return (simulated[list(RATIOS)] / sample[list(RATIOS)]).rename(columns=lambda c: f"{c}_ratio")
