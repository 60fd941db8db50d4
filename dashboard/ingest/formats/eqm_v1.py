"""Log format v1 as JSON Lines: `capi_request` and `pixel_event` records, bare CAPI events.

Owns the reading of one JSON record of our own format into its envelope and events
(README, "Log format v1"). A record without `kind` that carries a `data` list is a raw
Conversions API request body: the same reading serves the `capi-body` format, so a file
mixing both kinds still imports whole. Lines are parsed by `jsonline.load_json_line`;
the same records as one JSON array (pretty-printed or not) are read whole ("json").
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from dashboard.ingest.formats.base import Batch, LogFormat, Outcome
from dashboard.ingest.formats.jsonline import load_json_line
from dashboard.ingest.rows import (
    Envelope,
    Rejected,
    dataset_or,
    delivery_from_response,
    to_unix_seconds,
)

_KIND_NAME = re.compile(r"[a-z_]{1,40}")
KINDS = ("capi_request", "pixel_event")


def record_batch(record: Any, default_dataset: str) -> Batch:
    """The envelope and raw events of one JSON record (Rejected if malformed)."""
    if not isinstance(record, dict):
        raise Rejected("not a JSON object")
    kind = record.get("kind")
    if kind is None and "event_name" in record:
        return Batch(_envelope(record, record.get("test_event_code"), default_dataset), [record])
    if kind is None and isinstance(record.get("data"), list):
        return request_batch(record, None, default_dataset, sent_at=_sent_at(record))
    if kind is None:
        raise Rejected("unknown kind", "no kind, no event_name and no data list")
    if not isinstance(kind, str) or kind not in KINDS:
        # The value itself only when it looks like a kind name: it could be anything,
        # plaintext PII included.
        shown = (
            kind if isinstance(kind, str) and _KIND_NAME.fullmatch(kind) else type(kind).__name__
        )
        raise Rejected("unknown kind", shown)
    # The order of the checks decides the reason a doubly bad record is quarantined
    # with: sent_at first, as log format v1 has always done.
    envelope = _envelope(record, None, default_dataset)
    if kind == "pixel_event":
        event = record.get("event")
        if not isinstance(event, dict):
            raise Rejected("pixel_event without an event object")
        return Batch(replace(envelope, channel="browser"), [event])
    request = record.get("request")
    if not isinstance(request, dict):
        raise Rejected("capi_request without a request object")
    return request_batch(
        request,
        record.get("response"),
        default_dataset,
        sent_at=envelope.sent_at,
        dataset_id=envelope.dataset_id,
    )


def request_batch(
    body: dict,
    response: Any,
    default_dataset: str,
    *,
    sent_at: float | None,
    dataset_id: str | None = None,
) -> Batch:
    """A CAPI request body (`{"data": [...], "test_event_code": ...}`) and Meta's answer
    (`{"status", "body"}`, or None when there is none) as one server batch."""
    data = body.get("data")
    if not isinstance(data, list):
        raise Rejected("request.data missing or not a list")
    if not data:
        raise Rejected("request.data is empty")
    envelope = Envelope(
        channel="server",
        dataset_id=dataset_id or dataset_or(body.get("dataset_id"), default_dataset),
        sent_at=sent_at,
        is_test=_nonblank(body.get("test_event_code")),
        batch_size=len(data),
        **delivery_from_response(response),
    )
    return Batch(envelope, data)


def _envelope(record: dict, test_code: Any, default_dataset: str) -> Envelope:
    return Envelope(
        channel="server",
        dataset_id=dataset_or(record.get("dataset_id"), default_dataset),
        sent_at=_sent_at(record),
        is_test=_nonblank(test_code),
        delivery="unknown",
    )


def _sent_at(record: dict) -> float | None:
    sent = record.get("sent_at")
    return to_unix_seconds(sent, "sent_at") if sent is not None else None


def _nonblank(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


class EqmJsonLines(LogFormat):
    name = "eqm-v1"
    title = "log format v1 (JSON Lines, or one JSON array of records)"
    # "json": the records as one JSON array (formats.detect_document picks it).
    readers = ("lines", "json")
    vectorised = True

    def claims(self, line: bytes) -> bool:
        return record_kind(line) == "v1"

    def parse_line(self, line: bytes, default_dataset: str) -> Outcome:
        return record_batch(load_json_line(line), default_dataset)

    def document_records(self, document: Any) -> list[Any]:
        return document if isinstance(document, list) else [document]

    def parse_record(self, record: Any, default_dataset: str) -> Outcome:
        return record_batch(record, default_dataset)


def record_kind(line: bytes) -> str | None:
    """ "v1" for a log format v1 record, "body" for a raw request body, else None."""
    try:
        record = load_json_line(line)
    except (Rejected, RecursionError):
        return None
    return record_kind_of(record)


def record_kind_of(record: Any) -> str | None:
    """`record_kind` of a parsed JSON value."""
    if not isinstance(record, dict):
        return None
    if record.get("kind") in KINDS or ("kind" not in record and "event_name" in record):
        return "v1"
    if "kind" not in record and isinstance(record.get("data"), list):
        return "body"
    return None
