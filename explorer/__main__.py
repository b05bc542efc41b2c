"""``python -m explorer --model URI --store STORE`` (or ``--data DIR``): the web interface
and JSON API."""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
import time
from pathlib import Path

from explorer.app import create_app
from explorer.core import explorer_from, explorer_on_store
from marketplace.cli import UserError, fail, load_tables_or_report, log
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
        "a loopback one needs an access token",
    )
    parser.add_argument("--port", type=int, default=8000, help="port (default %(default)s)")
    parser.add_argument(
        "--token",
        default=None,
        help=f"access token every request must carry (default: ${TOKEN_ENV}); "
        "as 'Authorization: Bearer TOKEN', or ?token=TOKEN once in a "
        "browser (it sets a cookie)",
    )
    parser.add_argument(
        "--tracking-uri",
        metavar="URI",
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else "
        "sqlite:///mlflow.db in the working directory)",
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


def main(argv=None) -> int:
    """``python -m explorer``: load the model and data, then serve the pages and API; the exit status."""
    args = parse_args(argv)
    token = args.token or os.environ.get(TOKEN_ENV) or None
    if not is_loopback(args.host) and not token:
        return fail(
            f"--host {args.host}: serving beyond this machine needs an access token "
            f"(--token or ${TOKEN_ENV}); refusing to start"
        )
    if not 0 < args.port < 65536:
        return fail(f"--port {args.port}: must be between 1 and 65535")
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
    log(
        f"explorer at http://{args.host}:{args.port}/ (API docs at /docs)"
        + ("; every request needs the access token" if token else "")
    )
    import uvicorn  # imported late: --help and bad arguments stay fast

    uvicorn.run(create_app(explorer, token), host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
