"""The explorer's second question: a creator's profile among its peers.

A creator's profile is read from the store: its row on the chosen stored day (its
features, followers, and its indices among the **peers**, the candidates of its market
that day, which the store keeps), scored by the model for the chosen category and
commission. The counterfactual of each family moves that family's features, where they
are worse for the brand than the peers' 75th percentile (in the feature's direction: the
25th percentile where lower is better; the store keeps these targets), to it, keeps
everything else, and scores the row with the same model. It says what the model would do;
it is not a promise that the creator's sales would change. The history is the creator's
rows on the stored days up to the chosen one. A creator who is not a candidate on the
chosen day (no post in the 90 days before it) has no score that day.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from explorer.core import (
    HISTORY_MONTHS,
    Explorer,
    UnknownCreator,
    checked_brief,
    day_of,
)
from features.indices import index_name
from features.registry import FAMILIES, FEATURE_NAMES, features_of
from serving.explain import waterfall
from serving.partner_list import INDEX_COLUMNS
from store.read import creator_days, targets
from training.model import CONTRIB_COLUMNS, Scorer


def creator_profile(
    ex: Explorer,
    creator_id: str,
    category: str | None = None,
    as_of=None,
    commission_rate: float | None = None,
) -> dict:
    """Everything the creator page shows, as plain values: the creator, the peer brief,
    score and raw_score, the indices, the contributions (and their waterfall), the
    counterfactual per family, and the score and indices on each of the last
    HISTORY_MONTHS + 1 stored days up to as_of. UnknownCreator when the id is not in the
    store; QueryError for a bad category or as_of (not a stored day)."""
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
    return {
        **profile,
        "followers": int(rows["followers"].iloc[k]),
        "score": float(score[k]),
        "raw_score": float(raw[k]),
        "indices": indices,
        "contributions": contributions,
        "waterfall": [
            {"step": name, **{key: _plain(v) for key, v in step.items()}}
            for name, step in steps.iterrows()
        ],
        "counterfactuals": counterfactuals(ex.scorer, row.iloc[0], goals),
        "features": {name: _plain(value) for name, value in row.iloc[0].items()},
    }


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


def counterfactuals(scorer: Scorer, row: pd.Series, targets: pd.Series) -> list[dict]:
    """Per family, the model's score and raw score with that family's features moved
    to the peers' targets (``moved_features``), and the change in score; largest first."""
    rows = pd.DataFrame([row, *(moved_features(row, f, targets) for f in FAMILIES)])
    raw = scorer.raw(rows)
    score = scorer.score(raw)
    out = [
        {
            "family": f,
            "index_column": index_name(f),
            "score": float(score[j + 1]),
            "raw_score": float(raw[j + 1]),
            "change": float(score[j + 1] - score[0]),
        }
        for j, f in enumerate(FAMILIES)
    ]
    return sorted(out, key=lambda item: (-item["change"], item["family"]))


def _plain(value):
    """A float for a number, None for NaN."""
    value = float(value)
    return None if np.isnan(value) else value
