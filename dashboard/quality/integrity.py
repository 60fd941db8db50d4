"""Event-level integrity checks that dedup statuses cannot see.

Owns four rules that look at single events and their twins rather than at one event's
status: an event_id reused by many different events (Meta keeps one per id), browser/
server twins whose fbp, client IP or user agent differ, a channel that stops while the
other goes on, and twins that miss each other only by a transformed event_id (a prefix
or suffix added on one side) or by event_name casing.

Each rule is a SELECT of the affected events' positions (source_id, line_no, idx), so a
drill-down can list them, and a function taking (engine, filters, config) that counts
them; `integrity_findings` turns the counts into diagnostics. Dedup keys and the 48 h
window are dashboard.store.dedup's; "accepted" means not in a batch Meta rejected (a Pixel
event has no answer and counts as accepted), as everywhere else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dashboard.core.config import Config
from dashboard.quality.indicators import Filters, count_if
from dashboard.store.database import events
from dashboard.store.dedup import DEDUP_WINDOW_S

if TYPE_CHECKING:
    from dashboard.quality.diagnostics import Diagnostic

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

POSITION = ("source_id", "line_no", "idx")
DIAGNOSTIC_KEYS = (
    "reused_event_id",
    "mismatched_twin_parameter",
    "channel_stopped",
    "transformed_event_id",
)
# Parameter -> column compared between twins (IP and user agent as fingerprints).
TWIN_KEYS = {"fbp": "fbp", "client_ip_address": "ip_fp", "client_user_agent": "ua_fp"}
_CHANNEL_LABEL = {"browser": "browser (Pixel)", "server": "server (Conversions API)"}


def _accepted(table) -> sa.ColumnElement[bool]:
    return table.c.delivery != "rejected"


def _within_window(a, b) -> sa.ColumnElement[bool]:
    return sa.func.abs(a - b) <= DEDUP_WINDOW_S


def _count(engine: Engine, query: sa.Select) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar()
            or 0
        )


def _quoted(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


# ---------------------------------------------------------------------------
# 1. One event_id reused by many different events
def reused_id_keys(filters: Filters) -> sa.Select:
    """Per channel, the (dataset, event_name, event_id) keys of the slice's accepted
    events that carry at least REUSE_MIN_INSTANCES distinct event_time values, with
    their event and instance counts."""
    e, seen = events, events.alias("seen")

    def in_slice(table) -> list[sa.ColumnElement[bool]]:
        return [_accepted(table), table.c.event_id.is_not(None), *filters.conditions(table)]

    # A cheap first pass (a plain count per event_id) leaves the costly distinct count
    # to the few ids seen that often at all: on a million events, 0.5 s instead of 3 s.
    frequent = (
        sa.select(seen.c.event_id)
        .where(*in_slice(seen))
        .group_by(seen.c.event_id)
        .having(sa.func.count() >= REUSE_MIN_INSTANCES)
    )
    key = (e.c.dataset_id, e.c.channel, e.c.event_name, e.c.event_id)
    instances = sa.func.count(sa.distinct(e.c.event_time_raw))
    return (
        sa.select(*key, sa.func.count().label("events"), instances.label("instances"))
        .where(*in_slice(e), e.c.event_id.in_(frequent))
        .group_by(*key)
        .having(instances >= REUSE_MIN_INSTANCES)
    )


def reused_id_events(filters: Filters) -> sa.Select:
    """Positions (and keys) of the slice's events under a reused event_id."""
    keys = reused_id_keys(filters).subquery("reused")
    e = events
    return (
        sa.select(
            *[e.c[c] for c in POSITION], e.c.channel, e.c.dataset_id, e.c.event_name, e.c.event_id
        )
        .select_from(
            e.join(
                keys,
                sa.and_(
                    e.c.dataset_id == keys.c.dataset_id,
                    e.c.channel == keys.c.channel,
                    e.c.event_name == keys.c.event_name,
                    e.c.event_id == keys.c.event_id,
                ),
            )
        )
        .where(_accepted(e), *filters.conditions(e))
    )


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
    keys = reused_id_keys(filters).cte("reused")
    ids = sa.select(keys.c.dataset_id, keys.c.event_name, keys.c.event_id).distinct().subquery()
    e = events.alias("slice")
    in_slice = [_accepted(e), *filters.conditions(e)]

    def scalar(column, source, *where):
        return sa.select(column).select_from(source).where(*where).scalar_subquery()

    # One statement: the reused keys are computed once (a CTE used four times).
    server_events = sa.case((keys.c.channel == "server", keys.c.events), else_=0)
    counts = sa.select(
        scalar(sa.func.count(), keys),
        scalar(sa.func.coalesce(sa.func.sum(keys.c.events), 0), keys),
        scalar(sa.func.coalesce(sa.func.sum(server_events), 0), keys),
        scalar(sa.func.count(), ids),
        scalar(count_if(e.c.event_id.is_not(None)), e, *in_slice),
        scalar(count_if(e.c.channel == "server"), e, *in_slice),
    )
    with engine.connect() as connection:
        n_keys, n_events, n_server, n_ids, with_id, server = connection.execute(counts).one()
        example = None
        if n_keys:
            example = connection.execute(
                sa.select(keys.c.event_name, keys.c.event_id, keys.c.events)
                .order_by(keys.c.events.desc(), keys.c.event_name, keys.c.event_id)
                .limit(1)
            ).first()
    return ReusedIds(
        ids=int(n_ids or 0),
        keys=int(n_keys or 0),
        events=int(n_events or 0),
        server_events=int(n_server or 0),
        slice_events_with_id=int(with_id or 0),
        slice_server_events=int(server or 0),
        example=None if example is None else (example[0], example[1], int(example[2])),
    )


