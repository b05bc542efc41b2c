"""One day's snapshot: what every brief and creator page as of that day starts from.

For a day D (as of D 00:00 UTC) and every market, the snapshot holds each **candidate**
creator (serving's rule, ``features.candidates``: a post in the 90 days before D; any
follower count) with what does not depend on a brief:

- ``creators``: identity (creator_id, market, primary_category), current followers (the
  latest snapshot known at D, 0 when none) and tier, every feature that does not depend
  on the category (all but the category family and the brief's commission_rate), and the
  eight indices of those families among the market's candidates (a brief without a
  follower minimum has exactly these peers);
- ``categories``: per (creator, category) the category family's features and its index
  among the market's candidates, for every category of the data and for ``OTHER``, the
  row any category the data does not know reads (its features are the same whatever its
  name);
- ``targets``: per (market, category) the counterfactual target of every feature (the
  peers' 75th percentile in the brand's direction, ``counterfactual_targets``).

Every value is computed by the feature builder and ``family_indices`` themselves, so the
features of a brief joined from a snapshot are, to the bit, those ``build_features`` gives
the same requests. The functions are pure: the store's writers (in memory or on Spark,
``scaleout.store``) call ``snapshot_frames`` on whole data or on one creator bucket.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.build import (
    CATEGORY_FEATURES,
    History,
    build_category_features,
    build_features,
    index_history,
)
from features.candidates import find_candidates, market_creators
from features.indices import HISTORY_INPUTS, family_indices, index_name
from features.registry import FAMILIES, FEATURE_NAMES, features_of
from marketplace.contract import STRING_DTYPE, TIMESTAMP_DTYPE
from marketplace.reference import follower_tier

OTHER = ""  # the category row of a category the data does not know
TARGET_QUANTILE = 0.75  # the counterfactual's peer percentile, in the brand's direction
SEPARATOR = "\x1f"  # between market and category in a peer group's key (in neither)
CREATOR_FEATURES: tuple[str, ...] = tuple(
    f for f in FEATURE_NAMES if f not in CATEGORY_FEATURES and f != "commission_rate"
)
CREATOR_FAMILIES: tuple[str, ...] = tuple(f for f in FAMILIES if f != "category")
FAMILY_FEATURES = tuple(f for family in FAMILIES for f in features_of(family))
IDENTITY = ("market", "creator_id", "primary_category", "followers", "follower_tier")
CATEGORY_SOURCES = (
    ("posts", "category"),
    ("campaigns", "category"),
    ("creators", "primary_category"),
)
CREATOR_COLUMNS = (*IDENTITY, *CREATOR_FEATURES, *(index_name(f) for f in CREATOR_FAMILIES))
CATEGORY_COLUMNS = ("market", "creator_id", "category", *CATEGORY_FEATURES, index_name("category"))
TARGET_COLUMNS = ("market", "category", "feature", "target")


@dataclass
class Snapshot:
    """The rows of one day (``creators``, ``categories`` and ``targets``, each with a
    ``market`` column), sorted by market then creator_id (targets: market, category)."""

    creators: pd.DataFrame
    categories: pd.DataFrame
    targets: pd.DataFrame


def data_categories(tables: dict[str, pd.DataFrame]) -> tuple[str, ...]:
    """The categories a snapshot keeps rows for: every category of the posts, campaigns
    and declared primary categories (as ``features.history`` indexes them), sorted."""
    found: set = set()
    for name, column in CATEGORY_SOURCES:
        found |= set(tables[name][column].dropna().unique())
    return tuple(sorted(str(c) for c in found))


def snapshot_frames(
    tables: dict[str, pd.DataFrame],
    as_of: pd.Timestamp,
    categories: tuple[str, ...],
    history: History | None = None,
) -> Snapshot:
    """The snapshot of validated ``tables`` as of ``as_of`` (UTC midnight of its day) for
    every market of the creators table, with rows for ``categories`` and ``OTHER``.

    Indices and targets are computed among each market's candidates, so ``tables`` must
    hold whole markets (a creator bucket on Spark holds part of one: there the creator
    frames are finished with ``finish_snapshot``)."""
    return finish_snapshot(candidate_rows(tables, as_of, categories, history))


def candidate_rows(
    tables: dict[str, pd.DataFrame],
    as_of: pd.Timestamp,
    categories: tuple[str, ...],
    history: History | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every market's candidates as of ``as_of`` with their identity and features:
    (creators without indices, categories without index), ordered by market, creator_id
    (then category). A creator's rows depend on its own history alone."""
    history = history or index_history(tables)
    by_market = market_creators(tables, history)
    markets = sorted(by_market)
    briefs = pd.DataFrame(
        {
            "market": markets,
            "as_of": pd.Series([as_of] * len(markets), dtype=TIMESTAMP_DTYPE),
            "min_followers": np.zeros(len(markets), np.int64),
        }
    )
    pairs = find_candidates(tables, briefs, history, by_market)
    ids = pairs["creator_id"].reset_index(drop=True)
    declared = tables["creators"].set_index("creator_id")["primary_category"]
    market = pd.Series(np.asarray(markets, dtype=object)[pairs["brief"].to_numpy()])
    requests = pd.DataFrame({"creator_id": ids, "as_of": briefs["as_of"].iloc[0]})
    base = build_features(tables, requests.assign(category=OTHER), history)
    followers = pairs["followers"].to_numpy(np.int64)
    creators = pd.DataFrame(
        {
            "creator_id": ids.astype(STRING_DTYPE),
            "market": market.astype(STRING_DTYPE),
            "primary_category": declared.reindex(ids).reset_index(drop=True).astype(STRING_DTYPE),
            "followers": followers,
            "follower_tier": pd.Series(follower_tier(followers).astype(str), dtype=STRING_DTYPE),
        }
    )
    creators = pd.concat([creators, base[list(CREATOR_FEATURES)]], axis=1)
    every = (*categories, OTHER)
    n = len(ids)
    repeated = np.tile(np.arange(n), len(every))
    per_category = pd.DataFrame(
        {
            "creator_id": ids.iloc[repeated].reset_index(drop=True),
            "as_of": briefs["as_of"].iloc[0],
            "category": np.repeat(np.asarray(every, dtype=object), n),
        }
    )
    values = build_category_features(tables, per_category, history)
    order = np.lexsort((per_category["category"].to_numpy(), repeated))  # creator, category
    category_rows = pd.concat(
        [
            pd.DataFrame(
                {
                    "creator_id": per_category["creator_id"].astype(STRING_DTYPE),
                    "market": market.iloc[repeated].reset_index(drop=True).astype(STRING_DTYPE),
                    "category": per_category["category"].astype(STRING_DTYPE),
                }
            ),
            values.reset_index(drop=True),
        ],
        axis=1,
    ).iloc[order]
    return creators, category_rows.reset_index(drop=True)


