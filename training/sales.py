"""Expected sales: a creator's expected gmv for a brief, with an 80 % interval.

The ranker orders creators; ``SalesModel`` says how much a creator is likely to sell for
one brief (its market, category and commission), in the data's currency. It is fitted on
the **validation campaigns** of the evaluated model (campaigns before the test period
that the ranker was not fitted on), from what is known at brief time:

- **Mean** (``fit_sales_model``): a Poisson regression with log link, log E[gmv] =
  curve(score) + market + category + commission x c + provisional x p, where curve is
  piecewise linear in the model's 0-100 score between ``SCORE_KNOTS`` and made
  non-decreasing (so within a brief, expected gmv never falls as the rank improves). A
  Poisson regression with these terms matches the calibration pairs' total gmv in every
  market, category and score band; the score (not the raw output) is its input, so the
  mapping carries over from the evaluated model to the served one, whose raw scale
  differs but whose score has the same meaning.
- **Interval** (split conformal, Mondrian): per group (``provisional``, ``established``)
  and band of expected gmv (up to ``MAX_BANDS`` bands of at least ``MIN_BAND_ROWS``
  calibration rows), the realised / expected ratios of the calibration rows give the
  interval's ends. A single (campaign, invitee) row often sells nothing (a declined or
  silent invitation): where at least 10 % of a band's rows sold nothing, the interval is
  [0, the 80th percentile] (the narrowest that holds 80 % of the rows); otherwise
  [10th, 90th percentile]. Provisional creators are banded on their own rows, so their
  intervals are as wide as their own errors.

A creator is **provisional** (``provisional``) when its history is too thin for the model
to be sure: ``PROVISIONAL_RULES``. Nothing here is pickled: ``as_dict`` is plain JSON.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from sklearn.linear_model import PoissonRegressor

SCORE_KNOTS = (0.0, 25.0, 50.0, 70.0, 80.0, 90.0, 95.0, 98.0, 100.0)
MIN_TENURE_DAYS = 90
PROVISIONAL_RULES = {
    "tenure": f"fewer than {MIN_TENURE_DAYS} days since joining the affiliate programme",
    "posts": "fewer than 3 posts in the last 180 days, or none of them measured "
    "(no engagement index)",
    "sales": "no measured shoppable post (no sales index)",
    "campaigns": "no ended campaign with a delivered post (campaigns_delivered = 0)",
}
GROUPS = ("established", "provisional")
SALES_COLUMNS = ("expected_gmv", "gmv_low", "gmv_high", "provisional")
COVERAGE = 0.8
MAX_BANDS, MIN_BAND_ROWS = 5, 200
ALPHA = 1e-4  # a little ridge: keeps rare markets and categories near the average


PROVISIONAL_FEATURES = (
    "tenure_days",
    "posts_per_week_180d",
    "views_per_follower_180d",
    "log_gmv_per_shoppable_post_all",
    "campaigns_delivered",
)


def provisional(features) -> np.ndarray:
    """True where a creator's history is too thin to be sure (``PROVISIONAL_RULES``;
    the posts and sales rules are those of the engagement and sales indices,
    ``features.indices.HISTORY_RULES``). ``features``: anything indexable by the names
    of ``PROVISIONAL_FEATURES``."""
    column = {
        name: pd.Series(np.asarray(features[name], dtype=float)) for name in PROVISIONAL_FEATURES
    }
    posts_180d = column["posts_per_week_180d"] * (180 / 7)
    thin = (
        (column["tenure_days"].fillna(0) < MIN_TENURE_DAYS)
        | ~((posts_180d >= 3 - 1e-9) & column["views_per_follower_180d"].notna())
        | column["log_gmv_per_shoppable_post_all"].isna()
        | (column["campaigns_delivered"].fillna(0) < 1)
    )
    return thin.to_numpy(dtype=bool)


@dataclass
class SalesModel:
    """Expected gmv and its 80 % interval (module doc); every field plain JSON."""

    knots: list[float]  # score knots
    curve: list[float]  # log expected gmv at the knots (non-decreasing), intercept included
    market: dict[str, float]  # log effect per market (0 for an unknown market)
    category: dict[str, float]  # log effect per category
    commission: float  # log effect per unit of commission rate
    commission_default: float  # used where a pair's commission is missing
    provisional: float  # log effect of being provisional
    bands: dict[str, dict]  # group -> {"edges": [...], "low": [...], "high": [...]}
    calibration_rows: int = 0

    def expected(self, score, market, category, commission, provisional) -> np.ndarray:
        """Expected gmv (the data's currency) of each row (arrays aligned by position)."""
        commission = np.asarray(commission, dtype=float)
        commission = np.where(np.isnan(commission), self.commission_default, commission)
        log = (
            np.interp(np.asarray(score, dtype=float), self.knots, self.curve)
            + pd.Series(np.asarray(market, dtype=object)).map(self.market).fillna(0.0).to_numpy()
            + pd.Series(np.asarray(category, dtype=object))
            .map(self.category)
            .fillna(0.0)
            .to_numpy()
            + self.commission * commission
            + self.provisional * np.asarray(provisional, dtype=float)
        )
        return np.exp(log)

    def interval(self, expected, provisional) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) of the 80 % interval of each row's realised gmv."""
        expected = np.asarray(expected, dtype=float)
        provisional = np.asarray(provisional, dtype=bool)
        low, high = np.zeros(len(expected)), np.zeros(len(expected))
        for name, rows in ((GROUPS[0], ~provisional), (GROUPS[1], provisional)):
            band = self.bands[name]
            at = np.searchsorted(band["edges"], expected[rows], side="right")
            low[rows] = expected[rows] * np.asarray(band["low"])[at]
            high[rows] = expected[rows] * np.asarray(band["high"])[at]
        return low, high

    def predict(self, score, market, category, commission, is_provisional) -> pd.DataFrame:
        """``expected_gmv``, ``gmv_low`` and ``gmv_high`` of each row."""
        expected = self.expected(score, market, category, commission, is_provisional)
        low, high = self.interval(expected, is_provisional)
        return pd.DataFrame({"expected_gmv": expected, "gmv_low": low, "gmv_high": high})

    def as_dict(self) -> dict:
        """The model as plain JSON values."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> SalesModel:
        """The model of ``as_dict``."""
        return cls(**values)


def _hat_basis(score: np.ndarray, knots) -> np.ndarray:
    """Piecewise-linear interpolation weights of ``score`` on ``knots`` (rows sum to 1)."""
    eye = np.eye(len(knots))
    return np.column_stack([np.interp(score, knots, eye[j]) for j in range(len(knots))])


def fit_sales_model(calibration: pd.DataFrame) -> SalesModel:
    """The SalesModel of calibration pairs: columns ``score``, ``market``, ``category``,
    ``commission_rate``, ``provisional`` and the realised ``gmv`` (module doc)."""
    frame = calibration.reset_index(drop=True)
    gmv = frame["gmv"].to_numpy(dtype=float)
    scale = max(float(gmv.mean()), 1e-9)  # y of mean 1: the ridge means the same at any scale
    commission_default = float(np.nanmedian(frame["commission_rate"].to_numpy(dtype=float)))
    if np.isnan(commission_default):
        commission_default = 0.0
    commission = frame["commission_rate"].fillna(commission_default).to_numpy(dtype=float)
    markets = sorted(frame["market"].astype(str).unique())
    categories = sorted(frame["category"].astype(str).unique())
    knots = list(SCORE_KNOTS)
    design = np.column_stack(
        [
            _hat_basis(frame["score"].to_numpy(dtype=float), knots),
            (frame["market"].astype(str).to_numpy()[:, None] == np.array(markets)).astype(float),
            (frame["category"].astype(str).to_numpy()[:, None] == np.array(categories)),
            commission,
            frame["provisional"].to_numpy(dtype=float),
        ]
    ).astype(float)
    glm = PoissonRegressor(alpha=ALPHA, solver="newton-cholesky", max_iter=300)
    glm.fit(design, gmv / scale)
    coef = glm.coef_
    k, m = len(knots), len(markets)
    curve = np.maximum.accumulate(coef[:k]) + glm.intercept_ + math.log(scale)
    model = SalesModel(
        knots=knots,
        curve=curve.tolist(),
        market=dict(zip(markets, coef[k : k + m].tolist(), strict=True)),
        category=dict(zip(categories, coef[k + m : -2].tolist(), strict=True)),
        commission=float(coef[-2]),
        commission_default=commission_default,
        provisional=float(coef[-1]),
        bands={},
        calibration_rows=len(frame),
    )
    expected = model.expected(
        frame["score"],
        frame["market"].astype(str),
        frame["category"].astype(str),
        commission,
        frame["provisional"],
    )
    is_provisional = frame["provisional"].to_numpy(dtype=bool)
    model.bands = {
        name: interval_bands(expected[rows], gmv[rows])
        for name, rows in ((GROUPS[0], ~is_provisional), (GROUPS[1], is_provisional))
    }
    return model


def interval_bands(expected: np.ndarray, gmv: np.ndarray) -> dict:
    """Bands of expected gmv (edges between them) and each band's ratio ends (module
    doc); without rows, one band of [0, 1] x expected."""
    count = max(1, min(MAX_BANDS, len(expected) // MIN_BAND_ROWS))
    edges: np.ndarray | list = (
        np.unique(np.quantile(expected, np.arange(1, count) / count)) if count > 1 else []
    )
    band = np.searchsorted(edges, expected, side="right")
    ratio = gmv / np.maximum(expected, 1e-12)
    ends = [ratio_ends(ratio[band == b]) for b in range(len(edges) + 1)]
    return {
        "edges": [float(e) for e in edges],
        "low": [e[0] for e in ends],
        "high": [e[1] for e in ends],
    }


def ratio_ends(ratio: np.ndarray) -> tuple[float, float]:
    """(low, high) realised / expected ratios holding ``COVERAGE`` of ``ratio``: [0, the
    80th percentile] when at least 10 % sold nothing, else [10th, 90th]; the split
    conformal quantile (rank ceil((n + 1) q) of n)."""
    r = np.sort(np.asarray(ratio, dtype=float))
    n = len(r)
    if n == 0:
        return 0.0, 1.0
    tail = 1.0 - COVERAGE
    zero_share = float(np.mean(r <= 0))

    def at(q: float) -> float:
        return float(r[min(n - 1, max(0, math.ceil((n + 1) * q) - 1))])

    if zero_share >= tail / 2:
        return 0.0, at(COVERAGE)
    return at(tail / 2), at(1 - tail / 2)


def sales_metrics(predicted: pd.DataFrame, gmv, is_provisional, truth=None) -> dict:
    """Test metrics of the predictions (``SalesModel.predict``) against realised ``gmv``
    (and ``truth``, the expected gmv, when given): interval coverage (all, per group),
    mean interval width / expected per group, realised / predicted by decile of
    predicted gmv (deciles of at least 100 rows), and its worst decile."""
    gmv = np.asarray(gmv, dtype=float)
    is_provisional = np.asarray(is_provisional, dtype=bool)
    expected = predicted["expected_gmv"].to_numpy(dtype=float)
    low, high = predicted["gmv_low"].to_numpy(), predicted["gmv_high"].to_numpy()
    covered = (gmv >= low - 1e-9) & (gmv <= high + 1e-9)
    width = (high - low) / np.maximum(expected, 1e-12)
    out: dict = {
        "sales_coverage": {
            "all": float(covered.mean()),
            **{
                g: float(covered[rows].mean()) if rows.any() else float("nan")
                for g, rows in zip(GROUPS, (~is_provisional, is_provisional), strict=True)
            },
        },
        "sales_provisional_share": float(is_provisional.mean()),
        "sales_interval_width": {
            g: float(width[rows].mean()) if rows.any() else float("nan")
            for g, rows in zip(GROUPS, (~is_provisional, is_provisional), strict=True)
        },
        "sales_ratio": float(gmv.sum() / max(expected.sum(), 1e-12)),
        "sales_calibration": decile_ratios(expected, gmv),
    }
    if truth is not None:
        out["sales_calibration_truth"] = decile_ratios(expected, np.asarray(truth, dtype=float))
    return out


def decile_ratios(expected: np.ndarray, observed: np.ndarray, min_rows: int = 100) -> dict:
    """Mean observed / mean expected per decile of expected (``decile1`` lowest), for
    deciles of at least ``min_rows`` rows."""
    if len(expected) == 0:
        return {}
    decile = np.minimum(
        (pd.Series(expected).rank(method="first").to_numpy() - 1) * 10 // len(expected), 9
    ).astype(int)
    out = {}
    for d in range(10):
        rows = decile == d
        if rows.sum() >= min_rows:
            out[f"decile{d + 1}"] = float(observed[rows].mean() / max(expected[rows].mean(), 1e-12))
    return out


def context_of(campaign_ids, campaigns: pd.DataFrame) -> pd.DataFrame:
    """``market`` and ``category`` (text) of each campaign id, from the campaigns table."""
    context = campaigns.set_index("campaign_id")[["market", "category"]]
    found = context.reindex(pd.Index(np.asarray(campaign_ids, dtype=object)))
    return pd.DataFrame({c: found[c].astype(str).to_numpy() for c in ("market", "category")})


def calibration_frame(
    labels: pd.DataFrame, columns, score, campaigns: pd.DataFrame
) -> pd.DataFrame:
    """The pairs ``labels`` (campaign_id, creator_id, gmv, commission_rate) with the
    model's ``score``, their campaign's market and category and whether the creator is
    ``provisional`` (from ``columns``, the pairs' features by name): what
    ``fit_sales_model`` reads."""
    context = context_of(labels["campaign_id"], campaigns)
    return pd.DataFrame(
        {
            "campaign_id": labels["campaign_id"].to_numpy(),
            "creator_id": labels["creator_id"].to_numpy(),
            "gmv": labels["gmv"].to_numpy(dtype=float),
            "commission_rate": labels["commission_rate"].to_numpy(dtype=float),
            "score": np.asarray(score, dtype=float),
            "market": context["market"].to_numpy(),
            "category": context["category"].to_numpy(),
            "provisional": provisional(columns),
        }
    )
