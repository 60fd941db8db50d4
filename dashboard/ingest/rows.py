"""One store row per event: field parsing and validation, the envelope of a batch.

Owns `build_row`, the definition of every stored value of an event (validity flags and
their reasons, dedup keys, IP and user-agent fingerprints, campaign, stage; never
plaintext PII), and the pieces every log format shares: `Rejected` (a record that
cannot be imported, with a reason free of PII), the `Envelope` of a batch (channel,
dataset, sent time, Meta's answer), timestamps, and Meta's answer read from a response
(`delivery_from_response`, the texts of its error object redacted).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

from dashboard.core.config import Config, resolve_campaign, resolve_stage
from dashboard.core.definitions import MAX_TIMESTAMP_S, MIN_TIMESTAMP_S
from dashboard.core.params import (
    ABSENT,
    PARAMS,
    UNHASHED,
    VALID,
    first_valid,
    format_reasons,
    looks_like_email,
    looks_like_phone,
    redact_pii,
    rejected_combination_flags,
    value_reason,
    value_status,
)
from dashboard.store.database import EVENT_INSERT_COLUMNS

UNKNOWN_DATASET = "(unknown)"


class Rejected(Exception):
    """One record cannot be imported; carries a short reason and a detail without PII."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail
        # A request that cannot be read still waits for its answer (a `Pending`), so
        # the answer is not taken for another request's.
        self.awaits = None


def to_unix_seconds(value: Any, what: str) -> float:
    """Unix seconds from ISO 8601 or Unix seconds (milliseconds are divided); Rejected
    outside 2000-2100."""
    if isinstance(value, bool) or value is None:
        raise Rejected(f"{what} not a timestamp")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(text)
            except ValueError:
                raise Rejected(f"{what} not ISO 8601 or Unix seconds") from None
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            number = parsed.timestamp()
    else:
        raise Rejected(f"{what} not a timestamp")
    if number != number or number in (float("inf"), float("-inf")):
        raise Rejected(f"{what} out of range")
    if number > 1e11:  # milliseconds
        number /= 1000.0
    if not MIN_TIMESTAMP_S <= number <= MAX_TIMESTAMP_S:
        raise Rejected(f"{what} out of range")
    return number


def _event_time(value: Any) -> tuple[int, float, bool]:
    """(raw value, seconds, sent in milliseconds?) for a CAPI event_time."""
    if isinstance(value, bool) or value is None:
        raise Rejected("missing event_time" if value is None else "event_time not a number")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise Rejected("event_time not a number") from None
    if not isinstance(value, int | float):
        raise Rejected("event_time not a number")
    if value != value or value in (float("inf"), float("-inf")) or abs(value) > 9e15:
        raise Rejected("event_time out of range")
    raw = int(value)
    in_ms = raw > 1e11
    seconds = raw / 1000.0 if in_ms else float(raw)
    if not MIN_TIMESTAMP_S <= seconds <= MAX_TIMESTAMP_S:
        raise Rejected("event_time out of range", f"event_time={raw}")
    return raw, seconds, in_ms


def _opt_text(event: dict, key: str, max_len: int = 256) -> str | None:
    value = event.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise Rejected(f"{key} not a string")
    text = str(value).strip()
    return text[:max_len] if text else None


def _safe_identifier(value: Any, *, allow_phone_shape: bool) -> str | None:
    """An identifier kept as sent, unless it is plaintext PII (then its SHA-256)."""
    if isinstance(value, list):
        value = next(
            (v for v in value if isinstance(v, str | int) and not isinstance(v, bool)), None
        )
    if value is None or isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    return safe_text_identifier(str(value), allow_phone_shape)


@lru_cache(maxsize=262_144)
def safe_text_identifier(raw: str, allow_phone_shape: bool) -> str | None:
    """An identifier as stored: as sent (cut to 256), or the SHA-256 of an e-mail (or,
    unless `allow_phone_shape`, of a +country phone), so it still matches itself."""
    # Identifiers repeat (one fbp per visitor): decide once per distinct value.
    text = raw.strip()
    if not text:
        return None
    pii = looks_like_email(text) or (
        not allow_phone_shape and looks_like_phone(text) and text.startswith("+")
    )
    if pii:
        # Keep matching possible (same plaintext on both channels) without keeping it.
        return hashlib.sha256(text.lower().encode()).hexdigest()
    return text[:256]


@lru_cache(maxsize=262_144)
def fingerprint(text: str, lower: bool) -> str:
    """First 16 hex characters of the SHA-256 of a stripped (and, with `lower`,
    lower-cased) value: tells two values apart without keeping either. The vectorised
    path computes the same in SQL (`fastpath_sql.fingerprint`)."""
    text = text.strip()
    if lower:
        text = text.lower()
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _value_fingerprint(param: str, value: Any, *, lower: bool) -> str | None:
    """Fingerprint of the first valid element of a user_data value (None without one)."""
    if value is None:
        return None
    text = first_valid(param, value)
    return fingerprint(text, lower) if text else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value) if value == value and abs(value) < 1e15 else None
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if number == number and abs(number) < 1e15 else None
    return None


