"""Partner lists from the store: serving's own ranking, indices, contributions and
reasons on candidates read from a stored day instead of rebuilt from the raw history.

For a brief whose as_of is a stored day, the candidates (the market's creators on that
day with at least min_followers) and their features are one DuckDB query
(``store.read.candidates``); the brief's commission is set on them and
``serving.partner_list.explained_top`` does the rest, so the rows are those
``partner_lists`` gives from the raw data for the same brief, column for column.
Memory follows the largest brief, not the size of the history.

With the model's precomputed scores (``store.scores``) covering the brief's day and
commission, the brief reads only its candidates' raw scores, ranks them, and reads the
features of its top_k rows alone (``brief_from_pool``): the same rows, to the bit, without
reading or scoring every candidate's features. The drift check (on by default in
``python -m serving``) still reads every candidate's features, but not to score them.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from features.indices import indices_of_rows
from serving.briefs import check_briefs
from serving.model import check_features
from serving.partner_list import (
    empty_partner_list,
    explained_rows,
    explained_top,
    no_candidates_message,
    rank_by_raw,
    top_rows,
    with_model_defaults,
)
from store.layout import StoreError
from store.read import Store, candidate_rows, candidates, index_inputs, stored_day
from store.scores import COMMISSION, Pool, score_set, stored_pool
from training.model import Scorer

PROGRESS_EVERY_S = 5.0


def brief_days(store: Store, briefs: pd.DataFrame) -> list[str]:
    """The stored day of every checked brief; StoreError naming the first brief whose
    as_of is not a stored day (and the nearest stored days)."""
    days = []
    for brief_id, as_of in zip(briefs["brief_id"], briefs["as_of"], strict=True):
        try:
            days.append(stored_day(store, as_of))
        except StoreError as err:
            raise StoreError(f"brief {brief_id}: {err}") from None
    return days


def store_partner_lists(
    store: Store,
    briefs: pd.DataFrame,
    scorer: Scorer,
    model_version: str,
    *,
    progress: Callable[[str], None] = lambda message: None,
    warn: Callable[[str], None] = lambda message: None,
    observe: Callable[[pd.DataFrame], None] | None = None,
) -> pd.DataFrame:
    """The partner list of every brief (as ``serving.partner_list.partner_lists``) from
    the stored days; StoreError before any work when a brief's as_of is not stored,
    ModelError for a model on other features. ``warn`` receives a line per brief
    without candidates, ``observe`` each brief's candidate features (serving.drift)."""
    check_features(scorer, model_version)  # the store holds the builder's (open_store)
    briefs = with_model_defaults(check_briefs(briefs), scorer)
    days = brief_days(store, briefs)
    scores = score_set(store, scorer)
    started = last = time.perf_counter()
    parts, ranked = [], 0
    for position, day in enumerate(days):
        brief = briefs.iloc[[position]].reset_index(drop=True)
        b = brief.iloc[0]
        if scores is not None and scores.covers(day, float(b["commission_rate"])):
            pool = stored_pool(store, scores, day, b["market"], b["category"])
            rows, n = brief_from_pool(store, brief, day, pool, scorer, model_version)
            if observe is not None and n:  # the drift check reads every candidate's features
                observe(_candidate_features(store, brief, day)[1])
        else:
            rows, n = _brief_from_features(store, brief, day, scorer, model_version, observe)
        if n == 0:
            warn(no_candidates_message(b))
            continue
        parts.append(rows)
        ranked += n
        if time.perf_counter() - last >= PROGRESS_EVERY_S or position == len(days) - 1:
            last = time.perf_counter()
            progress(
                f"scored {position + 1:,}/{len(briefs):,} briefs ({ranked:,} candidates) "
                f"in {last - started:.1f}s"
            )
    return pd.concat(parts, ignore_index=True) if parts else empty_partner_list()


def _candidate_features(
    store: Store, brief: pd.DataFrame, day: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The pairs and features (its commission set) of every candidate of a one-row brief."""
    b = brief.iloc[0]
    pairs, features, _ = candidates(store, day, b["market"], b["category"], int(b["min_followers"]))
    features[COMMISSION] = float(b["commission_rate"])
    return pairs, features


def _brief_from_features(
    store: Store,
    brief: pd.DataFrame,
    day: str,
    scorer: Scorer,
    model_version: str,
    observe: Callable[[pd.DataFrame], None] | None,
) -> tuple[pd.DataFrame, int]:
    """A one-row brief's partner list and candidate count, every candidate's features
    read and scored."""
    pairs, features = _candidate_features(store, brief, day)
    if pairs.empty:
        return empty_partner_list(), 0
    if observe is not None:
        observe(features)
    return explained_top(brief, pairs, features, scorer, model_version), len(pairs)


def brief_from_pool(
    store: Store, brief: pd.DataFrame, day: str, pool: Pool, scorer: Scorer, model_version: str
) -> tuple[pd.DataFrame, int]:
    """A one-row checked brief's partner list and candidate count from its market's
    candidates in its category with their raw scores at its commission (``pool``, no
    follower minimum): the candidates with at least min_followers are ranked, and only
    the top_k rows' features are read. Their indices are the stored ones (among all the
    market's candidates) without a follower minimum, and are computed among the
    remaining candidates with one."""
    b = brief.iloc[0]
    least = int(b["min_followers"])
    pool = pool.at_least(least)
    if not len(pool.raw):
        return empty_partner_list(), 0
    rank = rank_by_raw(pool.raw, pool.creator_id)
    rows = top_rows(brief, np.zeros(len(rank), np.int64), rank)
    pairs, features, indices = candidate_rows(
        store, day, b["market"], b["category"], pool.creator_id[rows]
    )
    features[COMMISSION] = float(b["commission_rate"])
    if least > 0:  # among the candidates it keeps
        inputs = index_inputs(store, day, b["market"], b["category"], least)
        indices = indices_of_rows(inputs, rows)
    rows_out = explained_rows(
        brief,
        pairs,
        features,
        pool.raw[rows],
        rank[rows],
        np.array([len(pool.raw)]),
        indices,
        scorer,
        model_version,
    )
    return rows_out, len(pool.raw)
