"""Load the model that scores briefs, by MLflow model URI, and name its version.

Accepted URIs are MLflow's: ``models:/NAME@ALIAS``, ``models:/NAME/VERSION``,
``runs:/RUN_ID/model``, a local model folder, ... The tracking (and registry) URI is the
training stage's: ``--tracking-uri``, else ``MLFLOW_TRACKING_URI``, else MLflow's default.
An alias is resolved to its version first, and that version is loaded and reported
(``models:/NAME/3``), so a partner list always names the exact model that scored it even
if the alias moves meanwhile. Any other URI is reported as given.

Serving only reads: a SQLite tracking URI whose database file does not exist is an error
here (MLflow would silently create an empty one).
"""

from __future__ import annotations

import re
from pathlib import Path

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from features.registry import FEATURE_NAMES
from training.model import Scorer
from training.tracking import (
    TrackingError,
    check_tracking_uri,
    load_scorer,
    resolve_tracking_uri,
    using_tracking_uri,
)

ALIAS_URI = re.compile(r"^models:/(?P<name>[^/@]+)@(?P<alias>[^/@]+)/?$")


class ModelError(ValueError):
    """A model that cannot be used for serving (unknown URI or alias, wrong features);
    the message is one line."""


def _first_line(err: BaseException) -> str:
    text = str(getattr(err, "message", "") or err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def check_serving_tracking_uri(uri: str) -> None:
    """ModelError for a tracking URI that cannot hold the model (see the module doc)."""
    try:
        check_tracking_uri(uri)
    except TrackingError as err:
        raise ModelError(str(err)) from None
    if uri.startswith("sqlite:///"):
        path = Path(uri[len("sqlite:///") :])
        if not path.is_file():
            raise ModelError(
                f"tracking URI {uri}: no tracking database at {path} (give "
                "--tracking-uri or set MLFLOW_TRACKING_URI)"
            )


def resolve_model_version(model_uri: str, client: MlflowClient) -> str:
    """``models:/NAME/VERSION`` for an alias URI; any other URI unchanged."""
    match = ALIAS_URI.match(model_uri)
    if not match:
        return model_uri
    try:
        version = client.get_model_version_by_alias(match["name"], match["alias"]).version
    except MlflowException as err:
        raise ModelError(f"model {model_uri}: {_first_line(err)}") from None
    return f"models:/{match['name']}/{version}"


def check_features(scorer: Scorer, model_version: str = "model") -> None:
    """ModelError unless the model expects exactly the feature builder's columns, in order."""
    expected, found = list(FEATURE_NAMES), list(scorer.features)
    if found == expected:
        return
    unknown = [f for f in found if f not in expected]
    lacking = [f for f in expected if f not in found]
    if unknown or lacking:
        detail = "; ".join(
            part
            for part in (
                f"unknown to the builder: {', '.join(unknown[:3])}" if unknown else "",
                f"not in the model: {', '.join(lacking[:3])}" if lacking else "",
            )
            if part
        )
    else:
        detail = "same names in another order"
    raise ModelError(
        f"model {model_version}: its {len(found)} features do not match the "
        f"feature builder's {len(expected)} ({detail})"
    )


def load_model(model_uri: str, tracking_uri: str | None = None) -> tuple[Scorer, str]:
    """The model's Scorer and its version string (the ``model_version`` column).

    Reads the store at ``tracking_uri`` resolved as in training (MLflow's global tracking
    URI is as before afterwards). Raises
    ModelError (one line) when the URI, alias or version is unknown, the artifacts do not
    hold a creator-scores model, or its features are not the builder's.
    """
    uri = resolve_tracking_uri(tracking_uri)
    check_serving_tracking_uri(uri)
    version = resolve_model_version(model_uri, MlflowClient(tracking_uri=uri))
    try:
        with using_tracking_uri(uri):
            scorer = load_scorer(version)
    except (MlflowException, TrackingError, OSError) as err:
        raise ModelError(f"model {model_uri}: {_first_line(err)}") from None
    except Exception as err:  # noqa: BLE001 - a foreign or broken model: one line, no traceback
        raise ModelError(
            f"model {model_uri}: cannot be loaded as a creator-scores model "
            f"({type(err).__name__}: {_first_line(err)})"
        ) from None
    check_features(scorer, version)
    return scorer, version
