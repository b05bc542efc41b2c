"""LightGBM learning-to-rank on historical campaign outcomes: the time split, evaluation
against baselines (and the oracle when truth is known), MLflow tracking and registry."""
