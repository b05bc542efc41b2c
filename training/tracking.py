"""MLflow for training runs: the tracking URI, the run's record, the registry and champion.

Conventions (architecture document): the tracking URI is ``--tracking-uri``, else
``MLFLOW_TRACKING_URI``, else MLflow's default (``sqlite:///mlflow.db`` in the working
directory). A run logs the resolved config, a data fingerprint, every metric with the
baselines, plots, the feature registry and the model as a pyfunc. ``--register NAME``
registers a version; the alias ``champion`` moves to it only when it beats the current
champion's ndcg@10 on the same test campaigns.
"""

from __future__ import annotations

import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from features.registry import FAMILIES, OTHER, family_of, registry_frame
from training.metrics import mean_ndcg
from training.model import OUTPUT_COLUMNS, Scorer
from training.pyfunc import ENTRY_FILE, CreatorScoreModel
from training.run import TrainResult

CHAMPION = "champion"
MODEL_NAME_IN_RUN = "model"


class TrackingError(RuntimeError):
    """MLflow could not be used (unreachable server, bad URI); one-line message."""


def resolve_tracking_uri(cli_value: str | None) -> str:
    return cli_value or os.environ.get("MLFLOW_TRACKING_URI") or mlflow.get_tracking_uri()


def check_tracking_uri(uri: str, timeout: float = 5.0) -> None:
    """Fail fast (TrackingError) on a tracking URI that cannot work, before any training."""
    if uri.startswith(("http://", "https://")):
        try:
            urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout).close()
        except (urllib.error.URLError, OSError, ValueError) as err:
            reason = getattr(err, "reason", err)
            raise TrackingError(f"tracking URI {uri} is unreachable ({reason})") from None
    elif uri.startswith("sqlite:///"):
        folder = Path(uri[len("sqlite:///"):]).parent
        if not folder.is_dir():
            raise TrackingError(f"tracking URI {uri}: folder {folder} does not exist")
    elif uri.startswith("file:") or "://" not in uri:
        path = Path(uri[len("file://"):] if uri.startswith("file://") else uri)
        if not path.parent.is_dir():
            raise TrackingError(f"tracking URI {uri}: folder {path.parent} does not exist")


@dataclass(frozen=True)
class LoggedRun:
    run_id: str
    model_uri: str
    version: str | None = None
    champion: bool | None = None
    champion_note: str = ""


def log_training(result: TrainResult, tracking_uri: str, experiment: str,
                 register: str | None = None) -> LoggedRun:
    """Record ``result`` as one MLflow run (and a registered version when ``register``)."""
    mlflow.set_tracking_uri(tracking_uri)
    try:
        use_experiment(experiment, tracking_uri)
        with mlflow.start_run() as run:
            _log_record(result)
            model_info = _log_model(result.scorer, result.test)
        logged = LoggedRun(run_id=run.info.run_id, model_uri=model_info.model_uri)
        if register:
            logged = register_model(logged, register, result)
    except MlflowException as err:
        raise TrackingError(f"MLflow ({tracking_uri}): {err.message.splitlines()[0]}") from None
    return logged


def use_experiment(name: str, tracking_uri: str) -> None:
    """Make ``name`` the active experiment; a new one on an SQLite store keeps its
    artifacts in ``mlartifacts/`` beside the database, not in the working directory."""
    if tracking_uri.startswith("sqlite:///") and mlflow.get_experiment_by_name(name) is None:
        folder = Path(tracking_uri[len("sqlite:///"):]).resolve().parent / "mlartifacts"
        mlflow.create_experiment(name, artifact_location=folder.as_uri())
    mlflow.set_experiment(name)


def flat_metrics(metrics: dict) -> dict[str, float]:
    """``{"ndcg@10": {"model": x}}`` as MLflow metric names ``test_ndcg_at_10_model``."""
    out = {}
    for key, value in metrics.items():
        name = key.replace("@", "_at_")
        if isinstance(value, dict):
            out.update({f"test_{name}_{k}": float(v) for k, v in value.items()})
        elif isinstance(value, (int, float)):
            out[f"test_{name}"] = float(value)
    return out


def _log_record(result: TrainResult) -> None:
    cfg = result.config
    mlflow.log_params({k: (",".join(map(str, v)) if isinstance(v, tuple) else v)
                       for k, v in cfg.as_dict().items()})
    mlflow.log_params({"chosen_objective": result.chosen.objective,
                       "best_iteration": result.chosen.best_iteration})
    mlflow.log_dict(cfg.as_dict(), "config.json")
    mlflow.log_dict(result.fingerprint, "data_fingerprint.json")
    mlflow.log_params({f"data_{k}": v for k, v in result.fingerprint.items()})
    mlflow.log_dict(result.metrics, "metrics.json")
    mlflow.log_metrics(flat_metrics({k: v for k, v in result.metrics.items()
                                     if k not in ("objective", "best_iteration")}))
    client, run_id = MlflowClient(), mlflow.active_run().info.run_id
    curve_metrics = [Metric(f"valid_ndcg_at_{cfg.eval_at}_{objective}", value, 0, step)
                     for objective, fitted in result.candidates.items()
                     for step, value in enumerate(fitted.curve, start=1)]
    for start in range(0, len(curve_metrics), 1000):
        client.log_batch(run_id, metrics=curve_metrics[start:start + 1000])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "feature_registry.csv"
        registry_frame().to_csv(path, index=False)
        mlflow.log_artifact(str(path))
    for name, figure in review_figures(result).items():
        mlflow.log_figure(figure, f"plots/{name}.png")


