"""Training as a function: pairs -> time split -> fitted ranker -> test metrics.

``train_on_table`` fits and evaluates on any pair table (in memory, or Parquet parts read
part by part); ``train_on_pairs`` and ``train(tables, cfg)`` are its in-memory doors. No
I/O here: reading a data directory and logging to MLflow are ``training.stage``'s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.build import History, index_history
from features.history import post_time_range
from features.pairs import training_pairs
from features.registry import FEATURE_NAMES
from training.backtest import backtest_table, per_campaign
from training.config import TrainConfig
from training.metrics import evaluate
from training.model import (
    Fitted,
    Scorer,
    fit_model,
    predict_rows,
    refit_model,
    refit_trees,
    score_map_knots,
)
from training.reference import population_features, reference_as_of, reference_bins
from training.sales import (
    SalesModel,
    calibration_frame,
    context_of,
    fit_sales_model,
    sales_metrics,
)
from training.split import Split, backtest_splits
from training.table import FramePairs, PairTable

BASELINES = ("followers", "engagement_rate", "past_gmv", "random")


def _quiet(message: str) -> None:
    pass


class TrainingError(ValueError):
    """Data that cannot be trained on (too few campaigns, no sales); one-line message."""


@dataclass
class TrainResult:
    """``evaluated`` is the model fitted before the test period, whose test metrics are
    the run's; ``scorer`` the model that is logged and served, refitted on every
    labelled campaign (``served_campaigns``) with ``served_trees`` trees."""

    config: TrainConfig
    split: Split
    fingerprint: dict
    candidates: dict[str, Fitted]
    chosen: Fitted
    pointwise: Fitted
    scorer: Scorer
    metrics: dict
    test: pd.DataFrame = field(repr=False)
    evaluated: Scorer | None = None
    served_campaigns: frozenset = frozenset()
    served_trees: int = 0
    backtest: pd.DataFrame | None = field(default=None, repr=False)
    folds: list[dict[str, Fitted]] = field(default_factory=list, repr=False)
    sales: SalesModel | None = None


def baseline_scores(pairs: pd.DataFrame, seed: int) -> dict[str, np.ndarray]:
    """The contract's baselines from the pairs' own features: current followers,
    (likes + comments + shares) per view over 90 days, gmv of posts over 90 days, random."""
    engagement = (
        pairs["likes_per_view_90d"] + pairs["comments_per_view_90d"] + pairs["shares_per_view_90d"]
    )
    return {
        "followers": pairs["log_followers"].to_numpy(),
        "engagement_rate": engagement.to_numpy(),
        "past_gmv": pairs["log_gmv_90d"].to_numpy(),
        "random": np.random.default_rng(seed).random(len(pairs)),
    }


def posts_summary(history: History) -> dict:
    """Row count and time range of the posts behind ``history`` (for the fingerprint)."""
    first, last = post_time_range(history)
    return {
        "rows_posts": len(history.posts),
        "posts_from": first.isoformat() if first is not None else None,
        "posts_to": last.isoformat() if last is not None else None,
    }


def data_fingerprint(
    rows: dict[str, int], campaigns: pd.DataFrame, posts: dict, pairs: int, split: Split
) -> dict:
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


@dataclass
class DataFacts:
    """What training needs of the raw tables besides the pairs: each table's row count,
    the campaigns table, the posts summary (``posts_summary``), the data's last known
    moment (``data_end``) and the feature rows of the population serving scores at the
    end of the data (``training.reference.population_features``: the drift reference;
    None: the model gets no reference bins)."""

    rows: dict[str, int]
    campaigns: pd.DataFrame
    posts: dict
    end: pd.Timestamp
    population: pd.DataFrame | None = None


def data_facts(
    tables: dict[str, pd.DataFrame], posts: dict, population: pd.DataFrame | None = None
) -> DataFacts:
    """``DataFacts`` of tables in memory (``tables["posts"]`` is not read)."""
    return DataFacts(
        rows={name: len(frame) for name, frame in tables.items()},
        campaigns=tables["campaigns"],
        posts=posts,
        end=data_end(tables, posts),
        population=population,
    )


def fold_splits(tables, cfg: TrainConfig, pairs: pd.DataFrame, folds: int = 1) -> list[Split]:
    """The walk-forward splits, the last the contract's: ``folds`` of them, or as many as
    the data has campaigns for (a small marketplace backtests fewer folds rather than
    fail); checked before any fitting: TrainingError when the contract's cannot be used."""
    for count in range(folds, 0, -1):
        try:
            splits = backtest_splits(
                tables["campaigns"], cfg.test_fraction, cfg.validation_fraction, count
            )
            break
        except ValueError as err:
            if count == 1:
                raise TrainingError(str(err)) from None
    folds = len(splits)
    sold = frozenset(pairs.loc[pairs["gmv"] > 0, "campaign_id"])
    for number, split in enumerate(splits, start=1):
        for name, ids in zip(
            ("fit", "validation", "test"), (split.fit, split.valid, split.test), strict=True
        ):
            if not ids & sold:
                where = f"backtest fold {number} of {folds}: " if number < folds else ""
                raise TrainingError(
                    f"{where}no positive gmv among the {name} campaigns "
                    f"({len(ids)} campaigns): nothing to learn or measure"
                )
    return splits


