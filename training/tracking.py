"""MLflow for training runs: the tracking URI, the run's record, the registry and champion.

Conventions (architecture document): the tracking URI is ``--tracking-uri``, else
``MLFLOW_TRACKING_URI``, else MLflow's default (``sqlite:///mlflow.db`` in the working
directory). A run logs the resolved config, a data fingerprint, every metric with the
baselines, plots, the feature registry and the model as a pyfunc. ``--register NAME``
registers a version; the alias ``champion`` moves to it only when the gate
(``training.gate``) finds it better than the champion beyond noise, on test campaigns
the champion never learned from.

The logged and registered model is the one refitted on every labelled campaign
(``TrainResult.scorer``); the model fitted before the test period, whose metrics are the
run's, is kept in the run's ``evaluated_model/`` artifacts (same format), so the gate
can compare fairly later.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from mlflow.data.pandas_dataset import from_pandas
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from features.registry import FAMILIES, OTHER, family_of, registry_frame
from training.backtest import MEAN
from training.gate import GateDecision, describe, fair_campaigns, gate_decision, paired_ndcg
from training.model import OUTPUT_COLUMNS, Scorer
from training.pyfunc import ENTRY_FILE, CreatorScoreModel
from training.run import TrainResult

CHAMPION = "champion"
MODEL_NAME_IN_RUN = "model"
EVALUATED_MODEL_DIR = "evaluated_model"


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
    gate: GateDecision | None = None


def log_training(result: TrainResult, tracking_uri: str, experiment: str,
                 register: str | None = None, source: str | None = None,
                 pairs: pd.DataFrame | None = None) -> LoggedRun:
    """Record ``result`` as one MLflow run (and a registered version when ``register``).
    ``pairs`` (all training pairs) and ``source`` (the data directory) make the run's
    dataset inputs."""
    mlflow.set_tracking_uri(tracking_uri)
    try:
        use_experiment(experiment, tracking_uri)
        with mlflow.start_run() as run:
            _log_record(result, run.info.run_id)
            _log_datasets(result, pairs, source)
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
    """``{"ndcg@10": {"model": x}}`` as MLflow metric names ``test_ndcg_at_10_model``;
    ``test_queries`` stays itself, ``validation_ndcg@10`` reads ``validation_ndcg_at_10_*``."""
    out = {}
    for key, value in metrics.items():
        name = key.replace("@", "_at_")
        if not name.startswith(("test_", "validation_")):
            name = f"test_{name}"
        if isinstance(value, dict):
            out.update({f"{name}_{k}": float(v) for k, v in value.items()})
        elif isinstance(value, (int, float)):
            out[name] = float(value)
    return out


def backtest_metrics(table: pd.DataFrame) -> dict[str, float]:
    """The backtest table as metrics ``backtest_<metric>_at_<k>_fold<j>`` and
    ``backtest_<metric>_at_<k>_mean`` with ``_lo`` / ``_hi`` for the interval."""
    out = {}
    values = [c for c in table.columns if "@" in c]
    for fold, row in table.iterrows():
        label = MEAN if fold == MEAN else f"fold{fold}"
        for column in values:
            name = column.replace("@", "_at_")
            for suffix in ("_lo", "_hi"):
                if name.endswith(suffix):
                    name, column_suffix = name[:-len(suffix)], suffix
                    break
            else:
                column_suffix = ""
            out[f"backtest_{name}_{label}{column_suffix}"] = float(row[column])
    return out


def data_digest(fingerprint: dict) -> str:
    """A short digest of the data fingerprint (row counts, time ranges, split)."""
    return hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:16]


def _log_datasets(result: TrainResult, pairs: pd.DataFrame | None, source: str | None) -> None:
    """The training pairs and the test pairs as the run's dataset inputs, with the data
    fingerprint's digest, so the UI shows the lineage."""
    digest = data_digest(result.fingerprint)
    test = result.test[[c for c in result.test.columns if not c.startswith("score_")]]
    inputs = [("test_pairs", "evaluation", test)]
    if pairs is not None:
        inputs.insert(0, ("training_pairs", "training", pairs))
    for name, context, frame in inputs:
        with warnings.catch_warnings():
            # MLflow registers local paths under two equivalent schemes and says so
            warnings.filterwarnings("ignore", message="The specified dataset source")
            # MLflow's own default for source is None; its annotation leaves None out
            dataset = from_pandas(frame, source=source, name=name, digest=digest,  # type: ignore[arg-type]
                                              targets="gmv")
        mlflow.log_input(dataset, context=context)


