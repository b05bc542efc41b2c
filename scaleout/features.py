"""The training pair table on Spark: ``features.pairs.training_pairs`` run per creator
bucket (``groupBy(bucket).applyInPandas``), campaigns handed whole to every bucket.

Every feature of a pair depends only on its creator's own rows and its campaign, so the
union of the buckets' pair tables is the in-memory pair table, row for row and bit for
bit; it is written sorted as ``training_pairs`` sorts it (created_at, campaign_id,
creator_id), as Parquet parts in name order.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from features.pairs import PAIR_COLUMNS, training_pairs
from features.registry import FEATURE_NAMES
from scaleout.tables import BUCKET, bucket_tables, bucketed_rows

SORT_COLUMNS = ["created_at", "campaign_id", "creator_id"]


def pair_schema():
    """The Spark schema of the pair table: ids, created_at, gmv and every feature."""
    from pyspark.sql.types import DoubleType, StringType, StructField, StructType, TimestampType

    kinds = {
        "campaign_id": StringType(),
        "creator_id": StringType(),
        "created_at": TimestampType(),
        "gmv": DoubleType(),
    }
    return StructType(
        [StructField(c, kinds[c]) for c in PAIR_COLUMNS]
        + [StructField(f, DoubleType()) for f in FEATURE_NAMES]
    )


def bucket_pairs(campaigns: pd.DataFrame) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """The applyInPandas function: one bucket's rows in, its training pairs out.
    ``campaigns`` (the contract-typed campaigns table) travels with the function, which
    Spark pickles once per job (classic Spark broadcasts it when large)."""
    columns = list(PAIR_COLUMNS) + list(FEATURE_NAMES)

    def pairs_of(rows: pd.DataFrame) -> pd.DataFrame:
        return training_pairs(bucket_tables(rows, campaigns))[columns]

    return pairs_of


def spark_pairs(spark, directory, campaigns: pd.DataFrame, buckets: int):
    """The pair table of ``directory`` as a sorted Spark DataFrame, and the unsorted one
    to ``unpersist`` once it is written; ``campaigns`` is the directory's campaigns table
    as read by ``marketplace.io``.

    The unsorted pairs are kept on local disk: the sort's sampling pass and the sort
    itself then read them, instead of running the builder twice."""
    from pyspark import StorageLevel

    rows = bucketed_rows(spark, directory, buckets)
    pairs = rows.groupBy(BUCKET).applyInPandas(bucket_pairs(campaigns), schema=pair_schema())
    pairs = pairs.persist(StorageLevel.DISK_ONLY)
    return pairs.orderBy(*SORT_COLUMNS), pairs