def split_pairs(tables, cfg: TrainConfig, pairs: pd.DataFrame) -> tuple[Split, list[pd.DataFrame]]:
    """The contract's time split and its (fit, validation, test) pairs."""
    split = fold_splits(tables, cfg, pairs)[-1]
    return split, split_parts(pairs, split)


def split_parts(pairs: pd.DataFrame, split: Split) -> list[pd.DataFrame]:
    """The (fit, validation, test) pairs of ``split``, in the pairs' order."""
    return [
        pairs[pairs["campaign_id"].isin(ids)].reset_index(drop=True)
        for ids in (split.fit, split.valid, split.test)
    ]


def data_end(tables: dict[str, pd.DataFrame], posts: dict) -> pd.Timestamp:
    """The data's last known moment: the latest campaign creation, invitation answer or
    post (``posts`` from ``posts_summary``)."""
    return latest_moment(
        [
            tables["campaigns"]["created_at"].max(),
            tables["invitations"]["invited_at"].max(),
            tables["invitations"]["responded_at"].max(),
        ],
        posts,
    )


def latest_moment(times: list, posts: dict) -> pd.Timestamp:
    """The latest of ``times`` and the posts summary's last post (nulls ignored)."""
    times = list(times)
    if posts.get("posts_to"):
        times.append(pd.Timestamp(posts["posts_to"]))
    return max(t for t in times if pd.notna(t))


def labelled_campaigns(campaigns: pd.DataFrame, end: pd.Timestamp) -> frozenset:
    """Campaigns whose results are known at ``end``: those that ended before it."""
    return frozenset(campaigns.loc[campaigns["end_at"] < end, "campaign_id"])


def trained_until(campaigns: pd.DataFrame, ids) -> str:
    """The latest end_at among the campaigns ``ids`` (ISO-8601): a model fitted on them
    has seen no outcome after it."""
    ended = campaigns.loc[campaigns["campaign_id"].isin(ids), "end_at"]
    return ended.max().isoformat()


def pairs_and_posts(
    tables: dict[str, pd.DataFrame],
    release_posts: bool = False,
    progress: Callable[[str], None] = _quiet,
) -> tuple[pd.DataFrame, dict, pd.DataFrame | None]:
    """The training pairs of ``tables``, the ``posts_summary`` of their history and the
    feature rows of the population serving scores at the data's end (the drift
    reference, ``training.reference.population_features``; None without posts). With
    ``release_posts`` the raw posts frame is released once indexed (``index_history``),
    and the history itself once these are built: at scale memory is the limit."""
    progress(f"indexing the history of {len(tables['posts']):,} posts ...")
    history = index_history(tables, release_posts=release_posts)
    progress(f"building features for {len(tables['invitations']):,} invitations ...")
    pairs, posts = training_pairs(tables, history), posts_summary(history)
    as_of = reference_as_of(posts)
    if as_of is None:
        return pairs, posts, None
    progress(f"building features for the creators serving would score as of {as_of:%Y-%m-%d} ...")
    return pairs, posts, population_features(tables, history, as_of)