def family_importance(booster: lgb.Booster) -> pd.Series:
    """Total split gain per family (other included), as a share of all gain."""
    gain = pd.Series(booster.feature_importance("gain"), index=booster.feature_name())
    by = gain.groupby(lambda name: family_of(name)).sum()
    return (by / by.sum()).reindex([*FAMILIES, OTHER], fill_value=0.0)


def family_mean_abs_contribution(scorer: Scorer, frame: pd.DataFrame, rows: int = 20000) -> pd.Series:
    sample = frame.iloc[:rows]
    contrib = scorer.contributions(sample).drop(columns="contrib_base")
    return contrib.abs().mean().rename(lambda c: c.removeprefix("contrib_"))


def _figure(size: tuple[float, float]):
    """A figure outside pyplot's global state (nothing to close, no GUI backend)."""
    fig = Figure(figsize=size)
    return fig, fig.add_subplot()


def review_figures(result: TrainResult) -> dict:
    """The run's plots: validation curves, importance and contributions by family, and
    ndcg@k of the model against the baselines (and oracle)."""
    figures = {}
    fig, ax = _figure((6, 4))
    for objective, fitted in result.candidates.items():
        ax.plot(range(1, len(fitted.curve) + 1), fitted.curve, label=objective)
    ax.set(xlabel="trees", ylabel=f"validation ndcg@{result.config.eval_at} (LightGBM, grade gains)",
           title="Validation curve")
    ax.legend()
    figures["validation_curve"] = fig

    fig, ax = _figure((6, 4))
    family_importance(result.scorer.booster).plot.barh(ax=ax)
    ax.set(xlabel="share of split gain", title="Importance by family")
    figures["importance_by_family"] = fig

    fig, ax = _figure((6, 4))
    family_mean_abs_contribution(result.scorer, result.test).plot.barh(ax=ax)
    ax.set(xlabel="mean |contribution| to raw score (test pairs)", title="Contributions by family")
    figures["contributions_by_family"] = fig

    fig, ax = _figure((7, 4))
    ks = result.config.ks
    table = pd.DataFrame({k: result.metrics[f"ndcg@{k}"] for k in ks}).T
    table.plot(ax=ax, marker="o")
    ax.set(xlabel="k", ylabel="ndcg@k (test)", title="Model against baselines", xticks=list(ks))
    figures["ndcg_at_k"] = fig
    return figures


def _log_model(scorer: Scorer, test: pd.DataFrame):
    example = test[scorer.features].head(5).reset_index(drop=True)
    output = scorer.explain(example)
    with tempfile.TemporaryDirectory() as tmp:
        paths = scorer.save(Path(tmp))
        return mlflow.pyfunc.log_model(
            name=MODEL_NAME_IN_RUN, python_model=str(ENTRY_FILE),
            artifacts={k: str(v) for k, v in paths.items()},
            signature=infer_signature(example, output[list(OUTPUT_COLUMNS)]),
            input_example=example,
            pip_requirements=[f"lightgbm=={lgb.__version__}", f"pandas=={pd.__version__}",
                              f"numpy=={np.__version__}", f"mlflow=={mlflow.__version__}"],
        )


def load_scorer(model_uri: str) -> Scorer:
    """The Scorer inside a logged or registered model (any MLflow model URI)."""
    model = mlflow.pyfunc.load_model(model_uri)
    python_model = model.unwrap_python_model()
    if not isinstance(python_model, CreatorScoreModel):
        raise TrackingError(f"{model_uri} is not a creator-scores model")
    return python_model.scorer


def register_model(logged: LoggedRun, name: str, result: TrainResult) -> LoggedRun:
    """Register the run's model; move ``champion`` to it if it beats the champion's
    ndcg@10 on this run's test campaigns (the first version is champion)."""
    client = MlflowClient()
    version = mlflow.register_model(logged.model_uri, name).version
    ours = result.metrics["ndcg@10"]["model"]
    try:
        current = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        current = None
    if current is None:
        promote, note = True, "first version: champion"
    else:
        theirs = champion_ndcg(f"models:/{name}@{CHAMPION}", result)
        if theirs is None:
            promote, note = True, (f"champion v{current.version} cannot score these features;"
                                   f" v{version} is champion")
        else:
            promote = ours > theirs
            note = (f"ndcg@10 on the same test campaigns: v{version} {ours:.4f} against champion "
                    f"v{current.version} {theirs:.4f}: "
                    + (f"v{version} is champion" if promote else f"v{current.version} stays champion"))
    if promote:
        client.set_registered_model_alias(name, CHAMPION, version)
    client.set_model_version_tag(name, version, "test_ndcg_at_10", f"{ours:.6f}")
    return LoggedRun(run_id=logged.run_id, model_uri=f"models:/{name}/{version}",
                     version=str(version), champion=promote, champion_note=note)


def champion_ndcg(uri: str, result: TrainResult) -> float | None:
    try:
        scorer = load_scorer(uri)
        raw = scorer.raw(result.test)
    except Exception:  # noqa: BLE001 - a champion of an older, incompatible format cannot compete
        return None
    test = result.test
    return mean_ndcg(test["campaign_id"].to_numpy(), test["gmv"].to_numpy(), raw, 10)


def metrics_table(metrics: dict) -> str:
    """A plain-text table: one row per scorer, one column per metric@k."""
    columns = [k for k, v in metrics.items() if isinstance(v, dict) and "@" in k
               and not k.startswith("validation")]
    frame = pd.DataFrame({c: metrics[c] for c in columns})
    return frame.to_string(float_format=lambda x: f"{x:.4f}")
