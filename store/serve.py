"""Partner lists from the store: serving's own ranking, indices, contributions and
reasons on candidates read from a stored day instead of rebuilt from the raw history.

For a brief whose as_of is a stored day, the candidates (the market's creators on that
day with at least min_followers) and their features are one DuckDB query
(``store.read.candidates``); the brief's commission is set on them and
``serving.partner_list.explained_top`` does the rest, so the rows are those
``partner_lists`` gives from the raw data for the same brief, column for column.
Memory follows the largest brief, not the size of the history.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pandas as pd

from serving.briefs import check_briefs
from serving.model import check_features
from serving.partner_list import (
    empty_partner_list,
    explained_top,
    no_candidates_message,
    with_model_defaults,
)
from store.layout import StoreError
from store.read import Store, candidates, stored_day
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
    started = last = time.perf_counter()
    parts, ranked = [], 0
    for position, day in enumerate(days):
        brief = briefs.iloc[[position]].reset_index(drop=True)
        b = brief.iloc[0]
        pairs, features, _ = candidates(
            store, day, b["market"], b["category"], int(b["min_followers"])
        )
        if pairs.empty:
            warn(no_candidates_message(b))
            continue
        features["commission_rate"] = float(b["commission_rate"])
        if observe is not None:
            observe(features)
        parts.append(explained_top(brief, pairs, features, scorer, model_version))
        ranked += len(pairs)
        if time.perf_counter() - last >= PROGRESS_EVERY_S or position == len(days) - 1:
            last = time.perf_counter()
            progress(
                f"scored {position + 1:,}/{len(briefs):,} briefs ({ranked:,} candidates) "
                f"in {last - started:.1f}s"
            )
    return pd.concat(parts, ignore_index=True) if parts else empty_partner_list()
