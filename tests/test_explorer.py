"""The explorer: partner lists equal to ``python -m serving``, creator profiles, bad input,
escaping, the access token, the command, and a real browser on a real server.

One small simulated marketplace (one creator renamed ``<script>alert(1)</script>``) and
one quickly trained, logged and registered model serve every test (module scope).
"""

from __future__ import annotations

import dataclasses
import html
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

import mlflow
import numpy as np
import pandas as pd
import pytest

from explorer.__main__ import main as explorer_main
from explorer.core import MAX_TOP_K, explorer_from
from explorer.creators import moved_features
from features.indices import index_name
from features.registry import FAMILIES, features_of
from marketplace.io import write_tables
from marketplace.simulate import SimConfig, simulate
from marketplace.validate import load_valid_tables
from serving.__main__ import main as serving_main
from serving.model import load_model
from serving.partner_list import INDEX_COLUMNS, PARTNER_COLUMNS
from training.config import load_config
from training.model import CONTRIB_COLUMNS
from training.run import train
from training.tracking import log_training

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
EVIL_ID = "<script>alert(1)</script>"
TOKEN = "s3cret-token"
SORT_COLUMN = index_name("sales") if "sales" in FAMILIES else INDEX_COLUMNS[0]


@dataclasses.dataclass
class World:
    root: Path
    data: Path
    tracking_uri: str
    market: str
    category: str
    as_of: pd.Timestamp
    explorer: object
    client: object


def _rename_creator(tables: dict, old: str, new: str) -> dict:
    """Every table with creator ``old`` called ``new``."""
    out = {}
    for name, frame in tables.items():
        if "creator_id" in frame.columns:
            frame = frame.assign(creator_id=frame["creator_id"].mask(frame["creator_id"] == old, new))
        out[name] = frame
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    from fastapi.testclient import TestClient

    from explorer.app import create_app

    root = tmp_path_factory.mktemp("explorer")
    simulated, _ = simulate(SimConfig(creators=500, days=240, seed=11))
    market = simulated["creators"]["market"].value_counts().index[0]
    in_market = simulated["creators"].loc[simulated["creators"]["market"] == market, "creator_id"]
    busiest = simulated["posts"].loc[simulated["posts"]["creator_id"].isin(in_market),
                                     "creator_id"].value_counts().index[0]
    data = root / "data"
    write_tables(_rename_creator(simulated, busiest, EVIL_ID), data)
    tables = load_valid_tables(data)
    cfg = dataclasses.replace(load_config(), max_rounds=20, objectives=("lambdarank",),
                              num_threads=1)
    uri = f"sqlite:///{root}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    mlflow.create_experiment("test", artifact_location=(root / "artifacts").as_uri())
    log_training(train(tables, cfg), uri, "test", register="cs")
    scorer, version = load_model("models:/cs@champion", uri)
    ex = explorer_from(tables, scorer, version)
    category = tables["campaigns"].loc[tables["campaigns"]["market"] == market,
                                       "category"].value_counts().index[0]
    return World(root=root, data=data, tracking_uri=uri, market=market, category=category,
                 as_of=ex.last_day - pd.Timedelta(days=3), explorer=ex,
                 client=TestClient(create_app(ex)))


def brief_json(world: World, **change) -> dict:
    return {"brief_id": "b1", "market": world.market, "category": world.category,
            "as_of": world.as_of.isoformat(), "top_k": 25, **change}


def serving_output(world: World, brief: dict, out: Path) -> Path:
    briefs = out.with_name("briefs.csv")
    pd.DataFrame([brief]).to_csv(briefs, index=False)
    code = serving_main(["--model", "models:/cs@champion", "--data", str(world.data),
                         "--briefs", str(briefs), "--out", str(out),
                         "--tracking-uri", world.tracking_uri])
    assert code == 0
    return out


# ------------------------------------------------------------------ partner lists


@pytest.mark.parametrize("days_back", [0, 3])   # 0: the ready candidates of the last day
def test_api_rows_are_python_m_serving_rows(world, tmp_path, days_back):
    as_of = world.explorer.last_day - pd.Timedelta(days=days_back)
    brief = brief_json(world, as_of=as_of.isoformat(), min_followers=500, commission_rate=0.12)
    expected = pd.read_parquet(serving_output(world, brief, tmp_path / "list.parquet"))
    answer = world.client.post("/api/partner-lists", json=brief)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model_version"] == "models:/cs/1" and body["brief"]["top_k"] == 25
    assert body["candidates"] > 25
    assert body["columns"] == list(PARTNER_COLUMNS)
    rows = pd.DataFrame(body["rows"], columns=list(PARTNER_COLUMNS))
    assert len(rows) == len(expected) == 25
    for column in PARTNER_COLUMNS:
        got, want = rows[column].to_numpy(), expected[column].to_numpy()
        if expected[column].dtype.kind == "f":
            np.testing.assert_array_equal(got.astype(float), want, err_msg=column)
        else:
            assert list(got) == list(want), column


