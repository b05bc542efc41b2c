"""A model's scores on the test split, and what they are made of.

Pure functions (frames in, frames out): the test pairs of the time split scored by any
model, importance and contributions by family, and how the 0-100 score spreads by outcome.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.build import History, index_history
from features.pairs import training_pairs
from training.config import TrainConfig, load_config
from training.figures import family_importance, family_mean_abs_contribution
from training.model import Scorer
from training.split import time_split


def scored_test_pairs(
    tables: dict[str, pd.DataFrame],
    scorer: Scorer,
    cfg: TrainConfig | None = None,
    history: History | None = None,
) -> pd.DataFrame:
    """The test pairs of the contract's time split (``cfg``'s fractions; the default
    config's when None) with the model's ``raw_score`` and 0-100 ``score``: the pairs
    training evaluates on, as the model sees them.

    Only out of sample: ValueError for a model that learned from outcomes known at or
    after the test period's start (``trained_until`` >= t_test, or unknown), such as a
    run's served model, refitted on the test campaigns; use the run's evaluated model
    (``review.experiment.evaluated_run_scorer``)."""
    cfg = cfg or load_config()
    split = time_split(tables["campaigns"], cfg.test_fraction, cfg.validation_fraction)
    check_out_of_sample(scorer, split.t_test)
    pairs = training_pairs(tables, history or index_history(tables))
    test = pairs[pairs["campaign_id"].isin(split.test)].reset_index(drop=True)
    raw = scorer.raw(test)
    return test.assign(raw_score=raw, score=scorer.score(raw))


def check_out_of_sample(scorer: Scorer, t_test: pd.Timestamp) -> None:
    """ValueError unless ``scorer`` learned only from campaigns that ended before
    ``t_test`` (its ``trained_until``)."""
    until = pd.Timestamp(scorer.trained_until) if scorer.trained_until else None
    if until is not None and until < t_test:
        return
    learned = (
        f"learned from outcomes until {until:%Y-%m-%d}"
        if until is not None
        else "does not say when its training data ended"
    )
    raise ValueError(
        f"the model {learned}, and the test period starts {t_test:%Y-%m-%d}: its scores "
        "of the test pairs would be in-sample; use the run's evaluated model "
        "(review.experiment.evaluated_run_scorer)"
    )


def family_summary(scorer: Scorer, pairs: pd.DataFrame) -> pd.DataFrame:
    """Per family (and other): gain_share (share of the model's split gain),
    mean_abs_contribution (mean |TreeSHAP contribution| over ``pairs``) and
    contribution_share (of the sum of those means)."""
    importance = family_importance(scorer.booster)
    contribution = family_mean_abs_contribution(scorer, pairs).reindex(importance.index)
    return pd.DataFrame(
        {
            "gain_share": importance,
            "mean_abs_contribution": contribution,
            "contribution_share": contribution / contribution.sum(),
        }
    )


def score_distribution(pairs: pd.DataFrame, score: str = "score", bins=None) -> pd.DataFrame:
    """How the 0-100 ``score`` of ``pairs`` spreads, split by outcome: for each score bin
    (rows; default 10 bins of 10 points) the share of the pairs that sold in their
    campaign (gmv > 0) and of those that did not, and the sold rate in the bin."""
    bins = np.linspace(0, 100, 11) if bins is None else bins
    binned = pd.cut(pairs[score], bins, include_lowest=True)
    sold = pairs["gmv"] > 0
    counts = pd.crosstab(binned, sold.map({True: "sold", False: "no sales"}), dropna=False)
    counts = counts.reindex(columns=["sold", "no sales"], fill_value=0)
    table = counts / counts.sum().where(counts.sum() > 0)
    table.columns = ["share_of_sold", "share_of_no_sales"]
    table["pairs"] = counts.sum(axis=1)
    table["sold_rate"] = counts["sold"] / table["pairs"].where(table["pairs"] > 0)
    table.index.name = "score_bin"
    return table
