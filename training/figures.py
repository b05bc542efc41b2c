"""The plots a training run logs, and the importance and contributions by family they
draw: matplotlib Figures built without pyplot."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from features.registry import FAMILIES, OTHER, family_of
from training.backtest import MEAN
from training.model import Scorer
from training.run import TrainResult


def family_importance(booster: lgb.Booster) -> pd.Series:
    """Total split gain per family (other included), as a share of all gain."""
    gain = pd.Series(booster.feature_importance("gain"), index=booster.feature_name())
    by = gain.groupby(lambda name: family_of(name)).sum()
    return (by / by.sum()).reindex([*FAMILIES, OTHER], fill_value=0.0)


def family_mean_abs_contribution(
    scorer: Scorer, frame: pd.DataFrame, rows: int = 20000
) -> pd.Series:
    """Mean |TreeSHAP contribution| per family (and other) over the first ``rows`` of ``frame``."""
    sample = frame.iloc[:rows]
    contrib = scorer.contributions(sample).drop(columns="contrib_base")
    return contrib.abs().mean().rename(lambda c: c.removeprefix("contrib_"))


def _figure(size: tuple[float, float]):
    """A figure outside pyplot's global state (nothing to close, no GUI backend)."""
    fig = Figure(figsize=size, layout="constrained")  # room for every label
    return fig, fig.add_subplot()


def review_figures(result: TrainResult) -> dict:
    """The run's plots: validation curves, importance and contributions by family, and
    ndcg@k of the model against the baselines (and oracle)."""
    figures = {}
    fig, ax = _figure((6, 4))
    for objective, fitted in result.candidates.items():
        ax.plot(range(1, len(fitted.curve) + 1), fitted.curve, label=objective)
    ax.set(
        xlabel="trees",
        ylabel=f"validation ndcg@{result.config.eval_at} (LightGBM, grade gains)",
        title="Validation curve",
    )
    ax.legend()
    figures["validation_curve"] = fig

    fig, ax = _figure((6, 4))
    family_importance(result.scorer.booster).plot.barh(ax=ax)
    ax.set(xlabel="share of split gain", title="Importance by family")
    figures["importance_by_family"] = fig

    fig, ax = _figure((6, 4))
    family_mean_abs_contribution(result.scorer, result.test).plot.barh(ax=ax)
    ax.set(xlabel="mean |contribution| to raw score (test pairs)", title="Contributions by family")
    figures["contributions_by_family"] = fig

    fig, ax = _figure((7, 4))
    ks = result.config.ks
    table = pd.DataFrame({k: result.metrics[f"ndcg@{k}"] for k in ks}).T
    table.plot(ax=ax, marker="o")
    ax.set(xlabel="k", ylabel="ndcg@k (test)", title="Model against baselines", xticks=list(ks))
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figures["ndcg_at_k"] = fig
    if result.backtest is not None:
        figures["backtest"] = backtest_figure(result.backtest, result.config.eval_at)
    return figures


def backtest_figure(table: pd.DataFrame, k: int) -> Figure:
    """ndcg@k of each backtest fold with its interval, the mean as a band (and the
    oracle's per fold, dashed, when known)."""
    fig, ax = _figure((7, 4))
    folds = table.drop(index=MEAN)
    x = np.arange(1, len(folds) + 1)
    metric = f"ndcg@{k}"
    ax.errorbar(
        x,
        folds[metric],
        yerr=[folds[metric] - folds[f"{metric}_lo"], folds[f"{metric}_hi"] - folds[metric]],
        fmt="o",
        capsize=4,
        color="black",
        label="model (fold, interval)",
    )
    mean = table.loc[MEAN]
    ax.axhspan(
        mean[f"{metric}_lo"],
        mean[f"{metric}_hi"],
        color="tab:blue",
        alpha=0.2,
        label=f"mean {mean[metric]:.3f}, interval",
    )
    ax.axhline(mean[metric], color="tab:blue")
    if f"oracle_{metric}" in table.columns:
        ax.plot(x, folds[f"oracle_{metric}"], "--", marker="s", color="grey", label="oracle")
    labels = [f"{n}\n{d[:10]}" for n, d in zip(folds.index, folds["test_from"], strict=True)]
    ax.set_xticks(x, labels)
    ax.set(xlabel="fold (test from)", ylabel=f"{metric} (test)", title="Walk-forward backtest")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig
