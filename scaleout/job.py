"""The file to give ``spark-submit``: ``spark-submit [options] scaleout/job.py STAGE ARGS``
runs ``python -m STAGE ARGS`` (features, training or serving) in the driver that
spark-submit starts, so its ``--master`` and ``--conf`` options apply."""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a file, this folder is first on sys.path, where scaleout/features.py would
# shadow the features package: drop it (the packages are installed).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

STAGES = ("features", "training", "serving")


def main(argv: list[str]) -> int:
    """Run the command of STAGE (``argv[0]``) on the rest of ``argv``; its exit status."""
    if not argv or argv[0] not in STAGES:
        print(
            f"usage: spark-submit [options] scaleout/job.py {{{','.join(STAGES)}}} ARGS "
            "(the stage's own arguments, with --engine spark)",
            file=sys.stderr,
        )
        return 2
    stage, args = argv[0], argv[1:]
    if stage == "features":
        from features.__main__ import main as run
    elif stage == "training":
        from training.__main__ import main as run
    else:
        from serving.__main__ import main as run
    return run(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
