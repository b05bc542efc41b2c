"""The explorer's discovery questions: creators like this one, and who is rising.

Both read the store through ``store.discovery`` (the rules are ``serving.discovery``'s):
``similar_list`` answers a creator page's "similar creators" and
``GET /api/creators/{id}/similar``; ``rising_list`` the rising page and ``GET
/api/rising``. Their rows are partner-list rows (``explained_top``) plus their own columns.
"""

from __future__ import annotations

import pandas as pd

from explorer.core import Explorer, QueryError, UnknownCreator, checked_brief, day_of
from store.discovery import (
    DEFAULT_K,
    DEFAULT_RISING,
    MAX_K,
    OWN,
    NotACandidate,
    rising_rows,
    similar_rows,
)

MAX_RISING = 1000


def similar_list(
    ex: Explorer,
    creator_id: str,
    category: str | None = None,
    as_of=None,
    k: int = DEFAULT_K,
    commission_rate: float | None = None,
) -> tuple[dict, pd.DataFrame]:
    """(the question: creator, market, category, as_of, k; the k nearest creators of its
    market, nearest first). The category defaults to the creator's declared one (else the
    first); as_of to the latest stored day. UnknownCreator, or QueryError for a bad k,
    category or as_of, or a creator that is not a candidate that day."""
    if creator_id not in ex.creators.index:
        raise UnknownCreator(creator_id)
    if not 1 <= k <= MAX_K:
        raise QueryError("k", f"must be between 1 and {MAX_K}")
    market, declared = ex.creators.loc[creator_id, ["market", "primary_category"]]
    if category is None or category == "":
        category = declared if declared in ex.categories else ex.categories[0]
    brief = checked_brief(
        ex,
        {
            "market": market,
            "category": category,
            "as_of": as_of,
            "commission_rate": commission_rate,
        },
    )
    b = brief.iloc[0]
    try:
        rows = similar_rows(
            ex.store,
            ex.scorer,
            ex.model_version,
            creator_id,
            str(market),
            str(category),
            day_of(brief),
            k,
            float(b["commission_rate"]),
        )
    except NotACandidate as err:
        raise QueryError("creator_id", str(err).split(": ", 1)[1]) from None
    question = {
        "creator_id": creator_id,
        "market": str(market),
        "category": str(category),
        "as_of": b["as_of"].isoformat(),
        "k": k,
    }
    return question, rows


def rising_list(
    ex: Explorer,
    market: str | None,
    category: str | None = None,
    as_of=None,
    top: int = DEFAULT_RISING,
    commission_rate: float | None = None,
) -> tuple[dict, pd.DataFrame]:
    """(the question with ``rising``, how many are rising in all; the first ``top`` rising
    creators of the market, first first). Without a category each creator is judged in
    its declared one. QueryError for an unknown market or category, a bad top or as_of."""
    if not 1 <= top <= MAX_RISING:
        raise QueryError("top", f"must be between 1 and {MAX_RISING}")
    own = category is None or category == "" or category == OWN
    brief = checked_brief(
        ex,
        {
            "market": market,
            "category": ex.categories[0] if own else category,
            "as_of": as_of,
            "commission_rate": commission_rate,
        },
    )
    b = brief.iloc[0]
    rows, rising = rising_rows(
        ex.store,
        ex.scorer,
        ex.model_version,
        str(market),
        None if own else str(category),
        day_of(brief),
        top,
        float(b["commission_rate"]),
    )
    question = {
        "market": str(market),
        "category": OWN if own else str(category),
        "as_of": b["as_of"].isoformat(),
        "top": top,
        "rising": rising,
    }
    return question, rows
