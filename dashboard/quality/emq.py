"""The EMQ estimate (0-10) and its tier: one definition, applied to status signatures.

An event's estimate is the capped sum of the points its valid customer-information
parameters earn (config `[emq] points`, plus the IP + user agent pair), and 0 when its
valid parameters form one of Meta's rejected combinations. Every estimate the product
shows (the block mean, what-to-fix's "if fixed", one event's score) is this function,
applied to rows of parameter statuses; the pandas oracle in tests is the only other copy.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dashboard.core.config import Config
from dashboard.core.params import PARAMS, REJECTED_COMBINATIONS, VALID


def signature_emq(
    signature: pd.DataFrame, config: Config, assume_valid: str | None = None
) -> pd.Series:
    """The estimate of each row of `signature` (columns `p_<param>` holding parameter
    statuses, `_rejected_combo`, and `combo_<k>`: the valid set is a subset of Meta's
    rejected combination k), optionally as if `assume_valid` were valid too."""

    def is_valid(param: str) -> pd.Series:
        if param == assume_valid:
            return pd.Series(True, index=signature.index)
        return signature[f"p_{param}"] == VALID

    points = pd.Series(0.0, index=signature.index)
    for param in PARAMS:
        weight = config.emq_points.get(param, 0.0)
        if weight or param == assume_valid:
            points = points + is_valid(param) * weight
    pair = is_valid("client_ip_address") & is_valid("client_user_agent")
    points = points + pair * config.emq_pair_points
    score = points.where(points < config.emq_cap, 10.0)
    score = score.where(points >= config.emq_cap, points * (10.0 / config.emq_cap))
    if assume_valid is None:
        rejected = signature["_rejected_combo"]
    else:
        # The set plus `assume_valid` is non-empty and a subset of combination k only
        # when the set already was and k contains the parameter.
        rejected = pd.Series(False, index=signature.index)
        for k, combo in enumerate(REJECTED_COMBINATIONS):
            if assume_valid in combo:
                rejected = rejected | signature[f"combo_{k}"]
    return score.where(~rejected, 0.0)


def estimate_emq(valid_params: set[str] | frozenset[str], config: Config) -> float:
    """The estimate of one event from its set of valid parameters."""
    valid = frozenset(valid_params)
    row: dict[str, object] = {f"p_{p}": VALID if p in valid else 0 for p in PARAMS}
    combos = [bool(valid) and valid <= combo for combo in REJECTED_COMBINATIONS]
    row |= {f"combo_{k}": flag for k, flag in enumerate(combos)}
    row["_rejected_combo"] = any(combos)
    return float(signature_emq(pd.DataFrame([row]), config).iloc[0])


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
