"""Shared test data and helpers.

- ``ids`` and ``times``: columns of the contract's string and timestamp types;
- ``tiny_tables``: a tiny, hand-written, valid set of the six raw tables;
- session fixtures for the small simulated marketplaces (each built once per run) and the
  worlds built on them (``tests/worlds.py``): a trained, logged, registered model for
  serving and for the explorer, the training tests' trained result, and a store of two
  logged runs for the review helpers and the notebooks.

Session fixtures are shared: a test that changes one of their tables works on a copy.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from marketplace.contract import STRING_DTYPE, TIMESTAMP_DTYPE
from marketplace.io import write_tables
from marketplace.simulate import SimConfig, simulate
from marketplace.stamp import CACHE_VARIABLE
from serving.partner_list import partner_lists
from tests import worlds
from training.config import TrainConfig, load_config
from training.run import TrainResult, train

DAY = pd.Timedelta(days=1)
# The partner list's columns, in the data contract's order.
CONTRACT_COLUMNS = [
    "brief_id",
    "creator_id",
    "rank",
    "top_percent",
    "score",
    "expected_gmv",
    "gmv_low",
    "gmv_high",
    "chance_of_sale",
    "provisional",
    "engagement_index",
    "volume_index",
    "consistency_index",
    "diligence_index",
    "cooperation_index",
    "sales_index",
    "category_index",
    "growth_index",
    "authenticity_index",
    "raw_score",
    "contrib_base",
    "contrib_engagement",
    "contrib_volume",
    "contrib_consistency",
    "contrib_diligence",
    "contrib_cooperation",
    "contrib_sales",
    "contrib_category",
    "contrib_growth",
    "contrib_authenticity",
    "contrib_other",
    "reasons",
    "model_version",
]
INDEX_COLUMNS = [c for c in CONTRACT_COLUMNS if c.endswith("_index")]
CONTRIB_COLUMNS = [c for c in CONTRACT_COLUMNS if c.startswith("contrib_")]


def ids(*values) -> pd.Series:
    """A string column of the contract's type (None: null)."""
    return pd.Series(values, dtype=STRING_DTYPE)


def times(*values) -> pd.Series:
    """A timestamp column of the contract's type from ISO-8601 texts or Timestamps (None:
    null)."""
    return pd.Series(pd.to_datetime(list(values), utc=True, format="ISO8601")).astype(
        TIMESTAMP_DTYPE
    )


def triples(violations) -> list[tuple[str, str, str]]:
    """(table, column, rule) of each violation of the data contract."""
    return [(v.table, v.column, v.rule) for v in violations]


def write_briefs(directory: Path, text: str, name: str = "briefs.csv") -> Path:
    """``text`` written to ``directory/name``: a briefs file."""
    path = directory / name
    path.write_text(text)
    return path


def make_tiny_tables() -> dict[str, pd.DataFrame]:
    """Three creators (one with the numeric-looking id "00123"), two campaigns, 8 posts."""
    creators = pd.DataFrame(
        {
            "creator_id": ids("00123", "c2", "c3"),
            "market": ids("ID", "MY", "GB"),
            "joined_at": times(
                "2024-01-10T08:00:00Z", "2024-02-01T00:00:00Z", "2024-03-05T12:30:00Z"
            ),
            "primary_category": ids("beauty", None, "fashion"),
        }
    )
    follower_snapshots = pd.DataFrame(
        {
            "creator_id": ids("00123", "00123", "c2", "c3"),
            "snapshot_date": times("2025-01-01", "2025-01-02", "2025-01-01", "2025-01-01"),
            "followers": np.array([1000, 1010, 500, 20000], dtype="int64"),
        }
    )
    posts = pd.DataFrame(
        {
            "post_id": ids("p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8"),
            "creator_id": ids("00123", "00123", "00123", "c2", "c2", "c3", "c3", "c3"),
            "posted_at": times(
                "2025-01-03T10:15:00Z",
                "2025-01-04T20:00:00Z",
                "2025-01-05T18:00:00.250000Z",
                "2025-01-03T09:00:00Z",
                "2025-01-06T11:00:00Z",
                "2025-01-02T07:45:00Z",
                "2025-01-04T21:30:00Z",
                "2025-01-07T13:00:00Z",
            ),
            "format": ids("video", "live", "video", "video", "live", "video", "video", "live"),
            "category": ids(
                "beauty", "beauty", None, "home", "home", "fashion", "fashion", "beauty"
            ),
            "is_shoppable": np.array([True, True, False, False, True, True, False, True]),
            "views": np.array([1200, 5400, 300, 80, 950, 20000, 15000, 7000], dtype="int64"),
            "likes": np.array([100, 320, 12, 3, 40, 1500, 900, 410], dtype="int64"),
            "comments": np.array([10, 45, 0, 0, 6, 120, 70, 52], dtype="int64"),
            "shares": np.array([4, 9, 0, 0, 1, 60, 33, 12], dtype="int64"),
            "orders": np.array([3, 12, 0, 0, 2, 25, 0, 9], dtype="int64"),
            "gmv": np.array([45.5, 310.25, 0.0, 0.0, 19.99, 612.0, 0.0, 1 / 3]),
        }
    )
    campaigns = pd.DataFrame(
        {
            "campaign_id": ids("k1", "k2"),
            "brand_id": ids("b1", "b2"),
            "market": ids("ID", "GB"),
            "category": ids("beauty", "fashion"),
            "created_at": times("2025-02-01T09:00:00Z", "2025-02-15T00:00:00Z"),
            "start_at": times("2025-02-10T00:00:00Z", "2025-02-15T00:00:00Z"),
            "end_at": times("2025-03-10T00:00:00Z", "2025-03-01T00:00:00Z"),
            "commission_rate": np.array([0.1, np.nan]),
        }
    )
    invitations = pd.DataFrame(
        {
            "campaign_id": ids("k1", "k1", "k1", "k2", "k2"),
            "creator_id": ids("00123", "c2", "c3", "c3", "00123"),
            "invited_at": times(
                "2025-02-01T10:00:00Z",
                "2025-02-01T10:00:00Z",
                "2025-02-02T08:00:00Z",
                "2025-02-15T01:00:00Z",
                "2025-02-15T01:00:00Z",
            ),
            "response": ids("accepted", "declined", "no_response", "accepted", "declined"),
            "responded_at": times(
                "2025-02-02T12:00:00Z",
                "2025-02-03T09:30:00Z",
                None,
                "2025-02-15T03:00:00Z",
                "2025-02-16T00:00:00Z",
            ),
            "posts_promised": pd.array([2, None, None, 1, None], dtype="Int64"),
            "posts_delivered": pd.array([2, None, None, 0, None], dtype="Int64"),
        }
    )
    campaign_results = pd.DataFrame(
        {
            "campaign_id": ids("k1", "k2"),
            "creator_id": ids("00123", "c3"),
            "gmv": np.array([250.5, 0.0]),
            "orders": np.array([5, 0], dtype="int64"),
        }
    )
    return {
        "creators": creators,
        "follower_snapshots": follower_snapshots,
        "posts": posts,
        "campaigns": campaigns,
        "invitations": invitations,
        "campaign_results": campaign_results,
    }


