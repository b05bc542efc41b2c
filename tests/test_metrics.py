"""training.metrics and training.labels: ndcg against hand-worked values and scikit-learn,
its invariances, and the grades and gains of gmv."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import ndcg_score

from training.labels import grades, label_gain
from training.metrics import evaluate, per_query

# ----------------------------------------------------------------------------- metrics


def test_ndcg_hand_worked():
    # Gains 3, 0, 1 ranked in that order: DCG = 3 + 0 + 1/log2(4); ideal 3 + 1/log2(3).
    table = per_query(["q"] * 3, [3.0, 0.0, 1.0], [0.9, 0.5, 0.1], k=3)
    assert table.loc["q", "ndcg"] == pytest.approx((3 + 0.5) / (3 + 1 / math.log2(3)))
    # Top 1 holds the best item: ndcg@1 and capture@1 are both 1.
    assert per_query(["q"] * 3, [3.0, 0.0, 1.0], [0.9, 0.5, 0.1], k=1).loc["q"].tolist() == [
        1.0,
        1.0,
    ]
    # Top 1 holds the second best: capture = 1/3, ndcg = 1/3 too.
    worst = per_query(["q"] * 3, [3.0, 0.0, 1.0], [0.1, 0.5, 0.9], k=1)
    assert worst.loc["q", "gmv_capture"] == pytest.approx(1 / 3)


def test_ndcg_agrees_with_scikit_learn():
    rng = np.random.default_rng(3)
    query = np.repeat(np.arange(40), rng.integers(2, 30, 40))
    gain = rng.lognormal(3, 2, len(query)) * (rng.random(len(query)) < 0.4)
    score = rng.random(len(query))
    ours = per_query(query, gain, score, k=10)
    for q in ours.index[:15]:
        mask = query == q
        assert ours.loc[q, "ndcg"] == pytest.approx(ndcg_score([gain[mask]], [score[mask]], k=10))


def test_ndcg_invariances_and_scorable_queries():
    query = ["a", "a", "a", "b", "b", "c"]
    gain = [5.0, 1.0, 0.0, 0.0, 0.0, 7.0]
    score = [0.2, 0.9, np.nan, 0.3, 0.4, 1.0]
    table = per_query(query, gain, score, k=2)
    assert list(table.index) == ["a"]  # b has no gmv, c has one creator
    scaled = per_query(query, [10 * g for g in gain], [3 * s + 1 for s in score], k=2)
    pd.testing.assert_frame_equal(table, scaled)
    # Ties keep the input order; NaN ranks last.
    tied = per_query(["q"] * 3, [0.0, 1.0, 2.0], [1.0, 1.0, np.nan], k=1)
    assert tied.loc["q", "gmv_capture"] == 0.0
    assert evaluate(query, gain, {"m": np.array(score)}, ks=(2,))["test_queries"] == 1


# ----------------------------------------------------------------------------- labels


def test_grades_follow_gmv_with_matching_gains():
    query = ["a"] * 5 + ["b"] * 2
    gmv = np.array([0.0, 1.0, 10.0, 100.0, 1000.0, 0.0, 3.0])
    g = grades(query, gmv, max_grade=30, steps=2)
    assert g.dtype == np.int32 and g[0] == 0 and g[4] == 30 and g[6] == 30 and g[5] == 0
    assert list(g[:5]) == sorted(g[:5])
    gains = np.array(label_gain(30, 2))[g[:5]]
    top = gains[4]
    nonzero = gmv[1:5] / 1000.0
    assert np.all(np.abs(np.log2(gains[1:5] / top / nonzero)) <= 0.25 + 1e-9)
