"""Partner lists on Spark: the in-memory recipe (``serving.partner_list``) in two steps.

1. Per creator bucket (``groupBy(bucket).applyInPandas``): the bucket's candidates of
   every brief and their features, with the one builder (a creator's candidacy and
   features depend only on its own rows).
2. Per brief (``groupBy(brief).applyInPandas``): raw scores, ranks, the indices among
   all the brief's candidates, and contributions and reasons for the top_k rows only,
   by ``serving.partner_list.explained_top``; the booster is loaded once per Python worker
   from the model's LightGBM text.

With the model's reference bins, the candidates of step 1 are kept on local disk and
also counted per feature and bin (``mapInPandas``, summed on the driver): the counts the
in-memory path gives ``serving.drift``. The rows are those of the in-memory path, value
for value, ordered by brief then rank.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import lightgbm as lgb
import numpy as np
import pandas as pd

from features.build import build_features, index_history
from features.candidates import feature_requests, find_candidates, market_creators
from features.registry import FEATURE_NAMES
from scaleout.tables import BUCKET, bucket_tables, bucketed_rows
from serving.drift import add_counts
from serving.partner_list import PARTNER_COLUMNS, empty_partner_list, explained_top
from training.model import Scorer
from training.reference import bin_counts
from training.sales import SalesModel

BRIEF = "_brief"
_SCORERS: dict[str, lgb.Booster] = {}  # per Python worker: LightGBM text -> booster


def scorer_parts(scorer: Scorer) -> dict:
    """What a worker needs to rebuild ``scorer``: LightGBM text, score map, median and
    the expected-sales model (plain JSON)."""
    booster = scorer.booster
    return {
        "model": booster.model_to_string(num_iteration=booster.best_iteration or None),
        "score_map": scorer.score_map,
        "commission_rate_median": scorer.commission_rate_median,
        "sales": None if scorer.sales is None else scorer.sales.as_dict(),
    }


def _scorer(parts: dict) -> Scorer:
    """The Scorer of ``scorer_parts``, its booster parsed once per Python worker."""
    if parts["model"] not in _SCORERS:
        _SCORERS.clear()
        _SCORERS[parts["model"]] = lgb.Booster(model_str=parts["model"])
    return Scorer(
        booster=_SCORERS[parts["model"]],
        score_map=parts["score_map"],
        commission_rate_median=parts["commission_rate_median"],
        sales=SalesModel.from_dict(parts["sales"]) if parts.get("sales") else None,
    )


def candidate_schema():
    """The Spark schema of the candidate rows: brief number, creator_id and every feature."""
    from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType

    return StructType(
        [StructField(BRIEF, LongType()), StructField("creator_id", StringType())]
        + [StructField(f, DoubleType()) for f in FEATURE_NAMES]
    )


def partner_schema():
    """The Spark schema of the partner-list rows: brief number and the contract's columns."""
    from pyspark.sql.types import (
        BooleanType,
        DoubleType,
        LongType,
        StringType,
        StructField,
        StructType,
    )

    kinds = {
        "brief_id": StringType(),
        "creator_id": StringType(),
        "rank": LongType(),
        "provisional": BooleanType(),
        "reasons": StringType(),
        "model_version": StringType(),
    }
    return StructType(
        [StructField(BRIEF, LongType())]
        + [StructField(c, kinds.get(c, DoubleType())) for c in PARTNER_COLUMNS]
    )


def bucket_candidates(
    campaigns: pd.DataFrame, briefs: pd.DataFrame
) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """The applyInPandas function of step 1; the campaigns and the checked briefs travel
    with it (Spark pickles a function with what it refers to)."""

    def candidates_of(rows: pd.DataFrame) -> pd.DataFrame:
        tables = bucket_tables(rows, campaigns)
        history = index_history(tables)
        pairs = find_candidates(tables, briefs, history, market_creators(tables, history))
        features = build_features(tables, feature_requests(briefs, pairs), history)
        out = pd.DataFrame(
            {
                BRIEF: pairs["brief"].to_numpy(np.int64),
                "creator_id": pairs["creator_id"].to_numpy(dtype=object),
            }
        )
        return pd.concat([out, features.reset_index(drop=True)], axis=1)

    return candidates_of


