"""Human column names and cell formats for every table a person sees or downloads.

Owns how an indicator frame (snake_case columns, 0-1 shares, lags in seconds) is
turned into a table for people: "Event coverage (%)" with one decimal, "Median lag"
as 1.5 h, "–" for a missing value (never "None"). Pages and report downloads call
`for_people`; the JSON report keeps the snake_case contract. Pure pandas, no Streamlit.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from dashboard.core import formatting as fmt
from dashboard.core.measures import MEASURES

_DEDUP_HEADLINES = ("dedup.likely_double_counted", "dedup.rate")

MISSING = fmt.NO_DATA

# 0-1 shares: shown as percentages with one decimal; the header says "(%)".
SHARE_COLUMNS = frozenset(
    {
        "share",
        "coverage",
        "valid_share",
        "value_completeness",
        "conversion",
        "browser_events_with_key",
        "server_events_with_key",
        "recoverable_share",
        # Meta's numbers beside ours (quality/meta_tables.py)
        "meta_event_coverage",
        "our_event_coverage_7d",
        "meta_acr",
        "meta_coverage",
        "our_valid_share_48h",
        "meta_browser_with_key",
        "meta_server_with_key",
        "meta_overall_coverage",
        "our_server_with_key_7d",
        "our_coverage_7d",
        "match_rate",
    }
)
# Seconds: shown as 45 s, 12 min, 3.5 h, 2.1 d.
DURATION_COLUMNS = frozenset({"p50_lag_s", "p99_lag_s", "max_lag_s", "lag_s", "median_delay_s"})
# EMQ estimates and their gains: one decimal (gains two, they are small).
SCORE_COLUMNS = frozenset(
    {"emq_now", "emq_if_fixed", "meta_emq", "our_emq_estimate", "our_emq_calibrated"}
)
GAIN_COLUMNS = frozenset({"gain_event", "gain_slice", "recoverable_gain"})

COLUMN_LABELS: dict[str, str] = {
    # dimensions
    "group": "Group",
    "dataset_id": "Dataset",
    "campaign": "Campaign",
    "funnel_stage": "Funnel stage",
    "stage": "Stage",
    "event_name": "Event",
    "action_source": "Action source",
    "messaging_channel": "Messaging channel",
    "channel": "Channel",
    "event_day": "Day",
    "parameter": "Parameter",
    "dedup_key": "Dedup key",
    "funnel": "Funnel",
    "from_stage": "From stage",
    "to_stage": "To stage",
    "currency": "Currency",
    "note": "Note",
    "week": "ISO week",
    "week_start": "Week starting",
    "days_in_period": "Days in period",
    # volumes
    "events": "Events",
    "people": "People",
    "batches": "Batches",
    "affected": "Affected events",
    "total": "Of events",
    "invalid": "Invalid values",
    "unhashed_plaintext": "Plaintext (unhashed)",
    "people_from": "People at from stage",
    "people_to": "People at to stage",
    "people_without_earlier_stage": "People without an earlier stage",
    "purchase_events_sent": "Purchase events sent",
    "purchases": "Counted purchases",
    "purchases_last_7d": "Purchases, last 7 days",
    "revenue": "Revenue",
    "currencies": "Currencies",
    "recoverable_events": "Recoverable events",
    # rates and scores
    "share": "Share (%)",
    "coverage": "Coverage now (%)",
    "valid_share": "Valid (%)",
    "value_completeness": "With value and currency (%)",
    "conversion": "Conversion (%)",
    "browser_events_with_key": "Browser events with key (%)",
    "server_events_with_key": "Server events with key (%)",
    "recoverable_share": "Recoverable (%)",
    "emq_tier": "EMQ tier",
    "emq_now": "EMQ now",
    "emq_if_fixed": "EMQ if fixed",
    "gain_event": "Gain for the event",
    "gain_slice": "Gain if all fixed",
    "recoverable_gain": "Recoverable gain",
    "ready": "Ready (≥ 10 in 7 days)",
    "learning_phase_ok": "Learning-phase volume",
    # lags
    "p50_lag_s": "Median lag",
    "p99_lag_s": "99th percentile lag",
    "max_lag_s": "Longest lag",
    "lag_s": "Lag",
    "upload_frequency": "Upload frequency",
    # diagnostics
    "severity": "Severity",
    "name": "Finding",
    "how_to_fix": "How to fix",
    # gap list
    "gap": "Gap",
    "event_id": "event_id",
    "event_time": "Event time (UTC)",
    "sent_at": "Sent at (UTC)",
    "fbp": "fbp",
    "external_id": "external_id",
    # event lists (the Events page and `python -m dashboard events`)
    "source_file": "Source file",
    "line": "Line",
    "event_in_line": "Event in line",
    "field": "Field",
    "why": "Why",
    "error_user_title": "Meta's title",
    "error_user_msg": "Meta's message for the user",
    "fbtrace_id": "fbtrace_id",
    "twin_event_id": "Pixel twin's event_id",
    "list": "Events",
    "list_absent": "Absent",
    "list_invalid": "Invalid",
    "list_unhashed": "Plaintext",
    # delivery
    "error_code": "Error code",
    "error_subcode": "Subcode",
    "error_message": "Meta's message",
    "meaning": "Meaning",
    "fix": "How to fix",
    "first_day": "First day",
    "last_day": "Last day",
    # summary table
    "metric": "Metric",
    "value": "Value",
    "previous_period": "Previous period",
    "change": "Change",
    "goal_or_tier": "Goal or tier",
    # data page
    "import_id": "Import",
    "started_at": "Started (UTC)",
    "finished_at": "Finished (UTC)",
    "paths": "Files",
    "path": "File",
    "lines_read": "Lines read",
    "lines_already_imported": "Lines already imported",
    "events_imported": "Events imported",
    "events_quarantined": "Events quarantined",
    "lines_quarantined": "Lines quarantined",
    "status": "Status",
    "line_no": "Line",
    "idx": "Event in line",
    "reason": "Reason",
    "detail": "Detail",
    "count": "Count",
    # Meta's numbers beside ours (Dataset Quality API snapshots)
    "snapshot_at": "Meta snapshot (UTC)",
    "finding": "Finding",
    "meta_emq": "Meta's EMQ",
    "our_emq_estimate": "Our estimate (48 h before)",
    "our_emq_calibrated": "Our estimate, calibrated",
    "emq_difference": "Meta minus ours (points)",
    "our_server_events_48h": "Our server events (48 h)",
    "meta_event_coverage": "Meta's coverage (%)",
    "our_event_coverage_7d": "Our coverage, 7 days (%)",
    "meta_acr": "Meta's ACR (%)",
    "meta_upload_frequency": "Meta's upload frequency",
    "identifier": "Meta's match key",
    "meta_coverage": "Meta's coverage (%)",
    "our_valid_share_48h": "Our valid share, 48 h (%)",
    "meta_browser_with_key": "Meta: browser events with key (%)",
    "meta_server_with_key": "Meta: server events with key (%)",
    "meta_overall_coverage": "Meta: coverage from key (%)",
    "our_server_with_key_7d": "Ours: server events with key (%)",
    "our_coverage_7d": "Our coverage, 7 days (%)",
    "diagnostic": "Meta's diagnostic",
    "solution": "Meta's solution",
    # reconciliation (dashboard/quality/reconcile.py, crm_reconcile.py)
    "order_id": "Order",
    "lead_id": "Lead",
    "orders": "Orders",
    "matched": "Reached Meta",
    "missing": "Missing",
    "rejected": "Rejected by Meta",
    "match_rate": "Reached Meta (%)",
    "findings": "What is wrong",
    "first_sent_at": "First sent (UTC)",
    "sent_value": "Value sent",
    "sent_currency": "Currency sent",
    "changes": "Stage changes",
    "sent": "Sent",
    "unmapped": "Stage not mapped",
    "late": "Late",
    "median_delay_s": "Median delay",
}


# The headline measures' columns: their labels and formats come from the registry
# (core.measures), so a scorecard and a table column say the same thing.
_HEADLINE = [
    m
    for m in MEASURES
    if m.json and (len(m.path) == 1 or m.path[0] == "freshness" or m.key in _DEDUP_HEADLINES)
]
COLUMN_LABELS |= {m.column: f"{m.label} (%)" if m.kind == "rate" else m.label for m in _HEADLINE}
SHARE_COLUMNS |= {m.column for m in _HEADLINE if m.kind == "rate"}
DURATION_COLUMNS |= {m.column for m in _HEADLINE if m.kind == "duration"}
SCORE_COLUMNS |= {m.column for m in _HEADLINE if m.kind == "score"}


def label(column: str) -> str:
    """The human header of a column (unknown columns: words from the snake_case name)."""
    if column in COLUMN_LABELS:
        return COLUMN_LABELS[column]
    text = str(column).replace("__", " ").replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def share_percent(value: Any) -> float | None:
    """A 0-1 share as a percentage rounded to one decimal (None stays None)."""
    if _missing(value):
        return None
    return round(float(value) * 100, 1) + 0.0  # + 0.0: never "-0.0"


def for_people(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with human headers, shares in % (one decimal), lags as durations, and
    "–" wherever a value is missing. The cells keep numbers where every value is one,
    so tables still sort; a column with gaps becomes text."""
    out = pd.DataFrame(index=frame.index)
    for column in frame.columns:
        values = frame[column]
        if column in SHARE_COLUMNS:
            values = values.map(share_percent)
        elif column in DURATION_COLUMNS:
            values = values.map(fmt.duration)
        elif column in SCORE_COLUMNS:
            values = values.map(lambda v: None if _missing(v) else round(float(v), 1) + 0.0)
        elif column in GAIN_COLUMNS:
            values = values.map(lambda v: None if _missing(v) else round(float(v), 2) + 0.0)
        if values.dtype == object or values.isna().any():
            if values.map(_missing).any():
                digits = _DIGITS.get(_kind(column))
                values = values.map(lambda v, d=digits: MISSING if _missing(v) else _text(v, d))
        out[label(column)] = values
    return out.reset_index(drop=True)


def _kind(column: str) -> str:
    if column in SHARE_COLUMNS:
        return "share"
    if column in SCORE_COLUMNS:
        return "score"
    if column in GAIN_COLUMNS:
        return "gain"
    return "other"


_DIGITS = {"share": 1, "score": 1, "gain": 2}


def decimals(column: str) -> int | None:
    """Decimals a column is shown with (shares and scores 1, gains 2; None: as it is)."""
    return _DIGITS.get(_kind(column))


def _text(value: Any, digits: int | None = None) -> str:
    """A cell of a column that also holds "–": every value text, so the column is one
    type (Arrow refuses a mix of numbers and strings)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if digits is not None:
            return f"{value:.{digits}f}"
        if value == int(value):
            return str(int(value))
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return str(value)
