"""Reviewing trained models: runs from MLflow, metric curves, score distributions and
fairness by creator group.

Pure functions (frames in, frames out) plus a few readers of an MLflow store, for the
experiment-review and fairness notebooks; plots are matplotlib Figures built without
pyplot. Nothing here changes the store except ``quick_experiment``, which trains and
logs a small model so that a notebook has something to review.

Fairness (``fairness_table``): for the invitees of test campaigns grouped by a creator
attribute (follower tier, market, declared category, whether the creator has sold
before), the model's mean score and its selection rate -- the share of the group's
invitees that the model puts in its campaign's top k (10) -- set against the group's
share of the realised campaign gmv. ``selection_vs_gmv`` = share of the selected /
share of the gmv: below 1, the model picks the group less often than its sales would
warrant (it is ranked below what it delivers); above 1, more often.
"""

from __future__ import annotations

import dataclasses
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from mlflow.tracking import MlflowClient

from features.build import History, index_history
from features.pairs import training_pairs
from features.registry import FAMILIES, OTHER
from marketplace.summary import follower_tier
from marketplace.validate import load_valid_tables
from training.config import TrainConfig, load_config
from training.model import Scorer
from training.run import train
from training.split import time_split
from training.tracking import (
    LoggedRun,
    family_importance,
    family_mean_abs_contribution,
    load_scorer,
    log_training,
)

DEFAULT_EXPERIMENT = "creator-scores"
# MLflow metric names of training.tracking.flat_metrics: test_<metric>_at_<k>_<scorer>.
METRIC_NAME = re.compile(r"^test_(?P<metric>ndcg|gmv_capture)_at_(?P<k>\d+)_(?P<scorer>.+)$")
VALID_CURVE_PREFIX = "valid_ndcg_at_"
NO_CATEGORY = "(none)"
SOLD_BEFORE, NEVER_SOLD = "sold before", "never sold"
GROUP_COLUMNS = ("follower_tier", "market", "category", "past_sales")


# ----------------------------------------------------------------------------- a run to review


def quick_config() -> TrainConfig:
    """The default config made small for notebooks and tests: 40 rounds at most, one
    objective (lambdarank), one thread, no earlier backtest folds."""
    return dataclasses.replace(load_config(), max_rounds=40, objectives=("lambdarank",),
                               num_threads=1, backtest_folds=1)


def quick_experiment(data_dir, tracking_uri: str, experiment: str = DEFAULT_EXPERIMENT,
                     cfg: TrainConfig | None = None, register: str | None = None) -> LoggedRun:
    """Train on the data directory ``data_dir`` (with the oracle when
    ``data_dir/truth/expected_gmv.parquet`` exists) and log the run to ``tracking_uri``
    as ``python -m training`` does; ``cfg`` defaults to ``quick_config()``. Returns the
    logged run (run_id, model_uri). With an SQLite URI the artifacts go beside the
    database (``training.tracking.use_experiment``)."""
    tables = load_valid_tables(data_dir)
    truth_path = Path(data_dir) / "truth" / "expected_gmv.parquet"
    truth = (pd.read_parquet(truth_path).astype({"campaign_id": "str", "creator_id": "str"})
             if truth_path.is_file() else None)
    result = train(tables, cfg or quick_config(), truth)
    return log_training(result, tracking_uri, experiment, register)


# ----------------------------------------------------------------------------- runs from MLflow


