"""Discovery: creators like a given one, and the rising creators no list shows yet.

Pure functions on one market's candidates (their features and their stored indices);
``store.discovery`` reads those from a stored day and builds the rows.

Look-alikes (``lookalike_distance``, ``nearest``)
    A creator is described by its nine family indices (0-100 percentiles among its
    market's candidates: the eight creator families and the category index of the asked
    category), the common scale of what the indices measure. The distance between two
    creators is the root mean square over the nine families of the gap between their
    indices, in index points (0-100). An index is null without enough history for its
    family (``features.indices.HISTORY_RULES``): two nulls are no gap (both too new to
    judge), a null against a value is a gap of ``MISSING_GAP`` points (about the mean gap
    of two creators drawn at random, 100/3). The k nearest are the k smallest distances,
    ties broken by creator_id; the creator itself is never among them. Deterministic.

Rising creators (``rising_frame``)
    Among the market's candidates with a **short history** (``short_history``: a first
    post less than ``NEW_DAYS`` days before the day, or no delivered campaign yet: no
    track record with brands), those whose model estimate, less its uncertainty, is above
    what their size and history suggest:

    1. *What size and history suggest* (``expected_raw``): least squares of the model's
       raw score on log followers (and its square) and log(1 + days since the first post)
       over ALL the market's candidates of the category, established ones included.
    2. *The lift*: raw score minus that expectation. *Its uncertainty*: the residuals'
       standard deviation s over the market, shrunk with the creator's evidence: a creator
       with n measured posts in the last 180 days has ``s * sqrt(PRIOR_POSTS / (PRIOR_POSTS
       + n))`` (its signals rest on few posts; many posts make them firmer).
    3. *Rising*: a short-history creator with a positive lift. They are ranked by the
       lower bound of the model's estimate (raw score minus the uncertainty): of the
       creators who beat their size, first those most likely to sell, a thin history
       below a firm one with the same estimate. Ties by creator_id.

    Every rising row is provisional: its indices rest on a short history and change as
    it grows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.indices import index_name
from features.registry import FAMILIES

LOOKALIKE_COLUMNS = tuple(index_name(f) for f in FAMILIES)
MISSING_GAP = 100.0 / 3.0  # a known index against a null one: a random pair's mean gap
NEW_DAYS = 180  # a first post less than this many days ago is a short history
MIN_DELIVERED = 1  # ... and so is fewer delivered campaigns than this (no track record)
PRIOR_POSTS = 10.0  # posts worth as much evidence as the market's spread (uncertainty)
DAYS_PER_POST_WINDOW = 180 / 7  # posts_per_week_180d x this = posts in the last 180 days
PROVISIONAL = "provisional: a short history"
# Families that lift a rising creator: those whose index is at least this.
LIFT_INDEX = 60.0
MAX_LIFT_FAMILIES = 3


def lookalike_distance(indices: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Each row's distance to ``query`` (index points, 0-100): the root mean square over
    the columns of the gap, a null against a null no gap, a null against a value
    ``MISSING_GAP``. ``indices`` is (n, families), ``query`` (families,), NaN = null."""
    indices = np.asarray(indices, dtype=float)
    query = np.asarray(query, dtype=float)
    known, asked = ~np.isnan(indices), ~np.isnan(query)
    gap = np.where(known & asked, np.abs(indices - query), 0.0)
    gap = np.where(known != asked, MISSING_GAP, gap)
    return np.sqrt(np.mean(gap * gap, axis=1))


def nearest(distance: np.ndarray, creator_ids: np.ndarray, k: int, exclude=None) -> np.ndarray:
    """Positions of the ``k`` smallest distances, nearest first, ties by creator_id;
    the position ``exclude`` (the creator itself) never. Selects with a partition, so
    only the near rows are sorted."""
    distance = np.asarray(distance, dtype=float).copy()
    if exclude is not None:
        distance[exclude] = np.inf
    n = int(np.isfinite(distance).sum())
    k = min(k, n)
    if k <= 0:
        return np.zeros(0, np.int64)
    kth = np.partition(distance, k - 1)[k - 1]
    near = np.flatnonzero(distance <= kth)  # every tie at the k-th distance too
    ids = np.asarray(creator_ids)[near].astype(str)
    order = np.lexsort((ids, distance[near]))
    return near[order][:k]


