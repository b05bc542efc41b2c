"""The store on disk: day folders, the manifest, and how a day appears atomically.

```
STORE/
  manifest.json                  the days held and what each was built from
  day=2025-12-15/                one folder per stored day (as of that day, 00:00 UTC)
    market=ID/creators.parquet   snapshot.CREATOR_COLUMNS, sorted by creator_id
    market=ID/categories.parquet snapshot.CATEGORY_COLUMNS, sorted by creator_id, category
    market=ID/targets.parquet    snapshot.TARGET_COLUMNS
    ...
  scores/<model digest>/         one model's precomputed raw scores (store.scores), optional
    day=2025-12-15/market=ID/raw.parquet   scores.RAW_COLUMNS, sorted by category, creator_id
```

The folders are hive-style (``day=``, ``market=``), so DuckDB, Spark, pandas and any
warehouse read them as partitioned tables. A day is written into a hidden folder beside
them and renamed into place, then added to the manifest (under a lock, so two builds do
not lose each other's days): a reader that goes by the manifest sees a day whole or not
at all, and a failed build leaves the store as it was. The manifest records, per day,
the data fingerprint it was built from (each table file's path, size and modification
time), the feature registry's digest, the categories, and row counts per market; and,
under ``scores``, per model digest the days scored (with the build of the day they were
computed from: a day built again makes its scores stale) and their row counts. Score days
appear the same way as days: written hidden, renamed into place, then recorded.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.registry import FEATURES
from marketplace.stamp import table_files

MANIFEST = "manifest.json"
FORMAT = "creator-scores snapshot store 1"
TABLES = ("creators", "categories", "targets")
# A brief reads its top rows by creator_id: files sorted by it in small row groups let the
# reader skip the groups without them (4,096 rows), and snappy decodes twice as fast as
# zstd on features that barely compress (50 rows of 199,239: 0.12 s against 0.34 s).
ROW_GROUP_ROWS = 4_096
COMPRESSION = "snappy"


class StoreError(ValueError):
    """A store that cannot be read or written as asked; the message is one line."""


def registry_digest() -> str:
    """Digest of the feature registry (names, families, directions, in order)."""
    text = json.dumps([[f.name, f.family, f.direction] for f in FEATURES])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def data_fingerprint(directory: Path) -> str:
    """Digest of a data directory's table files (relative path, size, modification time)."""
    text = json.dumps(table_files(Path(directory)))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def day_name(day: pd.Timestamp) -> str:
    """``YYYY-MM-DD`` of a UTC midnight."""
    return day.strftime("%Y-%m-%d")


def day_folder(store: Path, day: str) -> Path:
    """The folder of a stored day."""
    return Path(store) / f"day={day}"


def market_file(store: Path, day: str, market: str, table: str) -> Path:
    """One of a day's files: ``day=D/market=M/<table>.parquet``."""
    return day_folder(store, day) / f"market={market}" / f"{table}.parquet"


SCORES = "scores"


def scores_folder(store: Path, digest: str) -> Path:
    """The folder of one model's precomputed scores: ``scores/<digest>``."""
    return Path(store) / SCORES / digest


def scores_file(store: Path, digest: str, day: str, market: str) -> Path:
    """One model's raw scores of a day and market: ``scores/<digest>/day=D/market=M/raw.parquet``."""
    return day_folder(scores_folder(store, digest), day) / f"market={market}" / "raw.parquet"


def empty_manifest() -> dict:
    """The manifest of a store with no days."""
    return {"format": FORMAT, "registry_digest": registry_digest(), "days": {}}


