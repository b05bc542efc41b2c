"""The same stages on Apache Spark (design: docs/scale-out.md).

Rows are bucketed by creator and the one pandas feature builder runs per bucket; what
is per brief (indices among its candidates, ranks) runs per brief.
``scaleout.session`` starts the SparkSession (classic or Spark Connect) and watches its
progress, ``scaleout.tables`` reads the raw tables into Spark, ``scaleout.features``
writes the pair table, ``scaleout.serving`` the partner lists.
"""
