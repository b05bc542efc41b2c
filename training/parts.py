"""Training from a pair table written as a directory of Parquet parts
(``python -m features DIR --out PAIRS --engine spark``), without its float matrix.

The fit and validation features stay on disk: LightGBM builds its Datasets from a
``lightgbm.Sequence`` that reads one Parquet part at a time, and predictions on them run
batch by batch. Only the label columns (campaign_id, gmv, commission_rate) of every pair
and the test pairs (for the metrics, baselines and plots) are held whole. The split and
the metrics are those of ``training.run.train_on_pairs``; the model is the same on the
same pairs while the fit set is within LightGBM's ``bin_construct_sample_cnt`` (200,000
rows): above it LightGBM bins features from a sample, drawn differently from a Sequence.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from features.pairs import PAIR_COLUMNS
from features.registry import FEATURE_NAMES
from marketplace.io import part_paths, read_path, table_path
from training.config import TrainConfig
from training.run import TrainingError, TrainResult, data_fingerprint, fit_and_evaluate, \
    split_positions

LABEL_COLUMNS = ["campaign_id", "gmv", "commission_rate"]


class PartRows(lgb.Sequence):
    """Rows ``rows`` (positions in the whole pair table, increasing) of the feature
    columns, read from the Parquet ``parts`` one part at a time (the last one cached)."""

    batch_size = 65_536

    def __init__(self, parts: list[Path], rows: np.ndarray, features: list[str]):
        self.parts, self.rows, self.features = parts, np.asarray(rows, np.int64), features
        sizes = [pq.ParquetFile(p).metadata.num_rows for p in parts]
        self.starts = np.concatenate([[0], np.cumsum(sizes)])
        self._cached: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return self._take(self.rows[idx])
        return self._take(self.rows[[idx]])[0]

    def _take(self, positions: np.ndarray) -> np.ndarray:
        part = np.searchsorted(self.starts, positions, side="right") - 1
        pieces = [self._part(i)[positions[part == i] - self.starts[i]] for i in np.unique(part)]
        if not pieces:
            return np.empty((0, len(self.features)))
        return np.concatenate(pieces) if len(pieces) > 1 else pieces[0]

    def _part(self, i: int) -> np.ndarray:
        if self._cached is None or self._cached[0] != i:
            table = pq.read_table(self.parts[i], columns=self.features)
            self._cached = (i, table.to_pandas().to_numpy(dtype=float))
        return self._cached[1]


def pair_parts(directory: Path) -> list[Path]:
    """The Parquet parts of a pair table directory; TrainingError (one line) when it is
    not one."""
    parts = part_paths(directory) if directory.is_dir() else []
    if not parts:
        raise TrainingError(f"{directory}: not a pair table (no Parquet parts)")
    missing = [c for c in (*PAIR_COLUMNS, *FEATURE_NAMES) if c not in pq.read_schema(parts[0]).names]
    if missing:
        raise TrainingError(f"{directory}: not a pair table of this feature builder "
                            f"(missing column(s) {', '.join(missing[:3])})")
    return parts


def read_rows(parts: list[Path], columns: list[str], positions: np.ndarray | None = None
              ) -> pd.DataFrame:
    """``columns`` of the pair table (only the rows at ``positions``, increasing, when
    given), one part at a time."""
    pieces, start = [], 0
    for part in parts:
        table = pq.read_table(part, columns=columns)
        if positions is not None:
            inside = positions[(positions >= start) & (positions < start + len(table))]
            start += len(table)
            table = table.take(pa.array(inside - (start - len(table))))
        pieces.append(table)
    return pa.concat_tables(pieces).to_pandas()


def posts_summary_of(directory: Path) -> dict:
    """Row count and posted_at range of the posts of a data directory, one part at a
    time (as ``training.run.posts_summary`` gives them from a history)."""
    count, first, last = 0, None, None
    for part in part_paths(table_path(directory, "posts")):
        times = (pa.chunked_array([pa.array(read_path(part, "posts")["posted_at"])])
                 if part.suffix == ".csv" else pq.read_table(part, columns=["posted_at"])["posted_at"])
        count += len(times)
        if len(times) - times.null_count:
            low, high = pc.min_max(times).values()
            low, high = pd.Timestamp(low.as_py()), pd.Timestamp(high.as_py())
            first = low if first is None else min(first, low)
            last = high if last is None else max(last, high)
    as_utc = lambda t: None if t is None else (t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC"))  # noqa: E731
    return {"rows_posts": count,
            "posts_from": None if first is None else as_utc(first).isoformat(),
            "posts_to": None if last is None else as_utc(last).isoformat()}


def train_on_pair_parts(rows: dict[str, int], campaigns: pd.DataFrame, posts: dict,
                        pairs_dir: Path, cfg: TrainConfig, truth: pd.DataFrame | None = None,
                        progress: Callable[[str], None] = lambda message: None) -> TrainResult:
    """``train_on_pairs`` on the pair table in ``pairs_dir`` (module doc): ``rows`` are
    the data directory's row counts, ``campaigns`` its campaigns table, ``posts`` from
    ``posts_summary_of``."""
    parts = pair_parts(pairs_dir)
    labels = read_rows(parts, LABEL_COLUMNS)
    if len(labels) != rows.get("invitations"):
        raise TrainingError(f"{pairs_dir}: {len(labels):,} pairs, but the data has "
                            f"{rows.get('invitations', 0):,} invitations: a pair table of "
                            "another data directory?")
    split, (fit, valid, test) = split_positions(campaigns, cfg, labels)
    progress(f"pair table {pairs_dir}: {len(labels):,} pairs in {len(parts)} parts; "
             f"fit and validation features read part by part")
    features = list(FEATURE_NAMES)
    fingerprint = data_fingerprint(rows, campaigns, posts, len(labels), split)
    frames = [labels.iloc[r].reset_index(drop=True) for r in (fit, valid)]
    test_pairs = read_rows(parts, [*PAIR_COLUMNS, *features], test)
    return fit_and_evaluate(split, fingerprint, *frames, test_pairs, cfg, truth, progress,
                            fit_rows=PartRows(parts, fit, features),
                            valid_rows=PartRows(parts, valid, features))
