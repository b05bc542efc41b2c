"""Expected sales: a creator's expected gmv for a brief, with an 80 % interval.

The ranker orders creators; ``SalesModel`` says how much a creator is likely to sell for
one brief (its market, category and commission), in the data's currency. It is fitted on
the **calibration campaigns** of the evaluated model: every backtest fold's validation
campaigns and the earlier folds' test campaigns, each scored by its own fold's model
(all before the test period; none of them fitted on by the model that scores them),
from what is known at brief time:

- **Mean** (``fit_sales_model``): a Poisson regression with log link, log E[gmv] =
  curve(score) + market + category + commission x c + provisional x p, where curve is
  piecewise linear in the model's 0-100 score between ``SCORE_KNOTS`` and made
  non-decreasing (so within a brief, expected gmv never falls as the rank improves). A
  Poisson regression with these terms matches the calibration pairs' total gmv in every
  market, category and score band; the score (not the raw output) is its input, so the
  mapping carries over from the evaluated model to the served one, whose raw scale
  differs but whose score has the same meaning.
- **Chance of a sale** (``chance_of_sale``): a logistic regression on the same terms.
  Most invitations sell nothing (declined, silent, or no order): realised gmv is 0 with
  chance 1 - chance_of_sale, else expected / chance_of_sale x a ratio drawn from the
  calibration rows that sold (``sold_bands``: per group, ``provisional`` and
  ``established``, and band of expected gmv).
- **Interval** (``interval_ends``): the part of that distribution holding the group's
  ``level``: [0, 0] when selling nothing is at least that likely, else [0, the level's
  quantile] while selling nothing is at least (1 - level) / 2 likely, else the central
  part (a lower end above 0). The level is calibrated per group on the group's own
  calibration rows so that they are covered ``COVERAGE`` (80 %) of the time
  (``coverage_at``; split conformal in spirit), provisional rows on provisional rows.
- **Ties at 0, the randomised rule**: a single outcome that is 0 with chance above 80 %
  has no interval holding exactly 80 %; [0, 0] holds with that chance. Coverage counts
  a realised 0 in a [0, 0] interval as level / chance of nothing (the chance a
  randomised interval, [0, 0] that often and empty otherwise, would hold it), so that
  80 % means 80 %; ``sales_metrics`` also reports the plain coverage of the intervals as
  shown (every such 0 counting 1), which is higher by construction.

A creator is **provisional** (``provisional``) when its history is too thin for the model
to be sure: ``PROVISIONAL_RULES``. Nothing here is pickled: ``as_dict`` is plain JSON.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression, PoissonRegressor

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
# the forecast of a row: expected gmv, its 80 % interval and the chance of any sale (0-1)
SALES_VALUES = ("expected_gmv", "gmv_low", "gmv_high", "chance_of_sale")
SALES_COLUMNS = (*SALES_VALUES, "provisional")
COVERAGE = 0.8
MAX_BANDS, MIN_BAND_ROWS = 5, 200  # bands of rows that sold
QUANTILE_LEVELS = np.linspace(0.0, 1.0, 101)
BOOTSTRAP_SAMPLES = 1000
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
    sale: dict  # the chance of a sale: logit terms, keys as above (curve, market, ...)
    bands: dict  # group -> {"level", "edges", "quantiles"} (``sold_bands``)
    calibration_rows: int = 0

    def _commission(self, commission) -> np.ndarray:
        commission = np.asarray(commission, dtype=float)
        return np.where(np.isnan(commission), self.commission_default, commission)

    def expected(self, score, market, category, commission, provisional) -> np.ndarray:
        """Expected gmv (the data's currency) of each row (arrays aligned by position)."""
        return np.exp(
            linear_terms(
                {
                    "curve": self.curve,
                    "market": self.market,
                    "category": self.category,
                    "commission": self.commission,
                },
                self.knots,
                score,
                market,
                category,
                self._commission(commission),
            )
            + self.provisional * np.asarray(provisional, dtype=float)
        )

    def chance_of_sale(self, score, market, category, commission, provisional) -> np.ndarray:
        """The chance (0-1) that the row sells anything at all."""
        logit = linear_terms(
            self.sale, self.knots, score, market, category, self._commission(commission)
        ) + self.sale["provisional"] * np.asarray(provisional, dtype=float)
        return 1.0 / (1.0 + np.exp(-logit))

    def interval(self, expected, chance, provisional) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) of the 80 % interval of each row's realised gmv, from its expected
        gmv and chance of a sale (module doc)."""
        expected = np.asarray(expected, dtype=float)
        provisional = np.asarray(provisional, dtype=bool)
        low, high = np.zeros(len(expected)), np.zeros(len(expected))
        for name, rows in ((GROUPS[0], ~provisional), (GROUPS[1], provisional)):
            low[rows], high[rows] = interval_ends(
                self.bands[name], expected[rows], np.asarray(chance, dtype=float)[rows]
            )
        return low, high

    def zero_covered(self, predicted: pd.DataFrame, provisional) -> np.ndarray:
        """The weight a realised 0 counts as covered by each row's interval (the
        randomised tie rule, module doc): 1 where the interval runs from 0 to above 0,
        level / chance of selling nothing where it is [0, 0], 0 where it starts above 0."""
        low = predicted["gmv_low"].to_numpy(dtype=float)
        high = predicted["gmv_high"].to_numpy(dtype=float)
        nothing = 1.0 - predicted["chance_of_sale"].to_numpy(dtype=float)
        level = np.where(
            np.asarray(provisional, dtype=bool),
            self.bands[GROUPS[1]]["level"],
            self.bands[GROUPS[0]]["level"],
        )
        return np.where(low > 0, 0.0, np.where(high > 0, 1.0, tie_weight(level, nothing)))

    def predict(self, score, market, category, commission, is_provisional) -> pd.DataFrame:
        """``expected_gmv``, ``gmv_low``, ``gmv_high`` and ``chance_of_sale`` of each row."""
        args = (score, market, category, commission, is_provisional)
        expected, chance = self.expected(*args), self.chance_of_sale(*args)
        low, high = self.interval(expected, chance, is_provisional)
        return pd.DataFrame(
            {"expected_gmv": expected, "gmv_low": low, "gmv_high": high, "chance_of_sale": chance}
        )

    def as_dict(self) -> dict:
        """The model as plain JSON values."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> SalesModel:
        """The model of ``as_dict``."""
        return cls(**values)