def train(
    tables: dict[str, pd.DataFrame],
    cfg: TrainConfig,
    truth: pd.DataFrame | None = None,
    progress: Callable[[str], None] = _quiet,
) -> TrainResult:
    """Build the training pairs of ``tables`` and ``train_on_pairs`` them (tables in
    memory; a data directory is trained by ``training.stage.run_training``)."""
    pairs, posts, population = pairs_and_posts(tables, progress=progress)
    return train_on_pairs(tables, pairs, posts, cfg, truth, progress, population)


def train_on_pairs(
    tables: dict[str, pd.DataFrame],
    pairs: pd.DataFrame,
    posts: dict,
    cfg: TrainConfig,
    truth: pd.DataFrame | None = None,
    progress: Callable[[str], None] = _quiet,
    population: pd.DataFrame | None = None,
) -> TrainResult:
    """``train_on_table`` of pairs in memory: ``pairs``, ``posts`` and ``population``
    are ``pairs_and_posts(tables)``'s; ``tables["posts"]`` is not read (it may be
    released)."""
    facts = data_facts(tables, posts, population)
    return train_on_table(facts, FramePairs(pairs), cfg, truth, progress)


def train_on_table(
    facts: DataFacts,
    table: PairTable,
    cfg: TrainConfig,
    truth: pd.DataFrame | None = None,
    progress: Callable[[str], None] = _quiet,
) -> TrainResult:
    """Fit on the contract's time split and the backtest's earlier folds, choose the
    objective on the folds' mean validation ndcg, evaluate the model, the baselines, the
    pointwise regressor (and the oracle when ``truth`` = expected_gmv is given) on the
    test campaigns, and refit the chosen objective on every labelled campaign for serving.

    ``table`` holds the pairs (``training.table``: a frame in memory, or Parquet parts
    whose fit features LightGBM reads batch by batch); test pairs are read whole."""
    labels = table.labels
    splits = fold_splits({"campaigns": facts.campaigns}, cfg, labels, cfg.backtest_folds)
    if len(splits) < cfg.backtest_folds:
        progress(
            f"backtest: {len(splits)} of {cfg.backtest_folds} folds: too few earlier "
            "campaigns for more"
        )
    split = splits[-1]
    fit, valid, test = table.split(split)
    progress(
        f"split: fit {len(split.fit)} / validation {len(split.valid)} / test "
        f"{len(split.test)} campaigns (test from {split.t_test:%Y-%m-%d})"
    )
    features = list(FEATURE_NAMES)
    folds, fold_tables = [], []
    for number, fold in enumerate(splits, start=1):
        # one fold's pairs at a time: memory stays that of the main split
        fold_fit, fold_valid, fold_test = (fit, valid, test) if fold is split else table.split(fold)
        fitted = {
            objective: fit_model(
                fold_fit.frame,
                fold_valid.frame,
                features,
                cfg,
                objective,
                fold_fit.rows,
                fold_valid.rows,
            )
            for objective in cfg.objectives
        }
        folds.append(fitted)
        fold_tables.append(fold_metrics(fold_test, fitted, cfg, truth))
        progress(
            f"fold {number}/{len(splits)} (test from {fold.t_test:%Y-%m-%d}): "
            + ", ".join(
                f"{o} validation ndcg@{cfg.eval_at} {f.valid_ndcg:.4f} at {f.best_iteration} trees"
                for o, f in fitted.items()
            )
        )
        del fold_fit, fold_valid, fold_test
    candidates = folds[-1]
    mean_valid = {o: float(np.mean([fold[o].valid_ndcg for fold in folds])) for o in cfg.objectives}
    objective = max(cfg.objectives, key=lambda o: (mean_valid[o], -cfg.objectives.index(o)))
    chosen = candidates[objective]
    pointwise = fit_model(fit.frame, valid.frame, features, cfg, "regression", fit.rows, valid.rows)
    progress(f"pointwise regressor: validation ndcg@{cfg.eval_at} {pointwise.valid_ndcg:.4f}")

    campaigns = facts.campaigns
    fit_raw = predict_rows(chosen.booster, fit.matrix(features), chosen.best_iteration)
    evaluated = Scorer(
        booster=chosen.booster,
        score_map=score_map_knots(fit_raw),
        commission_rate_median=float(fit.frame["commission_rate"].median()),
        trained_until=trained_until(campaigns, split.fit | split.valid),
    )
    calibration = sales_calibration(table, splits, folds, objective, campaigns, (fit, valid))
    evaluated.sales = fit_sales_model(calibration)
    progress(
        f"expected sales: calibrated on {len(calibration):,} pairs of "
        f"{calibration['campaign_id'].nunique():,} validation and earlier folds' test "
        "campaigns, all before the test period "
        f"({calibration['provisional'].mean():.0%} provisional)"
    )
    del calibration
    scores = {
        "model": evaluated.raw(test),
        **baseline_scores(test, cfg.seed),
        "pointwise": predict_rows(pointwise.booster, test[features], pointwise.best_iteration),
    }
    if truth is not None:
        scores["oracle"] = oracle_scores(test, truth)
    metrics = evaluate(test["campaign_id"].to_numpy(), test["gmv"].to_numpy(), scores, cfg.ks)
    metrics.update(test_sales_metrics(evaluated, test, scores, campaigns))
    metrics["objective"] = chosen.objective
    metrics["best_iteration"] = chosen.best_iteration
    metrics[f"validation_ndcg@{cfg.eval_at}"] = mean_valid
    backtest = backtest_table(
        [t[objective] for t in fold_tables], splits, cfg.confidence, cfg.bootstrap_samples, cfg.seed
    )

    del fit, valid, fit_raw  # memory: the refit's pairs take their place
    served_ids = labelled_campaigns(campaigns, facts.end)
    served = table.take(served_ids)
    trees = refit_trees(chosen.best_iteration, len(split.fit), len(served_ids), cfg.max_rounds)
    progress(
        f"refitting {objective} on all {len(served_ids)} labelled campaigns "
        f"({trees} trees) for serving ..."
    )
    booster = refit_model(served.frame, features, cfg, objective, trees, served.rows)
    scorer = Scorer(
        booster=booster,
        score_map=score_map_knots(predict_rows(booster, served.matrix(features), None)),
        commission_rate_median=float(served.frame["commission_rate"].median()),
        trained_until=trained_until(campaigns, served_ids),
        reference=(
            reference_bins(facts.population, features) if facts.population is not None else None
        ),
        sales=evaluated.sales,  # by score, which means the same in both models
    )
    fingerprint = data_fingerprint(facts.rows, campaigns, facts.posts, len(labels), split)
    fingerprint.update(
        {
            "evaluated_trained_until": evaluated.trained_until,
            "served_campaigns": len(served_ids),
            "served_pairs": len(served.frame),
            "served_trained_until": scorer.trained_until,
        }
    )
    if facts.population is not None:
        # the drift reference: serving's population at the end of the data
        as_of = reference_as_of(facts.posts)
        fingerprint["reference_as_of"] = as_of.isoformat() if as_of is not None else None
        fingerprint["reference_candidates"] = len(facts.population)
    test = test.assign(**{f"score_{name}": value for name, value in scores.items()})
    return TrainResult(
        config=cfg,
        split=split,
        fingerprint=fingerprint,
        candidates=candidates,
        chosen=chosen,
        pointwise=pointwise,
        scorer=scorer,
        metrics=metrics,
        test=test,
        evaluated=evaluated,
        served_campaigns=served_ids,
        served_trees=trees,
        backtest=backtest,
        folds=folds,
        sales=evaluated.sales,
    )


