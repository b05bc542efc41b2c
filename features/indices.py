"""0-100 indices per signal family, among a peer set (campaign invitees or brief candidates).

Recipe, the same in every model version: for each feature of the family with a
direction (registry), the creator's midpoint percentile among the peers that have
enough history for the family, ``100 x (rank - 0.5) / n`` after turning lower-is-better
features around; the index is the mean of those percentiles over the family's features
(features the creator lacks are skipped). A lone peer scores 50. The index is null when
the creator has too little history for the family (``HISTORY_RULES``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.registry import FAMILIES, features_of

# Enough history for each family, stated on the features themselves.
HISTORY_RULES: dict[str, str] = {
    "engagement": "at least 3 posts in the last 180 days, one of them measured",
    "volume": "a first post at least 30 days before as_of",
    "consistency": "a first post at least 30 days before as_of, and 3 gaps between posts "
    "in the last 180 days",
    "diligence": "at least 3 posts in the last 180 days",
    "cooperation": "at least one earlier invitation with a known answer",
    "sales": "at least one measured shoppable post",
    "category": "a first post at least 30 days before as_of",
    "growth": "a follower snapshot from at least 90 days before as_of",
    "authenticity": "a measured post with likes in the last 90 days",
}


# The features has_history reads (a frame with these and a family's features is enough
# for that family's index).
HISTORY_INPUTS = (
    "posts_per_week_180d",
    "views_per_follower_180d",
    "history_days",
    "gap_cv_180d",
    "past_invitations",
    "log_gmv_per_shoppable_post_all",
    "follower_growth_90d",
    "comments_per_like_90d",
)


def has_history(features: pd.DataFrame) -> dict[str, pd.Series]:
    """Per family, True where the creator has enough history for its index (from the
    ``HISTORY_INPUTS`` columns)."""
    posts_180d = features["posts_per_week_180d"] * (180 / 7)
    month_old = features["history_days"] >= 30
    return {
        "engagement": (posts_180d >= 3 - 1e-9) & features["views_per_follower_180d"].notna(),
        "volume": month_old,
        "consistency": month_old & features["gap_cv_180d"].notna(),
        "diligence": posts_180d >= 3 - 1e-9,
        "cooperation": features["past_invitations"] >= 1,
        "sales": features["log_gmv_per_shoppable_post_all"].notna(),
        "category": month_old,
        "growth": features["follower_growth_90d"].notna(),
        "authenticity": features["comments_per_like_90d"].notna(),
    }


def index_name(family: str) -> str:
    """The column of a family's 0-100 index: ``<family>_index``."""
    return f"{family}_index"


def family_indices(features: pd.DataFrame, peers, families=FAMILIES) -> pd.DataFrame:
    """The ``<family>_index`` columns, one per family of ``families`` (default all), (float,
    0-100 or NaN) for ``features`` rows, ranked within groups of equal ``peers`` (an array
    or Series aligned with the rows). Each family's index reads only its own features and
    the history rules."""
    peers = pd.Series(np.asarray(peers), index=features.index)
    known = has_history(features)
    out = pd.DataFrame(index=features.index)
    for family in families:
        directed = pd.DataFrame(
            {
                f.name: features[f.name] * f.direction
                for f in features_of(family)
                if f.direction != 0
            }
        )
        directed = directed.where(known[family], axis=0)
        groups = directed.groupby(peers, sort=False)
        ranks = groups.rank(method="average")
        counts = groups.transform("count")
        percentile = 100.0 * (ranks - 0.5) / counts
        out[index_name(family)] = percentile.mean(axis=1, skipna=True).where(known[family])
    return out


def indices_of_rows(features: pd.DataFrame, rows, families=FAMILIES) -> pd.DataFrame:
    """``family_indices(features, peers=one group).iloc[rows]`` (the same numbers, to the
    bit), without ranking the other rows: each feature's values are sorted once and the
    rows' average ranks found by binary search. For a brief's top rows among all its
    candidates. Index 0..len(rows)-1."""
    rows = np.asarray(rows, dtype=np.int64)
    known = has_history(features)
    out = pd.DataFrame(index=pd.RangeIndex(len(rows)))
    for family in families:
        keep = known[family].to_numpy(dtype=bool)
        percentiles = {}
        for f in features_of(family):
            if f.direction == 0:
                continue
            values = (features[f.name] * f.direction).to_numpy(dtype=float)
            values = np.where(keep, values, np.nan)
            ordered = np.sort(values[~np.isnan(values)])
            mine = values[rows]
            below = np.searchsorted(ordered, mine, side="left")
            ties = np.searchsorted(ordered, mine, side="right") - below
            rank = below + (ties + 1) / 2  # pandas' "average" rank, 1-based
            percentiles[f.name] = np.where(
                np.isnan(mine), np.nan, 100.0 * (rank - 0.5) / len(ordered)
            )
        frame = pd.DataFrame(percentiles, index=out.index)
        out[index_name(family)] = frame.mean(axis=1, skipna=True).where(keep[rows])
    return out
