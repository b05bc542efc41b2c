"""The store built on Spark (``local[2]``) is the store built in memory, file for file
and bit for bit; the Spark session is the one the other Spark tests share (getOrCreate)."""

from __future__ import annotations

import pandas as pd
import pytest

from commands.store import main as store_main
from scaleout.session import java_available
from store.read import open_store


@pytest.mark.slow
def test_spark_builds_the_in_memory_store(serving_world, tmp_path):
    if not java_available():
        pytest.skip("Java 17 not found: Spark tests skipped")
    day = serving_world.as_of.strftime("%Y-%m-%d")
    flags = ["--as-of", day, "--every", "45d", "--back", "45d"]
    memory, spark = tmp_path / "memory", tmp_path / "spark"
    assert store_main(["build", str(serving_world.data), "--out", str(memory), *flags]) == 0
    assert (
        store_main(
            [
                "build",
                str(serving_world.data),
                "--out",
                str(spark),
                *flags,
                "--engine",
                "spark",
                "--spark-master",
                "local[2]",
                "--buckets",
                "3",
            ]
        )
        == 0
    )
    files = sorted(p.relative_to(memory) for p in memory.rglob("*.parquet"))
    assert files == sorted(p.relative_to(spark) for p in spark.rglob("*.parquet"))
    assert len(files) > 3 * 7
    for name in files:
        pd.testing.assert_frame_equal(
            pd.read_parquet(spark / name), pd.read_parquet(memory / name), check_exact=True
        )
    a, b = open_store(memory).manifest["days"], open_store(spark).manifest["days"]
    assert {d: r["markets"] for d, r in a.items()} == {d: r["markets"] for d, r in b.items()}
    assert {r["engine"] for r in b.values()} == {"spark"}
