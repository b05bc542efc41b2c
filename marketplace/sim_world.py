"""The simulated marketplace's world: its markets, categories and prices, the constants of
its draws, the scenarios and the scale and seed of a run (``SimConfig``).

The model of what drives what is told in ``marketplace.simulate``'s docstring.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

START = pd.Timestamp("2024-07-01", tz="UTC")
MARKETS = ("ID", "VN", "TH", "PH", "MY", "GB", "SG")
MARKET_SHARE = np.array([0.24, 0.17, 0.16, 0.15, 0.10, 0.12, 0.06])
MARKET_PRICE = np.array([0.7, 0.7, 0.9, 0.7, 1.0, 2.0, 1.8])
CATEGORIES = (
    "beauty",
    "fashion",
    "food",
    "home",
    "electronics",
    "health",
    "baby",
    "sports",
    "toys",
    "pets",
)
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


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("default", "the reference world"),
        Scenario(
            "sales-led",
            "selling skill drives sales far more than reach",
            sales_weight=1.1,
            view_quality_weight=0.3,
        ),
        Scenario(
            "engagement-led",
            "reach and content quality drive sales; selling skill less",
            sales_weight=0.35,
            view_quality_weight=0.8,
        ),
        Scenario(
            "heavy-fake", "a quarter of creators buy engagement and followers", fake_share=0.25
        ),
        Scenario(
            "many-new", "most creators join during the period: short histories", new_share=0.75
        ),
    )
}


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
            raise ValueError(
                f"--scenario: unknown {self.scenario!r}; choose from {', '.join(SCENARIOS)}"
            )
        unknown = sorted(set(self.markets) - set(MARKETS))
        if unknown or not self.markets:
            raise ValueError(
                f"--markets: {', '.join(unknown) or 'none given'}; choose from {', '.join(MARKETS)}"
            )
        if self.creators < 10:
            raise ValueError(f"--creators must be at least 10, got {self.creators}")
        if self.days < 120:
            raise ValueError(f"--days must be at least 120, got {self.days}")
        if self.block < 1:
            raise ValueError(f"block must be at least 1, got {self.block}")

    @property
    def world(self) -> Scenario:
        """The scenario that ``scenario`` names."""
        return SCENARIOS[self.scenario]

    @property
    def market_share(self) -> np.ndarray:
        """The pilot markets' shares, restricted to ``markets`` and renormalised."""
        share = np.where(np.isin(MARKETS, self.markets), MARKET_SHARE, 0.0)
        return share / share.sum()

    @property
    def weeks(self) -> int:
        """Weeks in ``days``, counting a partial last one: the weekly follower matrix's columns."""
        return self.days // 7 + 1

    @property
    def campaigns(self) -> int:
        """About 0.54 campaigns per creator per 540 days (2M pairs at 100K creators)."""
        return max(20, round(self.creators * self.days / 1000))


def sigmoid(x):
    """The logistic function 1 / (1 + e^-x), elementwise."""
    return 1.0 / (1.0 + np.exp(-x))
