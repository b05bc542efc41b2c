"""The walk-forward backtest: per-fold test metrics with bootstrap intervals.

Each fold (``training.split.backtest_splits``) is fitted only on campaigns that ended
before its test period; the last fold is the contract's test set. For every fold the
model's ndcg@k and gmv_capture@k are the means over its scorable test campaigns, with a
``confidence`` bootstrap interval over those campaigns; the row ``mean`` is the mean of
the fold values, its interval from resampling campaigns within each fold (so every fold
keeps its weight). With the truth, ``oracle_ndcg@k`` (same folds) gives the oracle ratio.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.metrics import bootstrap_mean_draws, interval, per_query
from training.split import Split

MEAN = "mean"


def metric_names(ks) -> list[str]:
    """The metric columns ``ndcg@k`` and ``gmv_capture@k`` for each k of ``ks``."""
    return [f"{m}@{k}" for k in ks for m in ("ndcg", "gmv_capture")]


def per_campaign(query, gain, score, ks) -> pd.DataFrame:
    """ndcg@k and gmv_capture@k of every scorable campaign (rows), one column each."""
    return pd.concat(
        {
            f"{m}@{k}": per_query(query, gain, score, k)[m]
            for k in ks
            for m in ("ndcg", "gmv_capture")
        },
        axis=1,
    )


def backtest_table(
    folds: list[pd.DataFrame], splits: list[Split], confidence: float, samples: int, seed: int
) -> pd.DataFrame:
    """One row per fold (1..K, oldest first) and ``mean``: test_from, test_to (exclusive,
    empty for the last), campaigns, and for each metric column of the ``per_campaign``
    frames in ``folds``: its mean, ``<metric>_lo`` and ``<metric>_hi``."""
    rng = np.random.default_rng(seed)
    names = list(folds[0].columns)
    rows, draws = [], []
    for number, (table, split) in enumerate(zip(folds, splits, strict=True), start=1):
        fold_draws = bootstrap_mean_draws(table.to_numpy(), samples, rng)
        draws.append(fold_draws)
        rows.append(
            _row(
                str(number),
                table.mean().to_numpy(),
                fold_draws,
                names,
                confidence,
                split.t_test.isoformat(),
                split.t_end.isoformat() if split.t_end is not None else "",
                len(table),
            )
        )
    means = np.mean([t.mean().to_numpy() for t in folds], axis=0)
    rows.append(
        _row(
            MEAN,
            means,
            np.mean(draws, axis=0),
            names,
            confidence,
            splits[0].t_test.isoformat(),
            "",
            sum(len(t) for t in folds),
        )
    )
    return pd.DataFrame(rows).set_index("fold")


def _row(fold: str, values, draws, names, confidence, start: str, end: str, campaigns: int) -> dict:
    lo, hi = interval(draws, confidence)
    row = {"fold": fold, "test_from": start, "test_to": end, "campaigns": campaigns}
    for j, name in enumerate(names):
        row.update({name: float(values[j]), f"{name}_lo": float(lo[j]), f"{name}_hi": float(hi[j])})
    return row


def format_backtest(table: pd.DataFrame, metrics: list[str]) -> str:
    """The backtest as plain text: each metric as ``value [lo, hi]``."""
    shown = pd.DataFrame(
        {
            "test from": table["test_from"].str[:10],
            "campaigns": table["campaigns"],
            **{
                m: [
                    f"{v:.4f} [{lo:.4f}, {hi:.4f}]"
                    for v, lo, hi in zip(table[m], table[f"{m}_lo"], table[f"{m}_hi"], strict=True)
                ]
                for m in metrics
            },
        }
    )
    return shown.to_string()
