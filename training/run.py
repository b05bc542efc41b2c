"""Training as a function: pairs -> time split -> fitted ranker -> test metrics.

``train(tables, cfg)`` is what ``python -m training`` and the notebooks call; it does no
I/O beyond the optional truth table and leaves MLflow to ``training.tracking``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from features.build import History, index_history, post_time_range
from features.pairs import training_pairs
from features.registry import FEATURE_NAMES
from training.config import TrainConfig
from training.metrics import evaluate
from training.model import Fitted, Scorer, fit_model, predict_rows, score_map_knots
from training.split import Split, time_split

BASELINES = ("followers", "engagement_rate", "past_gmv", "random")


def _quiet(message: str) -> None:
    pass


class TrainingError(ValueError):
    """Data that cannot be trained on (too few campaigns, no sales); one-line message."""


@dataclass
class TrainResult:
    config: TrainConfig
    split: Split
    fingerprint: dict
    candidates: dict[str, Fitted]
    chosen: Fitted
    pointwise: Fitted
    scorer: Scorer
    metrics: dict
    test: pd.DataFrame = field(repr=False)


def baseline_scores(pairs: pd.DataFrame, seed: int) -> dict[str, np.ndarray]:
    """The contract's baselines from the pairs' own features: current followers,
    (likes + comments + shares) per view over 90 days, gmv of posts over 90 days, random."""
    engagement = (pairs["likes_per_view_90d"] + pairs["comments_per_view_90d"]
                  + pairs["shares_per_view_90d"])
    return {
        "followers": pairs["log_followers"].to_numpy(),
        "engagement_rate": engagement.to_numpy(),
        "past_gmv": pairs["log_gmv_90d"].to_numpy(),
        "random": np.random.default_rng(seed).random(len(pairs)),
    }


def posts_summary(history: History) -> dict:
    """Row count and time range of the posts behind ``history`` (for the fingerprint)."""
    first, last = post_time_range(history)
    return {"rows_posts": len(history.posts),
            "posts_from": first.isoformat() if first is not None else None,
            "posts_to": last.isoformat() if last is not None else None}


def data_fingerprint(rows: dict[str, int], campaigns: pd.DataFrame, posts: dict, pairs: int,
                     split: Split) -> dict:
    """Row counts (``rows``: table -> rows), time ranges and split boundaries (``posts``
    from ``posts_summary``, so the raw posts frame may already be released)."""
    return {
        **{f"rows_{name}": n for name, n in rows.items() if name != "posts"},
        "pairs": pairs,
        "campaigns_from": campaigns["created_at"].min().isoformat(),
        "campaigns_to": campaigns["created_at"].max().isoformat(),
        **posts,
        **split.fingerprint(),
    }


def split_positions(campaigns: pd.DataFrame, cfg: TrainConfig, labels: pd.DataFrame
                    ) -> tuple[Split, list[np.ndarray]]:
    """The time split of ``campaigns`` and the positions of the fit, validation and test
    rows of ``labels`` (campaign_id, gmv: the pair table's rows, in order)."""
    try:
        split = time_split(campaigns, cfg.test_fraction, cfg.validation_fraction)
    except ValueError as err:
        raise TrainingError(str(err)) from None
    positions = [np.flatnonzero(labels["campaign_id"].isin(ids).to_numpy())
                 for ids in (split.fit, split.valid, split.test)]
    gmv = labels["gmv"].to_numpy()
    for name, rows in zip(("fit", "validation", "test"), positions):
        if not (gmv[rows] > 0).any():
            raise TrainingError(f"no positive gmv among the {name} campaigns "
                                f"({labels['campaign_id'].iloc[rows].nunique()} campaigns): "
                                "nothing to learn or measure")
    return split, positions


def train(tables: dict[str, pd.DataFrame], cfg: TrainConfig,
          truth: pd.DataFrame | None = None,
          progress: Callable[[str], None] = _quiet) -> TrainResult:
    """Build the training pairs of ``tables`` and ``train_on_pairs`` them."""
    history = index_history(tables)
    progress(f"building features for {len(tables['invitations']):,} invitations ...")
    pairs = training_pairs(tables, history)
    return train_on_pairs(tables, pairs, posts_summary(history), cfg, truth, progress)


def train_on_pairs(tables: dict[str, pd.DataFrame], pairs: pd.DataFrame, posts: dict,
                   cfg: TrainConfig, truth: pd.DataFrame | None = None,
                   progress: Callable[[str], None] = _quiet) -> TrainResult:
    """Fit on the contract's time split, choose the objective on validation ndcg, and
    evaluate the model, the baselines, the pointwise regressor (and the oracle when
    ``truth`` = expected_gmv is given) on the test campaigns.

    ``pairs`` is ``features.pairs.training_pairs(tables)``, ``posts`` its
    ``posts_summary``; ``tables["posts"]`` is not read (it may be released)."""
    split, positions = split_positions(tables["campaigns"], cfg, pairs)
    fit, valid, test = (pairs.iloc[rows].reset_index(drop=True) for rows in positions)
    rows = {name: len(frame) for name, frame in tables.items()}
    fingerprint = data_fingerprint(rows, tables["campaigns"], posts, len(pairs), split)
    return fit_and_evaluate(split, fingerprint, fit, valid, test, cfg, truth, progress)


def fit_and_evaluate(split: Split, fingerprint: dict, fit: pd.DataFrame, valid: pd.DataFrame,
                     test: pd.DataFrame, cfg: TrainConfig, truth: pd.DataFrame | None,
                     progress: Callable[[str], None], fit_rows=None, valid_rows=None
                     ) -> TrainResult:
    """The fitting and evaluation of ``train_on_pairs`` on split pairs. ``fit_rows`` /
    ``valid_rows`` (``lightgbm.Sequence``) may hold the fit and validation features, the
    frames then only campaign_id, gmv and commission_rate; ``test`` is whole."""
    progress(f"split: fit {len(split.fit)} / validation {len(split.valid)} / test "
             f"{len(split.test)} campaigns (test from {split.t_test:%Y-%m-%d})")
    features = list(FEATURE_NAMES)
    candidates = {}
    for objective in cfg.objectives:
        candidates[objective] = fit_model(fit, valid, features, cfg, objective, fit_rows, valid_rows)
        progress(f"{objective}: validation ndcg@{cfg.eval_at} {candidates[objective].valid_ndcg:.4f}"
                 f" at {candidates[objective].best_iteration} trees")
    chosen = max(candidates.values(), key=lambda f: (f.valid_ndcg, -cfg.objectives.index(f.objective)))
    pointwise = fit_model(fit, valid, features, cfg, "regression", fit_rows, valid_rows)
    progress(f"pointwise regressor: validation ndcg@{cfg.eval_at} {pointwise.valid_ndcg:.4f}")

    fit_raw = predict_rows(chosen.booster, fit[features] if fit_rows is None else fit_rows,
                           chosen.best_iteration)
    scorer = Scorer(booster=chosen.booster, score_map=score_map_knots(fit_raw),
                    commission_rate_median=float(fit["commission_rate"].median()))
    scores = {"model": scorer.raw(test), **baseline_scores(test, cfg.seed),
              "pointwise": pointwise.booster.predict(test[features], num_iteration=pointwise.best_iteration)}
    if truth is not None:
        scores["oracle"] = oracle_scores(test, truth)
    metrics = evaluate(test["campaign_id"].to_numpy(), test["gmv"].to_numpy(), scores, cfg.ks)
    metrics["objective"] = chosen.objective
    metrics["best_iteration"] = chosen.best_iteration
    metrics[f"validation_ndcg@{cfg.eval_at}"] = {o: f.valid_ndcg for o, f in candidates.items()}
    test = test.assign(**{f"score_{name}": value for name, value in scores.items()})
    return TrainResult(config=cfg, split=split, fingerprint=fingerprint,
                       candidates=candidates, chosen=chosen, pointwise=pointwise, scorer=scorer,
                       metrics=metrics, test=test)


def oracle_scores(test: pd.DataFrame, truth: pd.DataFrame) -> np.ndarray:
    """expected_gmv of each test pair; TrainingError if the truth does not cover them."""
    expected = truth.set_index(["campaign_id", "creator_id"])["expected_gmv"]
    keys = pd.MultiIndex.from_frame(test[["campaign_id", "creator_id"]].astype(str))
    values = expected.reindex(keys).to_numpy(dtype=float)
    if np.isnan(values).any():
        raise TrainingError(f"truth: expected_gmv lacks {int(np.isnan(values).sum())} test "
                            "pairs: is it the truth of this data directory?")
    return values
