"""marketplace.validate.load_valid_tables: a directory is read, validated and refused with
every violation listed, one line each; validation never writes into the directory."""

from __future__ import annotations

import pandas as pd
import pytest

from marketplace.contract import (
    MISSING_TABLE,
    NON_NEGATIVE,
    NOT_NULL,
    RESPONSE_ENUM,
    STRING_DTYPE,
)
from marketplace.validate import InvalidData, load_valid_tables, validate_tables
from tests.conftest import triples
from tests.test_validate import set_value

# ---------------------------------------------------------------- load_valid_tables


def _snapshot(directory):
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(directory.rglob("*"))}


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_invalid_directory_raises_with_every_violation(tiny_tables, write_dir, fmt):
    set_value("posts", "views", 0, -1)(tiny_tables)
    set_value("invitations", "response", 1, "maybe")(tiny_tables)
    directory = write_dir(tiny_tables, fmt)
    with pytest.raises(InvalidData) as caught:
        load_valid_tables(directory)
    assert triples(caught.value.violations) == [
        ("posts", "views", NON_NEGATIVE),
        ("invitations", "response", RESPONSE_ENUM),
    ]
    assert str(caught.value).splitlines() == [
        "posts.views: must be >= 0 (1 row, e.g. p1)",
        "invitations.response: must be one of accepted, declined, no_response (1 row, e.g. k1/c2)",
    ]


def test_missing_directory_is_one_clean_violation(tmp_path):
    with pytest.raises(InvalidData) as caught:
        load_valid_tables(tmp_path / "absent")
    assert len(caught.value.violations) == 1
    assert str(caught.value) == f"data directory not found: {tmp_path / 'absent'}"
    assert not (tmp_path / "absent").exists()


def test_unparseable_value_is_a_violation_not_a_traceback(tiny_tables, write_dir):
    directory = write_dir(tiny_tables, "csv")
    text = (directory / "posts.csv").read_text()
    (directory / "posts.csv").write_text(text.replace(",1200,", ",abc,", 1))
    with pytest.raises(InvalidData) as caught:
        load_valid_tables(directory)
    assert str(caught.value) == "posts.views: must be an integer (1 row, e.g. p1)"


def test_missing_table_file_is_a_violation(tiny_tables, write_dir):
    directory = write_dir(tiny_tables, "parquet")
    (directory / "follower_snapshots.parquet").unlink()
    with pytest.raises(InvalidData) as caught:
        load_valid_tables(directory)
    assert triples(caught.value.violations) == [("follower_snapshots", "", MISSING_TABLE)]


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_validation_never_writes_into_the_directory(tiny_tables, write_dir, fmt):
    good = write_dir(tiny_tables, fmt)
    set_value("posts", "views", 0, -1)(tiny_tables)
    bad = write_dir(tiny_tables, fmt)
    before = {d: _snapshot(d) for d in (good, bad)}
    load_valid_tables(good)
    with pytest.raises(InvalidData):
        load_valid_tables(bad)
    assert {d: _snapshot(d) for d in (good, bad)} == before


def test_string_dtype_is_the_pandas_default():
    assert pd.Series(["a"]).dtype == STRING_DTYPE


def test_empty_tables_are_valid(tiny_tables):
    assert validate_tables({name: frame.iloc[:0] for name, frame in tiny_tables.items()}) == []


def test_null_key_parts_show_as_null(tiny_tables):
    set_value("invitations", "campaign_id", 1, None)(tiny_tables)
    [found] = validate_tables(tiny_tables)
    assert (found.column, found.rule, found.examples) == ("campaign_id", NOT_NULL, ("null/c2",))
