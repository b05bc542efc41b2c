"""training.split and training.backtest: the contract's time split, the walk-forward folds,
the backtest table with its intervals, and the objective chosen on the folds."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pandas as pd
import pytest

from training.metrics import bootstrap_mean_draws, interval
from training.run import fold_splits
from training.split import backtest_splits, time_split

# ----------------------------------------------------------------------------- split


def campaigns_frame(n: int) -> pd.DataFrame:
    created = pd.Timestamp("2025-01-01", tz="UTC") + pd.to_timedelta(np.arange(n) * 3, unit="D")
    return pd.DataFrame(
        {
            "campaign_id": [f"k{i:03d}" for i in range(n)],
            "created_at": created,
            "end_at": created + pd.Timedelta(days=20),
        }
    )


def test_time_split_follows_the_contract():
    campaigns = campaigns_frame(100)
    split = time_split(campaigns, 0.2, 0.2)
    assert split.t_test == campaigns["created_at"].iloc[80]
    assert split.test == frozenset(campaigns["campaign_id"].iloc[80:])
    ended = campaigns.set_index("campaign_id")["end_at"]
    created = campaigns.set_index("campaign_id")["created_at"]
    assert all(ended[c] < split.t_test for c in split.fit | split.valid)
    assert all(ended[c] < split.t_valid for c in split.fit)
    assert min(created[c] for c in split.valid) == split.t_valid
    assert not (split.fit & split.valid) and not ((split.fit | split.valid) & split.test)


def test_time_split_rejects_too_few_campaigns():
    with pytest.raises(ValueError, match="too few campaigns"):
        time_split(campaigns_frame(6), 0.2, 0.2)


# ----------------------------------------------------------------------------- backtest


def test_backtest_folds_walk_forward():
    campaigns = campaigns_frame(100)
    folds = backtest_splits(campaigns, 0.2, 0.2, folds=3)
    assert folds[-1] == time_split(campaigns, 0.2, 0.2)
    created = campaigns.set_index("campaign_id")["created_at"]
    ended = campaigns.set_index("campaign_id")["end_at"]
    assert [len(f.test) for f in folds] == [20, 20, 20]
    for before, after in pairwise(folds):
        assert before.t_end == after.t_test
        assert max(created[c] for c in before.test) < min(created[c] for c in after.test)
    for fold in folds:
        assert all(ended[c] < fold.t_test for c in fold.fit | fold.valid)
        assert all(fold.t_test <= created[c] for c in fold.test)
    with pytest.raises(ValueError, match="backtest fold 1 of 3"):
        backtest_splits(campaigns_frame(12), 0.2, 0.2, folds=3)


def test_a_small_marketplace_backtests_fewer_folds(quick_cfg):
    campaigns = campaigns_frame(40)
    pairs = pd.DataFrame({"campaign_id": campaigns["campaign_id"], "gmv": 1.0})
    splits = fold_splits({"campaigns": campaigns}, quick_cfg, pairs, folds=3)
    assert len(splits) == 2 and splits[-1] == time_split(campaigns, 0.2, 0.2)


def test_backtest_table_has_folds_mean_and_intervals(trained, quick_cfg):
    table = trained.backtest
    assert list(table.index) == ["1", "2", "3", "mean"]
    for metric in ("ndcg@10", "gmv_capture@10", "oracle_ndcg@10"):
        assert (table[f"{metric}_lo"] <= table[metric]).all()
        assert (table[metric] <= table[f"{metric}_hi"]).all()
        assert (table[f"{metric}_hi"] - table[f"{metric}_lo"] > 0).all()
        assert table.loc["mean", metric] == pytest.approx(table.loc[["1", "2", "3"], metric].mean())
    # The last fold is the run's own test: same campaigns, same model, same figure.
    assert table.loc["3", "ndcg@10"] == pytest.approx(trained.metrics["ndcg@10"]["model"])
    assert table.loc["3", "campaigns"] == trained.metrics["test_queries"]
    assert pd.Timestamp(table.loc["3", "test_from"]) == trained.split.t_test
    # The interval of the mean is narrower than any fold's: more campaigns.
    width = table["ndcg@10_hi"] - table["ndcg@10_lo"]
    assert width["mean"] < width.drop("mean").min()


def test_objective_is_chosen_on_the_folds_validation(trained, quick_cfg):
    mean_valid = {
        o: np.mean([fold[o].valid_ndcg for fold in trained.folds]) for o in quick_cfg.objectives
    }
    assert trained.chosen.objective == max(mean_valid, key=mean_valid.get)
    assert trained.metrics["validation_ndcg@10"] == pytest.approx(mean_valid)


def test_bootstrap_interval_covers_the_mean_and_shrinks_with_more_campaigns():
    rng = np.random.default_rng(0)
    values = rng.normal(0.6, 0.2, 400)
    lo, hi = interval(bootstrap_mean_draws(values, 2000, np.random.default_rng(1)), 0.9)
    half = 1.645 * values.std() / np.sqrt(len(values))  # normal approximation
    assert lo[0] < values.mean() < hi[0]
    assert (hi[0] - lo[0]) == pytest.approx(2 * half, rel=0.15)
    lo4, hi4 = interval(bootstrap_mean_draws(values[:100], 2000, np.random.default_rng(1)), 0.9)
    assert hi4[0] - lo4[0] > 1.5 * (hi[0] - lo[0])
