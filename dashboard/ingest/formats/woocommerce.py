"""The facebook-for-woocommerce debug log (WooCommerce log source `facebook_for_woocommerce`).

Owns the reading of the plugin's API log. With "Enable debug mode" on, each Graph API
call is logged as two WooCommerce log entries (class-wc-facebookcommerce.php,
`log_api_request`, with `Plugin::get_api_log_message`), each under WooCommerce's line
prefix `<ISO 8601 time> <LEVEL> `, its message spanning several lines:

    2025-03-02T10:15:02+00:00 NOTICE Request
    method: POST
    uri: https://graph.facebook.com/v21.0/1234567890/events
    user-agent: Facebook-for-WooCommerce/3.4.1 (WooCommerce/9.6.0; WordPress/6.7.2)
    body: {"data":[{...}],"partner_agent":"woocommerce-9.6.0-3.4.1"}
    duration: 0.31416s
    2025-03-02T10:15:02+00:00 NOTICE Response
    code: 200
    message: OK
    body: {"events_received":1,"messages":[],"fbtrace_id":"..."}

(`headers:` blocks, when the plugin is asked to log them, are passed over; the access
token travels in a header and is masked by the plugin.) A Response answers the oldest
request still waiting; requests other than the events call (catalog sync, ...) wait too,
so their answers are not taken for an event's. The entry time is the sent time.
"""

from __future__ import annotations

import re
from typing import Any

from dashboard.ingest.formats.base import (
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
from dashboard.ingest.rows import Rejected, delivery_from_response, to_unix_seconds

_PREFIX = re.compile(
    r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?) ([A-Z]+) ?(.*)$"
)
_FIELD = re.compile(r"^(method|uri|user-agent|headers|body|duration|code|message): ?(.*)$")
QUEUE = "woocommerce"  # one queue per file: the log names no request id


class WooCommerceLog(LogFormat):
    name = "woocommerce"
    title = "facebook-for-woocommerce debug log (WooCommerce log)"
    readers = ("entries",)

    def claims(self, line: bytes) -> bool:
        # Only the API log's own entries: a log line of another kind under the same
        # prefix (any application's "<time> INFO ...") decides nothing.
        found = _PREFIX.match(line.decode("utf-8", "replace").rstrip("\r\n"))
        return bool(found and found.group(3).strip() in ("Request", "Response"))

    def starts_entry(self, line: str) -> bool:
        return _PREFIX.match(line) is not None

    def entry_complete(self, lines: list[str]) -> bool:
        head = _PREFIX.match(lines[0])
        title = head.group(3).strip() if head else ""
        fields = _fields(lines)
        if title == "Request":
            return "duration" in fields
        if title == "Response":
            return "body" in fields
        return True

    def parse_entry(self, lines: list[str], default_dataset: str) -> Outcome:
        head = _PREFIX.match(lines[0])
        if head is None:
            raise Rejected("not a WooCommerce log entry")
        title = head.group(3).strip()
        fields = _fields(lines)
        if title == "Request" or (title == "" and "uri" in fields):
            dataset = events_call_dataset(fields.get("uri"))
            if dataset is None or fields.get("method", "POST").upper() != "POST":
                return Skipped(NOT_A_META_REQUEST, awaits=Pending(QUEUE))
            try:
                batch = request_batch(
                    body_from_text(fields.get("body")),
                    None,
                    default_dataset,
                    sent_at=to_unix_seconds(head.group(1), "log time"),
                    dataset_id=dataset,
                )
            except Rejected as exc:
                exc.awaits = Pending(QUEUE)
                raise
            return Batch(batch.envelope, batch.events, awaits=Pending(QUEUE))
        if title == "Response" or (title == "" and "code" in fields):
            response = {"status": fields.get("code"), "body": answer_body(fields.get("body"))}
            return Answer(QUEUE, delivery_from_response(response))
        return Skipped(NOT_A_META_REQUEST)


def _fields(lines: list[str]) -> dict[str, Any]:
    """`key: value` lines of an entry's message; a body may run over several lines."""
    fields: dict[str, Any] = {}
    current = None
    for line in lines[1:]:
        text = line.rstrip("\r\n")
        found = _FIELD.match(text)
        if found:
            current = found.group(1)
            fields[current] = found.group(2)
        elif current == "body":
            fields["body"] += "\n" + text  # a pretty-printed body (headers blocks are not kept)
    return fields
