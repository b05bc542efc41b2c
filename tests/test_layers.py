"""Imports run one way, down the layers: a package imports only packages below it (or
itself). The ``__main__`` entry points of the stages whose command chooses an engine are
thin: they import only their command from the command layer."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# lowest first: each may import only those before it (and itself)
LAYERS = (
    "marketplace",
    "features",
    "training",
    "serving",
    "store",
    "scaleout",
    "review",
    "explorer",
    "commands",
)


def imported(path: Path) -> set[str]:
    """The top-level project packages a module imports, anywhere in it (inside
    functions too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & set(LAYERS)


def test_every_package_imports_only_downward():
    upward = []
    for rank, package in enumerate(LAYERS):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.name == "__main__.py":
                continue
            above = {p for p in imported(path) if LAYERS.index(p) > rank}
            upward += [f"{path.relative_to(ROOT)} imports {p}" for p in sorted(above)]
    assert not upward, upward


def test_entry_points_import_only_their_command_or_their_own_stage():
    for path in sorted(ROOT.glob("*/__main__.py")):
        package = path.parent.name
        if package not in LAYERS:
            continue
        found = imported(path)
        if "commands" in found:
            assert found == {"commands"}, f"{path.relative_to(ROOT)}: a thin entry point"
        else:
            rank = LAYERS.index(package)
            assert all(LAYERS.index(p) <= rank for p in found), path.relative_to(ROOT)


def test_no_module_changes_sys_path():
    for package in LAYERS:
        for path in (ROOT / package).rglob("*.py"):
            assert "sys.path" not in path.read_text(), path.relative_to(ROOT)


def test_the_spark_submit_file_runs_each_stage_as_a_script():
    """Run as a file (as spark-submit runs it), with its folder first on sys.path: no
    module there shadows a package."""
    import subprocess
    import sys

    for stage in ("features", "serving", "store", "training"):
        run = subprocess.run(
            [sys.executable, str(ROOT / "spark_job.py"), stage, "--help"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, run.stderr[-2000:]
        assert f"python -m {stage}" in run.stdout
