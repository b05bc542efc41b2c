"""The training pair table, in memory or as a directory of Parquet parts.

``training.run.train_on_table`` reads pairs only through a ``PairTable``:

- ``FramePairs``: the pair frame of ``features.pairs.training_pairs``, in memory;
- ``PartPairs``: the Parquet parts written by ``python -m features DIR --out PAIRS
  --engine spark``. Only the label columns of every pair (campaign_id, creator_id, gmv,
  commission_rate) and the test pairs are held whole; the fit and validation features
  stay on disk, and LightGBM builds its Datasets from a ``lightgbm.Sequence`` that reads
  one part at a time (``PartRows``), predictions on them running batch by batch.

The rows of a split are the pair table's rows in its order, so both give the same
frames, the same LightGBM Datasets (``training.model._Dataset``: the same binning
sample and pre-filter) and the same model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.pairs import PAIR_COLUMNS
from features.registry import FEATURE_NAMES
from marketplace.io import part_paths
from training.split import Split

LABEL_COLUMNS = ["campaign_id", "creator_id", "gmv", "commission_rate"]


@dataclass
class Part:
    """Pairs to fit on: ``frame`` holds at least campaign_id, gmv and commission_rate;
    ``rows``, when not None, their feature values as a ``lightgbm.Sequence`` (the frame
    then lacks them)."""

    frame: pd.DataFrame
    rows: lgb.Sequence | None = None

    def matrix(self, features: list[str]):
        """The feature values for LightGBM: the frame's columns, or the Sequence."""
        return self.frame[features] if self.rows is None else self.rows

    def columns(self):
        """Something indexable by feature name giving that column of every row."""
        return self.frame if self.rows is None else _SequenceColumns(self.rows)


class PairTable(Protocol):
    """A pair table: its labels in memory, its rows taken by campaign (module doc)."""

    labels: pd.DataFrame

    def split(self, split: Split) -> tuple[Part, Part, pd.DataFrame]:
        """The fit and validation parts and the test pairs (in memory) of ``split``."""
        ...

    def take(self, campaigns) -> Part:
        """The pairs of ``campaigns``, in table order."""
        ...


def positions_of(labels: pd.DataFrame, campaigns) -> np.ndarray:
    """Positions (increasing) of the rows of ``labels`` whose campaign is in ``campaigns``."""
    return np.flatnonzero(labels["campaign_id"].isin(campaigns).to_numpy())


class FramePairs:
    """A pair frame in memory (module doc)."""

    def __init__(self, pairs: pd.DataFrame):
        self.labels = pairs

    def take(self, campaigns) -> Part:
        """The pairs of ``campaigns`` (a frame), in table order."""
        return Part(self.labels.iloc[positions_of(self.labels, campaigns)].reset_index(drop=True))

    def split(self, split: Split) -> tuple[Part, Part, pd.DataFrame]:
        """The fit, validation and test pairs of ``split``."""
        return self.take(split.fit), self.take(split.valid), self.take(split.test).frame


class PartRows(lgb.Sequence):
    """Rows ``rows`` (positions in the whole pair table, increasing) of the feature
    columns, read from the Parquet ``parts`` one part at a time (the last one cached);
    ``starts`` are the parts' first positions, then the table's length."""

    batch_size = 65_536

    def __init__(
        self, parts: list[Path], starts: np.ndarray, rows: np.ndarray, features: list[str]
    ):
        self.parts, self.rows, self.features = parts, np.asarray(rows, np.int64), features
        self.starts = starts
        self._cached: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return self._take(self.rows[idx])
        return self._take(self.rows[[idx]])[0]

    def column(self, name: str) -> np.ndarray:
        """One feature of every row, read part by part (a column, not the matrix)."""
        return read_rows(self.parts, self.starts, [name], self.rows)[name].to_numpy(dtype=float)

    def _take(self, positions: np.ndarray) -> np.ndarray:
        part = np.searchsorted(self.starts, positions, side="right") - 1
        pieces = [self._part(i)[positions[part == i] - self.starts[i]] for i in np.unique(part)]
        if not pieces:
            return np.empty((0, len(self.features)))
        return np.concatenate(pieces) if len(pieces) > 1 else pieces[0]

    def _part(self, i: int) -> np.ndarray:
        if self._cached is None or self._cached[0] != i:
            self._cached = None  # let the previous part go before reading the next
            table = pq.read_table(self.parts[i], columns=self.features)
            self._cached = (i, table.to_pandas().to_numpy(dtype=float))
        return self._cached[1]


class _SequenceColumns:
    def __init__(self, rows: PartRows):
        self.rows = rows

    def __getitem__(self, name: str) -> pd.Series:
        return pd.Series(self.rows.column(name), name=name)


def read_rows(
    parts: list[Path], starts: np.ndarray, columns: list[str], positions: np.ndarray | None = None
) -> pd.DataFrame:
    """``columns`` of the pair table (only the rows at ``positions``, increasing, when
    given), one part at a time; ``starts`` are the parts' first row positions."""
    pieces = []
    for i, part in enumerate(parts):
        table = pq.read_table(part, columns=columns)
        if positions is not None:
            low, high = np.searchsorted(positions, [starts[i], starts[i + 1]])
            table = table.take(pa.array(positions[low:high] - starts[i]))
        pieces.append(table)
    return pa.concat_tables(pieces).to_pandas()


class PartPairs:
    """A pair table written as Parquet parts (module doc)."""

    def __init__(self, parts: list[Path]):
        self.parts = parts
        sizes = [pq.ParquetFile(p).metadata.num_rows for p in parts]
        self.starts = np.concatenate([[0], np.cumsum(sizes)])
        self.labels = read_rows(parts, self.starts, LABEL_COLUMNS)

    def take(self, campaigns) -> Part:
        """The labels of ``campaigns``' pairs, their features read part by part on demand."""
        rows = positions_of(self.labels, campaigns)
        return Part(
            self.labels.iloc[rows].reset_index(drop=True),
            PartRows(self.parts, self.starts, rows, list(FEATURE_NAMES)),
        )

    def whole(self, campaigns) -> pd.DataFrame:
        """Every column of the pairs of ``campaigns``, in memory."""
        return read_rows(
            self.parts,
            self.starts,
            [*PAIR_COLUMNS, *FEATURE_NAMES],
            positions_of(self.labels, campaigns),
        )

    def split(self, split: Split) -> tuple[Part, Part, pd.DataFrame]:
        """The fit and validation parts (features on demand) and the test pairs in memory."""
        return self.take(split.fit), self.take(split.valid), self.whole(split.test)


def pair_parts(directory: Path) -> list[Path]:
    """The Parquet parts of a pair table directory; ValueError (one line) when it is not
    one of this feature builder."""
    parts = part_paths(directory) if directory.is_dir() else []
    if not parts:
        raise ValueError(f"{directory}: not a pair table (no Parquet parts)")
    names = set(pq.read_schema(parts[0]).names)
    missing = [c for c in (*PAIR_COLUMNS, *FEATURE_NAMES, "commission_rate") if c not in names]
    if missing:
        raise ValueError(
            f"{directory}: not a pair table of this feature builder "
            f"(missing column(s) {', '.join(missing[:3])})"
        )
    return parts
