"""As-of window sums over per-entity event streams, in O((events + queries) log events).

A :class:`Timeline` holds events (an entity code and a time in microseconds each), sorted
by (entity, time). For a query (entity, bound) it finds by binary search how many of the
entity's events happened before the bound (strictly, or at-or-before), so the sum of any
value over a time window is a difference of two prefix sums. Prefix sums are int64 and
restart at every entity, so a window sum is exact and depends only on that entity's own
events inside the window: changing or deleting any other event, or any later one, leaves
it identical to the bit. This is what makes the point-in-time rule testable exactly.

Times are int64 microseconds since the epoch (UTC); durations below are in microseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

MICROS_PER_DAY = 86_400_000_000
MICROS_PER_SECOND = 1_000_000


def micros(values: pd.Series) -> np.ndarray:
    """UTC timestamps as int64 microseconds since the epoch."""
    return values.dt.tz_convert("UTC").dt.as_unit("us").dt.tz_convert(None).to_numpy().astype(np.int64)


def days(n: float) -> int:
    """``n`` days in microseconds."""
    return int(round(n * MICROS_PER_DAY))


@dataclass(frozen=True)
class Timeline:
    """Events sorted by (entity, time), searchable by (entity, time bound).

    ``order`` maps sorted position to input row. ``ranks`` are the distinct event times:
    an event's key is entity x stride + the rank of its time, and a bound's key uses the
    number of distinct times below it, so one int64 binary search compares exactly as
    (entity, time) does, with no limit on the time span.
    """

    keys: np.ndarray
    ranks: np.ndarray
    order: np.ndarray
    segment_start: np.ndarray

    @classmethod
    def build(cls, entity: np.ndarray, time_us: np.ndarray) -> "Timeline":
        entity = np.asarray(entity, dtype=np.int64)
        time_us = np.asarray(time_us, dtype=np.int64)
        order = np.lexsort((time_us, entity))
        ranks, rank_of = np.unique(time_us, return_inverse=True)
        keys = entity[order] * np.int64(len(ranks) + 1) + rank_of[order]
        sorted_entity = entity[order]
        start = np.zeros(len(order), np.int64)
        boundary = np.flatnonzero(np.diff(sorted_entity)) + 1
        start[boundary] = boundary
        return cls(keys=keys, ranks=ranks, order=order,
                   segment_start=np.maximum.accumulate(start) if len(start) else start)

    def __len__(self) -> int:
        return len(self.keys)

    def _key(self, entity: np.ndarray, rank: np.ndarray) -> np.ndarray:
        return np.asarray(entity, np.int64) * np.int64(len(self.ranks) + 1) + rank

    def first(self, entity: np.ndarray) -> np.ndarray:
        """Sorted position of the entity's first event (where it would be, if none)."""
        return np.searchsorted(self.keys, self._key(entity, 0))

    def before(self, entity: np.ndarray, bound_us: np.ndarray, inclusive: bool = False
               ) -> np.ndarray:
        """Sorted position just past the entity's events with time < bound (<= if
        ``inclusive``); minus ``first(entity)`` it counts them."""
        rank = np.searchsorted(self.ranks, bound_us, side="right" if inclusive else "left")
        return np.searchsorted(self.keys, self._key(entity, rank))

    def take(self, values) -> np.ndarray:
        """``values`` (input order) in sorted order."""
        return np.asarray(values)[self.order]

    def running(self, values) -> np.ndarray:
        """Inclusive running sum of integer ``values`` within each entity, in sorted order.

        int64 arithmetic is exact (wrap-around cancels in the per-entity difference), so
        each entry depends only on that entity's earlier events.
        """
        v = np.asarray(values)
        if v.dtype.kind not in "iub":
            raise TypeError("running sums are exact only on integers: scale floats first")
        total = np.cumsum(v.astype(np.int64)[self.order])
        return total - np.where(self.segment_start > 0,
                                total[np.maximum(self.segment_start - 1, 0)], 0)

    @staticmethod
    def window(running: np.ndarray, first: np.ndarray, lo: np.ndarray, hi: np.ndarray
               ) -> np.ndarray:
        """Sum over sorted positions [lo, hi) of one entity whose events start at ``first``."""
        if len(running) == 0:
            return np.zeros(len(lo), np.int64)
        last = len(running) - 1
        upper = np.where(hi > lo, running[np.clip(hi - 1, 0, last)], 0)
        lower = np.where((hi > lo) & (lo > first), running[np.clip(lo - 1, 0, last)], 0)
        return upper - lower
