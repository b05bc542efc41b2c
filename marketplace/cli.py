"""What every stage's command needs at its edges: messages, loading valid data, and
writing an output file atomically."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import NoReturn

import pandas as pd

from marketplace.contract import InvalidData
from marketplace.io import read_tables
from marketplace.stamp import record_path, stamped_rows, write_stamp
from marketplace.validate import load_valid_tables, validate_parts

OUTPUT_SUFFIXES = (".parquet", ".csv")
TRACKING_URI_HELP = (  # every command's --tracking-uri (training.tracking's convention)
    "MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else "
    "sqlite:///mlflow.db in the working directory)"
)


class UserError(Exception):
    """A mistake in the command's input: reported as one line, exit status 1."""


def log(message: str) -> None:
    """Print ``message`` on stderr at once (progress and errors; stdout stays for results)."""
    print(message, file=sys.stderr, flush=True)


def fail(message: str) -> int:
    """Print ``error: message`` on stderr and return the exit status 1."""
    log(f"error: {message}")
    return 1


def load_tables_or_report(directory, recheck: bool = False) -> dict[str, pd.DataFrame]:
    """The validated tables of ``directory``; on any violation print each one (stdout)
    and raise UserError naming the directory, so bad input stops a job before it computes.
    A directory that passed validation unchanged (``marketplace.stamp``: a record in the
    cache folder, never in ``directory``) is only read, unless ``recheck``."""
    try:
        if not recheck and _stamped(directory) is not None:
            return read_tables(directory)
        tables = load_valid_tables(directory)
    except InvalidData as err:
        _report(directory, err.violations)
    write_stamp(directory, {name: len(frame) for name, frame in tables.items()})
    return tables


def rows_or_report(directory, recheck: bool = False) -> dict[str, int]:
    """Each table's row count once ``directory`` passes ``validate_parts`` (one Parquet
    part in memory at a time), or passed it unchanged before (unless ``recheck``);
    otherwise as ``load_tables_or_report``."""
    rows = None if recheck else _stamped(directory)
    if rows is not None:
        return rows
    violations, rows = validate_parts(directory)
    if violations:
        _report(directory, violations)
    write_stamp(directory, rows)
    return rows


def _stamped(directory) -> dict[str, int] | None:
    rows = stamped_rows(directory)
    if rows is not None:
        log(
            f"{directory} passed validation before and no table file changed since "
            f"(record: {record_path(directory)}): not checked again"
        )
    return rows


def _report(directory, violations) -> NoReturn:
    for violation in violations:
        print(violation)
    raise UserError(
        f"{directory}: {len(violations)} violation(s) of the data contract (listed above)"
    )


def check_output_path(path: Path) -> None:
    """Raise UserError unless ``path`` ends in .parquet or .csv and its folder exists."""
    if path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise UserError(f"{path}: output must end in .parquet or .csv")
    if not path.parent.exists():
        raise UserError(f"{path.parent}: output folder does not exist")


def write_frame_atomically(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` as Parquet or CSV (by ``path``'s ending) via a temporary file in
    the same folder, renamed into place: a failed write leaves no file behind."""
    check_output_path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        if path.suffix.lower() == ".parquet":
            frame.to_parquet(tmp, index=False, compression="zstd")
        else:
            frame.to_csv(tmp, index=False, date_format="%Y-%m-%dT%H:%M:%S.%fZ")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def read_truth_table(
    directory: Path, name: str, columns: set[str], ids: tuple[str, ...] = ("creator_id",)
) -> pd.DataFrame:
    """``directory/<name>.parquet`` (or a ``<name>/`` directory of parts) of a simulator's
    truth, with ``columns`` present and the
    ``ids`` columns as strings; UserError (one line) when it is missing or incomplete."""
    path = Path(directory) / f"{name}.parquet"
    if not path.is_file() and (Path(directory) / name).is_dir():
        path = Path(directory) / name  # a directory of Parquet parts
    elif not path.is_file():
        raise UserError(f"{path}: truth file not found")
    table = pd.read_parquet(path)
    missing = sorted(columns - set(table.columns))
    if missing:
        raise UserError(f"{path}: missing column(s) {', '.join(missing)}")
    return table.astype({column: "str" for column in ids})
