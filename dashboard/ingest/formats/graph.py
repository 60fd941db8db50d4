"""Reading the Graph API's events call as integrations log it: URL, form body, answer.

Owns the few facts every adapter needs about `POST /<version>/<dataset id>/events`: which
URL is that call (and which dataset it names), how a form-encoded body carries the JSON
`data`, and how an answer logged as text becomes Meta's answer. A URL is only ever read
for its dataset id: it may carry the access token, and is never kept.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from dashboard.ingest.rows import Rejected

# /v24.0/1234567890/events (the version is optional: the Graph API has a default one).
_EVENTS_PATH = re.compile(r"^/(?:v\d+(?:\.\d+)?/)?([^/]+)/events/?$")


def events_call_dataset(url: Any) -> str | None:
    """The dataset (pixel) id named by an events-call URL, or None for any other URL."""
    if not isinstance(url, str):
        return None
    try:
        path = urlsplit(url.strip()).path
    except ValueError:
        return None
    match = _EVENTS_PATH.match(path)
    return match.group(1)[:64] if match else None


def form_body(text: str) -> dict[str, Any]:
    """A form-encoded events body (`data=<JSON array>&test_event_code=...&access_token=...`)
    as the JSON body it stands for. `data` elements sent as JSON strings (RudderStack's
    `data=['<event JSON>']`) are read as objects. The access token is dropped."""
    try:
        fields = parse_qs(text.strip(), keep_blank_values=True, strict_parsing=False)
    except ValueError:
        raise Rejected("malformed form body") from None
    raw = fields.get("data")
    if not raw:
        raise Rejected("form body without data")
    try:
        data = orjson.loads(raw[0])
    except orjson.JSONDecodeError:
        raise Rejected("form body data is not JSON") from None
    if isinstance(data, list):
        data = [_maybe_json(item) for item in data]
    body: dict[str, Any] = {"data": data}
    for key in ("test_event_code", "partner_agent"):
        if fields.get(key):
            body[key] = fields[key][0]
    return body


def _maybe_json(item: Any) -> Any:
    if isinstance(item, str) and item.lstrip().startswith("{"):
        try:
            return orjson.loads(item)
        except orjson.JSONDecodeError:
            return item
    return item


def body_from_text(text: Any) -> dict[str, Any]:
    """A request body logged as text: JSON, or form-encoded."""
    if isinstance(text, dict):
        return text
    if not isinstance(text, str) or not text.strip():
        raise Rejected("request without a body")
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            body = orjson.loads(stripped)
        except orjson.JSONDecodeError:
            raise Rejected("request body is not JSON") from None
        if not isinstance(body, dict):
            raise Rejected("request body is not a JSON object")
        return body
    return form_body(stripped)


def answer_body(text: Any) -> Any:
    """Meta's answer body logged as text (or as JSON already): a dict when it is JSON."""
    if isinstance(text, str):
        try:
            parsed = orjson.loads(text)
        except orjson.JSONDecodeError:
            return None
        # Logged twice-encoded (a JSON string holding the JSON answer).
        if isinstance(parsed, str):
            return answer_body(parsed)
        return parsed
    return text
