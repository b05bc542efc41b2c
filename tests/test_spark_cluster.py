"""The Spark engine on real clusters that this module starts from pyspark's own
distribution, all on 127.0.0.1 and stopped at its end: a standalone master with one
worker (the README's cluster lines, as written, on ports of their own), a master without
workers, and a Spark Connect server. The commands run as a user runs them, in their own
processes, and their tables are compared with the in-memory ones."""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyspark
import pytest

from commands.serving import main as serving_main
from features.pairs import training_pairs
from scaleout.session import java_available

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not java_available(), reason="Java 17 not found: Spark cluster tests skipped"
    ),
]
ROOT = Path(__file__).resolve().parents[1]
SPARK_HOME = Path(pyspark.__file__).parent
STALL = 10  # seconds: --stall-timeout where a stall is the point of the test


def readme_lines(marker: str) -> list[str]:
    """The commands of the README's code block that contains ``marker``, one per line
    (continuations joined)."""
    blocks = re.findall(r"^```\n(.*?)^```$", (ROOT / "README.md").read_text(), re.M | re.S)
    block = next(b for b in blocks if marker in b)
    return [line.strip() for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, log: Path, timeout_s: float = 120):
    """Return once 127.0.0.1:port accepts connections; fail if ``process`` exits first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{log.name} exited: {log.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"nothing listens on port {port} after {timeout_s}s ({log})")


def wait_for_text(path: Path, text: str, process: subprocess.Popen, timeout_s: float = 120):
    """Return once ``path`` (a process's log) contains ``text``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        if process.poll() is not None:
            pytest.fail(f"{path.name} ended without {text!r}: {path.read_text()[-2000:]}")
        time.sleep(0.5)
    pytest.fail(f"no {text!r} in {path} after {timeout_s}s")


def stop(process: subprocess.Popen) -> None:
    """Stop a daemon started by ``daemon`` with its children (executors, Python workers)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment as a new user's shell has it: no Spark variables this
    process may have set; the project from this checkout (``PYTHONPATH``), as installed."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON", "SPARK_REMOTE", "SPARK_LOCAL_IP")
        and not k.startswith(("SPARK_CONNECT", "PYSPARK_GATEWAY"))
    }
    return {**env, "PYTHONPATH": str(ROOT), "SPARK_HOME": str(SPARK_HOME), **extra}


def daemon(argv: list[str], log: Path, **env: str) -> subprocess.Popen:
    """Start ``argv`` in its own process group, its output in ``log``."""
    with log.open("w") as out:
        return subprocess.Popen(
            argv,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=clean_env(SPARK_LOG_DIR=str(log.parent), **env),
            start_new_session=True,
        )


def as_typed(line: str, swaps: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """A README line with ``swaps`` made, as (its VAR=value prefixes, argv)."""
    for old, new in swaps.items():
        line = line.replace(old, new)
    words = shlex.split(line.removesuffix("&"))
    env = {}
    while "=" in words[0] and not words[0].startswith(("-", "/", ".")):
        key, _, value = words.pop(0).partition("=")
        env[key] = value
    return env, words


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """The README's master and worker (its lines, on a free port): the master's URL."""
    root = tmp_path_factory.mktemp("cluster")
    port = free_port()
    swaps = {"$SPARK_HOME": str(SPARK_HOME), "7077": str(port)}
    master_line, worker_line = (
        line for line in readme_lines("deploy.master.Master") if "spark-class" in line
    )
    master = daemon(as_typed(master_line, swaps)[1], root / "master.log")
    processes = [master]
    try:
        wait_for_port(port, master, root / "master.log")
        worker = daemon(
            [*as_typed(worker_line, swaps)[1], "--work-dir", str(root / "work")],
            root / "worker.log",
        )
        processes.append(worker)
        wait_for_text(root / "worker.log", "Successfully registered with master", worker)
        yield f"spark://127.0.0.1:{port}"
    finally:
        for process in reversed(processes):
            stop(process)


@pytest.fixture(scope="module")
def lone_master(tmp_path_factory):
    """A standalone master without workers: (its URL, its folder)."""
    root = tmp_path_factory.mktemp("lone-master")
    port = free_port()
    argv = [str(SPARK_HOME / "bin" / "spark-class"), "org.apache.spark.deploy.master.Master"]
    master = daemon([*argv, "--host", "127.0.0.1", "--port", str(port)], root / "master.log")
    try:
        wait_for_port(port, master, root / "master.log")
        yield f"spark://127.0.0.1:{port}", root
    finally:
        stop(master)


@pytest.fixture(scope="module")
def connect_server(tmp_path_factory):
    """The README's Spark Connect server (its ``start-connect-server.sh`` line, in the
    foreground: ``--wait``) on a free port: its sc:// URL."""
    root = tmp_path_factory.mktemp("connect")
    port = free_port()
    start = next(line for line in readme_lines("start-connect-server.sh") if "start-" in line)
    env, argv = as_typed(
        start, {"$PWD/.venv/bin/python": sys.executable, "$SPARK_HOME": str(SPARK_HOME)}
    )
    argv = [argv[0], "--wait", *argv[1:], "--conf", f"spark.connect.grpc.binding.port={port}"]
    server = daemon(argv, root / "server.log", **env)
    try:
        wait_for_port(port, server, root / "server.log")
        yield f"sc://127.0.0.1:{port}"
    finally:
        stop(server)


