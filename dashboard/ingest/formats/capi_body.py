"""Raw Conversions API request bodies, as every SDK and tag POSTs them to Meta.

Owns two shapes of the same thing:
- one body per line (`capi-body`): JSON (`{"data": [...], "partner_agent": ...,
  "test_event_code": ...}`) or form-encoded (`data=<url-encoded JSON array>&
  access_token=...&test_event_code=...`, as RudderStack sends it);
- one body per file, pretty-printed, or a JSON array of bodies (`capi-body-json`).

A body carries no answer, so delivery is unknown, and no sent time, so `sent_at` falls
back to event_time (as for bare events). Without a URL the dataset is the one given
with `ingest --dataset` ("(unknown)" otherwise).
"""

from __future__ import annotations

from typing import Any

from dashboard.ingest.formats.base import LogFormat, Outcome
from dashboard.ingest.formats.eqm_v1 import record_batch, record_kind, request_batch
from dashboard.ingest.formats.graph import form_body
from dashboard.ingest.formats.jsonline import load_json_line, parses
from dashboard.ingest.rows import UNKNOWN_DATASET, Rejected


class CapiBodyLines(LogFormat):
    name = "capi-body"
    title = "raw CAPI request bodies, one per line (JSON or form-encoded)"
    vectorised = True  # JSON body lines; form-encoded lines take the per-record path

    def claims(self, line: bytes) -> bool:
        return line.lstrip().startswith(b"data=") or record_kind(line) == "body"

    def parse_line(self, line: bytes, default_dataset: str) -> Outcome:
        stripped = line.strip()
        if stripped.startswith(b"{") or stripped.startswith(b"["):
            return record_batch(load_json_line(line), default_dataset)
        try:
            text = stripped.decode("utf-8")
        except UnicodeDecodeError:
            raise Rejected("not UTF-8") from None
        return request_batch(form_body(text), None, default_dataset, sent_at=None)

    def line_complete(self, line: bytes) -> bool:
        if line.lstrip().startswith((b"{", b"[")):
            return parses(line)
        try:
            self.parse_line(line, UNKNOWN_DATASET)
        except Rejected:
            return False
        return True


class CapiBodyDocument(LogFormat):
    name = "capi-body-json"
    title = "raw CAPI request bodies as one JSON document (a body, or an array of bodies)"
    readers = ("json",)

    def document_records(self, document: Any) -> list[Any]:
        return document if isinstance(document, list) else [document]

    def parse_record(self, record: Any, default_dataset: str) -> Outcome:
        return record_batch(record, default_dataset)
