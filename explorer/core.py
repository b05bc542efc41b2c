"""The explorer's state and its first question: a brief's partner list.

The explorer reads a snapshot store (``store``): every answer is a DuckDB query on the
stored day it needs plus serving's own functions (``explained_top``), so a partner list
here is the one ``python -m serving --store`` (and ``--data``) writes for the same brief
and model, and memory follows the largest brief, not the size of the history.
A brief ranks the **pool** of its market and category (every candidate's raw score at the
brief's commission): read from the model's precomputed scores when the store has them
for that day and commission bin (``python -m store score``), else scored from the stored
features; the last POOLS_KEPT pools are kept, so a creator page's rank and the next brief
of the same market, category and commission bin do not score them again. Only the top_k
rows' features are read. ``explorer_on_store`` opens a store; ``explorer_from`` builds a
small one from validated tables first (a temporary store of the data's last day and monthly days back), for a
one-off look at a data directory. A creator's profile, the second question, is
``explorer.creators``.
"""

from __future__ import annotations

import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from marketplace.contract import STRING_DTYPE
from marketplace.reference import TIER_LABELS, follower_tier
from serving.briefs import BriefError, check_briefs
from serving.model import check_features
from serving.partner_list import (
    INDEX_COLUMNS,
    with_model_defaults,
)
from store.build import build_in_memory, requested_days
from store.layout import StoreError, market_file
from store.read import Store, creator_directory, open_store, stored_day
from store.scores import (
    Pool,
    ScoreSet,
    commission_bin,
    commission_thresholds,
    computed_pool,
    score_set,
    stored_pool,
)
from store.serve import brief_from_pool
from training.model import Scorer

MAX_TOP_K = 1000
POOLS_KEPT = 8  # (day, market, category, commission bin) pools kept: ids, followers, raw
HISTORY_MONTHS = 6  # a temporary store (explorer_from) holds the last day and 6 months back
MONTH_DAYS = 30
DAY = pd.Timedelta(days=1)


class QueryError(ValueError):
    """A request the data cannot answer; the message is one line: ``field: rule``."""

    def __init__(self, field_name: str, rule: str):
        super().__init__(f"{field_name}: {rule}")
        self.field = field_name


class UnknownCreator(LookupError):
    """A creator_id that is not in the store."""


@dataclass
class Explorer:
    """A model and an opened store; read-only once built."""

    store: Store
    scorer: Scorer
    model_version: str
    creators: pd.DataFrame  # every stored creator, indexed by creator_id: market, primary_category
    markets: tuple[str, ...]
    categories: tuple[str, ...]
    days: tuple[pd.Timestamp, ...]  # the stored days (UTC midnights), oldest first
    scores: ScoreSet | None = None  # the model's precomputed scores in the store, if any
    thresholds: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    keep: object = field(default=None, repr=False)  # a temporary store's folder, kept alive
    cache: OrderedDict = field(default_factory=OrderedDict, repr=False)  # pools (pool_of)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def first_day(self) -> pd.Timestamp:
        """The oldest stored day."""
        return self.days[0]

    @property
    def last_day(self) -> pd.Timestamp:
        """The latest stored day: the default as_of."""
        return self.days[-1]

    def counts(self) -> dict:
        """Sizes of the store, for the health check."""
        return {
            "creators": len(self.creators),
            "markets": len(self.markets),
            "categories": len(self.categories),
            "first_day": self.first_day.date().isoformat(),
            "last_day": self.last_day.date().isoformat(),
            "days": [d.date().isoformat() for d in self.days],
        }


def explorer_on_store(store_path, scorer: Scorer, model_version: str) -> Explorer:
    """The explorer over the store at ``store_path`` (``store.read.open_store``'s checks:
    StoreError, one line); ModelError when the model expects other features."""
    check_features(scorer, model_version)
    store = open_store(store_path)
    days = store.days
    return Explorer(
        store=store,
        scorer=scorer,
        model_version=model_version,
        creators=creator_directory(store),
        markets=tuple(sorted({m for d in days for m in store.markets(d)})),
        categories=tuple(store.categories(days[-1])),
        days=tuple(pd.Timestamp(d, tz="UTC").as_unit("us") for d in days),
        scores=score_set(store, scorer),
        thresholds=commission_thresholds(scorer),
    )


