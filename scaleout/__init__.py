"""The same stages on Apache Spark (design: shared/design/scale-out.md).

Rows are bucketed by creator and the one pandas feature builder runs per bucket; what
is not per creator (percentiles, ranks per brief) uses Spark's own windows.
``scaleout.session`` starts the SparkSession, ``scaleout.tables`` reads the raw tables
into Spark, ``scaleout.features`` writes the pair table.
"""
