"""From a finding to its events: which events each finding, parameter status, dedup status
and Meta error lists, and why each event is on the list, in words.

Owns `FINDINGS`, one entry per diagnostic key with its meaning in a sentence and how its
events are selected: a registry measure's own `Count` (so a list holds exactly the events
the finding counts), a named condition, or an integrity rule's SELECT of positions. The
SQL is dashboard.store.queries.events'. `event_page` and `iter_events` return readable
frames: identity, where in the log (file and line), the failing field and why. Nothing
here can show a plaintext value: the store holds none, and ids are passed through
`redact_pii` in case an integration used an e-mail address as event_id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from dashboard.core.config import Config
from dashboard.core.definitions import DEDUP_WINDOW_S
from dashboard.core.filters import Filters
from dashboard.core.measures import BY_KEY
from dashboard.core.params import (
    INVALID,
    PARAMS,
    UNHASHED,
    VALID,
    parse_reasons,
    reason_text,
    redact_pii,
)
from dashboard.core.selection import Selection
from dashboard.quality import integrity
from dashboard.quality.diagnostics import INFO_DEDUP_TEXTS, INVALID_PARAM_FIXES
from dashboard.store.handles import Engine
from dashboard.store.queries import events as queries
from dashboard.store.queries.common import count_condition

PAGE_SIZES = (50, 100, 500)
DEDUP_WHY = {
    "browser_only": "no server event with this event_id within 48 h",
    "server_only": "no browser event with this event_id within 48 h",
    "missing_event_id": "no event_id: only Meta's fbp/external_id fallback can pair it",
    "outside_48h": "its twin with this event_id is more than 48 h away",
    "same_channel_repeat": "an earlier event of the same channel has this event_id (a retry?)",
    "deduplicated": "paired with its twin by event_id within 48 h",
    "fallback_deduplicated": "paired by Meta's fbp/external_id fallback, not by event_id",
    "likely_double_counted": "escapes dedup although the same person's browser event of the "
    "same name is within 5 minutes: Meta counts both",
}


@dataclass(frozen=True)
class Listed:
    """How a finding's events are selected: a condition on events, positions from an
    integrity query, or both; `field` names the field at fault (None: per row)."""

    condition: Any = None
    positions: Any = None
    field: str | None = None


@dataclass(frozen=True)
class FindingList:
    """One listable finding: its key, its meaning in a sentence, and its selection."""

    key: str
    meaning: str
    select: Callable[[Engine, Filters, Config, Selection], Listed]


def _measure(key: str, field: str | None = None):
    """Selection by a registry measure's own Count: the list is what the number counts."""

    def select(engine: Engine, filters: Filters, config: Config, selection: Selection) -> Listed:
        return Listed(count_condition(BY_KEY[key].aggregate, config), field=field)

    return select


def _condition(make: Callable[[], Any], field: str | None = None):
    def select(engine: Engine, filters: Filters, config: Config, selection: Selection) -> Listed:
        return Listed(make(), field=field)

    return select


def _gap_params(engine: Engine, filters: Filters, config: Config, selection: Selection) -> Listed:
    params = [p for p in (selection.on_parameter or "").split(",") if p in PARAMS]
    return Listed(queries.not_valid_any(params or ["em", "ph", "external_id", "fbp"]))


def _reused(engine: Engine, filters: Filters, config: Config, selection: Selection) -> Listed:
    return Listed(positions=integrity.reused_id_events(filters), field="event_id")


def _mismatched(engine: Engine, filters: Filters, config: Config, selection: Selection) -> Listed:
    wanted = selection.on_parameter
    parameters = [wanted] if wanted in integrity.TWIN_PARAMETERS else integrity.TWIN_PARAMETERS
    union = integrity.union_of([integrity.mismatched_twin_events(filters, p) for p in parameters])
    return Listed(positions=union, field=",".join(parameters))


def _stopped(engine: Engine, filters: Filters, config: Config, selection: Selection) -> Listed:
    stops = [
        stop
        for stop in integrity.channel_stops(engine, filters, config)
        if selection.event_name in (None, stop.event_name)
    ]
    queries_ = [integrity.channel_stop_events(filters, stop) for stop in stops]
    return Listed(positions=integrity.union_of(queries_) if queries_ else None,
                  condition=None if queries_ else queries.nothing())  # fmt: skip


def _transformed(engine: Engine, filters: Filters, config: Config, selection: Selection) -> Listed:
    return Listed(positions=integrity.transformed_id_twins(filters), field="event_id")