def brief_rows(
    briefs: pd.DataFrame, scorer: dict, model_version: str
) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """The applyInPandas function of step 2: one brief's candidates in, its rows out;
    ``scorer`` is the model's ``scorer_parts``."""

    def rows_of(candidates: pd.DataFrame) -> pd.DataFrame:
        candidates = candidates.sort_values("creator_id", kind="stable").reset_index(drop=True)
        position = int(candidates[BRIEF].iloc[0])
        chunk = briefs.iloc[[position]].reset_index(drop=True)
        pairs = pd.DataFrame(
            {
                "brief": np.zeros(len(candidates), np.int64),
                "creator_id": candidates["creator_id"].astype("str"),
            }
        )
        features = candidates[list(FEATURE_NAMES)]
        out = explained_top(chunk, pairs, features, _scorer(scorer), model_version)
        return out.assign(**{BRIEF: position})[[BRIEF, *PARTNER_COLUMNS]]

    return rows_of


def bin_count_rows(reference: dict) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """The mapInPandas function counting a partition's candidates per feature and
    reference bin: rows (feature, bin, count)."""

    def counts_of(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        total = None
        for batch in batches:
            total = add_counts(total, batch, reference)
        if total is not None:
            yield pd.DataFrame(
                [
                    (name, b, float(n))
                    for name, counts in total.items()
                    for b, n in enumerate(counts)
                ],
                columns=["feature", "bin", "count"],
            )

    return counts_of


def drift_counts(candidates, reference: dict) -> dict[str, np.ndarray] | None:
    """Every candidate's counts per feature and reference bin (``serving.drift``); None
    without candidates, as the in-memory path observes none."""
    rows = candidates.mapInPandas(
        bin_count_rows(reference), schema="feature string, bin int, count double"
    ).toPandas()
    if rows.empty:
        return None
    counts = bin_counts(pd.DataFrame(columns=list(reference), dtype=float), reference)
    for row in rows.itertuples(index=False):
        counts[row.feature][row.bin] += row.count
    return counts


def spark_partner_lists(
    spark,
    directory,
    campaigns: pd.DataFrame,
    briefs: pd.DataFrame,
    scorer: Scorer,
    model_version: str,
    buckets: int,
    reference: dict | None = None,
) -> tuple[pd.DataFrame, dict[str, np.ndarray] | None]:
    """The partner lists of ``briefs`` (checked, with the model's defaults) on the data
    of ``directory``, as the in-memory ``partner_lists`` returns them, and with
    ``reference`` (``serving.drift.data_reference`` of the model's bins) the candidates'
    bin counts for the drift report (None without, or without candidates)."""
    from pyspark import StorageLevel

    briefs = briefs.reset_index(drop=True)
    rows = bucketed_rows(spark, directory, buckets)
    candidates = rows.groupBy(BUCKET).applyInPandas(
        bucket_candidates(campaigns, briefs), schema=candidate_schema()
    )
    if reference:
        candidates = candidates.persist(StorageLevel.DISK_ONLY)  # built once, read twice
    lists = candidates.groupBy(BRIEF).applyInPandas(
        brief_rows(briefs, scorer_parts(scorer), model_version),
        schema=partner_schema(),
    )
    result = lists.orderBy(BRIEF, "rank").toPandas()
    result.attrs.clear()  # Spark Connect's plan metrics, which no file format can hold
    counts = drift_counts(candidates, reference) if reference else None
    candidates.unpersist()
    if result.empty:
        return empty_partner_list(), counts
    template = empty_partner_list()
    return (
        result[list(PARTNER_COLUMNS)].astype(template.dtypes.to_dict()).reset_index(drop=True),
        counts,
    )