def test_csv_download_is_byte_for_byte_the_serving_csv(world, tmp_path):
    brief = brief_json(world, top_k=40)
    del brief["as_of"]       # the default: the data's last day
    expected = serving_output(world, {**brief, "as_of": world.explorer.last_day.isoformat()},
                              tmp_path / "list.csv").read_bytes()
    answer = world.client.get("/partners.csv", params=brief)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert "b1.csv" in answer.headers["content-disposition"]
    assert answer.content == expected


def test_health_names_the_model_and_counts_the_data(world):
    body = world.client.get("/api/health").json()
    assert body["status"] == "ok" and body["model_version"] == "models:/cs/1"
    assert body["data"]["creators"] == 500 and body["data"]["markets"] >= 1


def _shown_creators(page: str) -> list[str]:
    return [html.unescape(m) for m in re.findall(r'class="creator">([^<]*)</a>', page)]


def test_partner_page_sorts_by_an_index_and_filters_by_tier(world):
    brief = brief_json(world, top_k=60)
    rows = pd.DataFrame(world.client.post("/api/partner-lists", json=brief).json()["rows"])
    page = world.client.get("/partners", params={**brief, "sort": SORT_COLUMN, "order": "desc"})
    assert page.status_code == 200
    by_sales = rows.sort_values([SORT_COLUMN, "rank"], ascending=[False, True],
                                na_position="last", kind="stable")
    assert _shown_creators(page.text) == list(by_sales["creator_id"])
    by_rank = world.client.get("/partners", params=brief).text
    assert _shown_creators(by_rank) == list(rows["creator_id"])
    tiers = re.findall(r'<td class="text">([^<]*)</td>\s*<td><strong>', by_rank)
    tier = html.unescape(pd.Series(tiers).value_counts().index[0])
    filtered = world.client.get("/partners", params={**brief, "tier": tier}).text
    kept = [c for c, t in zip(_shown_creators(by_rank), tiers, strict=True) if html.unescape(t) == tier]
    assert _shown_creators(filtered) == kept and 0 < len(kept) < len(rows)


# ------------------------------------------------------------------ creator profiles


def test_creator_profile_agrees_with_the_partner_list(world):
    brief = brief_json(world, top_k=5)
    row = world.client.post("/api/partner-lists", json=brief).json()["rows"][2]
    answer = world.client.get(f"/api/creators/{quote(row['creator_id'], safe='')}",
                              params={"category": world.category, "as_of": brief["as_of"]})
    assert answer.status_code == 200, answer.text
    p = answer.json()
    assert p["is_candidate"] and p["market"] == world.market
    assert p["score"] == pytest.approx(row["score"], rel=1e-12)
    assert p["raw_score"] == pytest.approx(row["raw_score"], rel=1e-12)
    for c in INDEX_COLUMNS:
        if row[c] is None:
            assert p["indices"][c] is None
        else:
            assert p["indices"][c] == pytest.approx(row[c], rel=1e-12)
    for c in CONTRIB_COLUMNS:
        assert p["contributions"][c] == pytest.approx(row[c], rel=1e-9, abs=1e-12)
    assert sum(p["contributions"].values()) == pytest.approx(p["raw_score"], abs=1e-9)
    steps = p["waterfall"]
    assert steps[0]["step"] == "base" and steps[-1]["step"] == "raw_score"
    assert steps[-2]["end"] == pytest.approx(p["raw_score"], abs=1e-9)
    assert sorted(c["family"] for c in p["counterfactuals"]) == sorted(FAMILIES)
    for c in p["counterfactuals"]:
        assert c["change"] == pytest.approx(c["score"] - p["score"], abs=1e-9)
    assert 1 < len(p["months"]) <= 6 and p["months"][-1]["score"] == pytest.approx(p["score"])
    assert [m["as_of"] for m in p["months"]] == sorted(m["as_of"] for m in p["months"])


