"""The explorer's second question: a creator's profile among its peers.

A creator's profile is read from the store: its row on the chosen stored day (its
features, followers, and its indices among the **peers**, the candidates of its market
that day, which the store keeps), scored by the model for the chosen category and
commission, with its rank among those candidates (their raw scores: the brief's pool,
``explorer.core.pool_of``, precomputed or scored once and kept) and its expected gmv
(``training.sales``). The counterfactual of each family moves that family's features,
where they are worse for the brand than the peers' 75th percentile (in the feature's
direction: the 25th percentile where lower is better; the store keeps these targets), to
it, keeps everything else, and scores the row with the same model: the score, the rank
among the brief's candidates (the others' scores as they are) and the expected gmv,
before and after. It says what the model would do; it is not a promise that the
creator's sales would change. The history is the creator's rows on the stored days up to
the chosen one. A creator who is not a candidate on the chosen day (no post in the 90
days before it) has no score that day.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from explorer.core import (
    HISTORY_MONTHS,
    Explorer,
    UnknownCreator,
    checked_brief,
    day_of,
    pool_of,
)
from features.indices import index_name
from features.registry import FAMILIES, FEATURE_NAMES, features_of
from serving.explain import waterfall
from serving.partner_list import INDEX_COLUMNS
from store.read import creator_days, targets
from training.model import CONTRIB_COLUMNS, Scorer
from training.sales import SALES_COLUMNS, SALES_VALUES, provisional


def creator_profile(
    ex: Explorer,
    creator_id: str,
    category: str | None = None,
    as_of=None,
    commission_rate: float | None = None,
) -> dict:
    """Everything the creator page shows, as plain values: the creator, the peer brief,
    score and raw_score, rank among the brief's candidates and top_percent, expected gmv
    with its 80 % interval and the provisional mark, the indices, the contributions (and
    their waterfall), the counterfactual per family, and the score and indices on each of
    the last HISTORY_MONTHS + 1 stored days up to as_of. UnknownCreator when the id is not
    in the store; QueryError for a bad category or as_of (not a stored day)."""
    if creator_id not in ex.creators.index:
        raise UnknownCreator(creator_id)
    market, declared = ex.creators.loc[creator_id, ["market", "primary_category"]]
    declared = declared if isinstance(declared, str) else None
    if category is None or category == "":
        category = declared if declared in ex.categories else ex.categories[0]
    brief = checked_brief(
        ex,
        {
            "brief_id": "creator",
            "market": market,
            "category": category,
            "as_of": as_of,
            "top_k": 1,
            "commission_rate": commission_rate,
        },
    )
    b = brief.iloc[0]
    rows = creator_days(ex.store, creator_id, market, category)
    rows = rows[rows["day"] <= b["as_of"]].tail(HISTORY_MONTHS + 1).reset_index(drop=True)
    features = rows.reindex(columns=FEATURE_NAMES).assign(
        commission_rate=float(b["commission_rate"])
    )
    raw = ex.scorer.raw(features) if len(rows) else np.zeros(0)
    score = ex.scorer.score(raw) if len(rows) else np.zeros(0)
    months = [
        {
            "as_of": rows["day"].iloc[k].isoformat(),
            "score": float(score[k]),
            **{c: _plain(rows[c].iloc[k]) for c in INDEX_COLUMNS},
        }
        for k in range(len(rows))
    ]
    now = rows["day"].eq(b["as_of"]).to_numpy()
    day = day_of(brief)
    peers = ex.store.manifest["days"][day]["markets"].get(market, {}).get("creators", 0)
    profile = {
        "creator_id": creator_id,
        "market": market,
        "primary_category": declared,
        "category": category,
        "as_of": b["as_of"].isoformat(),
        "commission_rate": float(b["commission_rate"]),
        "model_version": ex.model_version,
        "followers": 0,
        "is_candidate": bool(now.any()),
        "peers": int(peers),
        "score": None,
        "raw_score": None,
        **{k: None for k in STANDING_KEYS},
        "indices": {c: None for c in INDEX_COLUMNS},
        "contributions": {},
        "waterfall": [],
        "counterfactuals": [],
        "features": {name: None for name in FEATURE_NAMES},
        "months": months,
    }
    if not now.any():
        return profile
    k = int(np.flatnonzero(now)[0])
    row = features.iloc[[k]]
    contrib = ex.scorer.contributions(row).iloc[0]
    indices = {c: _plain(rows[c].iloc[k]) for c in INDEX_COLUMNS}
    contributions = {c: float(contrib[c]) for c in CONTRIB_COLUMNS}
    steps = waterfall(pd.Series({**contributions, "raw_score": float(raw[k]), **indices}))
    goals = targets(ex.store, day, market, category)
    standing = standing_of(ex, brief, creator_id)
    sales = ex.scorer.expected_sales(row, raw[[k]], market, category).iloc[0]
    rank = standing.rank(float(raw[k]))
    return {
        **profile,
        "followers": int(rows["followers"].iloc[k]),
        "score": float(score[k]),
        "raw_score": float(raw[k]),
        "rank": rank,
        "candidates": standing.candidates,
        "top_percent": 100.0 * rank / standing.candidates,
        **{c: _plain(sales[c]) for c in SALES_VALUES},
        "provisional": bool(sales["provisional"]),
        "indices": indices,
        "contributions": contributions,
        "waterfall": [
            {"step": name, **{key: _plain(v) for key, v in step.items()}}
            for name, step in steps.iterrows()
        ],
        "counterfactuals": counterfactuals(ex.scorer, row.iloc[0], goals, standing),
        "features": {name: _plain(value) for name, value in row.iloc[0].items()},
    }


STANDING_KEYS = (
    "rank",
    "candidates",
    "top_percent",
    *SALES_COLUMNS,
)


@dataclass
class Standing:
    """Where a creator stands in a brief: the raw scores and ids of the brief's other
    candidates, the creator's id, and the brief's market and category."""

    raw: np.ndarray
    creator_ids: np.ndarray
    creator_id: str
    market: str
    category: str

    def __post_init__(self) -> None:
        self._ascending = np.sort(self.raw)

    @property
    def candidates(self) -> int:
        """The brief's candidates counting the creator (as one, if it is not)."""
        return len(self.raw) + 1

    def rank(self, raw: float) -> int:
        """The creator's 1-based rank with raw score ``raw`` among the brief's
        candidates (ties: creator_id, as in a partner list)."""
        above = len(self._ascending) - int(np.searchsorted(self._ascending, raw, side="right"))
        tied = self.creator_ids[self.raw == raw]
        return above + int((tied < self.creator_id).sum()) + 1


