"""``python -m serving --model URI (--store STORE | --data DIR) --briefs FILE --out FILE``:
partner lists."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from features.build import index_history
from marketplace.cli import (
    TRACKING_URI_HELP,
    UserError,
    check_output_path,
    fail,
    load_tables_or_report,
    log,
    rows_or_report,
    write_frame_atomically,
)
from marketplace.io import read_table
from scaleout.session import SparkError, add_engine_arguments
from serving.briefs import DEFAULT_TOP_K, BriefError, check_briefs, read_briefs
from serving.drift import THRESHOLD, add_counts, data_reference, drift_report, drift_warning
from serving.model import ModelError, check_features, load_model
from serving.partner_list import no_candidates_message, partner_lists, with_model_defaults
from store.layout import StoreError


def parse_args(argv=None) -> argparse.Namespace:
    """The command line of ``python -m serving``."""
    parser = argparse.ArgumentParser(
        prog="python -m serving",
        description="Score briefs into partner lists (data contract): for each brief, the "
        "creators of its market who posted in the 90 days before its as_of "
        "(and have at least min_followers), ranked by the model; its top_k "
        "with rank, score, the nine 0-100 indices, raw_score, per-family "
        "contributions, reasons and the model version. The data is validated "
        "first; the output is written atomically. A one-line warning names "
        f"the feature families whose drift from the creators the model was made for "
        f"(every candidate as of the end of its training data) exceeds PSI {THRESHOLD}.",
    )
    parser.add_argument(
        "--model",
        required=True,
        metavar="URI",
        help="MLflow model URI: models:/NAME@ALIAS, models:/NAME/VERSION, "
        "runs:/RUN_ID/model (an alias is reported as its version)",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--store",
        type=Path,
        metavar="STORE",
        help="snapshot store (python -m store build): every brief's as_of must be a stored "
        "day; the fast way, read with DuckDB",
    )
    source.add_argument(
        "--data",
        type=Path,
        metavar="DIR",
        help="data directory (the six raw tables): features rebuilt from the raw history, "
        "any as_of",
    )
    parser.add_argument(
        "--briefs",
        required=True,
        type=Path,
        metavar="FILE",
        help="briefs, .csv or .parquet: brief_id, market, category, as_of; "
        f"optional top_k (default {DEFAULT_TOP_K}), min_followers, "
        "commission_rate (default: the model's training median)",
    )
    parser.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="FILE",
        help="partner list, .parquet or .csv (written atomically)",
    )
    parser.add_argument(
        "--show",
        type=int,
        default=0,
        metavar="N",
        help="also print the top N rows of each of the first briefs "
        "(rank, creator, score, reasons)",
    )
    parser.add_argument(
        "--drift-report",
        type=Path,
        metavar="FILE",
        help="write the population stability index of every feature and "
        "family (scored candidates against the model's training "
        "pairs), .csv or .parquet; on either engine",
    )
    parser.add_argument(
        "--tracking-uri",
        metavar="URI",
        help=TRACKING_URI_HELP,
    )
    add_engine_arguments(parser)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """``python -m serving``: score the briefs into a partner list file; the exit status.
    ``python -m serving similar|rising ...``: look-alikes and rising lists (issue 21)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] in (["similar"], ["rising"]):
        from store import discovery_cli  # the store's reader; imported only for these

        command = discovery_cli.similar_main if argv[0] == "similar" else discovery_cli.rising_main
        return command(argv[1:])
    args = parse_args(argv)
    started = time.perf_counter()
    report = None
    try:
        check_output_path(args.out)
        if args.drift_report:
            check_output_path(args.drift_report)
        briefs = read_briefs(args.briefs)
        scorer, version = load_model(args.model, args.tracking_uri)
        if args.drift_report and not scorer.reference:
            raise UserError(
                f"model {version} has no reference bins (trained before drift "
                "checks): retrain it to get a --drift-report"
            )
        if args.store is not None:
            if args.engine == "spark":
                raise UserError(
                    "--store is read in this process (DuckDB); --engine spark reads --data"
                )
            result, report = stored_lists(args, briefs, scorer, version, started)
        elif args.engine == "spark":
            result, report = spark_lists(args, briefs, scorer, version)
        else:
            result, report = memory_lists(args, briefs, scorer, version, started)
        write_frame_atomically(result, args.out)
        if args.drift_report and report is not None:
            write_frame_atomically(report, args.drift_report)
    except (UserError, BriefError, ModelError, SparkError, StoreError) as err:
        return fail(str(err))
    log(
        f"wrote {args.out}: {len(result):,} rows for {result['brief_id'].nunique():,} of "
        f"{len(briefs):,} briefs in {time.perf_counter() - started:.1f}s"
    )
    if not scorer.reference:
        log(
            f"warning: model {version} has no reference bins (trained before drift checks): "
            "drift not checked"
        )
    elif report is not None and (message := drift_warning(report)):
        log(f"warning: {message}")
    if args.drift_report and report is not None:
        log(
            f"wrote {args.drift_report}: drift of {(report['kind'] == 'feature').sum()} "
            "features and their families"
        )
    if args.show > 0:
        print(preview(result, args.show))
    return 0


