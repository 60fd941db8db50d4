"""The oracle's comparison: which fields of the report and the pandas reference differ.

Owns NOT_COMPARED (the report's fields the reference does not reproduce) and the
field-by-field comparison tests/test_reference.py and the benchmark run.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

# Fields of the report the reference does not reproduce (see reference.py's docstring).
# Meta's own numbers and the calibration fitted to them come from Dataset Quality API
# snapshots, not from the events the reference recounts: tests/test_meta_quality.py pins
# them by hand.
NOT_COMPARED = (
    "generated_at",
    "report_version",
    "schema_version",
    "config",
    "name",
    "how_to_fix",
    "meta",
    "meta_snapshots",
    "emq_calibration",
    "emq_estimate_calibrated",
)


def compare_reports(
    report: dict[str, Any], reference: dict[str, Any], tolerance: float = 1e-9
) -> list[str]:
    """Differences between the report and the reference (empty when they agree).

    Every field of the reference is compared (numbers within `tolerance`, everything
    else exactly); the report may only have more fields where NOT_COMPARED says so.
    """
    problems: list[str] = []
    _compare("", report, reference, tolerance, problems)
    return problems


def _compare(path: str, got: Any, want: Any, tolerance: float, problems: list[str]) -> None:
    if len(problems) > 50:
        return
    if isinstance(want, dict):
        if not isinstance(got, dict):
            problems.append(f"{path}: report has {got!r}, reference a mapping")
            return
        extra = set(got) - set(want) - set(NOT_COMPARED)
        missing = set(want) - set(got)
        if extra or missing:
            problems.append(
                f"{path}: keys only in report {sorted(extra)}, only in reference {sorted(missing)}"
            )
        for key in want:
            if key in got:
                _compare(f"{path}.{key}", got[key], want[key], tolerance, problems)
        return
    if isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            problems.append(
                f"{path}: report has {len(got) if isinstance(got, list) else got!r} items, "
                f"reference {len(want)}"
            )
            return
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _compare(f"{path}[{i}]", g, w, tolerance, problems)
        return
    numeric = (int, float, np.integer, np.floating)
    if (
        isinstance(want, numeric)
        and isinstance(got, numeric)
        and not isinstance(want, bool)
        and not isinstance(got, bool)
    ):
        if not math.isclose(float(got), float(want), rel_tol=0.0, abs_tol=tolerance):
            problems.append(f"{path}: report {got!r}, reference {want!r}")
        return
    if got != want:
        problems.append(f"{path}: report {got!r}, reference {want!r}")


def count_numbers(reference: dict[str, Any]) -> int:
    """How many numeric fields the reference holds (what a comparison checked)."""
    if isinstance(reference, dict):
        return sum(count_numbers(v) for v in reference.values())
    if isinstance(reference, list):
        return sum(count_numbers(v) for v in reference)
    return int(isinstance(reference, int | float) and not isinstance(reference, bool))
