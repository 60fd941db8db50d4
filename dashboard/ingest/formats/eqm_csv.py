"""Log format v1 as CSV: one event per row (README, "Log format v1", item 4).

Owns the reading of one row, its non-empty cells by header name, into an envelope and a
CAPI-shaped event: `channel`, the CAPI top-level fields, user_data keys by their CAPI
names (a JSON array in a cell for a list), `custom_data.<key>`, and the answer columns
(`response_status`, `error_code`, `error_subcode`, `error_message`, and optionally
`error_user_title`, `error_user_msg`, `fbtrace_id`).
"""

from __future__ import annotations

from typing import Any

import orjson

from dashboard.core.params import PARAMS
from dashboard.ingest.formats.base import Batch, LogFormat, Outcome
from dashboard.ingest.rows import (
    Envelope,
    Rejected,
    dataset_or,
    delivery_from_response,
    int_or_none,
    to_unix_seconds,
)

CSV_TOP_LEVEL = (
    "event_name",
    "event_time",
    "event_id",
    "action_source",
    "event_source_url",
    "messaging_channel",
    "opt_out",
)

ERROR_DETAIL_COLUMNS = ("error_user_title", "error_user_msg", "fbtrace_id")


def _csv_cell(value: str) -> Any:
    text = value.strip()
    if text.startswith("[") and text.endswith("]"):
        try:
            parsed = orjson.loads(text)
        except orjson.JSONDecodeError:
            return text
        return parsed
    return text


def csv_row_to_record(cells: dict[str, str], default_dataset: str) -> Batch:
    """A CSV row (one event; its non-empty cells) as its envelope and a CAPI-shaped event."""
    channel = cells.get("channel", "").strip().lower()
    if channel not in ("browser", "server"):
        raise Rejected("channel must be browser or server")
    event: dict[str, Any] = {}
    user_data: dict[str, Any] = {}
    custom_data: dict[str, Any] = {}
    for name, value in cells.items():
        if name in CSV_TOP_LEVEL:
            event[name] = value.strip()
        elif name.startswith("custom_data."):
            custom_data[name[len("custom_data.") :]] = value.strip()
        elif name.startswith("user_data."):
            user_data[name[len("user_data.") :]] = _csv_cell(value)
        elif name in PARAMS:
            user_data[name] = _csv_cell(value)
    event["user_data"] = user_data
    event["custom_data"] = custom_data
    sent = cells.get("sent_at")
    response: dict[str, Any] | None = None
    if "response_status" in cells:
        response = {"status": int_or_none(cells["response_status"].strip())}
        if "error_code" in cells:
            response["body"] = {
                "error": {
                    "code": int_or_none(cells["error_code"].strip()),
                    "error_subcode": int_or_none(cells.get("error_subcode", "").strip()),
                    "message": cells.get("error_message"),
                    # Optional columns with the rest of Meta's error object.
                    **{key: cells[key] for key in ERROR_DETAIL_COLUMNS if key in cells},
                }
            }
    answer = delivery_from_response(response)
    test_code = cells.get("test_event_code", "")
    envelope = Envelope(
        channel=channel,
        dataset_id=dataset_or(cells.get("dataset_id"), default_dataset),
        sent_at=to_unix_seconds(sent, "sent_at") if sent else None,
        is_test=channel == "server" and bool(test_code.strip()),
        **answer,
    )
    return Batch(envelope, [event])


class EqmCsv(LogFormat):
    name = "eqm-csv"
    title = "log format v1 (CSV, one event per row)"
    readers = ("csv",)

    def sniff_header(self, header: list[str]) -> bool:
        return "event_name" in header and "channel" in header

    def parse_row(self, cells: dict[str, str], default_dataset: str) -> Outcome:
        return csv_row_to_record(cells, default_dataset)
