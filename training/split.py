"""The data contract's time split of campaigns.

Campaigns are ordered by ``created_at`` (ties by campaign_id). The test set is the last
``test_fraction`` of them: every campaign created at or after t_test, the ``created_at``
of the campaign at position floor((1 - test_fraction) n). Only campaigns that ended
before t_test are used for fitting and early stopping: the validation set is the last
``validation_fraction`` of those (from t_valid on), and the fit set the ones that ended
before t_valid, so validation is as honest about time as the test.

The walk-forward backtest (``backtest_splits``) repeats this K times: fold j of K tests
on the campaigns from position floor((1 - (K - j + 1) f) n) up to the next fold's start
(f = test_fraction; the last fold is the contract's test set), fitting and validating on
the campaigns that ended before its start.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Split:
    """A time split: the fit, validation and test campaigns and the moments that divide them."""

    t_test: pd.Timestamp
    t_valid: pd.Timestamp
    fit: frozenset
    valid: frozenset
    test: frozenset
    t_end: pd.Timestamp | None = None  # the test period's end (exclusive); None: open

    def fingerprint(self) -> dict:
        """The split's boundaries and campaign counts, for the run's data fingerprint."""
        return {
            "t_test": self.t_test.isoformat(),
            "t_valid": self.t_valid.isoformat(),
            "fit_campaigns": len(self.fit),
            "valid_campaigns": len(self.valid),
            "test_campaigns": len(self.test),
        }


def _boundary(created: pd.Series, fraction: float) -> pd.Timestamp:
    ordered = created.sort_values(kind="stable")
    # the epsilon keeps 1 - 3 x 0.2 = 0.39999... from losing a position to rounding
    return ordered.iloc[int(np.floor((1.0 - fraction) * len(ordered) + 1e-9))]


def time_split(campaigns: pd.DataFrame, test_fraction: float, validation_fraction: float) -> Split:
    """Split ``campaigns`` (campaign_id, created_at, end_at) by time; ValueError when
    there are too few campaigns."""
    return backtest_splits(campaigns, test_fraction, validation_fraction, folds=1)[0]


def backtest_splits(
    campaigns: pd.DataFrame, test_fraction: float, validation_fraction: float, folds: int
) -> list[Split]:
    """The ``folds`` walk-forward splits, oldest first (see the module's docstring); the
    last is ``time_split``'s. ValueError when a fold has too few campaigns."""
    if len(campaigns) < 10:
        raise ValueError(f"too few campaigns for the time split: {len(campaigns)} (need 10)")
    ordered = campaigns.sort_values(["created_at", "campaign_id"], kind="stable")
    starts = [_boundary(ordered["created_at"], (folds - j) * test_fraction) for j in range(folds)]
    ends = [*starts[1:], None]
    splits = []
    for number, (t_test, t_end) in enumerate(zip(starts, ends, strict=True), start=1):
        try:
            splits.append(_split_at(ordered, t_test, t_end, validation_fraction))
        except ValueError as err:
            if number == folds:
                raise
            raise ValueError(
                f"backtest fold {number} of {folds}: {err}; use fewer folds (--backtest)"
            ) from None
    return splits


def _split_at(
    ordered: pd.DataFrame,
    t_test: pd.Timestamp,
    t_end: pd.Timestamp | None,
    validation_fraction: float,
) -> Split:
    created = ordered["created_at"]
    test = ordered[(created >= t_test) & ((created < t_end) if t_end is not None else True)]
    usable = ordered[ordered["end_at"] < t_test]
    if len(usable) < 5:
        raise ValueError(
            f"too few campaigns ended before the test period ({t_test:%Y-%m-%d}):"
            f" {len(usable)} (need 5)"
        )
    t_valid = _boundary(usable["created_at"], validation_fraction)
    valid = usable[usable["created_at"] >= t_valid]
    fit = usable[usable["end_at"] < t_valid]
    if len(fit) < 3:
        raise ValueError(
            f"too few campaigns ended before the validation period "
            f"({t_valid:%Y-%m-%d}): {len(fit)} (need 3)"
        )
    return Split(
        t_test=t_test,
        t_valid=t_valid,
        fit=frozenset(fit["campaign_id"]),
        valid=frozenset(valid["campaign_id"]),
        test=frozenset(test["campaign_id"]),
        t_end=t_end,
    )
