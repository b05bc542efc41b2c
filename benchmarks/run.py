"""Time each stage at a given scale and record peak memory: ``python benchmarks/run.py``.

Each stage runs as its own process, exactly as a user runs it (``python -m ...``), so its
wall time includes reading and validating the data, and its peak resident memory is the
process's own (``os.wait4``). Stages:

- simulate: ``python -m marketplace simulate`` at the scale given;
- validate: ``python -m marketplace validate``; it records the directory as valid (in
  the cache folder, ``marketplace.stamp``), so the stages after it read the data without checking it
  again (without this stage each of them validates first, as a user's first run does);
- features: ``python -m features`` (the training pair table);
- features-spark: the same with ``--engine spark --spark-master local[2]`` (a directory
  of Parquet parts); its peak memory is that of the whole process tree (driver, JVM and
  Python workers together), sampled every 0.25 s;
- features-connect: the same over Spark Connect (``--spark-remote``), against a Spark
  Connect server on ``local[2]`` started first from pyspark's distribution (with the
  local session's 4 GB driver heap); its seconds are the command's, the server already
  up; its peak memory is that of both process trees;
- training: ``python -m training`` (features + fitting + evaluation + MLflow logging);
- training-pairs: ``python -m training DIR --pairs PAIRS`` on the features-spark pair
  table (fit features read part by part, never whole);
- serving: ``python -m serving`` with 50 briefs in one market, top_k 100, against a
  marketplace of that one market (``--serving-creators``, default 40,000 creators:
  about 30,000 active), and, for comparison, the time that building the candidates'
  features and a plain ``predict`` alone take in one process;
- serving-spark: the same briefs with ``--engine spark --spark-master local[2]`` (peak of
  the whole process tree);
- store: ``python -m store build`` of the main data, the day after its last post and every
  30 days back for 180 days (seven days); store-spark: the same on Spark ``local[2]``
  (peak of the whole process tree);
- serving-store: the serving stage's briefs from a store of that one-market marketplace
  (built first, on the briefs' day, not timed here).

Stages run in that order, whatever the order given. Figures are printed as a Markdown table together with the machine's cores and memory,
and with ``--markdown FILE`` appended to FILE.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PYTHON = sys.executable
SPARK = ["--engine", "spark", "--spark-master", "local[2]"]
TARGETS = {
    "simulate": "< 180 s, < 8 GB at 100,000 creators",
    "features": "< 300 s, < 8 GB at 100,000 creators",
    "training": "< 600 s (features included), < 8 GB at 100,000 creators",
    "features-spark": "< 2x features' seconds at 100,000 creators; all processes < 16 GB",
    "features-connect": "< 1.3x features-spark's seconds at 100,000 creators",
    "serving": "< 120 s and < 2x features + predict, 50 briefs x 30,000 candidates",
    "validate": "(recorded: later stages do not check again)",
    "training-pairs": "the model of training on the same pairs; < 16 GB",
    "serving-spark": "the rows of serving; all processes < 16 GB",
    "store": "(the in-memory build at this size)",
    "store-spark": "< 1.5x features-spark's seconds; all processes < 16 GB",
    "serving-store": "50 briefs from the store: the rows of serving, far faster",
}


def run_stage(args: list[str], log_path: Path) -> tuple[float, float, int]:
    """Run ``python args`` to completion: (seconds, peak GiB, exit status)."""
    started = time.perf_counter()
    with open(log_path, "w") as log:
        process = subprocess.Popen([PYTHON, *args], stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    return seconds, usage.ru_maxrss / 1024**2, os.waitstatus_to_exitcode(status)


def run_stage_tree(
    args: list[str], log_path: Path, every_s: float = 0.25, also: int | None = None
) -> tuple[float, float, int]:
    """``run_stage`` for a process with children (Spark's JVM and Python workers): the
    peak is the largest sampled sum of the resident memory of the whole tree (and of the
    tree of process ``also``, a server it uses)."""
    import psutil

    started, peak = time.perf_counter(), 0
    with open(log_path, "w") as log:
        process = subprocess.Popen([PYTHON, *args], stdout=log, stderr=subprocess.STDOUT)
        roots = [psutil.Process(process.pid)] + ([psutil.Process(also)] if also else [])
        while process.poll() is None:
            total = 0
            try:
                tree = [t for root in roots for t in [root, *root.children(recursive=True)]]
            except psutil.NoSuchProcess:
                break
            for member in tree:
                try:
                    total += member.memory_info().rss
                except psutil.NoSuchProcess:
                    pass
            peak = max(peak, total)
            time.sleep(every_s)
    return time.perf_counter() - started, peak / 1024**3, process.wait()


def start_connect_server(work: Path) -> tuple[subprocess.Popen, str]:
    """A Spark Connect server on ``local[2]`` (pyspark's ``start-connect-server.sh`` in
    the foreground, its Python workers on this Python): the process and its sc:// URL."""
    import socket

    import pyspark

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    script = Path(pyspark.__file__).parent / "sbin" / "start-connect-server.sh"
    conf = {
        "spark.driver.memory": "4g",
        "spark.connect.grpc.binding.address": "127.0.0.1",
        "spark.connect.grpc.binding.port": str(port),
    }
    argv = [str(script), "--wait", "--master", "local[2]"]
    argv += [a for key, value in conf.items() for a in ("--conf", f"{key}={value}")]
    env = {**os.environ, "PYSPARK_PYTHON": PYTHON, "SPARK_LOG_DIR": str(work)}
    with open(work / "connect-server.log", "w") as log:
        server = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    for _ in range(240):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server, f"sc://127.0.0.1:{port}"
        except OSError:
            if server.poll() is not None:
                break
            time.sleep(0.5)
    os.killpg(server.pid, signal.SIGKILL)
    raise SystemExit(f"the Spark Connect server did not start; see {work}/connect-server.log")


def machine() -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    return (
        f"{os.cpu_count()} cores, {memory:.0f} GiB, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}"
    )


def rows_of(directory: Path) -> str:
    import pyarrow.parquet as pq

    counts = {
        name: pq.ParquetFile(directory / f"{name}.parquet").metadata.num_rows
        for name in ("posts", "invitations")
    }
    return f"{counts['posts']:,} posts, {counts['invitations']:,} pairs"


def write_briefs(data: Path, path: Path, briefs: int, top_k: int) -> None:
    import pandas as pd

    creators = pd.read_parquet(data / "creators.parquet")
    campaigns = pd.read_parquet(data / "campaigns.parquet")
    market = creators["market"].value_counts().index[0]
    as_of = pd.read_parquet(data / "posts.parquet", columns=["posted_at"])["posted_at"].max()
    categories = sorted(campaigns["category"].unique())
    pd.DataFrame(
        {
            "brief_id": [f"bench{i:03d}" for i in range(briefs)],
            "market": market,
            "category": [categories[i % len(categories)] for i in range(briefs)],
            "as_of": as_of.floor("D"),
            "top_k": top_k,
        }
    ).to_parquet(path, index=False)


def features_and_predict_seconds(data: Path, briefs: Path, model_uri: str, tracking: str) -> str:
    """Seconds to read the data, build every candidate's features and call plain
    predict, in one process: what serving costs without ranking, indices, contributions
    and reasons."""
    code = f"""
import time, mlflow
started = time.perf_counter()
from marketplace.validate import load_valid_tables
from features.build import build_features, index_history
from training.tracking import load_scorer
from serving.briefs import read_briefs
from features.candidates import feature_requests, find_candidates
from serving.partner_list import with_model_defaults
mlflow.set_tracking_uri({tracking!r})
scorer = load_scorer({model_uri!r})
tables = load_valid_tables({str(data)!r})
briefs = with_model_defaults(read_briefs({str(briefs)!r}), scorer)
history = index_history(tables)
pairs = find_candidates(tables, briefs, history)
features = build_features(tables, feature_requests(briefs, pairs), history)
scorer.raw(features)
print(f"{{time.perf_counter() - started:.1f}} {{len(pairs)}}")
"""
    out = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creators", type=int, default=100_000, help="scale (default %(default)s)")
    parser.add_argument(
        "--days", type=int, default=540, help="days simulated (default %(default)s)"
    )
    parser.add_argument(
        "--serving-creators",
        type=int,
        default=40_000,
        help="creators of the one-market serving benchmark (default %(default)s)",
    )
    parser.add_argument(
        "--stages",
        default="simulate,features,training,serving",
        help="comma-separated stages to run (default: %(default)s; also "
        "validate, features-spark, features-connect, training-pairs, serving-spark, store, "
        "store-spark, serving-store)",
    )
    parser.add_argument("--workdir", type=Path, help="keep data here (default: a temporary folder)")
    parser.add_argument("--markdown", type=Path, help="append the table to this Markdown file")
    args = parser.parse_args(argv)
    stages = args.stages.split(",")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="creator-scores-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    data = work / f"data-{args.creators}"
    tracking = f"sqlite:///{work}/mlflow.db"
    rows = []

    def record(stage, scale, figures, detail=""):
        seconds, peak, status = figures
        if status != 0:
            raise SystemExit(f"{stage} failed (exit {status}); see the log in {work}")
        rows.append((stage, scale, f"{seconds:.1f}", f"{peak:.2f}", detail, TARGETS[stage]))
        print(
            f"{stage}: {seconds:.1f} s, {peak:.2f} GiB peak {detail}", file=sys.stderr, flush=True
        )

    scale = f"{args.creators:,} creators, {args.days} days"
    if "simulate" in stages:
        record(
            "simulate",
            scale,
            run_stage(
                [
                    "-m",
                    "marketplace",
                    "simulate",
                    "--out",
                    str(data),
                    "--creators",
                    str(args.creators),
                    "--days",
                    str(args.days),
                    "--seed",
                    "1",
                    "--overwrite",
                ],
                work / "simulate.log",
            ),
        )
        rows[-1] = (*rows[-1][:4], rows_of(data), rows[-1][5])
    if "validate" in stages:
        record(
            "validate",
            scale,
            run_stage(["-m", "marketplace", "validate", str(data)], work / "validate.log"),
        )
    if "features" in stages:
        record(
            "features",
            scale,
            run_stage(
                ["-m", "features", str(data), "--out", str(work / "pairs.parquet")],
                work / "features.log",
            ),
        )
    if "features-spark" in stages:
        record(
            "features-spark",
            scale,
            run_stage_tree(
                ["-m", "features", str(data), "--out", str(work / "pairs-spark"), *SPARK],
                work / "features-spark.log",
            ),
        )
    if "features-connect" in stages:
        server, url = start_connect_server(work)
        try:
            figures = run_stage_tree(
                ["-m", "features", str(data), "--out", str(work / "pairs-connect")]
                + ["--engine", "spark", "--spark-remote", url],
                work / "features-connect.log",
                also=server.pid,
            )
        finally:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        record("features-connect", scale, figures)
    training = ["-m", "training", str(data), "--truth", str(data / "truth")]
    training += ["--tracking-uri", tracking, "--experiment", "benchmark", "--register", "benchmark"]
    if "training" in stages:
        record(
            "training",
            scale,
            run_stage(
                [*training, "--metrics-out", str(work / "metrics.json")], work / "training.log"
            ),
        )
    if "training-pairs" in stages:
        pairs = ["--pairs", str(work / "pairs-spark")]
        record(
            "training-pairs",
            scale,
            run_stage(
                [*training, *pairs, "--metrics-out", str(work / "metrics-pairs.json")],
                work / "training-pairs.log",
            ),
        )
    store = ["-m", "store", "build", str(data), "--every", "30d", "--back", "180d"]
    if "store" in stages:
        record(
            "store",
            scale,
            run_stage([*store, "--out", str(work / "store")], work / "store.log"),
        )
    if "store-spark" in stages:
        record(
            "store-spark",
            scale,
            run_stage_tree(
                [*store, "--out", str(work / "store-spark"), *SPARK], work / "store-spark.log"
            ),
        )
    if {"serving", "serving-spark", "serving-store"} & set(stages):
        serve_data = work / f"serving-{args.serving_creators}"
        run_stage(
            [
                "-m",
                "marketplace",
                "simulate",
                "--out",
                str(serve_data),
                "--creators",
                str(args.serving_creators),
                "--days",
                str(args.days),
                "--markets",
                "ID",
                "--seed",
                "2",
                "--overwrite",
            ],
            work / "serving-simulate.log",
        )
        briefs = work / "briefs.parquet"
        write_briefs(serve_data, briefs, briefs=50, top_k=100)
        model = "models:/benchmark@champion"
        serving = ["-m", "serving", "--model", model, "--data", str(serve_data)]
        serving += ["--briefs", str(briefs), "--tracking-uri", tracking]
    if "serving-store" in stages:
        import pandas as pd

        day = pd.read_parquet(briefs)["as_of"].iloc[0].strftime("%Y-%m-%d")
        serve_store = work / f"serving-store-{args.serving_creators}"
        run_stage(
            ["-m", "store", "build", str(serve_data), "--out", str(serve_store), "--as-of", day],
            work / "serving-store-build.log",
        )
        stored = [*serving, "--out", str(work / "partners-store.parquet")]
        stored[stored.index("--data") : stored.index("--data") + 2] = ["--store", str(serve_store)]
        record(
            "serving-store",
            f"{args.serving_creators:,} creators in one market",
            run_stage(stored, work / "serving-store.log"),
        )
    if "serving-spark" in stages:
        record(
            "serving-spark",
            f"{args.serving_creators:,} creators in one market",
            run_stage_tree(
                [*serving, "--out", str(work / "partners-spark.parquet"), *SPARK],
                work / "serving-spark.log",
            ),
        )
    if "serving" in stages:
        figures = run_stage(
            [*serving, "--out", str(work / "partners.parquet")], work / "serving.log"
        )
        alone, candidates = features_and_predict_seconds(
            serve_data, briefs, model, tracking
        ).split()
        record(
            "serving",
            f"{args.serving_creators:,} creators in one market",
            figures,
            f"{int(candidates):,} candidate rows; features + predict alone {alone} s "
            f"({figures[0] / float(alone):.2f}x)",
        )

    header = ["stage", "scale", "seconds", "peak GiB", "rows / detail", "target"]
    table = "\n".join(
        ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        + ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    )
    text = (
        f"\n### {time.strftime('%Y-%m-%d')}: {scale}\n\nMachine: {machine()}. "
        f"Command: `python benchmarks/run.py --creators {args.creators} --days {args.days}"
        f" --stages {args.stages}`\n\n{table}\n"
    )
    emit(text, args.markdown)
    return 0


def emit(text: str, markdown: Path | None) -> None:
    """Print ``text`` and append it to the Markdown file ``markdown`` when given."""
    print(text)
    if markdown:
        with open(markdown, "a") as handle:
            handle.write(text)


if __name__ == "__main__":
    sys.exit(main())