def _log_record(result: TrainResult, run_id: str) -> None:
    cfg = result.config
    mlflow.log_params({k: (",".join(map(str, v)) if isinstance(v, tuple) else v)
                       for k, v in cfg.as_dict().items()})
    mlflow.log_params({"chosen_objective": result.chosen.objective,
                       "best_iteration": result.chosen.best_iteration,
                       "served_trees": result.served_trees})
    mlflow.log_dict(cfg.as_dict(), "config.json")
    mlflow.log_dict(result.fingerprint, "data_fingerprint.json")
    mlflow.log_params({f"data_{k}": v for k, v in result.fingerprint.items()})
    mlflow.log_dict(result.metrics, "metrics.json")
    mlflow.log_metrics(flat_metrics({k: v for k, v in result.metrics.items()
                                     if k not in ("objective", "best_iteration")}))
    client = MlflowClient()
    curve_metrics = [Metric(f"valid_ndcg_at_{cfg.eval_at}_{objective}", value, 0, step)
                     for objective, fitted in result.candidates.items()
                     for step, value in enumerate(fitted.curve, start=1)]
    for start in range(0, len(curve_metrics), 1000):
        client.log_batch(run_id, metrics=curve_metrics[start:start + 1000])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "feature_registry.csv"
        registry_frame().to_csv(path, index=False)
        mlflow.log_artifact(str(path))
        if result.backtest is not None:
            path = Path(tmp) / "backtest.csv"
            result.backtest.to_csv(path)
            mlflow.log_artifact(str(path))
        if result.evaluated is not None:
            result.evaluated.save(Path(tmp) / EVALUATED_MODEL_DIR)
            mlflow.log_artifacts(str(Path(tmp) / EVALUATED_MODEL_DIR), EVALUATED_MODEL_DIR)
    if result.backtest is not None:
        mlflow.log_metrics(backtest_metrics(result.backtest))
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
    fig = Figure(figsize=size, layout="constrained")  # room for every label
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
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figures["ndcg_at_k"] = fig
    if result.backtest is not None:
        figures["backtest"] = backtest_figure(result.backtest, result.config.eval_at)
    return figures


def backtest_figure(table: pd.DataFrame, k: int) -> Figure:
    """ndcg@k of each backtest fold with its interval, the mean as a band (and the
    oracle's per fold, dashed, when known)."""
    fig, ax = _figure((7, 4))
    folds = table.drop(index=MEAN)
    x = np.arange(1, len(folds) + 1)
    metric = f"ndcg@{k}"
    ax.errorbar(x, folds[metric], yerr=[folds[metric] - folds[f"{metric}_lo"],
                                       folds[f"{metric}_hi"] - folds[metric]],
                fmt="o", capsize=4, color="black", label="model (fold, interval)")
    mean = table.loc[MEAN]
    ax.axhspan(mean[f"{metric}_lo"], mean[f"{metric}_hi"], color="tab:blue", alpha=0.2,
               label=f"mean {mean[metric]:.3f}, interval")
    ax.axhline(mean[metric], color="tab:blue")
    if f"oracle_{metric}" in table.columns:
        ax.plot(x, folds[f"oracle_{metric}"], "--", marker="s", color="grey", label="oracle")
    labels = [f"{n}\n{d[:10]}" for n, d in zip(folds.index, folds["test_from"], strict=True)]
    ax.set_xticks(x, labels)
    ax.set(xlabel="fold (test from)", ylabel=f"{metric} (test)", title="Walk-forward backtest")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


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
    if not isinstance(python_model, CreatorScoreModel) or python_model.scorer is None:
        raise TrackingError(f"{model_uri} is not a creator-scores model")
    return python_model.scorer


