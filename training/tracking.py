"""MLflow for training runs: the tracking URI, the run (its record: ``training.run_record``),
the registry and champion.

Conventions: the tracking URI is ``--tracking-uri``, else
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

import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from training.gate import (
    WORSE,
    GateDecision,
    describe,
    fair_campaigns,
    gate_decision,
    paired_ndcg,
)
from training.model import Scorer
from training.pyfunc import CreatorScoreModel
from training.run import TrainResult
from training.run_record import EVALUATED_MODEL_DIR, log_datasets, log_model, log_record

CHAMPION = "champion"
DEFAULT_EXPERIMENT = "creator-scores"
TRACKING_URI_VARIABLE = "MLFLOW_TRACKING_URI"


class TrackingError(RuntimeError):
    """MLflow could not be used (unreachable server, bad URI); one-line message."""


def resolve_tracking_uri(cli_value: str | None) -> str:
    """``--tracking-uri``, else ``$MLFLOW_TRACKING_URI``, else MLflow's default."""
    return cli_value or os.environ.get(TRACKING_URI_VARIABLE) or mlflow.get_tracking_uri()


def check_tracking_uri(uri: str, timeout: float = 5.0) -> None:
    """Fail fast (TrackingError) on a tracking URI that cannot work, before any training."""
    if uri.startswith(("http://", "https://")):
        try:
            urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout).close()
        except (urllib.error.URLError, OSError, ValueError) as err:
            reason = getattr(err, "reason", err)
            raise TrackingError(f"tracking URI {uri} is unreachable ({reason})") from None
    elif uri.startswith("sqlite:///"):
        folder = Path(uri[len("sqlite:///") :]).parent
        if not folder.is_dir():
            raise TrackingError(f"tracking URI {uri}: folder {folder} does not exist")
    elif uri.startswith("file:") or "://" not in uri:
        path = Path(uri[len("file://") :] if uri.startswith("file://") else uri)
        if not path.parent.is_dir():
            raise TrackingError(f"tracking URI {uri}: folder {path.parent} does not exist")


@dataclass(frozen=True)
class LoggedRun:
    """A logged run: its id and model URI; with --register, the version and the gate's decision."""

    run_id: str
    model_uri: str
    version: str | None = None
    champion: bool | None = None
    champion_note: str = ""
    gate: GateDecision | None = None


def log_training(
    result: TrainResult,
    tracking_uri: str,
    experiment: str,
    register: str | None = None,
    source: str | None = None,
    pairs: pd.DataFrame | None = None,
) -> LoggedRun:
    """Record ``result`` as one MLflow run (and a registered version when ``register``).
    ``pairs`` (all training pairs) and ``source`` (the data directory) make the run's
    dataset inputs. MLflow's tracking URI and active experiment are as before afterwards."""
    try:
        with using_tracking_uri(tracking_uri):
            with mlflow.start_run(experiment_id=experiment_id(experiment, tracking_uri)) as run:
                log_record(result, run.info.run_id)
                log_datasets(result, pairs, source)
                model_info = log_model(result.scorer, result.test)
            logged = LoggedRun(run_id=run.info.run_id, model_uri=model_info.model_uri)
            if register:
                logged = register_model(logged, register, result)
    except MlflowException as err:
        raise TrackingError(f"MLflow ({tracking_uri}): {err.message.splitlines()[0]}") from None
    return logged


@contextmanager
def using_tracking_uri(uri: str) -> Iterator[None]:
    """MLflow's tracking URI set to ``uri`` inside the ``with`` block and restored after
    it, with the ``MLFLOW_TRACKING_URI`` variable that ``mlflow.set_tracking_uri`` sets."""
    variable = os.environ.get(TRACKING_URI_VARIABLE)
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        # None is MLflow's own way back to no URI of its own (its annotation leaves None
        # out); the variable, when there was one, then gives the URI as before, and still
        # follows it when it changes later (a URI set back explicitly would not)
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
        if variable is not None:
            os.environ[TRACKING_URI_VARIABLE] = variable


