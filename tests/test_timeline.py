"""The as-of machinery: binary searches and exact per-entity window sums."""

from __future__ import annotations

import numpy as np

from features.timeline import Timeline, search_sorted


def brute_window(entity, time, values, e, lo, hi):
    """Sum of values of entity e with lo <= time < hi, the obvious way."""
    mask = (entity == e) & (time >= lo) & (time < hi)
    return int(values[mask].sum())


def test_window_sums_match_brute_force():
    rng = np.random.default_rng(0)
    entity = rng.integers(0, 20, 3000)
    time = rng.integers(0, 1000, 3000)
    values = rng.integers(0, 10**6, 3000)
    tl = Timeline.build(entity, time)
    running = tl.running(values)
    e = rng.integers(0, 22, 500)  # 20 and 21 have no events
    lo = rng.integers(-10, 1010, 500)
    hi = lo + rng.integers(0, 300, 500)
    got = Timeline.window(running, tl.first(e), tl.before(e, lo), tl.before(e, hi))
    expected = [brute_window(entity, time, values, *args) for args in zip(e, lo, hi, strict=True)]
    assert got.tolist() == expected


def test_inclusive_bounds_and_event_times():
    tl = Timeline.build(np.array([1, 1, 1, 2]), np.array([10, 20, 20, 5]))
    e = np.array([1, 1, 1, 2])
    assert (tl.before(e, np.array([20, 20, 21, 5])) - tl.first(e)).tolist() == [1, 1, 3, 0]
    assert (tl.before(e, np.array([20, 19, 21, 5]), inclusive=True) - tl.first(e)).tolist() == [
        3,
        1,
        3,
        1,
    ]
    assert tl.time_at(np.arange(4)).tolist() == [10, 20, 20, 5]


def test_running_sums_ignore_other_entities_to_the_bit():
    entity = np.array([0, 0, 1, 1, 1])
    time = np.array([1, 2, 1, 2, 3])
    values = np.array([5, 7, 2**40, 3, 4])
    a = Timeline.build(entity, time).running(values)
    b = Timeline.build(entity[2:], time[2:]).running(values[2:])
    assert a[2:].tolist() == b.tolist() == [2**40, 2**40 + 3, 2**40 + 7]
    assert a.dtype == np.int64
    small = Timeline.build(entity, time).running(np.array([1, 1, 1, 1, 1]))
    assert small.dtype == np.int32 and small.tolist() == [1, 2, 1, 2, 3]


def test_search_sorted_equals_numpy():
    rng = np.random.default_rng(1)
    haystack = np.sort(rng.integers(0, 100, 50))
    needles = rng.integers(-5, 105, 200)
    for side in ("left", "right"):
        assert (
            search_sorted(haystack, needles, side) == np.searchsorted(haystack, needles, side)
        ).all()
    order = np.argsort(needles, kind="stable")
    assert (
        search_sorted(haystack, needles, order=order) == np.searchsorted(haystack, needles)
    ).all()