@dataclass(frozen=True)
class Envelope:
    """What a record says about the events it carries (channel, batch, Meta's answer)."""

    channel: str
    dataset_id: str
    sent_at: float | None
    is_test: bool
    delivery: str
    http_status: int | None = None
    error_code: int | None = None
    error_subcode: int | None = None
    error_message: str | None = None
    error_user_title: str | None = None
    error_user_msg: str | None = None
    fbtrace_id: str | None = None
    batch_size: int | None = None
    events_received: int | None = None


def int_or_none(value: Any) -> int | None:
    """A 32-bit integer from a JSON integer or ASCII digits, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if abs(value) < 2**31 else None
    if isinstance(value, str) and _SMALL_INT.fullmatch(value.strip()):
        # ASCII digits only: str.isdigit() also accepts "²" and "①", which int() refuses.
        return int(value.strip())
    return None


_SMALL_INT = re.compile(r"-?[0-9]{1,9}")


def delivery_from_response(response: Any) -> dict[str, Any]:
    """Meta's answer to a batch: accepted (2xx), rejected (error) or unknown (no answer)."""
    if not isinstance(response, dict):
        return {"delivery": "unknown"}
    status = int_or_none(response.get("status"))
    body = response.get("body")
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) or (status is not None and status >= 400):
        error = error if isinstance(error, dict) else {}
        return {
            "delivery": "rejected",
            "http_status": status,
            "error_code": int_or_none(error.get("code")),
            "error_subcode": int_or_none(error.get("error_subcode")),
            **{
                column: error_text(error.get(key), limit)
                for column, key, limit in ERROR_TEXT_FIELDS
            },
        }
    if status is not None and 200 <= status < 300:
        received = body.get("events_received") if isinstance(body, dict) else None
        return {
            "delivery": "accepted",
            "http_status": status,
            "events_received": int_or_none(received),
        }
    return {"delivery": "unknown", "http_status": status}


# The texts of Meta's error object as stored: (column, key in the error, longest kept).
ERROR_TEXT_FIELDS = (
    ("error_message", "message", 500),
    ("error_user_title", "error_user_title", 500),
    ("error_user_msg", "error_user_msg", 500),
    ("fbtrace_id", "fbtrace_id", 64),
)


def error_text(value: Any, limit: int) -> str | None:
    """A text of Meta's error object as stored: secrets, e-mails and phones it quotes
    redacted, then cut to `limit`; None for anything but a text."""
    if not isinstance(value, str):
        return None
    # Redacted before the cut (a cut address would escape the pattern), on a bounded
    # window so a huge message cannot make the regex slow.
    return redact_pii(value[:2000])[:limit]


def dataset_or(value: Any, default: str = UNKNOWN_DATASET) -> str:
    """The dataset id a record names, else `default` (`ingest --dataset`, or "(unknown)")."""
    if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
        return str(value).strip()[:64]
    return default


def _event_name(value: Any) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise Rejected("missing event_name")
    if not isinstance(value, str):
        raise Rejected("event_name not a string")
    name = value.strip()
    if len(name) > 128:
        raise Rejected("event_name too long")
    return name


def _container(event: dict, key: str) -> dict:
    """user_data or custom_data: an object, {} when absent or null."""
    value = event.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Rejected(f"{key} not an object")
    return value


