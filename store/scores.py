"""One model's raw scores, precomputed on a store's days: what a brief ranks by.

A brief ranks every candidate of its market by the model's raw score, and at a million
creators scoring them is most of a brief's time (about 11 us a candidate on one core: 2.3 s
for the largest market). The snapshot holds no model (a retrain does not invalidate it);
``python -m store score STORE --model URI`` adds, beside it, one model's raw scores of
every candidate in every category on the stored days, at one commission rate (the
model's default). A brief or a creator page then reads its candidates' raw scores (three
columns of one file) and only its top_k rows' features.

The raw scores are the model's own output on the stored features (``Scorer.raw``), row
for row: a partner list from them is the one computed from the features, to the bit. They
hold for every commission rate in the same **commission bin** as the one scored: between
two consecutive thresholds at which the model's trees split on commission_rate, every
tree takes the same branch, so every candidate's raw score is the same number. A brief
outside that bin (or a store without this model's scores) is scored from the features.

The model is identified by the digest of its booster's text (``model_digest``), not its
name: a model registered again under the same alias does not read another's scores. A
day built again (``python -m store build`` on new data) makes its old scores stale: they
are ignored until scored again.
"""

from __future__ import annotations

import hashlib
import math
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from store.layout import (
    COMPRESSION,
    ROW_GROUP_ROWS,
    SCORES,
    StoreError,
    market_file,
    publish_scores_day,
    scores_file,
    scores_folder,
    staging_folder,
)
from store.read import Store, candidate_frames, candidates, category_key, fetched_floats
from store.snapshot import CATEGORY_COLUMNS
from training.model import Scorer

RAW_COLUMNS = ("category", "creator_id", "followers", "raw")
CATEGORY_VALUES = tuple(
    c for c in CATEGORY_COLUMNS if c not in ("market", "creator_id", "category")
)
COMMISSION = "commission_rate"


def model_digest(scorer: Scorer) -> str:
    """Digest of the booster's text (the trees the model scores with)."""
    text = scorer.booster.model_to_string(num_iteration=scorer.booster.best_iteration or None)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def commission_thresholds(scorer: Scorer) -> np.ndarray:
    """The sorted distinct thresholds of the trees' splits on commission_rate."""
    found: set[float] = set()

    def walk(node: dict) -> None:
        if "split_feature" not in node:
            return
        if scorer.features[node["split_feature"]] == COMMISSION:
            found.add(float(node["threshold"]))
        walk(node["left_child"])
        walk(node["right_child"])

    model = scorer.booster.dump_model(num_iteration=scorer.booster.best_iteration or None)
    for tree in model["tree_info"]:
        walk(tree["tree_structure"])
    return np.array(sorted(found), dtype=float)


def commission_bin(thresholds: np.ndarray, rate: float) -> tuple[float, float]:
    """(low, high]: the rates every split of the model sends where it sends ``rate``
    (a split goes left when the value is at most its threshold)."""
    i = int(np.searchsorted(thresholds, rate, side="left"))
    low = float(thresholds[i - 1]) if i > 0 else -math.inf
    high = float(thresholds[i]) if i < len(thresholds) else math.inf
    return low, high


@dataclass(frozen=True)
class ScoreSet:
    """A model's precomputed scores in a store: its digest, the commission rate scored,
    that rate's bin and the stored days they are current for."""

    digest: str
    commission_rate: float
    low: float
    high: float
    days: frozenset[str]

    def covers(self, day: str, rate: float) -> bool:
        """True when the scores of ``day`` are a brief's at commission ``rate``: scored
        that day, and ``rate`` in the bin (positive: LightGBM may read 0 as missing)."""
        return day in self.days and rate > 0 and self.low < rate <= self.high


def score_set(store: Store, scorer: Scorer) -> ScoreSet | None:
    """The model's scores in the store (current days only), or None when it has none."""
    digest = model_digest(scorer)
    entry = store.manifest.get(SCORES, {}).get(digest)
    if entry is None:
        return None
    current = frozenset(
        day
        for day, record in entry["days"].items()
        if day in store.manifest["days"]
        and record["day_built_at"] == store.manifest["days"][day]["built_at"]
    )
    return ScoreSet(
        digest=digest,
        commission_rate=float(entry["commission_rate"]),
        low=-math.inf if entry["commission_low"] is None else float(entry["commission_low"]),
        high=math.inf if entry["commission_high"] is None else float(entry["commission_high"]),
        days=current,
    )


@dataclass(frozen=True)
class Pool:
    """A market's candidates in one category on a day with their raw scores at one
    commission rate, ordered by creator_id (arrays aligned)."""

    creator_id: np.ndarray  # object (str)
    followers: np.ndarray  # int64
    raw: np.ndarray  # float64

    def at_least(self, min_followers: int) -> Pool:
        """The candidates with at least ``min_followers`` followers."""
        if min_followers <= 0:
            return self
        keep = self.followers >= min_followers
        return Pool(self.creator_id[keep], self.followers[keep], self.raw[keep])


