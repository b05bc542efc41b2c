"""``python -m training DIR``: fit, evaluate on the time split, log to MLflow, register."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from marketplace.cli import TRACKING_URI_HELP, UserError, fail, log
from training.backtest import format_backtest
from training.config import DEFAULT_CONFIG, ConfigError, TrainConfig, load_config
from training.run import TrainingError
from training.sales import sales_summary
from training.stage import run_training
from training.tracking import DEFAULT_EXPERIMENT, TrackingError, metrics_table, resolve_tracking_uri


def parse_args(argv=None) -> argparse.Namespace:
    """The command line of ``python -m training``."""
    parser = argparse.ArgumentParser(
        prog="python -m training",
        description="Train the LightGBM ranker on the campaigns of DIR: features as of each "
        "campaign's creation, the data contract's time split (test = last 20 % "
        "of campaigns) and a walk-forward backtest of earlier folds, objective "
        "chosen on the folds' validation ndcg@10; evaluate against the "
        "baselines (and the oracle with --truth); refit on every labelled "
        "campaign for serving; log everything to MLflow; with --register, move "
        "the champion alias only when the challenger is better beyond noise.",
    )
    parser.add_argument("directory", type=Path, metavar="DIR", help="data directory (raw tables)")
    parser.add_argument(
        "--pairs",
        type=Path,
        metavar="PAIRS",
        help="train on this pair table of DIR, a directory of Parquet parts "
        "(python -m features DIR --out PAIRS --engine spark): DIR is "
        "validated part by part and the fit features are read part by "
        "part, never whole (for data larger than memory)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help=f"TOML file overriding keys of the default ({DEFAULT_CONFIG.name})",
    )
    parser.add_argument(
        "--truth",
        type=Path,
        metavar="DIR",
        help="truth directory with expected_gmv.parquet (the simulator's "
        "DIR/truth): adds the oracle to the evaluation",
    )
    parser.add_argument(
        "--metrics-out", type=Path, metavar="FILE", help="write the test metrics as JSON to FILE"
    )
    parser.add_argument(
        "--tracking-uri",
        metavar="URI",
        help=TRACKING_URI_HELP,
    )
    parser.add_argument(
        "--experiment",
        default=DEFAULT_EXPERIMENT,
        metavar="NAME",
        help="MLflow experiment (default %(default)s)",
    )
    parser.add_argument(
        "--backtest",
        type=int,
        metavar="K",
        help="walk-forward folds, each test_fraction of the campaigns, the "
        "last one the test set (default: backtest_folds of the config; "
        "1 = the test set alone)",
    )
    parser.add_argument(
        "--register",
        metavar="NAME",
        help="register the model under NAME; alias 'champion' moves to it "
        "only if its test ndcg@10 beats the champion's on campaigns the "
        "champion never learned from, with a bootstrap interval above 0",
    )
    return parser.parse_args(argv)


def with_backtest(cfg: TrainConfig, folds: int | None) -> TrainConfig:
    """``cfg`` with ``--backtest K`` applied (validated like a config key)."""
    if folds is None:
        return cfg
    try:
        return dataclasses.replace(cfg, backtest_folds=folds)
    except ConfigError as err:
        raise ConfigError(f"--backtest {folds}: {err}") from None


def main(argv=None) -> int:
    """``python -m training DIR``: ``training.stage.run_training`` on the command's
    arguments, then its run id, model URI, gate, metrics and backtest; the exit status."""
    args = parse_args(argv)
    started = time.perf_counter()
    try:
        cfg = with_backtest(load_config(args.config), args.backtest)
        uri = resolve_tracking_uri(args.tracking_uri)
        if args.metrics_out and not args.metrics_out.parent.is_dir():
            raise UserError(f"{args.metrics_out.parent}: folder does not exist")
        result, logged = run_training(
            args.directory,
            uri,
            args.experiment,
            cfg,
            truth_dir=args.truth,
            pairs_dir=args.pairs,
            register=args.register,
            progress=log,
        )
    except (UserError, ConfigError, TrainingError, TrackingError) as err:
        return fail(str(err))
    if args.metrics_out:
        args.metrics_out.write_text(json.dumps(result.metrics, indent=2) + "\n")
    print(f"run id:    {logged.run_id}")
    print(f"model URI: {logged.model_uri}")
    if logged.version:
        print(f"registered: version {logged.version}")
        print(f"gate: {logged.champion_note}")
    print(
        f"objective: {result.chosen.objective}, {result.chosen.best_iteration} trees; "
        f"{result.metrics['test_queries']} test campaigns"
    )
    print(
        f"served model: refitted on {len(result.served_campaigns)} labelled campaigns "
        f"(until {(result.scorer.trained_until or '')[:10]}), {result.served_trees} trees"
    )
    print(metrics_table(result.metrics))
    if "sales_coverage" in result.metrics:
        print(sales_summary(result.metrics))
    k, backtest = cfg.eval_at, result.backtest
    if backtest is not None:
        shown = [
            m
            for m in (f"ndcg@{k}", f"gmv_capture@{k}", f"oracle_ndcg@{k}")
            if m in backtest.columns
        ]
        print(
            f"backtest ({len(backtest) - 1} folds, {cfg.confidence:.0%} bootstrap intervals "
            "over test campaigns):"
        )
        print(format_backtest(backtest, shown))
    log(f"done in {time.perf_counter() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