# ---------------------------------------------------------------------------
# 2. Browser/server twins whose fbp, client IP or user agent differ
def _browser_twins(filters: Filters) -> sa.Subquery:
    """Keys with exactly one deduplicated browser event, with its values (store-wide, as
    dedup statuses are): a server twin then pairs with that one event, no guessing.
    Only the event_ids of the slice's deduplicated server events are grouped: a
    filtered view then reads a few keys, not every browser event in the store."""
    b = events.alias("b")
    key = (b.c.dataset_id, b.c.event_name, b.c.event_id)
    s = events.alias("s_ids")
    slice_ids = sa.select(s.c.event_id).where(
        *filters.conditions(s), s.c.channel == "server", s.c.dedup_status == "deduplicated"
    )
    return (
        sa.select(
            *key,
            sa.func.max(b.c.sent_at).label("sent_at"),
            *[sa.func.max(b.c[column]).label(column) for column in TWIN_KEYS.values()],
        )
        .where(
            b.c.channel == "browser",
            b.c.dedup_status == "deduplicated",
            _accepted(b),
            b.c.event_id.in_(slice_ids),
        )
        .group_by(*key)
        .having(sa.func.count() == 1)
        .subquery("bt")
    )


def twin_pairs(filters: Filters) -> sa.Select:
    """One row per deduplicated server event of the slice and its browser twin (same
    dataset, event_name and event_id, within 48 h): the server event's position, then
    s_<column> and b_<column> for fbp, ip_fp and ua_fp."""
    s = events
    bt = _browser_twins(filters)
    return (
        sa.select(
            *[s.c[c] for c in POSITION],
            s.c.event_name,
            *[s.c[column].label(f"s_{column}") for column in TWIN_KEYS.values()],
            *[bt.c[column].label(f"b_{column}") for column in TWIN_KEYS.values()],
        )
        .select_from(
            s.join(
                bt,
                sa.and_(
                    s.c.dataset_id == bt.c.dataset_id,
                    s.c.event_name == bt.c.event_name,
                    s.c.event_id == bt.c.event_id,
                ),
            )
        )
        .where(
            s.c.channel == "server",
            s.c.dedup_status == "deduplicated",
            _accepted(s),
            _within_window(s.c.sent_at, bt.c.sent_at),
            *filters.conditions(s),
        )
    )


def _differs(pairs, column: str) -> sa.ColumnElement[bool]:
    mine, theirs = pairs.c[f"s_{column}"], pairs.c[f"b_{column}"]
    return sa.and_(mine.is_not(None), theirs.is_not(None), mine != theirs)


def _compared(pairs, column: str) -> sa.ColumnElement[bool]:
    return sa.and_(pairs.c[f"s_{column}"].is_not(None), pairs.c[f"b_{column}"].is_not(None))


