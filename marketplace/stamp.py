"""A record that a data directory passed validation, so later stages need not check it
again. It is kept in the user's cache folder, never in the data directory (which may be
read-only, shared or versioned): ``$CREATOR_SCORES_CACHE``, else
``$XDG_CACHE_HOME/creator-scores``, else ``~/.cache/creator-scores``; one file
``validated/<digest of the directory's absolute path>.json`` per directory.

It holds the directory's path, each table file's size and modification time
(nanoseconds), the row counts, and a digest of the contract's rules (this package's
``contract.py`` and ``validate.py``). It vouches for the directory only while every one
of them is unchanged: rewriting, adding or removing a table file, or a change of the
rules, makes the next stage validate again. At 1,000,000 creators validation takes about
15 minutes, so features, training and serving after ``validate`` each save that.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from marketplace.contract import TABLES
from marketplace.io import part_paths, table_path

CACHE_VARIABLE = "CREATOR_SCORES_CACHE"
_RULES = ("contract.py", "validate.py")


def cache_folder() -> Path:
    """``$CREATOR_SCORES_CACHE``, else ``$XDG_CACHE_HOME/creator-scores``, else
    ``~/.cache/creator-scores``."""
    if os.environ.get(CACHE_VARIABLE):
        return Path(os.environ[CACHE_VARIABLE])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "creator-scores"


def record_path(directory) -> Path:
    """Where the validation record of ``directory`` (by its absolute path) is kept."""
    key = hashlib.sha256(str(Path(directory).resolve()).encode()).hexdigest()[:32]
    return cache_folder() / "validated" / f"{key}.json"


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
        stamp = json.loads(record_path(directory).read_text())
        current = table_files(directory)
    except (OSError, ValueError):
        return None
    if (
        stamp.get("directory") != str(directory.resolve())
        or stamp.get("rules") != rules_digest()
        or stamp.get("files") != current
    ):
        return None
    return {name: int(n) for name, n in stamp["rows"].items()}


def write_stamp(directory, rows: dict[str, int]) -> None:
    """Record that ``directory`` (as it is now) passed validation with ``rows``, in the
    cache folder; silently nothing when that cannot be written (the next stage then
    validates again)."""
    directory = Path(directory)
    record = {
        "directory": str(directory.resolve()),
        "rules": rules_digest(),
        "rows": rows,
        "files": table_files(directory),
    }
    path = record_path(directory)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(record))
        os.replace(tmp, path)
    except OSError:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
