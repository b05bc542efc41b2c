"""Partner access to the explorer: keys with scopes, a per-key rate limit and an audit log.

A **key** is a random secret (``secrets.token_urlsafe``) given to one partner; the key
file (SQLite) keeps only its SHA-256 with the key's name, scope (markets, and categories
when given) and creation and revocation times. The server looks every request's key up
in the file, so a key added or revoked by ``python -m explorer keys`` counts from the
next request, without a restart. ``RateLimit`` is a token bucket per key name, and
``AuditLog`` appends one JSON line per request to a file rotated by size. Nothing here
knows about the web: ``explorer.guard`` applies it to the application.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from logging.handlers import RotatingFileHandler
from pathlib import Path

from marketplace.cli import UserError

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,          -- SHA-256 of the secret, hex; the secret is never stored
    markets TEXT NOT NULL,              -- comma-separated market codes
    categories TEXT,                    -- comma-separated; NULL: every category
    created_at TEXT NOT NULL,           -- ISO-8601 UTC
    revoked_at TEXT                     -- ISO-8601 UTC; NULL while the key is live
);
CREATE UNIQUE INDEX IF NOT EXISTS one_live_key_per_name ON keys (name) WHERE revoked_at IS NULL;
"""
NAME_RULE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MARKET_RULE = re.compile(r"^[A-Z]{2}$")
CATEGORY_RULE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
SECRET_BYTES = 32  # 256 bits of randomness; token_urlsafe makes 43 characters of them

DEFAULT_RATE = 5.0  # requests per second per key, sustained
DEFAULT_BURST = 20  # requests a key may send at once before the rate applies
AUDIT_MAX_BYTES = 10 * 1024**2  # an audit file is rotated at 10 MiB ...
AUDIT_BACKUPS = 9  # ... keeping 9 older files (FILE.1 the newest): at most 100 MiB


def now_iso() -> str:
    """The current time, ISO-8601 UTC with milliseconds (``2025-01-31T12:00:00.123Z``)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def key_hash(secret: str) -> str:
    """The SHA-256 of a key, hex. Keys are 256-bit random secrets, so a plain hash (no
    salt, no stretching) is what is needed to make a stolen key file useless."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Key:
    """A partner's key as the file records it (never the secret). ``markets`` or
    ``categories`` None: every one."""

    name: str
    markets: frozenset[str] | None
    categories: frozenset[str] | None
    created_at: str = ""
    revoked_at: str | None = None

    def reads_market(self, market: str | None) -> bool:
        """True when the key may read ``market``."""
        return self.markets is None or market in self.markets

    def reads_category(self, category: str | None) -> bool:
        """True when the key may read ``category``."""
        return self.categories is None or category in self.categories


def scope_text(values: frozenset[str] | None) -> str:
    """``VN, TH`` (sorted) or ``every`` for a scope."""
    return "every" if values is None else ", ".join(sorted(values))


def parse_list(text: str, rule: re.Pattern, what: str) -> frozenset[str]:
    """A comma-separated list of values each matching ``rule``; UserError naming the
    first bad one."""
    values = [v.strip() for v in text.split(",") if v.strip()]
    if not values:
        raise UserError(f"--{what}: give at least one")
    for value in values:
        if not rule.match(value):
            raise UserError(f"--{what}: {value!r} does not match {rule.pattern}")
    return frozenset(values)


# ------------------------------------------------------------------ the key file


def _open(path: Path, create: bool = False) -> sqlite3.Connection:
    """A connection to the key file (created with its schema when ``create``); UserError
    when it is missing or not a key file."""
    if not create and not path.is_file():
        raise UserError(
            f"{path}: no key file (create one with: python -m explorer keys --keys {path} add ...)"
        )
    if not path.parent.is_dir():
        raise UserError(f"{path}: no such directory {path.parent}")
    try:
        fresh = not path.exists()
        connection = sqlite3.connect(path, timeout=5)
        if fresh:
            path.chmod(0o600)
            connection.executescript(SCHEMA + f"PRAGMA user_version = {SCHEMA_VERSION};")
        _check_schema(connection, path)
    except sqlite3.DatabaseError as err:
        raise UserError(f"{path}: not an explorer key file ({err})") from None
    return connection


