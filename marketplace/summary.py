"""A marketplace at a glance: tables, creators, campaigns, by market and follower tier.

Pure functions over the six raw tables (as read by ``marketplace.io``), for the
marketplace notebook and for anyone who wants to see what a data directory holds; the
comparison with the real TikTok sample lives in ``marketplace.reference``. Follower
tiers are the reference's (``< 10K``, ``10K-100K``, ``100K-1M``, ``> 1M``) on a
creator's latest follower snapshot. Plots are matplotlib Figures built without pyplot
(no global state); a notebook shows one by leaving it as a cell's last value.

``tiny_marketplace`` writes a small simulated marketplace to a folder, so that the
notebooks (and their tests) run without any data of their own.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from marketplace.reference import RATIOS, TIER_LABELS, follower_tier  # noqa: F401 - re-exported
from marketplace.simulate import MARKETS, SimConfig
from marketplace.stage import simulate_to_directory

# The column that dates each table's rows (campaign_results carries no time of its own).
TIME_COLUMNS = {
    "creators": "joined_at",
    "follower_snapshots": "snapshot_date",
    "posts": "posted_at",
    "campaigns": "created_at",
    "invitations": "invited_at",
}
NO_CATEGORY = "(none)"


def tiny_marketplace(directory, creators: int = 800, days: int = 240, seed: int = 0) -> Path:
    """Simulate a marketplace and write it with ``python -m marketplace simulate``'s own
    function (``marketplace.stage.simulate_to_directory``): the six raw tables (Parquet)
    in ``directory`` and the truth in ``directory/truth/``.

    ``directory`` is replaced if it exists. Returns it as a Path. 800 creators over 240
    days take about a second.
    """
    directory = Path(directory)
    simulate_to_directory(SimConfig(creators=creators, days=days, seed=seed), directory)
    return directory


def table_overview(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per table: its rows, and the first and last value of its time column
    (``TIME_COLUMNS``; none for campaign_results)."""
    rows = []
    for name, frame in tables.items():
        column = TIME_COLUMNS.get(name)
        times = frame[column] if column is not None else pd.Series(dtype="datetime64[us, UTC]")
        rows.append(
            {
                "table": name,
                "rows": len(frame),
                "time_column": column or "",
                "first": times.min(),
                "last": times.max(),
            }
        )
    return pd.DataFrame(rows).set_index("table")


