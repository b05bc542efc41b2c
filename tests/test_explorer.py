"""The explorer: partner lists equal to ``python -m serving``, creator profiles, bad input,
escaping, the access token, the command, and a real browser on a real server.

One small simulated marketplace (one creator renamed ``<script>alert(1)</script>``) and
one quickly trained, logged and registered model serve every test (module scope).
"""

from __future__ import annotations

import html
import os
import re
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd
import pytest

from commands.serving import main as serving_main
from explorer.__main__ import main as explorer_main
from explorer.core import MAX_TOP_K
from serving.partner_list import PARTNER_COLUMNS
from tests.worlds import EVIL_ID, SORT_COLUMN, TOKEN, ExplorerWorld, brief_json

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


def serving_output(explorer_world: ExplorerWorld, brief: dict, out: Path) -> Path:
    briefs = out.with_name("briefs.csv")
    pd.DataFrame([brief]).to_csv(briefs, index=False)
    code = serving_main(
        [
            "--model",
            "models:/cs@champion",
            "--data",
            str(explorer_world.data),
            "--briefs",
            str(briefs),
            "--out",
            str(out),
            "--tracking-uri",
            explorer_world.tracking_uri,
        ]
    )
    assert code == 0
    return out


# ------------------------------------------------------------------ partner lists


@pytest.mark.parametrize(
    "day, min_followers",  # min_followers 0: the stored indices; else computed among the rest
    [(-1, 0), (-1, 500), (0, 0)],
)
def test_api_rows_are_python_m_serving_rows(explorer_world, tmp_path, day, min_followers):
    as_of = explorer_world.explorer.days[day]
    brief = brief_json(
        explorer_world, as_of=as_of.isoformat(), min_followers=min_followers, commission_rate=0.12
    )
    expected = pd.read_parquet(serving_output(explorer_world, brief, tmp_path / "list.parquet"))
    answer = explorer_world.client.post("/api/partner-lists", json=brief)
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


def test_csv_download_is_byte_for_byte_the_serving_csv(explorer_world, tmp_path):
    brief = brief_json(explorer_world, top_k=40)
    del brief["as_of"]  # the default: the data's last day
    expected = serving_output(
        explorer_world,
        {**brief, "as_of": explorer_world.explorer.last_day.isoformat()},
        tmp_path / "list.csv",
    ).read_bytes()
    answer = explorer_world.client.get("/partners.csv", params=brief)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert "b1.csv" in answer.headers["content-disposition"]
    assert answer.content == expected


def test_health_names_the_model_and_counts_the_data(explorer_world):
    body = explorer_world.client.get("/api/health").json()
    assert body["status"] == "ok" and body["model_version"] == "models:/cs/1"
    assert body["data"]["creators"] == 500 and body["data"]["markets"] >= 1


def _shown_creators(page: str) -> list[str]:
    return [html.unescape(m) for m in re.findall(r'class="creator">([^<]*)</a>', page)]


