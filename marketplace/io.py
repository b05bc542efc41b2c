"""Read and write the raw tables: `<table>.parquet` or `<table>.csv` in one directory,
or `<table>/` (also `<table>.parquet/`): a directory of Parquet parts (`*.parquet`, read
in name order; names starting with `.` or `_` are ignored, as Spark and Arrow do).

Reading returns exactly the contract's columns, in contract order, with the dtypes of
`marketplace.contract.DTYPES`, and a RangeIndex. Values that cannot be converted to
their column's type are reported as violations (`InvalidData`), never as a traceback.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from marketplace.contract import (
    BOOL_DTYPE,
    COLUMNS,
    DTYPES,
    FIELDS,
    FLOAT_DTYPE,
    KIND_RULES,
    MISSING_COLUMN,
    MISSING_TABLE,
    NOT_NULL,
    NULLABLE_INT_DTYPE,
    STRING_DTYPE,
    TABLES,
    TIMESTAMP_DTYPE,
    Field,
    InvalidData,
    Violation,
    violation,
)

FORMATS = ("parquet", "csv")
PARQUET_COMPRESSION = "zstd"
_TRUE = ("true", "1")
_FALSE = ("false", "0")
_ARROW_TYPES = {
    "string": pa.string(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "date": pa.date32(),
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
}


# ---------------------------------------------------------------- reading


def table_path(directory, name: str) -> Path | None:
    """The file (Parquet preferred) or directory of Parquet parts holding table `name`
    in `directory`, or None."""
    for fmt in FORMATS:
        path = Path(directory) / f"{name}.{fmt}"
        if path.is_file():
            return path
    for path in (Path(directory) / name, Path(directory) / f"{name}.parquet"):
        if path.is_dir():
            return path
    return None


def part_paths(path: Path) -> list[Path]:
    """The files of a table: the file itself, or a directory's Parquet parts by name."""
    if path.is_file():
        return [path]
    return sorted(
        p for p in path.glob("*.parquet") if p.is_file() and not p.name.startswith((".", "_"))
    )


def read_tables(directory) -> dict[str, pd.DataFrame]:
    """All six tables of `directory`, coerced to the contract's types.

    Raises InvalidData listing every problem found while reading: a missing directory,
    missing tables or columns, unreadable files, values of the wrong type.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise InvalidData([Violation("", "", f"data directory not found: {directory}")])
    tables: dict[str, pd.DataFrame] = {}
    problems: list[Violation] = []
    for name in TABLES:
        try:
            tables[name] = read_table(directory, name)
        except InvalidData as err:
            problems.extend(err.violations)
    if problems:
        raise InvalidData(problems)
    return tables


def read_table(directory, name: str) -> pd.DataFrame:
    """One table of `directory`, coerced to the contract's types (see read_tables)."""
    path = table_path(directory, name)
    if path is None:
        raise InvalidData([Violation(name, "", MISSING_TABLE)])
    return read_path(path, name)


def read_path(path: Path, name: str) -> pd.DataFrame:
    """Table `name` from a file or a directory of Parquet parts, coerced to the contract.

    All parts together: one part at a time is ``read_path(part, name)`` for each of
    ``part_paths(path)``."""
    raw = _read_raw(path, name)
    missing = [c for c in COLUMNS[name] if c not in raw.columns]
    if missing:
        raise InvalidData([Violation(name, c, MISSING_COLUMN) for c in missing])
    return coerce_table(raw, name)


def read_part_batches(part: Path, name: str, rows: int) -> Iterator[pd.DataFrame]:
    """One table file (a Parquet part or a CSV file) as contract-coerced frames of at
    most ``rows`` rows (a CSV file: one frame), in file order; InvalidData as
    ``read_path`` on what cannot be read."""
    if part.suffix == ".csv":
        yield read_path(part, name)
        return
    wanted = set(COLUMNS[name])
    try:
        reader = pq.ParquetFile(part)
        present = [c for c in reader.schema_arrow.names if c in wanted]
        missing = [c for c in COLUMNS[name] if c not in present]
        if missing:
            raise InvalidData([Violation(name, c, MISSING_COLUMN) for c in missing])
        batches = reader.iter_batches(batch_size=rows, columns=present)
        for batch in batches:
            frame = pa.Table.from_batches([batch]).to_pandas(
                date_as_object=False, types_mapper=_int_as_nullable
            )
            yield coerce_table(frame, name)
    except (OSError, ValueError, pa.ArrowException) as err:
        raise _unreadable(name, part.name, err) from None


