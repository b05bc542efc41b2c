"""``python -m features DIR --out FILE``: the training pair table of a data directory
(``--engine spark``: the same table computed on Spark, as a directory of Parquet parts)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from features.build import index_history
from features.pairs import training_pairs
from features.registry import FEATURE_NAMES
from marketplace.cli import UserError, check_output_path, fail, load_tables_or_report, log, \
    rows_or_report, write_frame_atomically
from marketplace.io import read_table
from scaleout.session import add_engine_arguments

def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m features",
        description="Write the training pair table of a data directory: one row per "
                    "invitation with campaign_id, creator_id, created_at, gmv (the label "
                    f"source, 0 without a result) and the {len(FEATURE_NAMES)} features of "
                    "the registry, each as of the campaign's created_at. The data is "
                    "validated first.")
    parser.add_argument("directory", type=Path, metavar="DIR", help="data directory (raw tables)")
    parser.add_argument("--out", required=True, type=Path, metavar="OUT",
                        help="output file, .parquet or .csv (written atomically); with "
                             "--engine spark a directory of Parquet parts (replaced "
                             "atomically)")
    add_engine_arguments(parser)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        if args.engine == "spark":
            return run_spark(args)
        check_output_path(args.out)
        started = time.perf_counter()
        tables = load_tables_or_report(args.directory)
        log(f"read and validated {args.directory} in {time.perf_counter() - started:.1f}s; "
            f"building features for {len(tables['invitations']):,} invitations ...")
        history = index_history(tables, release_posts=True)  # memory: see its docstring
        pairs = training_pairs(tables, history)
        write_frame_atomically(pairs, args.out)
    except UserError as err:
        return fail(str(err))
    log(f"wrote {args.out}: {len(pairs):,} pairs x {len(FEATURE_NAMES)} features "
        f"in {time.perf_counter() - started:.1f}s")
    return 0


def check_output_folder(path: Path) -> None:
    """UserError unless ``path`` can become a directory of Parquet parts."""
    if path.suffix.lower() == ".csv" or path.is_file():
        raise UserError(f"{path}: with --engine spark the output is a directory of Parquet parts")
    if not path.parent.exists():
        raise UserError(f"{path.parent}: output folder does not exist")


def run_spark(args: argparse.Namespace) -> int:
    from scaleout.features import spark_pairs
    from scaleout.session import SparkError, run_job, start_job
    from scaleout.tables import write_parts_atomically

    started = time.perf_counter()
    try:
        check_output_folder(args.out)
        rows = rows_or_report(args.directory)
        campaigns = read_table(args.directory, "campaigns")
        log(f"validated {args.directory} part by part in {time.perf_counter() - started:.1f}s; "
            "starting Spark ...")
        spark, buckets = start_job(args.spark_master, args.buckets, rows)
        log(f"Spark {spark.version} on {spark.sparkContext.master}: building features for "
            f"{rows['invitations']:,} invitations in {buckets} creator buckets ...")
        pairs = spark_pairs(spark, args.directory, campaigns, buckets)
        run_job(lambda: write_parts_atomically(pairs, args.out))
    except (UserError, SparkError) as err:
        return fail(str(err))
    log(f"wrote {args.out}/: {rows['invitations']:,} pairs x {len(FEATURE_NAMES)} features "
        f"in {time.perf_counter() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
