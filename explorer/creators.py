"""The explorer's second question: a creator's profile among its peers.

A creator's profile is computed among the **peers** of a one-creator brief: the
candidates of the creator's market in the chosen category as of ``as_of`` (no follower
minimum), the peer set of a partner list. Its indices are percentiles among those peers
(plus the creator, when the creator is not a candidate), its score and contributions the
model's for the creator's features as of ``as_of``. The counterfactual of each family
moves that family's features, where they are worse for the brand than the peers' 75th
percentile (in the feature's direction: the 25th percentile where lower is better), to
it, keeps everything else, and scores the row with the same model: the score, the rank
among the brief's candidates (the others' scores as they are) and the expected gmv
(``training.sales``), before and after. It says what the model would do; it is not a
promise that the creator's sales would change.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from explorer.core import (
    DAY,
    HISTORY_MONTHS,
    MONTH_DAYS,
    PEER_CACHE_SIZE,
    TARGET_QUANTILE,
    Explorer,
    PeerSet,
    UnknownCreator,
    candidates_and_features,
    checked_brief,
    followers_at,
)
from features.build import build_features
from features.indices import family_indices, index_name
from features.registry import FAMILIES, features_of
from marketplace.contract import STRING_DTYPE
from serving.candidates import feature_requests
from serving.explain import waterfall
from serving.partner_list import (
    INDEX_COLUMNS,
)
from training.model import CONTRIB_COLUMNS, Scorer
from training.sales import SALES_COLUMNS, provisional


def creator_profile(
    ex: Explorer,
    creator_id: str,
    category: str | None = None,
    as_of=None,
    commission_rate: float | None = None,
) -> dict:
    """Everything the creator page shows, as plain values: the creator, the peer brief,
    score and raw_score, rank among the brief's candidates and top_percent, expected gmv
    with its 80 % interval and the provisional mark, the indices, the contributions (and their waterfall), the
    counterfactual per family, and the indices and score at each of the last
    HISTORY_MONTHS month steps back from as_of. UnknownCreator when the id is not in the
    data; QueryError for a bad category or as_of."""
    if creator_id not in ex.creators.index:
        raise UnknownCreator(creator_id)
    market, declared = ex.creators.loc[creator_id, ["market", "primary_category"]]
    if category is None or category == "":
        category = (
            declared
            if isinstance(declared, str) and declared in ex.categories
            else ex.categories[0]
        )
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
    now = _creator_at(ex, creator_id, brief)
    row = pd.Series({**now["contributions"], "raw_score": now["raw_score"], **now["indices"]})
    steps = waterfall(row)
    months = []
    for k in range(HISTORY_MONTHS - 1, -1, -1):
        at = brief["as_of"].iloc[0] - k * MONTH_DAYS * DAY
        if at < ex.first_day:
            continue
        point = now if k == 0 else _creator_at(ex, creator_id, brief.assign(as_of=at))
        months.append({"as_of": at.isoformat(), "score": point["score"], **point["indices"]})
    b = brief.iloc[0]
    return {
        "creator_id": creator_id,
        "market": market,
        "primary_category": declared if isinstance(declared, str) else None,
        "category": category,
        "as_of": b["as_of"].isoformat(),
        "commission_rate": float(b["commission_rate"]),
        "model_version": ex.model_version,
        "followers": int(followers_at(ex, [creator_id], b["as_of"])[0]),
        "is_candidate": now["is_candidate"],
        "peers": now["peers"],
        "score": now["score"],
        "raw_score": now["raw_score"],
        **{
            k: now[k]
            for k in (
                "rank",
                "candidates",
                "top_percent",
                "expected_gmv",
                "gmv_low",
                "gmv_high",
                "provisional",
            )
        },
        "indices": now["indices"],
        "contributions": now["contributions"],
        "waterfall": [
            {"step": name, **{k: _plain(v) for k, v in step.items()}}
            for name, step in steps.iterrows()
        ],
        "counterfactuals": now["counterfactuals"],
        "features": now["features"],
        "months": months,
    }


def _creator_at(ex: Explorer, creator_id: str, brief: pd.DataFrame) -> dict:
    """The creator's features, indices, score, contributions and counterfactuals for
    one brief row (its market, category, as_of, commission)."""
    peers = peer_set(ex, brief)
    if creator_id in peers.features.index:
        features = peers.features.loc[[creator_id]]
        indices = peers.indices.loc[creator_id]
        is_candidate = True
    else:
        request = feature_requests(
            brief,
            pd.DataFrame({"brief": [0], "creator_id": pd.Series([creator_id], dtype=STRING_DTYPE)}),
        )
        features = build_features(ex.tables, request, ex.history).set_axis([creator_id])
        both = pd.concat([peers.features, features])
        indices = family_indices(both, peers=np.zeros(len(both))).iloc[-1]
        is_candidate = False
    raw = float(ex.scorer.raw(features)[0])
    contrib = ex.scorer.contributions(features).iloc[0]
    b = brief.iloc[0]
    others = peers.features.drop(index=creator_id, errors="ignore")
    standing = Standing(
        raw=ex.scorer.raw(others) if len(others) else np.empty(0),
        creator_ids=others.index.to_numpy(dtype=object),
        creator_id=creator_id,
        market=b["market"],
        category=b["category"],
    )
    sales = ex.scorer.expected_sales(features, [raw], b["market"], b["category"]).iloc[0]
    rank = standing.rank(raw)
    return {
        "is_candidate": is_candidate,
        "peers": len(peers.features),
        "raw_score": raw,
        "score": float(ex.scorer.score(np.array([raw]))[0]),
        "rank": rank,
        "candidates": standing.candidates,
        "top_percent": 100.0 * rank / standing.candidates,
        **{c: _plain(sales[c]) for c in SALES_COLUMNS[:3]},
        "provisional": bool(sales["provisional"]),
        "indices": {c: _plain(indices[c]) for c in INDEX_COLUMNS},
        "contributions": {c: float(contrib[c]) for c in CONTRIB_COLUMNS},
        "counterfactuals": counterfactuals(ex.scorer, features.iloc[0], peers.targets, standing),
        "features": {name: _plain(value) for name, value in features.iloc[0].items()},
    }


@dataclass
class Standing:
    """Where a creator stands in a brief: the raw scores and ids of the brief's other
    candidates, the creator's id, and the brief's market and category."""

    raw: np.ndarray
    creator_ids: np.ndarray
    creator_id: str
    market: str
    category: str

    @property
    def candidates(self) -> int:
        """The brief's candidates counting the creator (as one, if it is not)."""
        return len(self.raw) + 1

    def rank(self, raw: float) -> int:
        """The creator's 1-based rank with raw score ``raw`` among the brief's
        candidates (ties: creator_id, as in a partner list)."""
        ahead = (self.raw > raw) | ((self.raw == raw) & (self.creator_ids < self.creator_id))
        return int(ahead.sum()) + 1


