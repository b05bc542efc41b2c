"""Discovery: creators like a given one, and the rising creators no list shows yet.

Pure functions on one market's candidates (their features and their stored indices);
``store.discovery`` reads those from a stored day and builds the rows.

Look-alikes (``lookalike_signals``, ``lookalike_distance``, ``nearest``)
    A creator is described by nine **look-alike signals**, one per family (the eight
    creator families and the category family of the asked category), each on the 0-100
    percentile scale among its market's candidates (``lookalike_signals``). A family's
    signal reads its features with a direction, as its index does, but weighs them by how
    much of what they share each one carries:

    - a *measure* is one feature over its windows (``posts_per_week_{30,90,180}d`` is one
      measure); it reads its longest window (the most posts behind it), the shorter ones
      filling its nulls; every measure becomes its midpoint percentile among the
      candidates with enough history for the family;
    - a family of three or more measures is their mean weighted by a one-factor model of
      their correlations among the market's candidates (``factor_weights``: the loading
      over the unexplained variance of each, lambda / (1 - lambda^2), the factor-score
      regression weights): a measure that shares little with the others (a noisy one)
      counts little; a family of one measure is that measure; a family of two keeps its
      index (two measures cannot tell which of them is the better one).

    The distance between two creators is the root mean square over the nine families of
    the gap between their signals, in percentile points (0-100). A signal is null without
    enough history for its family (``features.indices.HISTORY_RULES``): two nulls are no
    gap (both too new to judge), a null against a value is a gap of ``MISSING_GAP``
    points (about the mean gap of two creators drawn at random, 100/3). The k nearest
    are the k smallest distances, ties broken by creator_id; the creator itself is never
    among them. Deterministic: the same candidates give the same signals.

Rising creators (``rising_frame``)
    Among the market's candidates with a **short history** (``short_history``: a first
    post less than ``NEW_DAYS`` days before the day, or no delivered campaign yet: no
    track record with brands), those whose estimate, with its uncertainty, reaches above
    what their size and history suggest:

    1. *The estimate* is the creator's **sales momentum** (``fit_momentum``): what it
       will sell over the next 90 days, as log(1 + gmv / 100) (the unit of
       ``log_gmv_90d``). It is learned from the market itself, point in time: on the
       stored day ``MOMENTUM_DAYS`` or more before the day, the short-history candidates
       then, each with what it went on to sell in the 90 days before the day (the day's
       ``log_gmv_90d``, known on the day), least squares on ``momentum_design``: log
       followers (and its square), log(1 + days since the first post), the model's raw
       score, the creator's own sales of the last 90 days and its shoppable posts per
       week. Nothing after the day is read. Without such a day in the store (or with
       fewer than ``MIN_FIT_ROWS`` rows to fit), the estimate is the model's raw score.
    2. *What size and history suggest* (``expected``): the same fit on the size and
       history regressors alone (``size_design``: log followers, its square, log(1 +
       days since the first post)) over the same newcomers (with the raw score as the
       estimate: least squares of the raw score on them, ``expected_raw``, over the
       market's short-history candidates): a newcomer is measured against newcomers of
       its size and age, never against established creators.
    3. *The lift*: the estimate minus that expectation. *Its uncertainty*: the
       residuals' standard deviation s of the estimate's fit, shrunk with the creator's
       evidence: a creator with n measured posts in the last 180 days has ``s *
       sqrt(PRIOR_POSTS / (PRIOR_POSTS + n))``.
    4. *Rising*: a short-history creator whose lift, with its uncertainty, is above 0
       (lift + uncertainty > 0: beating its size is within what its history can tell).
       Ranked by the estimate less its uncertainty (a thin history below a firm one with
       the same estimate), ties by creator_id.

    Every rising row is provisional: its indices rest on a short history and change as
    it grows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.indices import has_history, index_name
from features.registry import BY_NAME, FAMILIES, features_of

WINDOW = re.compile(r"^(?P<measure>.+)_(?P<window>30d|90d|180d|all)$")
WINDOW_DAYS = {"30d": 30, "90d": 90, "180d": 180, "all": 10**6}  # all history: the longest
MIN_FACTOR_MEASURES = 3  # fewer measures than this cannot identify a one-factor model
MAX_COMMUNALITY = 0.95  # a measure's shared variance is capped: no weight without bound
MISSING_GAP = 100.0 / 3.0  # a known index against a null one: a random pair's mean gap
NEW_DAYS = 180  # a first post less than this many days ago is a short history
MIN_DELIVERED = 1  # ... and so is fewer delivered campaigns than this (no track record)
MIN_FIT_ROWS = 20  # short-history rows needed to fit what size and history suggest
MOMENTUM_DAYS = 90  # the momentum is fitted on a stored day at least this much earlier
MOMENTUM_TARGET = "log_gmv_90d"  # what a creator sold in the 90 days before a day
SIZE_COLUMNS = 4  # momentum_design's first columns: size_design
PRIOR_POSTS = 10.0  # posts worth as much evidence as the market's spread (uncertainty)
DAYS_PER_POST_WINDOW = 180 / 7  # posts_per_week_180d x this = posts in the last 180 days
PROVISIONAL = "provisional: a short history"
# Families that lift a rising creator: those whose index is at least this.
LIFT_INDEX = 60.0
MAX_LIFT_FAMILIES = 3


def midpoint_percentiles(values: np.ndarray) -> np.ndarray:
    """100 x (rank - 0.5) / n among the non-null values (ties averaged); NaN stays NaN."""
    column = pd.Series(np.asarray(values, dtype=float))
    return (100.0 * (column.rank(method="average") - 0.5) / column.notna().sum()).to_numpy()


def family_measures(features: pd.DataFrame, family: str) -> np.ndarray:
    """(n, measures) percentiles (0-100, NaN = null) of the family's measures: each
    directed feature over its windows, read at its longest window with the shorter ones
    filling its nulls, turned around when lower is better, ranked among the rows with
    enough history for the family (the others null)."""
    known = has_history(features)[family].to_numpy(bool)
    windows: dict[str, list[tuple[int, str]]] = {}
    for feature in features_of(family):
        if feature.direction == 0:
            continue
        match = WINDOW.match(feature.name)
        measure, days = (
            (match["measure"], WINDOW_DAYS[match["window"]]) if match else (feature.name, 0)
        )
        windows.setdefault(measure, []).append((days, feature.name))
    columns = []
    for names in windows.values():
        direction = BY_NAME[names[0][1]].direction
        value = np.full(len(features), np.nan)
        for _, name in sorted(names, reverse=True):
            value = np.where(np.isnan(value), features[name].to_numpy(float), value)
        columns.append(midpoint_percentiles(np.where(known, value * direction, np.nan)))
    return np.column_stack(columns)


def factor_weights(measures: np.ndarray, iterations: int = 50) -> np.ndarray:
    """Per column of ``measures`` (n, m), the factor-score regression weight lambda / (1 -
    lambda^2) of a one-factor model fitted to the columns' correlations (principal axis
    factoring, nulls at the median 50; communalities capped at MAX_COMMUNALITY; negative
    loadings count 0). Equal weights when nothing is shared."""
    m = measures.shape[1]
    if len(measures) < 3:
        return np.ones(m)
    filled = np.where(np.isnan(measures), 50.0, measures)
    spread = filled.std(axis=0) > 0
    corr = np.eye(m)
    if spread.sum() > 1:
        corr[np.ix_(spread, spread)] = np.corrcoef(filled[:, spread].T)
    if not (np.abs(corr - np.eye(m)) > 0).any():
        return np.ones(m)
    shared = np.clip(np.abs(corr - np.eye(m)).max(axis=1), 0.01, MAX_COMMUNALITY)
    loading = np.zeros(m)
    for _ in range(iterations):
        reduced = corr.copy()
        np.fill_diagonal(reduced, shared)
        values, vectors = np.linalg.eigh(reduced)
        loading = vectors[:, -1] * np.sqrt(max(values[-1], 0.0))
        loading *= 1.0 if loading.sum() >= 0 else -1.0
        shared = np.clip(loading**2, 0.01, MAX_COMMUNALITY)
    loading = np.clip(loading, 0.0, None)
    weights = loading / (1.0 - np.minimum(loading**2, MAX_COMMUNALITY))
    return weights if weights.sum() > 0 else np.ones(m)


def weighted_mean(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per row, the mean of its non-null ``values`` weighted by ``weights`` (NaN when
    none is known)."""
    w = np.where(np.isnan(values), 0.0, weights)
    total = w.sum(axis=1)
    sums = (np.nan_to_num(values) * w).sum(axis=1)
    return np.where(total > 0, sums / np.where(total > 0, total, 1.0), np.nan)