def _check_schema(connection: sqlite3.Connection, path: Path) -> None:
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    if version != SCHEMA_VERSION:
        raise UserError(f"{path}: not an explorer key file (schema version {version})")


def add_key(
    path: Path, name: str, markets: frozenset[str], categories: frozenset[str] | None
) -> str:
    """Store a new key called ``name`` with its scope in the key file (created when
    missing) and return its secret, which is stored nowhere. UserError for a bad name or a
    name that already has a live key."""
    if not NAME_RULE.match(name):
        raise UserError(f"NAME: {name!r} does not match {NAME_RULE.pattern}")
    secret = secrets.token_urlsafe(SECRET_BYTES)
    connection = _open(path, create=True)
    try:
        with connection:
            connection.execute(
                "INSERT INTO keys (name, hash, markets, categories, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    name,
                    key_hash(secret),
                    ",".join(sorted(markets)),
                    None if categories is None else ",".join(sorted(categories)),
                    now_iso(),
                ),
            )
    except sqlite3.IntegrityError:
        raise UserError(f"NAME: {name!r} already has a live key (revoke it first)") from None
    finally:
        connection.close()
    return secret


def revoke_key(path: Path, name: str) -> str:
    """Mark the live key called ``name`` revoked; its revocation time. UserError when
    there is none."""
    connection = _open(path)
    try:
        with connection:
            revoked = now_iso()
            cursor = connection.execute(
                "UPDATE keys SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
                (revoked, name),
            )
    finally:
        connection.close()
    if cursor.rowcount == 0:
        raise UserError(f"NAME: no live key called {name!r} in {path}")
    return revoked


def _key(row) -> Key:
    name, markets, categories, created_at, revoked_at = row
    return Key(
        name=name,
        markets=frozenset(markets.split(",")),
        categories=None if categories is None else frozenset(categories.split(",")),
        created_at=created_at,
        revoked_at=revoked_at,
    )


def list_keys(path: Path) -> list[Key]:
    """Every key of the file, live and revoked, in the order they were added."""
    connection = _open(path)
    try:
        rows = connection.execute(
            "SELECT name, markets, categories, created_at, revoked_at FROM keys ORDER BY id"
        ).fetchall()
    finally:
        connection.close()
    return [_key(row) for row in rows]


class KeyFile:
    """The server's view of a key file: ``lookup`` reads the file on every call (an
    indexed read of a small SQLite file, tens of microseconds), so additions and
    revocations count at once. Read-only; safe to share between threads."""

    def __init__(self, path: Path):
        _open(path).close()  # a missing or foreign file fails here, at start-up
        self.path = path
        self._connection = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=1, check_same_thread=False
        )
        self._lock = threading.Lock()

    def lookup(self, secret: str) -> Key | None:
        """The key whose secret is ``secret`` (revoked or not), None when there is none."""
        digest = key_hash(secret)
        with self._lock:
            row = self._connection.execute(
                "SELECT name, markets, categories, created_at, revoked_at, hash FROM keys "
                "WHERE hash = ?",
                (digest,),
            ).fetchone()
        if row is None or not hmac.compare_digest(row[5], digest):
            return None
        return _key(row[:5])


class SingleToken:
    """The ``--token`` shortcut: one key, called ``token``, reading everything."""

    def __init__(self, token: str):
        self._token = token.encode()
        self.key = Key(name="token", markets=None, categories=None)

    def lookup(self, secret: str) -> Key | None:
        """The one key when ``secret`` is the token, else None."""
        return self.key if hmac.compare_digest(secret.encode(), self._token) else None


# ------------------------------------------------------------------ rate limit


