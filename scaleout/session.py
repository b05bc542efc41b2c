"""Start the SparkSession of every Spark job, and run its actions, with one-line errors.

Two kinds of session, one code path for the stages: a classic session (``--spark-master``:
``local[*]`` by default, a cluster, or the master ``spark-submit --master`` gives) runs
Spark's JVM in this process; a Spark Connect session (``--spark-remote sc://HOST:PORT`` or
``$SPARK_REMOTE``) sends the same DataFrame plans to a Spark Connect server. The stages
use only DataFrame APIs that both support (never ``sparkContext``); only starting a
session and watching its progress differ.

Python workers run the driver's own interpreter unless ``PYSPARK_PYTHON`` (or
spark-submit's ``spark.pyspark.python``) names another: right on a shared image, as most
clusters are. On any master but a local one, one tiny task first imports the project on
an executor, so a cluster without it fails in one line before any stage runs.

The session time zone is UTC: timestamps cross between Spark and pandas (Arrow) without
a zone, and the contract's times are UTC.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import marketplace
from marketplace.cli import UserError

JAVA_NEEDED = (
    "Java 17 is needed for --engine spark: no `java` on PATH (nor in "
    "$JAVA_HOME/bin); on Debian: apt-get install openjdk-17-jre-headless"
)
# Settable on a running session, so the same on a Spark Connect server.
SQL_CONF = {
    "spark.sql.session.timeZone": "UTC",
    # Parquet written by pandas may hold nanosecond timestamps, which Spark refuses;
    # read as longs and turned into microseconds by integer division (scaleout.tables).
    "spark.sql.legacy.parquet.nanosAsLong": "true",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    # a bucket reaches Python in Arrow batches: fewer, larger ones cost less per row
    "spark.sql.execution.arrow.maxRecordsPerBatch": "100000",
}
SESSION_CONF = {  # classic sessions (Spark Connect always hands over in Arrow)
    **SQL_CONF,
    "spark.ui.showConsoleProgress": "true",
    # a failed Arrow hand-over is an error, not a 25-line warning and a slower retry
    "spark.sql.execution.arrow.pyspark.fallback.enabled": "false",
}
# On a local master the driver's JVM does all the shuffling: Spark's default heap (1g)
# spills a bucket's sort to disk; a cluster's spark-submit sets its own.
LOCAL_CONF = {"spark.driver.memory": "4g"}
STALL_TIMEOUT_S = 180.0
_STANDALONE = re.compile(r"^spark://(?P<hosts>.+)$")
_LOCAL = re.compile(r"^local(?:\[(?P<threads>\d+|\*)(?:,\d+)?\])?$")
_WATCHDOGS: dict[int, Watchdog] = {}  # the watchdog of each session, by id(session)
_LAST: list = []  # the session spark_session started last


class SparkError(Exception):
    """Spark cannot run the job (no Java, unreachable master, failed executor, no
    progress); the message is one line."""


def java_available() -> bool:
    """True when a java is on PATH or under JAVA_HOME (Spark needs one)."""
    home = os.environ.get("JAVA_HOME")
    return shutil.which("java") is not None or bool(home and (Path(home) / "bin" / "java").exists())


def is_local(master: str | None) -> bool:
    """True for a local master (``local[...]``, or none given)."""
    return master is None or master.startswith("local")


def is_connect(spark) -> bool:
    """True for a Spark Connect session."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


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


def check_server(url: str, timeout_s: float = 5.0) -> None:
    """SparkError unless the Spark Connect server of ``url`` (``sc://host[:port]/...``,
    port 15002 by default) accepts a connection: its client would retry for minutes."""
    from urllib.parse import urlparse

    address = urlparse(url.split(";")[0])
    try:
        host, port = address.hostname, address.port or 15002
        with socket.create_connection((host, port), timeout=timeout_s):
            return
    except (OSError, ValueError):
        pass
    raise SparkError(
        f"Spark Connect server {url} is unreachable (no answer within {timeout_s:.0f}s)"
    )


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


def remote_url(master: str | None, remote: str | None) -> str | None:
    """The Spark Connect URL of a job: ``remote``, a ``sc://`` master, or
    ``$SPARK_REMOTE`` when no master is given; None for a classic session."""
    if remote:
        return remote
    if master:
        return master if master.startswith("sc://") else None
    return os.environ.get("SPARK_REMOTE") or None