def _finding_lists() -> dict[str, FindingList]:
    rows: list[tuple[str, str, Callable]] = [
        ("unhashed_pii", "server events with plaintext personal data in a field Meta wants "
         "hashed", _measure("unhashed_pii")),
        ("token_errors", "server events rejected for an access token or permission error "
         "(codes 190/200)", _condition(queries.token_errors, "batch")),
        ("rejected_events", "server events in batches Meta rejected for any other error",
         _condition(lambda: queries.token_errors(False), "batch")),
        ("likely_double_counted", "server events that escape dedup although the same person's "
         "browser event is within 5 minutes", _measure("dedup.likely_double_counted", "event_id")),
        ("missing_event_id", "accepted server events without event_id",
         _measure("server_without_event_id", "event_id")),
        ("stale_events", "events sent more than 7 days after event_time",
         _measure("freshness.stale_over_7d", "event_time")),
        ("future_events", "events whose event_time is over 60 s after they were sent",
         _measure("freshness.future", "event_time")),
        ("event_time_in_ms", "server events whose event_time was sent in milliseconds",
         _measure("event_time_in_ms", "event_time")),
        ("test_event_code", "server events sent with test_event_code",
         _measure("test_events", "test_event_code")),
        ("rejected_combination", "server events whose only valid customer parameters form a "
         "combination Meta rejects", _measure("rejected_combination", "user_data")),
        ("events_received_shortfall", "server events of accepted batches where Meta reported "
         "fewer events_received than were sent", _condition(queries.received_shortfall, "batch")),
        *[(f"invalid_{p}", f"server events with a malformed {p}",
           _measure(f"invalid_parameters.{p}", p)) for p in INVALID_PARAM_FIXES],
        ("low_event_coverage", "browser (Pixel) events with no server twin by event_id within "
         "48 h", _condition(queries.uncovered_browser, "event_id")),
        ("parameter_gap", "server events of one campaign lacking a parameter other campaigns "
         "send", _gap_params),
        ("late_stage", "server events of a funnel stage sent late",
         _condition(queries.server_events, "sent_at")),
        ("reused_event_id", "events under an event_id shared by many different events",
         _reused),
        ("mismatched_twin_parameter", "server events whose fbp, client IP or user agent "
         "differs from their browser twin's", _mismatched),
        ("channel_stopped", "the other channel's events after one channel went silent",
         _stopped),
        ("transformed_event_id", "server events missing their Pixel twin only by a "
         "transformed event_id or event_name casing", _transformed),
        *[(f"dedup_{s}", f"accepted server events with dedup status {s}",
           _measure(f"dedup.server.{s}", "event_id")) for s in INFO_DEDUP_TEXTS],
        ("unanswered_batches", "server events whose batch got no answer from Meta",
         _condition(queries.unanswered, "batch")),
    ]  # fmt: skip
    return {key: FindingList(key, meaning, select) for key, meaning, select in rows}


FINDINGS: dict[str, FindingList] = _finding_lists()


# ---------------------------------------------------------------------------
def _narrowed(filters: Filters, selection: Selection) -> Filters:
    """The slice narrowed to the selection's subject (one event name, campaign, stage)."""
    narrowed = filters
    for field, value in (
        ("event_names", selection.event_name),
        ("campaigns", selection.campaign),
        ("stages", selection.funnel_stage),
    ):
        if value is None:
            continue
        current = getattr(narrowed, field)
        # A subject outside the sidebar's own filter lists nothing, as it should.
        keep = (value,) if not current or value in current else ("\x00",)
        narrowed = replace(narrowed, **{field: keep})
    return narrowed


def listed(engine: Engine, filters: Filters, config: Config, selection: Selection) -> Listed:
    """How `selection`'s events are selected (raises KeyError for an unknown finding)."""
    if selection.kind == "parameter":
        condition = queries.parameter_status(selection.parameter or "", selection.status_code)
        return Listed(condition, field=selection.parameter)
    if selection.kind == "dedup":
        return Listed(queries.dedup_status(selection.dedup or ""), field="event_id")
    if selection.kind == "error":
        condition = queries.rejected_batches(selection.error_code, selection.error_subcode)
        return Listed(condition, field="batch")
    if selection.finding not in FINDINGS:
        raise KeyError(selection.finding)
    return FINDINGS[selection.finding].select(engine, filters, config, selection)


def event_query(engine: Engine, filters: Filters, config: Config, selection: Selection):
    """The unordered list query of `selection` in the slice."""
    narrowed = _narrowed(filters, selection)
    how = listed(engine, narrowed, config, selection)
    return queries.listing(narrowed, condition=how.condition, positions=how.positions)