def register_model(logged: LoggedRun, name: str, result: TrainResult) -> LoggedRun:
    """Register the run's model; move ``champion`` to it when the gate (``challenge``)
    says so; the first version is champion. The decision goes to the run and the
    version's tags."""
    client = MlflowClient()
    version = str(mlflow.register_model(logged.model_uri, name).version)
    try:
        current = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        current = None
    decision = None
    if current is None:
        promote, note = True, "first version: champion"
    else:
        promote, note, decision = challenge(name, current, version, result)
    if promote:
        client.set_registered_model_alias(name, CHAMPION, version)
    ours = result.metrics["ndcg@10"]["model"]
    client.set_model_version_tag(name, version, "test_ndcg_at_10", f"{ours:.6f}")
    client.set_model_version_tag(name, version, "gate", note)
    client.set_tag(logged.run_id, "gate", note)
    if decision is not None:
        client.log_batch(logged.run_id, metrics=[
            Metric(f"gate_ndcg_at_10_{key}", float(getattr(decision, key)), 0, 0)
            for key in ("challenger", "champion", "diff", "lo", "hi", "campaigns")])
    return LoggedRun(run_id=logged.run_id, model_uri=f"models:/{name}/{version}",
                     version=version, champion=promote, champion_note=note, gate=decision)


def challenge(name: str, current, version: str, result: TrainResult
              ) -> tuple[bool, str, GateDecision | None]:
    """(promote, note, decision) for the challenger ``result`` against the champion
    version ``current``: the champion's served model if at least ``gate_min_campaigns``
    test campaigns were created after its training data ended, else its run's evaluated
    model (trained before its own test period). A champion that cannot score these
    features (an older format) gives way; one that saw too much of this test keeps the
    alias."""
    cfg = result.config
    champion = current.version
    try:
        models: list[tuple[str, Scorer | None]] = [("", load_scorer(f"models:/{name}/{champion}"))]
        models.append((" (its evaluated model)", _evaluated_scorer(current.run_id)))
        scores = [(which, scorer.trained_until, scorer.raw(result.test)) for which, scorer in models
                  if scorer is not None and scorer.trained_until]
    except Exception:  # noqa: BLE001 - a champion of an older, incompatible format cannot compete
        scores = None
    if not scores:
        return True, (f"champion v{champion} cannot score these features or predates the fair "
                      f"gate; v{version} is champion"), None
    test = result.test.assign(_challenger=result.test["score_model"])
    for which, until, raw in scores:
        fair = fair_campaigns(test.assign(_champion=raw), until)
        paired = paired_ndcg(fair, fair["_challenger"].to_numpy(), fair["_champion"].to_numpy())
        if len(paired) >= cfg.gate_min_campaigns:
            decision = gate_decision(paired, cfg.confidence, cfg.bootstrap_samples, cfg.seed)
            return decision.promote, describe(decision, version, champion, which), decision
    return False, (f"fewer than {cfg.gate_min_campaigns} test campaigns that champion "
                   f"v{champion} never learned from: v{champion} stays champion"), None


def _evaluated_scorer(run_id: str) -> Scorer | None:
    """The evaluated model kept in run ``run_id``, or None when the run has none."""
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=EVALUATED_MODEL_DIR, dst_path=tmp))
            return Scorer.load(folder / "booster.txt", folder / "scoring.json")
    except (MlflowException, OSError):
        return None


def metrics_table(metrics: dict) -> str:
    """A plain-text table: one row per scorer, one column per metric@k."""
    columns = [k for k, v in metrics.items() if isinstance(v, dict) and "@" in k
               and not k.startswith("validation")]
    frame = pd.DataFrame({c: metrics[c] for c in columns})
    return frame.to_string(float_format=lambda x: f"{x:.4f}")