def linear_terms(terms: dict, knots, score, market, category, commission) -> np.ndarray:
    """curve(score) + market + category + commission x rate of ``terms`` (keys ``curve``,
    ``market``, ``category``, ``commission``; unknown markets and categories 0)."""
    return (
        np.interp(np.asarray(score, dtype=float), knots, terms["curve"])
        + pd.Series(np.asarray(market, dtype=object)).map(terms["market"]).fillna(0.0).to_numpy()
        + pd.Series(np.asarray(category, dtype=object))
        .map(terms["category"])
        .fillna(0.0)
        .to_numpy()
        + terms["commission"] * np.asarray(commission, dtype=float)
    )


def _hat_basis(score: np.ndarray, knots) -> np.ndarray:
    """Piecewise-linear interpolation weights of ``score`` on ``knots`` (rows sum to 1)."""
    eye = np.eye(len(knots))
    return np.column_stack([np.interp(score, knots, eye[j]) for j in range(len(knots))])


def _design(frame: pd.DataFrame, knots, markets, categories, commission) -> np.ndarray:
    """Hat basis of the score, market and category indicators, commission, provisional."""
    return np.column_stack(
        [
            _hat_basis(frame["score"].to_numpy(dtype=float), knots),
            (frame["market"].astype(str).to_numpy()[:, None] == np.array(markets)),
            (frame["category"].astype(str).to_numpy()[:, None] == np.array(categories)),
            commission,
            frame["provisional"].to_numpy(dtype=float),
        ]
    ).astype(float)


