"""Fit the LightGBM ranker and turn its raw output into scores and family contributions.

``Scorer`` is what a trained model is: a LightGBM booster (kept in LightGBM's own text
format), the feature names it expects, and the raw-to-score map. It is what the MLflow
pyfunc model wraps and what serving uses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from features.registry import BY_NAME, FAMILIES, OTHER, family_of
from training.config import TrainConfig
from training.labels import grades, label_gain
from training.metrics import mean_ndcg
from training.sales import SALES_VALUES, SalesModel, provisional

CONTRIB_COLUMNS = ("contrib_base", *(f"contrib_{f}" for f in FAMILIES), "contrib_other")
OUTPUT_COLUMNS = ("raw_score", "score", *CONTRIB_COLUMNS)


@dataclass
class Fitted:
    """One fitted booster: its objective, best iteration, validation ndcg and early-stopping curve."""

    booster: lgb.Booster
    objective: str
    best_iteration: int
    valid_ndcg: float
    curve: list[float]  # the early-stopping metric per tree (ndcg@k, or l2 for regression)


def lgb_params(cfg: TrainConfig, objective: str, features: list[str] | None = None) -> dict:
    """LightGBM's parameters; with ``features`` and ``cfg.monotone``, a monotone
    constraint per feature from the registry's direction (+1 never lowers the raw score,
    -1 never raises it, 0 free)."""
    params = {
        "objective": objective,
        "metric": "None",
        "learning_rate": cfg.learning_rate,
        "num_leaves": cfg.num_leaves,
        "min_data_in_leaf": cfg.min_data_in_leaf,
        "feature_fraction": cfg.feature_fraction,
        "bagging_fraction": cfg.bagging_fraction,
        "bagging_freq": cfg.bagging_freq,
        "lambda_l2": cfg.lambda_l2,
        "seed": cfg.seed,
        "deterministic": True,
        "force_col_wise": True,
        "num_threads": cfg.num_threads,
        "verbosity": -1,
    }
    if objective in ("lambdarank", "rank_xendcg"):
        params["label_gain"] = label_gain(cfg.max_grade, cfg.grade_steps_per_doubling)
    if objective == "lambdarank":
        params["lambdarank_truncation_level"] = cfg.lambdarank_truncation_level
    if features is not None and cfg.monotone:
        params["monotone_constraints"] = [BY_NAME[f].direction for f in features]
    return params


def _group_sizes(query: pd.Series) -> np.ndarray:
    """Sizes of the runs of equal query ids (rows of one query must be contiguous)."""
    values = query.to_numpy()
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    if len(starts) != query.nunique():
        raise ValueError("rows of each campaign must be contiguous")
    return np.diff(np.r_[starts, len(values)])


def fit_model(
    fit: pd.DataFrame,
    valid: pd.DataFrame,
    features: list[str],
    cfg: TrainConfig,
    objective: str,
    fit_rows: lgb.Sequence | None = None,
    valid_rows: lgb.Sequence | None = None,
) -> Fitted:
    """Fit on ``fit`` with early stopping on ``valid``; ``objective`` is a ranking
    objective, or "regression" for the pointwise model on log(1 + gmv).

    ``fit_rows`` / ``valid_rows``, when given, hold the frames' feature values (a
    ``lightgbm.Sequence`` read batch by batch, ``training.table``); the frames then need
    only campaign_id and gmv.

    Rankers stop early on LightGBM's own ndcg@eval_at, whose gains (``label_gain`` of
    the grades) follow gmv within 19 %: it runs in C++ at every tree. The regressor
    stops early on its own loss (l2 of log(1 + gmv)), as a user's first try would.
    ``valid_ndcg``, by which objectives are compared, is the contract's ndcg@eval_at with
    linear gmv gain, computed once at the best iteration.
    """
    ranking = objective != "regression"

    train_set = _dataset(fit, features, cfg, ranking, rows=fit_rows)
    valid_set = _dataset(valid, features, cfg, ranking, train_set, valid_rows)
    query, gain = valid["campaign_id"].to_numpy(), valid["gmv"].to_numpy()
    # the pointwise regressor is the unconstrained first try a user would make
    params = lgb_params(cfg, objective, features if ranking else None)
    params["metric"] = "ndcg" if ranking else "l2"
    if ranking:
        params["eval_at"] = [cfg.eval_at]
    record: dict = {}
    booster = lgb.train(
        params,
        train_set,
        num_boost_round=cfg.max_rounds,
        valid_sets=[valid_set],
        valid_names=["valid"],
        callbacks=[
            lgb.early_stopping(cfg.early_stopping_rounds, verbose=False),
            lgb.record_evaluation(record),
        ],
    )
    curve = list(record["valid"][f"ndcg@{cfg.eval_at}" if ranking else "l2"])
    best = booster.best_iteration or len(curve)
    raw = predict_rows(booster, valid[features] if valid_rows is None else valid_rows, best)
    exact = mean_ndcg(query, gain, raw, cfg.eval_at)
    return Fitted(
        booster=booster, objective=objective, best_iteration=best, valid_ndcg=exact, curve=curve
    )


class _Dataset(lgb.Dataset):
    """``lgb.Dataset`` whose bins see ``min_data_in_leaf`` and ``seed`` whatever the
    input: built from a ``lightgbm.Sequence``, LightGBM samples and bins with
    ``get_params()``, which leaves both out, so its feature pre-filter would use the
    default min_data_in_leaf (20) and its binning sample (above 200,000 rows) the default
    seed, where a matrix uses ours."""

    _FORWARDED = ("min_data_in_leaf", "seed")

    def get_params(self) -> dict:
        params = super().get_params()
        params.update({k: v for k, v in (self.params or {}).items() if k in self._FORWARDED})
        return params


def _dataset(
    frame: pd.DataFrame,
    features: list[str],
    cfg: TrainConfig,
    ranking: bool,
    reference: lgb.Dataset | None = None,
    rows: lgb.Sequence | None = None,
) -> lgb.Dataset:
    """Grades (ranking) or log(1 + gmv) (regression) as the label, campaigns as groups;
    the features from ``rows`` when given, else from the frame."""
    label = (
        grades(frame["campaign_id"], frame["gmv"], cfg.max_grade, cfg.grade_steps_per_doubling)
        if ranking
        else np.log1p(frame["gmv"].to_numpy())
    )
    data = frame[features].to_numpy(dtype=float) if rows is None else rows
    return _Dataset(
        data,
        feature_name=features,
        label=label,
        reference=reference,
        group=_group_sizes(frame["campaign_id"]),
    )


def predict_rows(booster: lgb.Booster, rows, num_iteration: int | None) -> np.ndarray:
    """The booster's raw output for a frame or matrix, or for a ``lightgbm.Sequence``
    batch by batch (its whole matrix is never in memory)."""
    if not isinstance(rows, lgb.Sequence):
        return np.asarray(booster.predict(rows, num_iteration=num_iteration))
    step = rows.batch_size
    batches = [
        booster.predict(rows[i : i + step], num_iteration=num_iteration)
        for i in range(0, len(rows), step)
    ]
    return np.concatenate(batches) if batches else np.empty(0)


def refit_trees(
    best_iteration: int, fit_campaigns: int, refit_campaigns: int, max_rounds: int
) -> int:
    """Trees for the refit on more data: the validated count scaled by the ratio of
    training campaigns (more data supports proportionally more trees at the same
    learning rate), capped at ``max_rounds``."""
    scaled = int(round(best_iteration * refit_campaigns / max(fit_campaigns, 1)))
    return max(1, min(max_rounds, scaled))


def refit_model(
    pairs: pd.DataFrame,
    features: list[str],
    cfg: TrainConfig,
    objective: str,
    trees: int,
    rows: lgb.Sequence | None = None,
) -> lgb.Booster:
    """A booster of exactly ``trees`` trees fitted on all of ``pairs`` (features from
    ``rows`` when given; no early stopping: the count was chosen on validation)."""
    return lgb.train(
        lgb_params(cfg, objective, features),
        _dataset(pairs, features, cfg, objective != "regression", rows=rows),
        num_boost_round=trees,
    )


SCORE_TAIL_FROM = 90.0


def score_map_knots(raw: np.ndarray, tail_from: float = SCORE_TAIL_FROM) -> dict:
    """The fixed raw-to-score map, as (raw, score) knots strictly increasing in raw: up
    to ``tail_from`` the percentiles 0, 1, ... of the raw scores of the training pairs;
    above it one straight line in raw from that percentile to 100 at the highest raw
    score. A percentile saturates where lists are read (the top 1 % of pairs spans a
    fifth of the raw range); the line gives the top decile the raw score's resolution."""
    raw = np.asarray(raw, float)
    percent = np.append(np.arange(0.0, tail_from + 0.5, 1.0), 100.0)
    knots = np.append(np.quantile(raw, percent[:-1] / 100.0), raw.max())
    knots, first = np.unique(knots, return_index=True)
    return {"raw": knots.tolist(), "score": percent[first].tolist()}


