"""The tier of an EMQ estimate (Poor, OK, Good, Great).

The estimate itself is one SQL expression, `store.queries.emq.emq_score`, summed in the
database wherever the product shows one.
"""

from __future__ import annotations

import numpy as np

from dashboard.core.config import Config


def tier(score: float | None, config: Config) -> str:
    """Poor / OK / Good / Great for an EMQ estimate (cut-offs approximate, not Meta's).

    The tier is that of the value as people see it, one decimal: 3.996 shows as "4.0"
    and is OK when OK starts at 4, so a label never contradicts its number.
    """
    if score is None or (isinstance(score, float) and np.isnan(score)):
        return "No data"
    score = round(float(score), 1)
    if score >= config.emq_tiers["great"]:
        return "Great"
    if score >= config.emq_tiers["good"]:
        return "Good"
    if score >= config.emq_tiers["ok"]:
        return "OK"
    return "Poor"
