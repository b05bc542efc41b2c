"""The review's figures: matplotlib Figures built without pyplot (nothing to close, no
GUI backend), each drawn from a frame of ``review.experiment``, ``review.scores`` or
``review.fairness``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from features.registry import FAMILIES, OTHER


def plot_metric_curves(curves: pd.DataFrame, metric: str = "ndcg") -> Figure:
    """``metric@k`` against k, one line per scorer (a ``metric_curves`` frame); the
    model thick, the oracle dashed."""
    fig = Figure(figsize=(7, 4.2), layout="constrained")
    ax = fig.subplots()
    for scorer in curves.columns:
        style: dict[str, dict[str, Any]] = {
            "model": dict(lw=3, color="black"),
            "oracle": dict(ls="--", color="grey"),
        }
        ax.plot(curves.index, curves[scorer], marker="o", label=scorer, **style.get(scorer, {}))
    ax.set(
        xlabel="k",
        ylabel=f"{metric}@k (test)",
        xticks=list(curves.index),
        title=f"{metric}@k: model against baselines",
    )
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def plot_validation_curves(curves: pd.DataFrame) -> Figure:
    """Validation ndcg after each tree, one line per objective (``validation_curves``)."""
    fig = Figure(figsize=(6, 3.6), layout="constrained")
    ax = fig.subplots()
    for objective in curves.columns:
        ax.plot(curves.index, curves[objective], label=objective)
    ax.set(xlabel="trees", ylabel="validation ndcg", title="Validation curve")
    ax.legend()
    return fig


def plot_family_summary(table: pd.DataFrame) -> Figure:
    """Two panels of a ``family_summary`` table: share of split gain and mean
    |contribution| by family."""
    fig = Figure(figsize=(10, 4), layout="constrained")
    left, right = fig.subplots(1, 2, sharey=True)
    order = [f for f in (*FAMILIES, OTHER) if f in table.index][::-1]
    left.barh(order, table.loc[order, "gain_share"], color="tab:blue")
    left.set(xlabel="share of split gain", title="Importance by family")
    right.barh(order, table.loc[order, "mean_abs_contribution"], color="tab:orange")
    right.set(xlabel="mean |contribution| to raw score", title="Contributions by family")
    return fig


def plot_score_distribution(pairs: pd.DataFrame, score: str = "score", bins: int = 20) -> Figure:
    """Histograms (densities) of ``score`` for the pairs that sold in their campaign
    and for those that did not."""
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.subplots()
    edges = np.linspace(0, 100, bins + 1).tolist()
    sold = pairs["gmv"] > 0
    ax.hist(
        pairs.loc[~sold, score],
        bins=edges,
        density=True,
        alpha=0.6,
        label=f"no sales ({(~sold).sum():,})",
    )
    ax.hist(
        pairs.loc[sold, score], bins=edges, density=True, alpha=0.6, label=f"sold ({sold.sum():,})"
    )
    ax.set(xlabel=f"{score} (0-100)", ylabel="density", title="Score of test invitees by outcome")
    ax.legend()
    return fig


def plot_fairness(table: pd.DataFrame, title: str | None = None) -> Figure:
    """A ``fairness_table`` (without its ``all`` row) as bars: each group's share of the
    invitees, of the model's top-k selections and of the realised gmv; its mean score;
    and the share of its gmv that the selected invitees realised."""
    groups = table.drop(index="all", errors="ignore")
    fig = Figure(figsize=(13, 4), layout="constrained")
    left, right, captured = fig.subplots(1, 3, gridspec_kw={"width_ratios": [2, 1, 1]})
    x = np.arange(len(groups))
    for j, (column, label) in enumerate(
        (
            ("invitee_share", "invitees"),
            ("selected_share", "selected by the model"),
            ("gmv_share", "realised gmv"),
        )
    ):
        left.bar(x + (j - 1) * 0.27, groups[column], 0.27, label=label)
    rotation = 30 if len(groups) > 5 else 0
    left.set_xticks(x, groups.index, rotation=rotation)
    left.set(ylabel="share", title=title or f"Shares by {groups.index.name}")
    left.legend(fontsize="small")
    right.bar(x, groups["mean_score"], color="tab:grey")
    right.set_xticks(x, groups.index, rotation=rotation)
    right.set(ylabel="mean score (0-100)", title="Mean model score")
    captured.bar(x, groups["gmv_captured"], color="tab:green")
    if "all" in table.index:
        captured.axhline(
            table.loc["all", "gmv_captured"], color="black", ls="--", lw=1, label="all"
        )
        captured.legend(fontsize="small")
    captured.set_xticks(x, groups.index, rotation=rotation)
    captured.set(
        ylabel="share of the group's gmv", ylim=(0, 1), title="Gmv of the group's selected"
    )
    return fig
