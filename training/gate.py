"""The champion gate: does a challenger beat the champion by more than noise?

Rule (README, "Retrain"): both models rank the challenger's test campaigns that the
champion never learned from (created after its ``trained_until``); d_c is the
challenger's ndcg@10 minus the champion's on campaign c. The mean of d over campaigns
is resampled ``samples`` times (campaigns drawn with replacement, seeded); the alias
moves only when the mean is positive AND the lower end of its ``confidence`` interval
is above 0. A tie (every d_c = 0, e.g. the same model again) or an interval that
contains 0 keeps the champion, unless the champion gives no expected sales (a model saved
before the sales model, or in its older format) and the challenger does
(``training.tracking.upgrades_sales``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from training.metrics import bootstrap_mean_draws, interval, per_query

BETTER, WORSE, TIE, NOISE = "better", "worse", "tie", "not significant"


@dataclass(frozen=True)
class GateDecision:
    """The gate's decision: promote or not, the verdict and the paired ndcg figures behind it."""

    promote: bool
    verdict: str  # better, worse, tie or not significant
    campaigns: int  # campaigns compared
    challenger: float  # mean ndcg@k over them
    champion: float
    diff: float  # challenger - champion
    lo: float  # confidence interval of diff
    hi: float
    confidence: float


def fair_campaigns(test: pd.DataFrame, trained_until: str) -> pd.DataFrame:
    """The rows of ``test`` (pairs with created_at) whose campaign was created after
    ``trained_until``: outcomes a model trained until then cannot have seen."""
    return test[test["created_at"] > pd.Timestamp(trained_until)]


def paired_ndcg(test: pd.DataFrame, challenger, champion, k: int = 10) -> pd.DataFrame:
    """Per scorable campaign of ``test``: ndcg@k of the two score arrays."""
    query, gain = test["campaign_id"].to_numpy(), test["gmv"].to_numpy()
    return pd.DataFrame(
        {
            "challenger": per_query(query, gain, challenger, k)["ndcg"],
            "champion": per_query(query, gain, champion, k)["ndcg"],
        }
    )


def gate_decision(paired: pd.DataFrame, confidence: float, samples: int, seed: int) -> GateDecision:
    """The gate's rule (module docstring) on a ``paired_ndcg`` frame."""
    diff = (paired["challenger"] - paired["champion"]).to_numpy(dtype=float)
    draws = bootstrap_mean_draws(diff, samples, np.random.default_rng(seed))
    lo, hi = (float(v[0]) for v in interval(draws, confidence))
    mean = float(diff.mean())
    promote = mean > 0 and lo > 0
    if np.all(diff == 0):
        verdict = TIE
    elif promote:
        verdict = BETTER
    elif hi < 0:
        verdict = WORSE
    else:
        verdict = NOISE
    return GateDecision(
        promote=promote,
        verdict=verdict,
        campaigns=len(diff),
        challenger=float(paired["challenger"].mean()),
        champion=float(paired["champion"].mean()),
        diff=mean,
        lo=lo,
        hi=hi,
        confidence=confidence,
    )


def describe(
    decision: GateDecision, version: str, champion: str, which: str = "", no_sales: bool = False
) -> str:
    """One line: the comparison, the interval and the outcome; ``no_sales``: the
    challenger, no worse, replaces a champion that gives no expected sales."""
    d = decision
    if no_sales:
        outcome = (
            f"v{champion} gives no expected sales (an older format) and v{version} ranks "
            f"no worse: v{version} is champion"
        )
    else:
        outcome = f"v{version} is champion" if d.promote else f"v{champion} stays champion"
    return (
        f"ndcg@10 on {d.campaigns} test campaigns champion v{champion}{which} never saw: "
        f"v{version} {d.challenger:.4f}, v{champion} {d.champion:.4f}, difference "
        f"{d.diff:+.4f}, {d.confidence:.0%} interval [{d.lo:+.4f}, {d.hi:+.4f}]: {d.verdict}; "
        f"{outcome}"
    )
