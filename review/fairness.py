"""Fairness by creator group: who the model selects against who sells.

For the invitees of test campaigns grouped by a creator attribute (follower tier, market,
declared category, whether the creator has sold before), the model's mean score and its
selection rate -- the share of the group's invitees that the model puts in its
campaign's top k (10) -- set against the group's share of the realised campaign gmv.
``selection_vs_gmv`` = share of the selected / share of the gmv: below 1, the model
picks the group less often than its sales would warrant (it is ranked below what it
delivers); above 1, more often. Pure functions: frames in, frames out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from marketplace.summary import follower_tier

NO_CATEGORY = "(none)"
SOLD_BEFORE, NEVER_SOLD = "sold before", "never sold"
GROUP_COLUMNS = ("follower_tier", "market", "category", "past_sales")


def creator_groups(pairs: pd.DataFrame, tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """``pairs`` with the creator attributes of ``GROUP_COLUMNS``, as known when each
    pair was scored: follower_tier (from the ``log_followers`` feature: current
    followers at as_of; the reference's tiers), market (the creator's), category (the
    declared primary category, ``(none)`` when null) and past_sales (``sold before``
    when the creator's measured shoppable posts sold anything before as_of, else
    ``never sold``)."""
    creators = tables["creators"].set_index("creator_id")
    ids = pairs["creator_id"]
    # log1p then expm1 is not exact: round back to whole followers before cutting tiers.
    followers = np.round(np.expm1(pairs["log_followers"].to_numpy(dtype=float)))
    category = ids.map(creators["primary_category"].astype(object))
    sold = pairs["log_gmv_per_shoppable_post_all"].fillna(0.0) > 0
    return pairs.assign(
        follower_tier=follower_tier(pd.Series(followers, index=pairs.index)),
        market=ids.map(creators["market"].astype(object)).astype(str),
        category=category.where(category.notna(), NO_CATEGORY).astype(str),
        past_sales=pd.Categorical(
            np.where(sold, SOLD_BEFORE, NEVER_SOLD), categories=[NEVER_SOLD, SOLD_BEFORE]
        ),
    )


def selected_in_top(pairs: pd.DataFrame, rank_by: str = "score", top: int = 10) -> pd.Series:
    """True for the pairs the ranking puts in their campaign's top ``top``: by
    ``rank_by`` descending, ties by creator_id (as serving ranks); a campaign with
    ``top`` invitees or fewer has all of them selected. NaN ranks last."""
    key = pairs[rank_by].astype(float).fillna(-np.inf)
    order = pd.DataFrame(
        {
            "campaign_id": pairs["campaign_id"].to_numpy(),
            "key": key.to_numpy(),
            "creator_id": pairs["creator_id"].astype(str).to_numpy(),
        }
    ).sort_values(
        ["campaign_id", "key", "creator_id"], ascending=[True, False, True], kind="stable"
    )
    position = order.groupby("campaign_id", sort=False).cumcount()
    selected = pd.Series(False, index=pairs.index)
    selected.iloc[order.index.to_numpy()] = (position < top).to_numpy()
    return selected


def fairness_table(
    pairs: pd.DataFrame, by: str, score: str = "score", rank_by: str | None = None, top: int = 10
) -> pd.DataFrame:
    """Per group of ``by`` among the invitees in ``pairs`` (campaign_id, creator_id,
    gmv, ``score``; ``rank_by`` ranks within campaigns, ``score`` when None):

    invitees, invitee_share, mean_score, selected (pairs in their campaign's top
    ``top``), selection_rate (selected / invitees), selected_share (of all selected),
    sellers_rate (invitees with gmv > 0), gmv (realised), gmv_share, gmv_per_invitee,
    selection_vs_gmv (selected_share / gmv_share: < 1 when the model selects the
    group less than its realised gmv warrants; inf when a group with no gmv is
    selected) and gmv_captured (the share of the group's gmv realised by its selected
    invitees: low when the model leaves the group's sellers out of the top ``top``).
    A row ``all`` closes the table. Empty groups are left out.

    Every campaign ranks only its own invitees, who share its market: across markets,
    selected_share follows the number of campaigns, and gmv_captured (within each
    campaign) is the fairer comparison.
    """
    selected = selected_in_top(pairs, rank_by or score, top)
    frame = pd.DataFrame(
        {
            "group": pairs[by],
            "score": pairs[score].astype(float),
            "selected": selected.astype("int64"),
            "gmv": pairs["gmv"].astype(float),
            "seller": (pairs["gmv"] > 0).astype("int64"),
        }
    )
    frame["selected_gmv"] = frame["gmv"] * frame["selected"]
    summed = ["selected", "gmv", "seller", "selected_gmv"]
    groups = frame.groupby("group", observed=True, sort=True)
    sums = groups[summed].sum()
    sums.loc["all"] = frame[summed].sum()
    invitees = pd.concat([groups.size(), pd.Series({"all": len(frame)})])
    mean_score = pd.concat([groups["score"].mean(), pd.Series({"all": frame["score"].mean()})])
    total_selected, total_gmv = sums.loc["all", "selected"], sums.loc["all", "gmv"]
    table = pd.DataFrame(
        {
            "invitees": invitees,
            "invitee_share": invitees / len(frame),
            "mean_score": mean_score,
            "selected": sums["selected"].astype("int64"),
            "selection_rate": sums["selected"] / invitees,
            "selected_share": sums["selected"] / total_selected if total_selected else np.nan,
            "sellers_rate": sums["seller"] / invitees,
            "gmv": sums["gmv"],
            "gmv_share": sums["gmv"] / total_gmv if total_gmv else np.nan,
            "gmv_per_invitee": sums["gmv"] / invitees,
        }
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        table["selection_vs_gmv"] = table["selected_share"] / table["gmv_share"]
    table["gmv_captured"] = sums["selected_gmv"] / sums["gmv"].where(sums["gmv"] > 0)
    table.index = pd.Index([str(i) for i in table.index], name=by)
    return table


def fairness_tables(
    pairs: pd.DataFrame,
    by=GROUP_COLUMNS,
    score: str = "score",
    rank_by: str | None = None,
    top: int = 10,
) -> dict[str, pd.DataFrame]:
    """``fairness_table`` for each grouping column of ``by``."""
    return {column: fairness_table(pairs, column, score, rank_by, top) for column in by}
