"""Tiny builders for hand-made log records in tests (times are Unix seconds), and the
store snapshot the fuzzers compare imports by."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

T0 = 1_763_632_800  # 2025-11-20 10:00:00 UTC


def sha(text: str) -> str:
    """SHA-256 hex of a normalised value, as Meta wants hashed fields."""
    return hashlib.sha256(text.strip().lower().encode()).hexdigest()


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat().replace("+00:00", "Z")


def event(name: str, t: int, event_id: str | None = None, **user_data: Any) -> dict[str, Any]:
    """A CAPI-shaped event; keyword args become user_data (custom_data via custom_data=...)."""
    custom = user_data.pop("custom_data", None)
    extra = user_data.pop("extra", {})
    out: dict[str, Any] = {"event_name": name, "event_time": t, "action_source": "website"}
    if event_id is not None:
        out["event_id"] = event_id
    out["user_data"] = user_data
    if custom is not None:
        out["custom_data"] = custom
    out.update(extra)
    return out


def pixel(ev: dict[str, Any], sent_at: float | None = None, dataset: str = "1") -> dict[str, Any]:
    return {
        "kind": "pixel_event",
        "sent_at": iso(ev["event_time"] if sent_at is None else sent_at),
        "dataset_id": dataset,
        "event": ev,
    }


def capi(
    events: list[dict[str, Any]],
    sent_at: float,
    dataset: str = "1",
    status: int | None = 200,
    error: dict[str, Any] | None = None,
    test_event_code: str | None = None,
    events_received: int | None = None,
) -> dict[str, Any]:
    request: dict[str, Any] = {"data": events}
    if test_event_code:
        request["test_event_code"] = test_event_code
    response: dict[str, Any] | None
    if status is None:
        response = None
    elif error is not None:
        response = {"status": status, "body": {"error": error}}
    else:
        received = len(events) if events_received is None else events_received
        response = {
            "status": status,
            "body": {"events_received": received, "messages": [], "fbtrace_id": "X"},
        }
    return {
        "kind": "capi_request",
        "sent_at": iso(sent_at),
        "dataset_id": dataset,
        "request": request,
        "response": response,
    }


def stored_positions(connection) -> tuple[list, list]:
    """Every stored event as (source_id, line_no, idx, event_name) and every quarantine
    row as (source_id, line_no, idx, reason), sorted: what a re-import must not change."""
    import sqlalchemy as sa

    from dashboard.store.database import events, quarantine

    ev = connection.execute(
        sa.select(events.c.source_id, events.c.line_no, events.c.idx, events.c.event_name)
    ).all()
    qu = connection.execute(
        sa.select(
            quarantine.c.source_id, quarantine.c.line_no, quarantine.c.idx, quarantine.c.reason
        )
    ).all()
    return sorted(map(tuple, ev)), sorted(map(tuple, qu))