def warn(message: str) -> None:
    """Print ``warning: message`` on stderr."""
    log(f"warning: {message}")


class DriftCounts:
    """The bin counts of every scored candidate against the model's reference bins
    (``observe`` is None when the model has none), and their drift report."""

    def __init__(self, scorer):
        self.reference = data_reference(scorer.reference or {})
        self.counts: dict | None = None
        self.observe = self._add if scorer.reference else None

    def _add(self, features: pd.DataFrame) -> None:
        self.counts = add_counts(self.counts, features, self.reference)

    def report(self) -> pd.DataFrame | None:
        """The drift report, None when nothing was observed."""
        return None if self.counts is None else drift_report(self.counts, self.reference)


def memory_lists(
    args: argparse.Namespace, briefs: pd.DataFrame, scorer, version: str, started: float
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The partner lists in one process, and the drift report of the scored candidates
    against the model's reference population (None when the model has no reference)."""
    tables = load_tables_or_report(args.data)
    history = index_history(tables, release_posts=True)  # memory: see its docstring
    log(
        f"model {version}; {len(briefs):,} briefs from {args.briefs}; read, validated "
        f"and indexed {args.data} in {time.perf_counter() - started:.1f}s"
    )
    drift = DriftCounts(scorer)
    result = partner_lists(
        tables,
        briefs,
        scorer,
        version,
        history,
        progress=log,
        warn=warn,
        observe=drift.observe,
    )
    return result, drift.report()


def stored_lists(
    args: argparse.Namespace, briefs: pd.DataFrame, scorer, version: str, started: float
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """``memory_lists`` from the snapshot store: the same rows and drift report for briefs
    on stored days."""
    from store.read import open_store
    from store.serve import store_partner_lists

    store = open_store(args.store)
    log(
        f"model {version}; {len(briefs):,} briefs from {args.briefs}; store {args.store} "
        f"({len(store.days)} days) opened in {time.perf_counter() - started:.1f}s"
    )
    drift = DriftCounts(scorer)
    result = store_partner_lists(
        store,
        briefs,
        scorer,
        version,
        progress=log,
        warn=warn,
        observe=drift.observe,
    )
    return result, drift.report()


def spark_lists(
    args: argparse.Namespace, briefs: pd.DataFrame, scorer, version: str
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """``memory_lists`` computed on Spark (``scaleout.serving``), with the same checks,
    warnings and drift report."""
    from scaleout.serving import spark_partner_lists
    from scaleout.session import run_job, session_name, start_job_for

    briefs = with_model_defaults(check_briefs(briefs), scorer)
    check_features(scorer, version)
    rows = rows_or_report(args.data)
    spark, buckets = start_job_for(args, rows)
    log(
        f"model {version}; {len(briefs):,} briefs from {args.briefs}; Spark "
        f"{spark.version} on {session_name(spark)}, {buckets} creator buckets ..."
    )
    reference = data_reference(scorer.reference or {}) or None
    result, counts = run_job(
        lambda: spark_partner_lists(
            spark,
            args.data,
            read_table(args.data, "campaigns"),
            briefs,
            scorer,
            version,
            buckets,
            reference,
        )
    )
    for position in np.flatnonzero(~briefs["brief_id"].isin(result["brief_id"]).to_numpy()):
        warn(no_candidates_message(briefs.iloc[position]))
    return result, drift_report(counts, reference) if counts and reference else None


def _percent(share: float) -> str:
    return "–" if pd.isna(share) else f"{share:.0%}"


def preview(partners: pd.DataFrame, rows: int, briefs: int = 3) -> str:
    """The top ``rows`` of the first ``briefs`` briefs as plain text."""
    shown = partners[
        partners["brief_id"].isin(partners["brief_id"].unique()[:briefs])
        & (partners["rank"] <= rows)
    ]
    columns = [
        "brief_id",
        "rank",
        "creator_id",
        "score",
        "expected_gmv",
        "gmv_low",
        "gmv_high",
        "chance_of_sale",
        "provisional",
        "sales_index",
        "cooperation_index",
        "reasons",
    ]
    with pd.option_context("display.max_colwidth", 120, "display.width", 250):
        return shown[columns].to_string(
            index=False,
            float_format=lambda x: f"{x:.0f}",
            formatters={"score": "{:.1f}".format, "chance_of_sale": _percent},
        )


if __name__ == "__main__":
    sys.exit(main())
