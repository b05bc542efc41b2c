"""Do look-alikes and rising lists work? Judged on a simulated marketplace's hidden truth.

On data with truth (the simulator's ``truth/creator_traits``), a store holds three days:
the data's last day (the look-alike day, when the truth's ``real_growth_90d`` is
measured), ``HORIZON_DAYS`` before it (the rising day) and ``MOMENTUM_DAYS`` before that
(the rising list's momentum day: what newcomers then sold by the rising day). The model that scores the
rising day is trained (``train_before``) only on what was known then (``known_at``), so
its list cannot have learned from the sales it is judged on; a given model may be used
instead, at the user's word that it never saw the horizon.

Look-alikes (``lookalike_table``)
    Per market, up to ``queries`` candidates drawn at random (seeded) each ask for their
    10 nearest (``store.discovery.similar_rows``' rule) in their declared primary
    category (the market's first category when they declare none). The **trait
    distance** of two creators is the root mean square, over the nine traits the indices
    name (``features.audit.TRAITS``' eight: quality, posting rate, regularity, diligence,
    cooperation, selling skill, affinity for the asked category, real growth; and
    genuineness, not ``fake``, for authenticity), of the gap between their percentiles
    (0-100) among the market's candidates. Measure: the mean trait distance of the
    query's 10 nearest against the mean trait distance to every other candidate of the
    market, averaged over queries: ``ratio`` = nearest / random. Target: at most 0.5.

Rising lists (``rising_table_audit``)
    Per market and category, the creators that go on to sell: the market's candidates of
    the rising day whose gmv in the category (posts in that category, posted in the
    ``HORIZON_DAYS`` after the day) reaches the market's top decile (>= its 90th
    percentile, and above 0). Measure: the share of them that the rising list's first
    ``top`` named, summed over markets and categories, against the **followers-growth
    baseline**: the same short-history pool's creators declaring the category, by
    follower growth over 90 days (over 30 days when that is unknown; unknown last; ties
    by creator_id), first ``top``. Target: at least twice the baseline's share.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from features.audit import TRAITS
from serving.discovery import lookalike_distance, nearest, short_history
from store.discovery import market_rows, rising_table
from store.read import Store
from training.config import load_config
from training.model import Scorer
from training.run import train

HORIZON_DAYS = 180
NEAREST = 10
QUERIES = 200
TOP = 100
MAX_RATIO = 0.5  # look-alikes' trait distance at most half a random creator's
MIN_GAIN = 2.0  # rising lists find at least twice the baseline's share
FUTURE_QUANTILE = 0.9
DAY = pd.Timedelta(days=1)
# the nine traits of a creator's look-alike profile (affinity: of the asked category)
TRAIT_COLUMNS = (*(column for column, _ in TRAITS.values() if column != "affinity"), "genuine")
BASELINE = "followers growth"
TRUTH_COLUMNS = {
    "creator_id",
    "fake",
    *(c for c in TRAIT_COLUMNS if c != "genuine"),
    *(f"{name}_{k}" for name in ("category", "affinity") for k in (1, 2, 3)),
}


def audit_days(tables: dict[str, pd.DataFrame], horizon: int = HORIZON_DAYS) -> tuple:
    """(look-alike day, rising day): midnight after the last post, and ``horizon`` days
    before it."""
    last = tables["posts"]["posted_at"].max().normalize() + DAY
    return last, last - horizon * DAY


def known_at(tables: dict[str, pd.DataFrame], day: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """The tables as a model trained on ``day`` could know them: posts before it,
    follower snapshots known by it, and the campaigns that ended before it with their
    invitations and results."""
    posts = tables["posts"][tables["posts"]["posted_at"] < day]
    snaps = tables["follower_snapshots"]
    snaps = snaps[snaps["snapshot_date"] + DAY <= day]
    campaigns = tables["campaigns"][tables["campaigns"]["end_at"] < day]
    ended = set(campaigns["campaign_id"])
    return {
        "creators": tables["creators"],
        "follower_snapshots": snaps.reset_index(drop=True),
        "posts": posts.reset_index(drop=True),
        "campaigns": campaigns.reset_index(drop=True),
        "invitations": tables["invitations"][
            tables["invitations"]["campaign_id"].isin(ended)
        ].reset_index(drop=True),
        "campaign_results": tables["campaign_results"][
            tables["campaign_results"]["campaign_id"].isin(ended)
        ].reset_index(drop=True),
    }


def train_before(tables: dict[str, pd.DataFrame], day: pd.Timestamp, rounds: int = 60) -> Scorer:
    """A quick model (lambdarank, at most ``rounds`` trees, one fold, one thread, seeded)
    trained on ``known_at(tables, day)``: the served (refitted) scorer."""
    cfg = dataclasses.replace(
        load_config(),
        max_rounds=rounds,
        early_stopping_rounds=20,
        objectives=("lambdarank",),
        num_threads=1,
        backtest_folds=1,
    )
    return train(known_at(tables, day), cfg).scorer


def percentiles(values: np.ndarray) -> np.ndarray:
    """Midpoint percentiles (0-100) of ``values`` among themselves (ties averaged)."""
    ranks = pd.Series(values).rank(method="average").to_numpy()
    return 100.0 * (ranks - 0.5) / len(values)


def trait_profile(traits: pd.DataFrame, category: str) -> np.ndarray:
    """(n, 9) percentiles among ``traits``' rows (one market's candidates) of the traits
    a look-alike should share, the affinity for ``category`` included."""
    affinity = np.zeros(len(traits))
    for k in (1, 2, 3):
        hit = (traits[f"category_{k}"] == category).to_numpy()
        affinity += np.where(hit, traits[f"affinity_{k}"].to_numpy(float), 0.0)
    columns = [percentiles(traits[c].to_numpy(float)) for c in TRAIT_COLUMNS]
    return np.column_stack([*columns, percentiles(affinity)])


def _with_genuine(traits: pd.DataFrame) -> pd.DataFrame:
    return traits.assign(genuine=1.0 - traits["fake"].astype(float)).set_index("creator_id")


def lookalike_table(
    store: Store,
    day: str,
    traits: pd.DataFrame,
    declared: pd.Series,
    queries: int = QUERIES,
    seed: int = 0,
) -> pd.DataFrame:
    """Per market of ``day``: queries, the mean trait distance of their NEAREST
    look-alikes, of every other candidate, and the ratio; a row ``all`` pools the
    queries. ``declared`` is every creator's primary category (creator_id index)."""
    traits = _with_genuine(traits)
    categories = store.categories(day)
    rng = np.random.default_rng(seed)
    out = []
    for market in store.markets(day):
        ids = market_rows(store, day, market, categories[0]).creator_id
        if len(ids) <= NEAREST:
            continue
        asked = np.sort(rng.choice(len(ids), size=min(queries, len(ids)), replace=False))
        wanted = declared.reindex(ids[asked]).to_numpy(dtype=object)
        wanted = np.array([c if c in categories else categories[0] for c in wanted], dtype=object)
        near_sum, random_sum = np.zeros(len(asked)), np.zeros(len(asked))
        for category in sorted(set(wanted)):
            rows = market_rows(store, day, market, category)
            profile = trait_profile(traits.loc[rows.creator_id].reset_index(), category)
            for j in np.flatnonzero(wanted == category):
                at = asked[j]
                chosen = nearest(
                    lookalike_distance(rows.lookalike, rows.lookalike[at]),
                    rows.creator_id,
                    NEAREST,
                    exclude=at,
                )
                gap = np.sqrt(np.mean((profile - profile[at]) ** 2, axis=1))
                near_sum[j] = gap[chosen].mean()
                random_sum[j] = np.delete(gap, at).mean()
        out.append(_lookalike_row(market, near_sum, random_sum))
    if out:
        pooled = pd.DataFrame(out)
        out.append(
            {
                "market": "all",
                "queries": int(pooled["queries"].sum()),
                "nearest": float(np.average(pooled["nearest"], weights=pooled["queries"])),
                "random": float(np.average(pooled["random"], weights=pooled["queries"])),
            }
        )
        out[-1]["ratio"] = out[-1]["nearest"] / out[-1]["random"]
    return pd.DataFrame(out, columns=["market", "queries", "nearest", "random", "ratio"])