def latest_runs(tracking_uri: str, experiment: str = DEFAULT_EXPERIMENT, n: int = 5
                ) -> pd.DataFrame:
    """The test metrics of the ``n`` latest finished runs of ``experiment`` as a tidy
    frame: one row per (run, metric, k, scorer) with columns run_id, run_name,
    start_time (UTC), objective, test_queries, metric (``ndcg`` or ``gmv_capture``),
    k, scorer (model, the baselines, pointwise, oracle when logged) and value; newest
    run first. An unknown experiment or one without runs gives an empty frame."""
    client = MlflowClient(tracking_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    columns = ["run_id", "run_name", "start_time", "objective", "test_queries", "metric",
               "k", "scorer", "value"]
    if found is None:
        return pd.DataFrame(columns=columns)
    runs = client.search_runs([found.experiment_id], filter_string="attributes.status = 'FINISHED'",
                              order_by=["attributes.start_time DESC"], max_results=n)
    return tidy_run_metrics([
        {"run_id": run.info.run_id, "run_name": run.info.run_name,
         "start_time": pd.Timestamp(run.info.start_time, unit="ms", tz="UTC"),
         "objective": run.data.params.get("chosen_objective", ""),
         "metrics": run.data.metrics}
        for run in runs], columns)


def tidy_run_metrics(runs: list[dict], columns=None) -> pd.DataFrame:
    """Rows of ``latest_runs`` from plain run records (run_id, run_name, start_time,
    objective, metrics: MLflow's ``{name: value}``); metrics other than the test ranking
    metrics (``test_<metric>_at_<k>_<scorer>``) are left out."""
    rows = []
    for run in runs:
        metrics = run["metrics"]
        for name, value in metrics.items():
            match = METRIC_NAME.match(name)
            if match:
                rows.append({
                    "run_id": run["run_id"], "run_name": run.get("run_name", ""),
                    "start_time": run.get("start_time"), "objective": run.get("objective", ""),
                    "test_queries": metrics.get("test_queries", np.nan),
                    "metric": match["metric"], "k": int(match["k"]),
                    "scorer": match["scorer"], "value": float(value)})
    frame = pd.DataFrame(rows, columns=columns or None)
    if frame.empty:
        return frame
    order = frame.groupby("run_id", sort=False)["start_time"].transform("first")
    return (frame.assign(_start=order)
            .sort_values(["_start", "run_id", "metric", "k", "scorer"],
                         ascending=[False, True, True, True, True], kind="stable")
            .drop(columns="_start").reset_index(drop=True))


def runs_overview(runs: pd.DataFrame, metric: str = "ndcg", k: int = 10) -> pd.DataFrame:
    """One row per run of a ``latest_runs`` frame (newest first): start_time, objective,
    test_queries and ``metric@k`` of every scorer, model first."""
    chosen = runs[(runs["metric"] == metric) & (runs["k"] == k)]
    values = chosen.pivot(index="run_id", columns="scorer", values="value")
    about = chosen.drop_duplicates("run_id").set_index("run_id")[
        ["start_time", "objective", "test_queries"]]
    table = about.join(values[_scorer_order(values.columns)])
    table.columns.name = None
    return table.sort_values("start_time", ascending=False, kind="stable")


def run_metrics(runs: pd.DataFrame, run_id: str | None = None) -> pd.DataFrame:
    """One run's metrics (the latest when ``run_id`` is None): a row per scorer (model
    first, oracle last), a column per ``metric@k``; the shape of ``metrics_table``."""
    run = runs[runs["run_id"] == (run_id or latest_run_id(runs))]
    table = run.assign(column=run["metric"] + "@" + run["k"].astype(str)).pivot(
        index="scorer", columns="column", values="value")
    ks = sorted(run["k"].unique())
    columns = [f"{m}@{k}" for m in ("ndcg", "gmv_capture") for k in ks
               if f"{m}@{k}" in table.columns]
    return table.reindex(index=_scorer_order(table.index), columns=columns)


def metric_curves(runs: pd.DataFrame, metric: str = "ndcg", run_id: str | None = None
                  ) -> pd.DataFrame:
    """``metric`` at each k (rows) for every scorer (columns, model first) of one run
    (the latest when ``run_id`` is None) of a ``latest_runs`` frame."""
    run = runs[(runs["run_id"] == (run_id or latest_run_id(runs))) & (runs["metric"] == metric)]
    table = run.pivot(index="k", columns="scorer", values="value").sort_index()
    return table[_scorer_order(table.columns)]


def latest_run_id(runs: pd.DataFrame) -> str:
    """The run_id of the newest run of a ``latest_runs`` frame (ValueError if empty)."""
    if runs.empty:
        raise ValueError("no finished runs with test metrics in this experiment")
    return str(runs.sort_values("start_time", ascending=False)["run_id"].iloc[0])


def _scorer_order(names) -> list[str]:
    """model, then the others by name, pointwise and oracle last."""
    names = list(names)
    head = [n for n in ("model",) if n in names]
    tail = [n for n in ("pointwise", "oracle") if n in names]
    return head + sorted(n for n in names if n not in head + tail) + tail


def validation_curves(tracking_uri: str, run_id: str) -> pd.DataFrame:
    """The validation curve the run logged: ndcg@eval_at after each tree (rows = trees,
    from 1) of every objective it fitted (columns), as ``training.model.fit_model``
    records it for early stopping."""
    client = MlflowClient(tracking_uri=tracking_uri)
    names = [n for n in client.get_run(run_id).data.metrics if n.startswith(VALID_CURVE_PREFIX)]
    curves = {}
    for name in names:
        history = client.get_metric_history(run_id, name)
        objective = name[len(VALID_CURVE_PREFIX):].split("_", 1)[1]
        curves[objective] = pd.Series({m.step: m.value for m in history}).sort_index()
    frame = pd.DataFrame(curves)
    frame.index.name = "trees"
    return frame


def run_model_uri(tracking_uri: str, run_id: str) -> str:
    """The URI of the model logged by run ``run_id`` (``models:/m-...``)."""
    client = MlflowClient(tracking_uri=tracking_uri)
    experiment_id = client.get_run(run_id).info.experiment_id
    models = client.search_logged_models(experiment_ids=[experiment_id],
                                         filter_string=f"source_run_id = '{run_id}'")
    if not models:
        raise ValueError(f"run {run_id} logged no model")
    return models[0].model_uri


@contextmanager
def _tracking(uri: str):
    """Use ``uri`` as MLflow's tracking URI within a ``with`` block, then restore it."""
    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(before)


def latest_model_uri(tracking_uri: str, experiment: str = DEFAULT_EXPERIMENT) -> str:
    """The model URI of the newest finished run of ``experiment`` with test metrics."""
    return run_model_uri(tracking_uri, latest_run_id(latest_runs(tracking_uri, experiment, n=1)))


def run_config(tracking_uri: str, run_id: str) -> TrainConfig:
    """The resolved training config a run logged (``config.json``)."""
    client = MlflowClient(tracking_uri=tracking_uri)
    with _tracking(tracking_uri):
        values = mlflow.artifacts.load_dict(f"{client.get_run(run_id).info.artifact_uri}/config.json")
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    known: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v
                             for k, v in values.items() if k in fields}
    return TrainConfig(**known)