def read_manifest(store: Path) -> dict:
    """The store's manifest; StoreError when it is missing or unreadable."""
    path = Path(store) / MANIFEST
    if not path.is_file():
        raise StoreError(
            f"{store}: not a snapshot store (no {MANIFEST}; build one with python -m store build)"
        )
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise StoreError(f"{path}: unreadable manifest ({err})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise StoreError(f"{path}: not a manifest of this store format ({FORMAT!r})")
    return manifest


def write_manifest(store: Path, manifest: dict) -> None:
    """Replace the manifest atomically."""
    path = Path(store) / MANIFEST
    tmp = path.with_name(f".{MANIFEST}.{uuid.uuid4().hex[:8]}")
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


@contextmanager
def locked(store: Path) -> Iterator[None]:
    """Hold the store's lock (``.lock``, an advisory lock) for a manifest update."""
    Path(store).mkdir(parents=True, exist_ok=True)
    with open(Path(store) / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def staging_folder(store: Path, day: str) -> Path:
    """A fresh hidden folder in the store to write a day into."""
    folder = Path(store) / f".day={day}.tmp-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True)
    return folder


def write_market(folder: Path, market: str, frames: dict[str, pd.DataFrame]) -> dict[str, int]:
    """Write one market's tables into a (staging) day folder; their row counts."""
    target = folder / f"market={market}"
    target.mkdir(parents=True, exist_ok=True)
    for table, frame in frames.items():
        arrow = pa.Table.from_pandas(frame.drop(columns="market"), preserve_index=False)
        pq.write_table(
            arrow,
            target / f"{table}.parquet",
            compression=COMPRESSION,
            row_group_size=ROW_GROUP_ROWS,
        )
    return {table: len(frame) for table, frame in frames.items()}


def publish_day(store: Path, staged: Path, day: str, record: dict) -> None:
    """Move a fully written staging folder into place as ``day`` and add it to the
    manifest (replacing an older build of that day), under the store's lock."""

    def add(manifest: dict) -> None:
        manifest["days"][day] = record
        manifest["registry_digest"] = registry_digest()

    _publish(store, staged, day_folder(store, day), add)


def publish_scores_day(store: Path, staged: Path, digest: str, day: str, record: dict) -> None:
    """Move a fully written staging folder into place as one model's scores of ``day``
    and record it under ``scores/<digest>`` in the manifest (``record``: the model's
    entry without days, and the day's), under the store's lock."""

    def add(manifest: dict) -> None:
        entry = manifest.setdefault(SCORES, {}).setdefault(digest, {"days": {}})
        if entry.get("commission_rate") != record["model"]["commission_rate"]:
            entry["days"] = {}  # scored at another rate before: those days no longer hold
        entry.update(record["model"])
        entry["days"][day] = record["day"]

    _publish(store, staged, day_folder(scores_folder(store, digest), day), add)


def _publish(store: Path, staged: Path, final: Path, add: Callable[[dict], None]) -> None:
    """Under the store's lock: rename ``staged`` to ``final`` (an older ``final`` moved
    aside first), let ``add`` record it in the manifest and write the manifest; then
    remove the older folder."""
    with locked(store):
        manifest = _manifest_or_new(store)
        old = None
        if final.exists():
            old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
            final.rename(old)
        staged.rename(final)
        add(manifest)
        write_manifest(store, manifest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def drop_days(store: Path, keep: int) -> list[str]:
    """Remove all but the ``keep`` latest days and their scores (from the manifest
    first, then their folders); the days removed."""
    with locked(store):
        manifest = _manifest_or_new(store)
        days = sorted(manifest["days"])
        dropped = days[: max(len(days) - keep, 0)]
        for day in dropped:
            del manifest["days"][day]
            for entry in manifest.get(SCORES, {}).values():
                entry["days"].pop(day, None)
        write_manifest(store, manifest)
    for day in dropped:
        shutil.rmtree(day_folder(store, day), ignore_errors=True)
        for digest in manifest.get(SCORES, {}):
            shutil.rmtree(day_folder(scores_folder(store, digest), day), ignore_errors=True)
    return dropped


def _manifest_or_new(store: Path) -> dict:
    if (Path(store) / MANIFEST).exists():
        manifest = read_manifest(store)
        if manifest["days"] and manifest.get("registry_digest") != registry_digest():
            raise StoreError(
                f"{store}: built with another feature registry ({manifest.get('registry_digest')}, "
                f"this code's is {registry_digest()}): build a new store"
            )
        return manifest
    return empty_manifest()


def day_record(
    data: Path | None, categories: tuple[str, ...], rows: dict[str, dict[str, int]], engine: str
) -> dict:
    """The manifest entry of a day built from the data directory ``data`` (None: tables
    given in memory, with no fingerprint)."""
    return {
        "data": None if data is None else str(Path(data).resolve()),
        "data_fingerprint": None if data is None else data_fingerprint(data),
        "registry_digest": registry_digest(),
        "categories": list(categories),
        "markets": {market: rows[market] for market in sorted(rows)},
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "engine": engine,
    }


def check_files(store: Path, manifest: dict) -> None:
    """StoreError unless every day of the manifest has all its files, readable, with the
    row counts the manifest records."""
    for day, record in sorted(manifest["days"].items()):
        if not day_folder(store, day).is_dir():
            raise StoreError(f"{store}: day {day} is in the manifest but its folder is missing")
        for market, counts in record["markets"].items():
            for table in TABLES:
                _check_rows(market_file(store, day, market, table), counts[table])
    for digest, entry in sorted(manifest.get(SCORES, {}).items()):
        for day, record in sorted(entry["days"].items()):
            for market, count in record["markets"].items():
                _check_rows(scores_file(store, digest, day, market), count)


def _check_rows(path: Path, count: int) -> None:
    try:
        found = pq.ParquetFile(path).metadata.num_rows
    except (OSError, pa.ArrowException) as err:
        raise StoreError(f"{path}: unreadable ({str(err).splitlines()[0]})") from None
    if found != count:
        raise StoreError(f"{path}: {found:,} rows, the manifest says {count:,}")
