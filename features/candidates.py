"""The candidates of a brief (data contract, "partner list").

A creator is a candidate of a brief when
- the creator's market is the brief's market,
- the creator has at least one post with ``as_of - 90 days <= posted_at < as_of``, and
- the creator's current followers are at least the brief's ``min_followers``; current
  followers follow the point-in-time rule of the feature builder: the latest snapshot
  with ``snapshot_date + 1 day <= as_of``, 0 when there is none.

Both tests are binary searches in the timelines of ``features.build.History`` (built
once for all briefs), so they cost O(pairs x log events) and use no future fact. The rule
lives with the features because every layer above applies it: serving to briefs, the
snapshot store to every market's day, training to the drift reference.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.build import History, index_history, latest_followers
from features.timeline import days, micros
from marketplace.contract import STRING_DTYPE

ACTIVE_DAYS = 90


def market_creators(tables: dict[str, pd.DataFrame], history: History) -> dict[str, np.ndarray]:
    """Per market, the History codes of its creators, in creator_id order."""
    creators = tables["creators"].sort_values("creator_id", kind="stable")
    codes = history.creator_index.get_indexer(creators["creator_id"])
    keep = codes >= 0
    frame = pd.DataFrame({"market": creators["market"].to_numpy()[keep], "code": codes[keep]})
    return {
        market: group["code"].to_numpy(np.int64)
        for market, group in frame.groupby("market", sort=True)
    }


def current_followers(history: History, code: np.ndarray, as_of_us: np.ndarray) -> np.ndarray:
    """Followers of each creator's latest snapshot known at as_of (0 when none), int64."""
    return np.nan_to_num(latest_followers(history, code, as_of_us), nan=0.0).astype(np.int64)


def recent_posts(
    history: History, code: np.ndarray, as_of_us: np.ndarray, window_days: int = ACTIVE_DAYS
) -> np.ndarray:
    """Posts of each creator with ``as_of - window <= posted_at < as_of``."""
    tl = history.posts
    return tl.before(code, as_of_us) - tl.before(code, as_of_us - days(window_days))


def feature_requests(briefs: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """The feature builder's request rows for ``find_candidates`` pairs: each candidate
    as of its brief's as_of, in its category, at its commission rate."""
    per_pair = briefs.iloc[pairs["brief"].to_numpy()].reset_index(drop=True)
    return pd.DataFrame(
        {
            "creator_id": pairs["creator_id"],
            "as_of": per_pair["as_of"],
            "category": per_pair["category"],
            "commission_rate": per_pair["commission_rate"],
        }
    )


def find_candidates(
    tables: dict[str, pd.DataFrame],
    briefs: pd.DataFrame,
    history: History | None = None,
    by_market: dict[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """Every (brief, candidate) pair: ``brief`` (the brief's position in ``briefs``),
    ``creator_id`` and ``followers`` (current), ordered by brief then creator_id.

    ``briefs`` needs ``market``, ``as_of`` (UTC) and ``min_followers`` (as from
    ``serving.briefs.check_briefs``). Pass ``history`` and ``by_market``
    (``market_creators``) to reuse them across calls.
    """
    history = history or index_history(tables)
    by_market = by_market if by_market is not None else market_creators(tables, history)
    none = np.empty(0, np.int64)
    groups = [by_market.get(market, none) for market in briefs["market"]]
    sizes = np.fromiter((len(g) for g in groups), np.int64, count=len(groups))
    brief = np.repeat(np.arange(len(briefs), dtype=np.int64), sizes)
    code = np.concatenate(groups) if groups else none
    as_of = micros(briefs["as_of"])[brief]
    followers = current_followers(history, code, as_of)
    keep = (recent_posts(history, code, as_of) > 0) & (
        followers >= briefs["min_followers"].to_numpy(np.int64)[brief]
    )
    return pd.DataFrame(
        {
            "brief": brief[keep],
            "creator_id": pd.Series(history.creator_index[code[keep]], dtype=STRING_DTYPE),
            "followers": followers[keep],
        }
    )