def pool_of(ex: Explorer, day: str, market: str, category: str, rate: float) -> Pool:
    """The candidates of ``market`` on ``day`` in ``category`` with their raw scores at
    commission ``rate`` (no follower minimum): from the model's precomputed scores when
    they cover the day and rate, else scored; the last POOLS_KEPT are kept."""
    scores = ex.scores if ex.scores is not None and ex.scores.covers(day, rate) else None
    key = (day, market, category, "stored" if scores else commission_bin(ex.thresholds, rate))
    with ex.lock:
        kept = ex.cache.get(key)
        if kept is not None:
            ex.cache.move_to_end(key)
            return kept
    if scores is not None:
        pool = stored_pool(ex.store, scores, day, market, category)
    else:
        pool = computed_pool(ex.store, ex.scorer, day, market, category, rate)
    with ex.lock:
        ex.cache[key] = pool
        while len(ex.cache) > POOLS_KEPT:
            ex.cache.popitem(last=False)
    return pool


def explorer_from(
    tables: dict[str, pd.DataFrame],
    scorer: Scorer,
    model_version: str,
    progress: Callable[[str], None] = lambda message: None,
    data: Path | None = None,
) -> Explorer:
    """The explorer over a temporary store built from validated ``tables`` (of the data
    directory ``data``, when known): the day after the last post and every MONTH_DAYS
    back over HISTORY_MONTHS. The store lives as long as the Explorer."""
    posted = tables["posts"]["posted_at"]
    if not len(posted):
        raise StoreError("the data has no posts: nothing to explore")
    last = posted.max().normalize() + DAY
    folder = tempfile.TemporaryDirectory(prefix="explorer-store-")
    days = requested_days(last, MONTH_DAYS, HISTORY_MONTHS * MONTH_DAYS)
    days = [d for d in days if d > posted.min().normalize()]
    progress(f"building a temporary store of {len(days)} days ({days[0].date()} to {last.date()})")
    build_in_memory(Path(folder.name), data, tables, days, progress=progress)
    ex = explorer_on_store(folder.name, scorer, model_version)
    ex.keep = folder
    return ex


def creator_market(ex: Explorer, creator_id: str) -> str | None:
    """The market of ``creator_id`` (None when the store has no such creator): what an
    access scope checks before anything about the creator is read."""
    try:
        market = ex.creators.at[creator_id, "market"]
    except KeyError:
        return None
    return str(market)


# ------------------------------------------------------------------ briefs


def checked_brief(ex: Explorer, brief: Mapping) -> pd.DataFrame:
    """One brief (a mapping of the contract's brief fields; ``brief_id``, ``as_of``,
    ``top_k``, ``min_followers`` and ``commission_rate`` optional) as serving's
    canonical one-row briefs frame with the model's default commission filled in.

    QueryError for an unknown market or category, an as_of outside the data's days, a
    top_k above MAX_TOP_K, or anything ``check_briefs`` rejects.
    """
    values = {k: v for k, v in brief.items() if v is not None}
    market, category = values.get("market"), values.get("category")
    if market not in ex.markets:
        raise QueryError(
            "market", f"unknown market {market!r} (the data has {', '.join(ex.markets)})"
        )
    if category not in ex.categories:
        raise QueryError(
            "category", f"unknown category {category!r} (the data has {', '.join(ex.categories)})"
        )
    as_of = _as_of(ex, values.get("as_of"))
    top_k = values.get("top_k", 50)
    if isinstance(top_k, (int, np.integer)) and not 1 <= top_k <= MAX_TOP_K:
        raise QueryError("top_k", f"must be between 1 and {MAX_TOP_K}")
    values.setdefault("brief_id", default_brief_id(market, category, as_of))
    frame = pd.DataFrame([{**values, "as_of": as_of}])
    try:
        frame = check_briefs(frame, source="brief")
    except BriefError as err:
        raise QueryError("brief", str(err).removeprefix("brief: ")) from None
    return with_model_defaults(frame, ex.scorer)