def finish_snapshot(rows: tuple[pd.DataFrame, pd.DataFrame]) -> Snapshot:
    """``candidate_rows`` of whole markets with the indices among each market's
    candidates and the counterfactual targets added."""
    creators, category_rows = rows
    creators = creators.sort_values(["market", "creator_id"], kind="stable", ignore_index=True)
    category_rows = category_rows.sort_values(
        ["market", "creator_id", "category"], kind="stable", ignore_index=True
    )
    indices = family_indices(
        creators.reindex(columns=FEATURE_NAMES), creators["market"], CREATOR_FAMILIES
    )
    creators = pd.concat([creators, indices], axis=1)
    # The category index reads the category family and the history rules' inputs only:
    # each (creator, category) row carries just those (memory: a market's rows x 14).
    position = pd.Index(creators["creator_id"]).get_indexer(category_rows["creator_id"])
    needed = [c for c in HISTORY_INPUTS if c not in CATEGORY_FEATURES]
    full = creators.iloc[position].reset_index(drop=True)[needed]
    full = pd.concat([full, category_rows[list(CATEGORY_FEATURES)]], axis=1)
    peers = category_rows["market"].astype(str) + SEPARATOR + category_rows["category"].astype(str)
    category_index = family_indices(full, peers.to_numpy(), ("category",))
    category_rows = category_rows.assign(**{index_name("category"): category_index.iloc[:, 0]})
    targets = counterfactual_targets(creators, category_rows, peers)
    return Snapshot(
        creators=creators[list(CREATOR_COLUMNS)],
        categories=category_rows[list(CATEGORY_COLUMNS)],
        targets=targets[list(TARGET_COLUMNS)],
    )


def counterfactual_targets(
    creators: pd.DataFrame, category_rows: pd.DataFrame, peers: pd.Series
) -> pd.DataFrame:
    """Per market and category (``peers``: ``market`` + US + ``category`` of each of
    ``category_rows``) and feature with a family, the peers' TARGET_QUANTILE in the
    brand's direction: the 75th percentile, or the 25th for a lower-is-better feature (NaN
    without any value); rows (market, category, feature, target). The peers of a market
    and category are the market's candidates, so the other families' targets are the
    market's, the same in every category."""
    by_category = _quantiles(category_rows, peers.to_numpy(), features_of("category"))
    by_market = _quantiles(
        creators,
        creators["market"].to_numpy(),
        [f for f in FAMILY_FEATURES if f.family != "category"],
    )
    keys = by_category.index.to_series().str.split(SEPARATOR, n=1, expand=True)
    wide = pd.concat(
        [by_market.loc[keys[0].to_numpy()].set_axis(by_category.index), by_category], axis=1
    )
    long = (
        wide.rename_axis("group")
        .reset_index()
        .melt(id_vars="group", var_name="feature", value_name="target")
    )
    market_category = long["group"].str.split(SEPARATOR, n=1, expand=True)
    return pd.DataFrame(
        {
            "market": market_category[0].astype(STRING_DTYPE),
            "category": market_category[1].astype(STRING_DTYPE),
            "feature": long["feature"].astype(STRING_DTYPE),
            "target": long["target"].astype(float),
        }
    ).sort_values(["market", "category", "feature"], kind="stable", ignore_index=True)


def _quantiles(frame: pd.DataFrame, groups, features) -> pd.DataFrame:
    """Per group (sorted), each feature's TARGET_QUANTILE in the brand's direction."""
    names = [f.name for f in features]
    lower = [f.name for f in features if f.direction < 0]
    grouped = frame[names].groupby(groups, sort=True)
    wide = grouped.quantile(TARGET_QUANTILE)
    if lower:
        wide[lower] = grouped[lower].quantile(1 - TARGET_QUANTILE)
    return wide
