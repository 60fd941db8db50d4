"""Log ingestion: read sent-events logs (JSONL, JSONL.gz, CSV) into the store.

Owns the log format v1 (see README), turning each raw event into one store row
(validity flags, dedup keys, campaign, stage; never plaintext PII), the quarantine of
everything that cannot be imported, and the incremental, crash-safe checkpointing:
rows and the file checkpoint are committed in the same transaction, so a run killed
at any point and started again leaves no duplicate and no gap.
"""

from __future__ import annotations

import csv
import glob
import gzip
import hashlib
import json
import os
import re
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dashboard import dedup
from dashboard.config import Config, load_config, resolve_campaign, resolve_stage
from dashboard.fastpath import BlockParser
from dashboard.params import (
    ABSENT,
    PARAMS,
    UNHASHED,
    VALID,
    first_valid,
    looks_like_email,
    looks_like_phone,
    redact_pii,
    rejected_combination_flags,
    value_status,
)
from dashboard.store import (
    EVENT_INSERT_COLUMNS,
    create_schema,
    events,
    events_arrow_schema,
    get_meta,
    imports,
    insert_arrow,
    insert_rows,
    next_id,
    quarantine,
    set_meta,
    sources,
    write_transaction,
)

CHUNK_LINES = 100_000  # lines per committed block
# Below this many lines a block takes the per-record path: setting up the vectorised
# parser (an in-memory DuckDB) costs more than it saves on a small append.
FAST_PATH_MIN_LINES = 2_000
_READ_BYTES = 1 << 20
MAX_LINE_BYTES = 4 * 1024 * 1024  # a single record above this is quarantined, not parsed
_WINDOW = 256  # bytes before the checkpoint whose hash proves the file was not rewritten
_MIN_TS = 946_684_800  # 2000-01-01
_MAX_TS = 4_102_444_800  # 2100-01-01
LOG_SUFFIXES = (
    ".jsonl",
    ".jsonl.gz",
    ".ndjson",
    ".ndjson.gz",
    ".json",
    ".json.gz",
    ".csv",
    ".csv.gz",
)


class IngestError(RuntimeError):
    """A usage problem: no such path, nothing to import, unreadable file."""


class Rejected(Exception):
    """One record cannot be imported; carries a short reason and a detail without PII."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


@dataclass
class ImportSummary:
    """What one `ingest` run did. Counts add up: see `accounted()`."""

    files: int = 0
    lines_read: int = 0
    lines_already_imported: int = 0
    blank_lines: int = 0
    lines_with_events: int = 0
    lines_quarantined: int = 0
    events_imported: int = 0
    events_quarantined: int = 0
    pending_lines: int = 0  # unfinished last lines left for the next import
    quarantined_by_reason: Counter = field(default_factory=Counter)
    reimported_files: list[str] = field(default_factory=list)
    import_id: int = 0

    def progress(self) -> dict[str, int]:
        """The counts an `imports` row records, as of now."""
        return {
            "lines_read": self.lines_read,
            "lines_already_imported": self.lines_already_imported,
            "events_imported": self.events_imported,
            "events_quarantined": self.events_quarantined,
            "lines_quarantined": self.lines_quarantined,
        }

    def accounted(self) -> bool:
        """Every line read is blank, quarantined whole, or holds imported/quarantined events."""
        return self.lines_read == self.blank_lines + self.lines_quarantined + self.lines_with_events

    def to_text(self) -> str:
        """The human summary `ingest` prints."""
        lines = [
            f"files: {self.files}",
            f"lines read: {self.lines_read:,}"
            + (
                f" (plus {self.lines_already_imported:,} already imported)"
                if self.lines_already_imported
                else ""
            ),
            f"events imported: {self.events_imported:,}",
            f"quarantined: {self.lines_quarantined:,} lines, {self.events_quarantined:,} events",
        ]
        if self.blank_lines:
            lines.append(f"lines without events (blank, CSV header): {self.blank_lines:,}")
        if self.pending_lines:
            lines.append(f"unfinished last lines left for the next import: {self.pending_lines:,}")
        for reason, count in self.quarantined_by_reason.most_common():
            lines.append(f"  {count:>8,}  {reason}")
        for path in self.reimported_files:
            lines.append(
                f"note: {path} changed before its last import point; re-imported from the start"
            )
        return "\n".join(lines)


# ---------------------------------------------------------------------------
# Paths
def expand_paths(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Files named directly, found in folders (recursively) or matched by globs, sorted."""
    found: list[Path] = []
    for entry in paths:
        text = os.fspath(entry)
        if any(ch in text for ch in "*?["):
            matches = sorted(Path(p) for p in glob.glob(text, recursive=True))
            if not matches:
                raise IngestError(f"no file matches {text}")
            found.extend(p for p in matches if p.is_file())
        elif os.path.isdir(text):
            found.extend(
                sorted(
                    p
                    for p in Path(text).rglob("*")
                    if p.is_file() and p.name.endswith(LOG_SUFFIXES)
                )
            )
        elif os.path.isfile(text):
            found.append(Path(text))
        else:
            raise IngestError(f"no such file or folder: {text}")
    unique = list(dict.fromkeys(p.resolve() for p in found))
    if not unique:
        raise IngestError("no log files found (looked for " + ", ".join(LOG_SUFFIXES) + ")")
    return unique