@pytest.fixture(scope="session", autouse=True)
def validation_cache(tmp_path_factory):
    """Validation records (``marketplace.stamp``) go to a folder of this run, not the
    user's cache (commands run in subprocesses inherit it)."""
    before = os.environ.get(CACHE_VARIABLE)
    os.environ[CACHE_VARIABLE] = str(tmp_path_factory.mktemp("cache"))
    yield
    if before is None:
        os.environ.pop(CACHE_VARIABLE, None)
    else:
        os.environ[CACHE_VARIABLE] = before


@pytest.fixture(autouse=True)
def mlflow_tracking_uri_left_alone():
    """Every test leaves MLflow's global tracking URI (and its variable) as it found it:
    a test that needs another store uses ``training.tracking.using_tracking_uri``."""
    before = (mlflow.get_tracking_uri(), os.environ.get("MLFLOW_TRACKING_URI"))
    yield
    after = (mlflow.get_tracking_uri(), os.environ.get("MLFLOW_TRACKING_URI"))
    assert after == before, "the test changed MLflow's global tracking URI"


@pytest.fixture
def tiny_tables() -> dict[str, pd.DataFrame]:
    """A fresh copy of the tiny valid tables (safe to modify)."""
    return make_tiny_tables()


@pytest.fixture
def write_dir(tmp_path):
    """Write tables to a new directory under tmp_path: write_dir(tables, fmt) -> Path."""
    counter = iter(range(1_000_000))

    def write(tables: dict[str, pd.DataFrame], fmt: str = "parquet") -> Path:
        directory = tmp_path / f"data{next(counter)}_{fmt}"
        write_tables(tables, directory, fmt=fmt)
        return directory

    return write


# ------------------------------------------------------------------ simulated marketplaces


@pytest.fixture(scope="session")
def small_market() -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """600 creators over 240 days (seed 5): tables and truth, for features and serving."""
    return simulate(SimConfig(creators=600, days=240, seed=5))


@pytest.fixture(scope="session")
def training_market() -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """1,500 creators over 300 days (seed 21): enough campaigns for the model to be judged
    against the baselines and the oracle."""
    return simulate(SimConfig(creators=1500, days=300, seed=21))


@pytest.fixture(scope="session")
def quick_cfg() -> TrainConfig:
    """The default config with at most 200 trees, early stopping after 30, one thread
    (LightGBM's threads crawl when another process holds the second core)."""
    return dataclasses.replace(
        load_config(), max_rounds=200, early_stopping_rounds=30, num_threads=1
    )


@pytest.fixture(scope="session")
def trained(training_market, quick_cfg) -> TrainResult:
    """``training_market`` trained with ``quick_cfg``, the oracle from its truth."""
    tables, truth = training_market
    return train(tables, quick_cfg, truth["expected_gmv"])


# ------------------------------------------------------------------ worlds on them


@pytest.fixture(scope="session")
def serving_world(tmp_path_factory, small_market) -> worlds.ServingWorld:
    """``small_market`` on disk with a registered model and briefs (``worlds.serving_world``)."""
    return worlds.serving_world(tmp_path_factory.mktemp("serving"), small_market[0])


@pytest.fixture(scope="session")
def explorer_world(tmp_path_factory) -> worlds.ExplorerWorld:
    """500 creators over 240 days (seed 11) behind the explorer (``worlds.explorer_world``)."""
    simulated, _ = simulate(SimConfig(creators=500, days=240, seed=11))
    return worlds.explorer_world(tmp_path_factory.mktemp("explorer"), simulated)


@pytest.fixture(scope="session")
def logged_store(tmp_path_factory) -> worlds.LoggedStore:
    """A tiny marketplace and an MLflow store with two runs on it (``worlds.logged_store``)."""
    return worlds.logged_store(tmp_path_factory.mktemp("logged-store"))


@pytest.fixture(scope="session")
def scored_briefs(serving_world) -> pd.DataFrame:
    """The partner lists of ``serving_world``'s briefs, with the warnings given (attrs)."""
    warnings_seen: list[str] = []
    out = partner_lists(
        serving_world.tables,
        serving_world.briefs,
        serving_world.scorer,
        "models:/cs/1",
        serving_world.history,
        warn=warnings_seen.append,
    )
    out.attrs["warnings"] = warnings_seen
    return out