def _event_id(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Rejected("event_id not a string")
    # Kept as sent unless it is plaintext PII (an e-mail, a +country phone): then its
    # SHA-256, as for external_id. Checked before the cut to 256 characters.
    return safe_text_identifier(str(value), False) or None


def _param_statuses(user_data: dict) -> tuple[list[int], set[str], bool, str | None]:
    """(status per parameter in PARAMS order, the valid parameters, any plaintext PII,
    the stored reasons of the present parameters that are not valid)."""
    # Visit only the keys the event has (typically 5-10 of the 25 parameters).
    statuses = [ABSENT] * len(PARAMS)
    valid: set[str] = set()
    reasons: dict[str, int] = {}
    has_pii = False
    for key, value in user_data.items():
        slot = _PARAM_POSITION.get(key)
        if slot is None or value is None:
            continue
        status, pii = value_status(key, value)
        statuses[slot] = status
        has_pii = has_pii or pii or status == UNHASHED
        if status == VALID:
            valid.add(key)
        elif status != ABSENT:
            reasons[key] = value_reason(key, value)
    return statuses, valid, has_pii, format_reasons(reasons)


def _identity(user_data: dict, em_valid: bool) -> tuple[str | None, ...]:
    """(fbp, external_id, em_hash, person_key, ip_fp, ua_fp): who the event is about,
    as dedup keys and fingerprints, never as plaintext."""
    fbp = _safe_identifier(user_data.get("fbp"), allow_phone_shape=True)
    external_id = _safe_identifier(user_data.get("external_id"), allow_phone_shape=False)
    em_hash = first_valid("em", user_data.get("em")) if em_valid else None
    person_key = (
        external_id
        or em_hash
        or fbp
        or first_valid("lead_id", user_data.get("lead_id"))
        or _safe_identifier(user_data.get("ctwa_clid"), allow_phone_shape=True)
        or first_valid("page_scoped_user_id", user_data.get("page_scoped_user_id"))
    )
    # The visitor's IP (case folded: IPv6 hex digits) and user agent, as fingerprints.
    ip_fp = _value_fingerprint("client_ip_address", user_data.get("client_ip_address"), lower=True)
    ua_fp = _value_fingerprint("client_user_agent", user_data.get("client_user_agent"), lower=False)
    return fbp, external_id, em_hash, person_key, ip_fp, ua_fp


def _currency(custom_data: dict) -> str | None:
    currency = custom_data.get("currency")
    if isinstance(currency, str) and currency.strip():
        return currency.strip().upper()[:8]
    return None


def _order_id(custom_data: dict) -> str | None:
    """custom_data.order_id as sent: a text (stripped), or an integer's digits; any other
    shape is not an order id (the event is kept, without one)."""
    value = custom_data.get("order_id")
    if isinstance(value, str):
        return value.strip()[:128] or None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not (value.is_integer() and abs(value) < 1e15):
        return None
    return str(int(value))


def build_row(
    event: Any, envelope: Envelope, config: Config, position: tuple[int, int, int]
) -> tuple:
    """One store row (EVENT_INSERT_COLUMNS order) for a raw event, or raise Rejected."""
    if not isinstance(event, dict):
        raise Rejected("event not an object")
    # Checked in this order: the first problem found is the quarantine reason.
    name = _event_name(event.get("event_name"))
    raw_time, event_time, in_ms = _event_time(event.get("event_time"))
    user_data = _container(event, "user_data")
    custom_data = _container(event, "custom_data")
    event_id = _event_id(event.get("event_id"))
    action_source = _opt_text(event, "action_source", 32)
    messaging_channel = _opt_text(event, "messaging_channel", 32)
    if envelope.sent_at is None:
        sent_at, defaulted = event_time, True
    else:
        sent_at, defaulted = envelope.sent_at, False
    statuses, valid, has_pii, reasons = _param_statuses(user_data)
    identity = _identity(user_data, statuses[_EM_SLOT] == VALID)
    source_id, line_no, idx = position
    return (
        source_id,
        line_no,
        idx,
        envelope.channel,
        envelope.dataset_id,
        name,
        event_id,
        raw_time,
        event_time,
        in_ms,
        _utc_day(event_time),
        sent_at,
        defaulted,
        action_source,
        messaging_channel,
        envelope.is_test,
        envelope.delivery,
        envelope.http_status,
        envelope.error_code,
        envelope.error_subcode,
        envelope.error_message,
        envelope.error_user_title,
        envelope.error_user_msg,
        envelope.fbtrace_id,
        envelope.batch_size,
        envelope.events_received,
        resolve_campaign(event, config)[:256],
        resolve_stage(event, config)[:128],
        _number(custom_data.get("value")),
        _currency(custom_data),
        *identity,  # fbp, external_id, em_hash, person_key, ip_fp, ua_fp
        has_pii,
        len(valid),
        *statuses,
        reasons,
        *rejected_combination_flags(valid),
        _order_id(custom_data),
        first_valid("lead_id", user_data.get("lead_id")),
    )


# Meta's answer to a batch, as stored on each of its events.
ANSWER_FIELDS = (
    "delivery",
    "http_status",
    "error_code",
    "error_subcode",
    "error_message",
    "error_user_title",
    "error_user_msg",
    "fbtrace_id",
    "events_received",
)


def with_answer(row: tuple, answer: dict[str, Any]) -> tuple:
    """A built row (EVENT_INSERT_COLUMNS order) with Meta's answer read on a later line."""
    cells = list(row)
    for name in ANSWER_FIELDS:
        cells[_ROW_POSITION[name]] = answer.get(name)
    return tuple(cells)


def without_nul(row: tuple) -> tuple:
    """PostgreSQL text cannot hold NUL (a JSON "\u0000"): drop it wherever text is stored."""
    return tuple(v.replace("\x00", "") if type(v) is str and "\x00" in v else v for v in row)


_ROW_POSITION = {name: i for i, name in enumerate(EVENT_INSERT_COLUMNS)}
_PARAM_POSITION = {param: i for i, param in enumerate(PARAMS)}
_EM_SLOT = _PARAM_POSITION["em"]
_DAY_CACHE: dict[int, date] = {}


def _utc_day(seconds: float) -> date:
    key = int(seconds // 86400)
    day = _DAY_CACHE.get(key)
    if day is None:
        day = datetime.fromtimestamp(key * 86400, tz=UTC).date()
        _DAY_CACHE[key] = day
    return day