def test_partner_page_sorts_by_an_index_and_filters_by_tier(explorer_world):
    brief = brief_json(explorer_world, top_k=60)
    rows = pd.DataFrame(explorer_world.client.post("/api/partner-lists", json=brief).json()["rows"])
    page = explorer_world.client.get(
        "/partners", params={**brief, "sort": SORT_COLUMN, "order": "desc"}
    )
    assert page.status_code == 200
    by_sales = rows.sort_values(
        [SORT_COLUMN, "rank"], ascending=[False, True], na_position="last", kind="stable"
    )
    assert _shown_creators(page.text) == list(by_sales["creator_id"])
    by_rank = explorer_world.client.get("/partners", params=brief).text
    assert _shown_creators(by_rank) == list(rows["creator_id"])
    tiers = re.findall(r'<td class="text">([^<]*)</td>\s*<td><strong>', by_rank)
    tier = html.unescape(pd.Series(tiers).value_counts().index[0])
    filtered = explorer_world.client.get("/partners", params={**brief, "tier": tier}).text
    kept = [
        c for c, t in zip(_shown_creators(by_rank), tiers, strict=True) if html.unescape(t) == tier
    ]
    assert _shown_creators(filtered) == kept and 0 < len(kept) < len(rows)


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "change, field",
    [
        ({"market": "XX"}, "market"),
        ({"market": "idn"}, "market"),
        ({"category": "spaceships"}, "category"),
        ({"as_of": "2001-01-01"}, "as_of"),
        ({"as_of": "not a date"}, "as_of"),
        ({"top_k": 0}, "top_k"),
        ({"top_k": MAX_TOP_K + 1}, "top_k"),
        ({"top_k": "many"}, "top_k"),
        ({"min_followers": -1}, "min_followers"),
        ({"min_followers": 2.5}, "min_followers"),
        ({"commission_rate": 1.5}, "commission_rate"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_briefs_are_422_with_one_line_naming_the_field(explorer_world, change, field):
    answer = explorer_world.client.post(
        "/api/partner-lists", json=brief_json(explorer_world, **change)
    )
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and "Traceback" not in detail
    assert detail.startswith(f"{field}:")
    page = explorer_world.client.get("/partners", params=brief_json(explorer_world, **change))
    assert page.status_code == 422 and "Traceback" not in page.text


def test_null_optional_fields_are_the_same_as_leaving_them_out(explorer_world):
    """A pandas client sends null for a missing value (NaN); every optional field takes
    its default then, and required fields still may not be null."""
    optional = ("brief_id", "as_of", "top_k", "min_followers", "commission_rate")
    bare = {k: v for k, v in brief_json(explorer_world).items() if k not in optional}
    left_out = explorer_world.client.post("/api/partner-lists", json=bare)
    assert left_out.status_code == 200, left_out.text
    nulls = explorer_world.client.post(
        "/api/partner-lists", json={**bare, **dict.fromkeys(optional)}
    )
    assert nulls.status_code == 200, nulls.text
    assert nulls.json() == left_out.json()
    assert len(nulls.json()["rows"]) == min(50, nulls.json()["candidates"])
    for required in ("market", "category"):
        answer = explorer_world.client.post("/api/partner-lists", json={**bare, required: None})
        assert answer.status_code == 422 and answer.json()["detail"].startswith(f"{required}:")


@pytest.mark.parametrize("body", ["{not json", "", "[1, 2]", '{"market": "ID"}'])
def test_malformed_json_is_422(explorer_world, body):
    answer = explorer_world.client.post(
        "/api/partner-lists", content=body, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and ":" in detail


@pytest.mark.parametrize("params, field", [({"sort": "bogus"}, "sort"), ({"tier": "huge"}, "tier")])
def test_unknown_sort_column_or_tier_is_422(explorer_world, params, field):
    page = explorer_world.client.get("/partners", params={**brief_json(explorer_world), **params})
    assert page.status_code == 422
    assert f"{field}: unknown" in page.text


def test_unknown_creator_is_404_and_bad_creator_query_is_422(explorer_world):
    assert explorer_world.client.get("/api/creators/nobody").status_code == 404
    assert explorer_world.client.get("/creators/nobody").status_code == 404
    some = explorer_world.explorer.creators.index[0]
    bad = explorer_world.client.get(f"/api/creators/{some}", params={"category": "spaceships"})
    assert bad.status_code == 422 and bad.json()["detail"].startswith("category:")
    bad = explorer_world.client.get(f"/api/creators/{some}", params={"as_of": "1999-01-01"})
    assert bad.status_code == 422 and bad.json()["detail"].startswith("as_of:")


def test_a_day_that_is_not_stored_names_the_nearest_stored_days(explorer_world):
    days = explorer_world.explorer.days
    between = days[-2] + pd.Timedelta(days=3)
    answer = explorer_world.client.post(
        "/api/partner-lists", json=brief_json(explorer_world, as_of=between.isoformat())
    )
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert detail.startswith("as_of: not a stored day")
    assert days[-2].date().isoformat() in detail and days[-1].date().isoformat() in detail


def test_text_from_the_data_is_escaped(explorer_world):
    page = explorer_world.client.get(
        "/partners", params=brief_json(explorer_world, top_k=MAX_TOP_K)
    ).text
    assert EVIL_ID in _shown_creators(page)
    assert EVIL_ID not in page and html.escape(EVIL_ID) in page
    profile = explorer_world.client.get(f"/creators/{quote(EVIL_ID, safe='')}")
    assert profile.status_code == 200
    assert EVIL_ID not in profile.text and html.escape(EVIL_ID) in profile.text
    assert (
        explorer_world.client.get(f"/api/creators/{quote(EVIL_ID, safe='')}").json()["creator_id"]
        == EVIL_ID
    )


# ------------------------------------------------------------------ the access token


def test_with_a_token_every_request_without_it_is_401(explorer_world):
    from fastapi.testclient import TestClient

    from explorer.app import create_app

    client = TestClient(create_app(explorer_world.explorer, token=TOKEN))
    for path in ("/", "/api/health", "/docs", "/openapi.json", "/partners", "/creators/x"):
        assert client.get(path).status_code == 401, path
        assert client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.post("/api/partner-lists", json=brief_json(explorer_world)).status_code == 401
    assert (
        client.get("/api/health", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    )
    assert (
        client.post(
            "/api/partner-lists",
            json=brief_json(explorer_world),
            headers={"Authorization": f"Bearer {TOKEN}"},
        ).status_code
        == 200
    )
    browser = TestClient(create_app(explorer_world.explorer, token=TOKEN))
    assert browser.get("/", params={"token": TOKEN}).status_code == 200
    assert browser.get("/api/health").status_code == 200  # the cookie it set


def test_command_refuses_a_public_address_without_a_token(explorer_world, capsys, monkeypatch):
    monkeypatch.delenv("EXPLORER_TOKEN", raising=False)
    code = explorer_main(
        [
            "--model",
            "models:/cs@champion",
            "--data",
            str(explorer_world.data),
            "--host",
            "0.0.0.0",
            "--tracking-uri",
            explorer_world.tracking_uri,
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and err.startswith("error: --host 0.0.0.0")


def test_command_bad_model_or_data_is_one_line(explorer_world, capsys, tmp_path):
    code = explorer_main(
        [
            "--model",
            "models:/nope@champion",
            "--data",
            str(explorer_world.data),
            "--tracking-uri",
            explorer_world.tracking_uri,
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("error: model models:/nope@champion")
    code = explorer_main(
        [
            "--model",
            "models:/cs@champion",
            "--data",
            str(tmp_path / "none"),
            "--tracking-uri",
            explorer_world.tracking_uri,
        ]
    )
    assert code == 1 and "Traceback" not in capsys.readouterr().err


def test_command_refuses_a_damaged_store_at_start_up(explorer_world, capsys, tmp_path):
    import json
    import shutil

    from store.layout import MANIFEST, market_file

    store = tmp_path / "store"
    shutil.copytree(explorer_world.explorer.store.path, store)
    day = explorer_world.explorer.store.days[-1]
    os.remove(market_file(store, day, explorer_world.market, "targets"))
    args = ["--model", "models:/cs@champion", "--store", str(store)]
    args += ["--tracking-uri", explorer_world.tracking_uri]
    assert explorer_main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "targets.parquet" in err[0]
    manifest = json.loads((store / MANIFEST).read_text())
    del manifest["days"][day]  # the manifest no longer names the damaged day: it opens
    manifest["registry_digest"] = "another"
    (store / MANIFEST).write_text(json.dumps(manifest))
    assert explorer_main(args) == 1
    assert "another feature registry" in capsys.readouterr().err
