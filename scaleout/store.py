"""The snapshot store's build on Spark: the same snapshot as in memory, bit for bit.

Step 1 runs ``store.snapshot.candidate_rows`` per creator bucket
(``groupBy(bucket).applyInPandas``, as the features stage runs the pair builder): every
candidate's identity and features depend on its own history only. Its rows (one wide
frame: creator rows and (creator, category) rows) are kept on local disk. Step 2 groups
them by (day, market) and finishes each market with ``store.snapshot.finish_snapshot``
(indices among the market's candidates, counterfactual targets), writing the market's
files into the day's staging folder from the worker, which returns their row counts.
The driver then publishes each day as the in-memory build does (``store.layout``). The
store must be at the same path on the driver and every executor (a shared mount).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from features.build import CATEGORY_FEATURES, index_history
from marketplace.contract import STRING_DTYPE
from marketplace.io import read_table
from scaleout.tables import BUCKET, bucket_tables, bucketed_rows, read_contract_table
from store.layout import day_name, day_record, publish_day, staging_folder, write_market
from store.snapshot import CATEGORY_SOURCES, CREATOR_FEATURES, candidate_rows, finish_snapshot

KIND = "_kind"  # "c": a creator row, "k": a (creator, category) row
TEXT = ("market", "creator_id", "primary_category", "follower_tier", "category")


def wide_schema():
    """Step 1's rows: kind, day, identity, category, followers and every feature."""
    from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType

    return StructType(
        [StructField(KIND, StringType()), StructField("day", StringType())]
        + [StructField(c, StringType()) for c in TEXT]
        + [StructField("followers", LongType())]
        + [StructField(f, DoubleType()) for f in (*CREATOR_FEATURES, *CATEGORY_FEATURES)]
    )


def count_schema():
    """Step 2's rows: the row counts of one (day, market)'s files."""
    from pyspark.sql.types import LongType, StringType, StructField, StructType

    return StructType(
        [StructField("day", StringType()), StructField("market", StringType())]
        + [StructField(t, LongType()) for t in ("creators", "categories", "targets")]
    )


def bucket_snapshot_rows(
    campaigns: pd.DataFrame, days: list[pd.Timestamp], categories: tuple[str, ...]
) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """The applyInPandas function of step 1: one bucket's rows in, its candidates' rows on
    every day out (``wide_schema``)."""
    columns = [field.name for field in wide_schema().fields]

    def rows_of(rows: pd.DataFrame) -> pd.DataFrame:
        tables = bucket_tables(rows, campaigns)
        history = index_history(tables)
        out = []
        for day in days:
            creators, per_category = candidate_rows(tables, day, categories, history)
            out += [
                creators.assign(**{KIND: "c", "day": day_name(day)}),
                per_category.assign(**{KIND: "k", "day": day_name(day)}),
            ]
        frame = pd.concat(out, ignore_index=True).reindex(columns=columns)
        # text as Python objects: Spark's Arrow conversion takes no chunked string arrays
        return frame.astype({c: object for c in (KIND, "day", *TEXT)}).assign(
            followers=frame["followers"].fillna(0).astype(np.int64)
        )

    return rows_of


def market_files(staged: dict[str, str]) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """The applyInPandas function of step 2: one (day, market)'s rows in, its files
    written into the day's staging folder, their row counts out."""

    def write(rows: pd.DataFrame) -> pd.DataFrame:
        day, market = str(rows["day"].iloc[0]), str(rows["market"].iloc[0])
        snap = finish_snapshot(typed(rows))
        counts = write_market(
            Path(staged[day]),
            market,
            {"creators": snap.creators, "categories": snap.categories, "targets": snap.targets},
        )
        return pd.DataFrame([{"day": day, "market": market, **counts}])

    return write


def typed(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Step 1's rows of one market as ``candidate_rows`` returns them (creators,
    categories), with the in-memory dtypes."""
    creators = rows[rows[KIND] == "c"].reset_index(drop=True)
    per_category = rows[rows[KIND] == "k"].reset_index(drop=True)
    text = lambda frame, names: {c: frame[c].astype(STRING_DTYPE) for c in names}  # noqa: E731
    floats = lambda frame, names: {c: frame[c].astype("float64") for c in names}  # noqa: E731
    return (
        pd.DataFrame(
            {
                **text(creators, ("creator_id", "market", "primary_category")),
                "followers": creators["followers"].astype(np.int64),
                **text(creators, ("follower_tier",)),
                **floats(creators, CREATOR_FEATURES),
            }
        ),
        pd.DataFrame(
            {
                **text(per_category, ("creator_id", "market", "category")),
                **floats(per_category, CATEGORY_FEATURES),
            }
        ),
    )


def spark_categories(spark, directory) -> tuple[str, ...]:
    """``store.snapshot.data_categories`` computed on Spark."""
    from pyspark.sql import functions as F

    union = None
    for name, column in CATEGORY_SOURCES:
        part = read_contract_table(spark, directory, name).select(F.col(column).alias("c"))
        union = part if union is None else union.unionByName(part)
    assert union is not None
    found = union.where(F.col("c").isNotNull()).distinct().collect()
    return tuple(sorted(str(row["c"]) for row in found))


def last_post_day(spark, directory) -> pd.Timestamp:
    """Midnight (UTC) of the day of the data's last post."""
    from pyspark.sql import functions as F

    posts = read_contract_table(spark, directory, "posts")
    day = posts.agg(F.date_format(F.max("posted_at"), "yyyy-MM-dd").alias("d")).collect()[0]["d"]
    return pd.Timestamp(day, tz="UTC").as_unit("us")


def spark_build(
    spark,
    directory: Path,
    store: Path,
    days: list[pd.Timestamp],
    buckets: int,
    progress: Callable[[str], None] = lambda message: None,
) -> list[str]:
    """Compute and publish ``days`` of ``directory`` into ``store`` on Spark (module doc);
    the days written. Nothing is published unless every market of every day was written."""
    from pyspark import StorageLevel

    if not days:
        return []
    categories = spark_categories(spark, directory)
    campaigns = read_table(directory, "campaigns")
    rows = bucketed_rows(spark, directory, buckets)
    wide = rows.groupBy(BUCKET).applyInPandas(
        bucket_snapshot_rows(campaigns, days, categories), schema=wide_schema()
    )
    wide = wide.persist(StorageLevel.DISK_ONLY)
    staged = {day_name(d): staging_folder(store, day_name(d)) for d in days}
    try:
        counts = (
            wide.groupBy("day", "market")
            .applyInPandas(market_files({d: str(p) for d, p in staged.items()}), count_schema())
            .collect()
        )
        wide.unpersist()
        per_day: dict[str, dict[str, dict[str, int]]] = {d: {} for d in staged}
        for row in counts:
            per_day[row["day"]][row["market"]] = {
                t: int(row[t]) for t in ("creators", "categories", "targets")
            }
        for day in sorted(staged):
            publish_day(
                store, staged[day], day, day_record(directory, categories, per_day[day], "spark")
            )
            creators = sum(m["creators"] for m in per_day[day].values())
            progress(f"day {day}: {creators:,} candidates in {len(per_day[day])} markets")
    finally:
        for folder in staged.values():
            shutil.rmtree(folder, ignore_errors=True)
    return sorted(staged)