def _lookalike_row(market: str, near: np.ndarray, random: np.ndarray) -> dict:
    return {
        "market": market,
        "queries": len(near),
        "nearest": float(near.mean()),
        "random": float(random.mean()),
        "ratio": float(near.mean() / random.mean()),
    }


def future_gmv(posts: pd.DataFrame, day: pd.Timestamp, horizon: int = HORIZON_DAYS) -> pd.Series:
    """gmv per creator of the posts posted in the ``horizon`` days from ``day``."""
    window = posts[(posts["posted_at"] >= day) & (posts["posted_at"] < day + horizon * DAY)]
    return window.groupby("creator_id")["gmv"].sum()


def growth_baseline(rows, top: int) -> np.ndarray:
    """Positions of the followers-growth baseline's first ``top``: the short-history
    candidates by follower growth (90 days, else 30), unknown last, ties by creator_id."""
    growth = rows.features["follower_growth_90d"].fillna(rows.features["follower_growth_30d"])
    growth = growth.fillna(-np.inf).to_numpy(float)
    chosen = np.flatnonzero(short_history(rows.features))
    return chosen[np.lexsort((rows.creator_id[chosen], -growth[chosen]))][:top]


def rising_table_audit(
    store: Store,
    day: str,
    scorer: Scorer,
    model_version: str,
    future: pd.Series,
    top: int = TOP,
) -> pd.DataFrame:
    """Per market: its future top sellers, how many of them the rising list's first
    ``top`` (each creator in its declared category) and the baseline's named, their
    shares and the gain; a row ``all`` sums the markets."""
    out = []
    for market in store.markets(day):
        rows, table = rising_table(store, scorer, model_version, market, None, day)
        gmv = future.reindex(rows.creator_id).fillna(0.0).to_numpy(float)
        sellers = (gmv >= np.quantile(gmv, FUTURE_QUANTILE)) & (gmv > 0)
        order = table["order"].to_numpy()
        listed = np.flatnonzero((order > 0) & (order <= top))
        out.append(
            {
                "market": market,
                "candidates": len(gmv),
                "short_history": int(table["short_history"].sum()),
                "top_sellers": int(sellers.sum()),
                "rising": int(sellers[listed].sum()),
                BASELINE: int(sellers[growth_baseline(rows, top)].sum()),
            }
        )
    frame = pd.DataFrame(
        out,
        columns=["market", "candidates", "short_history", "top_sellers", "rising", BASELINE],
    )
    frame.loc[len(frame)] = {"market": "all", **frame.drop(columns="market").sum().to_dict()}
    frame["rising_share"] = frame["rising"] / frame["top_sellers"]
    frame["baseline_share"] = frame[BASELINE] / frame["top_sellers"]
    frame["gain"] = frame["rising_share"] / frame["baseline_share"]
    return frame