def _sales_part(values: dict | None) -> SalesModel | None:
    """The saved expected-sales model; None when there is none or it is of the format
    before its intervals came from a chance of a sale (no ``sale``): such a model
    serves as one saved before expected sales existed (expected_gmv empty) until it is
    retrained."""
    if not values or "sale" not in values:
        return None
    return SalesModel.from_dict(values)


@dataclass
class Scorer:
    """A trained model: booster, its feature names, the raw-to-score map, the training
    data's median commission rate (the default for briefs that give none), the end of
    its training data (``trained_until``: the latest ``end_at`` of the campaigns it
    learned from, ISO-8601) and the reference bins of its training pairs' features
    (``serving.drift``; None for a model saved before they existed) and the expected-sales
    model (``training.sales``; None for a model saved before it existed)."""

    booster: lgb.Booster
    score_map: dict
    commission_rate_median: float = float("nan")
    trained_until: str | None = None
    reference: dict | None = None
    sales: SalesModel | None = None

    @property
    def features(self) -> list[str]:
        """The feature names the booster expects, in order."""
        return self.booster.feature_name()

    def raw(self, frame: pd.DataFrame) -> np.ndarray:
        """The booster's raw output for the feature rows of ``frame`` (its best iteration)."""
        return np.asarray(
            self.booster.predict(
                self._matrix(frame), num_iteration=self.booster.best_iteration or None
            )
        )

    def score(self, raw: np.ndarray) -> np.ndarray:
        """0-100, monotone in raw: the share of training pairs with a lower raw score
        (linear between knots, clamped at the ends)."""
        return np.interp(raw, self.score_map["raw"], self.score_map["score"])

    def expected_sales(
        self, frame: pd.DataFrame, raw, market, category, is_provisional=None
    ) -> pd.DataFrame:
        """``expected_gmv``, ``gmv_low``, ``gmv_high`` (the data's currency),
        ``chance_of_sale`` (0-1; all four NaN for a model without a sales model) and
        ``provisional`` of each feature row of
        ``frame`` (its commission_rate the brief's), given its raw scores and the
        brief's market and category (one value or one per row); ``is_provisional``
        overrides the rows' own provisional marks (``training.sales.provisional``)."""
        n = len(frame)
        if is_provisional is None:
            is_provisional = provisional(frame)
        is_provisional = np.broadcast_to(np.asarray(is_provisional, dtype=bool), n)
        if self.sales is None:
            out = pd.DataFrame(np.nan, index=range(n), columns=list(SALES_VALUES))
        else:
            out = self.sales.predict(
                self.score(np.asarray(raw, dtype=float)),
                np.broadcast_to(np.asarray(market, dtype=object), n),
                np.broadcast_to(np.asarray(category, dtype=object), n),
                frame["commission_rate"].to_numpy(dtype=float),
                is_provisional,
            )
        return out.assign(provisional=is_provisional)

    def contributions(self, frame: pd.DataFrame) -> pd.DataFrame:
        """TreeSHAP contributions (LightGBM ``pred_contrib``) summed by feature family:
        contrib_base + every contrib_<family> + contrib_other = raw score."""
        contrib = np.asarray(
            self.booster.predict(
                self._matrix(frame),
                pred_contrib=True,
                num_iteration=self.booster.best_iteration or None,
            )
        )
        out = pd.DataFrame(0.0, index=frame.index, columns=list(CONTRIB_COLUMNS))
        out["contrib_base"] = contrib[:, -1]
        for j, name in enumerate(self.features):
            family = family_of(name)
            out[f"contrib_{family if family != OTHER else 'other'}"] += contrib[:, j]
        return out

    def explain(self, frame: pd.DataFrame) -> pd.DataFrame:
        """raw_score, score and the per-family contributions of every row."""
        contrib = self.contributions(frame)
        raw = self.raw(frame)
        out = pd.DataFrame({"raw_score": raw, "score": self.score(raw)}, index=frame.index)
        return pd.concat([out, contrib], axis=1)

    def _matrix(self, frame: pd.DataFrame) -> np.ndarray:
        missing = [c for c in self.features if c not in frame.columns]
        if missing:
            raise ValueError(f"model input lacks feature column(s): {', '.join(missing[:5])}")
        return frame[self.features].to_numpy(dtype=float)

    def save(self, directory: Path) -> dict[str, Path]:
        """Write ``booster.txt`` (LightGBM text format) and ``scoring.json`` (score map
        and defaults)."""
        directory.mkdir(parents=True, exist_ok=True)
        paths = {"booster": directory / "booster.txt", "scoring": directory / "scoring.json"}
        self.booster.save_model(paths["booster"], num_iteration=self.booster.best_iteration or None)
        paths["scoring"].write_text(
            json.dumps(
                {
                    "score_map": self.score_map,
                    "commission_rate_median": self.commission_rate_median,
                    "trained_until": self.trained_until,
                    "reference": self.reference,
                    "sales": None if self.sales is None else self.sales.as_dict(),
                }
            )
        )
        return paths

    @classmethod
    def load(cls, booster_path, scoring_path) -> Scorer:
        """The Scorer saved by ``save``: booster.txt (LightGBM's text format) and scoring.json."""
        scoring = json.loads(Path(scoring_path).read_text())
        return cls(
            booster=lgb.Booster(model_file=str(booster_path)),
            score_map=scoring["score_map"],
            commission_rate_median=scoring["commission_rate_median"],
            trained_until=scoring.get("trained_until"),
            reference=scoring.get("reference"),
            sales=_sales_part(scoring.get("sales")),
        )
