"""The Spark engine computes what the in-memory path computes (one local[2] session
shared by every test here, small data); Spark's errors are one line."""

from __future__ import annotations

import dataclasses
import shutil

import mlflow
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from commands.features import main as features_main
from commands.serving import main as serving_main
from features.pairs import training_pairs
from marketplace.io import read_tables, to_arrow, write_tables
from marketplace.simulate import SimConfig, simulate
from marketplace.validate import validate_parts
from scaleout.session import (
    JAVA_NEEDED,
    SparkError,
    check_master,
    check_server,
    java_available,
    parallelism,
    remote_url,
    run_job,
    spark_session,
)
from training.__main__ import main as training_main
from training.config import load_config
from training.parts import train_on_pair_parts
from training.run import pairs_and_posts, train_on_pairs
from training.table import PartRows
from training.tracking import log_training, using_tracking_uri


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
    posts = posts.set_column(
        posts.schema.get_field_index("posted_at"),
        "posted_at",
        posts["posted_at"].cast(pa.timestamp("ns", tz="UTC")),
    )
    (directory / "posts").mkdir()
    half = posts.num_rows // 2
    pq.write_table(posts.slice(0, half), directory / "posts" / "part-0.parquet")
    pq.write_table(posts.slice(half), directory / "posts" / "part-1.parquet")
    return directory


@pytest.fixture(scope="session")
def spark_pairs_dir(spark, market_dir):
    """The pair table of market_dir written by ``python -m features --engine spark``."""
    out = market_dir.parent / "out" / "pairs"
    out.parent.mkdir()
    assert (
        features_main(
            [
                str(market_dir),
                "--out",
                str(out),
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
    return out


@pytest.fixture(scope="session")
def memory_tables(market_dir):
    return read_tables(market_dir)


@pytest.mark.slow
def test_spark_pair_table_equals_the_in_memory_one(spark_pairs_dir, memory_tables):
    expected = training_pairs(memory_tables)
    assert [p.name for p in spark_pairs_dir.parent.iterdir()] == ["pairs"]  # nothing left behind
    assert all(p.name.endswith(".parquet") for p in spark_pairs_dir.iterdir())
    pd.testing.assert_frame_equal(pd.read_parquet(spark_pairs_dir), expected)  # value for value


CFG = dataclasses.replace(load_config(), max_rounds=60, early_stopping_rounds=20, num_threads=1)


@pytest.fixture(scope="session")
def memory_result(memory_tables):
    pairs, posts, population = pairs_and_posts(dict(memory_tables))
    return train_on_pairs(memory_tables, pairs, posts, CFG, population=population)


@pytest.mark.slow
def test_training_from_the_pair_parts_gives_the_in_memory_model(
    spark_pairs_dir, market_dir, memory_result, monkeypatch
):
    expected = memory_result
    violations, rows = validate_parts(market_dir)
    assert violations == []
    monkeypatch.setattr(PartRows, "batch_size", 997)  # many batches and part boundaries
    got = train_on_pair_parts(market_dir, rows, spark_pairs_dir, CFG)
    for fold_got, fold_expected in zip(got.folds, expected.folds, strict=True):
        for objective, fitted in fold_got.items():
            assert (
                fitted.booster.model_to_string()
                == fold_expected[objective].booster.model_to_string()
            )
    assert got.pointwise.booster.model_to_string() == expected.pointwise.booster.model_to_string()
    assert got.scorer.booster.model_to_string() == expected.scorer.booster.model_to_string()
    assert got.served_campaigns == expected.served_campaigns
    assert got.metrics == expected.metrics
    for name in ("score_map", "commission_rate_median", "trained_until", "reference"):
        assert getattr(got.scorer, name) == getattr(expected.scorer, name)
    assert got.evaluated.score_map == expected.evaluated.score_map
    assert got.fingerprint == expected.fingerprint
    pd.testing.assert_frame_equal(got.backtest, expected.backtest)
    pd.testing.assert_frame_equal(got.test, expected.test)


def test_training_rejects_what_is_not_a_pair_table(market_dir, tmp_path, capsys):
    args = [
        str(market_dir),
        "--pairs",
        str(market_dir / "posts"),
        "--tracking-uri",
        f"sqlite:///{tmp_path / 'mlflow.db'}",
    ]
    assert training_main(args) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: {market_dir / 'posts'}: not a pair table of this feature builder "
        "(missing column(s) campaign_id, created_at, views_per_follower_30d)"
    )


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


def test_unreachable_connect_server_is_one_line():
    with pytest.raises(
        SparkError, match=r"^Spark Connect server sc://127.0.0.1:9/;user_id=x is unreachable \(no"
    ):
        check_server("sc://127.0.0.1:9/;user_id=x", timeout_s=1)


def test_spark_connect_is_the_flag_a_sc_master_or_the_environment(monkeypatch):
    monkeypatch.setenv("SPARK_REMOTE", "sc://env:15002")
    assert remote_url(None, None) == "sc://env:15002"
    assert remote_url("local[2]", None) is None  # a classic master given wins
    assert remote_url("sc://master:15002", None) == "sc://master:15002"
    assert remote_url("local[2]", "sc://flag:15002") == "sc://flag:15002"
    monkeypatch.delenv("SPARK_REMOTE")
    assert remote_url(None, None) is None


def test_default_parallelism_is_read_from_the_configuration(spark):
    assert parallelism(spark) == 2  # local[2], without the SparkContext


@pytest.mark.slow
def test_spark_partner_lists_equal_the_in_memory_ones(
    spark, market_dir, memory_tables, memory_result, tmp_path, capsys
):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with using_tracking_uri(uri):
        mlflow.create_experiment("test", artifact_location=(tmp_path / "artifacts").as_uri())
    log_training(memory_result, uri, "test", register="cs")
    as_of = memory_tables["posts"]["posted_at"].max().normalize() - pd.Timedelta(days=14)
    briefs = pd.DataFrame(
        {
            "brief_id": ["id-beauty", "th-fashion", "xx-none", "vn-food"],
            "market": ["ID", "TH", "XX", "VN"],
            "category": ["beauty", "fashion", "beauty", "food"],
            "as_of": [as_of.strftime("%Y-%m-%dT%H:%M:%SZ")] * 4,
            "top_k": [50, 7, 5, 3],
            "min_followers": [0, 1000, 0, 0],
        }
    )
    briefs.to_csv(tmp_path / "briefs.csv", index=False)
    common = [
        "--model",
        "models:/cs/1",
        "--data",
        str(market_dir),
        "--briefs",
        str(tmp_path / "briefs.csv"),
        "--tracking-uri",
        uri,
    ]
    assert (
        serving_main(
            [
                *common,
                "--out",
                str(tmp_path / "memory.parquet"),
                "--drift-report",
                str(tmp_path / "memory-drift.csv"),
            ]
        )
        == 0
    )
    memory_warnings = [
        line for line in capsys.readouterr().err.splitlines() if line.startswith("warning")
    ]
    assert (
        serving_main(
            [
                *common,
                "--out",
                str(tmp_path / "spark.parquet"),
                "--engine",
                "spark",
                "--buckets",
                "3",
                "--drift-report",
                str(tmp_path / "spark-drift.csv"),
            ]
        )
        == 0
    )
    spark_warnings = [
        line for line in capsys.readouterr().err.splitlines() if line.startswith("warning")
    ]
    expected = pd.read_parquet(tmp_path / "memory.parquet")
    assert set(expected["brief_id"]) == {"id-beauty", "th-fashion", "vn-food"}
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "spark.parquet"), expected)
    assert spark_warnings == memory_warnings
    assert any(line.startswith("warning: brief xx-none: no candidates") for line in memory_warnings)
    drift = pd.read_csv(tmp_path / "memory-drift.csv")
    assert len(drift) > 60 and drift["psi"].gt(0).all()
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "spark-drift.csv"), drift)


