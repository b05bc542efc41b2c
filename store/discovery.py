"""Look-alikes and rising creators read from a stored day (the rules: ``serving.discovery``).

Both start from one market's candidates in one category on a stored day: one DuckDB query
(``store.read.candidates``: creator_id, followers, features, the stored indices among the
market), kept in a small LRU (``MARKET_CACHE`` rows sets, per store, day, market and
category), so a second question on the same market is a numpy scan of memory. The rows
are built with serving's ``explained_top`` (score, indices, contributions, reasons, and
whatever columns it gives every partner-list row) and then put in the list's own order:

- ``similar_rows``: the k creators nearest to one creator, ``rank`` 1 = nearest, with
  ``distance`` (percentile points of the look-alike signals) and ``followers``;
- ``rising_rows``: the market's rising creators in the category, ``rank`` 1 = first, with
  ``sales_90d``, ``lift``, ``uncertainty``, ``history_days``, ``followers``, ``why`` and ``provisional``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import pandas as pd

from serving.discovery import (
    MOMENTUM_DAYS,
    MOMENTUM_TARGET,
    Momentum,
    fit_momentum,
    lifting_families,
    lookalike_distance,
    lookalike_signals,
    nearest,
    rising_frame,
    rising_reason,
)
from serving.partner_list import PARTNER_COLUMNS, empty_partner_list, explained_top
from store.layout import StoreError
from store.read import Store, candidate_frames, candidates, joined_candidates
from store.snapshot import OTHER
from training.model import CONTRIB_COLUMNS, Scorer

MARKET_CACHE = 8  # market row sets kept (one market of a 1,000,000-creator store: ~100 MB)
DEFAULT_K = 20
MAX_K = 200
DEFAULT_RISING = 100
OWN = "own"  # a rising list without a category: each creator in its declared category
SIMILAR_COLUMNS = (*PARTNER_COLUMNS, "distance", "followers")
RISING_COLUMNS = (
    *PARTNER_COLUMNS,
    "sales_90d",
    "lift",
    "uncertainty",
    "history_days",
    "followers",
    "why",
    "provisional",
)


class NotACandidate(LookupError):
    """A creator with no row in its market on the asked day (no post in the 90 days
    before it); the message is one line."""


@dataclass(frozen=True)
class MarketRows:
    """One market's candidates in one category on a stored day, ordered by creator_id."""

    creator_id: np.ndarray  # str
    followers: np.ndarray  # int64
    features: pd.DataFrame  # the registry's columns, commission_rate NaN
    indices: pd.DataFrame  # the nine stored indices among the market
    lookalike: np.ndarray  # (n, 9) float: serving.discovery.lookalike_signals
    category: np.ndarray  # the category each row's category features are of

    def position(self, creator_id: str) -> int | None:
        """The row of ``creator_id``, None when it is not a candidate."""
        at = int(np.searchsorted(self.creator_id, creator_id))
        found = at < len(self.creator_id) and self.creator_id[at] == creator_id
        return at if found else None


class _LRU:
    """A thread-safe least-recently-used map of a few entries."""

    def __init__(self, size: int):
        self.size, self.lock = size, threading.Lock()
        self.items: OrderedDict = OrderedDict()

    def get(self, key, make):
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        value = make()
        with self.lock:
            self.items[key] = value
            self.items.move_to_end(key)
            while len(self.items) > self.size:
                self.items.popitem(last=False)
        return value

    def clear(self) -> None:
        with self.lock:
            self.items.clear()


_MARKETS = _LRU(MARKET_CACHE)
_RISING = _LRU(MARKET_CACHE)


def clear_caches() -> None:
    """Forget every cached market (for measuring a cold read)."""
    _MARKETS.clear()
    _RISING.clear()


def _day_key(store: Store, day: str) -> tuple:
    return (str(store.path), day, store.manifest["days"][day].get("built_at"))


def market_rows(store: Store, day: str, market: str, category: str | None) -> MarketRows:
    """The market's candidates in ``category`` on ``day`` (cached, see the module); with
    ``category`` None (OWN) each in its declared primary category (``own_category``)."""

    def read() -> MarketRows:
        if category is None:
            pairs, features, indices, own = own_category(store, day, market)
        else:
            pairs, features, indices = candidates(store, day, market, category)
            own = np.full(len(pairs), category, dtype=object)
        ids = pairs["creator_id"].to_numpy().astype(str)
        return MarketRows(
            creator_id=ids,
            followers=pairs["followers"].to_numpy(np.int64),
            features=features,
            indices=indices,
            lookalike=lookalike_signals(features, indices),
            category=own,
        )

    return _MARKETS.get((*_day_key(store, day), market, category), read)


