"""What a captured call may keep on disk: the event as the importer needs it, nothing personal.

Owns the rewriting of a Conversions API body (or a mirrored Pixel event) before the
relay logs it. The call itself is forwarded as sent; the log keeps:
- user_data parameters by their CAPI names. A value Meta wants hashed that arrived in
  plaintext becomes `eqm-plaintext:<sha256>`, a marker the importer counts as unhashed
  PII (params.PLAINTEXT_MARKER) while a person's events still share it as a key; the
  plaintext is never written. An `external_id` or `event_id` that is an e-mail or a
  +country phone is kept as the marker / as its SHA-256, as the importer would store it;
- of custom_data, the keys the dashboard reads (value, currency, order id, contents,
  and the configured campaign and stage fields), with any e-mail or phone in a text
  replaced;
- of event_source_url, its scheme, host and path and the campaign (utm_*) parameters.
Access tokens, appsecret_proof and any field not listed are dropped.
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from dashboard.core.config import Config
from dashboard.core.params import (
    PARAMS,
    PLAINTEXT_MARKER,
    UNHASHED,
    redact_pii,
    value_status,
)
from dashboard.ingest.rows import safe_text_identifier

_EVENT_KEYS = (
    "event_name",
    "event_time",
    "event_id",
    "action_source",
    "messaging_channel",
    "opt_out",
    "data_processing_options",
    "data_processing_options_country",
    "data_processing_options_state",
)
_BODY_KEYS = ("test_event_code", "partner_agent", "namespace_id", "upload_tag", "upload_source")
_CUSTOM_KEYS = (
    "value",
    "currency",
    "order_id",
    "content_ids",
    "content_type",
    "content_category",
    "num_items",
    "predicted_ltv",
    "status",
)


def plaintext_marker(value: str) -> str:
    """The stand-in for a plaintext value: its SHA-256 (normalised as Meta hashes)."""
    digest = hashlib.sha256(value.strip().lower().encode("utf-8", "replace")).hexdigest()
    return PLAINTEXT_MARKER + digest


def _scrub_value(param: str, value: Any) -> Any:
    if isinstance(value, list):
        return [_scrub_value(param, element) for element in value]
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return value
    text = str(value)
    status, pii = value_status(param, text)
    return plaintext_marker(text) if status == UNHASHED or pii else value


def _scrub_text(value: Any) -> Any:
    if isinstance(value, str):
        return redact_pii(value)
    if isinstance(value, list):
        return [_scrub_text(element) for element in value]
    if isinstance(value, dict):
        return {key: _scrub_text(element) for key, element in value.items()}
    return value


def _custom_keys(config: Config) -> set[str]:
    keys = set(_CUSTOM_KEYS)
    for source in (*config.campaign_sources, config.stage_field):
        if source.startswith("custom_data."):
            keys.add(source.split(".")[1])
    return keys


def scrub_url(url: Any) -> Any:
    """An event_source_url with only its scheme, host, path and utm_* parameters."""
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url)
        kept = [(k, v) for k, v in parse_qsl(parts.query) if k.startswith("utm_")]
    except ValueError:
        return None
    return urlunsplit((parts.scheme, parts.netloc, redact_pii(parts.path), urlencode(kept), ""))


def scrub_event(event: Any, config: Config) -> Any:
    """One event as the capture log keeps it (anything not an object is kept: the
    importer quarantines it with its reason)."""
    if not isinstance(event, dict):
        return event if not isinstance(event, str) else redact_pii(event)
    out: dict[str, Any] = {key: event[key] for key in _EVENT_KEYS if key in event}
    if isinstance(out.get("event_id"), str):
        # The importer's own rule: an e-mail or +phone is kept as its SHA-256 only.
        out["event_id"] = safe_text_identifier(out["event_id"], False)
    if "event_name" in out and isinstance(out["event_name"], str):
        out["event_name"] = redact_pii(out["event_name"])
    if "event_source_url" in event:
        out["event_source_url"] = scrub_url(event["event_source_url"])
    user_data = event.get("user_data")
    if isinstance(user_data, dict):
        out["user_data"] = {
            key: _scrub_value(key, value) for key, value in user_data.items() if key in PARAMS
        }
    elif user_data is not None:
        out["user_data"] = None if isinstance(user_data, str) else user_data
    custom = event.get("custom_data")
    if isinstance(custom, dict):
        wanted = _custom_keys(config)
        out["custom_data"] = {k: _scrub_text(v) for k, v in custom.items() if k in wanted}
    return out


def scrub_body(body: dict[str, Any], config: Config) -> dict[str, Any]:
    """A CAPI request body as the capture log keeps it (no token, no plaintext PII)."""
    out: dict[str, Any] = {key: body[key] for key in _BODY_KEYS if key in body}
    data = body.get("data")
    out["data"] = [scrub_event(e, config) for e in data] if isinstance(data, list) else data
    return out
