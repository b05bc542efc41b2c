"""Serving: score briefs into partner lists with a registered model.

``serving.briefs`` reads and checks a briefs file, ``features.candidates`` applies the
data contract's candidate rule, ``serving.partner_list`` scores candidates and writes
the reasons, ``serving.model`` loads a model by MLflow URI; ``python -m serving`` wires
them to files.
"""