def _terms(coef, intercept, knots, markets, categories) -> dict:
    """The fitted coefficients of ``_design`` as named terms (the curve holds the intercept)."""
    k, m = len(knots), len(markets)
    return {
        "curve": (np.asarray(coef[:k]) + intercept).tolist(),
        "market": dict(zip(markets, coef[k : k + m].tolist(), strict=True)),
        "category": dict(zip(categories, coef[k + m : -2].tolist(), strict=True)),
        "commission": float(coef[-2]),
        "provisional": float(coef[-1]),
    }


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
    design = _design(frame, knots, markets, categories, commission)
    glm = PoissonRegressor(alpha=ALPHA, solver="newton-cholesky", max_iter=300)
    glm.fit(design, gmv / scale)
    mean = _terms(glm.coef_, glm.intercept_ + math.log(scale), knots, markets, categories)
    mean["curve"] = np.maximum.accumulate(mean["curve"]).tolist()
    sold = gmv > 0
    sale: dict = {"curve": [0.0] * len(knots), "market": {}, "category": {}, "commission": 0.0}
    if sold.all() or not sold.any():  # one class: a constant chance
        share = min(max(float(sold.mean()), 1e-6), 1 - 1e-6)
        sale.update(curve=[math.log(share / (1 - share))] * len(knots), provisional=0.0)
    else:
        logistic = LogisticRegression(
            C=1.0 / (ALPHA * len(frame)), solver="newton-cholesky", max_iter=300
        )
        logistic.fit(design, sold)
        sale = _terms(logistic.coef_[0], logistic.intercept_[0], knots, markets, categories)
    model = SalesModel(
        knots=knots,
        **{k: v for k, v in mean.items()},
        commission_default=commission_default,
        sale=sale,
        bands={},
        calibration_rows=len(frame),
    )
    args = (
        frame["score"],
        frame["market"].astype(str),
        frame["category"].astype(str),
        commission,
        frame["provisional"],
    )
    expected, chance = model.expected(*args), model.chance_of_sale(*args)
    is_provisional = frame["provisional"].to_numpy(dtype=bool)
    model.bands = {
        name: sold_bands(expected[rows], chance[rows], gmv[rows])
        for name, rows in ((GROUPS[0], ~is_provisional), (GROUPS[1], is_provisional))
    }
    return model