class RateLimit:
    """A token bucket per key name: ``burst`` requests at once, then ``rate`` a second."""

    def __init__(
        self, rate: float = DEFAULT_RATE, burst: int = DEFAULT_BURST, clock=time.monotonic
    ):
        if rate <= 0 or burst < 1:
            raise UserError(f"rate limit: need rate > 0 and burst >= 1, not {rate}, {burst}")
        self.rate, self.burst, self.clock = rate, burst, clock
        self._buckets: dict[str, tuple[float, float]] = {}  # name -> (tokens, at)
        self._lock = threading.Lock()

    def wait(self, name: str) -> float:
        """Take a request from ``name``'s bucket: 0.0 when allowed, else the seconds until
        one would be (nothing taken)."""
        with self._lock:
            now = self.clock()
            tokens, at = self._buckets.get(name, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.rate)
            if tokens >= 1.0:
                self._buckets[name] = (tokens - 1.0, now)
                return 0.0
            self._buckets[name] = (tokens, now)
            return (1.0 - tokens) / self.rate


def retry_after(wait: float) -> str:
    """The ``Retry-After`` header for a wait in seconds: whole seconds, at least 1."""
    return str(max(1, math.ceil(wait)))


# ------------------------------------------------------------------ audit


AUDIT_FIELDS = ("time", "key", "method", "path", "market", "category", "creator_id", "status")


def default_audit_path(keys: Path) -> Path:
    """Where the audit log of a key file goes by default: beside it, ``NAME.audit.jsonl``."""
    return keys.with_suffix(".audit.jsonl")


class AuditLog:
    """Append-only JSON lines, one per request (AUDIT_FIELDS), rotated by size: FILE
    grows to ``max_bytes``, then becomes FILE.1 (FILE.1 becomes FILE.2, ...; the oldest
    beyond ``backups`` is dropped)."""

    def __init__(self, path: Path, max_bytes: int = AUDIT_MAX_BYTES, backups: int = AUDIT_BACKUPS):
        self.path = path
        if path.is_dir():
            raise UserError(f"audit log {path}: is a directory")
        if not path.parent.is_dir():
            raise UserError(f"audit log {path}: no such directory {path.parent}")
        # delay: the file appears with the first request, not when start-up fails later
        handler = RotatingFileHandler(
            path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8", delay=True
        )
        handler.setFormatter(logging.Formatter("%(message)s"))
        # A logger of its own per file, never propagated: audit lines go nowhere else.
        self._logger = logging.getLogger(f"explorer.audit.{path.resolve()}")
        self._logger.propagate = False
        self._logger.setLevel(logging.INFO)
        for old in list(self._logger.handlers):
            self._logger.removeHandler(old)
            old.close()
        self._logger.addHandler(handler)

    def write(self, **fields) -> None:
        """Append one record (AUDIT_FIELDS; ``time`` is now)."""
        record = {"time": now_iso(), **{f: fields.get(f) for f in AUDIT_FIELDS[1:]}}
        self._logger.info(json.dumps(record, ensure_ascii=False))

    def close(self) -> None:
        """Close the file (the server keeps it open while it runs)."""
        for handler in list(self._logger.handlers):
            self._logger.removeHandler(handler)
            handler.close()


def audit_files(path: Path) -> list[Path]:
    """The audit log's files, oldest first: FILE.N ... FILE.1, FILE."""
    rotated = []
    for candidate in path.parent.glob(path.name + ".*"):
        suffix = candidate.name[len(path.name) + 1 :]
        if suffix.isdigit():
            rotated.append((int(suffix), candidate))
    return [p for _, p in sorted(rotated, reverse=True)] + ([path] if path.exists() else [])


def parse_time(text: str) -> datetime:
    """An ISO-8601 time or day (no zone: UTC); UserError when it is not one."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(
            f"--since: {text!r} is not an ISO-8601 time, e.g. 2025-01-31T12:00"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def audit_records(
    path: Path, key: str | None = None, since: datetime | None = None
) -> Iterator[dict]:
    """The audit records of ``path`` and its rotated files, oldest first, of key ``key``
    (all when None) at or after ``since`` (all when None). A line that is not a record
    (a torn last line) is skipped."""
    if not audit_files(path):
        raise UserError(f"{path}: no audit log (a server run with --keys writes it)")
    for file in audit_files(path):
        with file.open(encoding="utf-8") as lines:
            for line in lines:
                try:
                    record = json.loads(line)
                    at = parse_time(record["time"].replace("Z", "+00:00"))
                except (ValueError, KeyError, TypeError, AttributeError, UserError):
                    continue
                if (key is None or record.get("key") == key) and (since is None or at >= since):
                    yield record