def own_category(store: Store, day: str, market: str) -> tuple:
    """A market's candidates on ``day``, each with its category features and index in its
    declared primary category (the row of a category the data does not know, OTHER, when
    it declares none or another): (pairs, features, indices, category), ordered by
    creator_id, as ``store.read.candidates`` gives them."""
    if market not in store.manifest["days"][day]["markets"]:
        pairs, features, indices = candidates(store, day, market, OTHER)
        return pairs, features, indices, np.zeros(0, dtype=object)
    frame = joined_candidates(
        store,
        day,
        market,
        "k.category = CASE WHEN list_contains($known, c.primary_category) "
        "THEN c.primary_category ELSE $other END ORDER BY c.creator_id",
        {"known": store.categories(day), "other": OTHER},
        extra=", c.primary_category AS own",
    )
    known = frame["own"].isin(store.categories(day)).to_numpy()
    own = np.where(known, frame["own"].to_numpy(dtype=object), OTHER)
    return (*candidate_frames(frame), own)


def row_briefs(
    brief_id: str, market: str, categories, day: str, commission_rate: float
) -> pd.DataFrame:
    """Checked briefs for ``explained_top``, one per listed creator (each in its own
    category, so its reasons name it), all called ``brief_id``... then renamed."""
    n = len(categories)
    return pd.DataFrame(
        {
            "brief_id": pd.Series([f"{brief_id}#{i}" for i in range(n)], dtype="str"),
            "market": [market] * n,
            "category": pd.Series(list(categories), dtype="str"),
            "as_of": pd.Series([pd.Timestamp(day, tz="UTC")] * n).astype("datetime64[us, UTC]"),
            "top_k": np.ones(n, np.int64),
            "min_followers": np.zeros(n, np.int64),
            "commission_rate": np.full(n, float(commission_rate)),
        }
    )


def explained_rows(
    rows: MarketRows,
    chosen: np.ndarray,
    brief_id: str,
    market: str,
    day: str,
    commission_rate: float,
    scorer: Scorer,
    model_version: str,
) -> pd.DataFrame:
    """``explained_top``'s rows for the candidates at positions ``chosen``, in that
    order: ``brief_id`` the list's, ``rank`` the position in it (1 = first),
    ``followers`` added. Each row is explained as a brief of its own category (the
    rows' ``category``) and keeps its stored indices (among the whole market)."""
    if len(chosen) == 0:
        return empty_partner_list().assign(followers=pd.Series(dtype="int64"))
    briefs = row_briefs(brief_id, market, rows.category[chosen], day, commission_rate)
    pairs = pd.DataFrame(
        {
            "brief": np.arange(len(chosen), dtype=np.int64),
            "creator_id": pd.Series(rows.creator_id[chosen], dtype="str"),
            "followers": rows.followers[chosen],
        }
    )
    features = rows.features.iloc[chosen].reset_index(drop=True)
    features["commission_rate"] = float(commission_rate)
    indices = rows.indices.iloc[chosen].reset_index(drop=True)
    out = explained_top(briefs, pairs, features, scorer, model_version, indices)
    # expected_gmv, gmv_low, gmv_high and provisional arrive here with explained_top's
    # other columns once every partner-list row carries them.
    return out.assign(
        brief_id=pd.Series([brief_id] * len(out), dtype="str"),
        rank=np.arange(1, len(out) + 1),
        followers=rows.followers[chosen],
    )


def similar_rows(
    store: Store,
    scorer: Scorer,
    model_version: str,
    creator_id: str,
    market: str,
    category: str,
    day: str,
    k: int = DEFAULT_K,
    commission_rate: float | None = None,
) -> pd.DataFrame:
    """The ``k`` candidates of ``market`` nearest to ``creator_id`` in its nine look-alike
    signals in ``category`` on ``day`` (``serving.discovery.lookalike_signals``,
    ``lookalike_distance``), nearest first:
    the partner-list columns for a brief of that market and category, then ``distance``
    and ``followers``. NotACandidate when the creator has no row that day."""
    rows = market_rows(store, day, market, category)
    at = rows.position(creator_id)
    if at is None:
        raise NotACandidate(
            f"creator_id: {creator_id!r} is not a candidate of market {market} on {day} "
            "(no post in the 90 days before it)"
        )
    distance = lookalike_distance(rows.lookalike, rows.lookalike[at])
    chosen = nearest(distance, rows.creator_id, k, exclude=at)
    rate = scorer.commission_rate_median if commission_rate is None else commission_rate
    brief_id = f"similar-{creator_id}"
    out = explained_rows(rows, chosen, brief_id, market, day, rate, scorer, model_version)
    out["distance"] = distance[chosen]
    return out[[*out.columns.drop(["distance", "followers"]), "distance", "followers"]]


def momentum_day(store: Store, day: str) -> str | None:
    """The latest stored day at least ``MOMENTUM_DAYS`` before ``day`` (the rising
    list's momentum is fitted on it), None when there is none."""
    latest = pd.Timestamp(day) - pd.Timedelta(days=MOMENTUM_DAYS)
    earlier = [d for d in store.days if pd.Timestamp(d) <= latest]
    return earlier[-1] if earlier else None


