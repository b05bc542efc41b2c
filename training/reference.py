"""Reference bins of the training pairs' features, stored with the model for drift checks.

For every feature: the edges of its deciles over the non-null training values (repeated
edges merged) and the share of training pairs in each bin, (-inf, e1], (e1, e2], ...,
(e_last, inf), plus a last bin for nulls. ``serving.drift`` bins scored candidates the
same way (``bin_counts``) and compares the shares (population stability index).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

QUANTILES = np.linspace(0.1, 0.9, 9)


def reference_bins(frame: pd.DataFrame, features: list[str]) -> dict:
    """``{feature: {"edges": [...], "shares": [...]}}`` of ``frame`` (shares sum to 1;
    one more share than bins between edges: the nulls)."""
    out = {}
    for name in features:
        values = frame[name].to_numpy(dtype=float)
        known = values[~np.isnan(values)]
        edges = np.unique(np.quantile(known, QUANTILES)) if len(known) else np.array([])
        counts = bin_counts_of(values, edges)
        out[name] = {"edges": edges.tolist(), "shares": (counts / max(len(values), 1)).tolist()}
    return out


def bin_counts_of(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts of ``values`` per bin of ``edges`` (right-closed), nulls in the last bin."""
    values = np.asarray(values, dtype=float)
    null = np.isnan(values)
    index = np.searchsorted(edges, values[~null], side="left")
    counts = np.bincount(index, minlength=len(edges) + 1).astype(float)
    return np.append(counts, float(null.sum()))


def bin_counts(frame: pd.DataFrame, reference: dict) -> dict[str, np.ndarray]:
    """Counts of the rows of ``frame`` in each feature's reference bins."""
    return {
        name: bin_counts_of(frame[name].to_numpy(dtype=float), np.asarray(ref["edges"]))
        for name, ref in reference.items()
    }
