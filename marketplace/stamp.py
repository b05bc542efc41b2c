"""A record that a data directory passed validation, so later stages need not check it
again: ``<DIR>/.validated.json``.

It holds each table file's size and modification time (nanoseconds), the row counts,
and a digest of the contract's rules (this package's ``contract.py`` and
``validate.py``). It vouches for the directory only while every one of them is
unchanged: rewriting, adding or removing a table file, or a change of the rules, makes
the next stage validate again. At 1,000,000 creators validation takes about 15
minutes, so features, training and serving after ``validate`` each save that.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from marketplace.contract import TABLES
from marketplace.io import part_paths, table_path

STAMP = ".validated.json"
_RULES = ("contract.py", "validate.py")


def rules_digest() -> str:
    """Digest of the source of the contract's rules."""
    here = Path(__file__).parent
    return hashlib.sha256(b"".join((here / name).read_bytes() for name in _RULES)).hexdigest()[:16]


def table_files(directory: Path) -> list[list]:
    """``[relative path, size, mtime_ns]`` of every table file (each part) of ``directory``."""
    files = []
    for name in TABLES:
        path = table_path(directory, name)
        for part in part_paths(path) if path is not None else []:
            info = part.stat()
            files.append([str(part.relative_to(directory)), info.st_size, info.st_mtime_ns])
    return files


def stamped_rows(directory) -> dict[str, int] | None:
    """The row counts recorded when ``directory`` passed validation, if no table file and
    no rule changed since; otherwise None."""
    directory = Path(directory)
    try:
        stamp = json.loads((directory / STAMP).read_text())
        current = table_files(directory)
    except (OSError, ValueError):
        return None
    if stamp.get("rules") != rules_digest() or stamp.get("files") != current:
        return None
    return {name: int(n) for name, n in stamp["rows"].items()}


def write_stamp(directory, rows: dict[str, int]) -> None:
    """Record that ``directory`` (as it is now) passed validation with ``rows``; silently
    nothing when the directory is not writable."""
    directory = Path(directory)
    record = {"rules": rules_digest(), "rows": rows, "files": table_files(directory)}
    tmp = directory / f"{STAMP}.{os.getpid()}.tmp"
    try:
        tmp.write_text(json.dumps(record))
        os.replace(tmp, directory / STAMP)
    except OSError:
        tmp.unlink(missing_ok=True)