def spark_session(
    master: str | None = None,
    app: str = "creator-scores",
    conf: dict[str, str] | None = None,
    *,
    remote: str | None = None,
    stall_timeout: float = STALL_TIMEOUT_S,
):
    """A SparkSession: over Spark Connect when ``remote_url`` gives a URL, else classic
    on ``master`` (None: local[*] or spark-submit's), with ``SQL_CONF`` and ``conf``;
    off a local master, checked to import the project on an executor (within
    ``stall_timeout`` seconds, as every ``run_job``). SparkError (one line) when it
    cannot start or the check fails."""
    url = remote_url(master, remote)
    if url:
        spark = connect_session(url, conf)
    else:
        spark = classic_session(master, app, conf)
    watch(spark, stall_timeout)
    _LAST[:] = [spark]
    if url or not is_local(spark.conf.get("spark.master", None)):
        check_executors(spark)
    return spark


def connect_session(url: str, conf: dict[str, str] | None = None):
    """A Spark Connect session on ``url`` (``sc://host:port[/;params]``) with
    ``SQL_CONF`` and ``conf``; SparkError (one line) when the server does not answer."""
    from pyspark.sql import SparkSession

    if not url.startswith("sc://"):
        raise SparkError(f"Spark Connect URL {url!r} does not start with sc://")
    check_server(url)
    try:
        spark = SparkSession.builder.remote(url).getOrCreate()
        for key, value in {**SQL_CONF, **(conf or {})}.items():
            spark.conf.set(key, value)
    except Exception as err:  # noqa: BLE001 - gRPC and server errors: one line
        raise SparkError(f"cannot reach Spark Connect server {url}: {first_line(err)}") from None
    return spark


def classic_session(master: str | None, app: str, conf: dict[str, str] | None):
    """A classic SparkSession on ``master`` (its JVM in this process)."""
    if not java_available():
        raise SparkError(JAVA_NEEDED)
    if master:
        check_master(master)
    os.environ.pop("SPARK_REMOTE", None)  # a classic master given: not Spark Connect
    # spark-submit sets PYSPARK_PYTHON from spark.pyspark.python; else workers use ours
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    under_submit = "PYSPARK_GATEWAY_PORT" in os.environ  # spark-submit started the JVM
    if is_local(master) and not under_submit:
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


def session_name(spark) -> str:
    """Where ``spark`` runs, for log lines: its master, or the Connect server's."""
    master = spark.conf.get("spark.master", None) or "an unknown master"
    if is_connect(spark):
        return f"Spark Connect ({master} on the server)"
    return master


def _imports_project(batches: Iterator) -> Iterator:
    """mapInPandas: the batches, once the stages' modules import (on an executor)."""
    import features.pairs  # noqa: F401
    import serving.partner_list  # noqa: F401

    yield from batches


def check_executors(spark) -> None:
    """SparkError unless an executor's Python imports this project (one tiny task)."""
    probe = spark.range(1).mapInPandas(_imports_project, schema="id long")
    try:
        run_job(probe.collect, spark)
    except SparkError as err:
        if str(err).startswith("Spark stalled"):
            raise
        python = (
            "the Connect server's Python" if is_connect(spark) else os.environ["PYSPARK_PYTHON"]
        )
        raise SparkError(
            f"the executors cannot run this project with {python} "
            f"({str(err).removeprefix('Spark job failed: ')}): install the project on the "
            "workers, or name their Python (PYSPARK_PYTHON, or spark-submit's "
            "--conf spark.pyspark.python=PATH)"
        ) from None


def run_job(action, spark=None):
    """``action()``, with a failure inside Spark (an executor, a Python worker, the
    JVM, the Connect server) raised as one-line SparkError, and jobs the session's
    ``Watchdog`` cancelled as ``Spark stalled: ...``. ``spark``: the session
    ``spark_session`` started last, by default."""
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException

    session = spark if spark is not None else _LAST[0] if _LAST else None
    watchdog = _WATCHDOGS.get(id(session))
    fired = watchdog.fired if watchdog else 0
    try:
        return action()
    except (PySparkException, Py4JError) as err:
        clear_progress(session)
        if watchdog and watchdog.fired > fired:
            raise SparkError(f"Spark stalled: {watchdog.reason}") from None
        raise SparkError(f"Spark job failed: {first_line(err)}") from None


