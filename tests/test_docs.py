"""The project stands on its own: no merge-conflict markers anywhere in the tree, no
reference to files outside it, every relative link of its Markdown resolves to a file it
holds, and every command's --help reads right."""

from __future__ import annotations

import importlib
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIPPED_DIRS = {".git", ".venv", "demo", "mlruns", "mlartifacts", "__pycache__", "big"}
# Built from pieces so that this file does not match itself.
MARKERS = re.compile(r"^(" + "<" * 7 + r"( |$)|" + "=" * 7 + r"$|" + ">" * 7 + r"( |$))", re.M)
OUTSIDE = re.compile(r"shared/(design|data)/|design repository|/work/shared")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def project_files() -> list[Path]:
    """The files git tracks (every file but the skipped folders outside a checkout)."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
        ).stdout.decode()
        return [ROOT / name for name in listed.split("\0") if name]
    except (OSError, subprocess.CalledProcessError):
        return [
            path
            for path in ROOT.rglob("*")
            if path.is_file() and not SKIPPED_DIRS & set(path.relative_to(ROOT).parts)
        ]


def text_of(path: Path) -> str | None:
    """The file's text, or None for a binary file or one that is gone."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data[:8192]:
        return None
    return data.decode("utf-8", errors="replace")


def test_no_merge_conflict_markers_anywhere():
    found = [
        f"{path.relative_to(ROOT)}:{text[: m.start()].count(chr(10)) + 1}"
        for path in project_files()
        if (text := text_of(path)) is not None
        for m in MARKERS.finditer(text)
    ]
    assert not found, f"merge-conflict markers at {found}"


def test_the_marker_check_finds_a_conflict(tmp_path):
    conflict = "a\n" + "<" * 7 + " HEAD\nb\n" + "=" * 7 + "\nc\n" + ">" * 7 + " main\n"
    assert len(MARKERS.findall(conflict)) == 3
    assert not MARKERS.findall("title\n" + "=" * 12 + "\n")  # a Markdown heading's rule


def test_nothing_refers_to_files_outside_the_project():
    found = [
        str(path.relative_to(ROOT))
        for path in project_files()
        if path.resolve() != Path(__file__).resolve()
        # CI may point the optional real-sample test at a sample beside the clone
        and path.relative_to(ROOT).as_posix() != ".ci/run"
        and (text := text_of(path)) is not None
        and OUTSIDE.search(text)
    ]
    assert not found, f"references to files outside the project in {found}"


def test_every_relative_markdown_link_resolves_inside_the_project():
    broken = []
    for path in project_files():
        if path.suffix != ".md" or (text := text_of(path)) is None:
            continue
        for target in LINK.findall(text):
            if "://" in target or target.startswith("mailto:"):
                continue
            resolved = (path.parent / target).resolve()
            if not resolved.is_relative_to(ROOT) or not resolved.exists():
                broken.append(f"{path.relative_to(ROOT)} -> {target}")
    assert not broken, f"links to nothing in the project: {broken}"


def test_the_data_contract_names_every_table_and_column():
    from marketplace.contract import COLUMNS

    text = (ROOT / "docs" / "data-contract.md").read_text()
    for table, columns in COLUMNS.items():
        assert f"### {table}" in text
        for column in columns:
            assert column in text, f"{table}.{column} is not in docs/data-contract.md"


@pytest.mark.parametrize(
    "module, says",
    [
        ("marketplace", "simulate"),
        ("features", "python -m features audit DIR"),
        ("training", "--register"),
        ("serving", "--drift-report"),
        ("explorer", "--token"),
    ],
)
def test_every_command_has_a_help_that_reads_right(module, says, capsys):
    main = importlib.import_module(f"{module}.__main__").main
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    assert says in " ".join(text.split()) and "%%" not in text
