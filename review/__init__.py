"""Reviewing trained models, for the notebooks: above every stage, changing none.

- ``review.experiment``: a small run to review (``quick_experiment``, which trains through
  the training stage's own function) and the runs, metrics, curves, configs and models
  of an MLflow experiment.
- ``review.scores``: a model's scores on the test split; importance and contributions by
  family; how scores spread by outcome.
- ``review.fairness``: selection against realised gmv by creator group.
- ``review.plots``: matplotlib Figures (built without pyplot) of the frames above.

Explaining one creator of a partner list (the waterfall) is ``serving.explain``.
"""
