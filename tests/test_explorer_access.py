"""Partner access to the explorer: the key file and its command, scopes on every route,
the audit log and the per-key rate limit; in-process first, then against a real
``python -m explorer --keys`` server on 127.0.0.1 (one per module) with concurrent clients."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, unquote

import httpx
import pytest
from fastapi.testclient import TestClient

from explorer.__main__ import main as explorer_main
from explorer.access import (
    AuditLog,
    KeyFile,
    RateLimit,
    add_key,
    audit_files,
    audit_records,
    key_hash,
    list_keys,
    revoke_key,
)
from explorer.app import create_app
from explorer.guard import Access
from explorer.keys import audit_main, keys_main
from tests.worlds import EVIL_ID, ExplorerWorld

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")

SECRET = re.compile(r"^[A-Za-z0-9_-]{43}$")  # token_urlsafe(32)


# ------------------------------------------------------------------ the key file


def test_keys_command_adds_lists_and_revokes_storing_only_hashes(tmp_path, capsys):
    keys = tmp_path / "partners.keys"
    assert keys_main(["--keys", str(keys), "add", "acme-vn", "--markets", "VN,TH"]) == 0
    out, err = capsys.readouterr()
    secret = out.strip()
    assert out.count("\n") == 1 and SECRET.match(secret) and "acme-vn" in err
    assert keys.stat().st_mode & 0o777 == 0o600
    stored = keys.read_bytes()
    assert secret.encode() not in stored and key_hash(secret).encode() in stored
    assert (
        keys_main(
            ["--keys", str(keys), "add", "beauty-id", "--markets", "ID"]
            + [
                "--categories",
                "beauty,fashion",
            ]
        )
        == 0
    )
    other = capsys.readouterr().out.strip()
    assert SECRET.match(other) and other != secret
    assert keys_main(["--keys", str(keys), "list"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0].split("\t") == ["name", "markets", "categories", "created_at", "revoked_at"]
    rows = [line.split("\t") for line in listing[1:]]
    assert [r[:3] for r in rows] == [
        ["acme-vn", "TH, VN", "every"],
        ["beauty-id", "ID", "beauty, fashion"],
    ]
    assert all(r[4] == "-" for r in rows) and secret not in "\n".join(listing)
    assert keys_main(["--keys", str(keys), "revoke", "acme-vn"]) == 0
    capsys.readouterr()
    [acme, beauty] = list_keys(keys)
    assert acme.revoked_at is not None and acme.revoked_at >= acme.created_at
    assert beauty.revoked_at is None
    # a revoked name can be given a new key; a live one cannot get a second
    assert keys_main(["--keys", str(keys), "add", "acme-vn", "--markets", "VN"]) == 0
    assert SECRET.match(capsys.readouterr().out.strip())
    assert keys_main(["--keys", str(keys), "add", "acme-vn", "--markets", "VN"]) == 1
    assert (
        capsys.readouterr().err
        == "error: NAME: 'acme-vn' already has a live key (revoke it first)\n"
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        (["add", "x", "--markets", "vn"], "error: --markets: 'vn' does not match"),
        (["add", "x", "--markets", ","], "error: --markets: give at least one"),
        (["add", "x", "--markets", "VN", "--categories", "Beauty!"], "error: --categories:"),
        (["add", "a b", "--markets", "VN"], "error: NAME: 'a b' does not match"),
        (["revoke", "nobody"], "error: NAME: no live key called 'nobody'"),
    ],
)
def test_keys_command_bad_input_is_one_line(tmp_path, capsys, argv, message):
    keys = tmp_path / "k.keys"
    add_key(keys, "someone", frozenset({"VN"}), None)
    before = keys.read_bytes()
    assert keys_main(["--keys", str(keys), *argv]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith(message)
    assert captured.err.count("\n") == 1 and keys.read_bytes() == before


def test_keys_command_missing_or_foreign_file_is_one_line(tmp_path, capsys):
    assert keys_main(["--keys", str(tmp_path / "none.keys"), "list"]) == 1
    assert capsys.readouterr().err.startswith(f"error: {tmp_path / 'none.keys'}: no key file")
    foreign = tmp_path / "notes.txt"
    foreign.write_text("not a database, a grocery list\n" * 20)
    assert keys_main(["--keys", str(foreign), "list"]) == 1
    assert capsys.readouterr().err.startswith(f"error: {foreign}: not an explorer key file")
    assert (
        keys_main(["--keys", str(tmp_path / "no" / "k.keys"), "add", "x", "--markets", "VN"]) == 1
    )
    assert "no such directory" in capsys.readouterr().err


def test_key_file_lookup_sees_additions_and_revocations_at_once(tmp_path):
    path = tmp_path / "k.keys"
    first = add_key(path, "first", frozenset({"VN"}), None)
    keys = KeyFile(path)
    assert keys.lookup(first).name == "first" and keys.lookup(first).markets == {"VN"}
    assert keys.lookup("x" * 43) is None
    later = add_key(path, "later", frozenset({"ID", "TH"}), frozenset({"beauty"}))
    key = keys.lookup(later)
    assert key.markets == {"ID", "TH"} and key.categories == {"beauty"}
    assert key.reads_market("TH") and not key.reads_market("VN")
    assert key.reads_category("beauty") and not key.reads_category("home")
    revoke_key(path, "first")
    assert keys.lookup(first).revoked_at is not None and keys.lookup(later).revoked_at is None


def test_rate_limit_is_a_token_bucket_per_key():
    now = [100.0]
    limit = RateLimit(rate=2.0, burst=3, clock=lambda: now[0])
    assert [limit.wait("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limit.wait("a") == pytest.approx(0.5)  # one token comes back in 1/rate s
    assert limit.wait("b") == 0.0  # another key has its own bucket
    now[0] += 0.25
    assert limit.wait("a") == pytest.approx(0.25)
    now[0] += 0.25
    assert limit.wait("a") == 0.0 and limit.wait("a") > 0
    now[0] += 60  # refills to the burst, not beyond
    assert [limit.wait("a") for _ in range(4)][-1] > 0


# ------------------------------------------------------------------ audit


def test_audit_log_rotates_by_size_and_reads_back_oldest_first(tmp_path):
    path = tmp_path / "k.audit.jsonl"
    log = AuditLog(path, max_bytes=600, backups=3)
    for i in range(60):
        log.write(key="a" if i % 3 else "b", method="GET", path=f"/r/{i}", status=200)
    log.close()
    files = audit_files(path)
    assert [f.name for f in files] == [f"{path.name}.{n}" for n in (3, 2, 1)] + [path.name]
    assert all(f.stat().st_size <= 600 for f in files)
    kept = [int(r["path"].split("/")[-1]) for r in audit_records(path)]
    assert kept == list(range(60 - len(kept), 60)) and 4 < len(kept) < 60  # the newest, in order
    assert {r["key"] for r in audit_records(path, key="b")} == {"b"}
    last = list(audit_records(path))[-1]
    assert set(last) == {
        "time", "key", "method", "path", "market", "category", "creator_id", "status"
    }  # fmt: skip
    assert not list(audit_records(path, since=datetime.now(UTC) + timedelta(minutes=1)))


def test_audit_command_filters_by_key_and_time(tmp_path, capsys):
    keys = tmp_path / "k.keys"
    add_key(keys, "a", frozenset({"VN"}), None)
    log = AuditLog(tmp_path / "k.audit.jsonl")
    log.write(key="a", method="GET", path="/creators/c1", market="VN", creator_id="c1", status=200)
    log.write(key="b", method="POST", path="/api/partner-lists", market="ID", status=403)
    log.close()
    assert audit_main(["--keys", str(keys), "--key", "a", "--since", "2000-01-01"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "time\tkey\tmethod\tpath\tmarket\tcategory\tcreator_id\tstatus"
    assert [line.split("\t")[1:] for line in lines[1:]] == [
        ["a", "GET", "/creators/c1", "VN", "-", "c1", "200"]
    ]
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert audit_main(["--keys", str(keys), "--since", tomorrow]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1
    assert audit_main(["--keys", str(keys), "--since", "last tuesday"]) == 1
    assert capsys.readouterr().err.startswith("error: --since: 'last tuesday' is not an ISO-8601")
    assert audit_main(["--log", str(tmp_path / "none.jsonl")]) == 1
    assert "no audit log" in capsys.readouterr().err


# ------------------------------------------------------------------ scopes on every route


def scope_requests(world: ExplorerWorld) -> list[tuple[str, str, dict, int]]:
    """(method, path, query or JSON body, the status a key reading only the world's market
    and category must get) for every route: in scope, out of its market, out of its
    category; a creator outside the market is answered as an unknown one (404)."""
    creators = world.explorer.creators
    market, category = world.market, world.category
    inside = next(c for c in creators.index[creators["market"] == market] if c != EVIL_ID)
    outside = creators.index[creators["market"] != market][0]
    other_market = creators.at[outside, "market"]
    other_category = next(c for c in world.explorer.categories if c != category)
    brief = {"market": market, "category": category, "top_k": 5}
    out: list[tuple[str, str, dict, int]] = [
        ("GET", "/", {}, 200),
        ("GET", "/api/health", {}, 200),
        ("GET", "/docs", {}, 200),
        ("GET", "/openapi.json", {}, 200),
    ]
    for method, path in (
        ("GET", "/partners"),
        ("GET", "/partners.csv"),
        ("POST", "/api/partner-lists"),
    ):
        out += [
            (method, path, brief, 200),
            (method, path, {**brief, "market": other_market}, 403),
            (method, path, {**brief, "category": other_category}, 403),
        ]
    for prefix in ("/creators/", "/api/creators/"):
        out += [
            ("GET", prefix + quote(inside, safe=""), {"category": category}, 200),
            ("GET", prefix + quote(inside, safe=""), {"category": other_category}, 403),
            ("GET", prefix + quote(inside, safe=""), {}, 403),  # a category-limited key names one
            ("GET", prefix + quote(outside, safe=""), {"category": category}, 404),
            ("GET", prefix + "nobody", {"category": category}, 404),
        ]
    return out


def check_scopes(client: httpx.Client, key: str, world: ExplorerWorld) -> list[tuple]:
    """Send every scope request with ``key``; assert each status, one-line 403s, and that
    an out-of-scope creator's 404 is an unknown creator's, word for word; the requests."""
    headers = {"Authorization": f"Bearer {key}"}
    answers = {}
    for method, path, values, status in (requests := scope_requests(world)):
        if method == "POST":
            answer = client.post(path, json=values, headers=headers)
        else:
            answer = client.get(path, params=values, headers=headers)
        assert answer.status_code == status, (method, path, values, answer.text[:200])
        if status == 403 and path.startswith("/api"):
            detail = answer.json()["detail"]
            assert "\n" not in detail and ("does not read" in detail or "reads only" in detail)
        answers[(path, status)] = answer
    unknown = [a for (p, s), a in answers.items() if s == 404 and p.endswith("/nobody")]
    hidden = [(p, a) for (p, s), a in answers.items() if s == 404 and not p.endswith("/nobody")]
    for (path, answer), nobody in zip(hidden, unknown, strict=True):
        creator = path.rsplit("/", 1)[1]
        assert answer.text.replace(creator, "nobody") == nobody.text
        assert answer.headers["content-type"] == nobody.headers["content-type"]
    return requests


def check_audit(records: list[dict], name: str, requests: list[tuple]) -> None:
    """One audit line per request, in order, with its path, status, market, category and
    creator_id."""
    assert [(r["key"], r["method"], r["path"], r["status"]) for r in records] == [
        (name, method, unquote(path), status) for method, path, _, status in requests
    ]
    for record, (_, path, values, _) in zip(records, requests, strict=True):
        if "creators/" in path:
            assert record["creator_id"] == path.rsplit("/", 1)[1]
            assert record["category"] == values.get("category")
            assert record["market"] is not None or record["creator_id"] == "nobody"
        elif "partner" in path:
            assert (record["market"], record["category"]) == (values["market"], values["category"])
            assert record["creator_id"] is None


def test_a_scoped_key_reads_only_its_market_and_category_on_every_route(explorer_world, tmp_path):
    keys = tmp_path / "k.keys"
    key = add_key(
        keys, "partner", frozenset({explorer_world.market}), frozenset({explorer_world.category})
    )
    audit = AuditLog(tmp_path / "k.audit.jsonl")
    access = Access(KeyFile(keys), RateLimit(1000, 1000), audit)
    client = TestClient(create_app(explorer_world.explorer, access=access))
    requests = check_scopes(client, key, explorer_world)
    check_audit(list(audit_records(audit.path)), "partner", requests)
    form = client.get("/", headers={"Authorization": f"Bearer {key}"}).text
    options = re.findall(r'<option value="([^"]*)"', form)
    days = [d.date().isoformat() for d in reversed(explorer_world.explorer.days)]
    assert options == [explorer_world.market, explorer_world.category, *days]
    assert client.get("/api/health").status_code == 401
    audit.close()


def test_command_refuses_keys_with_a_token_and_a_missing_key_file(
    explorer_world, tmp_path, capsys, monkeypatch
):
    monkeypatch.delenv("EXPLORER_KEYS", raising=False)
    monkeypatch.setenv("EXPLORER_TOKEN", "t")
    base = ["--model", "models:/cs@champion", "--data", str(explorer_world.data)]
    assert explorer_main([*base, "--keys", str(tmp_path / "k.keys")]) == 1
    assert capsys.readouterr().err.startswith("error: --keys and a token")
    monkeypatch.delenv("EXPLORER_TOKEN")
    assert explorer_main([*base, "--keys", str(tmp_path / "k.keys"), "--host", "0.0.0.0"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'k.keys'}: no key file") and err.count("\n") == 1
    assert explorer_main([*base, "--host", "0.0.0.0"]) == 1
    assert "needs keys (--keys or $EXPLORER_KEYS)" in capsys.readouterr().err
    keys = tmp_path / "k.keys"
    add_key(keys, "someone", frozenset({"VN"}), None)
    bad_audit = [*base, "--keys", str(keys), "--audit", str(tmp_path / "no" / "a.jsonl")]
    assert explorer_main(bad_audit) == 1
    assert capsys.readouterr().err.startswith("error: audit log ")
    bad_model = ["--model", "models:/nope@champion", "--data", str(explorer_world.data)]
    bad_model += ["--tracking-uri", explorer_world.tracking_uri, "--keys", str(keys)]
    assert explorer_main(bad_model) == 1
    assert capsys.readouterr().err.startswith("error: model models:/nope@champion")
    assert not (tmp_path / "k.audit.jsonl").exists()  # no output when start-up fails


def test_help_lists_the_subcommands(capsys):
    with pytest.raises(SystemExit) as done:
        explorer_main(["--help"])
    assert done.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "explorer keys --keys FILE add NAME --markets" in out and "explorer audit" in out
    assert "keys revoke NAME" in out


# ------------------------------------------------------------------ a real server


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


RATE, BURST = 20, 40  # the test server's limit per key


@pytest.fixture(scope="module")
def keyed_server(explorer_world, tmp_path_factory):
    """``python -m explorer --keys FILE`` on a free 127.0.0.1 port (the key file empty but
    for one key the fixture uses to see it is up); (base URL, key file); stopped afterwards."""
    keys = tmp_path_factory.mktemp("keys") / "partners.keys"
    probe = add_key(keys, "probe", frozenset({explorer_world.market}), None)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("EXPLORER_KEYS", "EXPLORER_TOKEN")}
    process = subprocess.Popen(
        [
            sys.executable, "-m", "explorer",
            "--model", "models:/cs@champion",
            "--data", str(explorer_world.data),
            "--tracking-uri", explorer_world.tracking_uri,
            "--port", str(port),
            "--keys", str(keys),
            "--rate", str(RATE),
            "--burst", str(BURST),
        ],
        env={**env, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            if (
                httpx.get(
                    f"{base}/api/health", headers={"Authorization": f"Bearer {probe}"}
                ).status_code
                == 200
            ):
                break
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"explorer did not start: {process.stdout.read()}")
        time.sleep(0.3)
    yield base, keys
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def audited(capsys, keys: Path, name: str) -> list[dict]:
    """``python -m explorer audit --keys FILE --key NAME``, parsed."""
    capsys.readouterr()
    assert explorer_main(["audit", "--keys", str(keys), "--key", name]) == 0
    header, *lines = capsys.readouterr().out.splitlines()
    fields = header.split("\t")
    return [
        {
            f: None if v == "-" else int(v) if f == "status" else v
            for f, v in zip(fields, line.split("\t"), strict=True)
        }
        for line in lines
    ]


def new_key(keys: Path, name: str, markets: str, categories: str | None = None) -> str:
    """A key added while the server runs (by this process, as ``python -m explorer keys
    add`` does); its secret."""
    return add_key(
        keys,
        name,
        frozenset(markets.split(",")),
        None if categories is None else frozenset(categories.split(",")),
    )


@pytest.mark.slow
def test_real_server_scopes_every_route_and_audits_each_request(
    explorer_world, keyed_server, capsys
):
    base, keys = keyed_server
    key = new_key(keys, "vn-beauty", explorer_world.market, explorer_world.category)
    with httpx.Client(base_url=base, timeout=60) as client:
        requests = check_scopes(client, key, explorer_world)
    check_audit(audited(capsys, keys, "vn-beauty"), "vn-beauty", requests)


@pytest.mark.slow
def test_a_revoked_key_is_refused_at_once_without_a_restart(explorer_world, keyed_server, capsys):
    base, keys = keyed_server
    cut, kept = (new_key(keys, name, explorer_world.market) for name in ("cut", "kept"))
    with httpx.Client(base_url=base, timeout=30) as client:
        for key in (cut, kept):
            assert (
                client.get("/api/health", headers={"Authorization": f"Bearer {key}"}).status_code
                == 200
            )
        assert explorer_main(["keys", "--keys", str(keys), "revoke", "cut"]) == 0
        revoked = time.monotonic()
        answer = client.get("/api/health", headers={"Authorization": f"Bearer {cut}"})
        assert answer.status_code == 401 and time.monotonic() - revoked < 1.0
        assert answer.json() == {"detail": "revoked access key"}
        assert (
            client.get("/api/health", headers={"Authorization": f"Bearer {kept}"}).status_code
            == 200
        )
    assert [(r["path"], r["status"]) for r in audited(capsys, keys, "cut")] == [
        ("/api/health", 200),
        ("/api/health", 401),
    ]


@pytest.mark.slow
def test_a_limited_key_gets_429_while_another_key_is_served(explorer_world, keyed_server, capsys):
    base, keys = keyed_server
    flood, calm = (new_key(keys, name, explorer_world.market) for name in ("flood", "calm"))
    stop = threading.Event()
    answers: list[tuple[int, str | None]] = []

    def hammer():
        with httpx.Client(
            base_url=base, timeout=30, headers={"Authorization": f"Bearer {flood}"}
        ) as client:
            for _ in range(400):  # bounded; stops earlier once the calm key is done
                if stop.is_set():
                    break
                answer = client.get("/api/health")
                answers.append((answer.status_code, answer.headers.get("retry-after")))

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        while len(answers) < 2 * BURST and any(t.is_alive() for t in threads):
            time.sleep(0.01)
        latencies = []
        with httpx.Client(
            base_url=base, timeout=30, headers={"Authorization": f"Bearer {calm}"}
        ) as client:
            for _ in range(10):
                started = time.perf_counter()
                assert client.get("/api/health").status_code == 200
                latencies.append(time.perf_counter() - started)
                time.sleep(0.05)
        flooding = any(t.is_alive() for t in threads)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert flooding, "the flood ended before the calm key's requests: nothing was shown"
    statuses = [s for s, _ in answers]
    assert statuses.count(200) >= BURST and statuses.count(429) > 0
    assert set(statuses) == {200, 429}
    assert all(int(after) >= 1 for s, after in answers if s == 429)
    assert max(latencies) < 1.0, latencies  # the limited key does not slow the other down
    logged = audited(capsys, keys, "flood")
    assert len(logged) == len(answers) and sorted(r["status"] for r in logged) == sorted(statuses)
