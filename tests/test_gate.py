"""training.gate: the champion gate promotes a challenger only when it is better beyond
noise, on campaigns the champion never saw."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.gate import fair_campaigns, gate_decision


def paired(challenger, champion) -> pd.DataFrame:
    return pd.DataFrame({"challenger": challenger, "champion": champion})


def test_gate_promotes_a_clearly_better_challenger():
    rng = np.random.default_rng(4)
    champion = rng.uniform(0.3, 0.9, 300)
    decision = gate_decision(paired(champion + rng.normal(0.03, 0.05, 300), champion), 0.9, 1000, 1)
    assert decision.promote and decision.verdict == "better"
    assert 0 < decision.lo < decision.diff < decision.hi and decision.campaigns == 300


def test_gate_refuses_a_worse_or_a_noisy_challenger():
    rng = np.random.default_rng(5)
    champion = rng.uniform(0.3, 0.9, 300)
    worse = gate_decision(paired(champion - rng.normal(0.03, 0.05, 300), champion), 0.9, 1000, 1)
    assert not worse.promote and worse.verdict == "worse" and worse.hi < 0
    # Better on average, but by less than the noise: the interval holds 0.
    noise = rng.normal(0.0, 0.1, 300)
    noisy = gate_decision(paired(champion + noise - noise.mean() + 0.002, champion), 0.9, 1000, 1)
    assert noisy.diff > 0 and noisy.lo < 0 < noisy.hi
    assert not noisy.promote and noisy.verdict == "not significant"


def test_gate_keeps_the_champion_on_a_tie():
    scores = np.random.default_rng(6).uniform(0.3, 0.9, 50)
    decision = gate_decision(paired(scores, scores.copy()), 0.9, 1000, 1)
    assert not decision.promote and decision.verdict == "tie"
    assert decision.diff == decision.lo == decision.hi == 0.0


def test_gate_compares_only_campaigns_the_champion_never_saw(trained):
    cutoff = trained.test["created_at"].sort_values().iloc[len(trained.test) // 2]
    fair = fair_campaigns(trained.test, cutoff.isoformat())
    assert (fair["created_at"] > cutoff).all()
    assert len(fair) == (trained.test["created_at"] > cutoff).sum() > 0
