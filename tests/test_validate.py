"""Validation: a valid directory passes; every contract rule rejects a broken copy."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from marketplace.contract import (
    FORMAT_ENUM,
    KIND_RULES,
    MARKET_CODE,
    MISSING_COLUMN,
    MISSING_TABLE,
    NON_NEGATIVE,
    NOT_EMPTY,
    NOT_NULL,
    RESPONSE_ENUM,
    TABLES,
    UNIQUE,
    UNIT_INTERVAL,
)
from marketplace.io import write_tables
from marketplace.validate import Violation, load_valid_tables, validate_tables
from tests.conftest import make_tiny_tables, triples


def _ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text).tz_convert("UTC") if "Z" in text else pd.Timestamp(text, tz="UTC")


# Each mutation breaks one rule of a copy of the tiny tables.


def set_value(table: str, column: str, row: int, value):
    def mutate(tables):
        frame = tables[table].copy()
        frame.loc[row, column] = value
        tables[table] = frame

    return mutate


def set_time(table: str, column: str, row: int, text: str | None):
    return set_value(table, column, row, pd.NaT if text is None else _ts(text))


def append_copy(table: str, row: int, **changes):
    def mutate(tables):
        extra = tables[table].iloc[[row]].assign(**changes)
        tables[table] = pd.concat([tables[table], extra], ignore_index=True)

    return mutate


def cast(table: str, column: str, convert):
    def mutate(tables):
        tables[table] = tables[table].assign(**{column: convert(tables[table][column])})

    return mutate


def drop_column(table: str, column: str):
    def mutate(tables):
        tables[table] = tables[table].drop(columns=column)

    return mutate


def drop_table(table: str):
    def mutate(tables):
        del tables[table]

    return mutate


_PAIR = "campaign_id/creator_id"

RULE_CASES = {
    # presence
    "missing table": (drop_table("posts"), ("posts", "", MISSING_TABLE)),
    "missing column": (drop_column("posts", "gmv"), ("posts", "gmv", MISSING_COLUMN)),
    "missing column in a cross rule": (
        drop_column("invitations", "response"),
        ("invitations", "response", MISSING_COLUMN),
    ),
    # types
    "string type": (
        cast("posts", "post_id", lambda s: np.arange(len(s))),
        ("posts", "post_id", KIND_RULES["string"]),
    ),
    "timestamp type": (
        cast("posts", "posted_at", lambda s: s.dt.tz_localize(None)),
        ("posts", "posted_at", KIND_RULES["timestamp"]),
    ),
    "int type": (
        cast("posts", "views", lambda s: s.astype(float)),
        ("posts", "views", KIND_RULES["int"]),
    ),
    "float type": (
        cast("posts", "gmv", lambda s: s.astype(str)),
        ("posts", "gmv", KIND_RULES["float"]),
    ),
    "bool type": (
        cast("posts", "is_shoppable", lambda s: s.map({True: "yes", False: "no"})),
        ("posts", "is_shoppable", KIND_RULES["bool"]),
    ),
    "date is midnight": (
        set_time("follower_snapshots", "snapshot_date", 0, "2025-01-01T10:00:00Z"),
        ("follower_snapshots", "snapshot_date", KIND_RULES["date"]),
    ),
    # creators
    "creator_id unique": (append_copy("creators", 1), ("creators", "creator_id", UNIQUE)),
    "creator_id non-empty": (
        append_copy("creators", 1, creator_id=" "),
        ("creators", "creator_id", NOT_EMPTY),
    ),
    "creator_id not null": (
        append_copy("creators", 1, creator_id=None),
        ("creators", "creator_id", NOT_NULL),
    ),
    "creators market lower case": (
        set_value("creators", "market", 0, "id"),
        ("creators", "market", MARKET_CODE),
    ),
    "creators market 3 letters": (
        set_value("creators", "market", 0, "IDN"),
        ("creators", "market", MARKET_CODE),
    ),
    "creators joined_at not null": (
        set_time("creators", "joined_at", 0, None),
        ("creators", "joined_at", NOT_NULL),
    ),
    # follower_snapshots
    "followers >= 0": (
        set_value("follower_snapshots", "followers", 0, -1),
        ("follower_snapshots", "followers", NON_NEGATIVE),
    ),
    "snapshot unique per creator and date": (
        append_copy("follower_snapshots", 0),
        ("follower_snapshots", "creator_id/snapshot_date", UNIQUE),
    ),
    "snapshot creator in creators": (
        set_value("follower_snapshots", "creator_id", 0, "ghost"),
        ("follower_snapshots", "creator_id", "must be in creators"),
    ),
    # posts
    "post_id unique": (append_copy("posts", 0), ("posts", "post_id", UNIQUE)),
    "post_id non-empty": (set_value("posts", "post_id", 0, ""), ("posts", "post_id", NOT_EMPTY)),
    "post creator in creators": (
        set_value("posts", "creator_id", 0, "ghost"),
        ("posts", "creator_id", "must be in creators"),
    ),
    "posted_at not null": (
        set_time("posts", "posted_at", 0, None),
        ("posts", "posted_at", NOT_NULL),
    ),
    "format enum": (set_value("posts", "format", 0, "story"), ("posts", "format", FORMAT_ENUM)),
    **{
        f"posts {c} >= 0": (set_value("posts", c, 0, -1), ("posts", c, NON_NEGATIVE))
        for c in ("views", "likes", "comments", "shares", "orders")
    },
    "posts gmv >= 0": (set_value("posts", "gmv", 0, -0.5), ("posts", "gmv", NON_NEGATIVE)),
    "posts gmv not null": (set_value("posts", "gmv", 0, np.nan), ("posts", "gmv", NOT_NULL)),
    # campaigns
    "campaign_id unique": (append_copy("campaigns", 1), ("campaigns", "campaign_id", UNIQUE)),
    "campaign_id non-empty": (
        append_copy("campaigns", 1, campaign_id=""),
        ("campaigns", "campaign_id", NOT_EMPTY),
    ),
    "brand_id non-empty": (
        set_value("campaigns", "brand_id", 0, ""),
        ("campaigns", "brand_id", NOT_EMPTY),
    ),
    "campaigns market": (
        set_value("campaigns", "market", 1, "gb"),
        ("campaigns", "market", MARKET_CODE),
    ),
    "campaigns category not null": (
        set_value("campaigns", "category", 0, None),
        ("campaigns", "category", NOT_NULL),
    ),
    "commission_rate <= 1": (
        set_value("campaigns", "commission_rate", 0, 1.5),
        ("campaigns", "commission_rate", UNIT_INTERVAL),
    ),
    "commission_rate >= 0": (
        set_value("campaigns", "commission_rate", 1, -0.1),
        ("campaigns", "commission_rate", UNIT_INTERVAL),
    ),
    "created_at <= start_at": (
        set_time("campaigns", "start_at", 0, "2025-01-31T00:00:00Z"),
        ("campaigns", "start_at", "must be >= created_at"),
    ),
    "start_at < end_at": (
        set_time("campaigns", "end_at", 1, "2025-02-15T00:00:00Z"),
        ("campaigns", "end_at", "must be > start_at"),
    ),
    # invitations
    "invitation campaign in campaigns": (
        set_value("invitations", "campaign_id", 1, "k9"),
        ("invitations", "campaign_id", "must be in campaigns"),
    ),
    "invitation creator in creators": (
        set_value("invitations", "creator_id", 1, "ghost"),
        ("invitations", "creator_id", "must be in creators"),
    ),
    "invitation unique per pair": (append_copy("invitations", 1), ("invitations", _PAIR, UNIQUE)),
    "invited_at >= campaign created_at": (
        set_time("invitations", "invited_at", 1, "2025-01-31T00:00:00Z"),
        ("invitations", "invited_at", "must be >= the campaign's created_at"),
    ),
    "response enum": (
        set_value("invitations", "response", 1, "maybe"),
        ("invitations", "response", RESPONSE_ENUM),
    ),
    "responded_at null for no_response": (
        set_time("invitations", "responded_at", 2, "2025-02-03T00:00:00Z"),
        ("invitations", "responded_at", "must be null exactly when response is no_response"),
    ),
    "responded_at set otherwise": (
        set_time("invitations", "responded_at", 1, None),
        ("invitations", "responded_at", "must be null exactly when response is no_response"),
    ),
    "responded_at >= invited_at": (
        set_time("invitations", "responded_at", 1, "2025-02-01T09:00:00Z"),
        ("invitations", "responded_at", "must be >= invited_at"),
    ),
    "posts_promised >= 0": (
        set_value("invitations", "posts_promised", 0, -1),
        ("invitations", "posts_promised", NON_NEGATIVE),
    ),
    "posts_promised set when accepted": (
        set_value("invitations", "posts_promised", 0, pd.NA),
        ("invitations", "posts_promised", "must be set when response is accepted"),
    ),
    "posts_delivered >= 0": (
        set_value("invitations", "posts_delivered", 3, -1),
        ("invitations", "posts_delivered", NON_NEGATIVE),
    ),
    # campaign_results
    "result is a row of invitations": (
        set_value("campaign_results", "creator_id", 1, "c2"),
        ("campaign_results", _PAIR, "must be a row of invitations"),
    ),
    "result unique per pair": (
        append_copy("campaign_results", 0),
        ("campaign_results", _PAIR, UNIQUE),
    ),
    "result gmv >= 0": (
        set_value("campaign_results", "gmv", 0, -1.0),
        ("campaign_results", "gmv", NON_NEGATIVE),
    ),
    "result gmv not null": (
        set_value("campaign_results", "gmv", 0, np.nan),
        ("campaign_results", "gmv", NOT_NULL),
    ),
    "result orders >= 0": (
        set_value("campaign_results", "orders", 0, -1),
        ("campaign_results", "orders", NON_NEGATIVE),
    ),
}


def test_tiny_tables_are_valid(tiny_tables):
    assert validate_tables(tiny_tables) == []


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_valid_directory_loads(tiny_tables, write_dir, fmt):
    tables = load_valid_tables(write_dir(tiny_tables, fmt))
    assert list(tables) == list(TABLES)
    assert validate_tables(tables) == []


@pytest.mark.parametrize("case", list(RULE_CASES), ids=list(RULE_CASES))
def test_each_rule_rejects_a_broken_copy(tiny_tables, case):
    mutate, expected = RULE_CASES[case]
    mutate(tiny_tables)
    found = validate_tables(tiny_tables)
    assert triples(found) == [expected]
    assert all(v.rows >= 1 for v in found if v.rule not in (MISSING_TABLE, MISSING_COLUMN))


def test_violation_counts_rows_and_names_example_ids(tiny_tables):
    set_value("posts", "views", 0, -1)(tiny_tables)
    set_value("posts", "views", 2, -7)(tiny_tables)
    [found] = validate_tables(tiny_tables)
    assert found == Violation("posts", "views", NON_NEGATIVE, 2, ("p1", "p3"))
    assert str(found) == "posts.views: must be >= 0 (2 rows, e.g. p1, p3)"


def test_pair_examples_join_the_key(tiny_tables):
    append_copy("invitations", 1)(tiny_tables)
    append_copy("follower_snapshots", 0)(tiny_tables)
    found = {v.table: v for v in validate_tables(tiny_tables)}
    assert found["invitations"].examples == ("k1/c2", "k1/c2")
    assert found["invitations"].rows == 2
    assert found["follower_snapshots"].examples == ("00123/2025-01-01", "00123/2025-01-01")


def test_examples_are_capped_at_five(tiny_tables):
    tiny_tables["posts"]["likes"] = -1
    [found] = validate_tables(tiny_tables)
    assert found.rows == 8
    assert found.examples == ("p1", "p2", "p3", "p4", "p5")


def test_wrong_type_is_reported_once_for_the_whole_column(tiny_tables):
    cast("posts", "views", lambda s: s.astype(str))(tiny_tables)
    [found] = validate_tables(tiny_tables)
    assert (found.column, found.rule, found.rows, found.examples) == (
        "views",
        KIND_RULES["int"],
        8,
        (),
    )


def test_logical_types_are_accepted_in_any_width_or_unit(tiny_tables):
    posts = tiny_tables["posts"]
    tiny_tables["posts"] = posts.assign(
        post_id=posts["post_id"].astype(object),
        posted_at=posts["posted_at"].astype("datetime64[ns, UTC]"),
        views=posts["views"].astype("int32"),
        orders=posts["orders"].astype("Int64"),
        gmv=posts["gmv"].astype("float32"),
    )
    assert validate_tables(tiny_tables) == []


def test_index_labels_do_not_matter(tiny_tables):
    tiny_tables["posts"].index = np.arange(100, 108)[::-1]
    set_value("posts", "views", 103, -1)(tiny_tables)
    [found] = validate_tables(tiny_tables)
    assert found.examples == ("p5",)


def test_several_tables_broken_at_once_all_reported(tiny_tables):
    drop_table("campaign_results")(tiny_tables)
    set_value("posts", "format", 1, "reel")(tiny_tables)
    set_value("creators", "market", 2, "uk")(tiny_tables)
    assert triples(validate_tables(tiny_tables)) == [
        ("creators", "market", MARKET_CODE),
        ("posts", "format", FORMAT_ENUM),
        ("campaign_results", "", MISSING_TABLE),
    ]


def test_a_validated_directory_is_not_checked_again_until_a_file_changes(tmp_path, capsys):
    from marketplace.cli import UserError, load_tables_or_report, rows_or_report
    from marketplace.stamp import record_path, stamped_rows

    directory = tmp_path / "data"
    write_tables(make_tiny_tables(), directory)
    assert stamped_rows(directory) is None
    rows = rows_or_report(directory)
    assert record_path(directory).is_file() and stamped_rows(directory) == rows
    assert rows == {name: len(frame) for name, frame in make_tiny_tables().items()}
    assert rows_or_report(directory) == rows
    assert "not checked again" in capsys.readouterr().err
    # a rewritten table (here with a violation) is validated again, by either reader
    campaigns = make_tiny_tables()["campaigns"]
    campaigns.loc[0, "commission_rate"] = 2.0
    write_tables({"campaigns": campaigns}, directory)
    assert stamped_rows(directory) is None
    for reader in (rows_or_report, load_tables_or_report):
        with pytest.raises(UserError, match="violation"):
            reader(directory)
    assert "commission_rate" in capsys.readouterr().out
    # a file touched without a change of content also counts as changed
    write_tables({"campaigns": make_tiny_tables()["campaigns"]}, directory)
    assert len(load_tables_or_report(directory)["campaigns"]) == len(campaigns)
    path = next(p for p in directory.iterdir() if p.name.startswith("posts"))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1))
    assert stamped_rows(directory) is None


def test_validation_never_writes_into_a_read_only_data_directory(tmp_path, capsys, monkeypatch):
    """The record lives in the cache folder: a read-only directory validates once, the
    next stage skips the check, and the directory holds exactly its table files."""
    from marketplace.cli import load_tables_or_report, rows_or_report
    from marketplace.stamp import record_path

    monkeypatch.setenv("CREATOR_SCORES_CACHE", str(tmp_path / "cache"))
    directory = tmp_path / "shared-data"
    write_tables(make_tiny_tables(), directory)
    before = {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in directory.iterdir()}
    os.chmod(directory, 0o555)
    try:
        assert len(load_tables_or_report(directory)["posts"]) == 8
        assert "not checked again" not in capsys.readouterr().err
        assert record_path(directory).is_relative_to(tmp_path / "cache")
        assert rows_or_report(directory)["posts"] == 8
        assert "not checked again" in capsys.readouterr().err
        assert len(load_tables_or_report(directory)["posts"]) == 8
        assert "not checked again" in capsys.readouterr().err
        after = {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in directory.iterdir()}
        assert after == before
    finally:
        os.chmod(directory, 0o755)
    # another directory with the same files is another record
    copy = tmp_path / "copy"
    write_tables(make_tiny_tables(), copy)
    assert record_path(copy) != record_path(directory)
    load_tables_or_report(copy)
    assert "not checked again" not in capsys.readouterr().err