def load_run_scorer(tracking_uri: str, model_uri: str) -> Scorer:
    """The Scorer of any MLflow model URI in the store at ``tracking_uri``."""
    with _tracking(tracking_uri):
        return load_scorer(model_uri)


# ----------------------------------------------------------------------------- scored pairs


def scored_test_pairs(tables: dict[str, pd.DataFrame], scorer: Scorer,
                      cfg: TrainConfig | None = None, history: History | None = None
                      ) -> pd.DataFrame:
    """The test pairs of the contract's time split (``cfg``'s fractions; the default
    config's when None) with the model's ``raw_score`` and 0-100 ``score``: the pairs
    training evaluates on, as a model (any model) sees them."""
    cfg = cfg or load_config()
    pairs = training_pairs(tables, history or index_history(tables))
    split = time_split(tables["campaigns"], cfg.test_fraction, cfg.validation_fraction)
    test = pairs[pairs["campaign_id"].isin(split.test)].reset_index(drop=True)
    raw = scorer.raw(test)
    return test.assign(raw_score=raw, score=scorer.score(raw))


def family_summary(scorer: Scorer, pairs: pd.DataFrame) -> pd.DataFrame:
    """Per family (and other): gain_share (share of the model's split gain),
    mean_abs_contribution (mean |TreeSHAP contribution| over ``pairs``) and
    contribution_share (of the sum of those means)."""
    importance = family_importance(scorer.booster)
    contribution = family_mean_abs_contribution(scorer, pairs).reindex(importance.index)
    return pd.DataFrame({"gain_share": importance,
                         "mean_abs_contribution": contribution,
                         "contribution_share": contribution / contribution.sum()})


