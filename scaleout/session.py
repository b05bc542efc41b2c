"""Start the SparkSession of every Spark job, with one-line errors.

Default master: ``local[*]`` (or the one ``spark-submit --master`` gives). On a local
master the Python workers run on the driver's own interpreter, so ``PYSPARK_PYTHON``
need not be set (under spark-submit its ``spark.pyspark.python`` rules). The session time zone is UTC: timestamps cross between Spark and pandas
(Arrow) without a zone, and the contract's times are UTC.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import sys
from pathlib import Path

import marketplace
from marketplace.cli import UserError

JAVA_NEEDED = (
    "Java 17 is needed for --engine spark: no `java` on PATH (nor in "
    "$JAVA_HOME/bin); on Debian: apt-get install openjdk-17-jre-headless"
)
SESSION_CONF = {
    "spark.sql.session.timeZone": "UTC",
    # Parquet written by pandas may hold nanosecond timestamps, which Spark refuses;
    # read as longs and turned into microseconds by integer division (scaleout.tables).
    "spark.sql.legacy.parquet.nanosAsLong": "true",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.ui.showConsoleProgress": "true",
    # a bucket reaches Python in Arrow batches: fewer, larger ones cost less per row
    "spark.sql.execution.arrow.maxRecordsPerBatch": "100000",
}
# On a local master the driver's JVM does all the shuffling: Spark's default heap (1g)
# spills a bucket's sort to disk; a cluster's spark-submit sets its own.
LOCAL_CONF = {"spark.driver.memory": "4g"}
_STANDALONE = re.compile(r"^spark://(?P<hosts>.+)$")


class SparkError(Exception):
    """Spark cannot run the job (no Java, unreachable master, failed executor); the
    message is one line."""


def java_available() -> bool:
    """True when a java is on PATH or under JAVA_HOME (Spark needs one)."""
    home = os.environ.get("JAVA_HOME")
    return shutil.which("java") is not None or bool(home and (Path(home) / "bin" / "java").exists())


def is_local(master: str | None) -> bool:
    """True for a local master (``local[...]``, or none given)."""
    return master is None or master.startswith("local")


def check_master(master: str, timeout_s: float = 5.0) -> None:
    """SparkError unless a standalone master (``spark://host:port[,host:port]``) answers
    on one of its addresses; other masters (yarn, k8s://, local) are left to Spark."""
    match = _STANDALONE.match(master)
    if not match:
        return
    for address in match["hosts"].split(","):
        host, _, port = address.rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=timeout_s):
                return
        except (OSError, ValueError):
            continue
    raise SparkError(f"Spark master {master} is unreachable (no answer within {timeout_s:.0f}s)")


def first_line(err: BaseException) -> str:
    """The line of a Spark or Python worker error that says what went wrong."""
    text = str(getattr(err, "desc", "") or err).strip()
    raised = re.findall(r"^(?:\w+\.)*(\w+(?:Error|Exception)): (.+)$", text, flags=re.M)
    python = [
        f"{kind}: {message}"
        for kind, message in raised
        if not kind.startswith(("Py4J", "Spark", "Python", "Task", "Org"))
    ]
    if python:
        return python[-1]
    return text.splitlines()[0] if text else type(err).__name__


def spark_session(
    master: str | None = None, app: str = "creator-scores", conf: dict[str, str] | None = None
):
    """A SparkSession on ``master`` (None: local[*] or spark-submit's) with
    ``SESSION_CONF`` and ``conf``; SparkError (one line) when it cannot start."""
    if not java_available():
        raise SparkError(JAVA_NEEDED)
    if master:
        check_master(master)
    under_submit = "PYSPARK_GATEWAY_PORT" in os.environ  # spark-submit started the JVM
    if is_local(master) and not under_submit:
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    elif marketplace.USER_SPARK_LOCAL_IP is None:
        os.environ.pop("SPARK_LOCAL_IP", None)  # set by pandera: executors must reach us
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app)
    if master:
        builder = builder.master(master)
    local = LOCAL_CONF if is_local(master) and not under_submit else {}
    for key, value in {**SESSION_CONF, **local, **(conf or {})}.items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as err:  # noqa: BLE001 - JVM start-up errors: one line, no stack trace
        raise SparkError(
            f"cannot start Spark on {master or 'local[*]'}: {first_line(err)}"
        ) from None
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def run_job(action):
    """``action()``, with a failure inside Spark (an executor, a Python worker, the
    JVM) raised as one-line SparkError."""
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException

    try:
        return action()
    except (PySparkException, Py4JError) as err:
        raise SparkError(f"Spark job failed: {first_line(err)}") from None


def add_engine_arguments(parser) -> None:
    """``--engine``, ``--spark-master`` and ``--buckets``, the same for every stage."""
    parser.add_argument(
        "--engine",
        choices=("memory", "spark"),
        default="memory",
        help="memory (default): one process; spark: the same computation "
        "per creator bucket on Apache Spark (needs Java 17)",
    )
    parser.add_argument(
        "--spark-master",
        metavar="URL",
        help="Spark master (default: local[*], or spark-submit's --master)",
    )
    parser.add_argument(
        "--buckets",
        type=int,
        metavar="N",
        help="creator buckets for --engine spark (default: the cores, or "
        "one per million posts if more)",
    )


POSTS_PER_BUCKET = 1_000_000  # a bucket's rows are one pandas frame in one worker


def default_buckets(rows: dict[str, int], parallelism: int) -> int:
    """Enough buckets to keep every core busy and each bucket near POSTS_PER_BUCKET
    posts; ``rows`` are the tables' row counts."""
    return max(parallelism, -(-rows.get("posts", 0) // POSTS_PER_BUCKET))


def start_job(master: str | None, buckets: int | None, rows: dict[str, int]):
    """The session and the number of creator buckets for a job on data with ``rows``
    (table -> row count); UserError for a bucket count below 1."""
    if buckets is not None and buckets < 1:
        raise UserError(f"--buckets must be at least 1, not {buckets}")
    spark = spark_session(master)
    buckets = buckets or default_buckets(rows, spark.sparkContext.defaultParallelism)
    spark.conf.set("spark.sql.shuffle.partitions", str(buckets))
    return spark, buckets
