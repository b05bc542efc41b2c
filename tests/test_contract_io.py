"""Reading and writing the raw tables: types, formats, round trips, bad values."""

from __future__ import annotations

import pandas as pd
import pytest

from marketplace.contract import (
    COLUMNS,
    DTYPES,
    KEYS,
    KIND_RULES,
    MISSING_COLUMN,
    MISSING_TABLE,
    NOT_NULL,
    SCHEMAS,
    TABLES,
    InvalidData,
    Violation,
)
from marketplace.io import read_table, read_tables, write_tables
from tests.conftest import triples


def _replace_csv_line(path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


# ---------------------------------------------------------------- contract


def test_contract_lists_the_six_tables_with_keys_dtypes_and_schemas():
    assert TABLES == (
        "creators",
        "follower_snapshots",
        "posts",
        "campaigns",
        "invitations",
        "campaign_results",
    )
    for name in TABLES:
        assert tuple(DTYPES[name]) == COLUMNS[name]
        assert set(KEYS[name]) <= set(COLUMNS[name])
        assert set(SCHEMAS[name].columns) == set(COLUMNS[name])


def test_tiny_tables_have_the_contract_dtypes(tiny_tables):
    for name, frame in tiny_tables.items():
        assert dict(frame.dtypes) == DTYPES[name]


def test_violation_reads_as_one_line():
    v = Violation("posts", "views", "must be >= 0", 3, ("p1", "p2", "p3"))
    assert str(v) == "posts.views: must be >= 0 (3 rows, e.g. p1, p2, p3)"
    assert str(Violation("posts", "gmv", "must not be null", 1, ("p9",))) == (
        "posts.gmv: must not be null (1 row, e.g. p9)"
    )
    assert str(Violation("posts", "", MISSING_TABLE)) == "posts: missing table"


def test_invalid_data_message_is_every_violation_line():
    a = Violation("posts", "", MISSING_TABLE)
    b = Violation("creators", "market", MISSING_COLUMN)
    err = InvalidData([a, b])
    assert err.violations == (a, b)
    assert str(err) == "posts: missing table\ncreators.market: missing column"


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_round_trip_gives_equal_frames(tiny_tables, write_dir, fmt):
    directory = write_dir(tiny_tables, fmt)
    assert sorted(p.name for p in directory.iterdir()) == sorted(f"{t}.{fmt}" for t in TABLES)
    back = read_tables(directory)
    assert list(back) == list(TABLES)
    for name in TABLES:
        pd.testing.assert_frame_equal(back[name], tiny_tables[name])


def test_parquet_and_csv_copies_read_back_equal(tiny_tables, write_dir):
    from_parquet = read_tables(write_dir(tiny_tables, "parquet"))
    from_csv = read_tables(write_dir(tiny_tables, "csv"))
    for name in TABLES:
        pd.testing.assert_frame_equal(from_parquet[name], from_csv[name])


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_writing_is_deterministic(tiny_tables, write_dir, fmt):
    first, second = write_dir(tiny_tables, fmt), write_dir(tiny_tables, fmt)
    for name in TABLES:
        assert (first / f"{name}.{fmt}").read_bytes() == (second / f"{name}.{fmt}").read_bytes()


def test_csv_uses_iso_utc_timestamps_dates_and_true_false(tiny_tables, write_dir):
    directory = write_dir(tiny_tables, "csv")
    invitations = (directory / "invitations.csv").read_text().splitlines()
    assert invitations[1] == "k1,00123,2025-02-01T10:00:00Z,accepted,2025-02-02T12:00:00Z,2,2"
    assert invitations[3] == "k1,c3,2025-02-02T08:00:00Z,no_response,,,"
    assert (directory / "follower_snapshots.csv").read_text().splitlines()[
        1
    ] == "00123,2025-01-01,1000"
    assert ",true,1200," in (directory / "posts.csv").read_text().splitlines()[1]


def test_writing_one_format_removes_the_other(tiny_tables, write_dir):
    directory = write_dir(tiny_tables, "csv")
    write_tables(tiny_tables, directory, fmt="parquet")
    assert sorted(p.suffix for p in directory.iterdir()) == [".parquet"] * len(TABLES)


def test_parquet_is_preferred_when_both_files_exist(tiny_tables, write_dir):
    directory = write_dir(tiny_tables, "parquet")
    (directory / "creators.csv").write_text(
        "creator_id,market,joined_at,primary_category\nzz,ZZ,2024-01-01,\n"
    )
    pd.testing.assert_frame_equal(read_table(directory, "creators"), tiny_tables["creators"])


# ---------------------------------------------------------------- coercion


def test_numeric_looking_ids_stay_strings_in_csv(tiny_tables, write_dir):
    directory = write_dir(tiny_tables, "csv")
    creators = read_table(directory, "creators")
    assert creators["creator_id"].tolist() == ["00123", "c2", "c3"]
    assert creators["creator_id"].dtype == DTYPES["creators"]["creator_id"]
    assert read_table(directory, "posts")["creator_id"].iloc[0] == "00123"


def test_zone_less_csv_timestamps_are_utc_and_offsets_are_converted(tmp_path):
    (tmp_path / "creators.csv").write_text(
        "creator_id,market,joined_at,primary_category\n"
        "a,ID,2024-01-10T08:00:00,\n"
        "b,ID,2024-01-10 08:00:00,x\n"
        "c,ID,2024-01-10T15:00:00+07:00,\n"
        "d,ID,2024-01-10,\n"
    )
    joined = read_table(tmp_path, "creators")["joined_at"]
    assert joined.dtype == DTYPES["creators"]["joined_at"]
    expected = pd.Timestamp("2024-01-10T08:00:00Z")
    assert joined.iloc[:3].tolist() == [expected] * 3
    assert joined.iloc[3] == pd.Timestamp("2024-01-10T00:00:00Z")


@pytest.mark.parametrize("text", ["true", "false", "1", "0", "True", "False", "TRUE"])
def test_csv_booleans_accept_common_spellings(tiny_tables, write_dir, text):
    directory = write_dir(tiny_tables, "csv")
    _replace_csv_line(directory / "posts.csv", ",true,1200,", f",{text},1200,")
    assert read_table(directory, "posts")["is_shoppable"].iloc[0] == (text.lower() in ("true", "1"))


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_extra_columns_are_dropped(tiny_tables, write_dir, fmt):
    directory = write_dir(tiny_tables, fmt)
    posts = tiny_tables["posts"].assign(note="hello", views_30d=1)
    path = directory / f"posts.{fmt}"
    if fmt == "csv":
        posts.assign(posted_at=posts["posted_at"].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")).to_csv(
            path, index=False
        )
    else:
        posts.to_parquet(path, index=False)
    pd.testing.assert_frame_equal(read_table(directory, "posts"), tiny_tables["posts"])


def test_parquet_with_other_physical_types_is_coerced(tiny_tables, tmp_path):
    posts = tiny_tables["posts"].astype({"views": "int32", "gmv": "float32"})
    posts["posted_at"] = (
        posts["posted_at"].dt.tz_convert("Asia/Jakarta").astype("datetime64[ns, Asia/Jakarta]")
    )
    posts["gmv"] = tiny_tables["posts"]["gmv"].round(2)
    posts.to_parquet(tmp_path / "posts.parquet", index=False)
    back = read_table(tmp_path, "posts")
    assert dict(back.dtypes) == DTYPES["posts"]
    assert back["posted_at"].tolist() == tiny_tables["posts"]["posted_at"].tolist()
    assert back["views"].tolist() == tiny_tables["posts"]["views"].tolist()


# ---------------------------------------------------------------- read problems


@pytest.mark.parametrize(
    ("table", "old", "new", "column", "rule", "example"),
    [
        ("posts", ",true,1200,", ",true,abc,", "views", KIND_RULES["int"], "p1"),
        ("posts", ",true,1200,", ",true,12.5,", "views", KIND_RULES["int"], "p1"),
        ("posts", ",true,1200,", ",maybe,1200,", "is_shoppable", KIND_RULES["bool"], "p1"),
        ("posts", ",45.5\n", ",lots\n", "gmv", KIND_RULES["float"], "p1"),
        (
            "posts",
            "2025-01-03T10:15:00.000000Z",
            "yesterday",
            "posted_at",
            KIND_RULES["timestamp"],
            "p1",
        ),
        (
            "follower_snapshots",
            "00123,2025-01-01,",
            "00123,2025-13-01,",
            "snapshot_date",
            KIND_RULES["date"],
            "00123/2025-13-01",
        ),
        (
            "follower_snapshots",
            "00123,2025-01-01,",
            "00123,2025-01-01T10:00:00Z,",
            "snapshot_date",
            KIND_RULES["date"],
            None,
        ),
        ("follower_snapshots", ",1000\n", ",\n", "followers", NOT_NULL, "00123/2025-01-01"),
        ("posts", ",true,1200,", ",,1200,", "is_shoppable", NOT_NULL, "p1"),
    ],
)
def test_unparseable_values_are_violations(
    tiny_tables, write_dir, table, old, new, column, rule, example
):
    directory = write_dir(tiny_tables, "csv")
    _replace_csv_line(directory / f"{table}.csv", old, new)
    with pytest.raises(InvalidData) as caught:
        read_tables(directory)
    assert triples(caught.value.violations) == [(table, column, rule)]
    found = caught.value.violations[0]
    assert found.rows == 1
    if example:
        assert found.examples == (example,)


def test_every_bad_value_of_every_table_is_reported_at_once(tiny_tables, write_dir):
    directory = write_dir(tiny_tables, "csv")
    _replace_csv_line(directory / "posts.csv", ",1200,100,", ",-,x,")
    _replace_csv_line(directory / "campaigns.csv", "2025-02-01T09:00:00Z", "soon")
    with pytest.raises(InvalidData) as caught:
        read_tables(directory)
    assert triples(caught.value.violations) == [
        ("posts", "views", KIND_RULES["int"]),
        ("posts", "likes", KIND_RULES["int"]),
        ("campaigns", "created_at", KIND_RULES["timestamp"]),
    ]


def test_missing_directory_is_one_violation(tmp_path):
    with pytest.raises(InvalidData) as caught:
        read_tables(tmp_path / "nowhere")
    assert len(caught.value.violations) == 1
    assert "data directory not found" in str(caught.value)


def test_missing_table_and_missing_column_are_violations(tiny_tables, write_dir):
    directory = write_dir(tiny_tables, "csv")
    (directory / "campaign_results.csv").unlink()
    tiny_tables["posts"].drop(columns="gmv").assign(
        posted_at=lambda f: f["posted_at"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    ).to_csv(directory / "posts.csv", index=False)
    with pytest.raises(InvalidData) as caught:
        read_tables(directory)
    assert triples(caught.value.violations) == [
        ("posts", "gmv", MISSING_COLUMN),
        ("campaign_results", "", MISSING_TABLE),
    ]


def test_unreadable_file_is_a_violation(tiny_tables, write_dir):
    directory = write_dir(tiny_tables, "parquet")
    (directory / "posts.parquet").write_bytes(b"not a parquet file")
    with pytest.raises(InvalidData) as caught:
        read_tables(directory)
    [found] = caught.value.violations
    assert (found.table, found.column) == ("posts", "")
    assert found.rule.startswith("unreadable file posts.parquet")


def test_empty_table_reads_with_contract_dtypes(tiny_tables, write_dir):
    empty = {name: frame.iloc[:0] for name, frame in tiny_tables.items()}
    for fmt in ("parquet", "csv"):
        back = read_tables(write_dir(empty, fmt))
        for name in TABLES:
            assert dict(back[name].dtypes) == DTYPES[name]
            assert len(back[name]) == 0
