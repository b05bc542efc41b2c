"""Experiment review: a small run to review, and the runs of an MLflow experiment.

``quick_experiment`` trains a small model and logs it, so that a notebook has something to
review; everything else only reads the store. Every reader takes the tracking URI and
leaves MLflow's global tracking URI as it found it.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from training.config import TrainConfig, load_config
from training.model import Scorer
from training.run_record import EVALUATED_MODEL_DIR
from training.stage import run_training
from training.tracking import (
    DEFAULT_EXPERIMENT,
    LoggedRun,
    evaluated_scorer,
    load_scorer,
    using_tracking_uri,
)

# MLflow metric names of training.tracking.flat_metrics: test_<metric>_at_<k>_<scorer>.
METRIC_NAME = re.compile(r"^test_(?P<metric>ndcg|gmv_capture)_at_(?P<k>\d+)_(?P<scorer>.+)$")
VALID_CURVE_PREFIX = "valid_ndcg_at_"


# ----------------------------------------------------------------------------- a run to review


def quick_config() -> TrainConfig:
    """The default config made small for notebooks and tests: 40 rounds at most, one
    objective (lambdarank), one thread, no earlier backtest folds."""
    return dataclasses.replace(
        load_config(), max_rounds=40, objectives=("lambdarank",), num_threads=1, backtest_folds=1
    )


def quick_experiment(
    data_dir,
    tracking_uri: str,
    experiment: str = DEFAULT_EXPERIMENT,
    cfg: TrainConfig | None = None,
    register: str | None = None,
) -> LoggedRun:
    """Train on the data directory ``data_dir`` (with the oracle when
    ``data_dir/truth/expected_gmv.parquet`` exists) and log the run to ``tracking_uri``:
    ``training.stage.run_training``, what ``python -m training`` runs; ``cfg`` defaults to
    ``quick_config()``. Returns the logged run (run_id, model_uri). With an SQLite URI the
    artifacts go beside the database (``training.tracking.experiment_id``)."""
    truth_dir = Path(data_dir) / "truth"
    _, logged = run_training(
        Path(data_dir),
        tracking_uri,
        experiment,
        cfg or quick_config(),
        truth_dir=truth_dir if (truth_dir / "expected_gmv.parquet").is_file() else None,
        register=register,
    )
    return logged


# ----------------------------------------------------------------------------- runs from MLflow


def latest_runs(
    tracking_uri: str, experiment: str = DEFAULT_EXPERIMENT, n: int = 5
) -> pd.DataFrame:
    """The test metrics of the ``n`` latest finished runs of ``experiment`` as a tidy
    frame: one row per (run, metric, k, scorer) with columns run_id, run_name,
    start_time (UTC), objective, test_queries, metric (``ndcg`` or ``gmv_capture``),
    k, scorer (model, the baselines, pointwise, oracle when logged) and value; newest
    run first. An unknown experiment or one without runs gives an empty frame."""
    client = MlflowClient(tracking_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    columns = [
        "run_id",
        "run_name",
        "start_time",
        "objective",
        "test_queries",
        "metric",
        "k",
        "scorer",
        "value",
    ]
    if found is None:
        return pd.DataFrame(columns=columns)
    runs = client.search_runs(
        [found.experiment_id],
        filter_string="attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=n,
    )
    return tidy_run_metrics(
        [
            {
                "run_id": run.info.run_id,
                "run_name": run.info.run_name,
                "start_time": pd.Timestamp(run.info.start_time, unit="ms", tz="UTC"),
                "objective": run.data.params.get("chosen_objective", ""),
                "metrics": run.data.metrics,
            }
            for run in runs
        ],
        columns,
    )


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
                rows.append(
                    {
                        "run_id": run["run_id"],
                        "run_name": run.get("run_name", ""),
                        "start_time": run.get("start_time"),
                        "objective": run.get("objective", ""),
                        "test_queries": metrics.get("test_queries", np.nan),
                        "metric": match["metric"],
                        "k": int(match["k"]),
                        "scorer": match["scorer"],
                        "value": float(value),
                    }
                )
    frame = pd.DataFrame(rows, columns=columns or None)
    if frame.empty:
        return frame
    order = frame.groupby("run_id", sort=False)["start_time"].transform("first")
    return (
        frame.assign(_start=order)
        .sort_values(
            ["_start", "run_id", "metric", "k", "scorer"],
            ascending=[False, True, True, True, True],
            kind="stable",
        )
        .drop(columns="_start")
        .reset_index(drop=True)
    )


def runs_overview(runs: pd.DataFrame, metric: str = "ndcg", k: int = 10) -> pd.DataFrame:
    """One row per run of a ``latest_runs`` frame (newest first): start_time, objective,
    test_queries and ``metric@k`` of every scorer, model first."""
    chosen = runs[(runs["metric"] == metric) & (runs["k"] == k)]
    values = chosen.pivot(index="run_id", columns="scorer", values="value")
    about = chosen.drop_duplicates("run_id").set_index("run_id")[
        ["start_time", "objective", "test_queries"]
    ]
    table = about.join(values[_scorer_order(values.columns)])
    table.columns.name = None
    return table.sort_values("start_time", ascending=False, kind="stable")


def run_metrics(runs: pd.DataFrame, run_id: str | None = None) -> pd.DataFrame:
    """One run's metrics (the latest when ``run_id`` is None): a row per scorer (model
    first, oracle last), a column per ``metric@k``; the shape of ``metrics_table``."""
    run = runs[runs["run_id"] == (run_id or latest_run_id(runs))]
    table = run.assign(column=run["metric"] + "@" + run["k"].astype(str)).pivot(
        index="scorer", columns="column", values="value"
    )
    ks = sorted(run["k"].unique())
    columns = [
        f"{m}@{k}" for m in ("ndcg", "gmv_capture") for k in ks if f"{m}@{k}" in table.columns
    ]
    return table.reindex(index=_scorer_order(table.index), columns=columns)


def metric_curves(
    runs: pd.DataFrame, metric: str = "ndcg", run_id: str | None = None
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
        objective = name[len(VALID_CURVE_PREFIX) :].split("_", 1)[1]
        curves[objective] = pd.Series({m.step: m.value for m in history}).sort_index()
    frame = pd.DataFrame(curves)
    frame.index.name = "trees"
    return frame


def run_model_uri(tracking_uri: str, run_id: str) -> str:
    """The URI of the model logged by run ``run_id`` (``models:/m-...``): the **served**
    model, refitted on every labelled campaign, the run's test campaigns included. It is
    for partner lists; never score the run's test pairs with it (``evaluated_run_scorer``
    is the model the run's metrics belong to)."""
    client = MlflowClient(tracking_uri=tracking_uri)
    experiment_id = client.get_run(run_id).info.experiment_id
    models = client.search_logged_models(
        experiment_ids=[experiment_id], filter_string=f"source_run_id = '{run_id}'"
    )
    if not models:
        raise ValueError(f"run {run_id} logged no model")
    return models[0].model_uri