def sold_bands(expected: np.ndarray, chance: np.ndarray, gmv: np.ndarray) -> dict:
    """One group's interval rule (module doc): bands of expected gmv (``edges`` between
    them) over its rows that sold, each band's ``quantiles`` of realised / expected-if-sold
    gmv at ``QUANTILE_LEVELS``, and the ``level`` at which the intervals of the group's
    rows cover ``COVERAGE`` of them (``coverage_at``)."""
    sold = gmv > 0
    count = max(1, min(MAX_BANDS, int(sold.sum()) // MIN_BAND_ROWS))
    edges: np.ndarray | list = (
        np.unique(np.quantile(expected[sold], np.arange(1, count) / count)) if count > 1 else []
    )
    ratio = gmv * chance / np.maximum(expected, 1e-12)
    band = np.searchsorted(edges, expected, side="right")
    quantiles = [
        np.quantile(ratio[sold & (band == b)], QUANTILE_LEVELS).tolist()
        if (sold & (band == b)).any()
        else [1.0] * len(QUANTILE_LEVELS)
        for b in range(len(edges) + 1)
    ]
    rule: dict = {"level": COVERAGE, "edges": [float(e) for e in edges], "quantiles": quantiles}
    if len(gmv):
        low, high = 0.5, 1.0 - 1e-9  # coverage rises with the level: bisect
        for _ in range(40):
            rule["level"] = (low + high) / 2
            if coverage_at(rule, expected, chance, gmv) < COVERAGE:
                low = rule["level"]
            else:
                high = rule["level"]
        rule["level"] = high
    return rule


def interval_ends(rule: dict, expected, chance) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) of each row under one group's ``rule`` (``sold_bands``): the row's
    realised gmv is 0 with chance 1 - ``chance`` and otherwise expected / chance x a
    ratio drawn from its band's quantiles. The interval holds ``rule["level"]`` of that
    distribution: [0, 0] when nothing is that likely, else [0, the level's quantile]
    when nothing is at least (1 - level) / 2 likely, else its central part."""
    expected, chance = np.asarray(expected, dtype=float), np.asarray(chance, dtype=float)
    level, nothing = rule["level"], 1.0 - chance
    if_sold = expected / np.maximum(chance, 1e-12)
    band = np.searchsorted(rule["edges"], expected, side="right")
    table = np.asarray(rule["quantiles"], dtype=float)

    def at(q: np.ndarray) -> np.ndarray:  # quantile q of the whole distribution (0 in the atom)
        within = np.clip((q - nothing) / np.maximum(chance, 1e-12), 0.0, 1.0)
        ratio = np.zeros(len(within))
        for b in np.unique(band):
            ratio[band == b] = np.interp(within[band == b], QUANTILE_LEVELS, table[b])
        return np.where(q <= nothing, 0.0, if_sold * ratio)

    one_sided = nothing >= (1 - level) / 2
    low = np.where(one_sided, 0.0, at(np.full(len(expected), (1 - level) / 2)))
    high = at(np.where(one_sided, level, (1 + level) / 2))
    return low, high


def tie_weight(level, nothing) -> np.ndarray:
    """The randomised tie rule: the weight a realised 0 in a [0, 0] interval counts as
    covered, level / chance of selling nothing (at most 1)."""
    return np.minimum(1.0, level / np.maximum(nothing, 1e-12))


def covered(gmv: np.ndarray, low, high, at_zero=1.0) -> np.ndarray:
    """Per row, 1 where realised ``gmv`` lies in [``low``, ``high``], else 0; a realised
    0 in a [0, 0] interval counts ``at_zero`` (1: the intervals as shown)."""
    inside = ((gmv >= low - 1e-9) & (gmv <= high + 1e-9)).astype(float)
    tie = (gmv <= 0) & (np.asarray(high) <= 0)
    return np.where(tie, at_zero, inside)


def coverage_at(rule: dict, expected, chance, gmv) -> float:
    """Mean coverage of realised ``gmv`` by the intervals of ``rule``, a realised 0 in a
    [0, 0] interval counting by the randomised tie rule (``tie_weight``)."""
    low, high = interval_ends(rule, expected, chance)
    nothing = 1.0 - np.asarray(chance, dtype=float)
    return float(covered(gmv, low, high, tie_weight(rule["level"], nothing)).mean())


def sales_metrics(
    predicted: pd.DataFrame,
    gmv,
    is_provisional,
    zero_covered=None,
    truth=None,
    campaign=None,
) -> dict:
    """Test metrics of the predictions (``SalesModel.predict``) against realised ``gmv``
    (and ``truth``, the expected gmv, when given):

    - ``sales_coverage`` (all, per group): a realised 0 in a [0, 0] interval counting
      ``zero_covered`` (``SalesModel.zero_covered``: the randomised tie rule; plain
      coverage when None), ``sales_coverage_plain`` every realised 0 in it counting 1,
      ``sales_zero_intervals`` the share of [0, 0] intervals;
    - mean interval width / expected per group, realised / predicted over all rows;
    - ``sales_calibration``: realised / predicted by decile of predicted gmv (deciles of
      at least 100 rows); ``sales_calibration_trimmed`` the same without the largest
      0.1 % of realised rows; ``sales_calibration_interval`` (with ``campaign``, each row's
      campaign) the 90 % interval of each decile's ratio over campaigns drawn with
      replacement (``BOOTSTRAP_SAMPLES``, seed 0);
    - with ``truth``: ``sales_calibration_truth``, the truth / predicted by decile of
      predicted gmv (the model's own error, free of the sales' noise), and
      ``sales_calibration_of_truth``, realised / truth by decile of the truth: what a
      perfect model would read on these rows (where it leaves 0.8-1.25, the realised
      ratios are noise of this many rows, not a fault of the model)."""
    gmv = np.asarray(gmv, dtype=float)
    is_provisional = np.asarray(is_provisional, dtype=bool)
    expected = predicted["expected_gmv"].to_numpy(dtype=float)
    low, high = predicted["gmv_low"].to_numpy(), predicted["gmv_high"].to_numpy()
    shown = covered(gmv, low, high)
    held = shown if zero_covered is None else covered(gmv, low, high, zero_covered)
    width = (high - low) / np.maximum(expected, 1e-12)
    groups = [
        ("all", np.ones(len(gmv), dtype=bool)),
        (GROUPS[0], ~is_provisional),
        (GROUPS[1], is_provisional),
    ]

    def by_group(values: np.ndarray, names=("all", *GROUPS)) -> dict:
        return {
            g: float(values[rows].mean()) if rows.any() else float("nan")
            for g, rows in groups
            if g in names
        }

    trimmed = gmv <= np.quantile(gmv, 0.999) if len(gmv) else np.ones(0, dtype=bool)
    out: dict = {
        "sales_coverage": by_group(held),
        "sales_coverage_plain": by_group(shown),
        "sales_zero_intervals": by_group((high <= 0).astype(float)),
        "sales_provisional_share": float(is_provisional.mean()),
        "sales_interval_width": by_group(width, GROUPS),
        "sales_ratio": float(gmv.sum() / max(expected.sum(), 1e-12)),
        "sales_calibration": decile_ratios(expected, gmv),
        "sales_calibration_trimmed": decile_ratios(expected, gmv, keep=trimmed),
    }
    if campaign is not None:
        out["sales_calibration_interval"] = decile_intervals(expected, gmv, campaign)
    if truth is not None:
        truth = np.asarray(truth, dtype=float)
        out["sales_calibration_truth"] = decile_ratios(expected, truth)
        out["sales_calibration_of_truth"] = decile_ratios(truth, gmv)
    return out


def deciles_of(expected: np.ndarray) -> np.ndarray:
    """0-9, the decile of each row's expected gmv (ties in row order)."""
    rank = pd.Series(expected).rank(method="first").to_numpy() - 1
    return np.minimum(rank * 10 // max(len(expected), 1), 9).astype(int)


CALIBRATION_BAND = (0.8, 1.25)


def deciles_within(ratios: dict, band: tuple[float, float] = CALIBRATION_BAND) -> int:
    """How many of the decile ``ratios`` (``decile_ratios``) lie within ``band``."""
    return sum(band[0] <= r <= band[1] for r in ratios.values())


def sales_summary(metrics: dict) -> str:
    """The expected-sales figures of a run's test ``metrics`` (``sales_metrics``) as a
    few plain-text lines: coverage, then each calibration by decile with how many of its
    deciles lie within ``CALIBRATION_BAND``."""
    coverage, plain = metrics["sales_coverage"], metrics["sales_coverage_plain"]
    lines = [
        f"expected sales on the test campaigns ({COVERAGE * 100:.0f} % intervals):",
        f"  coverage {coverage['all']:.3f} (established {coverage['established']:.3f}, "
        f"provisional {coverage['provisional']:.3f}; ties at 0 by the randomised rule); "
        f"as shown {plain['all']:.3f} (provisional {plain['provisional']:.3f})",
    ]
    for key, label in (
        ("sales_calibration", "realised / predicted, by decile of predicted"),
        ("sales_calibration_truth", "truth / predicted, by decile of predicted"),
        ("sales_calibration_of_truth", "realised / truth, by decile of truth (a perfect model)"),
    ):
        ratios = metrics.get(key)
        if ratios:
            low, high = CALIBRATION_BAND
            lines.append(
                f"  {label}: {' '.join(f'{r:.2f}' for r in ratios.values())} "
                f"({deciles_within(ratios)} of {len(ratios)} within {low}-{high})"
            )
    return "\n".join(lines)


def decile_intervals(expected: np.ndarray, observed: np.ndarray, campaign) -> dict:
    """``decile<d>_lo`` / ``_hi``: the 90 % interval of each decile's mean observed /
    mean expected over ``BOOTSTRAP_SAMPLES`` resamples of whole campaigns (deciles of at
    least 100 rows)."""
    if len(expected) == 0:
        return {}
    decile = deciles_of(expected)
    code = pd.factorize(np.asarray(campaign, dtype=object))[0]
    sums = np.zeros((code.max() + 1, 10)), np.zeros((code.max() + 1, 10))
    np.add.at(sums[0], (code, decile), observed)
    np.add.at(sums[1], (code, decile), expected)
    rng, count = np.random.default_rng(0), len(sums[0])
    ratios = np.zeros((0, 10))
    for _ in range(0, BOOTSTRAP_SAMPLES, 50):  # 50 resamples at a time: bounded memory
        draws = rng.multinomial(count, np.full(count, 1 / count), 50)
        ratios = np.vstack([ratios, (draws @ sums[0]) / np.maximum(draws @ sums[1], 1e-12)])
    lo, hi = np.quantile(ratios, [0.05, 0.95], axis=0)
    out = {}
    for d in range(10):
        if (decile == d).sum() >= 100:
            out[f"decile{d + 1}_lo"], out[f"decile{d + 1}_hi"] = float(lo[d]), float(hi[d])
    return out


def decile_ratios(
    expected: np.ndarray, observed: np.ndarray, min_rows: int = 100, keep=None
) -> dict:
    """Mean observed / mean expected per decile of expected (``decile1`` lowest), for
    deciles of at least ``min_rows`` rows; only the rows of ``keep`` when given (the
    deciles are those of all rows)."""
    if len(expected) == 0:
        return {}
    decile = deciles_of(expected)
    keep = np.ones(len(expected), dtype=bool) if keep is None else np.asarray(keep, dtype=bool)
    out = {}
    for d in range(10):
        rows = (decile == d) & keep
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