def test_counterfactual_moves_only_what_is_worse_for_the_brand():
    family = next(f for f in FAMILIES if {x.direction for x in features_of(f)} >= {1, -1})
    names = [x.name for x in features_of(family)]
    directions = {x.name: x.direction for x in features_of(family)}
    targets = pd.Series({n: 10.0 for n in names})
    row = pd.Series({n: 5.0 for n in names} | {"other_feature": 1.0})
    moved = moved_features(row, family, targets)
    for n in names:   # 5 is worse than 10 when higher is better, better when lower is
        assert moved[n] == (5.0 if directions[n] < 0 else 10.0)
    row[names[0]] = np.nan
    assert moved_features(row, family, targets)[names[0]] == 10.0
    assert moved["other_feature"] == 1.0


def test_counterfactual_to_own_values_changes_nothing(world):
    from explorer.creators import counterfactuals

    ex = world.explorer
    brief = brief_json(world, top_k=1)
    row = world.client.post("/api/partner-lists", json=brief).json()["rows"][0]
    profile = world.client.get(f"/api/creators/{quote(row['creator_id'], safe='')}",
                               params={"category": world.category,
                                       "as_of": brief["as_of"]}).json()
    features = pd.Series(profile["features"], dtype=float)
    same = counterfactuals(ex.scorer, features, features)
    assert all(c["change"] == pytest.approx(0.0, abs=1e-12) for c in same)


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize("change, field", [
    ({"market": "XX"}, "market"),
    ({"market": "idn"}, "market"),
    ({"category": "spaceships"}, "category"),
    ({"as_of": "2001-01-01"}, "as_of"),
    ({"as_of": "not a date"}, "as_of"),
    ({"top_k": 0}, "top_k"),
    ({"top_k": MAX_TOP_K + 1}, "top_k"),
    ({"top_k": "many"}, "top_k"),
    ({"min_followers": -1}, "min_followers"),
    ({"commission_rate": 1.5}, "commission_rate"),
    ({"colour": "red"}, "colour"),
])
def test_bad_briefs_are_422_with_one_line_naming_the_field(world, change, field):
    answer = world.client.post("/api/partner-lists", json=brief_json(world, **change))
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and "Traceback" not in detail
    assert detail.startswith(f"{field}:")
    page = world.client.get("/partners", params=brief_json(world, **change))
    assert page.status_code == 422 and "Traceback" not in page.text


@pytest.mark.parametrize("body", ["{not json", "", "[1, 2]", '{"market": "ID"}'])
def test_malformed_json_is_422(world, body):
    answer = world.client.post("/api/partner-lists", content=body,
                               headers={"Content-Type": "application/json"})
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and ":" in detail


@pytest.mark.parametrize("params, field", [
    ({"sort": "bogus"}, "sort"), ({"tier": "huge"}, "tier")])
def test_unknown_sort_column_or_tier_is_422(world, params, field):
    page = world.client.get("/partners", params={**brief_json(world), **params})
    assert page.status_code == 422
    assert f"{field}: unknown" in page.text


def test_unknown_creator_is_404_and_bad_creator_query_is_422(world):
    assert world.client.get("/api/creators/nobody").status_code == 404
    assert world.client.get("/creators/nobody").status_code == 404
    some = world.explorer.creators.index[0]
    bad = world.client.get(f"/api/creators/{some}", params={"category": "spaceships"})
    assert bad.status_code == 422 and bad.json()["detail"].startswith("category:")
    bad = world.client.get(f"/api/creators/{some}", params={"as_of": "1999-01-01"})
    assert bad.status_code == 422 and bad.json()["detail"].startswith("as_of:")


def test_text_from_the_data_is_escaped(world):
    page = world.client.get("/partners", params=brief_json(world, top_k=MAX_TOP_K)).text
    assert EVIL_ID in _shown_creators(page)
    assert EVIL_ID not in page and html.escape(EVIL_ID) in page
    profile = world.client.get(f"/creators/{quote(EVIL_ID, safe='')}")
    assert profile.status_code == 200
    assert EVIL_ID not in profile.text and html.escape(EVIL_ID) in profile.text
    assert world.client.get(f"/api/creators/{quote(EVIL_ID, safe='')}").json()["creator_id"] \
        == EVIL_ID


# ------------------------------------------------------------------ the access token


