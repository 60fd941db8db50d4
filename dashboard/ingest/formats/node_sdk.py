"""The facebook-nodejs-business-sdk debug output (an EventRequest with debug mode on).

Owns the reading of what the SDK prints with `FacebookAdsApi.setDebug(true)` (or
`new EventRequest(..., debug_mode_flag = true)`), from src/api.js `call()`:

    200 POST https://graph.facebook.com/v18.0/<PIXEL>/events?access_token=<TOKEN> {"data":[...],...}
    Response: {"events_received":1,"messages":[],"fbtrace_id":"..."}

and on an error, with the body on an indented second line and no answer body:

    400 POST https://graph.facebook.com/v18.0/<PIXEL>/events?access_token=<TOKEN>
                {"data":[...],...}

The status on the request line is Meta's answer (2xx accepted, 4xx/5xx rejected); the
`Response:` line adds events_received. Other lines of the application's output are
skipped. The URL is read for its pixel id only (it holds the access token twice over
in some versions) and never kept. A timestamp some loggers put first (`2025-03-02T10:15:02Z `
or `[2025-03-02T10:15:02.123Z] `) is the sent time.
"""

from __future__ import annotations

import re

from dashboard.ingest.formats.base import NOT_A_META_REQUEST, Batch, LogFormat, Outcome, Skipped
from dashboard.ingest.formats.eqm_v1 import request_batch
from dashboard.ingest.formats.graph import answer_body, body_from_text, events_call_dataset
from dashboard.ingest.rows import to_unix_seconds

_REQUEST = re.compile(
    r"^(?:\[?(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?)\]?:?\s+)?"
    r"(\d{3}|undefined) (GET|POST|PUT|DELETE) (https?://\S+)(?: (.*))?$"
)
_RESPONSE = re.compile(r"^\s*Response: ?(.*)$")


class NodeSdkLog(LogFormat):
    name = "node-sdk"
    title = "facebook-nodejs-business-sdk debug output"
    readers = ("entries",)

    def claims(self, line: bytes) -> bool:
        found = _REQUEST.match(line.decode("utf-8", "replace").rstrip("\r\n"))
        return bool(found and events_call_dataset(found.group(4)))

    def starts_entry(self, line: str) -> bool:
        # Continuation lines: the answer, or the indented body of a failed request.
        return not (_RESPONSE.match(line) or line[:1] in (" ", "\t"))

    def entry_complete(self, lines: list[str]) -> bool:
        found = _REQUEST.match(lines[0].rstrip("\r\n"))
        if found is None or events_call_dataset(found.group(4)) is None:
            return True
        return len(lines) >= 2

    def parse_entry(self, lines: list[str], default_dataset: str) -> Outcome:
        found = _REQUEST.match(lines[0].rstrip("\r\n"))
        dataset = events_call_dataset(found.group(4)) if found else None
        if found is None or dataset is None or found.group(3) != "POST":
            return Skipped(NOT_A_META_REQUEST)
        stamp, status, body_text = found.group(1), found.group(2), found.group(5)
        answer = None
        for line in lines[1:]:
            said = _RESPONSE.match(line)
            if said:
                answer = answer_body(said.group(1).strip())
            elif line.strip() and not body_text:
                body_text = line.strip()
        if status == "undefined":
            response = None  # no answer at all (network error)
        else:
            response = {"status": int(status), "body": answer}
        batch = request_batch(
            body_from_text(body_text),
            response,
            default_dataset,
            sent_at=to_unix_seconds(stamp, "log time") if stamp else None,
            dataset_id=dataset,
        )
        return Batch(batch.envelope, batch.events)
