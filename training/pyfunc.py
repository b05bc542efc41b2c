"""The MLflow pyfunc model: feature rows in; raw_score, score and family contributions out.

The booster travels as an artifact in LightGBM's text format (``booster.txt``) with the
raw-to-score map and defaults (``scoring.json``); the model itself is logged from code
(``pyfunc_entry.py``), so nothing is pickled.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from mlflow.pyfunc import PythonModel

from training.model import Scorer

ENTRY_FILE = Path(__file__).with_name("pyfunc_entry.py")


class CreatorScoreModel(PythonModel):
    """Wraps a :class:`Scorer`; ``predict`` returns ``Scorer.explain`` of the rows."""

    scorer: Scorer | None = None

    def load_context(self, context) -> None:
        """Load the Scorer from the model's artifacts (booster.txt, scoring.json)."""
        self.scorer = Scorer.load(context.artifacts["booster"], context.artifacts["scoring"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        """``Scorer.explain`` of the feature rows: raw_score, score and family contributions."""
        if self.scorer is None:
            raise RuntimeError("the model's context (booster, scoring map) is not loaded")
        frame = pd.DataFrame(model_input)
        return self.scorer.explain(frame).reset_index(drop=True)
