"""Raw marketplace tables: their contract, loading, validation and a simulator."""

import os
import warnings

# pandera imports pyspark.pandas when pyspark is installed (the Spark engine needs it):
# PySpark then warns that pandas 3 is not fully supported, and pandera sets
# SPARK_LOCAL_IP to 127.0.0.1. The project keeps pandas 3 (the Spark equality tests show
# the Arrow hand-over is right); the user's own SPARK_LOCAL_IP is kept for cluster runs.
warnings.filterwarnings(
    "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
)
USER_SPARK_LOCAL_IP = os.environ.get("SPARK_LOCAL_IP")