def clear_progress(spark) -> None:
    """Stop and clear a classic session's console progress bar, as Spark itself does
    when a job succeeds. After a failed job Spark leaves it running, and its next redraw
    of the failed stage would land after the command's one-line error."""
    if spark is None or is_connect(spark):
        return
    try:
        bar = spark.sparkContext._jsc.sc().progressBar()
        if bar.isDefined():
            bar.get().finishAll()
    except Exception:  # noqa: BLE001 - a JVM already gone has no bar to clear
        pass


def watch(spark, timeout_s: float) -> None:
    """Give ``spark`` a running ``Watchdog`` of ``timeout_s`` seconds (0: none)."""
    watchdog = _WATCHDOGS.get(id(spark))
    if watchdog is None or not watchdog.alive():
        watchdog = _WATCHDOGS[id(spark)] = Watchdog(spark, timeout_s)
        if timeout_s > 0:
            watchdog.start()
    watchdog.timeout_s = timeout_s


class Watchdog:
    """Cancels every job of a session when, for ``timeout_s`` seconds, a stage waits
    with no task running and none finishing (no executor, or all lost); Spark's own task
    retries come first, since a retried task runs. ``reason`` then says what is missing
    and ``fired`` counts the cancellations. A classic session is polled through its
    status tracker, a Connect session reports progress with its responses; the watch
    ends with the session."""

    def __init__(self, spark, timeout_s: float, poll_s: float = 1.0):
        self.spark, self.timeout_s, self.poll_s = spark, timeout_s, poll_s
        self.reason: str | None = None
        self.fired = 0
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._waiting = False  # Connect: a stage runs no task (as last reported)
        self._done = -1  # Connect: tasks finished (as last reported)
        self._executors_seen = 0

    def start(self) -> None:
        if is_connect(self.spark):
            self.spark.registerProgressHandler(self._on_progress)
        self._thread.start()

    def alive(self) -> bool:
        return self._thread.is_alive() or self.timeout_s <= 0

    def _on_progress(self, stages, inflight_tasks, operation_id, done) -> None:
        self._waiting = not done and inflight_tasks == 0
        self._done = -1 if done else sum(s.num_completed_tasks for s in stages or ())

    def _state(self) -> tuple[bool, object]:
        """(a stage waits with no task running, the state whose change is progress)."""
        if is_connect(self.spark):
            return self._waiting, self._done
        tracker = self.spark.sparkContext.statusTracker()
        stages = [tracker.getStageInfo(s) for s in tracker.getActiveStageIds()]
        stages = [s for s in stages if s is not None]
        executors = len(tracker.getExecutorInfos()) - 1  # less the driver
        self._executors_seen = max(self._executors_seen, executors)
        waiting = bool(stages) and not any(s.numActiveTasks for s in stages)
        done = tuple((s.stageId, s.numCompletedTasks) for s in stages)
        return waiting, (done, executors)

    def _watch(self) -> None:
        last, since, errors = None, time.monotonic(), 0
        while True:
            time.sleep(self.poll_s)
            try:
                waiting, state = self._state()
                errors = 0
            except Exception:  # noqa: BLE001 - the session has stopped: nothing to watch
                errors += 1
                if errors >= 10:
                    return
                continue
            if not waiting or state != last or self.timeout_s <= 0:
                last, since = state, time.monotonic()
            elif time.monotonic() - since >= self.timeout_s:
                self.reason = self._missing()
                self.fired += 1
                self._cancel()
                last, since = None, time.monotonic()

    def _missing(self) -> str:
        """What the stalled stage lacks, and the flag that bounds the wait."""
        waited = f"no task ran for {self.timeout_s:.0f}s, job cancelled (--stall-timeout)"
        if is_connect(self.spark):
            return f"the Spark Connect server runs no task (no executors, or lost); {waited}"
        master = self.spark.conf.get("spark.master", None)
        executors = len(self.spark.sparkContext.statusTracker().getExecutorInfos()) - 1
        if is_local(master) or executors > 0:
            return f"{executors} executor(s) on {master} but {waited}"
        if self._executors_seen:
            return f"executors lost: all {self._executors_seen} on {master} gone; {waited}"
        return (
            f"no executors: none joined on {master} (is a worker registered with the master, "
            f"with the cores and memory the job asks?); {waited}"
        )

    def _cancel(self) -> None:
        try:
            if is_connect(self.spark):
                self.spark.interruptAll()
            else:
                self.spark.sparkContext.cancelAllJobs()
        except Exception:  # noqa: BLE001, S110 - the job is failing anyway
            pass


