"""Event-level integrity rules that dedup statuses cannot see.

Owns four rules that look at single events and their twins rather than at one event's
status: an event_id reused by many different events (Meta keeps one per id), browser/
server twins whose fbp, client IP or user agent differ, a channel that stops while the
other goes on, and twins that miss each other only by a transformed event_id (a prefix
or suffix added on one side) or by event_name casing.

Here live each rule's thresholds, its counts as a dataclass, its decision and one table
of texts; the SQL is dashboard.store.queries.integrity's named queries, which take the
thresholds as arguments. Each rule has a SELECT of the affected events' positions
(`*_events`), so a drill-down can list them, and a function taking (engine, filters,
config) that counts them; `integrity_findings` turns the counts into diagnostics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from dashboard.core.config import Config
from dashboard.core.filters import Filters
from dashboard.store.handles import Engine
from dashboard.store.queries import integrity as queries

if TYPE_CHECKING:
    from dashboard.quality.diagnostics import Diagnostic
    from dashboard.store.queries.integrity import Query

# Retries of one event keep its event_time; two re-sends with a regenerated time are
# still tolerated, a third distinct time under one id is a different event.
REUSE_MIN_INSTANCES = 3
REUSE_CRITICAL_SHARE = 0.05  # of the slice's server events
# A dual-stack visitor's IPv4 and IPv6 differ now and then; a server sending its own IP
# (or a fresh fbp, or its own user agent) differs on nearly every pair.
MISMATCH_MIN_PAIRS = 10
MISMATCH_MIN_SHARE = 0.10
# Channel stops: both channels had this many events in the slice, and the silent one's
# last day is at least this many days before the other's (the slice's last day).
STOP_MIN_EVENTS = 10
STOP_MIN_GAP_DAYS = 2
# ... and at its usual ratio to the other channel the silent one would have sent at
# least this many events since: a name sent a few times a week has 2-day gaps by
# chance, and a Poisson count with mean 5 is 0 only 0.7% of the time.
STOP_MIN_EXPECTED = 5.0
# A transformed id keeps at least this many characters of the other side's id.
AFFIX_MIN_CHARS = 4

DIAGNOSTIC_KEYS = (
    "reused_event_id",
    "mismatched_twin_parameter",
    "channel_stopped",
    "transformed_event_id",
)


# The parameters the twin-mismatch rule compares.
TWIN_PARAMETERS = tuple(queries.TWIN_KEYS)


def union_of(selects: list[Query]) -> Query:
    """Several rules' position queries as one list."""
    return queries.union_of(selects)


