"""Reference bins of the population serving scores, stored with the model for drift checks.

Serving compares the candidates it scores with this reference, so the reference is the
same kind of population (like with like): every candidate of every market as of the end
of the training data (midnight after the last post, the explorer's default as_of), by
serving's own candidate rule (``features.candidates``: a post in the 90 days before as_of,
any followers), each in a category drawn from what its market's campaigns asked for
(seeded). The invited pairs the model learns from are not it: brands invite mostly big
creators, serving scores every active one.

For every feature: the edges of its deciles over the population's non-null values
(repeated edges merged) and the population's share in each bin, (-inf, e1], (e1, e2],
..., (e_last, inf), plus a last bin for nulls. ``serving.drift`` bins scored candidates
the same way (``bin_counts``) and compares the shares (population stability index).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.build import History, build_features
from features.candidates import feature_requests, find_candidates, market_creators
from marketplace.contract import TIMESTAMP_DTYPE

QUANTILES = np.linspace(0.1, 0.9, 9)
SEED = 0  # the reference's category draw
DAY = pd.Timedelta(days=1)


def reference_as_of(posts: dict) -> pd.Timestamp | None:
    """Midnight UTC after the last post of a ``training.run.posts_summary``: the end of
    the training data, when a served model starts scoring (None without posts)."""
    last = posts.get("posts_to")
    return pd.Timestamp(last).normalize() + DAY if last else None


def population_features(
    tables: dict[str, pd.DataFrame], history: History, as_of: pd.Timestamp, seed: int = SEED
) -> pd.DataFrame:
    """The feature rows of the population serving scores as of ``as_of`` (module doc):
    every candidate of every market of ``tables["creators"]``, ordered by market then
    creator_id, in a category drawn with the frequencies of its market's campaigns (all
    campaigns' when it has none), at the campaigns' median commission rate.
    ``tables["posts"]`` is not read (the history holds the posts)."""
    campaigns = tables["campaigns"]
    markets = sorted(tables["creators"]["market"].dropna().unique())
    briefs = pd.DataFrame(
        {
            "market": pd.Series(markets, dtype=campaigns["market"].dtype),
            "as_of": pd.Series([as_of] * len(markets)).astype(TIMESTAMP_DTYPE),
            "min_followers": np.zeros(len(markets), np.int64),
            "commission_rate": float(campaigns["commission_rate"].median()),
        }
    )
    pairs = find_candidates(tables, briefs, history, market_creators(tables, history))
    rng = np.random.default_rng(seed)
    everywhere = campaigns["category"].value_counts(normalize=True, sort=False).sort_index()
    drawn = np.empty(len(pairs), dtype=object)
    for j, market in enumerate(markets):
        rows = np.flatnonzero(pairs["brief"].to_numpy() == j)
        asked = campaigns.loc[campaigns["market"] == market, "category"]
        mix = (
            asked.value_counts(normalize=True, sort=False).sort_index()
            if len(asked)
            else everywhere
        )
        drawn[rows] = rng.choice(mix.index.to_numpy(dtype=object), size=len(rows), p=mix.to_numpy())
    requests = feature_requests(briefs.assign(category=""), pairs).assign(
        category=pd.Series(drawn, dtype=campaigns["category"].dtype)
    )
    return build_features(tables, requests, history)


def reference_bins(frame: pd.DataFrame, features: list[str]) -> dict:
    """``{feature: {"edges": [...], "shares": [...]}}`` of ``frame`` (shares sum to 1;
    one more share than bins between edges: the nulls)."""
    out = {}
    for name in features:
        values = frame[name].to_numpy(dtype=float)
        known = values[~np.isnan(values)]
        edges = np.unique(np.quantile(known, QUANTILES)) if len(known) else np.array([])
        counts = bin_counts_of(values, edges)
        out[name] = {"edges": edges.tolist(), "shares": (counts / max(len(values), 1)).tolist()}
    return out


def bin_counts_of(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts of ``values`` per bin of ``edges`` (right-closed), nulls in the last bin."""
    values = np.asarray(values, dtype=float)
    null = np.isnan(values)
    index = np.searchsorted(edges, values[~null], side="left")
    counts = np.bincount(index, minlength=len(edges) + 1).astype(float)
    return np.append(counts, float(null.sum()))


def bin_counts(frame: pd.DataFrame, reference: dict) -> dict[str, np.ndarray]:
    """Counts of the rows of ``frame`` in each feature's reference bins."""
    return {
        name: bin_counts_of(frame[name].to_numpy(dtype=float), np.asarray(ref["edges"]))
        for name, ref in reference.items()
    }