def event_page(
    engine: Engine,
    filters: Filters,
    config: Config,
    selection: Selection,
    *,
    sort: str = "sent_at",
    descending: bool = True,
    offset: int = 0,
    limit: int = 100,
) -> tuple[pd.DataFrame, int]:
    """One page of the readable list and the list's total."""
    query = event_query(engine, filters, config, selection)
    total = queries.count_listed(engine, query)
    page = queries.list_page(engine, queries.ordered(query, sort, descending), offset, limit)
    return readable(page, selection), total


def iter_events(
    engine: Engine,
    filters: Filters,
    config: Config,
    selection: Selection,
    *,
    sort: str = "sent_at",
    descending: bool = True,
    limit: int | None = None,
    chunk_rows: int = 20_000,
) -> Iterator[pd.DataFrame]:
    """The whole readable list (or its first `limit` rows), in chunks."""
    query = queries.ordered(event_query(engine, filters, config, selection), sort, descending)
    if limit is not None:
        query = query.limit(limit)
    for chunk in queries.iter_list(engine, query, chunk_rows):
        yield readable(chunk, selection)


# ---------------------------------------------------------------------------
# Readable rows
READABLE_COLUMNS = (
    "event_time",
    "event_name",
    "channel",
    "field",
    "why",
    "event_id",
    "twin_event_id",
    "campaign",
    "funnel_stage",
    "dataset_id",
    "source_file",
    "line",
    "event_in_line",
    "sent_at",
    "error_code",
    "error_subcode",
    "error_user_title",
    "error_user_msg",
    "fbtrace_id",
)


def _utc(seconds: pd.Series) -> pd.Series:
    return pd.to_datetime(seconds, unit="s", utc=True).dt.strftime("%Y-%m-%d %H:%M:%S UTC")


def readable(frame: pd.DataFrame, selection: Selection) -> pd.DataFrame:
    """The list's rows as people read them: identity, where in the log, field and why."""
    if frame.empty:
        return pd.DataFrame(columns=list(READABLE_COLUMNS))
    rows = [_field_and_why(row, selection) for row in frame.to_dict("records")]
    out = pd.DataFrame(
        {
            "event_id": frame["event_id"].map(_redacted),
            "event_time": _utc(frame["event_time"]),
            "sent_at": _utc(frame["sent_at"]),
            "dataset_id": frame["dataset_id"],
            "event_name": frame["event_name"],
            "channel": frame["channel"],
            "campaign": frame["campaign"],
            "funnel_stage": frame["funnel_stage"],
            "source_file": frame["source_path"],
            "line": frame["line_no"].astype("int64"),
            # Events of one CAPI request share its line: their index in its data array.
            "event_in_line": frame["idx"].map(lambda i: None if i is None or i < 0 else i + 1),
            "field": [field for field, _ in rows],
            "why": [why for _, why in rows],
            "error_code": frame["error_code"].astype("Int64"),
            "error_subcode": frame["error_subcode"].astype("Int64"),
            "error_user_title": frame["error_user_title"],
            "error_user_msg": frame["error_user_msg"],
            "fbtrace_id": frame["fbtrace_id"],
            "twin_event_id": frame["twin_event_id"].map(_redacted)
            if "twin_event_id" in frame
            else None,
        }
    )
    return out[list(READABLE_COLUMNS)]


def _redacted(value: Any) -> Any:
    return redact_pii(value) if isinstance(value, str) else value


def _parameter_why(param: str, status: int, reasons: dict[str, int]) -> str:
    if status == VALID:
        return "valid"
    if status in (INVALID, UNHASHED):
        if param in reasons:
            return reason_text(reasons[param])
        return "plaintext personal data" if status == UNHASHED else "invalid value"
    return "absent"


def _field_and_why(row: dict[str, Any], selection: Selection) -> tuple[str, str]:
    stored = row.get("param_reasons")
    reasons = parse_reasons(stored if isinstance(stored, str) else None)
    lag = (row["sent_at"] or 0) - (row["event_time"] or 0)
    if selection.kind == "parameter":
        param = selection.parameter or ""
        return param, _parameter_why(param, row[f"p_{param}"], reasons)
    if selection.kind == "dedup":
        return "event_id", DEDUP_WHY.get(selection.dedup or "", selection.dedup or "")
    if selection.kind == "error" or selection.finding in (
        "token_errors",
        "rejected_events",
    ):
        return "batch", _error_why(row)
    key = selection.finding or ""
    special = _FINDING_WHY.get(key)
    if special is not None:
        return special(row, reasons, lag, selection)
    if key.startswith("invalid_"):
        param = key.removeprefix("invalid_")
        return param, _parameter_why(param, row[f"p_{param}"], reasons)
    if key.startswith("dedup_"):
        return "event_id", DEDUP_WHY.get(key.removeprefix("dedup_"), key)
    return "", FINDINGS[key].meaning if key in FINDINGS else key


