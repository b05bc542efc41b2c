"""A simulated social-commerce marketplace with its hidden truth.

This module puts the tables together (``simulate``, ``simulate_parts``); the world and its
scenarios are in ``marketplace.sim_world``, the creators and their posts in
``marketplace.sim_creators``, the campaigns and their outcomes in
``marketplace.sim_campaigns``.

Everything the system later learns is generated here from a handful of hidden creator
traits, so that a model that recovers them ranks well and one that reads a single signal
does not. Time runs in days from ``START``; every draw comes from one
``numpy.random.Generator`` seeded by ``seed``, so the same arguments give the same bytes.

What drives what
----------------
Creators (``draw_creators``)
    market: the seven pilot markets (ID, MY, PH, SG, TH, VN, GB) with fixed shares.
    followers at the start: log10 ~ Normal(4.0, 0.9): about half under 10K (nano), ~1 %
    over 1M. Hidden traits, each a standard normal unless said otherwise:
    ``quality`` (views per follower and likes per view), ``sales_skill`` (orders per
    view), ``cooperation`` (answering, accepting, delivering), ``diligence`` (appetite
    for shoppable videos and LIVEs, posts promised), ``trend`` (quality drift per year:
    some rise, some fade), ``posting_rate`` (posts a day, log-normal, higher for big and
    diligent creators), ``regularity`` (gamma shape of the gaps between posts: 4 is
    clockwork, 0.3 is bursts), ``churn_day`` (a quarter stop posting at some day),
    ``fake`` (8 % buy engagement: views x2-6 and likes more, never comments, shares or
    sales; and bought followers in jumps that bring no views), ``viral`` (10 %, never
    fake: a smooth burst of genuine growth, see ``grow_audience``), and category affinities
    (up to three categories with Dirichlet weights). Traits are mildly correlated
    (skill with quality and diligence, cooperation with diligence). The declared
    ``primary_category`` is the top affinity 75 % of the time, otherwise the second,
    a random one or null.

Posts (``draw_post_times``, ``grow_audience``, ``draw_post_metrics``)
    Renewal process per creator: gamma gaps with the creator's rate and regularity from
    joining (or the window start) until churn. Views = real followers at the previous
    week x views-per-follower (falls with tier as in the real TikTok sample, times
    quality and its trend) x log-normal noise (sd 1.1); shoppable videos get 0.7x,
    LIVEs 0.5x. Likes, comments and shares per view follow the real sample's tier
    medians. Shoppable posts sell: orders ~ Poisson(real views x sales skill x category
    fit), gmv = orders x the category's price x the market's price level. Fake
    engagement inflates reported views and likes only.

Followers (``grow_audience``)
    Weekly: real followers grow by real views x a quality-driven follow rate, saturating
    near 1 % a week, decay slowly after churn; a viral creator's views per follower, follow
    rate and growth ceiling rise smoothly to 3-8x around its viral day (a Gaussian bump,
    sd 4 weeks), so genuine fast growth is smooth and brings its views with it. Snapshots add bought followers (jumps without views).

Campaigns and invitations (``draw_campaigns``, ``invite``)
    Campaigns per market and category, spread over time, with a commission rate and a
    brand appeal shared by all invitees. Brands see only followers and the declared
    category: invitees are drawn by Gumbel top-k on 0.6 log(followers) + 1.5 [declared
    category matches], so the logged data has the selection bias of real data
    (small creators are rarely invited).

Outcomes (``draw_outcomes``)
    Answering: cooperation, smaller size; churned creators rarely answer. Accepting:
    cooperation, diligence, category fit, commission, smaller size. Posts promised:
    1 + Poisson(0.5 + 1.5 sigmoid(diligence)). Delivered: Binomial(promised,
    p(cooperation, diligence, regularity)), near zero after churn. Campaign gmv:
    delivered x expected real views per shoppable video at the campaign's start x
    orders per view x category fit x price x brand appeal x (0.5 + 5 commission), times
    heavy-tailed noise (log-normal, sd 1, mean 1) and Poisson orders.

Truth
    ``expected_gmv`` is that gmv's expectation given the world at campaign time,
    computed in closed form (answer x accept x E[delivered] x mean gmv per post), not
    estimated from draws. ``creator_traits`` holds every hidden trait (``fake`` and
    ``viral`` say who bought growth and who earned it fast) and ``real_growth_90d``, the
    true audience growth over the last 13 weeks.

Scenarios (``SCENARIOS``, ``--scenario``)
    Worlds unlike the default for robustness checks: ``sales-led`` (selling skill drives
    sales far more than reach), ``engagement-led`` (reach and quality drive sales),
    ``heavy-fake`` (25 % fake creators), ``many-new`` (75 % join during the period).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from marketplace.sim_campaigns import draw_campaigns, draw_outcomes, invite
from marketplace.sim_creators import (
    bought_followers,
    draw_creators,
    draw_post_kinds,
    draw_post_metrics,
    draw_post_times,
    grow_audience,
)
from marketplace.sim_world import CATEGORIES, MARKETS, START, SimConfig


def timestamps(days: np.ndarray) -> pd.Series:
    """Day offsets from START as UTC timestamps rounded to the second."""
    seconds = np.round(np.asarray(days, dtype=float) * 86400.0).astype("int64")
    return pd.Series(START + pd.to_timedelta(seconds, unit="s"))


def string_ids(prefix: str, numbers: np.ndarray) -> pa.Array:
    """Identifiers like c000042 (at least six digits), built in Arrow (fast at tens of
    millions); an id depends on its number alone, whatever else is in the batch."""
    text = pc.utf8_lpad(pc.cast(pa.array(np.asarray(numbers, np.int64)), pa.string()), 6, "0")
    return pc.binary_join_element_wise(prefix, text, "")


def pick(names, index: np.ndarray) -> pd.Series:
    """``names[index]`` as a pandas string column; a negative index gives null."""
    names = pa.array(list(names), pa.string()) if not isinstance(names, pa.Array) else names
    index = np.asarray(index)
    taken = names.take(pa.array(index, mask=index < 0))
    return pd.Series(taken.to_pandas(), dtype="str")


def nullable_ints(values: np.ndarray, known: np.ndarray) -> pd.Series:
    """``values`` as a nullable Int64 column, null where not ``known``."""
    return pd.Series(pd.array(values, dtype="Int64")).where(known)


TABLE_ORDER = (
    "creators",
    "follower_snapshots",
    "posts",
    "campaigns",
    "invitations",
    "campaign_results",
)
# What the campaign stage needs of every creator (the rest stays in its block).
POPULATION_KEYS = (
    "market",
    "log10_f0",
    "cooperation",
    "diligence",
    "regularity",
    "churn_day",
    "joined_day",
    "declared",
    "cats",
    "cat_weights",
    "sales_effect",
    "view_quality",
    "trend",
    "quality",
    "viral_day",
    "viral_boost",
)


def simulate(cfg: SimConfig) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """The six raw tables and the truth tables of a marketplace drawn from ``cfg``, in
    memory: ``simulate_parts`` with its pieces put together."""
    pieces: dict[str, list[pd.DataFrame]] = {}
    for name, piece in simulate_parts(cfg):
        pieces.setdefault(name, []).append(piece)
    joined = {
        name: pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        for name, frames in pieces.items()
    }
    tables = {name: joined[name] for name in TABLE_ORDER}
    truth = {
        name.split("/", 1)[1]: frame for name, frame in joined.items() if name.startswith("truth/")
    }
    return tables, truth


def simulate_parts(
    cfg: SimConfig, chunk_creators: int | None = None, progress=lambda message: None
):
    """Yield (table, piece) pairs; each table's pieces, concatenated in order, are the table
    (truth tables are named ``truth/<name>``). Memory stays bounded by a chunk of
    creators (``chunk_creators``, rounded up to whole blocks; default all) and a week of
    campaigns, plus a few numbers and the weekly followers of every creator.

    The data depends on the seed, scenario and ``cfg.block`` only, never on the chunking:
    block b of creators draws from its own stream (seed, 1, b), the campaigns from
    (seed, 2) and each week of invitations from (seed, 3, week).
    """
    blocks = [(lo, min(lo + cfg.block, cfg.creators)) for lo in range(0, cfg.creators, cfg.block)]
    per_chunk = max(1, -(-(chunk_creators or cfg.creators) // cfg.block))
    population: list[dict] = []
    followers_parts, real_parts = [], []
    post_offset = 0
    for first in range(0, len(blocks), per_chunk):
        chunk_pieces: dict[str, list[pd.DataFrame]] = {}
        for b in range(first, min(first + per_chunk, len(blocks))):
            lo, hi = blocks[b]
            creators, pieces, followers, real = simulate_creator_block(cfg, b, lo, hi, post_offset)
            post_offset += len(pieces["posts"])
            for name, piece in pieces.items():
                chunk_pieces.setdefault(name, []).append(piece)
            population.append({key: creators[key] for key in POPULATION_KEYS})
            followers_parts.append(followers.astype(np.float32))
            real_parts.append(real.astype(np.float32))
        for name, frames in chunk_pieces.items():
            yield name, pd.concat(frames, ignore_index=True)
        progress(
            f"creators {blocks[min(first + per_chunk, len(blocks)) - 1][1]:,} of "
            f"{cfg.creators:,}: {post_offset:,} posts"
        )
    creators = {key: np.concatenate([p[key] for p in population]) for key in POPULATION_KEYS}
    del population
    followers = np.concatenate(followers_parts)
    del followers_parts
    real_followers = np.concatenate(real_parts)
    del real_parts
    yield from simulate_campaigns(cfg, creators, followers, real_followers, progress)


def simulate_creator_block(cfg: SimConfig, b: int, lo: int, hi: int, post_offset: int):
    """Creators lo..hi-1 (block b): their hidden traits, their rows of the creators,
    follower_snapshots and posts tables and of truth/creator_traits, and their weekly
    reported and real followers (creators x weeks)."""
    rng = np.random.default_rng([cfg.seed, 1, b])
    creators = draw_creators(rng, cfg, hi - lo)
    owner, day = draw_post_times(rng, creators, cfg.days)
    is_live, is_shop, post_category = draw_post_kinds(rng, creators, owner)
    real_views, real_followers = grow_audience(
        rng, creators, owner, day, is_live, is_shop, cfg.weeks
    )
    followers = real_followers + bought_followers(rng, creators, real_followers)
    metrics = draw_post_metrics(
        rng, creators, owner, day, real_views, is_live, is_shop, post_category, followers
    )
    creator_id = string_ids("c", np.arange(lo, hi))
    pieces = {
        "creators": pd.DataFrame(
            dict(
                creator_id=pick(creator_id, np.arange(hi - lo)),
                market=pick(MARKETS, creators["market"]),
                joined_at=timestamps(creators["joined_day"]),
                primary_category=pick(CATEGORIES, creators["declared"]),
            )
        ),
        "follower_snapshots": snapshot_table(creators, followers, creator_id, cfg.days),
        "posts": pd.DataFrame(
            dict(
                post_id=pick(
                    string_ids("p", post_offset + np.arange(len(owner))), np.arange(len(owner))
                ),
                creator_id=pick(creator_id, owner),
                posted_at=timestamps(day),
                format=pick(("video", "live"), is_live.astype(np.int64)),
                category=pick(CATEGORIES, post_category),
                is_shoppable=is_shop,
                **metrics,
            )
        ),
        "truth/creator_traits": traits_table(
            creators, pick(creator_id, np.arange(hi - lo)), real_followers
        ),
    }
    return creators, pieces, followers, real_followers


def simulate_campaigns(
    cfg: SimConfig,
    creators: dict,
    followers: np.ndarray,
    real_followers: np.ndarray,
    progress=lambda message: None,
):
    """Yield the campaigns table, then the invitations, campaign_results and
    truth/expected_gmv pieces, one batch of campaigns created in the same week at a time."""
    campaigns = draw_campaigns(np.random.default_rng([cfg.seed, 2]), cfg)
    campaign_id = string_ids("k", np.arange(cfg.campaigns))
    yield (
        "campaigns",
        pd.DataFrame(
            dict(
                campaign_id=pick(campaign_id, np.arange(cfg.campaigns)),
                brand_id=pick(
                    string_ids("b", np.arange(campaigns["brand"].max() + 1)), campaigns["brand"]
                ),
                market=pick(MARKETS, campaigns["market"]),
                category=pick(CATEGORIES, campaigns["category"]),
                created_at=timestamps(campaigns["created"]),
                start_at=timestamps(campaigns["start"]),
                end_at=timestamps(campaigns["end"]),
                commission_rate=np.where(
                    campaigns["commission_known"], campaigns["commission"], np.nan
                ),
            )
        ),
    )
    week = (campaigns["created"] // 7).astype(np.int64)  # created is sorted
    invited = 0
    for w in np.unique(week):
        rng = np.random.default_rng([cfg.seed, 3, int(w)])
        cs = np.flatnonzero(week == w)
        camp, who = invite(rng, creators, campaigns, cs, followers)
        outcome = draw_outcomes(rng, creators, campaigns, camp, who, real_followers)
        accepted = outcome["accepted"]
        invited += len(camp)
        yield (
            "invitations",
            pd.DataFrame(
                dict(
                    campaign_id=pick(campaign_id, camp),
                    creator_id=pick(string_ids("c", who), np.arange(len(who))),
                    invited_at=timestamps(outcome["invited"]),
                    response=pick(
                        ("no_response", "declined", "accepted"),
                        outcome["answered"].astype(np.int64) + accepted,
                    ),
                    responded_at=timestamps(outcome["responded"]).where(outcome["answered"]),
                    posts_promised=nullable_ints(outcome["promised"], accepted),
                    posts_delivered=nullable_ints(outcome["delivered"], accepted),
                )
            ),
        )
        yield (
            "campaign_results",
            pd.DataFrame(
                dict(
                    campaign_id=pick(campaign_id, camp[accepted]),
                    creator_id=pick(string_ids("c", who[accepted]), np.arange(int(accepted.sum()))),
                    gmv=outcome["gmv"][accepted],
                    orders=outcome["orders"][accepted].astype(np.int64),
                )
            ),
        )
        yield (
            "truth/expected_gmv",
            pd.DataFrame(
                dict(
                    campaign_id=pick(campaign_id, camp),
                    creator_id=pick(string_ids("c", who), np.arange(len(who))),
                    expected_gmv=outcome["expected"],
                )
            ),
        )
    progress(f"campaigns {cfg.campaigns:,}: {invited:,} invitations")


def snapshot_table(
    creators: dict, followers: np.ndarray, creator_id: pa.Array, days: int
) -> pd.DataFrame:
    """Weekly follower counts at the end of each week's last day, from joining to the end."""
    weeks = followers.shape[1]
    snap_day = 7 * np.arange(weeks) + 6
    live = (snap_day[None, :] >= creators["joined_day"][:, None]) & (snap_day[None, :] < days)
    who, week = np.nonzero(live)
    return pd.DataFrame(
        dict(
            creator_id=pick(creator_id, who),
            snapshot_date=timestamps(snap_day[week].astype(float)),
            followers=np.round(followers[who, week]).astype(np.int64),
        )
    )


def traits_table(creators: dict, creator_id: pd.Series, real_followers: np.ndarray) -> pd.DataFrame:
    """Every hidden trait per creator (the truth a model can only approximate), and
    ``real_growth_90d``: log real (unbought) followers at the last week against 13 weeks
    earlier, the creator's true audience growth at the end of the data."""
    out = pd.DataFrame(dict(creator_id=creator_id))
    for name in (
        "quality",
        "sales_skill",
        "cooperation",
        "diligence",
        "trend",
        "posting_rate",
        "regularity",
        "joined_day",
        "churn_day",
        "fake",
        "viral",
        "viral_day",
        "viral_boost",
        "log10_f0",
        "follow_rate",
        "live_share",
        "shoppable_share",
    ):
        out[name] = creators[name]
    last = real_followers.shape[1] - 1
    out["real_growth_90d"] = np.log(real_followers[:, last] / real_followers[:, max(last - 13, 0)])
    for k in range(3):
        out[f"category_{k + 1}"] = pick(CATEGORIES, creators["cats"][:, k])
        out[f"affinity_{k + 1}"] = creators["cat_weights"][:, k]
    return out
