"""python -m explorer as a real server: its token, and a real browser (Debian's chromium,
driven by Playwright) that submits a brief, sorts and opens a creator."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from features.registry import FAMILIES
from serving.partner_list import INDEX_COLUMNS
from tests.worlds import SORT_COLUMN, TOKEN

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, token: str | None = None) -> int:
    request = urllib.request.Request(
        url, headers={"Authorization": f"Bearer {token}"} if token else {}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code
    except urllib.error.URLError:
        return 0  # not listening yet


@pytest.fixture(scope="module")
def server(explorer_world):
    """``python -m explorer`` on a free 127.0.0.1 port with a token; stopped afterwards."""
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "explorer",
            "--model",
            "models:/cs@champion",
            "--data",
            str(explorer_world.data),
            "--port",
            str(port),
            "--tracking-uri",
            explorer_world.tracking_uri,
        ],
        env={**os.environ, "EXPLORER_TOKEN": TOKEN},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
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
    return next(
        (
            path
            for path in (
                shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")
            )
            if path
        ),
        None,
    )


@pytest.mark.slow
def test_a_real_browser_submits_a_brief_sorts_and_opens_a_creator(explorer_world, server, tmp_path):
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
            page.select_option("select[name=market]", explorer_world.market)
            page.select_option("select[name=category]", explorer_world.category)
            page.fill("input[name=top_k]", "30")
            page.screenshot(path=tmp_path / "form.png", full_page=True)
            page.click("#brief-form button[type=submit]")
            page.wait_for_selector("#partners")
            ranks = page.locator("#partners tbody tr td:first-child").all_inner_texts()
            assert ranks == [str(r) for r in range(1, len(ranks) + 1)] and len(ranks) == 30
            page.click(f"a[data-column={SORT_COLUMN}]")
            page.wait_for_selector(f"th.sorted a[data-column={SORT_COLUMN}]")
            # rank, top, creator, followers, tier, score, expected gmv, interval, chance of
            # a sale, then indices
            nth = 10 + INDEX_COLUMNS.index(SORT_COLUMN)
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


@pytest.mark.slow
def test_the_api_docs_work_with_the_network_off(server, tmp_path):
    """/docs in a real browser that may reach nothing but the explorer itself (every
    other request aborted, as offline or behind a firewall): Swagger UI lists the API's
    operations."""
    chromium = _chromium()
    if chromium is None:
        pytest.skip("no chromium found (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    elsewhere: list[str] = []

    def only_the_explorer(route):
        if route.request.url.startswith(server):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.route("**/*", only_the_explorer)
            page.goto(f"{server}/docs?token={TOKEN}")
            page.wait_for_selector(".opblock", timeout=30_000)
            paths = page.locator(".opblock-summary-path").all_inner_texts()
            page.screenshot(path=tmp_path / "docs.png", full_page=True)
        finally:
            browser.close()
    assert {"/api/health", "/api/partner-lists"} <= {p.strip() for p in paths}
    assert any(p.strip().startswith("/api/creators/") for p in paths)
    assert not elsewhere, f"the docs page asked for {elsewhere}"
