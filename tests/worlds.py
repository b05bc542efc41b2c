"""The small worlds that several test modules share, built by ``tests/conftest.py``'s
session fixtures: a simulated marketplace with a quickly trained, logged and registered
model for serving, the same for the explorer, and a store of two logged runs for the
review helpers and the notebooks.

Builders only (no fixtures): each takes a fresh folder and returns what the tests read.
None of them leaves MLflow's global tracking URI or active experiment changed.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from explorer.core import Explorer, explorer_from
from features.build import History, index_history
from features.indices import index_name
from features.registry import FAMILIES, FEATURE_NAMES
from marketplace import summary
from marketplace.io import write_tables
from marketplace.validate import load_valid_tables
from review.experiment import quick_experiment
from serving.model import load_model
from serving.partner_list import INDEX_COLUMNS
from training.config import TrainConfig, load_config
from training.model import Scorer
from training.pyfunc import ENTRY_FILE
from training.run import train
from training.tracking import LoggedRun, experiment_id, log_training, using_tracking_uri

DAY = pd.Timedelta(days=1)
EVIL_ID = "<script>alert(1)</script>"
TOKEN = "s3cret-token"  # the explorer's access token in the tests
# A column the explorer sorts by: the sales index.
SORT_COLUMN = index_name("sales") if "sales" in FAMILIES else INDEX_COLUMNS[0]


def small_config(rounds: int, **changes) -> TrainConfig:
    """The default config with at most ``rounds`` trees, lambdarank alone, one thread."""
    return dataclasses.replace(
        load_config(), max_rounds=rounds, objectives=("lambdarank",), num_threads=1, **changes
    )


def store_with_experiment(root: Path, experiment: str) -> str:
    """An SQLite tracking URI in ``root`` whose ``experiment`` keeps its artifacts under
    ``root/artifacts`` (MLflow's default would be ./mlruns)."""
    uri = f"sqlite:///{root}/mlflow.db"
    MlflowClient(uri).create_experiment(experiment, artifact_location=(root / "artifacts").as_uri())
    return uri


# ------------------------------------------------------------------ serving


@dataclasses.dataclass
class ServingWorld:
    root: Path
    data: Path
    tables: dict
    history: History
    tracking_uri: str
    scorer: Scorer
    as_of: pd.Timestamp
    briefs: pd.DataFrame
    briefs_csv: Path


def tiny_scorer(names: list[str]) -> Scorer:
    """A two-tree Scorer on random data that expects the feature ``names``."""
    rng = np.random.default_rng(0)
    data = lgb.Dataset(rng.random((60, len(names))), label=rng.random(60), feature_name=names)
    booster = lgb.train(
        {"objective": "regression", "verbosity": -1, "num_threads": 1, "min_data_in_leaf": 5},
        data,
        num_boost_round=2,
    )
    return Scorer(booster, {"raw": [0.0, 1.0], "score": [0.0, 100.0]}, 0.1)


def register_wrong_features_model(root: Path, uri: str, name: str) -> None:
    """Register a creator-scores pyfunc whose booster knows other feature names."""
    paths = tiny_scorer([*FEATURE_NAMES[:-1], "bogus_feature"]).save(root / "wrong")
    with using_tracking_uri(uri), mlflow.start_run(experiment_id=experiment_id("test", uri)):
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(ENTRY_FILE),
            artifacts={k: str(v) for k, v in paths.items()},
        )
    with using_tracking_uri(uri):
        mlflow.register_model(info.model_uri, name)


