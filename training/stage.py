"""The training stage, wired once: ``run_training`` is what ``python -m training``, the
notebooks (through ``review.experiment.quick_experiment``) and the benchmarks (through
the command) run.

It reads and validates a data directory (whole, or part by part with a pair table of
Parquet parts), reads the truth when given (checked for its columns), trains
(``training.run``) and logs the run to MLflow, registering it when asked
(``training.tracking``). Errors are one-line exceptions (UserError, ConfigError,
TrainingError, TrackingError) for the caller to report.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from marketplace.cli import load_tables_or_report, read_truth_table, rows_or_report
from training.config import TrainConfig, load_config
from training.parts import train_on_pair_parts
from training.run import TrainResult, pairs_and_posts, train_on_pairs
from training.tracking import DEFAULT_EXPERIMENT, LoggedRun, check_tracking_uri, log_training

TRUTH_COLUMNS = {"campaign_id", "creator_id", "expected_gmv"}


def _quiet(message: str) -> None:
    pass


def read_truth(directory: Path) -> pd.DataFrame:
    """``expected_gmv`` of the truth ``directory``, checked for its columns (UserError)."""
    return read_truth_table(
        directory, "expected_gmv", TRUTH_COLUMNS, ids=("campaign_id", "creator_id")
    )


def train_in_memory(
    directory: Path,
    cfg: TrainConfig,
    truth: pd.DataFrame | None,
    progress: Callable[[str], None] = _quiet,
) -> tuple[TrainResult, pd.DataFrame]:
    """Validate and read ``directory`` whole, build its pairs (releasing the raw posts and
    the history as soon as they are used) and train on them; the result and the pairs."""
    tables = load_tables_or_report(directory)
    pairs, posts, population = pairs_and_posts(tables, release_posts=True, progress=progress)
    return train_on_pairs(tables, pairs, posts, cfg, truth, progress, population), pairs


def train_from_parts(
    directory: Path,
    pairs_dir: Path,
    cfg: TrainConfig,
    truth: pd.DataFrame | None,
    progress: Callable[[str], None] = _quiet,
) -> TrainResult:
    """Validate ``directory`` part by part and train on its pair table ``pairs_dir``."""
    rows = rows_or_report(directory)
    progress(f"validated {directory} part by part; training on the pair table {pairs_dir} ...")
    return train_on_pair_parts(directory, rows, pairs_dir, cfg, truth, progress=progress)


def run_training(
    directory: Path,
    tracking_uri: str,
    experiment: str = DEFAULT_EXPERIMENT,
    cfg: TrainConfig | None = None,
    truth_dir: Path | None = None,
    pairs_dir: Path | None = None,
    register: str | None = None,
    progress: Callable[[str], None] = _quiet,
) -> tuple[TrainResult, LoggedRun]:
    """Train on the data directory ``directory`` and log the run to ``tracking_uri``.

    ``cfg`` defaults to the default config; ``truth_dir`` (the simulator's
    ``DIR/truth``) adds the oracle; ``pairs_dir``, a pair table of Parquet parts of
    ``directory``, trains from it part by part; ``register`` registers the model under
    that name (the champion gate decides the alias). Returns the training result and the
    logged run. MLflow's global tracking URI and active experiment are left as they were.
    """
    directory = Path(directory)
    cfg = cfg or load_config()
    check_tracking_uri(tracking_uri)
    truth = read_truth(Path(truth_dir)) if truth_dir is not None else None
    if pairs_dir is not None:
        result, pairs = train_from_parts(directory, Path(pairs_dir), cfg, truth, progress), None
    else:
        result, pairs = train_in_memory(directory, cfg, truth, progress)
    progress(f"logging to MLflow at {tracking_uri} (experiment {experiment}) ...")
    logged = log_training(
        result, tracking_uri, experiment, register, source=str(directory.resolve()), pairs=pairs
    )
    return result, logged
