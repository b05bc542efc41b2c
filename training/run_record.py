"""What one training run records in MLflow: params, metrics, artifacts, datasets, plots
and the model. Each ``log_*`` writes into the active run that
``training.tracking.log_training`` opens.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import warnings
from pathlib import Path

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
from mlflow.data.pandas_dataset import from_pandas
from mlflow.entities import Metric
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from features.registry import registry_frame
from training.backtest import MEAN
from training.figures import review_figures
from training.model import OUTPUT_COLUMNS, Scorer
from training.pyfunc import ENTRY_FILE
from training.run import TrainResult

MODEL_NAME_IN_RUN = "model"
EVALUATED_MODEL_DIR = "evaluated_model"


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
                    name, column_suffix = name[: -len(suffix)], suffix
                    break
            else:
                column_suffix = ""
            out[f"backtest_{name}_{label}{column_suffix}"] = float(row[column])
    return out


def data_digest(fingerprint: dict) -> str:
    """A short digest of the data fingerprint (row counts, time ranges, split)."""
    return hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:16]


def log_datasets(result: TrainResult, pairs: pd.DataFrame | None, source: str | None) -> None:
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
            given = {"source": source} if source is not None else {}  # MLflow's default: None
            dataset = from_pandas(frame, name=name, digest=digest, targets="gmv", **given)
        mlflow.log_input(dataset, context=context)


def log_record(result: TrainResult, run_id: str) -> None:
    """Params (the resolved config, the chosen objective, the data fingerprint), metrics
    (test, backtest, validation curves), the config, fingerprint, feature registry and
    backtest as artifacts, the evaluated model and the plots, into the active run."""
    cfg = result.config
    mlflow.log_params(
        {
            k: (",".join(map(str, v)) if isinstance(v, tuple) else v)
            for k, v in cfg.as_dict().items()
        }
    )
    mlflow.log_params(
        {
            "chosen_objective": result.chosen.objective,
            "best_iteration": result.chosen.best_iteration,
            "served_trees": result.served_trees,
        }
    )
    mlflow.log_dict(cfg.as_dict(), "config.json")
    mlflow.log_dict(result.fingerprint, "data_fingerprint.json")
    mlflow.log_params({f"data_{k}": v for k, v in result.fingerprint.items()})
    mlflow.log_dict(result.metrics, "metrics.json")
    mlflow.log_metrics(
        flat_metrics(
            {k: v for k, v in result.metrics.items() if k not in ("objective", "best_iteration")}
        )
    )
    client = MlflowClient()
    curve_metrics = [
        Metric(f"valid_ndcg_at_{cfg.eval_at}_{objective}", value, 0, step)
        for objective, fitted in result.candidates.items()
        for step, value in enumerate(fitted.curve, start=1)
    ]
    for start in range(0, len(curve_metrics), 1000):
        client.log_batch(run_id, metrics=curve_metrics[start : start + 1000])
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


def log_model(scorer: Scorer, test: pd.DataFrame):
    """The served model as a pyfunc from code (nothing pickled), with its signature and
    five test rows as the input example, into the active run."""
    example = test[scorer.features].head(5).reset_index(drop=True)
    output = scorer.explain(example)
    with tempfile.TemporaryDirectory() as tmp:
        paths = scorer.save(Path(tmp))
        return mlflow.pyfunc.log_model(
            name=MODEL_NAME_IN_RUN,
            python_model=str(ENTRY_FILE),
            artifacts={k: str(v) for k, v in paths.items()},
            signature=infer_signature(example, output[list(OUTPUT_COLUMNS)]),
            input_example=example,
            pip_requirements=[
                f"lightgbm=={lgb.__version__}",
                f"pandas=={pd.__version__}",
                f"numpy=={np.__version__}",
                f"mlflow=={mlflow.__version__}",
            ],
        )
