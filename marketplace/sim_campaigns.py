"""Simulated campaigns: who brands invite, how creators answer and deliver, what sells,
and the expected gmv that is the truth.

The model of what drives what is told in ``marketplace.simulate``'s docstring.
"""

from __future__ import annotations

import numpy as np

from marketplace.sim_creators import category_fit, log_views_per_follower
from marketplace.sim_world import (
    BASE_ORDERS_PER_VIEW,
    CAMPAIGN_NOISE_SD,
    CATEGORIES,
    CATEGORY_PRICE,
    CATEGORY_SHARE,
    MARKET_PRICE,
    MARKETS,
    SHOPPABLE_VIEW_FACTOR,
    VIEW_NOISE_SD,
    SimConfig,
    sigmoid,
)


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
        created=created,
        start=start,
        end=end,
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


def _weighted_sample(
    rng, cum: np.ndarray, a: int, b: int, joined: np.ndarray, created: float, k: int
) -> np.ndarray:
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
    p_accept = sigmoid(
        -0.3 + 0.9 * coop + 0.4 * dil + 1.2 * (fit - 0.7) + 10.0 * (commission - 0.12) - 0.3 * lf
    )
    lam = 0.5 + 1.5 * sigmoid(dil)
    p_deliver = sigmoid(
        0.8 + 1.2 * coop + 0.6 * dil + 0.5 * np.log(creators["regularity"][who])
    ) * np.where(gone_by_end, 0.1, 1.0)
    week = np.maximum((start // 7).astype(int) - 1, 0)
    views = (
        followers[who, week]
        * np.exp(log_views_per_follower(creators, who, start) + VIEW_NOISE_SD**2 / 2)
        * SHOPPABLE_VIEW_FACTOR
    )
    unit_price = CATEGORY_PRICE[category] * MARKET_PRICE[campaigns["market"][camp]]
    per_post = (
        views
        * BASE_ORDERS_PER_VIEW
        * creators["sales_effect"][who]
        * fit
        * unit_price
        * campaigns["appeal"][camp]
        * (0.5 + 5.0 * commission)
    )
    expected = p_answer * p_accept * (1.0 + lam) * p_deliver * per_post

    answered = rng.random(len(camp)) < p_answer
    accepted = answered & (rng.random(len(camp)) < p_accept)
    promised = 1 + rng.poisson(lam)
    delivered = rng.binomial(promised, p_deliver)
    latent = (
        delivered
        * per_post
        * np.exp(rng.normal(-(CAMPAIGN_NOISE_SD**2) / 2, CAMPAIGN_NOISE_SD, len(camp)))
    )
    orders = np.where(accepted, rng.poisson(latent / unit_price), 0)
    gmv = np.round(orders * unit_price * np.exp(rng.normal(-0.02, 0.2, len(camp))), 2)
    response_hours = rng.exponential(36.0 * np.exp(-0.6 * coop)) + 0.1
    return dict(
        invited=invited,
        answered=answered,
        accepted=accepted,
        responded=invited + response_hours / 24.0,
        promised=promised,
        delivered=delivered,
        orders=orders,
        gmv=gmv,
        expected=expected,
    )
