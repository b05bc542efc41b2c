"""Ranking metrics of the data contract, vectorised over many queries.

A query is a campaign; its items are its invited creators; the gain of an item is its
realised gmv (linear gain). Scores rank items best first; ties keep the input order,
and a missing score (NaN) ranks last. Only queries with at least 2 items and a positive
total gain are scored.
- ``ndcg@k``: DCG of the top k (gain / log2(rank + 1)) over the best possible DCG.
- ``gmv_capture@k``: gain of the top k over the best possible top-k gain.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _positions(query: np.ndarray, key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted order by (query, key descending, input order) and each row's 0-based rank."""
    key = np.where(np.isnan(key), -np.inf, key)
    order = np.lexsort((np.arange(len(query)), -key, query))
    q = query[order]
    starts = np.flatnonzero(np.r_[True, q[1:] != q[:-1]])
    sizes = np.diff(np.r_[starts, len(q)])
    return order, np.arange(len(q)) - np.repeat(starts, sizes)


def per_query(query, gain, score, k: int) -> pd.DataFrame:
    """ndcg@k and gmv_capture@k of every scorable query (index = query id)."""
    codes, labels = pd.factorize(pd.Series(query), sort=False)
    gain = np.asarray(gain, dtype=float)
    score = np.asarray(score, dtype=float)
    n = len(labels)
    order, rank = _positions(codes, score)
    ideal_order, ideal_rank = _positions(codes, gain)
    discount = np.where(rank < k, 1.0 / np.log2(rank + 2.0), 0.0)
    ideal_discount = np.where(ideal_rank < k, 1.0 / np.log2(ideal_rank + 2.0), 0.0)
    dcg = np.bincount(codes[order], gain[order] * discount, minlength=n)
    idcg = np.bincount(codes[ideal_order], gain[ideal_order] * ideal_discount, minlength=n)
    top = np.bincount(codes[order], gain[order] * (rank < k), minlength=n)
    ideal_top = np.bincount(codes[ideal_order], gain[ideal_order] * (ideal_rank < k), minlength=n)
    size = np.bincount(codes, minlength=n)
    total = np.bincount(codes, gain, minlength=n)
    ok = (size >= 2) & (total > 0)
    return pd.DataFrame(
        {"ndcg": dcg[ok] / idcg[ok], "gmv_capture": top[ok] / ideal_top[ok]},
        index=pd.Index(labels[ok], name="query"),
    )


def scorable_queries(query, gain) -> int:
    """How many queries have at least 2 items and a positive total gain."""
    frame = pd.DataFrame({"q": np.asarray(query), "g": np.asarray(gain, float)})
    by = frame.groupby("q")["g"].agg(["size", "sum"])
    return int(((by["size"] >= 2) & (by["sum"] > 0)).sum())


def mean_ndcg(query, gain, score, k: int) -> float:
    """ndcg@k averaged over the scorable queries (see ``per_query``)."""
    return float(per_query(query, gain, score, k)["ndcg"].mean())


def evaluate(query, gain, scores: dict[str, np.ndarray], ks=(5, 10, 20)) -> dict:
    """``{"test_queries": N, "ndcg@k": {scorer: x}, "gmv_capture@k": {scorer: x}}``."""
    out: dict = {"test_queries": scorable_queries(query, gain)}
    for k in ks:
        out[f"ndcg@{k}"], out[f"gmv_capture@{k}"] = {}, {}
        for name, score in scores.items():
            table = per_query(query, gain, score, k)
            out[f"ndcg@{k}"][name] = float(table["ndcg"].mean())
            out[f"gmv_capture@{k}"][name] = float(table["gmv_capture"].mean())
    return out


def bootstrap_mean_draws(values: np.ndarray, samples: int, rng: np.random.Generator) -> np.ndarray:
    """Means of ``samples`` resamples (with replacement) of the rows of ``values``
    (n x m, one row per campaign): a (samples x m) array. Resampling by multinomial
    counts keeps memory at samples x n whatever m."""
    values = np.asarray(values, dtype=float).reshape(len(values), -1)
    n = len(values)
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=samples)
    return counts @ values / n


def interval(draws: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """The central ``confidence`` interval of bootstrap ``draws`` (percentile method)."""
    tail = (1.0 - confidence) / 2.0
    return np.quantile(draws, tail, axis=0), np.quantile(draws, 1.0 - tail, axis=0)