def run_line(line: str, swaps: dict[str, str], *extra: str, timeout_s: float = 600, **env: str):
    """Run a README command line with ``swaps`` made and ``extra`` arguments: the
    finished process (its output as text)."""
    prefix, argv = as_typed(line, {".venv/bin/python": sys.executable, **swaps})
    return subprocess.run(
        [*argv, *extra],
        cwd=ROOT,
        env=clean_env(**prefix, **env),
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


def data_swaps(world, out: Path) -> dict[str, str]:
    """The README's paths and model as this test's (outputs in ``out``)."""
    return {
        "big/data": str(world.data),
        "big/pairs": str(out / "pairs"),
        "big/partners.parquet": str(out / "partners.parquet"),
        "examples/briefs.csv": str(world.briefs_csv),
        "models:/creator-scores@champion": "models:/cs@champion",
    }


def warnings_of(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("warning")]


@pytest.fixture(scope="module")
def memory_serving(serving_world, tmp_path_factory):
    """The in-memory partner list, drift report and warnings of the world's briefs."""
    out = tmp_path_factory.mktemp("memory-serving")
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        status = serving_main(
            [
                "--model",
                "models:/cs@champion",
                "--data",
                str(serving_world.data),
                "--briefs",
                str(serving_world.briefs_csv),
                "--tracking-uri",
                serving_world.tracking_uri,
                "--out",
                str(out / "partners.parquet"),
                "--drift-report",
                str(out / "drift.csv"),
            ]
        )
    assert status == 0
    return (
        pd.read_parquet(out / "partners.parquet"),
        pd.read_csv(out / "drift.csv"),
        warnings_of(stderr.getvalue()),
    )


def check_serving(run, out: Path, memory_serving) -> None:
    """``run`` (a serving command with ``--drift-report out/drift.csv``) wrote what the
    in-memory path writes, and warned as it does."""
    assert run.returncode == 0, run.stderr[-3000:]
    partners, drift, warnings = memory_serving
    assert len(partners) > 10 and len(warnings) >= 1  # a brief without candidates
    pd.testing.assert_frame_equal(pd.read_parquet(out / "partners.parquet"), partners)
    pd.testing.assert_frame_equal(pd.read_csv(out / "drift.csv"), drift)
    assert warnings_of(run.stderr) == warnings


def test_readme_cluster_commands_give_the_in_memory_tables(
    cluster, serving_world, memory_serving, tmp_path
):
    lines = readme_lines("deploy.master.Master")
    swaps = {**data_swaps(serving_world, tmp_path), "spark://127.0.0.1:7077": cluster}
    features = run_line(next(line for line in lines if "-m features" in line), swaps)
    assert features.returncode == 0, features.stderr[-3000:]
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "pairs"), training_pairs(serving_world.tables)
    )
    serving = run_line(
        next(line for line in lines if "-m serving" in line),
        swaps,
        "--tracking-uri",
        serving_world.tracking_uri,
        "--drift-report",
        str(tmp_path / "drift.csv"),
    )
    check_serving(serving, tmp_path, memory_serving)


def test_executors_without_the_project_fail_in_one_line(cluster, serving_world, tmp_path):
    bare = tmp_path / "bare"  # a Python without the project (nor pandas)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    python = str(bare / "bin" / "python")
    out = tmp_path / "out"
    out.mkdir()
    line = next(line for line in readme_lines("deploy.master.Master") if "-m features" in line)
    run = run_line(
        line,
        {**data_swaps(serving_world, out), "spark://127.0.0.1:7077": cluster},
        PYSPARK_PYTHON=python,
    )
    assert run.returncode == 1
    assert re.fullmatch(
        f"error: the executors cannot run this project with {re.escape(python)} "
        r"\(ModuleNotFoundError: No module named '\w+'\): install the project on the "
        r"workers, or name their Python \(PYSPARK_PYTHON, or spark-submit's "
        r"--conf spark\.pyspark\.python=PATH\)",
        run.stderr.strip().splitlines()[-1],
    ), run.stderr[-3000:]
    assert list(out.iterdir()) == []


