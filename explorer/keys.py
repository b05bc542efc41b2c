"""``python -m explorer keys ...`` (add, list and revoke partners' keys) and ``python -m
explorer audit ...`` (what each key read): the commands around ``explorer.access``."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from explorer.access import (
    AUDIT_FIELDS,
    CATEGORY_RULE,
    MARKET_RULE,
    add_key,
    audit_records,
    default_audit_path,
    list_keys,
    parse_list,
    parse_time,
    revoke_key,
    scope_text,
)
from marketplace.cli import UserError, fail, log

KEYS_ENV = "EXPLORER_KEYS"


def add_keys_argument(parser: argparse.ArgumentParser, what: str) -> None:
    """``--keys FILE``, defaulting to ``$EXPLORER_KEYS``."""
    parser.add_argument(
        "--keys",
        type=Path,
        metavar="FILE",
        default=Path(os.environ[KEYS_ENV]) if os.environ.get(KEYS_ENV) else None,
        help=f"{what} (default: ${KEYS_ENV})",
    )


def parse_keys_args(argv) -> argparse.Namespace:
    """The command line of ``python -m explorer keys``."""
    parser = argparse.ArgumentParser(
        prog="python -m explorer keys",
        description="Manage partners' access keys: each key a random secret, printed "
        "once when added and stored only as its SHA-256, with its name, its markets "
        "(and categories, when given) and its creation and revocation times. A "
        "running server reads the file on every request: an added or revoked key "
        "counts at once, without a restart.",
    )
    add_keys_argument(parser, "the key file (SQLite; created by the first add)")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser(
        "add", help="add a key; prints its secret once, alone on stdout's one line"
    )
    add.add_argument("name", metavar="NAME", help="the partner's name (letters, digits, . _ -)")
    add.add_argument("--markets", required=True, metavar="VN,TH", help="the markets the key reads")
    add.add_argument(
        "--categories",
        metavar="beauty,fashion",
        help="the categories the key reads (default: every category)",
    )
    actions.add_parser("list", help="list the keys (names, scopes, times; never a secret)")
    revoke = actions.add_parser("revoke", help="revoke the live key called NAME")
    revoke.add_argument("name", metavar="NAME")
    return parser.parse_args(argv)


def keys_table(keys) -> str:
    """The keys as tab-separated lines under a header."""
    lines = ["name\tmarkets\tcategories\tcreated_at\trevoked_at"]
    for k in keys:
        lines.append(
            f"{k.name}\t{scope_text(k.markets)}\t{scope_text(k.categories)}\t"
            f"{k.created_at}\t{k.revoked_at or '-'}"
        )
    return "\n".join(lines)


def keys_main(argv) -> int:
    """``python -m explorer keys``: add, list or revoke a key; the exit status."""
    args = parse_keys_args(argv)
    if args.keys is None:
        return fail(f"--keys: give the key file (or set ${KEYS_ENV})")
    try:
        if args.action == "add":
            markets = parse_list(args.markets, MARKET_RULE, "markets")
            categories = (
                None
                if args.categories is None
                else parse_list(args.categories, CATEGORY_RULE, "categories")
            )
            secret = add_key(args.keys, args.name, markets, categories)
            print(secret, flush=True)
            log(
                f"added key {args.name!r} to {args.keys}: markets {scope_text(markets)}; "
                f"categories {scope_text(categories)}. The key is shown once, above; "
                "give it to the partner now"
            )
        elif args.action == "list":
            print(keys_table(list_keys(args.keys)))
        else:
            revoked = revoke_key(args.keys, args.name)
            log(f"revoked key {args.name!r} in {args.keys} at {revoked}")
    except UserError as err:
        return fail(str(err))
    return 0


def parse_audit_args(argv) -> argparse.Namespace:
    """The command line of ``python -m explorer audit``."""
    parser = argparse.ArgumentParser(
        prog="python -m explorer audit",
        description="Print the audit log of a server run with --keys, oldest first, "
        "rotated files included: one tab-separated line per request with "
        + ", ".join(AUDIT_FIELDS)
        + " ('-' where a request has none).",
    )
    add_keys_argument(parser, "the key file whose audit log to read (it is beside it)")
    parser.add_argument(
        "--log",
        type=Path,
        metavar="FILE",
        help="the audit log itself, when the server ran with --audit FILE",
    )
    parser.add_argument("--key", metavar="NAME", help="only this key's requests")
    parser.add_argument(
        "--since",
        metavar="T",
        help="only requests at or after T (ISO-8601, UTC when no zone, e.g. 2025-01-31 "
        "or 2025-01-31T12:00)",
    )
    return parser.parse_args(argv)


def audit_main(argv) -> int:
    """``python -m explorer audit``: the audit records asked for; the exit status."""
    args = parse_audit_args(argv)
    if args.log is None and args.keys is None:
        return fail(f"--keys or --log: give the key file (or set ${KEYS_ENV}) or the audit log")
    path = args.log or default_audit_path(args.keys)
    try:
        since = None if args.since is None else parse_time(args.since)
        lines = [
            "\t".join("-" if r.get(f) is None else str(r[f]) for f in AUDIT_FIELDS)
            for r in audit_records(path, args.key, since)
        ]
    except UserError as err:
        return fail(str(err))
    print("\t".join(AUDIT_FIELDS))
    if lines:
        print("\n".join(lines))
    return 0