def test_with_a_token_every_request_without_it_is_401(world):
    from fastapi.testclient import TestClient

    from explorer.app import create_app

    client = TestClient(create_app(world.explorer, token=TOKEN))
    for path in ("/", "/api/health", "/docs", "/openapi.json", "/partners", "/creators/x"):
        assert client.get(path).status_code == 401, path
        assert client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.post("/api/partner-lists", json=brief_json(world)).status_code == 401
    assert client.get("/api/health", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert client.post("/api/partner-lists", json=brief_json(world),
                       headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    browser = TestClient(create_app(world.explorer, token=TOKEN))
    assert browser.get("/", params={"token": TOKEN}).status_code == 200
    assert browser.get("/api/health").status_code == 200   # the cookie it set


def test_command_refuses_a_public_address_without_a_token(world, capsys, monkeypatch):
    monkeypatch.delenv("EXPLORER_TOKEN", raising=False)
    code = explorer_main(["--model", "models:/cs@champion", "--data", str(world.data),
                          "--host", "0.0.0.0", "--tracking-uri", world.tracking_uri])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and err.startswith("error: --host 0.0.0.0")


def test_command_bad_model_or_data_is_one_line(world, capsys, tmp_path):
    code = explorer_main(["--model", "models:/nope@champion", "--data", str(world.data),
                          "--tracking-uri", world.tracking_uri])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("error: model models:/nope@champion")
    code = explorer_main(["--model", "models:/cs@champion", "--data", str(tmp_path / "none"),
                          "--tracking-uri", world.tracking_uri])
    assert code == 1 and "Traceback" not in capsys.readouterr().err


# ------------------------------------------------------------------ a real server


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, token: str | None = None) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"}
                                     if token else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code
    except urllib.error.URLError:
        return 0            # not listening yet


@pytest.fixture(scope="module")
def server(world):
    """``python -m explorer`` on a free 127.0.0.1 port with a token; stopped afterwards."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "explorer", "--model", "models:/cs@champion", "--data",
         str(world.data), "--port", str(port), "--tracking-uri", world.tracking_uri],
        env={**os.environ, "EXPLORER_TOKEN": TOKEN}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while _get(f"{base}/api/health", TOKEN) != 200:
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"explorer did not start: {process.stdout.read()}")
        time.sleep(0.3)
    yield base
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.mark.slow
def test_python_dash_m_explorer_serves_with_its_token(server):
    assert _get(f"{server}/api/health") == 401
    assert _get(f"{server}/api/health", TOKEN) == 200
    assert _get(f"{server}/docs", TOKEN) == 200


def _chromium() -> str | None:
    return next((path for path in (shutil.which(name) for name in
                                   ("chromium", "chromium-browser", "google-chrome")) if path),
                None)


@pytest.mark.slow
def test_a_real_browser_submits_a_brief_sorts_and_opens_a_creator(world, server, tmp_path):
    """Headless Chromium (Debian's, driven by Playwright) on the running server; a
    screenshot of each page is saved under the test's folder."""
    chromium = _chromium()
    if chromium is None:
        pytest.skip("no chromium found (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{server}/?token={TOKEN}")
            page.select_option("select[name=market]", world.market)
            page.select_option("select[name=category]", world.category)
            page.fill("input[name=top_k]", "30")
            page.screenshot(path=tmp_path / "form.png", full_page=True)
            page.click("#brief-form button[type=submit]")
            page.wait_for_selector("#partners")
            ranks = page.locator("#partners tbody tr td:first-child").all_inner_texts()
            assert ranks == [str(r) for r in range(1, len(ranks) + 1)] and len(ranks) == 30
            page.click(f"a[data-column={SORT_COLUMN}]")
            page.wait_for_selector(f"th.sorted a[data-column={SORT_COLUMN}]")
            nth = 6 + INDEX_COLUMNS.index(SORT_COLUMN)   # rank, creator, followers, tier, score
            sales = page.locator(f"#partners tbody tr td:nth-child({nth})").all_inner_texts()
            values = [float(s.replace("–", "nan")) for s in sales]
            known = [v for v in values if not np.isnan(v)]
            assert known == sorted(known, reverse=True) and len(known) > 1
            page.screenshot(path=tmp_path / "partners.png", full_page=True)
            first = page.locator("a.creator").first.inner_text()
            page.locator("a.creator").first.click()
            page.wait_for_selector("#waterfall")
            assert page.locator("#creator-id").inner_text() == first
            assert page.locator("#counterfactuals tbody tr").count() == len(FAMILIES)
            page.screenshot(path=tmp_path / "creator.png", full_page=True)
        finally:
            browser.close()
    for name in ("form", "partners", "creator"):
        assert (tmp_path / f"{name}.png").stat().st_size > 10_000
