"""Server-side GTM tag logs in Stape's convention (Stape's Facebook tag and its peers).

Owns the reading of the log lines such a tag writes (stape-io/facebook-tag, template.js,
`log()`): a request line `{"Name": "Facebook", "Type": "Request", "EventName",
"RequestMethod", "RequestUrl": ".../v24.0/<PIXEL>/events?access_token=...",
"RequestBody": {...}, "TraceId"}`, later its answer `{"Type": "Response", "EventName",
"ResponseStatusCode", "ResponseHeaders", "ResponseBody": "<the answer as text>",
"Message": "Pixel ID: <PIXEL>", "TraceId"}`, or on a failure `{"Type": "Response",
"Message": "Request failed or timed out. Pixel ID: ...", "Reason"}`.

The same lines arrive in three wrappers, all read here:
- as written (one JSON object per line, from the container's console);
- as Google Cloud Logging export entries (`textPayload` holding the line, or
  `jsonPayload` holding the object; the entry's `timestamp` is the sent time);
- as Stape's BigQuery log rows (`tag_name, type, trace_id, event_name, request_method,
  request_url, request_body, response_status_code, response_headers, response_body,
  timestamp` in ms), exported as JSON Lines or CSV (BigQuery has no Message column).

A request waits for its answer under (TraceId, EventName) and its pixel: one trace can
hold several pixels. Lines of other tags (TikTok, GA4, HubSpot, ...) are skipped and
counted, not quarantined. The RequestUrl is read for its pixel id only (it holds the
access token) and never kept.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from dashboard.ingest.formats.base import (
    ANSWER_LINE,
    NOT_A_META_REQUEST,
    Answer,
    Batch,
    LogFormat,
    Outcome,
    Pending,
    Skipped,
)
from dashboard.ingest.formats.eqm_v1 import request_batch
from dashboard.ingest.formats.graph import answer_body, body_from_text, events_call_dataset
from dashboard.ingest.formats.jsonline import load_json_line
from dashboard.ingest.rows import Rejected, delivery_from_response, to_unix_seconds

# BigQuery column -> console key (the tag's own keyMappings, inverted).
_BIGQUERY_KEYS = {
    "tag_name": "Name",
    "type": "Type",
    "trace_id": "TraceId",
    "event_name": "EventName",
    "request_method": "RequestMethod",
    "request_url": "RequestUrl",
    "request_body": "RequestBody",
    "response_status_code": "ResponseStatusCode",
    "response_headers": "ResponseHeaders",
    "response_body": "ResponseBody",
}
BIGQUERY_COLUMNS = (*_BIGQUERY_KEYS, "timestamp")
_PIXEL_IN_MESSAGE = re.compile(r"Pixel ID:\s*([^\s,;]+)")
_META_TAG = re.compile(r"facebook|meta", re.IGNORECASE)


def _unwrap(record: Any) -> tuple[dict | None, Any]:
    """(the tag's log object, sent time if the wrapper has one) from any of the wrappers."""
    if not isinstance(record, dict):
        return None, None
    if "textPayload" in record or "jsonPayload" in record:
        payload = record.get("jsonPayload")
        if payload is None and isinstance(record.get("textPayload"), str):
            try:
                payload = orjson.loads(record["textPayload"])
            except orjson.JSONDecodeError:
                payload = None
        return (payload if isinstance(payload, dict) else None), record.get("timestamp")
    if "tag_name" in record or ("type" in record and "trace_id" in record):
        mapped = {_BIGQUERY_KEYS.get(key, key): value for key, value in record.items()}
        return mapped, record.get("timestamp")
    return record, None


def _is_tag_log(record: Any) -> bool:
    entry, _ = _unwrap(record)
    return (
        isinstance(entry, dict) and "Type" in entry and ("Name" in entry or "RequestUrl" in entry)
    )


def tag_log_outcome(record: Any, default_dataset: str) -> Outcome:
    """The outcome of one tag log object (in any wrapper)."""
    entry, stamp = _unwrap(record)
    if entry is None:
        raise Rejected("not a tag log entry", "no Type/Name, textPayload or jsonPayload")
    name = entry.get("Name")
    if isinstance(name, str) and not _META_TAG.search(name):
        return Skipped(NOT_A_META_REQUEST)
    kind = entry.get("Type")
    event_name = entry.get("EventName")
    key = f"{_text(entry.get('TraceId'))}\x1f{_text(event_name)}"
    if kind == "Request":
        dataset = events_call_dataset(entry.get("RequestUrl"))
        if dataset is None:
            return Skipped(NOT_A_META_REQUEST)
        try:
            batch = request_batch(
                body_from_text(entry.get("RequestBody")),
                None,
                default_dataset,
                sent_at=_sent_at(stamp),
                dataset_id=dataset,
            )
        except Rejected as exc:
            exc.awaits = Pending(key, dataset)
            raise
        return Batch(batch.envelope, batch.events, awaits=Pending(key, dataset))
    if kind == "Response":
        message = entry.get("Message")
        pixel = None
        if isinstance(message, str):
            found = _PIXEL_IN_MESSAGE.search(message)
            pixel = found.group(1)[:64] if found else None
        status = entry.get("ResponseStatusCode")
        if status is None or status == "":
            # "Request failed or timed out": no answer from Meta.
            return Answer(key, {"delivery": "unknown"}, pixel)
        response = {"status": status, "body": answer_body(entry.get("ResponseBody"))}
        return Answer(key, delivery_from_response(response), pixel)
    return Skipped(ANSWER_LINE if kind == "Message" else NOT_A_META_REQUEST)


def _text(value: Any) -> str:
    return str(value)[:200] if value is not None else ""


def _sent_at(stamp: Any) -> float | None:
    if stamp is None or stamp == "":
        return None
    if isinstance(stamp, str) and stamp.strip().endswith(" UTC"):
        stamp = stamp.strip()[:-4]  # BigQuery's CSV export of a TIMESTAMP
    return to_unix_seconds(stamp, "timestamp")


class StapeTagLog(LogFormat):
    name = "sgtm"
    title = "server-side GTM tag log (Stape; console, Cloud Logging or BigQuery rows)"
    readers = ("lines", "csv")

    def claims(self, line: bytes) -> bool:
        try:
            return _is_tag_log(load_json_line(line))
        except (Rejected, RecursionError):
            return False

    def parse_line(self, line: bytes, default_dataset: str) -> Outcome:
        return tag_log_outcome(load_json_line(line), default_dataset)

    def sniff_header(self, header: list[str]) -> bool:
        return {"tag_name", "type", "request_body"} <= set(header)

    def parse_row(self, cells: dict[str, str], default_dataset: str) -> Outcome:
        row: dict[str, Any] = {k: v for k, v in cells.items() if k in BIGQUERY_COLUMNS}
        if "timestamp" in row:
            row["timestamp"] = row["timestamp"].strip()
        return tag_log_outcome(row, default_dataset)
