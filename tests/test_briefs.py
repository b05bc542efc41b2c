"""serving.briefs: briefs read from CSV and Parquet alike, and bad briefs as one-line errors."""

from __future__ import annotations

import pandas as pd
import pytest

from marketplace.contract import TIMESTAMP_DTYPE
from serving.briefs import BriefError, check_briefs, read_briefs
from tests.conftest import write_briefs


def test_briefs_read_csv_and_parquet_alike(tmp_path, serving_world):
    csv = read_briefs(serving_world.briefs_csv)
    assert csv["brief_id"].tolist() == serving_world.briefs["brief_id"].tolist()
    assert csv["top_k"].tolist() == [50, 10, 5, 20, 5]
    assert csv["min_followers"].tolist() == [0, 1000, 0, 0, 0]
    assert csv["as_of"].dtype == TIMESTAMP_DTYPE
    serving_world.briefs.to_parquet(tmp_path / "b.parquet")
    pd.testing.assert_frame_equal(read_briefs(tmp_path / "b.parquet"), csv)
    assert check_briefs(csv).equals(csv)  # idempotent
    # Zone-less as_of is UTC, other zones are converted; numeric-looking ids stay text.
    path = write_briefs(
        tmp_path,
        "brief_id,market,category,as_of\n007,GB,home,2025-01-02 03:04\n"
        "008,GB,home,2025-01-02T05:04:00+02:00\n",
    )
    briefs = read_briefs(path)
    assert briefs["brief_id"].tolist() == ["007", "008"]
    assert (briefs["as_of"] == pd.Timestamp("2025-01-02T03:04:00Z")).all()
    assert briefs["commission_rate"].isna().all()


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "brief_id,market,category,as_of\nb1,GB,home,2025-01-01\nb1,GB,home,2025-01-02\n",
            "column brief_id: must be unique (duplicated: b1)",
        ),
        (
            "brief_id,market,category,as_of\nb1,GB,home,2025-01-01\n,GB,home,2025-01-02\n",
            "column brief_id: must not be empty (row 2)",
        ),
        ("brief_id,market,category\nb1,GB,home\n", "missing column(s) as_of"),
        (
            "brief_id,market,category,as_of\nb1,GB,home,yesterday\n",
            "column as_of: must be a timestamp",
        ),
        (
            "brief_id,market,category,as_of,top_k\nb1,GB,home,2025-01-01,-3\n",
            "column top_k: must be >= 1 (brief b1: '-3')",
        ),
        (
            "brief_id,market,category,as_of,top_k\nb1,GB,home,2025-01-01,2.5\n",
            "column top_k: must be an integer",
        ),
        (
            "brief_id,market,category,as_of,commission_rate\nb1,GB,home,2025-01-01,1.5\n",
            "column commission_rate: must be in [0, 1]",
        ),
        (
            "brief_id,market,category,as_of,min_followers\nb1,GB,home,2025-01-01,-1\n",
            "column min_followers: must be >= 0",
        ),
        (
            "brief_id,market,category,as_of\nb1,gb,home,2025-01-01\n",
            "column market: must be an upper-case 2-letter country code",
        ),
    ],
)
def test_bad_briefs_are_one_line_errors(tmp_path, text, message):
    path = write_briefs(tmp_path, text)
    with pytest.raises(BriefError) as err:
        read_briefs(path)
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value)
    assert "\n" not in str(err.value)
