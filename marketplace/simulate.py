"""A simulated social-commerce marketplace with its hidden truth.

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

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from marketplace.reference import (
    TIER_COMMENTS_PER_LIKE,
    TIER_LIKES_PER_VIEW,
    TIER_SHARES_PER_LIKE,
    TIER_VIEWS_PER_FOLLOWER,
    tier_curve,
)

START = pd.Timestamp("2024-07-01", tz="UTC")
MARKETS = ("ID", "VN", "TH", "PH", "MY", "GB", "SG")
MARKET_SHARE = np.array([0.24, 0.17, 0.16, 0.15, 0.10, 0.12, 0.06])
MARKET_PRICE = np.array([0.7, 0.7, 0.9, 0.7, 1.0, 2.0, 1.8])
CATEGORIES = ("beauty", "fashion", "food", "home", "electronics", "health", "baby",
              "sports", "toys", "pets")
CATEGORY_SHARE = np.array([0.20, 0.18, 0.12, 0.11, 0.09, 0.08, 0.06, 0.06, 0.05, 0.05])
CATEGORY_PRICE = np.array([14.0, 22.0, 7.0, 18.0, 45.0, 16.0, 20.0, 25.0, 15.0, 12.0])


VIEW_NOISE_SD = 1.1
SHOPPABLE_VIEW_FACTOR = 0.7
LIVE_VIEW_FACTOR = 0.5
LIVE_CONVERSION_FACTOR = 3.0
BASE_ORDERS_PER_VIEW = 6e-4
CAMPAIGN_NOISE_SD = 1.0
WEEKLY_GROWTH_CAP = 0.01  # organic follower growth saturates near 1 % a week


@dataclass(frozen=True)
class Scenario:
    """What a marketplace's world is like: shares of kinds of creators and what sells.

    ``sales_weight`` and ``view_quality_weight`` set how strongly selling skill (orders
    per view) and content quality (views per follower) drive sales; ``fake_share``,
    ``viral_share`` and ``new_share`` are the shares of creators who buy engagement and
    followers, who go viral (a smooth burst of genuine growth) and who join during the
    simulated period rather than before it.
    """

    name: str
    description: str
    sales_weight: float = 0.7
    view_quality_weight: float = 0.5
    fake_share: float = 0.08
    viral_share: float = 0.10
    new_share: float = 0.35


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("default", "the reference world"),
    Scenario("sales-led", "selling skill drives sales far more than reach",
             sales_weight=1.1, view_quality_weight=0.3),
    Scenario("engagement-led", "reach and content quality drive sales; selling skill less",
             sales_weight=0.35, view_quality_weight=0.8),
    Scenario("heavy-fake", "a quarter of creators buy engagement and followers",
             fake_share=0.25),
    Scenario("many-new", "most creators join during the period: short histories",
             new_share=0.75),
)}


@dataclass(frozen=True)
class SimConfig:
    """Scale and seed of a simulated marketplace."""

    creators: int = 3000
    days: int = 540
    seed: int = 0
    markets: tuple[str, ...] = MARKETS
    scenario: str = "default"
    block: int = 10_000  # creators drawn from one random stream (chunks never change the data)

    def __post_init__(self) -> None:
        if self.scenario not in SCENARIOS:
            raise ValueError(f"--scenario: unknown {self.scenario!r}; choose from "
                             f"{', '.join(SCENARIOS)}")
        unknown = sorted(set(self.markets) - set(MARKETS))
        if unknown or not self.markets:
            raise ValueError(f"--markets: {', '.join(unknown) or 'none given'}; "
                             f"choose from {', '.join(MARKETS)}")
        if self.creators < 10:
            raise ValueError(f"--creators must be at least 10, got {self.creators}")
        if self.days < 120:
            raise ValueError(f"--days must be at least 120, got {self.days}")
        if self.block < 1:
            raise ValueError(f"block must be at least 1, got {self.block}")

    @property
    def world(self) -> Scenario:
        return SCENARIOS[self.scenario]

    @property
    def market_share(self) -> np.ndarray:
        """The pilot markets' shares, restricted to ``markets`` and renormalised."""
        share = np.where(np.isin(MARKETS, self.markets), MARKET_SHARE, 0.0)
        return share / share.sum()

    @property
    def weeks(self) -> int:
        return self.days // 7 + 1

    @property
    def campaigns(self) -> int:
        """About 0.54 campaigns per creator per 540 days (2M pairs at 100K creators)."""
        return max(20, round(self.creators * self.days / 1000))


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def draw_creators(rng: np.random.Generator, cfg: SimConfig, n: int) -> dict[str, np.ndarray]:
    """Hidden traits and public attributes of ``n`` creators (arrays of length n)."""
    world = cfg.world
    z = rng.standard_normal((n, 6))
    quality = z[:, 0]
    diligence = z[:, 1]
    sales_skill = 0.3 * quality + 0.3 * diligence + np.sqrt(1 - 0.18) * z[:, 2]
    cooperation = 0.3 * diligence + np.sqrt(1 - 0.09) * z[:, 3]
    log10_f0 = np.clip(4.0 + 0.9 * z[:, 4] + 0.15 * quality, 2.7, 7.0)
    posting_rate = np.exp(np.log(0.40) + 0.15 * (log10_f0 - 4) + 0.25 * diligence
                          + 0.45 * z[:, 5])
    regularity = np.exp(rng.normal(0.0, 0.8, n))
    trend = rng.normal(0.0, 0.35, n)
    joined_day = np.where(rng.random(n) >= world.new_share, rng.uniform(-730, 0, n),
                          rng.uniform(0, 0.8 * cfg.days, n))
    churns = rng.random(n) < 0.25
    churn_day = np.where(churns, rng.uniform(np.maximum(joined_day, 0) + 14,
                                             cfg.days + 60), np.inf)
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
    declared = np.where(declared_roll < 0.75, cats[:, 0],
                        np.where(declared_roll < 0.85, cats[:, 1],
                                 np.where(declared_roll < 0.9,
                                          rng.integers(0, len(CATEGORIES), n), -1)))
    return dict(
        market=rng.choice(len(MARKETS), n, p=cfg.market_share),
        log10_f0=log10_f0, quality=quality, sales_skill=sales_skill,
        cooperation=cooperation, diligence=diligence, trend=trend,
        posting_rate=posting_rate, regularity=regularity, joined_day=joined_day,
        churn_day=churn_day, fake=fake, views_inflation=views_inflation,
        viral=viral, viral_day=viral_day, viral_boost=viral_boost,
        view_quality=world.view_quality_weight * quality,
        sales_effect=np.exp(world.sales_weight * sales_skill),
        likes_inflation=likes_inflation, cats=cats, cat_weights=weights,
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
    return (base + creators["view_quality"][idx] + creators["trend"][idx] * day / 365.0
            + np.log(viral_factor(creators, day, idx)))


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
    log_mean = (log_views_per_follower(creators, owner, day)
                + np.where(is_live, np.log(LIVE_VIEW_FACTOR), 0.0)
                + np.where(is_shop & ~is_live, np.log(SHOPPABLE_VIEW_FACTOR), 0.0)
                + rng.normal(0.0, VIEW_NOISE_SD, len(owner)))
    real_views = np.empty(len(owner))
    followers = np.empty((n, weeks))
    current = 10.0 ** creators["log10_f0"]
    decaying = np.zeros(n, dtype=bool)
    for w in range(weeks):
        rows = order[bounds[w]:bounds[w + 1]]
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


def draw_post_metrics(rng, creators: dict, owner, day, real_views, is_live, is_shop,
                      category, followers) -> dict[str, np.ndarray]:
    """Reported views, likes, comments, shares, orders and gmv of every post."""
    lf = np.log10(np.maximum(followers[owner, np.maximum((day // 7).astype(int) - 1, 0)], 1))
    noise = lambda sd: np.exp(rng.normal(-sd * sd / 2, sd, len(owner)))  # noqa: E731
    like_rate = (tier_curve(lf, TIER_LIKES_PER_VIEW) * np.exp(0.3 * creators["quality"][owner])
                 * np.where(is_live, 2.0, 1.0) * noise(0.4))
    real_likes = rng.poisson(real_views * like_rate)
    comments = rng.poisson(real_likes * tier_curve(lf, TIER_COMMENTS_PER_LIKE)
                           * np.where(is_live, 3.0, 1.0) * noise(0.5))
    shares = rng.poisson(real_likes * tier_curve(lf, TIER_SHARES_PER_LIKE) * noise(0.5))
    inflate = creators["fake"][owner]
    views = np.where(inflate, np.round(real_views * creators["views_inflation"][owner]),
                     real_views)
    likes = np.where(inflate, np.round(real_likes * creators["likes_inflation"][owner]),
                     real_likes)
    safe_category = np.maximum(category, 0)
    conversion = (BASE_ORDERS_PER_VIEW * creators["sales_effect"][owner]
                  * category_fit(creators, owner, safe_category)
                  * np.where(is_live, LIVE_CONVERSION_FACTOR, 1.0))
    orders = np.where(is_shop, rng.poisson(real_views * conversion), 0)
    price = CATEGORY_PRICE[safe_category] * MARKET_PRICE[creators["market"][owner]]
    gmv = np.round(orders * price * noise(0.25), 2)
    return dict(views=views.astype(np.int64), likes=likes.astype(np.int64),
                comments=comments.astype(np.int64), shares=shares.astype(np.int64),
                orders=orders.astype(np.int64), gmv=gmv)


def draw_post_kinds(rng, creators: dict, owner):
    """(is_live, is_shoppable, category index or -1) of every post."""
    is_live = rng.random(len(owner)) < creators["live_share"][owner]
    is_shop = np.where(is_live, rng.random(len(owner)) < 0.9,
                       rng.random(len(owner)) < creators["shoppable_share"][owner])
    w = np.cumsum(creators["cat_weights"][owner], axis=1)
    slot = (rng.random(len(owner))[:, None] > w).sum(1).clip(0, 2)
    category = creators["cats"][owner, slot]
    category = np.where(~is_shop & (rng.random(len(owner)) < 0.05), -1, category)
    return is_live, is_shop, category


def draw_campaigns(rng, cfg: SimConfig) -> dict[str, np.ndarray]:
    """Campaign market, category, timing (days), commission and brand appeal."""
    m = cfg.campaigns
    first = min(90.0, cfg.days / 4)
    created = np.sort(rng.uniform(first, cfg.days - 40, m))
    start = created + rng.uniform(1, 7, m)
    end = start + rng.uniform(14, 30, m)
    commission = np.round(rng.uniform(0.05, 0.25, m), 3)
    n_brands = max(5, m // 20)
    return dict(
        market=rng.choice(len(MARKETS), m, p=cfg.market_share),
        category=rng.choice(len(CATEGORIES), m, p=CATEGORY_SHARE),
        created=created, start=start, end=end,
        commission=commission,
        commission_known=rng.random(m) > 0.05,
        brand=rng.integers(0, n_brands, m),
        appeal=np.exp(rng.normal(-0.125, 0.5, m)),
        invitees=np.clip(np.round(np.exp(rng.normal(np.log(35), 0.4, m))), 10, 100).astype(int),
    )


INVITE_MATCH_WEIGHT = np.exp(1.5)  # a declared-category match weighs e^1.5 times more


def invite(rng, creators: dict, campaigns: dict, cs: np.ndarray, followers: np.ndarray):
    """(campaign index, creator index) of the invitations of campaigns ``cs``, which all
    see the same week of ``followers`` (the last snapshot week before they were created).

    A brand sees followers and the declared category; members who joined before the
    campaign are eligible. Each campaign samples its invitees without replacement with
    probability proportional to followers^0.6 x e^1.5 [declared == category], as Gumbel
    top-k on 0.6 log(followers) + 1.5 [match] would: repeated weighted draws with
    replacement, keeping each creator's first draw, in O(invitees log creators) per
    campaign rather than a pass over the whole market.
    """
    week = max(int(campaigns["created"][cs[0]] // 7) - 1, 0)
    camp_rows, creator_rows = [], []
    for market in np.unique(campaigns["market"][cs]):
        pool = np.flatnonzero(creators["market"] == market)
        ours = cs[campaigns["market"][cs] == market]
        if len(pool) == 0:
            continue
        # The market's creators sorted by declared category: each category is one range.
        pool = pool[np.argsort(creators["declared"][pool], kind="stable")]
        declared = creators["declared"][pool]
        weight = np.maximum(followers[pool, week], 1.0) ** 0.6
        cum = np.concatenate([[0.0], np.cumsum(weight)])
        joined = creators["joined_day"][pool]
        members = np.searchsorted(np.sort(joined), campaigns["created"][ours], "left")
        lo = np.searchsorted(declared, campaigns["category"][ours], "left")
        hi = np.searchsorted(declared, campaigns["category"][ours], "right")
        for c, a, b, m in zip(ours, lo, hi, members, strict=True):
            k = min(int(campaigns["invitees"][c]), int(m))
            chosen = _weighted_sample(rng, cum, a, b, joined, campaigns["created"][c], k)
            camp_rows.append(np.full(len(chosen), c))
            creator_rows.append(pool[chosen])
    if not camp_rows:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(camp_rows), np.concatenate(creator_rows)


def _weighted_sample(rng, cum: np.ndarray, a: int, b: int, joined: np.ndarray,
                     created: float, k: int) -> np.ndarray:
    """k distinct positions with ``joined < created`` (at least k must exist), drawn
    without replacement, position j with weight cum[j+1] - cum[j], times
    ``INVITE_MATCH_WEIGHT`` inside [a, b). Draws with replacement in rounds, dropping the
    ineligible and keeping first occurrences in draw order."""
    if k == 0:
        return np.zeros(0, np.int64)
    inside = cum[b] - cum[a]
    total = cum[-1] + (INVITE_MATCH_WEIGHT - 1.0) * inside
    kept = np.zeros(0, np.int64)
    draws = 2 * k + 8
    while len(kept) < k:
        u = rng.random(draws) * total
        in_range = u < INVITE_MATCH_WEIGHT * inside
        x = np.where(in_range, cum[a] + u / INVITE_MATCH_WEIGHT, u - INVITE_MATCH_WEIGHT * inside)
        x = np.where(~in_range & (x >= cum[a]), x + inside, x)
        position = np.clip(np.searchsorted(cum, x, "right") - 1, 0, len(cum) - 2)
        position = position[joined[position] < created]
        merged = np.concatenate([kept, position])
        _, first = np.unique(merged, return_index=True)
        kept = merged[np.sort(first)]
        draws *= 2
    return kept[:k]


def draw_outcomes(rng, creators: dict, campaigns: dict, camp, who, followers) -> dict:
    """Responses, delivery, realised gmv and orders, and expected gmv of each invitation."""
    lf = creators["log10_f0"][who] - 4.0
    coop, dil = creators["cooperation"][who], creators["diligence"][who]
    created, start, end = (campaigns[k][camp] for k in ("created", "start", "end"))
    commission = campaigns["commission"][camp]
    category = campaigns["category"][camp]
    fit = category_fit(creators, who, category)
    invited = created + rng.uniform(0, 2, len(camp))
    gone_at_invite = creators["churn_day"][who] < invited
    gone_by_end = creators["churn_day"][who] < end

    p_answer = sigmoid(1.0 + 1.0 * coop - 0.25 * lf) * np.where(gone_at_invite, 0.15, 1.0)
    p_accept = sigmoid(-0.3 + 0.9 * coop + 0.4 * dil + 1.2 * (fit - 0.7)
                       + 10.0 * (commission - 0.12) - 0.3 * lf)
    lam = 0.5 + 1.5 * sigmoid(dil)
    p_deliver = (sigmoid(0.8 + 1.2 * coop + 0.6 * dil + 0.5 * np.log(creators["regularity"][who]))
                 * np.where(gone_by_end, 0.1, 1.0))
    week = np.maximum((start // 7).astype(int) - 1, 0)
    views = (followers[who, week] * np.exp(log_views_per_follower(creators, who, start)
                                           + VIEW_NOISE_SD ** 2 / 2) * SHOPPABLE_VIEW_FACTOR)
    unit_price = CATEGORY_PRICE[category] * MARKET_PRICE[campaigns["market"][camp]]
    per_post = (views * BASE_ORDERS_PER_VIEW * creators["sales_effect"][who] * fit
                * unit_price * campaigns["appeal"][camp] * (0.5 + 5.0 * commission))
    expected = p_answer * p_accept * (1.0 + lam) * p_deliver * per_post

    answered = rng.random(len(camp)) < p_answer
    accepted = answered & (rng.random(len(camp)) < p_accept)
    promised = 1 + rng.poisson(lam)
    delivered = rng.binomial(promised, p_deliver)
    latent = delivered * per_post * np.exp(rng.normal(-CAMPAIGN_NOISE_SD ** 2 / 2,
                                                      CAMPAIGN_NOISE_SD, len(camp)))
    orders = np.where(accepted, rng.poisson(latent / unit_price), 0)
    gmv = np.round(orders * unit_price * np.exp(rng.normal(-0.02, 0.2, len(camp))), 2)
    response_hours = rng.exponential(36.0 * np.exp(-0.6 * coop)) + 0.1
    return dict(
        invited=invited, answered=answered, accepted=accepted,
        responded=invited + response_hours / 24.0,
        promised=promised, delivered=delivered, orders=orders, gmv=gmv,
        expected=expected,
    )


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
    return pd.Series(pd.array(values, dtype="Int64")).where(known)


TABLE_ORDER = ("creators", "follower_snapshots", "posts", "campaigns", "invitations",
               "campaign_results")
# What the campaign stage needs of every creator (the rest stays in its block).
POPULATION_KEYS = ("market", "log10_f0", "cooperation", "diligence", "regularity", "churn_day",
                   "joined_day", "declared", "cats", "cat_weights", "sales_effect",
                   "view_quality", "trend", "quality", "viral_day", "viral_boost")


def simulate(cfg: SimConfig) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """The six raw tables and the truth tables of a marketplace drawn from ``cfg``, in
    memory: ``simulate_parts`` with its pieces put together."""
    pieces: dict[str, list[pd.DataFrame]] = {}
    for name, piece in simulate_parts(cfg):
        pieces.setdefault(name, []).append(piece)
    joined = {name: pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
              for name, frames in pieces.items()}
    tables = {name: joined[name] for name in TABLE_ORDER}
    truth = {name.split("/", 1)[1]: frame for name, frame in joined.items() if name.startswith("truth/")}
    return tables, truth


def simulate_parts(cfg: SimConfig, chunk_creators: int | None = None,
                   progress=lambda message: None):
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
        progress(f"creators {blocks[min(first + per_chunk, len(blocks)) - 1][1]:,} of "
                 f"{cfg.creators:,}: {post_offset:,} posts")
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
    real_views, real_followers = grow_audience(rng, creators, owner, day, is_live, is_shop,
                                               cfg.weeks)
    followers = real_followers + bought_followers(rng, creators, real_followers)
    metrics = draw_post_metrics(rng, creators, owner, day, real_views, is_live, is_shop,
                                post_category, followers)
    creator_id = string_ids("c", np.arange(lo, hi))
    pieces = {
        "creators": pd.DataFrame(dict(
            creator_id=pick(creator_id, np.arange(hi - lo)),
            market=pick(MARKETS, creators["market"]),
            joined_at=timestamps(creators["joined_day"]),
            primary_category=pick(CATEGORIES, creators["declared"]),
        )),
        "follower_snapshots": snapshot_table(creators, followers, creator_id, cfg.days),
        "posts": pd.DataFrame(dict(
            post_id=pick(string_ids("p", post_offset + np.arange(len(owner))), np.arange(len(owner))),
            creator_id=pick(creator_id, owner),
            posted_at=timestamps(day),
            format=pick(("video", "live"), is_live.astype(np.int64)),
            category=pick(CATEGORIES, post_category),
            is_shoppable=is_shop,
            **metrics,
        )),
        "truth/creator_traits": traits_table(creators, pick(creator_id, np.arange(hi - lo)),
                                             real_followers),
    }
    return creators, pieces, followers, real_followers


def simulate_campaigns(cfg: SimConfig, creators: dict, followers: np.ndarray,
                       real_followers: np.ndarray, progress=lambda message: None):
    """Yield the campaigns table, then the invitations, campaign_results and
    truth/expected_gmv pieces, one batch of campaigns created in the same week at a time."""
    campaigns = draw_campaigns(np.random.default_rng([cfg.seed, 2]), cfg)
    campaign_id = string_ids("k", np.arange(cfg.campaigns))
    yield "campaigns", pd.DataFrame(dict(
        campaign_id=pick(campaign_id, np.arange(cfg.campaigns)),
        brand_id=pick(string_ids("b", np.arange(campaigns["brand"].max() + 1)), campaigns["brand"]),
        market=pick(MARKETS, campaigns["market"]),
        category=pick(CATEGORIES, campaigns["category"]),
        created_at=timestamps(campaigns["created"]),
        start_at=timestamps(campaigns["start"]),
        end_at=timestamps(campaigns["end"]),
        commission_rate=np.where(campaigns["commission_known"], campaigns["commission"], np.nan),
    ))
    week = (campaigns["created"] // 7).astype(np.int64)  # created is sorted
    invited = 0
    for w in np.unique(week):
        rng = np.random.default_rng([cfg.seed, 3, int(w)])
        cs = np.flatnonzero(week == w)
        camp, who = invite(rng, creators, campaigns, cs, followers)
        outcome = draw_outcomes(rng, creators, campaigns, camp, who, real_followers)
        accepted = outcome["accepted"]
        invited += len(camp)
        yield "invitations", pd.DataFrame(dict(
            campaign_id=pick(campaign_id, camp),
            creator_id=pick(string_ids("c", who), np.arange(len(who))),
            invited_at=timestamps(outcome["invited"]),
            response=pick(("no_response", "declined", "accepted"),
                          outcome["answered"].astype(np.int64) + accepted),
            responded_at=timestamps(outcome["responded"]).where(outcome["answered"]),
            posts_promised=nullable_ints(outcome["promised"], accepted),
            posts_delivered=nullable_ints(outcome["delivered"], accepted),
        ))
        yield "campaign_results", pd.DataFrame(dict(
            campaign_id=pick(campaign_id, camp[accepted]),
            creator_id=pick(string_ids("c", who[accepted]), np.arange(int(accepted.sum()))),
            gmv=outcome["gmv"][accepted],
            orders=outcome["orders"][accepted].astype(np.int64),
        ))
        yield "truth/expected_gmv", pd.DataFrame(dict(
            campaign_id=pick(campaign_id, camp),
            creator_id=pick(string_ids("c", who), np.arange(len(who))),
            expected_gmv=outcome["expected"],
        ))
    progress(f"campaigns {cfg.campaigns:,}: {invited:,} invitations")


def snapshot_table(creators: dict, followers: np.ndarray, creator_id: pa.Array,
                   days: int) -> pd.DataFrame:
    """Weekly follower counts at the end of each week's last day, from joining to the end."""
    weeks = followers.shape[1]
    snap_day = 7 * np.arange(weeks) + 6
    live = (snap_day[None, :] >= creators["joined_day"][:, None]) & (snap_day[None, :] < days)
    who, week = np.nonzero(live)
    return pd.DataFrame(dict(
        creator_id=pick(creator_id, who),
        snapshot_date=timestamps(snap_day[week].astype(float)),
        followers=np.round(followers[who, week]).astype(np.int64),
    ))


def traits_table(creators: dict, creator_id: pd.Series, real_followers: np.ndarray
                 ) -> pd.DataFrame:
    """Every hidden trait per creator (the truth a model can only approximate), and
    ``real_growth_90d``: log real (unbought) followers at the last week against 13 weeks
    earlier, the creator's true audience growth at the end of the data."""
    out = pd.DataFrame(dict(creator_id=creator_id))
    for name in ("quality", "sales_skill", "cooperation", "diligence", "trend",
                 "posting_rate", "regularity", "joined_day", "churn_day", "fake",
                 "viral", "viral_day", "viral_boost",
                 "log10_f0", "follow_rate", "live_share", "shoppable_share"):
        out[name] = creators[name]
    last = real_followers.shape[1] - 1
    out["real_growth_90d"] = np.log(real_followers[:, last] / real_followers[:, max(last - 13, 0)])
    for k in range(3):
        out[f"category_{k + 1}"] = pick(CATEGORIES, creators["cats"][:, k])
        out[f"affinity_{k + 1}"] = creators["cat_weights"][:, k]
    return out