def _is_gzip(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _is_csv(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith(".csv") or name.endswith(".csv.gz")


def _open_binary(path: Path):
    return gzip.open(path, "rb") if _is_gzip(path) else path.open("rb")


# ---------------------------------------------------------------------------
# Field parsing (pure)
def _to_unix_seconds(value: Any, what: str) -> float:
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
    if not _MIN_TS <= number <= _MAX_TS:
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
    if not _MIN_TS <= seconds <= _MAX_TS:
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
    return _safe_text_identifier(str(value), allow_phone_shape)


@lru_cache(maxsize=262_144)
def _safe_text_identifier(raw: str, allow_phone_shape: bool) -> str | None:
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
    batch_size: int | None = None
    events_received: int | None = None


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if abs(value) < 2**31 else None
    if isinstance(value, str) and _SMALL_INT.fullmatch(value.strip()):
        # ASCII digits only: str.isdigit() also accepts "²" and "①", which int() refuses.
        return int(value.strip())
    return None


_SMALL_INT = re.compile(r"-?[0-9]{1,9}")
_KIND_NAME = re.compile(r"[a-z_]{1,40}")


def delivery_from_response(response: Any) -> dict[str, Any]:
    """Meta's answer to a batch: accepted (2xx), rejected (error) or unknown (no answer)."""
    if not isinstance(response, dict):
        return {"delivery": "unknown"}
    status = _int_or_none(response.get("status"))
    body = response.get("body")
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) or (status is not None and status >= 400):
        error = error if isinstance(error, dict) else {}
        message = error.get("message")
        # Redacted before the cut to 500 (a cut address would escape the pattern), on a
        # bounded window so a huge message cannot make the regex slow.
        message = redact_pii(message[:2000])[:500] if isinstance(message, str) else None
        return {
            "delivery": "rejected",
            "http_status": status,
            "error_code": _int_or_none(error.get("code")),
            "error_subcode": _int_or_none(error.get("error_subcode")),
            "error_message": message,
        }
    if status is not None and 200 <= status < 300:
        received = body.get("events_received") if isinstance(body, dict) else None
        return {
            "delivery": "accepted",
            "http_status": status,
            "events_received": _int_or_none(received),
        }
    return {"delivery": "unknown", "http_status": status}


def _dataset(value: Any) -> str:
    if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
        return str(value).strip()[:64]
    return "(unknown)"


def build_row(
    event: Any, envelope: Envelope, config: Config, position: tuple[int, int, int]
) -> tuple:
    """One store row (EVENT_INSERT_COLUMNS order) for a raw event, or raise Rejected."""
    if not isinstance(event, dict):
        raise Rejected("event not an object")
    name = event.get("event_name")
    if name is None or (isinstance(name, str) and not name.strip()):
        raise Rejected("missing event_name")
    if not isinstance(name, str):
        raise Rejected("event_name not a string")
    name = name.strip()
    if len(name) > 128:
        raise Rejected("event_name too long")
    raw_time, event_time, in_ms = _event_time(event.get("event_time"))
    user_data = event.get("user_data")
    if user_data is None:
        user_data = {}
    elif not isinstance(user_data, dict):
        raise Rejected("user_data not an object")
    custom_data = event.get("custom_data")
    if custom_data is None:
        custom_data = {}
    elif not isinstance(custom_data, dict):
        raise Rejected("custom_data not an object")
    event_id_raw = event.get("event_id")
    if event_id_raw is not None and (
        isinstance(event_id_raw, bool) or not isinstance(event_id_raw, str | int)
    ):
        raise Rejected("event_id not a string")
    # Kept as sent unless it is plaintext PII (an e-mail, a +country phone): then its
    # SHA-256, as for external_id. Checked before the cut to 256 characters.
    event_id = _safe_text_identifier(str(event_id_raw), False) if event_id_raw is not None else None
    action_source = _opt_text(event, "action_source", 32)
    messaging_channel = _opt_text(event, "messaging_channel", 32)
    if envelope.sent_at is None:
        sent_at, defaulted = event_time, True
    else:
        sent_at, defaulted = envelope.sent_at, False

    # Visit only the keys the event has (typically 5-10 of the 25 parameters).
    statuses = [ABSENT] * len(PARAMS)
    valid: set[str] = set()
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

    fbp = _safe_identifier(user_data.get("fbp"), allow_phone_shape=True)
    external_id = _safe_identifier(user_data.get("external_id"), allow_phone_shape=False)
    em_hash = first_valid("em", user_data.get("em")) if statuses[_EM_SLOT] == VALID else None
    person_key = (
        external_id
        or em_hash
        or fbp
        or first_valid("lead_id", user_data.get("lead_id"))
        or _safe_identifier(user_data.get("ctwa_clid"), allow_phone_shape=True)
        or first_valid("page_scoped_user_id", user_data.get("page_scoped_user_id"))
    )
    currency = custom_data.get("currency")
    currency = (
        currency.strip().upper()[:8] if isinstance(currency, str) and currency.strip() else None
    )
    campaign = resolve_campaign(event, config)[:256]
    stage = resolve_stage(event, config)[:128]
    source_id, line_no, idx = position
    return (
        source_id,
        line_no,
        idx,
        envelope.channel,
        envelope.dataset_id,
        name,
        event_id or None,
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
        envelope.batch_size,
        envelope.events_received,
        campaign,
        stage,
        _number(custom_data.get("value")),
        currency,
        fbp,
        external_id,
        em_hash,
        person_key,
        has_pii,
        len(valid),
        *statuses,
        *rejected_combination_flags(valid),
    )


def _without_nul(row: tuple) -> tuple:
    """PostgreSQL text cannot hold NUL (a JSON "\u0000"): drop it wherever text is stored."""
    return tuple(v.replace("\x00", "") if type(v) is str and "\x00" in v else v for v in row)


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


# ---------------------------------------------------------------------------
# Records -> events
def _record_events(record: Any) -> tuple[Envelope | None, list[Any]]:
    """Split a parsed JSONL record into its envelope and raw events (Rejected if malformed)."""
    if not isinstance(record, dict):
        raise Rejected("not a JSON object")
    kind = record.get("kind")
    if kind is None and "event_name" in record:
        sent = record.get("sent_at")
        sent_at = _to_unix_seconds(sent, "sent_at") if sent is not None else None
        test_code = record.get("test_event_code")
        envelope = Envelope(
            channel="server",
            dataset_id=_dataset(record.get("dataset_id")),
            sent_at=sent_at,
            is_test=isinstance(test_code, str) and bool(test_code.strip()),
            delivery="unknown",
        )
        return envelope, [record]
    if kind is None:
        raise Rejected("unknown kind", "no kind and no event_name")
    if not isinstance(kind, str) or kind not in ("capi_request", "pixel_event"):
        # The value itself only when it looks like a kind name: it could be anything,
        # plaintext PII included.
        shown = (
            kind if isinstance(kind, str) and _KIND_NAME.fullmatch(kind) else type(kind).__name__
        )
        raise Rejected("unknown kind", shown)
    sent = record.get("sent_at")
    sent_at = _to_unix_seconds(sent, "sent_at") if sent is not None else None
    dataset_id = _dataset(record.get("dataset_id"))
    if kind == "pixel_event":
        event = record.get("event")
        if not isinstance(event, dict):
            raise Rejected("pixel_event without an event object")
        return Envelope("browser", dataset_id, sent_at, False, "unknown"), [event]
    request = record.get("request")
    if not isinstance(request, dict):
        raise Rejected("capi_request without a request object")
    data = request.get("data")
    if not isinstance(data, list):
        raise Rejected("request.data missing or not a list")
    if not data:
        raise Rejected("request.data is empty")
    test_code = request.get("test_event_code")
    answer = delivery_from_response(record.get("response"))
    envelope = Envelope(
        channel="server",
        dataset_id=dataset_id,
        sent_at=sent_at,
        is_test=isinstance(test_code, str) and bool(test_code.strip()),
        batch_size=len(data),
        **answer,
    )
    return envelope, data


CSV_TOP_LEVEL = (
    "event_name",
    "event_time",
    "event_id",
    "action_source",
    "event_source_url",
    "messaging_channel",
    "opt_out",
)


def _csv_cell(value: str) -> Any:
    text = value.strip()
    if text.startswith("[") and text.endswith("]"):
        try:
            parsed = orjson.loads(text)
        except orjson.JSONDecodeError:
            return text
        return parsed
    return text


def csv_row_to_record(header: list[str], row: list[str]) -> tuple[Envelope, dict[str, Any]]:
    """A CSV row (one event) as its envelope and a CAPI-shaped event dict."""
    if len(row) != len(header):
        raise Rejected("CSV row has the wrong number of columns", f"{len(row)} vs {len(header)}")
    cells = {name: value for name, value in zip(header, row, strict=True) if value.strip() != ""}
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
        response = {"status": _int_or_none(cells["response_status"].strip())}
        if "error_code" in cells:
            response["body"] = {
                "error": {
                    "code": _int_or_none(cells["error_code"].strip()),
                    "error_subcode": _int_or_none(cells.get("error_subcode", "").strip()),
                    "message": cells.get("error_message"),
                }
            }
    answer = delivery_from_response(response)
    test_code = cells.get("test_event_code", "")
    envelope = Envelope(
        channel=channel,
        dataset_id=_dataset(cells.get("dataset_id")),
        sent_at=_to_unix_seconds(sent, "sent_at") if sent else None,
        is_test=channel == "server" and bool(test_code.strip()),
        **answer,
    )
    return envelope, event


# ---------------------------------------------------------------------------
# Import run
@dataclass
class _Chunk:
    rows: list[tuple] = field(default_factory=list)
    tables: list[Any] = field(default_factory=list)  # Arrow tables from the fast path
    quarantined: list[dict] = field(default_factory=list)


def _head_fingerprints(path: Path) -> tuple[str, str]:
    """SHA-256 of the file's first line (first two for CSV: header + first row) without
    trailing whitespace, so a first line whose newline (or trailing spaces) arrives later
    still names the same file;
    and the older form with line ends, which stores made before kept."""
    try:
        with _open_binary(path) as fh:
            lines = [fh.readline(65536)]
            if _is_csv(path):
                lines.append(fh.readline(65536))
    except (EOFError, zlib.error, gzip.BadGzipFile):
        # A damaged gzip: identify it by its raw bytes; the import quarantines the damage.
        with path.open("rb") as fh:
            raw = hashlib.sha256(b"raw:" + fh.read(65536)).hexdigest()
        return raw, raw
    bare = b"".join(line.rstrip() + b"\n" for line in lines)
    return hashlib.sha256(bare).hexdigest(), hashlib.sha256(b"".join(lines)).hexdigest()


def _window_hash(path: Path, offset: int) -> str | None:
    """Hash of the bytes just before `offset` (None when the file is shorter than that)."""
    start = max(0, offset - _WINDOW)
    try:
        with _open_binary(path) as fh:
            fh.seek(start)
            window = fh.read(offset - start)
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile):
        return None
    if len(window) != offset - start:
        return None
    return hashlib.sha256(window).hexdigest()


