"""Training from a pair table written as Parquet parts (``python -m training DIR --pairs
PAIRS``): the raw tables' facts read part by part, the pairs through
``training.table.PartPairs``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq

from features.build import index_history
from marketplace.contract import TABLES
from marketplace.io import part_paths, read_part_batches, read_path, read_table, table_path
from training.config import TrainConfig
from training.reference import SEED, population_features, reference_as_of
from training.run import DataFacts, TrainingError, TrainResult, latest_moment, train_on_table
from training.table import PartPairs, pair_parts

# Creators read back (a seeded sample) for the drift reference: the population's deciles
# need no more, and their rows of every table fit in memory at any scale.
REFERENCE_CREATORS = 20_000
BATCH_ROWS = 2_000_000


def _as_utc(value) -> pd.Timestamp | None:
    if value is None:
        return None
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def column_range(
    directory: Path, table: str, column: str
) -> tuple[int, pd.Timestamp | None, pd.Timestamp | None]:
    """Row count, minimum and maximum of a timestamp ``column`` of ``table``, one part
    at a time (CSV parts through the contract's reader)."""
    count, low, high = 0, None, None
    path = table_path(directory, table)
    if path is None:
        raise TrainingError(f"{directory}: no table {table}")
    for part in part_paths(path):
        if part.suffix == ".csv":
            values = read_path(part, table)[column]
            count += len(values)
            part_low, part_high = values.min(), values.max()
        else:
            values = pq.read_table(part, columns=[column])[column]
            count += len(values)
            part_low, part_high = (v.as_py() for v in pc.min_max(values).values())
        part_low, part_high = _as_utc(part_low), _as_utc(part_high)
        if part_low is not None and pd.notna(part_low):
            low = part_low if low is None else min(low, part_low)
            high = part_high if high is None else max(high, part_high)
    return count, low, high


def sample_tables(
    directory: Path, campaigns: pd.DataFrame, limit: int = REFERENCE_CREATORS, seed: int = SEED
) -> dict[str, pd.DataFrame]:
    """The six tables of ``directory`` cut to a seeded sample of at most ``limit``
    creators (all of them when there are no more), read part by part: every row of
    theirs, and every campaign. A creator's features need only its own rows and the
    campaigns, so theirs are exactly what the whole data gives them."""
    creators = read_table(directory, "creators").sort_values("creator_id", kind="stable")
    if len(creators) > limit:
        chosen = np.random.default_rng(seed).choice(len(creators), limit, replace=False)
        creators = creators.iloc[np.sort(chosen)]
    ids = pd.Index(creators["creator_id"])
    tables = {"creators": creators.reset_index(drop=True), "campaigns": campaigns}
    for name in TABLES:
        if name in tables:
            continue
        path = table_path(directory, name)
        pieces = [
            frame[frame["creator_id"].isin(ids)]
            for part in (part_paths(path) if path is not None else [])
            for frame in read_part_batches(part, name, BATCH_ROWS)
        ]
        tables[name] = pd.concat(pieces, ignore_index=True)
    return tables


def sample_population(directory: Path, campaigns: pd.DataFrame, posts: dict) -> pd.DataFrame | None:
    """``training.reference.population_features`` of ``sample_tables``: the population
    serving scores at the end of the data, of a creator sample (None without posts)."""
    as_of = reference_as_of(posts)
    if as_of is None:
        return None
    tables = sample_tables(directory, campaigns)
    return population_features(tables, index_history(tables, release_posts=True), as_of)


def directory_facts(directory: Path, rows: dict[str, int]) -> DataFacts:
    """``training.run.DataFacts`` of a (validated) data directory, read part by part:
    only the campaigns table is held whole (and every row of a sample of creators, for
    the drift reference)."""
    count, first, last = column_range(directory, "posts", "posted_at")
    posts = {
        "rows_posts": count,
        "posts_from": None if first is None else first.isoformat(),
        "posts_to": None if last is None else last.isoformat(),
    }
    campaigns = read_table(directory, "campaigns")
    answered = [
        column_range(directory, "invitations", c)[2] for c in ("invited_at", "responded_at")
    ]
    return DataFacts(
        rows=rows,
        campaigns=campaigns,
        posts=posts,
        end=latest_moment([campaigns["created_at"].max(), *answered], posts),
        population=sample_population(directory, campaigns, posts),
    )


def train_on_pair_parts(
    directory: Path,
    rows: dict[str, int],
    pairs_dir: Path,
    cfg: TrainConfig,
    truth: pd.DataFrame | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> TrainResult:
    """``training.run.train_on_table`` on the pair table in ``pairs_dir`` of the data
    directory ``directory`` (``rows``: its tables' row counts, once validated);
    TrainingError (one line) when ``pairs_dir`` is not this data's pair table."""
    try:
        table = PartPairs(pair_parts(pairs_dir))
    except ValueError as err:
        raise TrainingError(str(err)) from None
    if len(table.labels) != rows.get("invitations"):
        raise TrainingError(
            f"{pairs_dir}: {len(table.labels):,} pairs, but {directory} has "
            f"{rows.get('invitations', 0):,} invitations: a pair table of "
            "another data directory?"
        )
    progress(
        f"pair table {pairs_dir}: {len(table.labels):,} pairs in {len(table.parts)} parts; "
        "fit and validation features read part by part"
    )
    return train_on_table(directory_facts(directory, rows), table, cfg, truth, progress)