def latest_model_uri(tracking_uri: str, experiment: str = DEFAULT_EXPERIMENT) -> str:
    """The served model's URI (``run_model_uri``) of the newest finished run of
    ``experiment`` with test metrics."""
    return run_model_uri(tracking_uri, latest_run_id(latest_runs(tracking_uri, experiment, n=1)))


def run_config(tracking_uri: str, run_id: str) -> TrainConfig:
    """The resolved training config a run logged (``config.json``)."""
    client = MlflowClient(tracking_uri=tracking_uri)
    with using_tracking_uri(tracking_uri):
        values = mlflow.artifacts.load_dict(
            f"{client.get_run(run_id).info.artifact_uri}/config.json"
        )
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    known: dict[str, Any] = {
        k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in fields
    }
    return dataclasses.replace(load_config(), **known)  # a key the run lacks: today's default


def evaluated_run_scorer(tracking_uri: str, run_id: str) -> Scorer:
    """The evaluated model kept in run ``run_id``: fitted before the run's test period,
    the model its test metrics belong to, and the one to score its test pairs with
    (``review.scores.scored_test_pairs``). ValueError when the run kept none."""
    with using_tracking_uri(tracking_uri):
        scorer = evaluated_scorer(run_id)
    if scorer is None:
        raise ValueError(
            f"run {run_id} kept no evaluated model ({EVALUATED_MODEL_DIR}/): retrain to "
            "review its test pairs"
        )
    return scorer


def load_run_scorer(tracking_uri: str, model_uri: str) -> Scorer:
    """The Scorer of any MLflow model URI in the store at ``tracking_uri``."""
    with using_tracking_uri(tracking_uri):
        return load_scorer(model_uri)
