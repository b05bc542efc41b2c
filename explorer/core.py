"""The explorer's state and its first question: a brief's partner list.

``explorer_from`` indexes the data once (the feature history, each market's creators)
and keeps it with the model; every answer then comes from memory through serving's own
functions, so a partner list here is the one ``python -m serving`` writes for the same
brief, model and data. A creator's profile, the second question, is ``explorer.creators``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.build import History, build_features, index_history
from features.indices import family_indices
from features.timeline import micros
from marketplace.contract import STRING_DTYPE, TIMESTAMP_DTYPE
from marketplace.reference import TIER_LABELS, follower_tier
from serving.briefs import BriefError, check_briefs
from serving.candidates import current_followers, feature_requests, find_candidates, market_creators
from serving.partner_list import (
    INDEX_COLUMNS,
    empty_partner_list,
    explained_top,
    with_model_defaults,
)
from training.model import Scorer

MAX_TOP_K = 1000
HISTORY_MONTHS = 6  # points in a creator's index history, one per MONTH_DAYS back
MONTH_DAYS = 30
TARGET_QUANTILE = 0.75  # the counterfactual's peer percentile, in the brand's direction
PEER_CACHE_SIZE = 8  # peer sets kept for creator pages (each: peers x features floats)
DAY = pd.Timedelta(days=1)


class QueryError(ValueError):
    """A request the data cannot answer; the message is one line: ``field: rule``."""

    def __init__(self, field_name: str, rule: str):
        super().__init__(f"{field_name}: {rule}")
        self.field = field_name


class UnknownCreator(LookupError):
    """A creator_id that is not in the data."""


@dataclass
class ReadyCandidates:
    """A brief's candidates without a follower minimum (``find_candidates`` pairs, brief
    0), their features (commission_rate missing) and their indices among themselves."""

    pairs: pd.DataFrame
    features: pd.DataFrame
    indices: pd.DataFrame


@dataclass
class PeerSet:
    """The candidates of a one-creator brief: features (indexed by creator_id), their
    indices among themselves, and each feature's counterfactual target."""

    features: pd.DataFrame
    indices: pd.DataFrame
    targets: pd.Series


