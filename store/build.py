"""``build``: add days to a store from a data directory, in one process.

The days asked for (``requested_days``) that the store already holds from the same data
and feature registry are skipped; every other day is computed (``snapshot.snapshot_frames``
on the whole tables), written market by market into a staging folder and published
(``layout.publish_day``). On Spark, ``scaleout.store`` computes the same rows per creator
bucket and publishes them the same way.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from features.build import History, index_history
from store.layout import (
    StoreError,
    data_fingerprint,
    day_name,
    day_record,
    publish_day,
    read_manifest,
    registry_digest,
    staging_folder,
    write_market,
)
from store.snapshot import Snapshot, snapshot_frames

DAY = pd.Timedelta(days=1)
_SPAN = re.compile(r"^(\d+)d$")


def parse_span(text: str, flag: str) -> int:
    """Days in a span written ``30d``; StoreError naming ``flag`` otherwise."""
    match = _SPAN.match(text.strip())
    if not match:
        raise StoreError(f"{flag} {text!r}: must be a number of days like 30d")
    return int(match[1])


def requested_days(
    as_of: pd.Timestamp, every_days: int | None, back_days: int
) -> list[pd.Timestamp]:
    """``as_of`` and, with ``every_days``, every ``every_days`` back as far as ``back_days``
    before it; oldest first."""
    if every_days is None:
        return [as_of]
    if every_days < 1:
        raise StoreError("--every must be at least 1d")
    steps = back_days // every_days
    return [as_of - k * every_days * DAY for k in range(steps, -1, -1)]


def days_to_build(store: Path, data: Path, days: list[pd.Timestamp]) -> list[pd.Timestamp]:
    """The days the store lacks, or holds from other data or another registry."""
    try:
        held = read_manifest(store)["days"]
    except StoreError:
        if (Path(store) / "manifest.json").exists():
            raise
        return days
    fingerprint, digest = data_fingerprint(data), registry_digest()
    return [
        d
        for d in days
        if (record := held.get(day_name(d))) is None
        or record.get("data_fingerprint") != fingerprint
        or record.get("registry_digest") != digest
    ]


def write_snapshot(store: Path, day: str, snap: Snapshot) -> tuple[Path, dict]:
    """Write a snapshot into a staging folder of ``store``: (the folder, rows per market)."""
    staged = staging_folder(store, day)
    try:
        rows = {}
        for market, creators in snap.creators.groupby("market", sort=True):
            rows[str(market)] = write_market(
                staged,
                str(market),
                {
                    "creators": creators,
                    "categories": snap.categories[snap.categories["market"] == market],
                    "targets": snap.targets[snap.targets["market"] == market],
                },
            )
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return staged, rows


def build_in_memory(
    store: Path,
    data: Path | None,
    tables: dict[str, pd.DataFrame],
    days: list[pd.Timestamp],
    progress: Callable[[str], None] = lambda message: None,
    history: History | None = None,
) -> list[str]:
    """Compute and publish each of ``days`` from validated ``tables`` (read from the data
    directory ``data``, None when they were not); the days written."""
    history = history or index_history(tables)
    categories = tuple(str(c) for c in history.categories)  # data_categories, indexed once
    written = []
    for day in days:
        started = time.perf_counter()
        snap = snapshot_frames(tables, day, categories, history)
        staged, rows = write_snapshot(store, day_name(day), snap)
        publish_day(store, staged, day_name(day), day_record(data, categories, rows, "memory"))
        written.append(day_name(day))
        progress(
            f"day {day_name(day)}: {len(snap.creators):,} candidates in {len(rows)} markets, "
            f"{len(snap.categories):,} category rows in {time.perf_counter() - started:.1f}s"
        )
    return written
