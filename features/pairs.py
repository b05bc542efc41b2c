"""The training pair table: one row per invitation of a historical campaign.

Each row is a (campaign, invited creator) pair with the features as of the campaign's
``created_at`` and the label source ``gmv`` (the campaign result, 0 without one).
"""

from __future__ import annotations

import pandas as pd

from features.build import History, build_features

PAIR_COLUMNS = ("campaign_id", "creator_id", "created_at", "gmv")


def campaign_requests(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Feature requests for every invitation: as_of = the campaign's created_at."""
    campaigns = tables["campaigns"][
        ["campaign_id", "market", "category", "created_at", "commission_rate"]
    ]
    pairs = tables["invitations"][["campaign_id", "creator_id"]].merge(
        campaigns, on="campaign_id", how="left", validate="many_to_one"
    )
    return pairs.assign(as_of=pairs["created_at"])


def realised_gmv(tables: dict[str, pd.DataFrame], pairs: pd.DataFrame) -> pd.Series:
    """Each pair's campaign gmv (USD), 0 when the invitation has no result row."""
    results = tables["campaign_results"].set_index(["campaign_id", "creator_id"])["gmv"]
    keys = pd.MultiIndex.from_frame(pairs[["campaign_id", "creator_id"]])
    return pd.Series(results.reindex(keys).fillna(0.0).to_numpy(), index=pairs.index)


def training_pairs(tables: dict[str, pd.DataFrame], history: History | None = None) -> pd.DataFrame:
    """``campaign_id, creator_id, created_at, gmv`` and every feature, ordered by
    campaign created_at, campaign_id, creator_id."""
    requests = (
        campaign_requests(tables)
        .sort_values(["created_at", "campaign_id", "creator_id"], kind="stable")
        .reset_index(drop=True)
    )
    table = build_features(tables, requests, history)
    for position, column in enumerate(PAIR_COLUMNS):
        values = realised_gmv(tables, requests) if column == "gmv" else requests[column]
        table.insert(position, column, values)
    return table