def stored_pool(store: Store, scores: ScoreSet, day: str, market: str, category: str) -> Pool:
    """The pool of a market and category on a scored day, read from the model's scores
    (an unknown category reads the unknown-category row's)."""
    if market not in store.manifest["days"][day]["markets"]:
        return Pool(np.empty(0, object), np.empty(0, np.int64), np.empty(0))
    found = (
        store.cursor()
        .execute(
            "SELECT creator_id, followers, raw FROM read_parquet($f) WHERE category = $c "
            "ORDER BY creator_id",
            {
                "f": str(scores_file(store.path, scores.digest, day, market)),
                "c": category_key(store, day, category),
            },
        )
        .fetchnumpy()
    )
    return Pool(
        np.asarray(found["creator_id"], dtype=object),
        np.asarray(found["followers"], dtype=np.int64),
        fetched_floats(found["raw"]),
    )


def computed_pool(
    store: Store, scorer: Scorer, day: str, market: str, category: str, rate: float
) -> Pool:
    """The pool of a market and category on a stored day, scored from the stored
    features at commission ``rate``."""
    pairs, features, _ = candidates(store, day, market, category)
    features[COMMISSION] = float(rate)
    raw = scorer.raw(features) if len(features) else np.empty(0)
    return Pool(
        pairs["creator_id"].to_numpy(dtype=object), pairs["followers"].to_numpy(np.int64), raw
    )


def market_pools(
    store: Store, scorer: Scorer, day: str, market: str, rate: float
) -> Iterator[tuple[str, Pool]]:
    """Every category's pool of a market on a stored day (the categories the day knows
    and the unknown one, in order) at commission ``rate``: the market's files read once,
    the same rows and raw scores as ``computed_pool`` of each category."""
    files = {t: str(market_file(store.path, day, market, t)) for t in ("creators", "categories")}
    read = store.cursor().execute
    creators = read(
        "SELECT * FROM read_parquet($f) ORDER BY creator_id", {"f": files["creators"]}
    ).df()
    rows = read(
        "SELECT * FROM read_parquet($f) ORDER BY category, creator_id",
        {"f": files["categories"]},
    ).df()
    ids = creators["creator_id"].astype(str).to_numpy()
    for category, part in rows.groupby("category", sort=True):
        if not np.array_equal(part["creator_id"].astype(str).to_numpy(), ids):
            raise StoreError(f"{files['categories']}: category {category!r} lacks candidates")
        frame = pd.concat(
            [creators, part[list(CATEGORY_VALUES)].reset_index(drop=True)],
            axis=1,
        )
        pairs, features, _ = candidate_frames(frame)
        features[COMMISSION] = float(rate)
        raw = scorer.raw(features) if len(features) else np.empty(0)
        yield (
            str(category),
            Pool(pairs["creator_id"].to_numpy(object), pairs["followers"].to_numpy(), raw),
        )


def day_scores(store: Store, scorer: Scorer, day: str, rate: float) -> dict[str, pd.DataFrame]:
    """Per market, the raw scores (``RAW_COLUMNS``) of every candidate of ``day`` in
    every category and the unknown one, at commission ``rate``, sorted by category then
    creator_id."""
    out = {}
    for market in store.markets(day):
        out[market] = pd.concat(
            [
                pd.DataFrame(
                    {
                        "category": category,
                        "creator_id": pool.creator_id,
                        "followers": pool.followers,
                        "raw": pool.raw,
                    }
                )
                for category, pool in market_pools(store, scorer, day, market, rate)
            ],
            ignore_index=True,
        )
    return out


def write_scores(
    store: Store,
    scorer: Scorer,
    model_version: str,
    days: list[str],
    rate: float,
    progress: Callable[[str], None] = lambda message: None,
) -> list[str]:
    """Score ``days`` (stored days) with the model at commission ``rate`` and publish
    each day's scores whole; the days written."""
    digest = model_digest(scorer)
    low, high = commission_bin(commission_thresholds(scorer), rate)
    model = {
        "model_version": model_version,
        "commission_rate": float(rate),
        "commission_low": None if math.isinf(low) else low,
        "commission_high": None if math.isinf(high) else high,
    }
    folder = scores_folder(store.path, digest)
    for day in days:
        staged = staging_folder(folder, day)
        try:
            rows = {}
            for market, frame in day_scores(store, scorer, day, rate).items():
                target = staged / f"market={market}"
                target.mkdir(parents=True)
                pq.write_table(
                    pa.Table.from_pandas(frame, preserve_index=False),
                    target / "raw.parquet",
                    compression=COMPRESSION,
                    row_group_size=ROW_GROUP_ROWS,
                )
                rows[market] = len(frame)
        except BaseException:
            shutil.rmtree(staged, ignore_errors=True)
            raise
        record = {
            "day_built_at": store.manifest["days"][day]["built_at"],
            "markets": rows,
            "scored_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        publish_scores_day(store.path, staged, digest, day, {"model": model, "day": record})
        progress(f"scored {day}: {sum(rows.values()):,} (creator, category) rows")
    return days


def days_to_score(store: Store, scorer: Scorer, rate: float, wanted: list[str]) -> list[str]:
    """The ``wanted`` days whose scores at ``rate`` are missing or stale; StoreError for
    a day the store does not hold."""
    missing = [d for d in wanted if d not in store.manifest["days"]]
    if missing:
        raise StoreError(
            f"{store.path}: day {missing[0]} is not stored (stored: {', '.join(store.days)})"
        )
    held = score_set(store, scorer)
    if held is None or held.commission_rate != rate:
        return list(wanted)
    return [d for d in wanted if d not in held.days]