def market_momentum(
    store: Store,
    scorer: Scorer,
    now: MarketRows,
    earlier_day: str,
    market: str,
    category: str | None,
    rate: float,
) -> Momentum | None:
    """The sales momentum of ``market`` in ``category`` for the day of ``now`` (those
    candidates; ``serving.discovery.fit_momentum``), fitted on ``earlier_day``
    (``momentum_day``) with what its candidates then sold by the day; None when the
    market had none then or too few newcomers to fit."""
    if market not in store.markets(earlier_day):
        return None
    earlier = market_rows(store, earlier_day, market, category)
    if not len(earlier.creator_id):
        return None
    sold = pd.Series(now.features[MOMENTUM_TARGET].to_numpy(float), index=now.creator_id)
    features = earlier.features.assign(commission_rate=float(rate))
    later = sold.reindex(earlier.creator_id).to_numpy(float)
    return fit_momentum(earlier.features, scorer.raw(features), later)


def rising_table(
    store: Store,
    scorer: Scorer,
    model_version: str,
    market: str,
    category: str | None,
    day: str,
    commission_rate: float | None = None,
) -> tuple[MarketRows, pd.DataFrame]:
    """The market's candidates in ``category`` and, row for row, ``rising_frame`` of
    their raw scores and the market's momentum (``market_momentum`` on ``momentum_day``;
    cached per model, commission, day, momentum day, market and category)."""
    rows = market_rows(store, day, market, category)
    rate = scorer.commission_rate_median if commission_rate is None else commission_rate
    earlier = momentum_day(store, day)

    def compute() -> pd.DataFrame:
        if not len(rows.creator_id):
            return rising_frame(rows.features, np.zeros(0), rows.creator_id)
        features = rows.features.assign(commission_rate=float(rate))
        momentum = (
            None
            if earlier is None
            else market_momentum(store, scorer, rows, earlier, market, category, float(rate))
        )
        return rising_frame(features, scorer.raw(features), rows.creator_id, momentum)

    key = (model_version, id(scorer), float(rate), *_day_key(store, day), market, category)
    key += _day_key(store, earlier) if earlier else ()
    return rows, _RISING.get(key, compute)


def rising_rows(
    store: Store,
    scorer: Scorer,
    model_version: str,
    market: str,
    category: str | None,
    day: str,
    top: int = DEFAULT_RISING,
    commission_rate: float | None = None,
) -> tuple[pd.DataFrame, int]:
    """The first ``top`` rising creators of ``market`` in ``category`` on ``day``
    (``serving.discovery.rising_frame``), first first, and how many are rising in all:
    the partner-list columns, then sales_90d (the momentum's estimate of the next 90
    days' gmv, in the data's currency; null when the estimate is the raw score), lift and
    uncertainty (in the estimate's units: log(1 + gmv / 100), or raw score), history_days,
    followers, why (the families that lift it; provisional) and provisional (True)."""
    rows, table = rising_table(store, scorer, model_version, market, category, day, commission_rate)
    order = table["order"].to_numpy()
    rising = int((order > 0).sum())
    chosen = np.flatnonzero(order > 0)
    chosen = chosen[np.argsort(order[chosen])][:top]
    rate = scorer.commission_rate_median if commission_rate is None else commission_rate
    brief_id = f"rising-{market}-{category or OWN}-{day}".lower()
    out = explained_rows(rows, chosen, brief_id, market, day, rate, scorer, model_version)
    picked = table.iloc[chosen].reset_index(drop=True)
    days = rows.features["history_days"].to_numpy(float)[chosen]
    contrib = out[list(CONTRIB_COLUMNS)]
    families = lifting_families(out, contrib)
    estimate = picked["estimate"].to_numpy(float)
    out["sales_90d"] = np.where(picked["momentum"], 100.0 * np.expm1(estimate), np.nan)
    out["lift"] = picked["lift"].to_numpy(float)
    out["uncertainty"] = picked["uncertainty"].to_numpy(float)
    out["history_days"] = days
    out["why"] = pd.Series(
        [
            rising_reason(families[i], out.iloc[i], days[i], rows.category[chosen[i]])
            for i in range(len(out))
        ],
        dtype="str",
    )
    out["provisional"] = True
    tail = ["sales_90d", "lift", "uncertainty", "history_days", "followers", "why", "provisional"]
    return out[[*out.columns.drop(tail), *tail]], rising


def check_k(k: int) -> int:
    """``k`` when 1 <= k <= MAX_K; StoreError otherwise."""
    if not 1 <= k <= MAX_K:
        raise StoreError(f"k: must be between 1 and {MAX_K}, not {k}")
    return k
