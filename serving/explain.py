"""Explaining one creator of a partner list: the waterfall of family contributions.

A partner-list row holds the model's expected raw output (``contrib_base``), each
family's additive share of the creator's raw output (``contrib_<family>``,
``contrib_other``) and the raw output itself (``raw_score``); the data contract promises
that base + every contribution = raw_score. ``waterfall`` lays that sum out as steps --
base, then each family, ending at raw_score -- and ``plot_waterfall`` draws them.
``example_brief`` and ``partner_view`` help a notebook pick a brief and read its list.
Pure functions; plots are matplotlib Figures built without pyplot.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from features.indices import index_name
from features.registry import FAMILIES, OTHER
from serving.partner_list import INDEX_COLUMNS

WATERFALL_FAMILIES = (*FAMILIES, OTHER)
BASE, TOTAL = "base", "raw_score"
TOLERANCE = 1e-6


def waterfall(row, sort: bool = False) -> pd.DataFrame:
    """The steps from the model's base to a creator's raw_score, from one partner-list
    row (a Series or mapping with ``contrib_base``, ``contrib_<family>`` for the nine
    families and ``other``, and ``raw_score``).

    One row per step, indexed by step name: ``base``, each family (the contract's order,
    or by |contribution| largest first when ``sort``), ``other``-included, and the final
    ``raw_score``. Columns: contribution (the step's size; for base and raw_score their
    value), start and end (the running total before and after the step; base and
    raw_score start at 0) and index (the family's 0-100 index from the row when present,
    NaN for base, other and raw_score). Raises ValueError when the contributions do not
    add up to raw_score (more than 1e-6 relative).
    """
    row = pd.Series(row)
    base = float(row["contrib_base"])
    raw = float(row[TOTAL])
    contrib = pd.Series({f: float(row[f"contrib_{f}"]) for f in WATERFALL_FAMILIES})
    if sort:
        contrib = contrib.iloc[np.argsort(-contrib.abs().to_numpy(), kind="stable")]
    ends = base + contrib.cumsum()
    if abs(ends.iloc[-1] - raw) > TOLERANCE * max(1.0, abs(raw)):
        raise ValueError(f"contributions add up to {ends.iloc[-1]:.6g}, not raw_score {raw:.6g}")
    index = [float(row.get(index_name(f), np.nan)) if f != OTHER else np.nan for f in contrib.index]
    steps = pd.DataFrame(
        {
            "contribution": [base, *contrib.to_numpy(), raw],
            "start": [0.0, *(ends - contrib).to_numpy(), 0.0],
            "end": [base, *ends.to_numpy(), raw],
            "index": [np.nan, *index, np.nan],
        },
        index=pd.Index([BASE, *contrib.index, TOTAL], name="step"),
    )
    return steps


def plot_waterfall(steps: pd.DataFrame, title: str | None = None) -> Figure:
    """A horizontal waterfall of ``waterfall`` steps: grey bars for base and raw_score,
    green for families that lift the raw score, red for those that lower it; each
    family's label carries its index when known."""
    fig = Figure(figsize=(8, 0.42 * len(steps) + 1.2), layout="constrained")
    ax = fig.subplots()
    y = np.arange(len(steps))[::-1]
    colors = [
        "tab:grey" if name in (BASE, TOTAL) else ("tab:green" if value >= 0 else "tab:red")
        for name, value in zip(steps.index, steps["contribution"], strict=True)
    ]
    left = np.minimum(steps["start"], steps["end"])
    width = (steps["end"] - steps["start"]).abs()
    ax.barh(y, width, left=left, color=colors)
    for yi, (name, step) in zip(y, steps.iterrows(), strict=True):
        ax.annotate(
            f"{step['contribution']:+.3f}"
            if name not in (BASE, TOTAL)
            else f"{step['contribution']:.3f}",
            (max(step["start"], step["end"]), yi),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize="small",
        )
    labels = [
        name if np.isnan(step["index"]) else f"{name} ({step['index']:.0f})"
        for name, step in steps.iterrows()
    ]
    ax.set_yticks(y, labels)
    ax.axvline(0, color="black", lw=0.6)
    for yi, end in zip(y[:-1], steps["end"].to_numpy()[:-1], strict=True):
        ax.plot([end, end], [yi - 0.4, yi - 0.6], color="black", lw=0.6)
    ax.margins(x=0.1)
    ax.set(
        xlabel="raw score (model output)", title=title or "Family contributions: base to raw score"
    )
    return fig


def example_brief(
    tables: dict[str, pd.DataFrame],
    market: str | None = None,
    category: str | None = None,
    top_k: int = 20,
    as_of: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """A one-row briefs frame for a data directory's tables: ``market`` (default: the
    market with the most creators), ``category`` (default: the most frequent campaign
    category of that market), as of ``as_of`` (default: midnight after the latest post)
    and ``top_k``; ``brief_id`` is ``<market>-<category>`` in lower case."""
    creators = tables["creators"]
    market = market or str(creators["market"].value_counts().sort_index().idxmax())
    if category is None:
        in_market = tables["campaigns"].loc[tables["campaigns"]["market"] == market, "category"]
        counts = in_market.value_counts().sort_index()
        category = str(counts.idxmax()) if len(counts) else "beauty"
    if as_of is None:
        as_of = tables["posts"]["posted_at"].max().normalize() + pd.Timedelta(days=1)
    return pd.DataFrame(
        {
            "brief_id": [f"{market}-{category}".lower()],
            "market": [market],
            "category": [category],
            "as_of": [pd.Timestamp(as_of)],
            "top_k": [top_k],
        }
    )


def partner_view(partner_list: pd.DataFrame, brief_id: str | None = None) -> pd.DataFrame:
    """The readable columns of one brief's partner list (the first brief when
    ``brief_id`` is None): rank (index), creator_id, score, the nine indices and
    reasons, scores and indices rounded to whole points."""
    brief_id = brief_id if brief_id is not None else partner_list["brief_id"].iloc[0]
    rows = partner_list[partner_list["brief_id"] == brief_id]
    view = rows[["rank", "creator_id", "score", *INDEX_COLUMNS, "reasons"]].set_index("rank")
    rounded = view[["score", *INDEX_COLUMNS]].round(0)
    view = view.assign(**{c: rounded[c] for c in rounded.columns})
    return view.rename(columns=lambda c: c.removesuffix("_index"))


def creator_row(
    partner_list: pd.DataFrame,
    brief_id: str | None = None,
    rank: int = 1,
    creator_id: str | None = None,
) -> pd.Series:
    """One row of a partner list: the creator ``creator_id``, else the one at ``rank``,
    of brief ``brief_id`` (the first brief when None). KeyError when absent."""
    brief_id = brief_id if brief_id is not None else partner_list["brief_id"].iloc[0]
    rows = partner_list[partner_list["brief_id"] == brief_id]
    hit = (
        rows[rows["creator_id"] == creator_id]
        if creator_id is not None
        else rows[rows["rank"] == rank]
    )
    if hit.empty:
        raise KeyError(f"brief {brief_id}: no creator {creator_id or f'at rank {rank}'}")
    return hit.iloc[0]
