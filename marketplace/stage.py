"""The marketplace stage's simulation, wired once: ``simulate_to_directory`` is what
``python -m marketplace simulate`` and the notebooks (``marketplace.summary.tiny_marketplace``)
run. Validation is ``marketplace.validate.load_valid_tables`` (and, part by part,
``validate_parts``), which every stage calls on the data it reads.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from marketplace.io import write_part, write_tables
from marketplace.simulate import SimConfig, simulate, simulate_parts


def _quiet(message: str) -> None:
    pass


def simulate_to_directory(
    cfg: SimConfig,
    out: Path,
    csv: bool = False,
    chunk_creators: int | None = None,
    progress: Callable[[str], None] = _quiet,
) -> dict[str, int]:
    """Simulate ``cfg`` and write the six raw tables to ``out`` (Parquet, or CSV with
    ``csv``) and the truth to ``out/truth/``, replacing ``out`` at once: written to a
    staging folder beside it, then renamed, so a failure leaves no partial directory.
    With ``chunk_creators`` below the creators, every table is a directory of Parquet parts
    drawn a chunk of creators at a time (``write_simulation_parts``). Returns each
    table's row count."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    staging.chmod(0o755)
    try:
        if chunk_creators is not None and chunk_creators < cfg.creators:
            rows = write_simulation_parts(cfg, chunk_creators, staging, progress=progress)
        else:
            tables, truth = simulate(cfg)
            rows = {name: len(frame) for name, frame in tables.items()}
            write_tables(tables, staging, fmt="csv" if csv else "parquet")
            (staging / "truth").mkdir()
            for name, frame in truth.items():
                frame.to_parquet(
                    staging / "truth" / f"{name}.parquet", index=False, compression="zstd"
                )
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return rows


PART_ROWS = 2_000_000  # pieces are gathered into parts of about this many rows


def write_simulation_parts(
    cfg: SimConfig, chunk_creators: int, directory: Path, progress: Callable[[str], None] = _quiet
) -> dict[str, int]:
    """Write every table as ``<table>/part-NNNNN.parquet`` (truth: ``truth/<name>/``), a
    chunk of creators at a time; returns each table's row count."""
    buffers: dict[str, list[pd.DataFrame]] = {}
    parts: dict[str, int] = {}
    rows: dict[str, int] = {}

    def flush(name: str) -> None:
        frames = buffers.pop(name, [])
        if not frames:
            return
        folder = directory / name
        folder.mkdir(parents=True, exist_ok=True)
        frame = pd.concat(frames, ignore_index=True)
        path = folder / f"part-{parts.get(name, 0):05d}.parquet"
        if name.startswith("truth/"):
            frame.to_parquet(path, index=False, compression="zstd")
        else:
            write_part(frame, name, path)
        parts[name] = parts.get(name, 0) + 1

    for name, piece in simulate_parts(cfg, chunk_creators, progress):
        buffers.setdefault(name, []).append(piece)
        rows[name] = rows.get(name, 0) + len(piece)
        if sum(len(f) for f in buffers[name]) >= PART_ROWS:
            flush(name)
    for name in list(buffers):
        flush(name)
    return rows