def sales_calibration(
    table: PairTable,
    splits: list[Split],
    folds: list[dict[str, Fitted]],
    objective: str,
    campaigns: pd.DataFrame,
    last: tuple,
) -> pd.DataFrame:
    """The calibration pairs of the expected-sales model, all before the test period:
    every fold's validation pairs and the earlier folds' test pairs, scored by that
    fold's ``objective`` model through its own score map (the percentiles of its fit
    pairs), so the score means what it means when served; a pair scored by more than one
    fold is kept from the latest. ``last`` holds the (fit, validation) parts of the last
    fold, already read."""
    frames = []
    for fold, fitted in zip(splits, folds, strict=True):
        model = fitted[objective]
        fit, valid = (
            last
            if fold is splits[-1]
            else (table.take(fold.fit), table.take(fold.valid | fold.test))
        )
        knots = score_map_knots(
            predict_rows(model.booster, fit.matrix(list(FEATURE_NAMES)), model.best_iteration)
        )
        raw = predict_rows(model.booster, valid.matrix(list(FEATURE_NAMES)), model.best_iteration)
        score = np.interp(raw, knots["raw"], knots["score"])
        frames.append(calibration_frame(valid.frame, valid.columns(), score, campaigns))
        del fit, valid
    both = pd.concat(frames, ignore_index=True)
    return both.drop_duplicates(["campaign_id", "creator_id"], keep="last").reset_index(drop=True)