def experiment_id(name: str, tracking_uri: str) -> str:
    """The id of experiment ``name`` at ``tracking_uri``, created when missing; a new one
    on an SQLite store keeps its artifacts in ``mlartifacts/`` beside the database, not
    in the working directory. MLflow's active experiment is left alone."""
    client = MlflowClient(tracking_uri=tracking_uri)
    found = client.get_experiment_by_name(name)
    if found is not None:
        if found.lifecycle_stage == "deleted":
            raise TrackingError(
                f"MLflow ({tracking_uri}): experiment {name!r} is deleted "
                "(restore it or choose another name)"
            )
        return found.experiment_id
    location = None
    if tracking_uri.startswith("sqlite:///"):
        folder = Path(tracking_uri[len("sqlite:///") :]).resolve().parent / "mlartifacts"
        location = folder.as_uri()
    return client.create_experiment(name, artifact_location=location)


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
    version's tags. GateError when the gate could not decide: the version is registered,
    the champion keeps the alias."""
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
        try:
            promote, note, decision = challenge(name, current, version, result)
        except GateError as err:
            client.set_model_version_tag(name, version, "gate", f"undecided: {err}")
            client.set_tag(logged.run_id, "gate", f"undecided: {err}")
            raise
    if promote:
        client.set_registered_model_alias(name, CHAMPION, version)
    ours = result.metrics["ndcg@10"]["model"]
    client.set_model_version_tag(name, version, "test_ndcg_at_10", f"{ours:.6f}")
    client.set_model_version_tag(name, version, "gate", note)
    client.set_tag(logged.run_id, "gate", note)
    if decision is not None:
        client.log_batch(
            logged.run_id,
            metrics=[
                Metric(f"gate_ndcg_at_10_{key}", float(getattr(decision, key)), 0, 0)
                for key in ("challenger", "champion", "diff", "lo", "hi", "campaigns")
            ],
        )
    return LoggedRun(
        run_id=logged.run_id,
        model_uri=f"models:/{name}/{version}",
        version=version,
        champion=promote,
        champion_note=note,
        gate=decision,
    )


class GateError(TrackingError):
    """The gate could not compare the champion with the challenger (the champion's model
    could not be loaded or could not score): the champion stays. One line."""


def _first_line(err: BaseException) -> str:
    text = str(getattr(err, "message", None) or err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0]}" if text else type(err).__name__


def lacking_features(scorer: Scorer, test: pd.DataFrame) -> list[str]:
    """The features ``scorer`` expects that the current pairs ``test`` do not have."""
    return [name for name in scorer.features if name not in test.columns]


def challenge(
    name: str, current, version: str, result: TrainResult
) -> tuple[bool, str, GateDecision | None]:
    """(promote, note, decision) for the challenger ``result`` against the champion
    version ``current``: the champion's served model if at least ``gate_min_campaigns``
    test campaigns were created after its training data ended, else its run's evaluated
    model (trained before its own test period).

    Fails closed: a champion that cannot score the current features (they lack some of
    its own: an older format) or that predates the fair gate (no ``trained_until``) gives
    way; one that saw too much of this test keeps the alias; any failure to load or score
    the champion (MLflow, storage, missing artifacts) is a GateError naming the cause,
    and the alias stays where it is."""
    cfg = result.config
    champion = current.version
    stays = f"v{champion} stays champion, v{version} is registered without the alias"
    try:
        served = load_scorer(f"models:/{name}/{champion}")
        evaluated = evaluated_scorer(current.run_id)
    except Exception as err:  # noqa: BLE001 - any failure keeps the champion, named in one line
        raise GateError(
            f"gate: champion v{champion} could not be loaded ({_first_line(err)}): {stays}"
        ) from None
    models = [("", served), (" (its evaluated model)", evaluated)]
    lacking = lacking_features(served, result.test)
    if lacking:
        return (
            True,
            (
                f"champion v{champion} cannot score these features (it expects "
                f"{', '.join(lacking[:3])}); v{version} is champion"
            ),
            None,
        )
    if not served.trained_until:
        return True, f"champion v{champion} predates the fair gate; v{version} is champion", None
    try:
        scores = [
            (which, scorer.trained_until, scorer.raw(result.test))
            for which, scorer in models
            if scorer is not None and scorer.trained_until
        ]
    except Exception as err:  # noqa: BLE001 - as above
        raise GateError(
            f"gate: champion v{champion} could not score the test pairs "
            f"({_first_line(err)}): {stays}"
        ) from None
    test = result.test.assign(_challenger=result.test["score_model"])
    for which, until, raw in scores:
        fair = fair_campaigns(test.assign(_champion=raw), until)
        paired = paired_ndcg(fair, fair["_challenger"].to_numpy(), fair["_champion"].to_numpy())
        if len(paired) >= cfg.gate_min_campaigns:
            decision = gate_decision(paired, cfg.confidence, cfg.bootstrap_samples, cfg.seed)
            if upgrades_sales(served, result.scorer, decision):
                note = describe(decision, version, champion, which, no_sales=True)
                return True, note, decision
            return decision.promote, describe(decision, version, champion, which), decision
    return (
        False,
        (
            f"fewer than {cfg.gate_min_campaigns} test campaigns that champion "
            f"v{champion} never learned from: v{champion} stays champion"
        ),
        None,
    )


def upgrades_sales(champion: Scorer, challenger: Scorer, decision: GateDecision) -> bool:
    """True when a challenger that ranks no worse (a tie or not significant) should
    replace a champion that gives no expected sales (saved before the sales model, or in
    its older format) because it gives them."""
    return (
        not decision.promote
        and decision.verdict != WORSE
        and champion.sales is None
        and challenger.sales is not None
    )


def evaluated_scorer(run_id: str) -> Scorer | None:
    """The evaluated model kept in run ``run_id`` (fitted before the run's test period),
    from MLflow's current tracking URI; None when the run kept none (it predates them).
    A kept model that cannot be read raises (MlflowException, OSError ...)."""
    kept = {a.path for a in MlflowClient().list_artifacts(run_id)}
    if EVALUATED_MODEL_DIR not in kept:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(
            mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=EVALUATED_MODEL_DIR, dst_path=tmp
            )
        )
        return Scorer.load(folder / "booster.txt", folder / "scoring.json")


def metrics_table(metrics: dict) -> str:
    """A plain-text table: one row per scorer, one column per metric@k."""
    columns = [
        k
        for k, v in metrics.items()
        if isinstance(v, dict) and "@" in k and not k.startswith("validation")
    ]
    frame = pd.DataFrame({c: metrics[c] for c in columns})
    return frame.to_string(float_format=lambda x: f"{x:.4f}")