def mismatched_twin_events(filters: Filters, parameter: str) -> sa.Select:
    """Positions of the slice's server events whose `parameter` (fbp, client_ip_address
    or client_user_agent) differs from their browser twin's."""
    pairs = twin_pairs(filters).subquery("pairs")
    return sa.select(*[pairs.c[c] for c in POSITION], pairs.c.event_name).where(
        _differs(pairs, TWIN_KEYS[parameter])
    )


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
    pairs = twin_pairs(filters).subquery("pairs")
    columns = []
    for column in TWIN_KEYS.values():
        columns += [count_if(_compared(pairs, column)), count_if(_differs(pairs, column))]
    with engine.connect() as connection:
        row = connection.execute(sa.select(*columns)).one()
    return [
        TwinMismatch(parameter, int(row[2 * i] or 0), int(row[2 * i + 1] or 0))
        for i, parameter in enumerate(TWIN_KEYS)
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


def channel_last_days(engine: Engine, filters: Filters) -> list[dict]:
    """Per (dataset, event_name, channel): accepted events in the slice and their last
    UTC day."""
    e = events
    key = (e.c.dataset_id, e.c.event_name, e.c.channel)
    query = (
        sa.select(*key, sa.func.count().label("events"), sa.func.max(e.c.event_day).label("last"))
        .where(_accepted(e), *filters.conditions(e))
        .group_by(*key)
    )
    with engine.connect() as connection:
        return [dict(row) for row in connection.execute(query).mappings()]


def channel_stop_events(filters: Filters, stop: ChannelStop) -> sa.Select:
    """Positions of the other channel's events of a stopped (dataset, event_name) after
    the silent channel's last day."""
    e = events
    return sa.select(*[e.c[c] for c in POSITION], e.c.channel, e.c.event_name).where(
        _accepted(e),
        e.c.dataset_id == stop.dataset_id,
        e.c.event_name == stop.event_name,
        e.c.channel == stop.other,
        e.c.event_day > stop.last_day,
        *filters.conditions(e),
    )


def channel_stops(engine: Engine, filters: Filters, config: Config) -> list[ChannelStop]:
    """Every (dataset, event_name) of the slice whose browser or server events stopped
    at least STOP_MIN_GAP_DAYS days before the other channel's, which went on to the
    slice's last day, with enough of the other channel's events since that the silence
    is no chance (see `ChannelStop.expected_since`)."""
    rows = channel_last_days(engine, filters)
    if not rows:
        return []
    slice_end = max(row["last"] for row in rows)
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
            stop = replace(stop, events_since=_count(engine, channel_stop_events(filters, stop)))
            if stop.expected_since >= STOP_MIN_EXPECTED:
                out.append(stop)
    return out


# ---------------------------------------------------------------------------
# 4. Twins that miss each other by a transformed event_id or event_name casing
def _missed(table, channel: str) -> sa.ColumnElement[bool]:
    """Accepted events of `channel` with an event_id but no id twin within 48 h."""
    return sa.and_(
        table.c.channel == channel,
        _accepted(table),
        table.c.event_id.is_not(None),
        sa.func.coalesce(table.c.id_twin_48h, False) == sa.false(),
    )


def _candidates(table, channel: str, conditions: list) -> sa.Subquery:
    return (
        sa.select(
            *[table.c[c] for c in POSITION],
            table.c.dataset_id,
            table.c.event_name,
            sa.func.lower(table.c.event_name).label("name_key"),
            table.c.event_id,
            table.c.fbp,
            table.c.external_id,
            table.c.sent_at,
        )
        .where(_missed(table, channel), *conditions)
        .subquery(channel[0])
    )


def _affixed(a, b) -> sa.ColumnElement[bool]:
    """One id starts or ends with the other, the shorter of AFFIX_MIN_CHARS or more
    (portable substr/length: no LIKE, whose wildcards an id may hold)."""
    length_a, length_b = sa.func.length(a), sa.func.length(b)

    def contains_at_edge(longer, long_len, shorter, short_len):
        return sa.and_(
            short_len >= AFFIX_MIN_CHARS,
            long_len > short_len,
            sa.or_(
                sa.func.substr(longer, 1, short_len) == shorter,
                sa.func.substr(longer, long_len - short_len + 1) == shorter,
            ),
        )

    return sa.or_(
        contains_at_edge(a, length_a, b, length_b), contains_at_edge(b, length_b, a, length_a)
    )


def transformed_id_pairs(filters: Filters) -> sa.Select:
    """Pairs of a server event of the slice and a browser event, neither with an id twin,
    within 48 h and of the same dataset: either the same event_id under an event_name
    differing only by case ("casing"), or the same lower-cased event_name and person
    (fbp or external_id) with one event_id a prefix or suffix of the other ("affix").
    Columns: the server event's position, s_event_name, s_event_id, b_event_name,
    b_event_id, kind. Every join is an equality join (event_id, or fbp/external_id)."""
    s = _candidates(events, "server", filters.conditions(events))
    b = _candidates(events.alias("browser_events"), "browser", [])

    def pairs(kind: str, on: sa.ColumnElement[bool], where: sa.ColumnElement[bool]):
        return (
            sa.select(
                *[s.c[c] for c in POSITION],
                s.c.event_name.label("s_event_name"),
                s.c.event_id.label("s_event_id"),
                b.c.event_name.label("b_event_name"),
                b.c.event_id.label("b_event_id"),
                sa.literal(kind).label("kind"),
            )
            .select_from(s.join(b, on))
            .where(where, _within_window(s.c.sent_at, b.c.sent_at))
        )

    same_dataset = s.c.dataset_id == b.c.dataset_id
    casing = pairs(
        "casing",
        sa.and_(same_dataset, s.c.event_id == b.c.event_id, s.c.name_key == b.c.name_key),
        s.c.event_name != b.c.event_name,
    )
    by_person = [
        pairs(
            "affix",
            sa.and_(same_dataset, s.c.name_key == b.c.name_key, s.c[person] == b.c[person]),
            sa.and_(s.c.event_id != b.c.event_id, _affixed(s.c.event_id, b.c.event_id)),
        )
        for person in ("fbp", "external_id")
    ]
    return sa.union_all(casing, *by_person)


def transformed_id_events(filters: Filters) -> sa.Select:
    """Positions (and event_name) of the slice's server events that miss their Pixel
    twin only by a transformed event_id or event_name casing."""
    pairs = transformed_id_pairs(filters).subquery("pairs")
    return sa.select(*[pairs.c[c] for c in POSITION], pairs.c.s_event_name).distinct()


@dataclass(frozen=True)
class TransformedIds:
    """Server events of one event_name missing their twin by a transformed id."""

    event_name: str
    server_events: int  # affected
    total: int  # accepted server events of this name in the slice
    kinds: tuple[str, ...]  # casing and/or affix
    example: tuple[str, str, str, str]  # (browser name, browser id, server name, server id)


def transformed_ids(engine: Engine, filters: Filters, config: Config) -> list[TransformedIds]:
    """Per server event_name: server events missing their twin by a transformed id."""
    pairs = transformed_id_pairs(filters).subquery("pairs")
    affected = transformed_id_events(filters).subquery("affected")
    ranked = sa.select(
        pairs,
        sa.func.row_number()
        .over(
            partition_by=pairs.c.s_event_name,
            order_by=(pairs.c.kind, *[pairs.c[c] for c in POSITION], pairs.c.b_event_id),
        )
        .label("rank"),
    ).subquery("ranked")
    e = events
    with engine.connect() as connection:
        counts = connection.execute(
            sa.select(affected.c.s_event_name, sa.func.count()).group_by(affected.c.s_event_name)
        ).all()
        if not counts:
            return []
        kinds = connection.execute(sa.select(pairs.c.s_event_name, pairs.c.kind).distinct()).all()
        examples = connection.execute(
            sa.select(
                ranked.c.s_event_name,
                ranked.c.b_event_name,
                ranked.c.b_event_id,
                ranked.c.s_event_id,
            ).where(ranked.c.rank == 1)
        ).all()
        totals = dict(
            connection.execute(
                sa.select(e.c.event_name, sa.func.count())
                .where(e.c.channel == "server", _accepted(e), *filters.conditions(e))
                .group_by(e.c.event_name)
            ).all()
        )
    kinds_by_name: dict[str, set[str]] = {}
    for name, kind in kinds:
        kinds_by_name.setdefault(name, set()).add(kind)
    example_by_name = {row[0]: (row[1], row[2], row[0], row[3]) for row in examples}
    return sorted(
        (
            TransformedIds(
                event_name=name,
                server_events=int(count),
                total=int(totals.get(name, count)),
                kinds=tuple(sorted(kinds_by_name.get(name, ()))),
                example=example_by_name[name],
            )
            for name, count in counts
        ),
        key=lambda t: (-t.server_events, t.event_name),
    )


# ---------------------------------------------------------------------------
# Findings
_MISMATCH_TEXT = {
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


def integrity_findings(engine: Engine, filters: Filters, config: Config) -> list[Diagnostic]:
    """The four integrity rules' findings for the slice (unsorted)."""
    from dashboard.quality.diagnostics import (
        Diagnostic,  # local: dashboard.quality.diagnostics calls us
    )

    return [
        *_reuse_findings(Diagnostic, reused_ids(engine, filters, config)),
        *_mismatch_findings(Diagnostic, mismatched_twins(engine, filters, config)),
        *_stop_findings(Diagnostic, channel_stops(engine, filters, config)),
        *_transformed_findings(Diagnostic, transformed_ids(engine, filters, config)),
    ]


def _reuse_findings(diagnostic, reuse: ReusedIds) -> list[Diagnostic]:
    if not reuse.ids:
        return []
    example = ""
    if reuse.example:
        name, event_id, count = reuse.example
        example = f", e.g. {_quoted(event_id)} on {count:,} {name} events"
    share = reuse.server_events / reuse.slice_server_events if reuse.slice_server_events else 0
    return [
        diagnostic(
            "reused_event_id",
            f"{reuse.ids:,} {'event_ids are each' if reuse.ids != 1 else 'event_id is'} "
            f"reused by many different events ({reuse.events:,} events{example}); Meta "
            "keeps one per id",
            "critical" if share > REUSE_CRITICAL_SHARE else "warning",
            reuse.events,
            reuse.slice_events_with_id,
            "Give every action its own event_id (the order id, the lead id plus the stage) "
            "and send the same one from the Pixel and the server; never a constant such as "
            "'test' or a value shared by many events.",
        )
    ]


def _mismatch_findings(diagnostic, mismatches: list[TwinMismatch]) -> list[Diagnostic]:
    out = []
    for mismatch in mismatches:
        if not mismatch.fires:
            continue
        label, fix = _MISMATCH_TEXT[mismatch.parameter]
        out.append(
            diagnostic(
                "mismatched_twin_parameter",
                f"Browser/server twins with different {label}: {mismatch.differing:,} of "
                f"{mismatch.compared:,} pairs ({mismatch.share:.1%})",
                "warning",
                mismatch.differing,
                mismatch.compared,
                fix,
                parameter=mismatch.parameter,
            )
        )
    return out


def _stop_findings(diagnostic, stops: list[ChannelStop]) -> list[Diagnostic]:
    several_datasets = len({stop.dataset_id for stop in stops}) > 1
    out = []
    for stop in stops:
        where = f" (dataset {stop.dataset_id})" if several_datasets else ""
        since = stop.last_day.isoformat()
        culprit = "Pixel/tag deployment" if stop.silent == "browser" else "server integration"
        out.append(
            diagnostic(
                "channel_stopped",
                f"{stop.event_name}{where}: {_CHANNEL_LABEL[stop.silent]} events stopped after "
                f"{since} while {stop.other} events continued ({stop.events_since:,} since)",
                "critical",
                stop.events_since,
                stop.other_events,
                f"Check the {culprit} for {stop.event_name} since {since}: a release, a tag "
                "manager change, a consent setting or an expired credential that stopped it.",
                event_name=stop.event_name,
            )
        )
    return out


def _transformed_findings(diagnostic, misses: list[TransformedIds]) -> list[Diagnostic]:
    out = []
    for miss in misses:
        b_name, b_id, s_name, s_id = miss.example
        if miss.kinds == ("casing",):
            how = "event_name casing"
            example = f"browser {_quoted(b_name)}, server {_quoted(s_name)}"
        else:
            how = "a transformed event_id"
            if len(miss.kinds) > 1:
                how += " or event_name casing"
            example = f"browser {_quoted(b_id)}, server {_quoted(s_id)}"
        verb = "event misses its" if miss.server_events == 1 else "events miss their"
        out.append(
            diagnostic(
                "transformed_event_id",
                f"{miss.event_name}: {miss.server_events:,} server {verb} Pixel twin by {how} "
                f"(e.g. {example})",
                "warning",
                miss.server_events,
                miss.total,
                "Send exactly the Pixel's eventID as event_id and the Pixel's event_name, "
                "character for character: no prefix or suffix, no change of case.",
                event_name=miss.event_name,
            )
        )
    return out