def test_sales_metrics(
    evaluated: Scorer, test: pd.DataFrame, scores: dict[str, np.ndarray], campaigns: pd.DataFrame
) -> dict:
    """``training.sales.sales_metrics`` of the evaluated model's expected sales on the
    test pairs (against the truth too when ``scores`` holds the oracle)."""
    context = context_of(test["campaign_id"], campaigns)
    predicted = evaluated.expected_sales(
        test, scores["model"], context["market"], context["category"]
    )
    is_provisional = predicted["provisional"].to_numpy()
    assert evaluated.sales is not None
    return sales_metrics(
        predicted,
        test["gmv"],
        is_provisional,
        zero_covered=evaluated.sales.zero_covered(predicted, is_provisional),
        truth=scores.get("oracle"),
        campaign=test["campaign_id"],
    )


def fold_metrics(
    test: pd.DataFrame, fitted: dict[str, Fitted], cfg: TrainConfig, truth: pd.DataFrame | None
) -> dict[str, pd.DataFrame]:
    """Per objective, ``training.backtest.per_campaign`` of its fold model on the fold's
    test pairs, with ``oracle_ndcg@k`` columns when ``truth`` is given."""
    query, gain = test["campaign_id"].to_numpy(), test["gmv"].to_numpy()
    oracle = None
    if truth is not None:
        oracle = per_campaign(query, gain, oracle_scores(test, truth), cfg.ks)
        oracle = oracle[[f"ndcg@{k}" for k in cfg.ks]].add_prefix("oracle_")
    out = {}
    for objective, model in fitted.items():
        table = per_campaign(
            query,
            gain,
            model.booster.predict(test[list(FEATURE_NAMES)], num_iteration=model.best_iteration),
            cfg.ks,
        )
        out[objective] = table if oracle is None else table.join(oracle)
    return out


def oracle_scores(test: pd.DataFrame, truth: pd.DataFrame) -> np.ndarray:
    """expected_gmv of each test pair; TrainingError if the truth does not cover them."""
    expected = truth.set_index(["campaign_id", "creator_id"])["expected_gmv"]
    keys = pd.MultiIndex.from_frame(test[["campaign_id", "creator_id"]].astype(str))
    values = expected.reindex(keys).to_numpy(dtype=float)
    if np.isnan(values).any():
        raise TrainingError(
            f"truth: expected_gmv lacks {int(np.isnan(values).sum())} test "
            "pairs: is it the truth of this data directory?"
        )
    return values
