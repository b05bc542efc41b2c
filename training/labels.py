"""Integer relevance grades for LightGBM ranking, and the gains that match them.

LightGBM wants integer labels (0-30) and a ``label_gain`` per grade. The data contract's
gain is linear in gmv, so grades are per-campaign log-gmv steps whose gains are close
to linear: with s = grade_steps_per_doubling and G = max_grade,

    grade = round(s * log2(1 + (2^(G/s) - 1) * gmv / campaign_max_gmv))
    label_gain[g] = 2^(g/s) - 1

so ``label_gain[grade]`` is ``(2^(G/s) - 1) * gmv / campaign_max_gmv`` within a factor of
2^(1/(2s)) (19 % for s = 2). NDCG is scale-free per query, so scaling each campaign to
its best creator loses nothing. Declined and silent invitations have gmv 0: grade 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def grades(query, gmv, max_grade: int = 30, steps: int = 2) -> np.ndarray:
    """Each row's grade 0..max_grade: its gmv against its query's best, log-scaled (``steps`` grades per doubling)."""
    gmv = np.asarray(gmv, dtype=float)
    best = pd.Series(gmv).groupby(np.asarray(query)).transform("max").to_numpy()
    relative = np.divide(gmv, best, out=np.zeros_like(gmv), where=best > 0)
    top = 2.0 ** (max_grade / steps) - 1.0
    return np.clip(np.round(steps * np.log2(1.0 + top * relative)), 0, max_grade).astype(np.int32)


def label_gain(max_grade: int = 30, steps: int = 2) -> list[float]:
    """LightGBM's label_gain for those grades: 2^(grade / steps) - 1, the gmv a grade stands for."""
    return [2.0 ** (g / steps) - 1.0 for g in range(max_grade + 1)]
