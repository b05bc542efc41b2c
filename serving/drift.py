"""Drift between the population the model was made for and the candidates it scores.

Training stores, with the model, every feature's reference bins (``training.reference``:
decile edges and shares, nulls a bin of their own, of the population serving scores:
every candidate of every market as of the end of the training data, by the candidate
rule serving uses). Here the scored candidates (every candidate of every brief, as of
the brief's ``as_of``) are binned the same way and each feature's population stability
index is

    PSI = sum over bins of (a - e) * ln(a / e)

with e the training share and a the candidates' share (both floored at 1e-4 so an empty
bin counts but never divides by zero). A family's PSI is the mean of its features' PSIs
(``other`` included: reach). Left out: the commission rate, which the brief sets, not the
data, and the clock features (days since joining, since the first post), which grow by a
day each day, so that a brief as of another day than the reference differs by
construction (in a data set that starts on one day most creators' first post is that
day: one spike, which a few days move across a decile). Common reading: < 0.1 stable, 0.1-0.25 moderate, > 0.25 a shift worth
checking before trusting the scores.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.registry import FAMILIES, OTHER, family_of
from training.reference import bin_counts

THRESHOLD = 0.25
FLOOR = 1e-4
REPORT_COLUMNS = ("kind", "name", "family", "psi", "drifted")
# features the brief sets (the feature builder copies the request's commission_rate)
SET_BY_REQUEST = frozenset({"commission_rate"})
# features that grow a day each day: a brief's as_of, not the data, moves them
CLOCK = frozenset({"tenure_days", "history_days"})
NOT_COMPARED = SET_BY_REQUEST | CLOCK


def data_reference(reference: dict) -> dict:
    """The model's reference bins without the features the request or the clock sets."""
    return {name: bins for name, bins in reference.items() if name not in NOT_COMPARED}


def psi(expected: np.ndarray, counts: np.ndarray) -> float:
    """The population stability index of ``counts`` against the ``expected`` shares."""
    expected = np.maximum(np.asarray(expected, dtype=float), FLOOR)
    total = counts.sum()
    actual = np.maximum(counts / total if total else np.zeros_like(counts), FLOOR)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def add_counts(
    total: dict[str, np.ndarray] | None, frame: pd.DataFrame, reference: dict
) -> dict[str, np.ndarray]:
    """``total`` (None at first) plus the bin counts of ``frame``'s rows."""
    counts = bin_counts(frame, reference)
    return counts if total is None else {name: total[name] + counts[name] for name in counts}


def drift_report(
    counts: dict[str, np.ndarray], reference: dict, threshold: float = THRESHOLD
) -> pd.DataFrame:
    """One row per family (families first, worst first) and per feature: kind
    (``family`` or ``feature``), name, family, psi and drifted (psi > threshold)."""
    features = pd.DataFrame(
        {
            "kind": "feature",
            "name": list(counts),
            "family": [family_of(name) for name in counts],
            "psi": [psi(reference[name]["shares"], counts[name]) for name in counts],
        }
    )
    order = [f for f in (*FAMILIES, OTHER) if f in set(features["family"])]
    families = (
        features.groupby("family")["psi"]
        .mean()
        .reindex(order)
        .reset_index()
        .assign(kind="family", name=lambda t: t["family"])
    )
    report = pd.concat(
        [
            families.sort_values("psi", ascending=False, kind="stable"),
            features.sort_values(["family", "psi"], ascending=[True, False], kind="stable"),
        ],
        ignore_index=True,
    )
    report["drifted"] = report["psi"] > threshold
    return report[list(REPORT_COLUMNS)]


def drift_warning(report: pd.DataFrame, threshold: float = THRESHOLD, worst: int = 3) -> str | None:
    """One line naming the worst families above ``threshold``; None when none is."""
    families = report[(report["kind"] == "family") & report["drifted"]]
    if families.empty:
        return None
    named = ", ".join(f"{r.name} {r.psi:.2f}" for r in families.head(worst).itertuples())
    more = f" and {len(families) - worst} more" if len(families) > worst else ""
    return (
        f"drift: the scored candidates differ from the creators the model was made for "
        f"(PSI > {threshold}): {named}{more}; scores may be unreliable"
    )
