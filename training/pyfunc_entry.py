"""Models-from-code entry point for MLflow: declares the pyfunc model without pickling it."""

from mlflow.models import set_model

from training.pyfunc import CreatorScoreModel

set_model(CreatorScoreModel())