def serving_world(root: Path, simulated: dict[str, pd.DataFrame]) -> ServingWorld:
    """``simulated`` written to ``root/data``; a model trained on it, registered as cs
    version 1 (champion) and 2 (alias challenger, the same model), and ``cs_wrong`` (other
    features); five briefs (one in a market without creators) in memory and as CSV."""
    data = root / "data"
    write_tables(simulated, data)
    tables = load_valid_tables(data)
    result = train(tables, small_config(30))
    uri = store_with_experiment(root, "test")
    logged = log_training(result, uri, "test", register="cs")  # version 1, champion
    assert logged.version is not None
    client = MlflowClient(uri)
    source = client.get_model_version("cs", logged.version).source
    with using_tracking_uri(uri):
        second = mlflow.register_model(source, "cs").version  # version 2, same model
    client.set_registered_model_alias("cs", "challenger", second)
    register_wrong_features_model(root, uri, "cs_wrong")
    scorer, _ = load_model("models:/cs/1", uri)
    as_of = tables["posts"]["posted_at"].max().normalize() - 14 * DAY
    briefs = pd.DataFrame(
        {
            "brief_id": ["id-beauty", "th-fashion", "vn-food", "gb-home", "xx-none"],
            "market": ["ID", "TH", "VN", "GB", "XX"],
            "category": ["beauty", "fashion", "food", "home", "beauty"],
            "as_of": [as_of, as_of, as_of, as_of - 60 * DAY, as_of],
            "top_k": [np.nan, 10, 5, 20, 5],
            "min_followers": [np.nan, 1000, np.nan, 0, np.nan],
            "commission_rate": [np.nan, 0.1, 0.2, np.nan, np.nan],
        }
    )
    briefs_csv = root / "briefs.csv"
    text = briefs.copy()
    text["as_of"] = text["as_of"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    text.astype({"top_k": "Int64", "min_followers": "Int64"}).to_csv(briefs_csv, index=False)
    return ServingWorld(
        root=root,
        data=data,
        tables=tables,
        history=index_history(tables),
        tracking_uri=uri,
        scorer=scorer,
        as_of=as_of,
        briefs=briefs,
        briefs_csv=briefs_csv,
    )


# ------------------------------------------------------------------ explorer


@dataclasses.dataclass
class ExplorerWorld:
    root: Path
    data: Path
    tracking_uri: str
    market: str
    category: str
    as_of: pd.Timestamp
    explorer: Explorer
    client: object


def rename_creator(tables: dict, old: str, new: str) -> dict:
    """Every table with creator ``old`` called ``new``."""
    out = {}
    for name, frame in tables.items():
        if "creator_id" in frame.columns:
            frame = frame.assign(
                creator_id=frame["creator_id"].mask(frame["creator_id"] == old, new)
            )
        out[name] = frame
    return out


def explorer_world(root: Path, simulated: dict[str, pd.DataFrame]) -> ExplorerWorld:
    """``simulated`` with the busiest creator of its largest market renamed ``EVIL_ID``,
    a model trained on it and registered as champion, and the explorer's app on both."""
    from fastapi.testclient import TestClient

    from explorer.app import create_app

    market = simulated["creators"]["market"].value_counts().index[0]
    in_market = simulated["creators"].loc[simulated["creators"]["market"] == market, "creator_id"]
    busiest = (
        simulated["posts"]
        .loc[simulated["posts"]["creator_id"].isin(in_market), "creator_id"]
        .value_counts()
        .index[0]
    )
    data = root / "data"
    write_tables(rename_creator(simulated, busiest, EVIL_ID), data)
    tables = load_valid_tables(data)
    uri = store_with_experiment(root, "test")
    log_training(train(tables, small_config(20)), uri, "test", register="cs")
    scorer, version = load_model("models:/cs@champion", uri)
    ex = explorer_from(tables, scorer, version, data=data)
    category = (
        tables["campaigns"]
        .loc[tables["campaigns"]["market"] == market, "category"]
        .value_counts()
        .index[0]
    )
    return ExplorerWorld(
        root=root,
        data=data,
        tracking_uri=uri,
        market=market,
        category=category,
        as_of=ex.days[-2],  # a stored day before the last
        explorer=ex,
        client=TestClient(create_app(ex)),
    )


def brief_json(explorer_world: ExplorerWorld, **change) -> dict:
    """A brief for the explorer's JSON API in the world's market and category, top 25."""
    return {
        "brief_id": "b1",
        "market": explorer_world.market,
        "category": explorer_world.category,
        "as_of": explorer_world.as_of.isoformat(),
        "top_k": 25,
        **change,
    }


# ------------------------------------------------------------------ review


@dataclasses.dataclass
class LoggedStore:
    root: Path
    data: Path
    uri: str
    experiment: str
    first: LoggedRun
    second: LoggedRun
    tables: dict


def logged_store(root: Path) -> LoggedStore:
    """A tiny simulated marketplace (with its truth) trained twice by ``quick_experiment``
    into an SQLite store: what a user gives the notebooks, and what the review reads."""
    data = summary.tiny_marketplace(root / "data", creators=400, days=200, seed=11)
    uri = f"sqlite:///{root}/mlflow.db"
    first = quick_experiment(data, uri, "review-test")
    second = quick_experiment(data, uri, "review-test")
    return LoggedStore(
        root=root,
        data=data,
        uri=uri,
        experiment="review-test",
        first=first,
        second=second,
        tables=load_valid_tables(data),
    )