def add_engine_arguments(parser) -> None:
    """``--engine``, ``--spark-master``, ``--spark-remote``, ``--buckets`` and
    ``--stall-timeout``, the same for every stage."""
    parser.add_argument(
        "--engine",
        choices=("memory", "spark"),
        default="memory",
        help="memory (default): one process; spark: the same computation "
        "per creator bucket on Apache Spark (needs Java 17, or a Spark Connect server)",
    )
    parser.add_argument(
        "--spark-master",
        metavar="URL",
        help="Spark master (default: local[*], or spark-submit's --master); executors "
        "run this Python unless PYSPARK_PYTHON names theirs",
    )
    parser.add_argument(
        "--spark-remote",
        metavar="URL",
        help="run on a Spark Connect server, sc://HOST:PORT (default: $SPARK_REMOTE "
        "when no --spark-master is given)",
    )
    parser.add_argument(
        "--buckets",
        type=int,
        metavar="N",
        help="creator buckets for --engine spark (default: the cores, or "
        "one per million posts if more)",
    )
    parser.add_argument(
        "--stall-timeout",
        type=float,
        default=STALL_TIMEOUT_S,
        metavar="SECONDS",
        help="cancel a Spark job whose stages run no task for this long (no executors, "
        f"or all lost), with one error line; 0: wait forever (default {STALL_TIMEOUT_S:.0f})",
    )


POSTS_PER_BUCKET = 1_000_000  # a bucket's rows are one pandas frame in one worker


def default_buckets(rows: dict[str, int], parallelism: int) -> int:
    """Enough buckets to keep every core busy and each bucket near POSTS_PER_BUCKET
    posts; ``rows`` are the tables' row counts."""
    return max(parallelism, -(-rows.get("posts", 0) // POSTS_PER_BUCKET))


def parallelism(spark) -> int:
    """The cores a job can use, from the session's configuration (no SparkContext, so
    on Spark Connect too): ``spark.default.parallelism``, a local master's threads, a
    cluster's ``spark.cores.max`` or executors x cores; else this machine's cores."""

    def number(key: str) -> int:
        value = spark.conf.get(key, None) or ""
        return int(value) if value.isdigit() else 0

    local = _LOCAL.match(spark.conf.get("spark.master", None) or "local[*]")
    if local:
        threads = local["threads"] or "1"
        guesses = [int(threads) if threads.isdigit() else 0]
    else:
        guesses = [
            number("spark.cores.max"),
            number("spark.executor.instances") * number("spark.executor.cores"),
        ]
    configured = [number("spark.default.parallelism"), *guesses]
    return next((n for n in configured if n > 0), os.cpu_count() or 1)


def start_job(
    master: str | None,
    buckets: int | None,
    rows: dict[str, int],
    *,
    remote: str | None = None,
    stall_timeout: float = STALL_TIMEOUT_S,
):
    """The session (``spark_session``) and the number of creator buckets for a job on
    data with ``rows`` (table -> row count); UserError for a bucket count below 1 or a
    negative stall timeout."""
    if buckets is not None and buckets < 1:
        raise UserError(f"--buckets must be at least 1, not {buckets}")
    if stall_timeout < 0:
        raise UserError(f"--stall-timeout must be 0 or more seconds, not {stall_timeout:g}")
    spark = spark_session(master, remote=remote, stall_timeout=stall_timeout)
    buckets = buckets or default_buckets(rows, parallelism(spark))
    spark.conf.set("spark.sql.shuffle.partitions", str(buckets))
    return spark, buckets


def start_job_for(args, rows: dict[str, int]):
    """``start_job`` with the options ``add_engine_arguments`` gave a command (``args``)."""
    return start_job(
        args.spark_master,
        args.buckets,
        rows,
        remote=args.spark_remote,
        stall_timeout=args.stall_timeout,
    )