def short_history(features: pd.DataFrame) -> np.ndarray:
    """True for a creator whose first post is less than NEW_DAYS days before the day, or
    who has fewer than MIN_DELIVERED delivered campaigns (none known: 0)."""
    new = features["history_days"].to_numpy(float) < NEW_DAYS
    delivered = features["campaigns_delivered"].fillna(0).to_numpy(float)
    return new | (delivered < MIN_DELIVERED)


def size_design(features: pd.DataFrame) -> np.ndarray:
    """The regressors of what size and history suggest: 1, log followers, its square,
    log(1 + days since the first post)."""
    size = features["log_followers"].fillna(0).to_numpy(float)
    days = np.log1p(features["history_days"].fillna(0).clip(lower=0).to_numpy(float))
    return np.column_stack([np.ones(len(size)), size, size * size, days])


def expected_raw(features: pd.DataFrame, raw: np.ndarray) -> np.ndarray:
    """The raw score each candidate's size and history suggest: the least-squares fit of
    ``raw`` on ``size_design`` over all the rows."""
    design = size_design(features)
    coef, *_ = np.linalg.lstsq(design, np.asarray(raw, dtype=float), rcond=None)
    return design @ coef


def measured_posts(features: pd.DataFrame) -> np.ndarray:
    """Posts in the last 180 days (from the weekly rate), 0 when unknown."""
    return features["posts_per_week_180d"].fillna(0).to_numpy(float) * DAYS_PER_POST_WINDOW


def rising_frame(features: pd.DataFrame, raw: np.ndarray, creator_ids) -> pd.DataFrame:
    """One row per candidate (the market's, in order): ``short_history``, ``expected``
    (``expected_raw``), ``lift`` (raw - expected), ``uncertainty``, ``lower`` (raw -
    uncertainty), ``rising`` (short history and lift > 0) and ``order``
    (rank among the rising, 1 = first; 0 for the others)."""
    raw = np.asarray(raw, dtype=float)
    expected = expected_raw(features, raw)
    lift = raw - expected
    spread = float(np.std(lift)) if len(lift) > 1 else 0.0
    uncertainty = spread * np.sqrt(PRIOR_POSTS / (PRIOR_POSTS + measured_posts(features)))
    short = short_history(features)
    rising = short & (lift > 0)
    lower = raw - uncertainty
    ids = np.asarray(creator_ids).astype(str)
    order = np.zeros(len(raw), np.int64)
    chosen = np.flatnonzero(rising)
    ranked = chosen[np.lexsort((ids[chosen], -lower[chosen]))]
    order[ranked] = np.arange(1, len(ranked) + 1)
    return pd.DataFrame(
        {
            "short_history": short,
            "expected": expected,
            "lift": lift,
            "uncertainty": uncertainty,
            "lower": lower,
            "rising": rising,
            "order": order,
        }
    )


def lifting_families(indices: pd.DataFrame, contributions: pd.DataFrame) -> list[list[str]]:
    """Per row, the families that lift it: a positive contribution to the score and an
    index of at least LIFT_INDEX, largest contribution first, at most MAX_LIFT_FAMILIES."""
    out = []
    for i in range(len(indices)):
        found = [
            (float(contributions[f"contrib_{f}"].iloc[i]), f)
            for f in FAMILIES
            if contributions[f"contrib_{f}"].iloc[i] > 0
            and indices[index_name(f)].iloc[i] >= LIFT_INDEX
        ]
        out.append([f for _, f in sorted(found, key=lambda t: (-t[0], t[1]))][:MAX_LIFT_FAMILIES])
    return out


def rising_reason(families: list[str], indices: pd.Series, days: float, category: str) -> str:
    """Why a creator is rising, and that it is provisional: the lifting families with
    their indices, then how short its history is."""
    if families:
        named = ", ".join(
            f"{'fit with ' + (category or 'its category') if f == 'category' else f} "
            f"{indices[index_name(f)]:.0f}"
            for f in families
        )
        why = f"Beats what its size suggests: {named}"
    else:
        why = "Beats what its size suggests (no single family stands out)"
    history = f"first post {days:.0f} days ago" if days < NEW_DAYS else "no delivered campaign yet"
    return f"{why}; {PROVISIONAL} ({history})"