def creator_summary(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per creator (index creator_id), from the whole history:

    market, category (declared primary category, ``(none)`` when null), followers (the
    latest snapshot, NaN without one) and tier, posts, lives (LIVE sessions),
    shoppable_posts, views and post_gmv (sums over the posts), invitations, answered,
    accepted, posts_promised, posts_delivered, campaign_gmv (sum of campaign results).
    """
    creators = tables["creators"].set_index("creator_id")
    out = pd.DataFrame(
        {
            "market": creators["market"].astype(str),
            "category": creators["primary_category"]
            .astype(object)
            .where(creators["primary_category"].notna(), NO_CATEGORY)
            .astype(str),
        },
        index=creators.index,
    )
    snaps = tables["follower_snapshots"].sort_values(["creator_id", "snapshot_date"])
    out["followers"] = (
        snaps.groupby("creator_id")["followers"].last().reindex(out.index).astype(float)
    )
    out["tier"] = follower_tier(out["followers"])

    posts = tables["posts"]
    by_creator = posts.assign(
        lives=(posts["format"] == "live").astype("int64"),
        shoppable=posts["is_shoppable"].astype("int64"),
    ).groupby("creator_id")
    out["posts"] = _count(by_creator.size(), out.index)
    out["lives"] = _count(by_creator["lives"].sum(), out.index)
    out["shoppable_posts"] = _count(by_creator["shoppable"].sum(), out.index)
    out["views"] = _count(by_creator["views"].sum(), out.index)
    out["post_gmv"] = by_creator["gmv"].sum().reindex(out.index).fillna(0.0).astype(float)

    invitations = tables["invitations"]
    invited = invitations.assign(
        answered=(invitations["response"] != "no_response").astype("int64"),
        accepted=(invitations["response"] == "accepted").astype("int64"),
        posts_promised=invitations["posts_promised"].fillna(0).astype("int64"),
        posts_delivered=invitations["posts_delivered"].fillna(0).astype("int64"),
    ).groupby("creator_id")
    out["invitations"] = _count(invited.size(), out.index)
    for column in ("answered", "accepted", "posts_promised", "posts_delivered"):
        out[column] = _count(invited[column].sum(), out.index)
    results = tables["campaign_results"].groupby("creator_id")["gmv"].sum()
    out["campaign_gmv"] = results.reindex(out.index).fillna(0.0).astype(float)
    return out


def _count(values: pd.Series, index: pd.Index) -> pd.Series:
    return values.reindex(index).fillna(0).astype("int64")


def group_summary(creators: pd.DataFrame, by="market") -> pd.DataFrame:
    """Creators of a ``creator_summary`` frame grouped by ``by`` (a column or a list of
    columns, e.g. ``"market"``, ``"tier"`` or ``["market", "tier"]``): per group

    creators and creator_share, median_followers, posts_per_creator, shoppable_share
    (of posts), post_gmv_per_creator, invitations_per_creator, invited_share (creators
    with at least one invitation), acceptance_rate (accepted / invitations),
    delivery_rate (delivered / promised posts), campaign_gmv and campaign_gmv_share
    (of all campaign gmv). Empty tiers are left out.
    """
    groups = creators.groupby(by, observed=True, sort=True)
    sums = groups[
        [
            "posts",
            "shoppable_posts",
            "post_gmv",
            "invitations",
            "accepted",
            "posts_promised",
            "posts_delivered",
            "campaign_gmv",
        ]
    ].sum()
    size = groups.size()
    table = pd.DataFrame(
        {
            "creators": size,
            "creator_share": size / len(creators),
            "median_followers": groups["followers"].median(),
            "posts_per_creator": sums["posts"] / size,
            "shoppable_share": _share(sums["shoppable_posts"], sums["posts"]),
            "post_gmv_per_creator": sums["post_gmv"] / size,
            "invitations_per_creator": sums["invitations"] / size,
            "invited_share": groups["invitations"].apply(lambda s: float((s > 0).mean())),
            "acceptance_rate": _share(sums["accepted"], sums["invitations"]),
            "delivery_rate": _share(sums["posts_delivered"], sums["posts_promised"]),
            "campaign_gmv": sums["campaign_gmv"],
            "campaign_gmv_share": _share(sums["campaign_gmv"], creators["campaign_gmv"].sum()),
        }
    )
    return table


def _share(part, whole):
    """part / whole, NaN where whole is 0 (whole a Series or a number)."""
    if isinstance(whole, pd.Series):
        return part / whole.where(whole != 0)
    return part / whole if whole else part * np.nan


def market_tier_crosstab(creators: pd.DataFrame, value: str | None = None) -> pd.DataFrame:
    """Markets (rows, pilot-market order) x follower tiers (columns, small to large):
    the number of creators, or the sum of ``value`` (e.g. ``"campaign_gmv"``), with totals."""
    if value is None:
        table = pd.crosstab(
            creators["market"], creators["tier"], margins=True, margins_name="all", dropna=False
        )
    else:
        table = pd.crosstab(
            creators["market"],
            creators["tier"],
            values=creators[value],
            aggfunc="sum",
            margins=True,
            margins_name="all",
            dropna=False,
        ).fillna(0.0)
    markets = (
        [m for m in MARKETS if m in table.index]
        + [m for m in table.index if m not in MARKETS and m != "all"]
        + ["all"]
    )
    tiers = [t for t in TIER_LABELS if t in table.columns] + ["all"]
    return table.reindex(index=markets, columns=tiers)


def campaign_summary(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Campaigns by market (pilot-market order): campaigns, invitations_per_campaign,
    answer_rate, acceptance_rate, selling_share (invitations with a positive result),
    gmv, gmv_per_campaign, median_commission and the range of created_at."""
    campaigns = tables["campaigns"]
    market_of = campaigns.set_index("campaign_id")["market"]
    invitations = tables["invitations"]
    results = tables["campaign_results"]
    invited = pd.DataFrame(
        {
            "market": invitations["campaign_id"].map(market_of).to_numpy(),
            "answered": (invitations["response"] != "no_response").to_numpy(),
            "accepted": (invitations["response"] == "accepted").to_numpy(),
        }
    ).groupby("market")
    sold = pd.DataFrame(
        {
            "market": results["campaign_id"].map(market_of).to_numpy(),
            "gmv": results["gmv"].to_numpy(),
        }
    ).groupby("market")["gmv"]
    by_market = campaigns.groupby("market")
    count = by_market.size()
    n_invited = invited.size().reindex(count.index).fillna(0)
    gmv = sold.sum().reindex(count.index).fillna(0.0)
    selling = sold.apply(lambda g: int((g > 0).sum())).reindex(count.index).fillna(0)
    table = pd.DataFrame(
        {
            "campaigns": count,
            "invitations_per_campaign": n_invited / count,
            "answer_rate": _share(invited["answered"].sum().reindex(count.index), n_invited),
            "acceptance_rate": _share(invited["accepted"].sum().reindex(count.index), n_invited),
            "selling_share": _share(selling, n_invited),
            "gmv": gmv,
            "gmv_per_campaign": gmv / count,
            "median_commission": by_market["commission_rate"].median(),
            "first_created": by_market["created_at"].min(),
            "last_created": by_market["created_at"].max(),
        }
    )
    order = [m for m in MARKETS if m in table.index] + [m for m in table.index if m not in MARKETS]
    return table.reindex(order)


# ----------------------------------------------------------------------------- plots


def plot_creator_distributions(creators: pd.DataFrame) -> Figure:
    """Four panels of a ``creator_summary`` frame: followers (log10) by tier, posts per
    creator, creators per market stacked by tier, and campaign gmv per invited creator."""
    fig = Figure(figsize=(11, 7.5), layout="constrained")
    (a, b), (c, d) = fig.subplots(2, 2)
    log_followers = np.log10(creators["followers"].clip(lower=1)).dropna()
    bins = np.linspace(log_followers.min(), log_followers.max(), 40) if len(log_followers) else 10
    for tier in TIER_LABELS:
        values = log_followers[creators.loc[log_followers.index, "tier"] == tier]
        if len(values):
            a.hist(values, bins=bins, label=tier, alpha=0.8)
    a.set(xlabel="log10(latest followers)", ylabel="creators", title="Followers by tier")
    a.legend(title="tier", fontsize="small")

    b.hist(creators["posts"], bins=40, color="tab:blue")
    b.set(xlabel="posts per creator (whole history)", ylabel="creators", title="Posts per creator")

    crosstab = market_tier_crosstab(creators).drop(index="all", columns="all")
    bottom = np.zeros(len(crosstab))
    for tier in crosstab.columns:
        c.bar(crosstab.index, crosstab[tier], bottom=bottom, label=tier)
        bottom += crosstab[tier].to_numpy()
    c.set(xlabel="market", ylabel="creators", title="Creators by market and tier")
    c.legend(title="tier", fontsize="small")

    invited = creators[creators["invitations"] > 0]
    per_invite = invited["campaign_gmv"] / invited["invitations"]
    d.hist(np.log10(1 + per_invite), bins=40, color="tab:green")
    d.set(
        xlabel="log10(1 + campaign gmv per invitation)",
        ylabel="invited creators",
        title=f"Campaign gmv of invited creators ({(per_invite == 0).mean():.0%} sold nothing)",
    )
    return fig


def plot_group_summary(
    table: pd.DataFrame, columns=("creator_share", "campaign_gmv_share"), title: str = ""
) -> Figure:
    """Side-by-side bars of ``columns`` of a ``group_summary`` table, one group per bar
    position (e.g. each tier's share of creators against its share of campaign gmv)."""
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.subplots()
    labels = [" / ".join(map(str, i)) if isinstance(i, tuple) else str(i) for i in table.index]
    x = np.arange(len(table))
    width = 0.8 / len(columns)
    for j, column in enumerate(columns):
        ax.bar(x + (j - (len(columns) - 1) / 2) * width, table[column], width, label=column)
    ax.set_xticks(x, labels, rotation=30 if len(labels) > 6 else 0)
    ax.set(title=title or f"By {', '.join(map(str, table.index.names))}")
    ax.legend()
    return fig


def plot_tier_comparison(simulated: pd.DataFrame, sample: pd.DataFrame) -> Figure:
    """One panel per ratio of ``marketplace.reference.RATIOS``: the tier medians of the
    simulated marketplace against the real sample (both ``reference.tier_medians``)."""
    fig = Figure(figsize=(13, 3.4), layout="constrained")
    axes = fig.subplots(1, len(RATIOS))
    x = np.arange(len(TIER_LABELS))
    for ax, ratio in zip(axes, RATIOS, strict=True):
        ax.bar(x - 0.2, simulated[ratio].reindex(list(TIER_LABELS)), 0.4, label="simulated")
        ax.bar(x + 0.2, sample[ratio].reindex(list(TIER_LABELS)), 0.4, label="real sample")
        ax.set_xticks(x, TIER_LABELS, rotation=30, fontsize="small")
        ax.set_title(ratio.replace("_", " "), fontsize="medium")
    axes[0].legend(fontsize="small")
    fig.suptitle("Tier medians: simulated against the real TikTok sample")
    return fig
