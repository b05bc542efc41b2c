"""The file to give ``spark-submit``: ``spark-submit [options] spark_job.py STAGE ARGS``
runs ``python -m STAGE ARGS`` (features, training, serving or store) in the driver that
spark-submit starts, so its ``--master`` and ``--conf`` options apply. It lives at the top
of the project, beside the packages it runs (a file run as a script puts its own folder
first on ``sys.path``, where a module named like a package would shadow it); the project
must be installed in the driver's Python (``spark.pyspark.python``)."""

from __future__ import annotations

import sys

STAGES = ("features", "training", "serving", "store")


def main(argv: list[str]) -> int:
    """Run the command of STAGE (``argv[0]``) on the rest of ``argv``; its exit status."""
    if not argv or argv[0] not in STAGES:
        print(
            f"usage: spark-submit [options] spark_job.py {{{','.join(STAGES)}}} ARGS "
            "(the stage's own arguments, with --engine spark)",
            file=sys.stderr,
        )
        return 2
    stage, args = argv[0], argv[1:]
    if stage == "features":
        from commands.features import main as run
    elif stage == "training":
        from training.__main__ import main as run
    elif stage == "store":
        from commands.store import main as run
    else:
        from commands.serving import main as run
    return run(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
