"""Meta's numbers beside ours as tables: the frames the Match quality page shows and
downloads (EMQ, match keys, dedup keys, Meta's diagnostics, and the history).

Owns the layout of each comparison, from `quality.meta_compare.Comparison`s: one row per
snapshot and event name, Meta's figure next to ours over the same window. Shares are
0-1, scores 0-10. Pure pandas; no query of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pandas as pd

from dashboard.core.meta_quality import (
    IDENTIFIER_PARAMS,
    META_GAP_POINTS,
    dedup_keys,
    diagnostics,
    match_keys,
)
from dashboard.quality.meta_compare import Calibration, Comparison

# What a marketer compares first (the two scores, the gap and what it means), then the
# coverage, then where and when the snapshot comes from.
EMQ_COLUMNS = (
    "event_name",
    "meta_emq",
    "our_emq_estimate",
    "our_emq_calibrated",
    "emq_difference",
    "finding",
    "meta_event_coverage",
    "our_event_coverage_7d",
    "our_server_events_48h",
    "meta_acr",
    "meta_upload_frequency",
    "snapshot_at",
    "dataset_id",
)
MATCH_KEY_COLUMNS = (
    "event_name",
    "identifier",
    "parameter",
    "meta_coverage",
    "our_valid_share_48h",
)
DEDUP_KEY_COLUMNS = (
    "event_name",
    "dedup_key",
    "meta_browser_with_key",
    "meta_server_with_key",
    "meta_overall_coverage",
    "our_server_with_key_7d",
    "our_coverage_7d",
)
DIAGNOSTIC_COLUMNS = ("event_name", "diagnostic", "affected", "total", "share", "solution")


def _at(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%d %H:%M")


def emq_table(comparisons: Sequence[Comparison], calibration: Calibration) -> pd.DataFrame:
    """Per snapshot: Meta's EMQ, our estimate (raw and calibrated) over the 48 h before
    it, the difference, and both event coverages (7 days)."""
    rows = []
    for c in comparisons:
        s = c.snapshot
        rows.append(
            {
                "event_name": s.event_name,
                "dataset_id": s.dataset_id,
                "snapshot_at": _at(s.fetched_at),
                "meta_emq": s.emq,
                "our_emq_estimate": c.our_emq,
                "our_emq_calibrated": calibration.apply(c.our_emq),
                "emq_difference": c.emq_difference,
                "finding": _finding(c.emq_difference),
                "our_server_events_48h": c.our_server_events,
                "meta_event_coverage": s.event_coverage,
                "our_event_coverage_7d": c.our_coverage,
                "meta_acr": s.acr,
                "meta_upload_frequency": s.upload_frequency,
            }
        )
    return pd.DataFrame(rows, columns=list(EMQ_COLUMNS))


def _finding(difference: float | None) -> str:
    if difference is None:
        return "too few of our events to compare"
    if abs(difference) > META_GAP_POINTS:
        return "check hashing and normalisation"
    return ""


def match_key_table(comparisons: Sequence[Comparison]) -> pd.DataFrame:
    """Per snapshot and identifier: Meta's coverage, and the share of our server events
    in the 48 h before it with a valid value of the matching parameter."""
    rows = []
    for c in comparisons:
        ours = (c.emq_block or {}).get("parameter_coverage", {})
        for identifier, meta_share in match_keys(c.snapshot.raw).items():
            param = IDENTIFIER_PARAMS.get(identifier)
            rows.append(
                {
                    "event_name": c.snapshot.event_name,
                    "identifier": identifier,
                    "parameter": param or "",
                    "meta_coverage": meta_share,
                    "our_valid_share_48h": ours.get(param) if param and c.emq_block else None,
                }
            )
    return pd.DataFrame(rows, columns=list(MATCH_KEY_COLUMNS))


def dedup_key_table(comparisons: Sequence[Comparison]) -> pd.DataFrame:
    """Per snapshot and dedup key: Meta's browser, server and overall shares, and ours
    over the 7 days before it (event_id: server events carrying one, and our coverage;
    fbp and external_id: our coverage by any key)."""
    rows = []
    for c in comparisons:
        block = c.coverage_block or {}
        server = block.get("server_events") or 0
        with_id = 1 - block.get("server_without_event_id", 0) / server if server else None
        for key, shares in dedup_keys(c.snapshot.raw).items():
            by_id = key == "event_id"
            rows.append(
                {
                    "event_name": c.snapshot.event_name,
                    "dedup_key": key,
                    "meta_browser_with_key": shares["browser"],
                    "meta_server_with_key": shares["server"],
                    "meta_overall_coverage": shares["overall"],
                    "our_server_with_key_7d": with_id if by_id else None,
                    "our_coverage_7d": block.get(
                        "event_coverage" if by_id else "event_coverage_any_key"
                    ),
                }
            )
    return pd.DataFrame(rows, columns=list(DEDUP_KEY_COLUMNS))


def meta_diagnostics_table(comparisons: Sequence[Comparison]) -> pd.DataFrame:
    """Meta's EMQ diagnostics of each snapshot, with its affected and total counts."""
    rows = [
        {
            "event_name": c.snapshot.event_name,
            "diagnostic": d.get("name"),
            "affected": d.get("affected_event_count"),
            "total": d.get("total_event_count"),
            "share": d["percentage"] / 100
            if isinstance(d.get("percentage"), int | float)
            else None,
            "solution": d.get("solution"),
        }
        for c in comparisons
        for d in diagnostics(c.snapshot.raw)
    ]
    return pd.DataFrame(rows, columns=list(DIAGNOSTIC_COLUMNS))


def history_frame(comparisons: Sequence[Comparison], calibration: Calibration) -> pd.DataFrame:
    """Every snapshot in time order with Meta's EMQ and coverage and ours: the history
    chart's data."""
    table = emq_table(comparisons, calibration)
    table["snapshot_time"] = pd.to_datetime(
        [c.snapshot.fetched_at for c in comparisons], unit="s", utc=True
    )
    return table.sort_values(["snapshot_time", "event_name"], kind="stable").reset_index(drop=True)