def standing_of(ex: Explorer, brief: pd.DataFrame, creator_id: str) -> Standing:
    """The creator's Standing among the candidates of a one-row brief (no follower
    minimum): their raw scores are the brief's pool (``explorer.core.pool_of``)."""
    b = brief.iloc[0]
    pool = pool_of(ex, day_of(brief), b["market"], b["category"], float(b["commission_rate"]))
    others = pool.creator_id != creator_id
    return Standing(
        pool.raw[others], pool.creator_id[others], creator_id, str(b["market"]), str(b["category"])
    )


def moved_features(row: pd.Series, family: str, targets: pd.Series) -> pd.Series:
    """``row`` with ``family``'s features moved to their targets where they are worse
    for the brand (or missing); features already better stay."""
    moved = row.copy()
    for f in features_of(family):
        target, value = targets.get(f.name, np.nan), row[f.name]
        if np.isnan(target):
            continue
        better = value < target if f.direction < 0 else value > target
        if np.isnan(value) or not better:
            moved[f.name] = target
    return moved


def counterfactuals(
    scorer: Scorer, row: pd.Series, targets: pd.Series, standing: Standing
) -> list[dict]:
    """Per family, the model's score, raw score, rank among the brief's candidates and
    expected gmv with that family's features moved to the peers' targets
    (``moved_features``; the others' scores and the creator's provisional mark as they
    are), beside the same now, and ``outcome``: "already first", "no change" (the rank
    stays) or "rank 12 → 5". Largest rank gain first, then largest score change."""
    rows = pd.DataFrame([row, *(moved_features(row, f, targets) for f in FAMILIES)])
    raw = scorer.raw(rows)
    score = scorer.score(raw)
    gmv = scorer.expected_sales(
        rows, raw, standing.market, standing.category, provisional(rows.iloc[[0]])[0]
    )["expected_gmv"].to_numpy(dtype=float)
    rank = [standing.rank(r) for r in raw]
    out = []
    for j, f in enumerate(FAMILIES, start=1):
        if rank[0] == 1:
            outcome = "already first"
        elif rank[j] == rank[0]:
            outcome = "no change"
        else:
            outcome = f"rank {rank[0]} → {rank[j]}"
        out.append(
            {
                "family": f,
                "index_column": index_name(f),
                "score": float(score[j]),
                "raw_score": float(raw[j]),
                "change": float(score[j] - score[0]),
                "rank_before": rank[0],
                "rank": rank[j],
                "rank_change": rank[0] - rank[j],
                "expected_gmv_before": _plain(gmv[0]),
                "expected_gmv": _plain(gmv[j]),
                "outcome": outcome,
            }
        )
    return sorted(out, key=lambda item: (-item["rank_change"], -item["change"], item["family"]))


def _plain(value):
    """A float for a number, None for NaN."""
    value = float(value)
    return None if np.isnan(value) else value
