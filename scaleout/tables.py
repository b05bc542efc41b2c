"""The raw tables as Spark DataFrames, and the creator buckets the builder runs on.

Every creator-keyed table (creators, follower_snapshots, posts, invitations,
campaign_results) goes into one wide frame: ``_table`` names the table, ``_bucket`` is
``pmod(xxhash64(creator_id), buckets)``, and each table's columns are prefixed with its
name (``posts__gmv``) so that no two tables' types meet. ``bucket_tables`` turns one
bucket's rows back into contract-typed pandas tables through the contract's own
coercion, as ``marketplace.io.read_tables`` does.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pandas as pd

from marketplace.contract import COLUMNS, FIELDS
from marketplace.io import coerce_table, table_path

CREATOR_TABLES = ("creators", "follower_snapshots", "posts", "invitations", "campaign_results")
TABLE, BUCKET = "_table", "_bucket"
SEP = "__"


def read_contract_table(spark, directory, name: str):
    """Table ``name`` of ``directory`` (a Parquet file, a directory of parts, or CSV
    read as text) as a Spark DataFrame of its contract columns: timestamps as Spark
    timestamps (nanoseconds read as longs become microseconds by integer division),
    dates as midnight-UTC timestamps, everything else as found."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import LongType

    path = table_path(directory, name)
    if path is None:
        raise FileNotFoundError(f"{directory}: no table {name}")
    if path.suffix == ".csv" and path.is_file():
        frame = spark.read.option("header", True).csv(str(path))
    else:
        frame = spark.read.parquet(str(path))
    types = dict((f.name, f.dataType) for f in frame.schema.fields)
    columns = []
    for field in FIELDS[name]:
        column = F.col(field.name)
        if field.kind in ("timestamp", "date") and isinstance(types[field.name], LongType):
            column = F.expr(f"timestamp_micros(`{field.name}` div 1000)")
        elif field.kind == "date":
            column = column.cast("timestamp")
        columns.append(column.alias(field.name))
    return frame.select(*columns)


def bucketed_rows(spark, directory, buckets: int):
    """The creator-keyed tables of ``directory`` in one wide frame (module doc)."""
    from pyspark.sql import functions as F

    wide = None
    for name in CREATOR_TABLES:
        table = read_contract_table(spark, directory, name)
        part = table.select(
            F.pmod(F.xxhash64("creator_id"), F.lit(buckets)).alias(BUCKET),
            F.lit(name).alias(TABLE),
            *[F.col(c).alias(f"{name}{SEP}{c}") for c in COLUMNS[name]],
        )
        wide = part if wide is None else wide.unionByName(part, allowMissingColumns=True)
    return wide


def bucket_tables(rows: pd.DataFrame, campaigns: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """One bucket's rows (from ``bucketed_rows``, as pandas) as the six contract tables;
    ``campaigns`` (whole, contract-typed) is the same for every bucket."""
    tables = {}
    for name in CREATOR_TABLES:
        own = rows[rows[TABLE] == name]
        frame = pd.DataFrame({c: own[f"{name}{SEP}{c}"].to_numpy() for c in COLUMNS[name]})
        tables[name] = coerce_table(frame, name)
    tables["campaigns"] = campaigns
    return tables


def write_parts_atomically(frame, out: Path) -> None:
    """Write a Spark DataFrame as a directory of Parquet parts (zstd) at ``out``: into a
    hidden folder beside it, renamed into place at the end (an existing ``out``
    directory is replaced only then), so a failed job leaves no partial output."""
    tmp = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}")
    old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
    try:
        frame.write.option("compression", "zstd").parquet(str(tmp))
        for junk in [*tmp.glob(".*.crc"), tmp / "_SUCCESS"]:
            junk.unlink(missing_ok=True)
        if out.exists():
            out.rename(old)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