def features_argv(world, master: str, out: Path, stall_s: float) -> list[str]:
    return [
        sys.executable,
        "-m",
        "features",
        str(world.data),
        "--out",
        str(out / "pairs"),
        "--engine",
        "spark",
        "--spark-master",
        master,
        "--stall-timeout",
        str(stall_s),
    ]


def test_no_worker_is_one_line_within_the_bound(lone_master, serving_world, tmp_path):
    master, _ = lone_master
    run = subprocess.run(
        features_argv(serving_world, master, tmp_path, STALL),
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=240,  # a hang fails the test
    )
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1] == (
        f"error: Spark stalled: no executors: none joined on {master} (is a worker "
        "registered with the master, with the cores and memory the job asks?); no task ran "
        f"for {STALL}s, job cancelled (--stall-timeout)"
    )
    assert list(tmp_path.iterdir()) == []


def test_worker_lost_mid_stage_is_one_line_within_the_bound(lone_master, serving_world, tmp_path):
    master, root = lone_master
    argv = [str(SPARK_HOME / "bin" / "spark-class"), "org.apache.spark.deploy.worker.Worker"]
    worker = daemon(
        [*argv, master, "--cores", "2", "--memory", "2g", "--work-dir", str(root / "work")],
        root / "worker.log",
    )
    try:
        wait_for_text(root / "worker.log", "Successfully registered with master", worker)
        out = tmp_path / "out"
        out.mkdir()
        stall_s = 20  # above an executor's start-up on a busy machine
        with (tmp_path / "stderr").open("w") as stderr:
            job = subprocess.Popen(
                features_argv(serving_world, master, out, stall_s),
                cwd=ROOT,
                env=clean_env(),
                stderr=stderr,
                stdout=subprocess.DEVNULL,
            )
            # the executor imported the project; the feature stages begin
            wait_for_text(tmp_path / "stderr", "building features for", job)
            stop(worker)
            killed = time.monotonic()
            status = job.wait(timeout=stall_s + 90)
        waited = time.monotonic() - killed
    finally:
        stop(worker)
    lines = (tmp_path / "stderr").read_text().strip().splitlines()
    assert status == 1
    assert lines[-1] == (
        f"error: Spark stalled: executors lost: all 1 on {master} gone; no task ran for "
        f"{stall_s}s, job cancelled (--stall-timeout)"
    )
    assert stall_s <= waited < stall_s + 60
    assert list(out.iterdir()) == []


def test_spark_connect_gives_the_in_memory_tables(
    connect_server, serving_world, memory_serving, tmp_path
):
    lines = readme_lines("start-connect-server.sh")
    swaps = {**data_swaps(serving_world, tmp_path), "sc://127.0.0.1:15002": connect_server}
    features = run_line(next(line for line in lines if "-m features" in line), swaps)
    assert features.returncode == 0, features.stderr[-3000:]
    assert "on Spark Connect (local[2] on the server)" in features.stderr
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "pairs"), training_pairs(serving_world.tables)
    )
    serving = run_line(  # SPARK_REMOTE=sc://... as the README's line sets it
        next(line for line in lines if "-m serving" in line),
        swaps,
        "--tracking-uri",
        serving_world.tracking_uri,
        "--drift-report",
        str(tmp_path / "drift.csv"),
    )
    check_serving(serving, tmp_path, memory_serving)


def test_spark_connect_builds_the_in_memory_store(connect_server, serving_world, tmp_path):
    day = serving_world.as_of.strftime("%Y-%m-%d")
    flags = ["--as-of", day]
    memory, remote = tmp_path / "memory", tmp_path / "remote"
    build = [sys.executable, "-m", "store", "build", str(serving_world.data)]
    made = subprocess.run([*build, "--out", str(memory), *flags], cwd=ROOT, env=clean_env())
    assert made.returncode == 0
    run = subprocess.run(
        [*build, "--out", str(remote), *flags, "--engine", "spark"],
        cwd=ROOT,
        env=clean_env(SPARK_REMOTE=connect_server),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "on Spark Connect" in run.stderr
    files = sorted(p.relative_to(memory) for p in memory.rglob("*.parquet"))
    assert files and files == sorted(p.relative_to(remote) for p in remote.rglob("*.parquet"))
    for name in files:
        pd.testing.assert_frame_equal(
            pd.read_parquet(remote / name), pd.read_parquet(memory / name), check_exact=True
        )
