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
from training.model import Fitted, Scorer, fit_model, score_map_knots
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


def data_fingerprint(tables: dict[str, pd.DataFrame], posts: dict, pairs: pd.DataFrame,
                     split: Split) -> dict:
    """Row counts, time ranges and split boundaries (``posts`` from ``posts_summary``,
    so the raw posts frame may already be released)."""
    return {
        **{f"rows_{name}": len(frame) for name, frame in tables.items() if name != "posts"},
        "pairs": len(pairs),
        "campaigns_from": tables["campaigns"]["created_at"].min().isoformat(),
        "campaigns_to": tables["campaigns"]["created_at"].max().isoformat(),
        **posts,
        **split.fingerprint(),
    }


def split_pairs(tables, cfg: TrainConfig, pairs: pd.DataFrame):
    try:
        split = time_split(tables["campaigns"], cfg.test_fraction, cfg.validation_fraction)
    except ValueError as err:
        raise TrainingError(str(err)) from None
    parts = [pairs[pairs["campaign_id"].isin(ids)].reset_index(drop=True)
             for ids in (split.fit, split.valid, split.test)]
    for name, part in zip(("fit", "validation", "test"), parts):
        if not (part["gmv"] > 0).any():
            raise TrainingError(f"no positive gmv among the {name} campaigns "
                                f"({part['campaign_id'].nunique()} campaigns): nothing to learn or measure")
    return split, parts


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
    split, (fit, valid, test) = split_pairs(tables, cfg, pairs)
    fingerprint = data_fingerprint(tables, posts, pairs, split)
    progress(f"split: fit {len(split.fit)} / validation {len(split.valid)} / test "
             f"{len(split.test)} campaigns (test from {split.t_test:%Y-%m-%d})")
    features = list(FEATURE_NAMES)
    candidates = {}
    for objective in cfg.objectives:
        candidates[objective] = fit_model(fit, valid, features, cfg, objective)
        progress(f"{objective}: validation ndcg@{cfg.eval_at} {candidates[objective].valid_ndcg:.4f}"
                 f" at {candidates[objective].best_iteration} trees")
    chosen = max(candidates.values(), key=lambda f: (f.valid_ndcg, -cfg.objectives.index(f.objective)))
    pointwise = fit_model(fit, valid, features, cfg, "regression")
    progress(f"pointwise regressor: validation ndcg@{cfg.eval_at} {pointwise.valid_ndcg:.4f}")

    fit_raw = chosen.booster.predict(fit[features], num_iteration=chosen.best_iteration)
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