class _Tail:
    """The last bytes read, so a checkpoint's window hash needs no second read of the file
    (for gzip a second read means decompressing again from the start, at every commit)."""

    def __init__(self, start: int = 0) -> None:
        self.recent = b""
        self.end = start  # file offset just after the last bytes added

    def add(self, data: bytes) -> None:
        self.recent = (self.recent + data[-_WINDOW:])[-_WINDOW:]
        self.end += len(data)

    def window_hash(self, offset: int) -> str | None:
        """Hash of the bytes before `offset`, or None when they were not all read here."""
        wanted = min(offset, _WINDOW)
        if offset != self.end or len(self.recent) < wanted:
            return None  # e.g. a pending last line was read past the checkpoint
        return hashlib.sha256(self.recent[len(self.recent) - wanted :]).hexdigest()


class _Importer:
    def __init__(
        self,
        engine: Engine,
        config: Config,
        import_id: int,
        summary: ImportSummary,
        vectorised: bool | None = None,
    ):
        self.engine = engine
        self.config = config
        self.import_id = import_id
        self.summary = summary
        self.vectorised = vectorised
        self._parser: BlockParser | None = None
        self._writer: ThreadPoolExecutor | None = None
        self._pending: Future | None = None

    def close(self) -> None:
        """Release the parser and the writer thread (after the write in flight ends: a
        block being committed is finished even when the import failed elsewhere)."""
        if self._parser is not None:
            self._parser.close()
        if self._writer is not None:
            self._writer.shutdown(wait=True)

    # -- checkpoint bookkeeping ------------------------------------------------
    def _source(self, path: Path) -> tuple[int, int, int, bool]:
        """(source_id, lines_done, bytes_done, is_new) for a file.

        A file is the same source as an imported one when its first line matches and the
        bytes just before that source's checkpoint match too (a renamed, gzipped or grown
        copy). Same first line but different content: a different file, unless it sits at
        the same path, in which case it was rewritten and is imported again from scratch.
        """
        fingerprint, legacy_fingerprint = _head_fingerprints(path)
        with write_transaction(self.engine) as connection:
            candidates = (
                connection.execute(
                    sa.select(sources)
                    .where(
                        sources.c.head_fingerprint.in_(sorted({fingerprint, legacy_fingerprint}))
                    )
                    .order_by(sources.c.source_id)
                )
                .mappings()
                .all()
            )
            for row in candidates:
                if (
                    row["bytes_done"] == 0
                    or _window_hash(path, row["bytes_done"]) == row["last_line_hash"]
                ):
                    connection.execute(
                        sa.update(sources)
                        .where(sources.c.source_id == row["source_id"])
                        .values(head_fingerprint=fingerprint)
                    )
                    # Pseudo-lines (e.g. "truncated gzip") recorded past the checkpoint are redone.
                    connection.execute(
                        sa.delete(quarantine).where(
                            quarantine.c.source_id == row["source_id"],
                            quarantine.c.line_no > row["lines_done"],
                        )
                    )
                    return row["source_id"], row["lines_done"], row["bytes_done"], False
            rewritten = [row for row in candidates if row["path"] == str(path)]
            if rewritten:
                source_id = rewritten[0]["source_id"]
                connection.execute(sa.delete(events).where(events.c.source_id == source_id))
                connection.execute(sa.delete(quarantine).where(quarantine.c.source_id == source_id))
                dedup.request_full_refresh(connection)
                connection.execute(
                    sa.update(sources)
                    .where(sources.c.source_id == source_id)
                    .values(lines_done=0, bytes_done=0, last_line_hash=None)
                )
                set_meta(connection, "data_version", get_meta(connection, "data_version") + 1)
                self.summary.reimported_files.append(str(path))
                return source_id, 0, 0, True
            source_id = next_id(connection, sources.c.source_id)
            connection.execute(
                sa.insert(sources).values(
                    source_id=source_id,
                    head_fingerprint=fingerprint,
                    path=str(path),
                    lines_done=0,
                    bytes_done=0,
                    last_line_hash=None,
                    updated_at=time.time(),
                )
            )
            return source_id, 0, 0, True

    def _commit(
        self,
        chunk: _Chunk,
        source_id: int,
        path: Path,
        lines_done: int,
        bytes_done: int,
        tail: _Tail | None = None,
        *,
        background: bool = False,
    ) -> None:
        """Write the chunk with its checkpoint in one transaction, and empty the chunk.

        With `background`, the write runs on the writer thread while the caller parses the
        next block (DuckDB and the database driver release the GIL); the caller's next
        commit waits for it first, so blocks still commit one at a time and in file order.
        """
        window = None
        if bytes_done:
            window = (tail.window_hash(bytes_done) if tail else None) or _window_hash(
                path, bytes_done
            )
        progress = self.summary.progress()  # a snapshot: the summary moves on meanwhile
        block = _Chunk(chunk.rows, chunk.tables, chunk.quarantined)
        chunk.rows, chunk.tables, chunk.quarantined = [], [], []
        self.wait_for_writes()

        def write() -> None:
            self._write(block, source_id, path, lines_done, bytes_done, window, progress)

        if background:
            if self._writer is None:
                self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="eqm-writer")
            self._pending = self._writer.submit(write)
        else:
            write()

    def wait_for_writes(self) -> None:
        """Wait for the write in flight, if any; its error is raised here."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def _write(
        self,
        chunk: _Chunk,
        source_id: int,
        path: Path,
        lines_done: int,
        bytes_done: int,
        window: str | None,
        progress: dict[str, int],
    ) -> None:
        with write_transaction(self.engine) as connection:
            insert_rows(connection, events, EVENT_INSERT_COLUMNS, chunk.rows)
            for table in chunk.tables:
                insert_arrow(connection, events, table)
            if chunk.quarantined:
                connection.execute(sa.insert(quarantine), chunk.quarantined)
            connection.execute(
                sa.update(sources)
                .where(sources.c.source_id == source_id)
                .values(
                    lines_done=lines_done,
                    bytes_done=bytes_done,
                    last_line_hash=window,
                    path=str(path),
                    updated_at=time.time(),
                )
            )
            set_meta(connection, "data_version", get_meta(connection, "data_version") + 1)
            connection.execute(
                sa.update(imports).where(imports.c.import_id == self.import_id).values(**progress)
            )

    def _quarantine(
        self, chunk: _Chunk, source_id: int, path: Path, line_no: int, idx: int, exc: Rejected
    ) -> None:
        chunk.quarantined.append(
            {
                "source_id": source_id,
                "line_no": line_no,
                "idx": idx,
                "import_id": self.import_id,
                "path": str(path),
                "reason": exc.reason[:64].replace("\x00", ""),
                "detail": exc.detail[:300].replace("\x00", "") or None,
            }
        )
        self.summary.quarantined_by_reason[exc.reason] += 1
        if idx < 0:
            self.summary.lines_quarantined += 1
        else:
            self.summary.events_quarantined += 1

    # -- one file ---------------------------------------------------------------
    def import_file(self, path: Path) -> None:
        source_id, lines_done, bytes_done, _ = self._source(path)
        self.summary.lines_already_imported += lines_done
        self.summary.files += 1
        if _is_csv(path):
            self._import_csv(path, source_id, lines_done, bytes_done)
        else:
            self._import_jsonl(path, source_id, lines_done, bytes_done)

    def _handle_events(
        self, chunk, source_id, path, line_no, envelope, raw_events, nul: bool = False
    ) -> None:
        """`nul`: the line may hold a NUL (only a JSON \\u0000 escape can put one in a
        parsed JSONL value; CSV lines are decoded without them), so rows are cleaned."""
        self.summary.lines_with_events += 1
        for idx, raw in enumerate(raw_events):
            try:
                row = build_row(raw, envelope, self.config, (source_id, line_no, idx))
                chunk.rows.append(_without_nul(row) if nul else row)
                self.summary.events_imported += 1
            except Rejected as exc:
                self._quarantine(chunk, source_id, path, line_no, idx, exc)

    def _import_jsonl(self, path: Path, source_id: int, lines_done: int, bytes_done: int) -> None:
        """JSONL in blocks of up to CHUNK_LINES complete lines, each committed with its
        checkpoint. A block goes through the vectorised parser first; the lines it leaves
        (and every line when `vectorised` is off) take the per-record path."""
        chunk = _Chunk()
        line_no = lines_done
        offset = bytes_done
        gzipped = _is_gzip(path)
        tail = _Tail()
        damage: Exception | None = None
        with _open_binary(path) as fh:
            try:
                if bytes_done:
                    fh.seek(bytes_done - 1)
                    if fh.read(1) != b"\n":
                        # The last import ended on a line with no newline yet: if the writer
                        # has since finished it with a bare newline, that newline is not a line.
                        peek = fh.read(1)
                        if peek == b"\n":
                            offset += 1
                        else:
                            fh.seek(bytes_done)
            except (EOFError, zlib.error, gzip.BadGzipFile, OSError) as exc:
                damage = exc
            tail = _Tail(start=offset)
            carry = b""
            while damage is None:
                pieces = [carry]
                newlines = carry.count(b"\n")
                at_end = False
                while newlines < CHUNK_LINES:
                    try:
                        # read1: one underlying read at a time, so on a damaged gzip
                        # everything decompressed before the damage is kept.
                        piece = fh.read1(_READ_BYTES)
                    except (EOFError, zlib.error, gzip.BadGzipFile, OSError) as exc:
                        damage = exc
                        break
                    if not piece:
                        at_end = True
                        break
                    pieces.append(piece)
                    newlines += piece.count(b"\n")
                data = b"".join(pieces)
                ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)[:CHUNK_LINES] + 1
                cut = int(ends[-1]) if len(ends) else 0
                block, carry = data[:cut], data[cut:]
                if len(ends):
                    self._import_block(chunk, source_id, path, line_no + 1, block, ends)
                    line_no += len(ends)
                    offset += cut
                    tail.add(block)
                if at_end and carry:
                    unbommed = (
                        carry[len(_BOM) :] if line_no == 0 and carry.startswith(_BOM) else carry
                    )
                    if not gzipped and not _parses(unbommed):
                        # The writer is still writing this last line: leave it for next time.
                        self.summary.pending_lines += 1
                    else:
                        line_no += 1
                        offset += len(carry)
                        tail.add(carry)
                        self.summary.lines_read += 1
                        self._import_line(chunk, source_id, path, line_no, carry)
                if damage is None and not at_end:
                    self._commit(chunk, source_id, path, line_no, offset, tail, background=True)
                if at_end:
                    break
        if damage is not None:
            # Truncated or corrupt gzip: everything before the damage is kept, and the
            # damage itself is recorded as a quarantined pseudo-line after the last one.
            self.summary.lines_read += 1
            self._quarantine(
                chunk,
                source_id,
                path,
                line_no + 1,
                -1,
                Rejected("truncated or corrupt gzip", type(damage).__name__),
            )
        self._commit(chunk, source_id, path, line_no, offset, tail)

    def _import_block(
        self, chunk: _Chunk, source_id: int, path: Path, first_line_no: int, block: bytes, ends
    ) -> None:
        self.summary.lines_read += len(ends)
        fast = self.vectorised or (self.vectorised is None and len(ends) >= FAST_PATH_MIN_LINES)
        if fast:
            if self._parser is None:
                self._parser = BlockParser(self.config, EVENT_INSERT_COLUMNS, events_arrow_schema())
            rows, leftover = self._parser.parse(
                block, ends, first_line_no, source_id, MAX_LINE_BYTES
            )
            chunk.tables.append(rows)
            self.summary.events_imported += rows.num_rows
            self.summary.lines_with_events += len(ends) - len(leftover)
        else:
            leftover = range(len(ends))
        for i in map(int, leftover):
            start = int(ends[i - 1]) if i else 0
            self._import_line(chunk, source_id, path, first_line_no + i, block[start : ends[i]])

    def _import_line(
        self, chunk: _Chunk, source_id: int, path: Path, line_no: int, line: bytes
    ) -> None:
        if line_no == 1 and line.startswith(_BOM):
            line = line[len(_BOM) :]
        if not line.strip():
            self.summary.blank_lines += 1
            return
        try:
            if len(line) > MAX_LINE_BYTES:
                raise Rejected("line too long", f"{len(line)} bytes")
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                try:
                    text = line.decode("utf-8")
                except UnicodeDecodeError:
                    raise Rejected("not UTF-8") from None
                record = _lenient_loads(text)
            envelope, raw_events = _record_events(record)
        except Rejected as exc:
            self._quarantine(chunk, source_id, path, line_no, -1, exc)
            return
        except RecursionError:
            self._quarantine(chunk, source_id, path, line_no, -1, Rejected("nested too deeply"))
            return
        self._handle_events(
            chunk, source_id, path, line_no, envelope, raw_events, nul=b"\\u0000" in line
        )

    def _import_csv(self, path: Path, source_id: int, records_done: int, bytes_done: int) -> None:
        """CSV, one event per record; checkpoints are byte offsets like JSONL's.

        Bytes are decoded line by line (a bad byte quarantines its record, not the rest
        of the file); line numbers are record numbers, the header being record 1.
        """
        chunk = _Chunk()
        since_commit = 0
        gzipped = _is_gzip(path)
        record_no = records_done
        offset = bytes_done
        feeder = None
        try:
            with _open_binary(path) as fh:
                header, header_bytes, header_records = _read_csv_header(fh, gzipped)
                if not header_records:
                    return  # empty, or blank lines only so far: wait for a header
                if records_done == 0:
                    # Leading blank lines and the header: read, hold no event.
                    self.summary.lines_read += header_records
                    self.summary.blank_lines += header_records - (header is None)
                    record_no = header_records
                    offset = header_bytes
                    if header is None:
                        self._quarantine(
                            chunk,
                            source_id,
                            path,
                            record_no,
                            -1,
                            Rejected("malformed CSV header"),
                        )
                else:
                    fh.seek(bytes_done)
                header_len = header_bytes
                feeder = _LineFeeder(fh, start=bytes_done or header_len)
                reader = csv.reader(feeder)
                while True:
                    try:
                        row = next(reader)
                    except StopIteration:
                        break
                    except csv.Error as exc:
                        record_no += 1
                        self.summary.lines_read += 1
                        offset = (bytes_done or header_len) + feeder.consumed
                        self._quarantine(
                            chunk,
                            source_id,
                            path,
                            record_no,
                            -1,
                            Rejected("malformed CSV", str(exc)[:100]),
                        )
                        continue
                    if (feeder.unterminated or feeder.exhausted) and not gzipped:
                        # A last row with no newline may still be being written (even a
                        # row with all its columns can be cut inside the last field), and
                        # so may one whose quoted field the file ended in: they wait.
                        self.summary.pending_lines += 1
                        break
                    record_no += 1
                    offset = (bytes_done or header_len) + feeder.consumed
                    self.summary.lines_read += 1
                    since_commit += 1
                    if header is None:
                        self._quarantine(
                            chunk, source_id, path, record_no, -1, Rejected("no usable CSV header")
                        )
                    else:
                        self._import_csv_row(chunk, source_id, path, record_no, header, row)
                    if since_commit >= CHUNK_LINES:
                        self._commit(chunk, source_id, path, record_no, offset, feeder.tail)
                        since_commit = 0
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            self.summary.lines_read += 1
            self._quarantine(
                chunk,
                source_id,
                path,
                record_no + 1,
                -1,
                Rejected("truncated or corrupt gzip", type(exc).__name__),
            )
        self._commit(chunk, source_id, path, record_no, offset, feeder.tail if feeder else None)

    def _import_csv_row(self, chunk, source_id, path, record_no, header, row) -> None:
        if not any(cell.strip() for cell in row):
            self.summary.blank_lines += 1
            return
        try:
            "".join(row).encode("utf-8")
        except UnicodeEncodeError:  # undecodable bytes were kept as surrogates
            self._quarantine(chunk, source_id, path, record_no, -1, Rejected("not UTF-8"))
            return
        try:
            envelope, event = csv_row_to_record(header, row)
        except Rejected as exc:
            self._quarantine(chunk, source_id, path, record_no, -1, exc)
            return
        self._handle_events(chunk, source_id, path, record_no, envelope, [event])


_BOM = b"\xef\xbb\xbf"


def _read_csv_header(fh, gzipped: bool) -> tuple[list[str] | None, int, int]:
    """(header or None if unparseable, bytes it took, records it took) at a CSV's start.

    Leading blank lines are skipped (and counted); a BOM is dropped before decoding, so
    a quoted first header cell is still recognised.
    """
    consumed = 0
    records = 0
    while True:
        line = fh.readline(MAX_LINE_BYTES)
        if not line:
            # Blank lines only, so far: nothing to read until a header arrives.
            return None, 0, 0
        first = consumed == 0
        consumed += len(line)
        records += 1
        if first and line.startswith(_BOM):
            line = line[len(_BOM) :]
        if not line.strip():
            continue
        try:
            header = [h.strip() for h in next(csv.reader([_decode(line)]), [])]
        except csv.Error:  # e.g. bare CRs: an old Mac file, read as one line
            return None, consumed, records
        if not line.endswith(b"\n") and not gzipped:
            # A header still being written (its CRLF half there, or a quoted CR in it):
            # wait for its newline.
            return None, 0, 0
        return (header if any(header) else None), consumed, records


csv.field_size_limit(MAX_LINE_BYTES)


def _decode(line: bytes) -> str:
    # surrogateescape keeps bad bytes visible to the row check instead of failing the file
    return line.decode("utf-8", errors="surrogateescape").replace("\x00", "")


_READER = threading.local()


def _lenient_loads(text: str) -> Any:
    """A record orjson refused, read as DuckDB's JSON reader reads it (the vectorised path).

    DuckDB accepts NaN and Infinity, numbers beyond a double's range and trailing commas,
    which some loggers write (Python's json.dumps writes NaN). Both paths must agree on
    which lines are JSON, so both accept these; a NaN value then counts as missing.
    Anything DuckDB refuses too is malformed.
    """
    reader = getattr(_READER, "connection", None)
    if reader is None:
        import duckdb

        reader = _READER.connection = duckdb.connect()
    try:
        normalised = reader.execute(
            "SELECT CASE WHEN json_valid($1) THEN CAST(json($1) AS VARCHAR) END", [text]
        ).fetchall()[0][0]
    except Exception:  # noqa: BLE001 - anything DuckDB cannot read is not JSON to us
        normalised = None
    if normalised is None:
        raise Rejected("malformed JSON")
    # DuckDB also reads nan/inf in any case; Python's reader knows NaN and Infinity only.
    normalised = _NON_FINITE.sub(_python_constant, normalised)
    try:
        # Integers outside orjson's 64-bit range become floats there: the same here.
        return json.loads(normalised, parse_int=_orjson_int)
    except ValueError:
        raise Rejected("malformed JSON") from None


# A JSON string (kept as is) or a bare nan/inf/infinity token outside strings.
_NON_FINITE = re.compile(r'("(?:[^"\\]|\\.)*")|(-?)(nan|infinity|inf)\b', re.IGNORECASE)


def _python_constant(match: re.Match) -> str:
    if match.group(1) is not None:
        return match.group(1)
    if match.group(3).lower() == "nan":
        return "NaN"  # a sign on NaN means nothing, and Python's reader refuses "-NaN"
    return match.group(2) + "Infinity"


def _orjson_int(digits: str) -> int | float:
    value = int(digits)
    return value if -(2**63) <= value < 2**64 else float(digits)


def _parses(line: bytes) -> bool:
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError:
        try:
            _lenient_loads(line.decode("utf-8"))
        except (UnicodeDecodeError, Rejected, RecursionError):
            return False
    return True


class _LineFeeder:
    """Decoded lines for csv.reader, counting the bytes handed out (for checkpoints)."""

    def __init__(self, fh, start: int = 0) -> None:
        self.fh = fh
        self.consumed = 0
        self.unterminated = False
        self.exhausted = False  # the file ended while the reader wanted more of a row
        self.tail = _Tail(start)

    def __iter__(self) -> _LineFeeder:
        return self

    def __next__(self) -> str:
        line = self.fh.readline()
        if not line:
            self.exhausted = True
            raise StopIteration
        self.consumed += len(line)
        self.tail.add(line)
        self.unterminated = not line.endswith(b"\n")
        return _decode(line)


def ingest(
    paths: Iterable[str | os.PathLike],
    engine: Engine,
    *,
    config: Config | None = None,
    update_dedup: bool = True,
    vectorised: bool | None = None,
) -> ImportSummary:
    """Import every log file under `paths` into the store behind `engine`.

    JSONL blocks of at least FAST_PATH_MIN_LINES lines go through the vectorised parser
    (`dashboard.fastpath`); `vectorised=True` sends every block there, `False` none (the
    per-record Python path, which the vectorised one is tested against).
    """
    config = config or load_config()
    files = expand_paths(paths)
    create_schema(engine)
    summary = ImportSummary()
    with write_transaction(engine) as connection:
        import_id = next_id(connection, imports.c.import_id)
        connection.execute(
            sa.insert(imports).values(
                import_id=import_id,
                started_at=time.time(),
                paths="\n".join(map(str, files))[:4000],
                **summary.progress(),
                status="running",
            )
        )
    summary.import_id = import_id
    importer = _Importer(engine, config, import_id, summary, vectorised)
    status = "failed"
    try:
        for path in files:
            importer.import_file(path)
        status = "done"
    finally:
        importer.close()
        if update_dedup:
            # Also after a failure: the chunks that did commit must get their dedup status.
            try:
                dedup.refresh_if_stale(engine)
            except Exception:  # noqa: BLE001 - never mask the original error
                if status == "done":
                    raise
        try:
            with write_transaction(engine) as connection:
                connection.execute(
                    sa.update(imports)
                    .where(imports.c.import_id == import_id)
                    .values(finished_at=time.time(), status=status)
                )
        except Exception:  # noqa: BLE001 - never mask the original error
            if status == "done":
                raise
    return summary
