"""Simulated creators: their hidden traits, their posts and the audience those posts grow.

Every function draws from the random stream it is given (one per block of creators); the
model of what drives what is told in ``marketplace.simulate``'s docstring.
"""

from __future__ import annotations

import numpy as np

from marketplace.reference import (
    TIER_COMMENTS_PER_LIKE,
    TIER_LIKES_PER_VIEW,
    TIER_SHARES_PER_LIKE,
    TIER_VIEWS_PER_FOLLOWER,
    tier_curve,
)
from marketplace.sim_world import (
    BASE_ORDERS_PER_VIEW,
    CATEGORIES,
    CATEGORY_PRICE,
    CATEGORY_SHARE,
    LIVE_CONVERSION_FACTOR,
    LIVE_VIEW_FACTOR,
    MARKET_PRICE,
    MARKETS,
    SHOPPABLE_VIEW_FACTOR,
    VIEW_NOISE_SD,
    WEEKLY_GROWTH_CAP,
    SimConfig,
    sigmoid,
)


def draw_creators(rng: np.random.Generator, cfg: SimConfig, n: int) -> dict[str, np.ndarray]:
    """Hidden traits and public attributes of ``n`` creators (arrays of length n)."""
    world = cfg.world
    z = rng.standard_normal((n, 6))
    quality = z[:, 0]
    diligence = z[:, 1]
    sales_skill = 0.3 * quality + 0.3 * diligence + np.sqrt(1 - 0.18) * z[:, 2]
    cooperation = 0.3 * diligence + np.sqrt(1 - 0.09) * z[:, 3]
    log10_f0 = np.clip(4.0 + 0.9 * z[:, 4] + 0.15 * quality, 2.7, 7.0)
    posting_rate = np.exp(np.log(0.40) + 0.15 * (log10_f0 - 4) + 0.25 * diligence + 0.45 * z[:, 5])
    regularity = np.exp(rng.normal(0.0, 0.8, n))
    trend = rng.normal(0.0, 0.35, n)
    joined_day = np.where(
        rng.random(n) >= world.new_share, rng.uniform(-730, 0, n), rng.uniform(0, 0.8 * cfg.days, n)
    )
    churns = rng.random(n) < 0.25
    churn_day = np.where(churns, rng.uniform(np.maximum(joined_day, 0) + 14, cfg.days + 60), np.inf)
    fake = rng.random(n) < world.fake_share
    # Viral creators: a smooth burst of genuine growth (never fake) centred on viral_day.
    viral = ~fake & (rng.random(n) < world.viral_share / (1 - world.fake_share))
    viral_day = rng.uniform(0, cfg.days, n)
    viral_boost = np.where(viral, rng.uniform(3.0, 8.0, n), 1.0)
    views_inflation = np.where(fake, np.exp(rng.uniform(0.7, 1.8, n)), 1.0)
    likes_inflation = views_inflation * np.where(fake, np.exp(rng.uniform(0.3, 1.0, n)), 1.0)

    cats = np.stack([rng.choice(len(CATEGORIES), n, p=CATEGORY_SHARE) for _ in range(3)], 1)
    weights = rng.dirichlet([3.0, 1.5, 0.7], n)
    # Repeated categories merge their weights into the first slot that holds them.
    dup2 = cats[:, 2] == cats[:, 1]
    weights[dup2, 1] += weights[dup2, 2]
    dup = (cats[:, 2] == cats[:, 0]) & ~dup2
    weights[dup, 0] += weights[dup, 2]
    weights[dup2 | dup, 2] = 0.0
    dup = cats[:, 1] == cats[:, 0]
    weights[dup, 0] += weights[dup, 1]
    weights[dup, 1] = 0.0
    declared_roll = rng.random(n)
    declared = np.where(
        declared_roll < 0.75,
        cats[:, 0],
        np.where(
            declared_roll < 0.85,
            cats[:, 1],
            np.where(declared_roll < 0.9, rng.integers(0, len(CATEGORIES), n), -1),
        ),
    )
    return dict(
        market=rng.choice(len(MARKETS), n, p=cfg.market_share),
        log10_f0=log10_f0,
        quality=quality,
        sales_skill=sales_skill,
        cooperation=cooperation,
        diligence=diligence,
        trend=trend,
        posting_rate=posting_rate,
        regularity=regularity,
        joined_day=joined_day,
        churn_day=churn_day,
        fake=fake,
        views_inflation=views_inflation,
        viral=viral,
        viral_day=viral_day,
        viral_boost=viral_boost,
        view_quality=world.view_quality_weight * quality,
        sales_effect=np.exp(world.sales_weight * sales_skill),
        likes_inflation=likes_inflation,
        cats=cats,
        cat_weights=weights,
        declared=declared,
        live_share=sigmoid(-3.0 + 1.0 * diligence),
        shoppable_share=sigmoid(-1.0 + 1.2 * diligence),
        follow_rate=4e-4 * np.exp(0.3 * quality),
    )