def peer_set(ex: Explorer, brief: pd.DataFrame) -> PeerSet:
    """The candidates of a one-row brief with their features, indices and targets;
    the last PEER_CACHE_SIZE peer sets are kept."""
    b = brief.iloc[0]
    key = (b["market"], b["category"], b["as_of"], float(b["commission_rate"]))
    with ex._lock:
        if key in ex._peers:
            ex._peers.move_to_end(key)
            return ex._peers[key]
    pairs, features, indices = candidates_and_features(ex, brief.assign(min_followers=0))
    creators = pd.Index(pairs["creator_id"], name="creator_id")
    features = features.set_axis(creators)
    if indices is None:
        indices = family_indices(features, peers=np.zeros(len(features)))
    peers = PeerSet(
        features=features,
        indices=indices.set_axis(creators),
        targets=counterfactual_targets(features),
    )
    with ex._lock:
        ex._peers[key] = peers
        while len(ex._peers) > PEER_CACHE_SIZE:
            ex._peers.popitem(last=False)
    return peers


def counterfactual_targets(features: pd.DataFrame) -> pd.Series:
    """Per feature, the peers' TARGET_QUANTILE in the brand's direction: the 75th
    percentile, or the 25th for a lower-is-better feature (NaN without any value)."""
    out = {}
    for family in FAMILIES:
        for f in features_of(family):
            q = 1 - TARGET_QUANTILE if f.direction < 0 else TARGET_QUANTILE
            values = features[f.name].dropna()
            out[f.name] = float(values.quantile(q)) if len(values) else np.nan
    return pd.Series(out, dtype=float)


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