def _error_why(row: dict[str, Any]) -> str:
    code = row.get("error_code")
    sub = row.get("error_subcode")
    label = "Meta rejected the batch" if code is None or pd.isna(code) else f"Meta error {code}"
    if sub is not None and not pd.isna(sub):
        label += f"/{sub}"
    detail = row.get("error_user_title") or row.get("error_message")
    return f"{label}: {detail}" if detail else label


def _bad_params(row: dict[str, Any], reasons: dict[str, int], wanted: int | None) -> tuple:
    bad = [
        p
        for p in PARAMS
        if row[f"p_{p}"] in ((wanted,) if wanted is not None else (INVALID, UNHASHED))
    ]
    return ", ".join(bad), "; ".join(
        f"{p}: {_parameter_why(p, row[f'p_{p}'], reasons)}" for p in bad
    )


def _duration(seconds: float) -> str:
    if abs(seconds) >= 86_400:
        return f"{seconds / 86_400:.1f} days"
    if abs(seconds) >= 3_600:
        return f"{seconds / 3_600:.1f} h"
    return f"{seconds / 60:.0f} min"


_FINDING_WHY: dict[str, Callable[..., tuple[str, str]]] = {
    "unhashed_pii": lambda row, reasons, lag, s: _bad_params(row, reasons, UNHASHED),
    "likely_double_counted": lambda row, reasons, lag, s: (
        "event_id",
        DEDUP_WHY["likely_double_counted"],
    ),
    "missing_event_id": lambda row, reasons, lag, s: ("event_id", "no event_id"),
    "stale_events": lambda row, reasons, lag, s: (
        "event_time",
        f"sent {_duration(lag)} after event_time (Meta rejects over 7 days)",
    ),
    "future_events": lambda row, reasons, lag, s: (
        "event_time",
        f"event_time is {_duration(-lag)} after it was sent",
    ),
    "event_time_in_ms": lambda row, reasons, lag, s: ("event_time", "event_time in milliseconds"),
    "test_event_code": lambda row, reasons, lag, s: (
        "test_event_code",
        "sent with test_event_code in production",
    ),
    "rejected_combination": lambda row, reasons, lag, s: (
        "user_data",
        "its only valid customer parameters are "
        + (", ".join(p for p in PARAMS if row[f"p_{p}"] == VALID) or "none")
        + ": a combination Meta rejects",
    ),
    "events_received_shortfall": lambda row, reasons, lag, s: (
        "batch",
        "Meta reported fewer events_received than the batch held",
    ),
    "low_event_coverage": lambda row, reasons, lag, s: (
        "event_id",
        "no event_id" if row["event_id"] is None else DEDUP_WHY["browser_only"],
    ),
    "parameter_gap": lambda row, reasons, lag, s: _gap_why(row, reasons, s),
    "late_stage": lambda row, reasons, lag, s: (
        "sent_at",
        f"sent {_duration(lag)} after event_time",
    ),
    "reused_event_id": lambda row, reasons, lag, s: (
        "event_id",
        f"this event_id is used by {int(row.get('id_events') or 0):,} events at "
        f"{int(row.get('id_times') or 0):,} different times; Meta keeps one",
    ),
    "mismatched_twin_parameter": lambda row, reasons, lag, s: (
        s.on_parameter or "fbp, client_ip_address, client_user_agent",
        "differs from its browser twin's",
    ),
    "channel_stopped": lambda row, reasons, lag, s: (
        "channel",
        f"sent by the {row['channel']} after the other channel went silent",
    ),
    "transformed_event_id": lambda row, reasons, lag, s: (
        "event_id",
        f"its Pixel twin has event_id {_redacted(row.get('twin_event_id'))!r} "
        f"({row.get('twin_event_name')}), within {DEDUP_WINDOW_S // 3600} h: "
        + ("event_name casing" if row.get("near_miss") == "casing" else "a transformed id"),
    ),
    "unanswered_batches": lambda row, reasons, lag, s: ("batch", "no answer from Meta"),
}


def _gap_why(row: dict[str, Any], reasons: dict[str, int], selection: Selection):
    params = [p for p in (selection.on_parameter or "").split(",") if p in PARAMS]
    bad = [p for p in params or PARAMS if row[f"p_{p}"] != VALID]
    return ", ".join(bad), "; ".join(
        f"{p}: {_parameter_why(p, row[f'p_{p}'], reasons)}" for p in bad
    )