def part_batches(part: Path, rows: int) -> int:
    """How many frames ``read_part_batches`` gives for ``part``."""
    if part.suffix == ".csv":
        return 1
    try:
        return max(1, -(-pq.ParquetFile(part).metadata.num_rows // rows))
    except (OSError, ValueError, pa.ArrowException):
        return 1


def _read_raw(path: Path, name: str) -> pd.DataFrame:
    """The table's contract columns as found: strings for CSV, Arrow's types for Parquet
    (the parts of a directory concatenated, types widened where parts differ)."""
    wanted = set(COLUMNS[name])
    try:
        if path.suffix == ".csv" and path.is_file():
            return pd.read_csv(
                path,
                dtype=str,
                keep_default_na=False,
                na_values=[""],
                usecols=lambda c: c in wanted,
            )
        parts = part_paths(path)
        if not parts:
            raise InvalidData([Violation(name, "", f"no Parquet parts in {path.name}/")])
        folder = "" if path.is_file() else f"{path.name}/"
        arrow = pa.concat_tables(
            [_read_part(part, name, wanted, folder) for part in parts], promote_options="permissive"
        )
        return arrow.to_pandas(date_as_object=False, types_mapper=_int_as_nullable)
    except (OSError, ValueError, pa.ArrowException, pd.errors.ParserError) as err:
        raise _unreadable(name, path.name, err) from None


def _read_part(path: Path, name: str, wanted: set[str], folder: str) -> pa.Table:
    try:
        present = [c for c in pq.read_schema(path).names if c in wanted]
        return pq.read_table(path, columns=present)
    except (OSError, ValueError, pa.ArrowException) as err:
        raise _unreadable(name, folder + path.name, err) from None


def _unreadable(name: str, shown: str, err: Exception) -> InvalidData:
    first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return InvalidData([Violation(name, "", f"unreadable file {shown}: {first_line}")])


def _int_as_nullable(arrow_type: pa.DataType):
    return NULLABLE_INT_DTYPE if pa.types.is_integer(arrow_type) else None


def coerce_table(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """`frame`'s contract columns converted to the contract dtypes, extra columns dropped.

    Raises InvalidData for missing columns, values that are not of the column's type and
    nulls in non-nullable integer or boolean columns (which cannot hold them).
    """
    missing = [c for c in COLUMNS[name] if c not in frame.columns]
    if missing:
        raise InvalidData([Violation(name, c, MISSING_COLUMN) for c in missing])
    frame = frame.reset_index(drop=True)
    columns, problems = {}, []
    for field in FIELDS[name]:
        values, bad = _convert(frame[field.name], field)
        columns[field.name] = values
        problems.append(violation(frame, name, field.name, KIND_RULES[field.kind], bad))
        if field.kind in ("int", "bool") and not field.nullable:
            nulls = values.isna().to_numpy() & ~bad
            problems.append(violation(frame, name, field.name, NOT_NULL, nulls))
            if not values.hasnans:
                columns[field.name] = values.astype(DTYPES[name][field.name])
    problems = [p for p in problems if p is not None]
    if problems:
        raise InvalidData(problems)
    return pd.DataFrame(columns)


def _convert(values: pd.Series, field: Field) -> tuple[pd.Series, np.ndarray]:
    """Converted values and the mask of non-null values that could not be converted."""
    convert = {
        "string": _to_string,
        "timestamp": _to_timestamp,
        "date": _to_date,
        "int": _to_int,
        "float": _to_float,
        "bool": _to_bool,
    }[field.kind]
    converted = convert(values)
    bad = values.notna().to_numpy() & converted.isna().to_numpy()
    return converted, bad


def _to_string(values: pd.Series) -> pd.Series:
    return values if values.dtype == STRING_DTYPE else values.astype(STRING_DTYPE)


def _to_timestamp(values: pd.Series) -> pd.Series:
    """UTC timestamps; ISO-8601 text without a zone is read as UTC."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC").astype(TIMESTAMP_DTYPE)
    if values.dtype.kind == "M":
        return values.dt.tz_localize("UTC").astype(TIMESTAMP_DTYPE)
    if not (pd.api.types.is_string_dtype(values) or values.dtype == object):
        return pd.Series(pd.NaT, index=values.index, dtype=TIMESTAMP_DTYPE)
    parsed = pd.to_datetime(
        values.astype(STRING_DTYPE), utc=True, format="ISO8601", errors="coerce"
    )
    return parsed.astype(TIMESTAMP_DTYPE)


def _to_date(values: pd.Series) -> pd.Series:
    """Dates as midnight-UTC timestamps; a time of day other than midnight is not a date."""
    stamps = _to_timestamp(values)
    return stamps.where(stamps == stamps.dt.normalize())


def _to_number(values: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(values.dtype):
        return pd.Series(np.nan, index=values.index)
    if pd.api.types.is_numeric_dtype(values.dtype):
        return values
    return pd.to_numeric(values.astype(STRING_DTYPE).str.strip(), errors="coerce")


def _to_int(values: pd.Series) -> pd.Series:
    """Nullable Int64; a number with a fractional part is not an integer."""
    numbers = _to_number(values)
    if pd.api.types.is_integer_dtype(numbers.dtype):
        return numbers.astype(NULLABLE_INT_DTYPE)
    floats = numbers.astype(FLOAT_DTYPE)
    whole = np.isfinite(floats) & (floats == np.floor(floats))
    return floats.where(whole).astype(NULLABLE_INT_DTYPE)


def _to_float(values: pd.Series) -> pd.Series:
    return _to_number(values).astype(FLOAT_DTYPE)


def _to_bool(values: pd.Series) -> pd.Series:
    """Booleans from bool columns, 0/1 numbers or true/false/1/0 text (any case).

    Nulls and unrecognised values come back as NA ("boolean" dtype) for the caller.
    """
    if pd.api.types.is_bool_dtype(values.dtype):
        return values if values.dtype == BOOL_DTYPE else values.astype("boolean")
    if pd.api.types.is_numeric_dtype(values.dtype):
        is_true, is_false = (values == 1).to_numpy(), (values == 0).to_numpy()
    else:
        text = values.astype(STRING_DTYPE).str.strip().str.lower()
        is_true, is_false = text.isin(_TRUE).to_numpy(), text.isin(_FALSE).to_numpy()
    result = pd.Series(pd.NA, index=values.index, dtype="boolean")
    result[is_true] = True
    result[is_false] = False
    return result


# ---------------------------------------------------------------- writing


def write_tables(tables: dict[str, pd.DataFrame], directory, fmt: str = "parquet") -> None:
    """Write each contract table in `tables` to `directory` as `<table>.<fmt>`.

    Tables are coerced to the contract first (InvalidData when they cannot be). The bytes
    depend only on the data. A file of the same table in the other format is removed,
    so that the directory holds one file per table.
    """
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, not {fmt!r}")
    unknown = sorted(set(tables) - set(TABLES))
    if unknown:
        raise ValueError(f"not contract tables: {', '.join(unknown)}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name in (t for t in TABLES if t in tables):
        frame = coerce_table(tables[name], name)
        path = directory / f"{name}.{fmt}"
        _write_atomically(frame, name, path, fmt)
        for other in FORMATS:
            if other != fmt:
                (directory / f"{name}.{other}").unlink(missing_ok=True)


def _write_atomically(frame: pd.DataFrame, name: str, path: Path, fmt: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        if fmt == "parquet":
            pq.write_table(to_arrow(frame, name), tmp, compression=PARQUET_COMPRESSION)
        else:
            to_csv_frame(frame, name).to_csv(tmp, index=False, lineterminator="\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def to_arrow(frame: pd.DataFrame, name: str) -> pa.Table:
    """A contract-typed frame as an Arrow table with the contract's Arrow schema."""
    arrays = [_arrow_array(frame[f.name], f) for f in FIELDS[name]]
    return pa.Table.from_arrays(arrays, names=list(COLUMNS[name]))


def _arrow_array(values: pd.Series, field: Field) -> pa.Array:
    if field.kind in ("timestamp", "date"):
        utc = values.dt.tz_convert(None).to_numpy()
        utc = utc.astype("datetime64[D]") if field.kind == "date" else utc
        return pa.array(utc, type=_ARROW_TYPES[field.kind], mask=values.isna().to_numpy())
    return pa.array(values, type=_ARROW_TYPES[field.kind], from_pandas=True)


def to_csv_frame(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """A contract-typed frame with timestamps, dates and booleans as contract text."""
    out = frame.copy()
    for field in FIELDS[name]:
        values = frame[field.name]
        if field.kind == "timestamp":
            out[field.name] = _timestamp_text(values)
        elif field.kind == "date":
            out[field.name] = _iso_text(values, "D", "naive")
        elif field.kind == "bool":
            out[field.name] = np.where(values.to_numpy(), "true", "false")
    return out


def _timestamp_text(values: pd.Series) -> pd.Series:
    """`2025-03-04T10:15:00Z`, with microseconds only when a value has some."""
    micros = values.dt.microsecond.fillna(0).to_numpy()
    return _iso_text(values, "us" if micros.any() else "s", "UTC")


def _iso_text(
    values: pd.Series, unit: Literal["D", "s", "us"], timezone: Literal["naive", "UTC"]
) -> pd.Series:
    """ISO-8601 text of UTC timestamps ("UTC" appends `Z`); nulls stay null."""
    naive = values.dt.tz_convert(None).to_numpy()
    text = np.datetime_as_string(naive, unit=unit, timezone=timezone)
    return pd.Series(text, index=values.index, dtype=STRING_DTYPE).where(values.notna())


def write_part(frame: pd.DataFrame, name: str, path: Path) -> None:
    """One Parquet part of contract table ``name`` (coerced to the contract first)."""
    pq.write_table(to_arrow(coerce_table(frame, name), name), path, compression=PARQUET_COMPRESSION)
