"""Tables as directories of Parquet parts: read by every stage like one file, and
validated part by part with the same violations as the whole tables."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import marketplace.validate
from marketplace.contract import TABLES, UNIQUE, InvalidData
from marketplace.io import read_tables, to_arrow
from marketplace.validate import is_partitioned, validate_parts, validate_tables
from tests.test_validate import RULE_CASES

# pyarrow's from_pandas (writing the parts) reads Series.values of UTC timestamps.
pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")


def write_parts(tables: dict[str, pd.DataFrame], directory, parts: int = 2) -> None:
    """Each table as ``directory/<table>/part-i.parquet``, its rows split in order."""
    for name, frame in tables.items():
        folder = directory / name
        folder.mkdir(parents=True)
        for i, rows in enumerate(np.array_split(np.arange(len(frame)), parts)):
            part = frame.iloc[rows].reset_index(drop=True)
            pq.write_table(
                pa.Table.from_pandas(part, preserve_index=False), folder / f"part-{i:05d}.parquet"
            )
        (folder / "_SUCCESS").touch()  # what Spark leaves: ignored
        (folder / ".part-00000.parquet.crc").touch()


def whole_table_lines(directory) -> list[str]:
    """The in-memory path's lines: reading problems, else validate_tables'."""
    try:
        tables = read_tables(directory)
    except InvalidData as err:
        return sorted(str(v) for v in err.violations)
    return sorted(str(v) for v in validate_tables(tables))


def test_parts_read_as_the_whole_table(tiny_tables, tmp_path):
    write_parts({n: to_arrow(f, n).to_pandas() for n, f in tiny_tables.items()}, tmp_path, 3)
    assert is_partitioned(tmp_path)
    back = read_tables(tmp_path)
    for name in TABLES:
        pd.testing.assert_frame_equal(back[name], tiny_tables[name])
    assert validate_parts(tmp_path) == ([], {n: len(f) for n, f in tiny_tables.items()})


def _writable_cases():
    """(case, parts): every rule in two parts; uniqueness (checked across parts by key
    hashes, within one part by pandera) in one part too."""
    cases = [
        case
        for case, (mutate, _) in RULE_CASES.items()
        if "type" not in case and case != "date is midnight"
    ]
    return [(case, 2) for case in cases] + [
        (case, 1) for case in cases if RULE_CASES[case][1][2] == UNIQUE
    ]


@pytest.mark.parametrize("case,parts", _writable_cases())
def test_each_rule_part_by_part_as_on_the_whole_table(tiny_tables, tmp_path, case, parts):
    mutate, expected = RULE_CASES[case]
    mutate(tiny_tables)
    write_parts(tiny_tables, tmp_path, parts)
    lines = sorted(str(v) for v in validate_parts(tmp_path)[0])
    assert lines == whole_table_lines(tmp_path)
    assert any(line.startswith(".".join(p for p in expected[:2] if p)) for line in lines)


@pytest.mark.parametrize("case", [case for case, parts in _writable_cases() if parts == 2])
def test_each_rule_in_batches_of_a_part_as_on_the_whole_table(
    tiny_tables, tmp_path, case, monkeypatch
):
    """A large part is checked BATCH_ROWS rows at a time: here 2, so every table is
    several batches and uniqueness goes by key hashes across them."""
    monkeypatch.setattr(marketplace.validate, "BATCH_ROWS", 2)
    mutate, expected = RULE_CASES[case]
    mutate(tiny_tables)
    write_parts(tiny_tables, tmp_path, 1)
    lines = sorted(str(v) for v in validate_parts(tmp_path)[0])
    assert lines == whole_table_lines(tmp_path)
    assert any(line.startswith(".".join(p for p in expected[:2] if p)) for line in lines)


def test_duplicates_across_parts_and_unreadable_values(tiny_tables, tmp_path):
    posts = tiny_tables["posts"]
    tiny_tables["posts"] = pd.concat([posts, posts.iloc[[0, 1]]], ignore_index=True)
    write_parts(tiny_tables, tmp_path)  # the copies land in the second part
    [found] = validate_parts(tmp_path)[0]
    assert str(found) == "posts.post_id: must be unique (4 rows, e.g. p1, p2, p1, p2)"
    assert [str(found)] == whole_table_lines(tmp_path)

    bad = tmp_path / "bad"
    tiny_tables["posts"] = posts.assign(
        views=posts["views"].astype(str).where(posts.index != 5, "many")
    )
    write_parts(tiny_tables, bad)
    assert (
        [str(v) for v in validate_parts(bad)[0]]
        == whole_table_lines(bad)
        == ["posts.views: must be an integer (1 row, e.g. p6)"]
    )


def test_validate_command_checks_a_directory_of_parts(tiny_tables, tmp_path):
    set_views = tiny_tables["posts"].copy()
    set_views.loc[6, "views"] = -1
    tiny_tables["posts"] = set_views
    write_parts(tiny_tables, tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "marketplace", "validate", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert done.stdout == "posts.views: must be >= 0 (1 row, e.g. p7)\n"
    assert done.stderr.strip().splitlines() == [
        f"error: {tmp_path}: 1 violation(s) of the data contract (listed above)"
    ]
