"""The snapshot store: snapshots equal the feature builder to the bit, serving from the
store equals serving from the raw data (every column, the drift report too), a day
appears whole or not at all, and a damaged store or a brief on a day that is not stored
is one line, never a traceback.

The store of ``serving_world`` (module scope) holds the briefs' two days."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from commands.serving import main as serving_main
from commands.store import main as store_main
from features.build import build_features
from features.registry import FEATURE_NAMES
from store import layout
from store.build import requested_days
from store.read import candidates, creator_days, creator_directory, open_store, stored_day
from store.snapshot import OTHER, data_categories, snapshot_frames
from tests.conftest import write_briefs

DAY = pd.Timedelta(days=1)


def build(data: Path, store: Path, *flags: str) -> int:
    return store_main(["build", str(data), "--out", str(store), *flags])


@pytest.fixture(scope="module")
def stored(serving_world, tmp_path_factory) -> Path:
    """serving_world's data in a store holding its briefs' days (as_of and 60 days back)."""
    store = tmp_path_factory.mktemp("store") / "store"
    day = serving_world.as_of.strftime("%Y-%m-%d")
    assert build(serving_world.data, store, "--as-of", day, "--every", "60d", "--back", "60d") == 0
    return store


def serve(serving_world, source: list, briefs: Path, out: Path, *more) -> int:
    return serving_main(
        [
            "--model",
            "models:/cs@champion",
            *[str(s) for s in source],
            "--briefs",
            str(briefs),
            "--out",
            str(out),
            "--tracking-uri",
            serving_world.tracking_uri,
            *[str(m) for m in more],
        ]
    )


# ------------------------------------------------------------------ snapshots


def test_snapshot_features_are_the_builders_in_every_category(serving_world):
    tables, history = serving_world.tables, serving_world.history
    as_of = serving_world.as_of
    snap = snapshot_frames(tables, as_of, data_categories(tables), history)
    assert snap.creators["creator_id"].is_unique
    for category in ("beauty", "food", "not-a-category-of-the-data"):
        key = category if category in data_categories(tables) else OTHER
        rows = snap.creators.merge(
            snap.categories[snap.categories["category"] == key], on=["market", "creator_id"]
        )
        requests = pd.DataFrame(
            {"creator_id": rows["creator_id"], "as_of": as_of, "category": category}
        ).assign(commission_rate=0.07)
        expected = build_features(tables, requests, history)
        got = rows.assign(commission_rate=0.07).reindex(columns=FEATURE_NAMES)
        pd.testing.assert_frame_equal(got, expected, check_exact=True)


def test_snapshot_ignores_the_future(serving_world):
    tables, as_of = serving_world.tables, serving_world.as_of
    cats = data_categories(tables)
    past = dict(tables)
    past["posts"] = tables["posts"][tables["posts"]["posted_at"] < as_of - 8 * DAY]
    later = tables["posts"][tables["posts"]["posted_at"] >= as_of - 8 * DAY]
    # the future changes (posts after as_of gone), the recent past stays as it was
    past["posts"] = pd.concat([past["posts"], later[later["posted_at"] < as_of]])
    a = snapshot_frames(tables, as_of, cats)
    b = snapshot_frames(past, as_of, cats)
    pd.testing.assert_frame_equal(a.creators, b.creators, check_exact=True)
    pd.testing.assert_frame_equal(a.categories, b.categories, check_exact=True)
    pd.testing.assert_frame_equal(a.targets, b.targets, check_exact=True)


def test_requested_days_step_back_from_as_of():
    day = pd.Timestamp("2025-06-30", tz="UTC")
    assert requested_days(day, None, 180) == [day]
    days = requested_days(day, 30, 180)
    assert len(days) == 7 and days[-1] == day and days[0] == day - 180 * DAY


# ------------------------------------------------------------------ serving from the store


def test_store_serves_the_partner_lists_of_the_raw_data(serving_world, stored, tmp_path):
    briefs = serving_world.briefs_csv
    from_data, from_store = tmp_path / "data.parquet", tmp_path / "store.parquet"
    drift_data, drift_store = tmp_path / "drift-data.csv", tmp_path / "drift-store.csv"
    assert (
        serve(
            serving_world,
            ["--data", serving_world.data],
            briefs,
            from_data,
            "--drift-report",
            drift_data,
        )
        == 0
    )
    assert (
        serve(serving_world, ["--store", stored], briefs, from_store, "--drift-report", drift_store)
        == 0
    )
    expected, got = pd.read_parquet(from_data), pd.read_parquet(from_store)
    assert len(expected) > 0 and expected["brief_id"].nunique() == 4
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    pd.testing.assert_frame_equal(pd.read_csv(drift_store), pd.read_csv(drift_data))


def test_store_min_followers_and_unknown_category_match_the_raw_data(
    serving_world, stored, tmp_path
):
    day = serving_world.as_of.strftime("%Y-%m-%d")
    briefs = write_briefs(
        tmp_path,
        "brief_id,market,category,as_of,top_k,min_followers,commission_rate\n"
        f"a,ID,beauty,{day},30,5000,0.1\n"
        f"b,ID,no-such-category,{day},10,,\n"
        f"c,VN,food,{day}T00:00:00Z,1000,0,0.3\n",
    )
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    assert serve(serving_world, ["--data", serving_world.data], briefs, a) == 0
    assert serve(serving_world, ["--store", stored], briefs, b) == 0
    pd.testing.assert_frame_equal(pd.read_csv(b), pd.read_csv(a), check_exact=True)


def test_brief_on_a_day_not_stored_is_one_line(serving_world, stored, tmp_path, capsys):
    later = (serving_world.as_of + 3 * DAY).strftime("%Y-%m-%d")
    briefs = write_briefs(tmp_path, f"brief_id,market,category,as_of\nx,ID,beauty,{later}\n")
    out = tmp_path / "out.csv"
    assert serve(serving_world, ["--store", stored], briefs, out) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: brief x: as_of ") and "nearest stored: " in err[-1]
    assert serving_world.as_of.strftime("%Y-%m-%d") in err[-1]
    assert not out.exists()


def test_creator_pages_read_every_stored_day(serving_world, stored):
    store = open_store(stored)
    directory = creator_directory(store)
    pairs, features, indices = candidates(store, store.days[-1], "ID", "beauty")
    creator = pairs["creator_id"].iloc[0]
    assert directory.loc[creator, "market"] == "ID"
    rows = creator_days(store, creator, "ID", "beauty")
    assert list(rows["day"].dt.strftime("%Y-%m-%d")) == [
        d
        for d in store.days
        if creator in set(candidates(store, d, "ID", "beauty")[0]["creator_id"])
    ]
    last = rows.iloc[-1]
    np.testing.assert_array_equal(
        last[list(FEATURE_NAMES)].to_numpy(float), features.iloc[0].to_numpy(float)
    )
    assert stored_day(store, pd.Timestamp(store.days[0])) == store.days[0]


# ------------------------------------------------------------------ safety


def test_a_new_day_leaves_the_others_untouched(serving_world, tmp_path):
    store = tmp_path / "store"
    day = serving_world.as_of.strftime("%Y-%m-%d")
    assert build(serving_world.data, store, "--as-of", day) == 0
    files = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in store.rglob("*.parquet")}
    earlier = (serving_world.as_of - 30 * DAY).strftime("%Y-%m-%d")
    assert build(serving_world.data, store, "--as-of", earlier) == 0
    assert all((p.stat().st_mtime_ns, p.read_bytes()) == v for p, v in files.items())
    assert open_store(store).days == [earlier, day]
    assert build(serving_world.data, store, "--as-of", day, "--keep", "1") == 0  # skips, drops
    assert open_store(store).days == [day]
    assert not layout.day_folder(store, earlier).exists()


def test_a_failed_build_leaves_the_store_as_it_was(serving_world, tmp_path, monkeypatch):
    store = tmp_path / "store"
    day = serving_world.as_of.strftime("%Y-%m-%d")
    assert build(serving_world.data, store, "--as-of", day) == 0
    before = sorted(p.relative_to(store) for p in store.rglob("*") if p.name != ".lock")
    manifest = (store / layout.MANIFEST).read_text()
    written = []

    def fail_on_third_market(folder, market, frames):
        if len(written) == 2:
            raise OSError("disk full")
        written.append(market)
        return original(folder, market, frames)

    original = layout.write_market
    monkeypatch.setattr("store.build.write_market", fail_on_third_market)
    earlier = (serving_world.as_of - 30 * DAY).strftime("%Y-%m-%d")
    with pytest.raises(OSError, match="disk full"):
        build(serving_world.data, store, "--as-of", earlier)
    after = sorted(p.relative_to(store) for p in store.rglob("*") if p.name != ".lock")
    assert after == before and (store / layout.MANIFEST).read_text() == manifest


def test_a_damaged_store_is_one_line_at_open(serving_world, stored, tmp_path, capsys):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(stored, copy)
    assert store_main(["info", str(copy)]) == 0
    assert "candidates" in capsys.readouterr().out
    manifest = json.loads((copy / layout.MANIFEST).read_text())
    day = sorted(manifest["days"])[0]
    manifest["days"][day]["markets"]["ID"]["creators"] += 1
    (copy / layout.MANIFEST).write_text(json.dumps(manifest))
    assert store_main(["info", str(copy)]) == 1
    assert "rows, the manifest says" in capsys.readouterr().err
    manifest["days"][day]["markets"]["ID"]["creators"] -= 1
    manifest["registry_digest"] = "0123456789abcdef"
    (copy / layout.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(layout.StoreError, match="another feature registry"):
        open_store(copy)
    manifest["registry_digest"] = layout.registry_digest()
    (copy / layout.MANIFEST).write_text(json.dumps(manifest))
    os.remove(layout.market_file(copy, day, "VN", "categories"))
    briefs = write_briefs(tmp_path, f"brief_id,market,category,as_of\nx,ID,beauty,{day}\n")
    out = tmp_path / "out.csv"
    assert serve(serving_world, ["--store", copy], briefs, out) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "categories.parquet" in err[-1]
    assert not out.exists()
    assert store_main(["info", str(tmp_path / "nowhere")]) == 1
    assert "not a snapshot store" in capsys.readouterr().err


def test_build_rejects_bad_flags_in_one_line(serving_world, tmp_path, capsys):
    for flags, message in (
        (["--as-of", "2025-01-01T05:00"], "is not a day"),
        (["--every", "monthly"], "must be a number of days"),
        (["--keep", "0"], "--keep must be at least 1"),
    ):
        assert build(serving_world.data, tmp_path / "s", *flags) == 1
        assert message in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_a_reader_sees_the_days_of_its_manifest_while_a_build_adds_one(serving_world, tmp_path):
    store = tmp_path / "store"
    day = serving_world.as_of.strftime("%Y-%m-%d")
    assert build(serving_world.data, store, "--as-of", day) == 0
    reader = open_store(store)
    before = candidates(reader, day, "ID", "beauty")[0]
    earlier = (serving_world.as_of - 30 * DAY).strftime("%Y-%m-%d")
    assert build(serving_world.data, store, "--as-of", earlier) == 0
    assert reader.days == [day]  # what it opened, whole
    pd.testing.assert_frame_equal(candidates(reader, day, "ID", "beauty")[0], before)
    assert open_store(store).days == [earlier, day]
    assert not [p for p in store.iterdir() if p.name.startswith(".day=")]  # no staging left