def lookalike_signals(features: pd.DataFrame, indices: pd.DataFrame) -> np.ndarray:
    """(n, 9) look-alike signals (0-100, NaN = null), FAMILIES' order, of one market's
    candidates (``features``, their category features those of the asked category) with
    their stored ``indices`` among the market (a family of two measures keeps its
    index). See the module."""
    known = has_history(features)
    columns = []
    for family in FAMILIES:
        measures = family_measures(features, family)
        if measures.shape[1] >= MIN_FACTOR_MEASURES:
            signal = weighted_mean(measures, factor_weights(measures))
        elif measures.shape[1] == 1:
            signal = measures[:, 0]
        else:
            signal = indices[index_name(family)].to_numpy(float)
        columns.append(np.where(known[family].to_numpy(bool), signal, np.nan))
    return np.column_stack(columns)


def lookalike_distance(indices: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Each row's distance to ``query`` (percentile points, 0-100): the root mean square
    over the columns of the gap, a null against a null no gap, a null against a value
    ``MISSING_GAP``. ``indices`` (the look-alike signals) is (n, families), ``query``
    (families,), NaN = null."""
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


def size_fit_rows(fit_on) -> np.ndarray:
    """The rows a fit of what size and history suggest uses: ``fit_on`` (a boolean mask)
    when it holds at least MIN_FIT_ROWS, else all the rows."""
    fit_on = np.asarray(fit_on, bool)
    return fit_on if fit_on.sum() >= MIN_FIT_ROWS else np.ones(len(fit_on), bool)


def expected_raw(features: pd.DataFrame, raw: np.ndarray, fit_on=None) -> np.ndarray:
    """The raw score each candidate's size and history suggest: the least-squares fit of
    ``raw`` on ``size_design`` over the rows ``fit_on`` (``size_fit_rows``; all the rows
    when None), evaluated on every row."""
    design = size_design(features)
    raw = np.asarray(raw, dtype=float)
    rows = size_fit_rows(np.ones(len(raw), bool) if fit_on is None else fit_on)
    coef, *_ = np.linalg.lstsq(design[rows], raw[rows], rcond=None)
    return design @ coef


def measured_posts(features: pd.DataFrame) -> np.ndarray:
    """Posts in the last 180 days (from the weekly rate), 0 when unknown."""
    return features["posts_per_week_180d"].fillna(0).to_numpy(float) * DAYS_PER_POST_WINDOW


def momentum_design(features: pd.DataFrame, raw: np.ndarray) -> np.ndarray:
    """The regressors of the sales momentum: ``size_design``'s four, then the model's raw
    score, the creator's own sales of the last 90 days (log(1 + gmv / 100), 0 when
    unknown) and its shoppable posts per week over 90 days (0 when unknown)."""
    return np.column_stack(
        [
            size_design(features),
            np.asarray(raw, dtype=float),
            features[MOMENTUM_TARGET].fillna(0).to_numpy(float),
            features["shoppable_per_week_90d"].fillna(0).to_numpy(float),
        ]
    )


@dataclass(frozen=True)
class Momentum:
    """A market's sales-momentum fit (``fit_momentum``): coefficients of
    ``momentum_design`` (``full``) and of its size-and-history columns alone (``size``),
    the residual standard deviation of the full fit (log units) and the rows fitted."""

    full: np.ndarray
    size: np.ndarray
    spread: float
    rows: int


def fit_momentum(earlier: pd.DataFrame, earlier_raw: np.ndarray, later) -> Momentum | None:
    """The momentum of a market, fitted on an earlier stored day: ``earlier`` its
    candidates' features that day, ``earlier_raw`` their raw scores, ``later`` what each
    went on to sell (``MOMENTUM_TARGET`` on the later day; NaN when not a candidate
    then). Least squares over the earlier day's short-history rows with a known later
    value; None when fewer than ``MIN_FIT_ROWS`` of them."""
    later = np.asarray(later, dtype=float)
    rows = short_history(earlier) & np.isfinite(later)
    if rows.sum() < MIN_FIT_ROWS:
        return None
    design = momentum_design(earlier, earlier_raw)[rows]
    full, *_ = np.linalg.lstsq(design, later[rows], rcond=None)
    size, *_ = np.linalg.lstsq(design[:, :SIZE_COLUMNS], later[rows], rcond=None)
    return Momentum(full, size, float(np.std(later[rows] - design @ full)), int(rows.sum()))


def rising_frame(
    features: pd.DataFrame, raw: np.ndarray, creator_ids, momentum: Momentum | None = None
) -> pd.DataFrame:
    """One row per candidate (the market's, in order): ``short_history``, ``estimate``
    (the sales momentum, or the raw score without ``momentum``), ``expected`` (what size
    and history suggest), ``lift`` (estimate - expected), ``uncertainty``, ``lower``
    (estimate - uncertainty), ``rising`` (short history and lift + uncertainty > 0),
    ``order`` (rank among the rising, 1 = first; 0 for the others) and ``momentum``
    (True where the estimate is the sales momentum)."""
    raw = np.asarray(raw, dtype=float)
    short = short_history(features)
    if momentum is None:
        estimate = raw
        fitted = size_fit_rows(short)
        expected = expected_raw(features, raw, fitted)
        lift = estimate - expected
        spread = float(np.std(lift[fitted])) if fitted.sum() > 1 else 0.0
    else:
        design = momentum_design(features, raw)
        estimate = design @ momentum.full
        expected = design[:, :SIZE_COLUMNS] @ momentum.size
        lift, spread = estimate - expected, momentum.spread
    uncertainty = spread * np.sqrt(PRIOR_POSTS / (PRIOR_POSTS + measured_posts(features)))
    rising = short & (lift + uncertainty > 0)
    lower = estimate - uncertainty
    ids = np.asarray(creator_ids).astype(str)
    order = np.zeros(len(raw), np.int64)
    chosen = np.flatnonzero(rising)
    ranked = chosen[np.lexsort((ids[chosen], -lower[chosen]))]
    order[ranked] = np.arange(1, len(ranked) + 1)
    return pd.DataFrame(
        {
            "short_history": short,
            "estimate": estimate,
            "expected": expected,
            "lift": lift,
            "uncertainty": uncertainty,
            "lower": lower,
            "rising": rising,
            "order": order,
            "momentum": np.full(len(raw), momentum is not None),
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
