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
    training evaluates on, as a model (any model) sees them."""
    cfg = cfg or load_config()
    pairs = training_pairs(tables, history or index_history(tables))
    split = time_split(tables["campaigns"], cfg.test_fraction, cfg.validation_fraction)
    test = pairs[pairs["campaign_id"].isin(split.test)].reset_index(drop=True)
    raw = scorer.raw(test)
    return test.assign(raw_score=raw, score=scorer.score(raw))


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
