"""``python -m explorer --model URI --store STORE`` (or ``--data DIR``): the web interface
and JSON API; ``python -m explorer keys ...`` and ``python -m explorer audit ...``:
partners' keys and what they read (``explorer.keys``)."""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
import time
from pathlib import Path

from explorer.access import (
    DEFAULT_BURST,
    DEFAULT_RATE,
    AuditLog,
    KeyFile,
    RateLimit,
    SingleToken,
    default_audit_path,
)
from explorer.app import create_app
from explorer.core import explorer_from, explorer_on_store
from explorer.guard import Access
from explorer.keys import KEYS_ENV, add_keys_argument, audit_main, keys_main
from marketplace.cli import TRACKING_URI_HELP, UserError, fail, load_tables_or_report, log
from serving.model import ModelError, load_model
from store.layout import StoreError

TOKEN_ENV = "EXPLORER_TOKEN"


def parse_args(argv=None) -> argparse.Namespace:
    """The command line of ``python -m explorer``."""
    parser = argparse.ArgumentParser(
        prog="python -m explorer",
        description="Serve the explorer: a brief form, partner lists (sortable, filterable "
        "by follower tier, downloadable as the contract's CSV), creator pages "
        "(indices, contributions, counterfactuals) and the JSON API documented "
        "at /docs. Every answer is read from a snapshot store (python -m store build) "
        "on one of its days; with --data a temporary store of the data's last day and "
        "monthly days six months back is built first (fine for a small marketplace).",
        epilog="subcommands: 'python -m explorer keys --keys FILE add NAME --markets VN,TH "
        "[--categories ...]', '... keys list', '... keys revoke NAME' manage partners' "
        "keys; 'python -m explorer audit --key NAME --since T' prints what they read "
        "(each has --help).",
    )
    parser.add_argument(
        "--model",
        required=True,
        metavar="URI",
        help="MLflow model URI: models:/NAME@ALIAS, models:/NAME/VERSION, runs:/RUN_ID/model",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--store",
        type=Path,
        metavar="STORE",
        help="snapshot store: briefs and creator pages on its stored days",
    )
    source.add_argument(
        "--data",
        type=Path,
        metavar="DIR",
        help="data directory (the six raw tables): a temporary store is built from it first",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default %(default)s); any address other than "
        "a loopback one needs keys (or a token)",
    )
    parser.add_argument("--port", type=int, default=8000, help="port (default %(default)s)")
    add_keys_argument(
        parser,
        "serve partners' keys from this key file ('python -m explorer keys'): every "
        "request needs a live key, as 'Authorization: Bearer KEY' or ?token=KEY once in a "
        "browser (it sets a cookie), and reads only the key's markets and categories",
    )
    parser.add_argument(
        "--audit",
        type=Path,
        metavar="FILE",
        help="with --keys: the audit log, one JSON line per request, rotated at 10 MiB "
        "(default: beside the key file, NAME.audit.jsonl); with a token: none unless given",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=DEFAULT_RATE,
        help="requests per second each key may make, sustained (default %(default)s); "
        "beyond it: 429 with Retry-After",
    )
    parser.add_argument(
        "--burst",
        type=int,
        default=DEFAULT_BURST,
        help="requests each key may make at once before --rate applies (default %(default)s)",
    )
    parser.add_argument(
        "--token",
        default=None,
        help=f"one access token for everything, instead of keys; prefer ${TOKEN_ENV} (the "
        "default): a command line is visible to every user of the machine",
    )
    parser.add_argument(
        "--tracking-uri",
        metavar="URI",
        help=TRACKING_URI_HELP,
    )
    return parser.parse_args(argv)


def is_loopback(host: str) -> bool:
    """True for localhost and the loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def access_from(args: argparse.Namespace, token: str | None) -> Access | None:
    """The keys (or the token), rate limit and audit log the command line asks for;
    None for neither keys nor a token. UserError for a bad key file or audit path."""
    limit = RateLimit(args.rate, args.burst)
    if args.keys is not None:
        audit = AuditLog(args.audit or default_audit_path(args.keys))
        return Access(keys=KeyFile(args.keys), limit=limit, audit=audit)
    if token:
        return Access(SingleToken(token), limit, AuditLog(args.audit) if args.audit else None)
    return None


def scores_note(explorer, store) -> str:
    """What the explorer says about the model's precomputed scores in the store."""
    scores = explorer.scores
    if scores is None or not scores.days:
        hint = f" (python -m store score {store} --model URI)" if store else ""
        return "no precomputed scores of this model: briefs score every candidate" + hint
    return (
        f"precomputed scores of this model on {len(scores.days)} of {len(explorer.days)} days "
        f"at commission {scores.commission_rate} (briefs at a commission in "
        f"({scores.low:.6g}, {scores.high:.6g}] read them; others score every candidate)"
    )


def main(argv=None) -> int:
    """``python -m explorer``: load the model and data, then serve the pages and API (or
    run the keys and audit subcommands); the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["keys"]:
        return keys_main(argv[1:])
    if argv[:1] == ["audit"]:
        return audit_main(argv[1:])
    args = parse_args(argv)
    token = args.token or os.environ.get(TOKEN_ENV) or None
    if args.keys is not None and token:
        return fail(
            f"--keys and a token (--token or ${TOKEN_ENV}) both given: serve with one of them"
        )
    if not is_loopback(args.host) and args.keys is None and not token:
        return fail(
            f"--host {args.host}: serving beyond this machine needs keys (--keys or "
            f"${KEYS_ENV}) or an access token (${TOKEN_ENV}); refusing to start"
        )
    if not 0 < args.port < 65536:
        return fail(f"--port {args.port}: must be between 1 and 65535")
    if args.token:
        log(f"note: --token is visible to every user of this machine; prefer ${TOKEN_ENV}")
    try:
        access = access_from(args, token)
    except UserError as err:
        return fail(str(err))
    started = time.perf_counter()
    try:
        scorer, version = load_model(args.model, args.tracking_uri)
        if args.store is not None:
            explorer = explorer_on_store(args.store, scorer, version)
        else:
            tables = load_tables_or_report(args.data)
            explorer = explorer_from(tables, scorer, version, progress=log, data=args.data)
            del tables
    except (UserError, ModelError, StoreError) as err:
        return fail(str(err))
    log(
        f"model {version}; store {args.store or 'built from ' + str(args.data)}: "
        f"{len(explorer.days)} days ({explorer.first_day.date()} to {explorer.last_day.date()}), "
        f"{len(explorer.creators):,} creators; ready in {time.perf_counter() - started:.1f}s"
    )
    log(scores_note(explorer, args.store))
    log(
        f"explorer at http://{args.host}:{args.port}/ (API docs at /docs)"
        + (f"; every request needs a key from {args.keys}" if args.keys else "")
        + ("; every request needs the access token" if token else "")
        + (f"; audit log {access.audit.path}" if access and access.audit else "")
    )
    import uvicorn  # imported late: --help and bad arguments stay fast

    app = create_app(explorer, access=access)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
