"""The command layer: the command lines of the stages that can run on either engine.

Each module here parses its command's arguments, checks its input, chooses the engine
(one process, or Apache Spark through ``scaleout``) and prints; the stages below it
(``features``, ``serving``, ``store``, ``scaleout`` ...) never import it, so imports run
one way, down. ``python -m features``, ``python -m serving`` and ``python -m store`` are
thin entry points into ``commands.features``, ``commands.serving`` and
``commands.store``; ``spark_job.py`` is the file to give ``spark-submit``.
"""