def score_distribution(pairs: pd.DataFrame, score: str = "score", bins=None) -> pd.DataFrame:
    """How the 0-100 ``score`` of ``pairs`` spreads, split by outcome: for each score bin
    (rows; default 10 bins of 10 points) the share of the pairs that sold in their
    campaign (gmv > 0) and of those that did not, and the sold rate in the bin."""
    bins = np.linspace(0, 100, 11) if bins is None else bins
    binned = pd.cut(pairs[score], bins, include_lowest=True)
    sold = pairs["gmv"] > 0
    counts = pd.crosstab(binned, sold.map({True: "sold", False: "no sales"}), dropna=False)
    counts = counts.reindex(columns=["sold", "no sales"], fill_value=0)
    table = counts / counts.sum().where(counts.sum() > 0)
    table.columns = ["share_of_sold", "share_of_no_sales"]
    table["pairs"] = counts.sum(axis=1)
    table["sold_rate"] = counts["sold"] / table["pairs"].where(table["pairs"] > 0)
    table.index.name = "score_bin"
    return table


# ----------------------------------------------------------------------------- fairness


def creator_groups(pairs: pd.DataFrame, tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """``pairs`` with the creator attributes of ``GROUP_COLUMNS``, as known when each
    pair was scored: follower_tier (from the ``log_followers`` feature: current
    followers at as_of; the reference's tiers), market (the creator's), category (the
    declared primary category, ``(none)`` when null) and past_sales (``sold before``
    when the creator's measured shoppable posts sold anything before as_of, else
    ``never sold``)."""
    creators = tables["creators"].set_index("creator_id")
    ids = pairs["creator_id"]
    # log1p then expm1 is not exact: round back to whole followers before cutting tiers.
    followers = np.round(np.expm1(pairs["log_followers"].to_numpy(dtype=float)))
    category = ids.map(creators["primary_category"].astype(object))
    sold = pairs["log_gmv_per_shoppable_post_all"].fillna(0.0) > 0
    return pairs.assign(
        follower_tier=follower_tier(pd.Series(followers, index=pairs.index)),
        market=ids.map(creators["market"].astype(object)).astype(str),
        category=category.where(category.notna(), NO_CATEGORY).astype(str),
        past_sales=pd.Categorical(np.where(sold, SOLD_BEFORE, NEVER_SOLD),
                                  categories=[NEVER_SOLD, SOLD_BEFORE]),
    )


def selected_in_top(pairs: pd.DataFrame, rank_by: str = "score", top: int = 10) -> pd.Series:
    """True for the pairs the ranking puts in their campaign's top ``top``: by
    ``rank_by`` descending, ties by creator_id (as serving ranks); a campaign with
    ``top`` invitees or fewer has all of them selected. NaN ranks last."""
    key = pairs[rank_by].astype(float).fillna(-np.inf)
    order = (pd.DataFrame({"campaign_id": pairs["campaign_id"].to_numpy(), "key": key.to_numpy(),
                           "creator_id": pairs["creator_id"].astype(str).to_numpy()})
             .sort_values(["campaign_id", "key", "creator_id"], ascending=[True, False, True],
                          kind="stable"))
    position = order.groupby("campaign_id", sort=False).cumcount()
    selected = pd.Series(False, index=pairs.index)
    selected.iloc[order.index.to_numpy()] = (position < top).to_numpy()
    return selected


def fairness_table(pairs: pd.DataFrame, by: str, score: str = "score",
                   rank_by: str | None = None, top: int = 10) -> pd.DataFrame:
    """Per group of ``by`` among the invitees in ``pairs`` (campaign_id, creator_id,
    gmv, ``score``; ``rank_by`` ranks within campaigns, ``score`` when None):

    invitees, invitee_share, mean_score, selected (pairs in their campaign's top
    ``top``), selection_rate (selected / invitees), selected_share (of all selected),
    sellers_rate (invitees with gmv > 0), gmv (realised), gmv_share, gmv_per_invitee,
    selection_vs_gmv (selected_share / gmv_share: < 1 when the model selects the
    group less than its realised gmv warrants; inf when a group with no gmv is
    selected) and gmv_captured (the share of the group's gmv realised by its selected
    invitees: low when the model leaves the group's sellers out of the top ``top``).
    A row ``all`` closes the table. Empty groups are left out.

    Every campaign ranks only its own invitees, who share its market: across markets,
    selected_share follows the number of campaigns, and gmv_captured (within each
    campaign) is the fairer comparison.
    """
    selected = selected_in_top(pairs, rank_by or score, top)
    frame = pd.DataFrame({"group": pairs[by], "score": pairs[score].astype(float),
                          "selected": selected.astype("int64"),
                          "gmv": pairs["gmv"].astype(float),
                          "seller": (pairs["gmv"] > 0).astype("int64")})
    frame["selected_gmv"] = frame["gmv"] * frame["selected"]
    summed = ["selected", "gmv", "seller", "selected_gmv"]
    groups = frame.groupby("group", observed=True, sort=True)
    sums = groups[summed].sum()
    sums.loc["all"] = frame[summed].sum()
    invitees = pd.concat([groups.size(), pd.Series({"all": len(frame)})])
    mean_score = pd.concat([groups["score"].mean(), pd.Series({"all": frame["score"].mean()})])
    total_selected, total_gmv = sums.loc["all", "selected"], sums.loc["all", "gmv"]
    table = pd.DataFrame({
        "invitees": invitees,
        "invitee_share": invitees / len(frame),
        "mean_score": mean_score,
        "selected": sums["selected"].astype("int64"),
        "selection_rate": sums["selected"] / invitees,
        "selected_share": sums["selected"] / total_selected if total_selected else np.nan,
        "sellers_rate": sums["seller"] / invitees,
        "gmv": sums["gmv"],
        "gmv_share": sums["gmv"] / total_gmv if total_gmv else np.nan,
        "gmv_per_invitee": sums["gmv"] / invitees,
    })
    with np.errstate(divide="ignore", invalid="ignore"):
        table["selection_vs_gmv"] = table["selected_share"] / table["gmv_share"]
    table["gmv_captured"] = sums["selected_gmv"] / sums["gmv"].where(sums["gmv"] > 0)
    table.index = pd.Index([str(i) for i in table.index], name=by)
    return table


def fairness_tables(pairs: pd.DataFrame, by=GROUP_COLUMNS, score: str = "score",
                    rank_by: str | None = None, top: int = 10) -> dict[str, pd.DataFrame]:
    """``fairness_table`` for each grouping column of ``by``."""
    return {column: fairness_table(pairs, column, score, rank_by, top) for column in by}


# ----------------------------------------------------------------------------- plots


def plot_metric_curves(curves: pd.DataFrame, metric: str = "ndcg") -> Figure:
    """``metric@k`` against k, one line per scorer (a ``metric_curves`` frame); the
    model thick, the oracle dashed."""
    fig = Figure(figsize=(7, 4.2), layout="constrained")
    ax = fig.subplots()
    for scorer in curves.columns:
        style: dict[str, dict[str, Any]] = {"model": dict(lw=3, color="black"),
                                            "oracle": dict(ls="--", color="grey")}
        ax.plot(curves.index, curves[scorer], marker="o", label=scorer, **style.get(scorer, {}))
    ax.set(xlabel="k", ylabel=f"{metric}@k (test)", xticks=list(curves.index),
           title=f"{metric}@k: model against baselines")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def plot_validation_curves(curves: pd.DataFrame) -> Figure:
    """Validation ndcg after each tree, one line per objective (``validation_curves``)."""
    fig = Figure(figsize=(6, 3.6), layout="constrained")
    ax = fig.subplots()
    for objective in curves.columns:
        ax.plot(curves.index, curves[objective], label=objective)
    ax.set(xlabel="trees", ylabel="validation ndcg", title="Validation curve")
    ax.legend()
    return fig


def plot_family_summary(table: pd.DataFrame) -> Figure:
    """Two panels of a ``family_summary`` table: share of split gain and mean
    |contribution| by family."""
    fig = Figure(figsize=(10, 4), layout="constrained")
    left, right = fig.subplots(1, 2, sharey=True)
    order = [f for f in (*FAMILIES, OTHER) if f in table.index][::-1]
    left.barh(order, table.loc[order, "gain_share"], color="tab:blue")
    left.set(xlabel="share of split gain", title="Importance by family")
    right.barh(order, table.loc[order, "mean_abs_contribution"], color="tab:orange")
    right.set(xlabel="mean |contribution| to raw score", title="Contributions by family")
    return fig


def plot_score_distribution(pairs: pd.DataFrame, score: str = "score", bins: int = 20) -> Figure:
    """Histograms (densities) of ``score`` for the pairs that sold in their campaign
    and for those that did not."""
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.subplots()
    edges = np.linspace(0, 100, bins + 1).tolist()
    sold = pairs["gmv"] > 0
    ax.hist(pairs.loc[~sold, score], bins=edges, density=True, alpha=0.6,
            label=f"no sales ({(~sold).sum():,})")
    ax.hist(pairs.loc[sold, score], bins=edges, density=True, alpha=0.6,
            label=f"sold ({sold.sum():,})")
    ax.set(xlabel=f"{score} (0-100)", ylabel="density", title="Score of test invitees by outcome")
    ax.legend()
    return fig


def plot_fairness(table: pd.DataFrame, title: str | None = None) -> Figure:
    """A ``fairness_table`` (without its ``all`` row) as bars: each group's share of the
    invitees, of the model's top-k selections and of the realised gmv; its mean score;
    and the share of its gmv that the selected invitees realised."""
    groups = table.drop(index="all", errors="ignore")
    fig = Figure(figsize=(13, 4), layout="constrained")
    left, right, captured = fig.subplots(1, 3, gridspec_kw={"width_ratios": [2, 1, 1]})
    x = np.arange(len(groups))
    for j, (column, label) in enumerate((("invitee_share", "invitees"),
                                         ("selected_share", "selected by the model"),
                                         ("gmv_share", "realised gmv"))):
        left.bar(x + (j - 1) * 0.27, groups[column], 0.27, label=label)
    rotation = 30 if len(groups) > 5 else 0
    left.set_xticks(x, groups.index, rotation=rotation)
    left.set(ylabel="share", title=title or f"Shares by {groups.index.name}")
    left.legend(fontsize="small")
    right.bar(x, groups["mean_score"], color="tab:grey")
    right.set_xticks(x, groups.index, rotation=rotation)
    right.set(ylabel="mean score (0-100)", title="Mean model score")
    captured.bar(x, groups["gmv_captured"], color="tab:green")
    if "all" in table.index:
        captured.axhline(table.loc["all", "gmv_captured"], color="black", ls="--", lw=1,
                         label="all")
        captured.legend(fontsize="small")
    captured.set_xticks(x, groups.index, rotation=rotation)
    captured.set(ylabel="share of the group's gmv", ylim=(0, 1),
                 title="Gmv of the group's selected")
    return fig