def _quoted(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


# ---------------------------------------------------------------------------
# 1. One event_id reused by many different events
def reused_id_events(filters: Filters) -> Query:
    """Positions (and keys) of the slice's events under a reused event_id."""
    return queries.reused_id_events(filters, REUSE_MIN_INSTANCES)


@dataclass(frozen=True)
class ReusedIds:
    """Counts of the reuse rule; `example` is the most reused (event_name, event_id)."""

    ids: int  # distinct (dataset, event_name, event_id) reused on either channel
    keys: int  # the same per channel
    events: int
    server_events: int
    slice_events_with_id: int  # accepted events with an event_id in the slice
    slice_server_events: int  # accepted server events in the slice
    example: tuple[str, str, int] | None  # (event_name, event_id, events)


def reused_ids(engine: Engine, filters: Filters, config: Config) -> ReusedIds:
    """How many ids, keys and events the reuse rule finds in the slice."""
    return ReusedIds(**queries.reused_id_counts(engine, filters, REUSE_MIN_INSTANCES))


# ---------------------------------------------------------------------------
# 2. Browser/server twins whose fbp, client IP or user agent differ
def mismatched_twin_events(filters: Filters, parameter: str) -> Query:
    """Positions of the slice's server events whose `parameter` (fbp, client_ip_address
    or client_user_agent) differs from their browser twin's."""
    return queries.mismatched_twin_events(filters, parameter)


@dataclass(frozen=True)
class TwinMismatch:
    """Twin pairs where both sides carry `parameter`, and how many of them differ."""

    parameter: str
    compared: int
    differing: int

    @property
    def share(self) -> float | None:
        return self.differing / self.compared if self.compared else None

    @property
    def fires(self) -> bool:
        return self.differing >= MISMATCH_MIN_PAIRS and self.differing >= (
            MISMATCH_MIN_SHARE * self.compared
        )


def mismatched_twins(engine: Engine, filters: Filters, config: Config) -> list[TwinMismatch]:
    """Per compared parameter (fbp, IP, user agent): compared and differing twin pairs."""
    counts = queries.twin_parameter_counts(engine, filters)
    return [
        TwinMismatch(parameter, compared, differing)
        for parameter, (compared, differing) in counts.items()
    ]


# ---------------------------------------------------------------------------
# 3. A channel that stops while the other continues
@dataclass(frozen=True)
class ChannelStop:
    """`silent` channel's last event of (dataset, event_name) was on `last_day`, while the
    other channel continued to `continued_until` (the slice's last day)."""

    dataset_id: str
    event_name: str
    silent: str  # browser | server
    last_day: date
    continued_until: date
    other_events: int  # the other channel's events of this name in the slice
    events_since: int  # ... after `last_day`

    silent_events: int = 0  # the silent channel's events of this name in the slice

    @property
    def other(self) -> str:
        return "server" if self.silent == "browser" else "browser"

    @property
    def expected_since(self) -> float:
        """Events the silent channel would have sent since its last day, at its ratio to
        the other channel up to that day (infinite when the other only began later)."""
        before = self.other_events - self.events_since
        if before <= 0:
            return math.inf
        return self.events_since * self.silent_events / before


def channel_stop_events(filters: Filters, stop: ChannelStop) -> Query:
    """Positions of the other channel's events of a stopped (dataset, event_name) after
    the silent channel's last day."""
    return queries.channel_events_after(
        filters, stop.dataset_id, stop.event_name, stop.other, stop.last_day
    )


def channel_stops(engine: Engine, filters: Filters, config: Config) -> list[ChannelStop]:
    """Every (dataset, event_name) of the slice whose browser or server events stopped
    at least STOP_MIN_GAP_DAYS days before the other channel's, which went on to the
    slice's last day, with enough of the other channel's events since that the silence
    is no chance (see `ChannelStop.expected_since`)."""
    rows = queries.channel_last_days(engine, filters, STOP_MIN_EVENTS)
    if not rows:
        return []
    slice_end = rows[0]["slice_last"]
    by_name: dict[tuple[str, str], dict[str, dict]] = {}
    for row in rows:
        by_name.setdefault((row["dataset_id"], row["event_name"]), {})[row["channel"]] = row
    out = []
    for (dataset_id, event_name), channels in sorted(by_name.items()):
        browser, server = channels.get("browser"), channels.get("server")
        if not browser or not server:
            continue
        if min(browser["events"], server["events"]) < STOP_MIN_EVENTS:
            continue
        for silent, other in ((browser, server), (server, browser)):
            silent_last, other_last = silent["last"], other["last"]
            if other_last != slice_end:
                continue
            if silent_last > other_last - timedelta(days=STOP_MIN_GAP_DAYS):
                continue
            stop = ChannelStop(
                dataset_id, event_name, silent["channel"], silent_last, other_last,
                int(other["events"]), 0, int(silent["events"]),
            )  # fmt: skip
            since = queries.count_rows(engine, channel_stop_events(filters, stop))
            stop = replace(stop, events_since=since)
            if stop.expected_since >= STOP_MIN_EXPECTED:
                out.append(stop)
    return out


# ---------------------------------------------------------------------------
# 4. Twins that miss each other by a transformed event_id or event_name casing
def transformed_id_events(filters: Filters) -> Query:
    """Positions (and event_name) of the slice's server events that miss their Pixel
    twin only by a transformed event_id or event_name casing."""
    return queries.transformed_id_events(filters, AFFIX_MIN_CHARS)


def transformed_id_twins(filters: Filters) -> Query:
    """The transformed-id rule's server events with their Pixel twin's id beside them."""
    return queries.transformed_id_twins(filters, AFFIX_MIN_CHARS)


def near_misses(engine: Engine, filters: Filters) -> dict[str, Any]:
    """The transformed-id rule's counts for the slice, from one query (see
    `store.queries.integrity.transformed_id_counts`): pass them to `transformed_ids` and
    `near_miss_browser_events` when both are wanted."""
    return queries.transformed_id_counts(engine, filters, AFFIX_MIN_CHARS)


def near_miss_browser_events(
    engine: Engine, filters: Filters, counted: dict[str, Any] | None = None
) -> dict[str, int]:
    """Per browser event_name: Pixel events a server event misses only by a near-miss id."""
    return (counted or near_misses(engine, filters))["browser_events"]


@dataclass(frozen=True)
class TransformedIds:
    """Server events of one event_name missing their twin by a transformed id."""

    event_name: str
    server_events: int  # affected
    total: int  # accepted server events of this name in the slice
    kinds: tuple[str, ...]  # casing and/or affix
    example: tuple[str, str, str, str]  # (browser name, browser id, server name, server id)


def transformed_ids(
    engine: Engine, filters: Filters, config: Config, counted: dict[str, Any] | None = None
) -> list[TransformedIds]:
    """Per server event_name: server events missing their twin by a transformed id."""
    by_name = (counted or near_misses(engine, filters))["by_server_name"]
    return sorted(
        (TransformedIds(**counts) for counts in by_name),
        key=lambda t: (-t.server_events, t.event_name),
    )


# ---------------------------------------------------------------------------
# Findings: one table of texts per rule (str.format templates, as in diagnostics' RULES)
_REUSE_TEXT: dict[str, Any] = {
    "title": "{ids:,} {subject} reused by many different events ({events:,} events{example}); "
    "Meta keeps one per id",
    "subject_one": "event_id is",
    "subject_many": "event_ids are each",
    "example": ", e.g. {event_id} on {count:,} {name} events",
    "how_to_fix": "Give every action its own event_id (the order id, the lead id plus the "
    "stage) and send the same one from the Pixel and the server; never a constant such as "
    "'test' or a value shared by many events.",
}
_MISMATCH_TEXT: dict[str, Any] = {
    "title": "Browser/server twins with different {label}: {differing:,} of {compared:,} "
    "pairs ({share:.1%})",
    # Per parameter: (label, how to fix).
    "fbp": (
        "fbp",
        "Forward the browser's _fbp cookie unchanged to the server event; do not generate a "
        "new one server-side.",
    ),
    "client_ip_address": (
        "client IP",
        "Send the visitor's IP from the request headers (the first hop of X-Forwarded-For), "
        "not the server's own address.",
    ),
    "client_user_agent": (
        "user agent",
        "Forward the browser's User-Agent header unchanged, not the server's or an HTTP library's.",
    ),
}
_STOP_TEXT: dict[str, Any] = {
    "title": "{event_name}{where}: {channel} events stopped after {since} while {other} "
    "events continued ({events_since:,} since)",
    "where": " (dataset {dataset_id})",
    # Per silent channel: (its label, what to check).
    "browser": ("browser (Pixel)", "Pixel/tag deployment"),
    "server": ("server (Conversions API)", "server integration"),
    "how_to_fix": "Check the {culprit} for {event_name} since {since}: a release, a tag "
    "manager change, a consent setting or an expired credential that stopped it.",
}
_TRANSFORMED_TEXT: dict[str, Any] = {
    "title": "{event_name}: {server_events:,} server {verb} Pixel twin by {how} (e.g. {example})",
    "verb_one": "event misses its",
    "verb_many": "events miss their",
    "how_casing": "event_name casing",
    "how_affix": "a transformed event_id",
    "how_both": "a transformed event_id or event_name casing",
    "example": "browser {browser}, server {server}",
    "how_to_fix": "Send exactly the Pixel's eventID as event_id and the Pixel's event_name, "
    "character for character: no prefix or suffix, no change of case.",
}


def integrity_findings(
    engine: Engine, filters: Filters, config: Config, counted: dict[str, Any] | None = None
) -> list[Diagnostic]:
    """The four integrity rules' findings for the slice (unsorted); `counted`: the
    slice's `near_misses`, when the caller has them."""
    from dashboard.quality.diagnostics import (
        Diagnostic,  # local: dashboard.quality.diagnostics calls us
    )

    return [
        *_reuse_findings(Diagnostic, reused_ids(engine, filters, config)),
        *_mismatch_findings(Diagnostic, mismatched_twins(engine, filters, config)),
        *_stop_findings(Diagnostic, channel_stops(engine, filters, config)),
        *_transformed_findings(Diagnostic, transformed_ids(engine, filters, config, counted)),
    ]


def _reuse_findings(diagnostic, reuse: ReusedIds) -> list[Diagnostic]:
    if not reuse.ids:
        return []
    text = _REUSE_TEXT
    example = ""
    if reuse.example:
        name, event_id, count = reuse.example
        example = text["example"].format(event_id=_quoted(event_id), count=count, name=name)
    share = reuse.server_events / reuse.slice_server_events if reuse.slice_server_events else 0
    subject = text["subject_one"] if reuse.ids == 1 else text["subject_many"]
    return [
        diagnostic(
            "reused_event_id",
            text["title"].format(
                ids=reuse.ids, subject=subject, events=reuse.events, example=example
            ),
            "critical" if share > REUSE_CRITICAL_SHARE else "warning",
            reuse.events,
            reuse.slice_events_with_id,
            text["how_to_fix"],
        )
    ]


def _mismatch_findings(diagnostic, mismatches: list[TwinMismatch]) -> list[Diagnostic]:
    out = []
    for mismatch in mismatches:
        if not mismatch.fires:
            continue
        label, fix = _MISMATCH_TEXT[mismatch.parameter]
        title = _MISMATCH_TEXT["title"].format(
            label=label,
            differing=mismatch.differing,
            compared=mismatch.compared,
            share=mismatch.share,
        )
        out.append(
            diagnostic(
                "mismatched_twin_parameter",
                title,
                "warning",
                mismatch.differing,
                mismatch.compared,
                fix,
                parameter=mismatch.parameter,
            )
        )
    return out


def _stop_findings(diagnostic, stops: list[ChannelStop]) -> list[Diagnostic]:
    text = _STOP_TEXT
    several_datasets = len({stop.dataset_id for stop in stops}) > 1
    out = []
    for stop in stops:
        channel, culprit = text[stop.silent]
        values = {
            "event_name": stop.event_name,
            "where": text["where"].format(dataset_id=stop.dataset_id) if several_datasets else "",
            "channel": channel,
            "since": stop.last_day.isoformat(),
            "other": stop.other,
            "events_since": stop.events_since,
            "culprit": culprit,
        }
        out.append(
            diagnostic(
                "channel_stopped",
                text["title"].format(**values),
                "critical",
                stop.events_since,
                stop.other_events,
                text["how_to_fix"].format(**values),
                event_name=stop.event_name,
            )
        )
    return out


def _transformed_findings(diagnostic, misses: list[TransformedIds]) -> list[Diagnostic]:
    text = _TRANSFORMED_TEXT
    out = []
    for miss in misses:
        b_name, b_id, s_name, s_id = miss.example
        if miss.kinds == ("casing",):
            how = text["how_casing"]
            browser, server = _quoted(b_name), _quoted(s_name)
        else:
            how = text["how_both"] if len(miss.kinds) > 1 else text["how_affix"]
            browser, server = _quoted(b_id), _quoted(s_id)
        title = text["title"].format(
            event_name=miss.event_name,
            server_events=miss.server_events,
            verb=text["verb_one"] if miss.server_events == 1 else text["verb_many"],
            how=how,
            example=text["example"].format(browser=browser, server=server),
        )
        out.append(
            diagnostic(
                "transformed_event_id",
                title,
                "warning",
                miss.server_events,
                miss.total,
                text["how_to_fix"],
                event_name=miss.event_name,
            )
        )
    return out