def verdicts(lookalikes: pd.DataFrame, rising: pd.DataFrame) -> pd.DataFrame:
    """The two claims, pooled over markets: measure, value, target, ok."""
    ratio = float(lookalikes.loc[lookalikes["market"] == "all", "ratio"].iloc[0])
    gain = float(rising.loc[rising["market"] == "all", "gain"].iloc[0])
    return pd.DataFrame(
        [
            {
                "claim": f"look-alikes: trait distance of the {NEAREST} nearest / random",
                "value": ratio,
                "target": f"<= {MAX_RATIO:g}",
                "ok": bool(ratio <= MAX_RATIO),
            },
            {
                "claim": f"rising: share of future top sellers named / {BASELINE}'s",
                "value": gain,
                "target": f">= {MIN_GAIN:g}",
                "ok": bool(gain >= MIN_GAIN),
            },
        ]
    )


def format_discovery_audit(
    lookalikes: pd.DataFrame, rising: pd.DataFrame, claims: pd.DataFrame
) -> str:
    """The three tables as plain text, with a one-line verdict."""
    failed = int((~claims["ok"]).sum())
    verdict = "every claim holds" if failed == 0 else f"{failed} claim(s) miss their target"
    shown = claims.assign(ok=claims["ok"].map({True: "yes", False: "NO"}))
    return "\n\n".join(
        [
            "look-alikes (trait distance, percentile points):\n"
            + lookalikes.to_string(index=False, float_format=lambda v: f"{v:.3f}"),
            "rising (future top sellers named):\n"
            + rising.to_string(index=False, float_format=lambda v: f"{v:.3f}"),
            shown.to_string(index=False, float_format=lambda v: f"{v:.3f}") + f"\n{verdict}",
        ]
    )