def _boom(frame: pd.DataFrame) -> pd.DataFrame:
    raise ValueError(f"bucket of {len(frame)} rows cannot be built")


def test_a_failing_worker_is_one_line(spark):
    job = spark.range(4).groupBy("id").applyInPandas(_boom, schema="id long")
    with pytest.raises(SparkError) as err:
        run_job(job.collect)
    assert str(err.value) == "Spark job failed: ValueError: bucket of 1 rows cannot be built"


@pytest.mark.slow
def test_spark_drift_without_candidates_equals_the_in_memory_path(
    spark, serving_world, tmp_path, capsys
):
    briefs = serving_world.briefs.assign(market="XX")  # no creator in any brief's market
    briefs.to_csv(tmp_path / "briefs.csv", index=False)
    common = [
        "--model",
        "models:/cs/1",
        "--data",
        str(serving_world.data),
        "--briefs",
        str(tmp_path / "briefs.csv"),
        "--tracking-uri",
        serving_world.tracking_uri,
    ]
    stderr = {}
    for engine in ("memory", "spark"):
        out = [f"--out={tmp_path / engine}.csv", f"--drift-report={tmp_path / engine}-drift.csv"]
        assert serving_main([*common, *out, "--engine", engine, "--buckets", "2"]) == 0
        stderr[engine] = [line for line in capsys.readouterr().err.splitlines() if "warn" in line]
    assert stderr["spark"] == stderr["memory"]
    assert len(stderr["memory"]) == len(briefs)  # one "no candidates" line each, no drift
    assert all(": no candidates" in line for line in stderr["memory"])
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "spark.csv"), pd.read_csv(tmp_path / "memory.csv")
    )
    assert not (tmp_path / "memory-drift.csv").exists()
    assert not (tmp_path / "spark-drift.csv").exists()
