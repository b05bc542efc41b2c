"""The Spark engine computes what the in-memory path computes (one local[2] session
shared by every test here, small data); Spark's errors are one line."""

from __future__ import annotations

import shutil

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.__main__ import main as features_main
from features.pairs import training_pairs
from marketplace.io import read_tables, to_arrow, write_tables
from marketplace.simulate import SimConfig, simulate
from scaleout.session import JAVA_NEEDED, SparkError, check_master, java_available, \
    spark_session

@pytest.fixture(scope="session")
def spark():
    if not java_available():
        pytest.skip("Java 17 not found: Spark tests skipped")
    session = spark_session("local[2]", app="creator-scores-tests")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def market_dir(tmp_path_factory):
    """A small marketplace; posts as a directory of parts with nanosecond timestamps
    (as pandas writes them), which Spark reads as longs."""
    directory = tmp_path_factory.mktemp("spark") / "data"
    tables, _ = simulate(SimConfig(creators=400, days=240, seed=5))
    write_tables({n: f for n, f in tables.items() if n != "posts"}, directory)
    posts = to_arrow(tables["posts"], "posts")
    posts = posts.set_column(posts.schema.get_field_index("posted_at"), "posted_at",
                             posts["posted_at"].cast(pa.timestamp("ns", tz="UTC")))
    (directory / "posts").mkdir()
    half = posts.num_rows // 2
    pq.write_table(posts.slice(0, half), directory / "posts" / "part-0.parquet")
    pq.write_table(posts.slice(half), directory / "posts" / "part-1.parquet")
    return directory


@pytest.mark.slow
def test_spark_pair_table_equals_the_in_memory_one(spark, market_dir, tmp_path):
    expected = training_pairs(read_tables(market_dir))
    out = tmp_path / "pairs"
    assert features_main([str(market_dir), "--out", str(out), "--engine", "spark",
                          "--spark-master", "local[2]", "--buckets", "3"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pairs"]   # nothing left behind
    assert all(p.name.endswith(".parquet") for p in out.iterdir())
    pd.testing.assert_frame_equal(pd.read_parquet(out), expected)     # value for value


@pytest.mark.slow
def test_spark_rejects_bad_data_as_the_in_memory_path(spark, market_dir, tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(market_dir, broken)
    tables = read_tables(market_dir)
    campaigns = tables["campaigns"].copy()
    campaigns.loc[0, "commission_rate"] = 2.0
    write_tables({"campaigns": campaigns}, broken)
    out = tmp_path / "pairs"
    assert features_main([str(broken), "--out", str(out), "--engine", "spark"]) == 1
    spark_lines = capsys.readouterr()
    assert features_main([str(broken), "--out", str(tmp_path / "p.parquet")]) == 1
    memory_lines = capsys.readouterr()
    assert spark_lines.out == memory_lines.out
    assert spark_lines.out.startswith("campaigns.commission_rate: must be in [0, 1] (1 row")
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["broken"]


def test_missing_java_is_one_line(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(SparkError) as err:
        spark_session("local[1]")
    assert str(err.value) == JAVA_NEEDED and "\n" not in str(err.value)


def test_unreachable_master_is_one_line():
    with pytest.raises(SparkError, match=r"^Spark master spark://127.0.0.1:9 is unreachable"):
        check_master("spark://127.0.0.1:9", timeout_s=1)