@dataclass
class Explorer:
    """A model and a data directory, indexed once; read-only once built (the peer
    cache aside, which a lock guards)."""

    tables: dict[str, pd.DataFrame]
    history: History
    by_market: dict[str, np.ndarray]
    scorer: Scorer
    model_version: str
    creators: pd.DataFrame  # indexed by creator_id: market, primary_category
    markets: tuple[str, ...]
    categories: tuple[str, ...]
    first_day: pd.Timestamp  # midnight of the first post (UTC)
    last_day: pd.Timestamp  # midnight after the latest post: the default as_of
    ready: dict = field(repr=False)  # (market, category) -> ReadyCandidates at last_day
    _peers: OrderedDict = field(default_factory=OrderedDict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def counts(self) -> dict:
        """Sizes of the indexed data, for the health check."""
        return {
            "creators": len(self.creators),
            "markets": len(self.markets),
            "categories": len(self.categories),
            "first_day": self.first_day.date().isoformat(),
            "last_day": self.last_day.date().isoformat(),
        }


def explorer_from(
    tables: dict[str, pd.DataFrame],
    scorer: Scorer,
    model_version: str,
    progress=lambda message: None,
) -> Explorer:
    """Index validated ``tables`` once for ``scorer``: the feature history, each
    market's creators, and every market's candidates as of the data's last day with
    their features in every category (``ready_candidates``). The raw posts are released
    from a copy of the tables dict once read (the history holds what features need).
    ``progress`` receives a line per step."""
    tables = dict(tables)
    posted = tables["posts"]["posted_at"]
    first_day = posted.min().normalize() if len(posted) else pd.Timestamp(0, tz="UTC")
    last_day = (posted.max().normalize() + DAY) if len(posted) else pd.Timestamp(0, tz="UTC")
    history = index_history(tables, release_posts=True)
    by_market = market_creators(tables, history)
    creators = tables["creators"].set_index("creator_id")[["market", "primary_category"]]
    markets = tuple(sorted(creators["market"].unique()))
    categories = tuple(str(c) for c in history.categories)
    progress(
        f"indexed {len(creators):,} creators; building the candidates' features as of "
        f"{last_day.date()} in {len(markets)} markets x {len(categories)} categories"
    )
    ready = ready_candidates(tables, history, by_market, markets, categories, last_day)
    return Explorer(
        tables=tables,
        history=history,
        by_market=by_market,
        scorer=scorer,
        model_version=model_version,
        creators=creators,
        markets=markets,
        categories=categories,
        first_day=first_day,
        last_day=last_day.as_unit("us"),
        ready=ready,
    )


def ready_candidates(
    tables, history: History, by_market: dict, markets, categories, as_of: pd.Timestamp
) -> dict[tuple[str, str], ReadyCandidates]:
    """Per (market, category), the ReadyCandidates of a brief as of ``as_of``: what
    every brief as of that day starts from."""
    out = {}
    for market in markets:
        n = len(categories)
        briefs = pd.DataFrame(
            {
                "brief_id": list(categories),
                "market": [market] * n,
                "category": list(categories),
                "as_of": pd.Series([as_of] * n).astype(TIMESTAMP_DTYPE),
                "top_k": 1,
                "min_followers": 0,
                "commission_rate": np.nan,
            }
        )
        pairs = find_candidates(tables, briefs, history, by_market)
        features = build_features(tables, feature_requests(briefs, pairs), history)
        for j, category in enumerate(categories):
            rows = (pairs["brief"] == j).to_numpy()
            these = features[rows].reset_index(drop=True)
            out[(market, category)] = ReadyCandidates(
                pairs=pairs[rows].assign(brief=0).reset_index(drop=True),
                features=these,
                indices=family_indices(these, peers=np.zeros(len(these))),
            )
    return out


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
    """``value`` as a UTC timestamp (naive = UTC; None = the data's last day), within
    [first_day, last_day]."""
    if value is None or value == "":
        return ex.last_day
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise QueryError("as_of", f"must be a timestamp (ISO-8601), not {value!r}") from None
    if pd.isna(stamp):
        raise QueryError("as_of", "must be a timestamp (ISO-8601)")
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    if not ex.first_day <= stamp <= ex.last_day:
        raise QueryError(
            "as_of", f"must be within the data, {ex.first_day.date()} to {ex.last_day.date()}"
        )
    return stamp.as_unit("us")


def partner_list(ex: Explorer, brief: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The contract's partner list of a ``checked_brief`` and its number of candidates:
    serving's candidates, features and ``explained_top``, from the ready candidates when
    the brief is as of the data's last day (no rows when no candidates)."""
    pairs, features, indices = candidates_and_features(ex, brief)
    if pairs.empty:
        return empty_partner_list(), 0
    rows = explained_top(brief, pairs, features, ex.scorer, ex.model_version, indices)
    return rows, len(pairs)


def candidates_and_features(
    ex: Explorer, brief: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None]:
    """``find_candidates`` pairs of a one-row checked brief, their features (row for
    row, the brief's commission_rate) and, when known, their indices: taken from
    ``ex.ready`` as of the last day, built otherwise (indices None)."""
    b = brief.iloc[0]
    ready = ex.ready.get((b["market"], b["category"])) if b["as_of"] == ex.last_day else None
    if ready is None:
        pairs = find_candidates(ex.tables, brief, ex.history, ex.by_market)
        features = build_features(ex.tables, feature_requests(brief, pairs), ex.history)
        return pairs, features, None
    keep = (ready.pairs["followers"] >= b["min_followers"]).to_numpy()
    features = ready.features[keep].reset_index(drop=True)
    features["commission_rate"] = float(b["commission_rate"])
    indices = ready.indices if keep.all() else None  # else: among the remaining peers
    return ready.pairs[keep].reset_index(drop=True), features, indices


def followers_at(ex: Explorer, creator_ids, as_of: pd.Timestamp) -> np.ndarray:
    """Current followers (the latest snapshot known at as_of; 0 when none), int64."""
    code = ex.history.creator_index.get_indexer(pd.Index(creator_ids, dtype=STRING_DTYPE))
    at = np.full(len(code), micros(pd.Series([as_of]))[0])
    return current_followers(ex.history, code.astype(np.int64), at)


def partner_view(ex: Explorer, brief: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """The partner list's rows with each creator's ``followers`` and ``follower_tier``
    (text) added, for the page."""
    followers = followers_at(ex, rows["creator_id"], brief["as_of"].iloc[0])
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