def default_brief_id(market: str, category: str, as_of: pd.Timestamp) -> str:
    """A brief's id when none is given: ``<market>-<category>-<as_of date>``, lower case."""
    return f"{market}-{category}-{as_of.date().isoformat()}".lower()


def _as_of(ex: Explorer, value) -> pd.Timestamp:
    """``value`` as a UTC timestamp (naive = UTC; None = the latest stored day), which
    must be a stored day."""
    if value is None or value == "":
        return ex.last_day
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise QueryError("as_of", f"must be a timestamp (ISO-8601), not {value!r}") from None
    if pd.isna(stamp):
        raise QueryError("as_of", "must be a timestamp (ISO-8601)")
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    try:
        stored_day(ex.store, stamp)
    except StoreError as err:
        raise QueryError("as_of", str(err).split(": ", 1)[1]) from None
    return stamp.as_unit("us")


def day_of(brief: pd.DataFrame) -> str:
    """The stored day (``YYYY-MM-DD``) of a one-row checked brief."""
    return brief["as_of"].iloc[0].strftime("%Y-%m-%d")


def partner_list(ex: Explorer, brief: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The contract's partner list of a ``checked_brief`` and its number of candidates
    (no rows when none): its pool (``pool_of``) ranked, and the top_k explained by
    serving's own functions (``store.serve.brief_from_pool``)."""
    b = brief.iloc[0]
    day = day_of(brief)
    pool = pool_of(ex, day, b["market"], b["category"], float(b["commission_rate"]))
    return brief_from_pool(ex.store, brief, day, pool, ex.scorer, ex.model_version)


def followers_on(ex: Explorer, brief: pd.DataFrame, creator_ids) -> np.ndarray:
    """Followers (the latest snapshot known at the brief's day; 0 when none) of creators
    of the brief's market that are candidates that day, int64."""
    ids = pd.Series(creator_ids, dtype=STRING_DTYPE)
    if ids.empty:
        return np.zeros(0, np.int64)
    path = market_file(ex.store.path, day_of(brief), brief["market"].iloc[0], "creators")
    found = (
        ex.store.cursor()
        .execute(
            "SELECT creator_id, followers FROM read_parquet($p) WHERE list_contains($ids, creator_id)",
            {"p": str(path), "ids": ids.tolist()},
        )
        .df()
    )
    by_id = pd.Series(found["followers"].to_numpy(np.int64), index=found["creator_id"].astype(str))
    return by_id.reindex(ids.astype(str)).fillna(0).to_numpy(np.int64)


def partner_view(ex: Explorer, brief: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """The partner list's rows with each creator's ``followers`` and ``follower_tier``
    (text) added, for the page."""
    followers = followers_on(ex, brief, rows["creator_id"])
    return rows.assign(
        followers=followers, follower_tier=follower_tier(followers).astype(str).to_numpy()
    )


SORTABLE = ("rank", "creator_id", "followers", "score", "expected_gmv", *INDEX_COLUMNS)


def sorted_rows(
    rows: pd.DataFrame, column: str, descending: bool, tier: str | None = None
) -> pd.DataFrame:
    """``rows`` of one follower tier (all when None), sorted by ``column`` (missing values
    last, ties by rank). QueryError for a column outside SORTABLE or an unknown tier."""
    if column not in SORTABLE:
        raise QueryError("sort", f"unknown column {column!r} (one of {', '.join(SORTABLE)})")
    if tier is not None and tier not in TIER_LABELS:
        raise QueryError(
            "tier", f"unknown follower tier {tier!r} (one of {', '.join(TIER_LABELS)})"
        )
    if tier is not None:
        rows = rows[rows["follower_tier"] == tier]
    return rows.sort_values(
        [column, "rank"], ascending=[not descending, True], na_position="last", kind="stable"
    )


def records(frame: pd.DataFrame) -> list[dict]:
    """Rows as JSON-ready dicts: numpy scalars as Python numbers, NaN as None."""
    out = frame.astype(object).where(frame.notna(), None)
    return [
        {k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
        for row in out.to_dict("records")
    ]