def category_fit(creators: dict, idx: np.ndarray, category: np.ndarray) -> np.ndarray:
    """0.15 + 1.7 x the creator's affinity weight for the category (0.15 to 1.85)."""
    w = (creators["cat_weights"][idx] * (creators["cats"][idx] == category[:, None])).sum(1)
    return 0.15 + 1.7 * w


def log_views_per_follower(creators: dict, idx: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Median log(views / real follower) of a creator's videos on a given day."""
    base = np.log(tier_curve(creators["log10_f0"][idx], TIER_VIEWS_PER_FOLLOWER))
    return (
        base
        + creators["view_quality"][idx]
        + creators["trend"][idx] * day / 365.0
        + np.log(viral_factor(creators, day, idx))
    )


def draw_post_times(rng: np.random.Generator, creators: dict, days: int):
    """Creator index and day (float) of every post: gamma renewal until churn or the end."""
    rate, shape = creators["posting_rate"], creators["regularity"]
    begin = np.maximum(creators["joined_day"], 0.0)
    end = np.minimum(creators["churn_day"], days)
    span = np.maximum(end - begin, 0.0)
    expected = rate * span
    draws = np.ceil(expected + 5 * np.sqrt(expected / shape + 1) + 3).astype(np.int64)
    owner = np.repeat(np.arange(len(rate)), draws)
    gaps = rng.gamma(shape[owner], 1.0 / (rate[owner] * shape[owner]))
    # The first gap starts at a random phase so creators do not all post on day 0.
    first = np.concatenate([[0], np.cumsum(draws)[:-1]])
    gaps[first] *= rng.random(len(first))
    elapsed = np.cumsum(gaps)
    elapsed -= np.repeat(elapsed[first] - gaps[first], draws)
    day = begin[owner] + elapsed
    keep = day < end[owner]
    return owner[keep], day[keep]


def grow_audience(rng, creators: dict, owner, day, is_live, is_shop, weeks: int):
    """Real views of every post and the weekly real-follower matrix (creators x weeks).

    Week w covers days [7w, 7w + 7); a post's expected views use the real followers at the
    end of the previous week, and each week's real views add followers at the creator's
    follow rate (a slow decay after churn). Growth saturates near 1 % a week, except for
    viral creators, whose views (``log_views_per_follower``), follow rate and ceiling rise
    smoothly up to ``viral_boost`` times around their ``viral_day``. Returns
    (real_views, real_followers).
    """
    n = len(creators["log10_f0"])
    week = (day // 7).astype(np.int64)
    order = np.argsort(week, kind="stable")
    bounds = np.searchsorted(week[order], np.arange(weeks + 1))
    log_mean = (
        log_views_per_follower(creators, owner, day)
        + np.where(is_live, np.log(LIVE_VIEW_FACTOR), 0.0)
        + np.where(is_shop & ~is_live, np.log(SHOPPABLE_VIEW_FACTOR), 0.0)
        + rng.normal(0.0, VIEW_NOISE_SD, len(owner))
    )
    real_views = np.empty(len(owner))
    followers = np.empty((n, weeks))
    current = 10.0 ** creators["log10_f0"]
    decaying = np.zeros(n, dtype=bool)
    for w in range(weeks):
        rows = order[bounds[w] : bounds[w + 1]]
        real_views[rows] = np.round(current[owner[rows]] * np.exp(log_mean[rows]))
        gained = np.bincount(owner[rows], weights=real_views[rows], minlength=n)
        decaying |= creators["churn_day"] < 7 * w
        boost = viral_factor(creators, 7.0 * w + 3.5)
        rate = creators["follow_rate"] * boost * gained / current
        cap = WEEKLY_GROWTH_CAP * boost
        current = np.where(decaying, current * 0.997, current * (1 + rate / (1 + rate / cap)))
        followers[:, w] = current
    return real_views, followers


def viral_factor(creators: dict, day, idx: np.ndarray | None = None) -> np.ndarray:
    """The multiplier of views and follow rate of creators ``idx`` (default all) on
    ``day``: 1, rising smoothly to viral_boost around viral_day (a Gaussian bump, sd 4
    weeks) for viral creators."""
    rows: slice | np.ndarray = slice(None) if idx is None else idx
    bump = np.exp(-0.5 * ((day - creators["viral_day"][rows]) / 28.0) ** 2)
    return 1.0 + (creators["viral_boost"][rows] - 1.0) * bump


def bought_followers(rng, creators: dict, real_followers: np.ndarray) -> np.ndarray:
    """Cumulative bought followers per (creator, week): 1-3 jumps for fake creators."""
    n, weeks = real_followers.shape
    jumps = np.zeros((n, weeks))
    fakes = np.flatnonzero(creators["fake"])
    for k in range(3):
        who = fakes[rng.random(len(fakes)) < (1.0 if k == 0 else 0.5)]
        at = rng.integers(0, weeks, len(who))
        jumps[who, at] += rng.uniform(0.3, 1.5, len(who)) * real_followers[who, at]
    return np.cumsum(jumps, axis=1)


def draw_post_metrics(
    rng, creators: dict, owner, day, real_views, is_live, is_shop, category, followers
) -> dict[str, np.ndarray]:
    """Reported views, likes, comments, shares, orders and gmv of every post."""
    lf = np.log10(np.maximum(followers[owner, np.maximum((day // 7).astype(int) - 1, 0)], 1))
    noise = lambda sd: np.exp(rng.normal(-sd * sd / 2, sd, len(owner)))  # noqa: E731
    like_rate = (
        tier_curve(lf, TIER_LIKES_PER_VIEW)
        * np.exp(0.3 * creators["quality"][owner])
        * np.where(is_live, 2.0, 1.0)
        * noise(0.4)
    )
    real_likes = rng.poisson(real_views * like_rate)
    comments = rng.poisson(
        real_likes
        * tier_curve(lf, TIER_COMMENTS_PER_LIKE)
        * np.where(is_live, 3.0, 1.0)
        * noise(0.5)
    )
    shares = rng.poisson(real_likes * tier_curve(lf, TIER_SHARES_PER_LIKE) * noise(0.5))
    inflate = creators["fake"][owner]
    views = np.where(inflate, np.round(real_views * creators["views_inflation"][owner]), real_views)
    likes = np.where(inflate, np.round(real_likes * creators["likes_inflation"][owner]), real_likes)
    safe_category = np.maximum(category, 0)
    conversion = (
        BASE_ORDERS_PER_VIEW
        * creators["sales_effect"][owner]
        * category_fit(creators, owner, safe_category)
        * np.where(is_live, LIVE_CONVERSION_FACTOR, 1.0)
    )
    orders = np.where(is_shop, rng.poisson(real_views * conversion), 0)
    price = CATEGORY_PRICE[safe_category] * MARKET_PRICE[creators["market"][owner]]
    gmv = np.round(orders * price * noise(0.25), 2)
    return dict(
        views=views.astype(np.int64),
        likes=likes.astype(np.int64),
        comments=comments.astype(np.int64),
        shares=shares.astype(np.int64),
        orders=orders.astype(np.int64),
        gmv=gmv,
    )


def draw_post_kinds(rng, creators: dict, owner):
    """(is_live, is_shoppable, category index or -1) of every post."""
    is_live = rng.random(len(owner)) < creators["live_share"][owner]
    is_shop = np.where(
        is_live,
        rng.random(len(owner)) < 0.9,
        rng.random(len(owner)) < creators["shoppable_share"][owner],
    )
    w = np.cumsum(creators["cat_weights"][owner], axis=1)
    slot = (rng.random(len(owner))[:, None] > w).sum(1).clip(0, 2)
    category = creators["cats"][owner, slot]
    category = np.where(~is_shop & (rng.random(len(owner)) < 0.05), -1, category)
    return is_live, is_shop, category
