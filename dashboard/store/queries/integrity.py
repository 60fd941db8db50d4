"""The SQL of the event-level integrity rules (dashboard.quality.integrity owns the rules).

Owns the named queries behind four rules that look at single events and their twins: an
event_id reused by many different events, browser/server twins whose fbp, client IP or
user agent differ, a channel that stops while the other goes on, and twins that miss
each other only by a transformed event_id or by event_name casing.

Each rule has a SELECT of the affected events' positions (source_id, line_no, idx), so a
drill-down can list them, and a function that counts them for the slice. The rules'
thresholds are arguments, bound as parameters: the rule module decides them. The 48 h
window is dashboard.core.definitions'; "accepted" means not in a batch Meta rejected (a
Pixel event has no answer and counts as accepted), as everywhere else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dashboard.core.definitions import DEDUP_WINDOW_S
from dashboard.store.database import events
from dashboard.store.queries.common import count_if, read_frame, where

if TYPE_CHECKING:
    from datetime import date

    from dashboard.core.filters import Filters

# What the `*_events` queries are, for the rule module's signatures (it names no SQLAlchemy).
Query = sa.Select
POSITION = ("source_id", "line_no", "idx")
# Parameter -> column compared between twins (IP and user agent as fingerprints).
TWIN_KEYS = {"fbp": "fbp", "client_ip_address": "ip_fp", "client_user_agent": "ua_fp"}


def _accepted(table) -> sa.ColumnElement[bool]:
    return table.c.delivery != "rejected"


def _within_window(a, b) -> sa.ColumnElement[bool]:
    return sa.func.abs(a - b) <= DEDUP_WINDOW_S


def count_rows(engine: Engine, query: sa.Select) -> int:
    """How many rows `query` returns (counted in the database)."""
    with engine.connect() as connection:
        return int(
            connection.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar()
            or 0
        )


# ---------------------------------------------------------------------------
# 1. One event_id reused by many different events
def reused_id_keys(filters: Filters, min_instances: int) -> sa.Select:
    """Per channel, the (dataset, event_name, event_id) keys of the slice's accepted
    events that carry at least `min_instances` distinct event_time values, with their
    event and instance counts."""
    e, seen = events, events.alias("seen")

    def in_slice(table) -> list[sa.ColumnElement[bool]]:
        return [_accepted(table), table.c.event_id.is_not(None), *where(filters, table)]

    # A cheap first pass (a plain count per event_id) leaves the costly distinct count
    # to the few ids seen that often at all: on a million events, 0.5 s instead of 3 s.
    frequent = (
        sa.select(seen.c.event_id)
        .where(*in_slice(seen))
        .group_by(seen.c.event_id)
        .having(sa.func.count() >= min_instances)
    )
    key = (e.c.dataset_id, e.c.channel, e.c.event_name, e.c.event_id)
    instances = sa.func.count(sa.distinct(e.c.event_time_raw))
    return (
        sa.select(*key, sa.func.count().label("events"), instances.label("instances"))
        .where(*in_slice(e), e.c.event_id.in_(frequent))
        .group_by(*key)
        .having(instances >= min_instances)
    )


def reused_id_events(filters: Filters, min_instances: int) -> sa.Select:
    """Positions (and keys) of the slice's events under a reused event_id."""
    keys = reused_id_keys(filters, min_instances).subquery("reused")
    e = events
    return (
        sa.select(
            *[e.c[c] for c in POSITION],
            e.c.channel,
            e.c.dataset_id,
            e.c.event_name,
            e.c.event_id,
            keys.c.events.label("id_events"),
            keys.c.instances.label("id_times"),
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
        .where(_accepted(e), *where(filters, e))
    )


def reused_id_counts(engine: Engine, filters: Filters, min_instances: int) -> dict[str, Any]:
    """The reuse rule's counts for the slice: ids (distinct dataset, event_name and
    event_id reused on either channel), keys (the same per channel), events, server_events,
    slice_events_with_id and slice_server_events (accepted events of the slice), and
    example, the most reused (event_name, event_id, events) or None."""
    keys = reused_id_keys(filters, min_instances).cte("reused")
    ids = sa.select(keys.c.dataset_id, keys.c.event_name, keys.c.event_id).distinct().subquery()
    e = events.alias("slice")
    in_slice = [_accepted(e), *where(filters, e)]

    def scalar(column, source, *conditions):
        return sa.select(column).select_from(source).where(*conditions).scalar_subquery()

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
    return {
        "ids": int(n_ids or 0),
        "keys": int(n_keys or 0),
        "events": int(n_events or 0),
        "server_events": int(n_server or 0),
        "slice_events_with_id": int(with_id or 0),
        "slice_server_events": int(server or 0),
        "example": None if example is None else (example[0], example[1], int(example[2])),
    }


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
        *where(filters, s), s.c.channel == "server", s.c.dedup_status == "deduplicated"
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
            *where(filters, s),
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


def twin_parameter_counts(engine: Engine, filters: Filters) -> dict[str, tuple[int, int]]:
    """Per compared parameter (fbp, client_ip_address, client_user_agent, in that order):
    (twin pairs where both sides carry it, pairs where the two differ)."""
    pairs = twin_pairs(filters).subquery("pairs")
    columns = []
    for column in TWIN_KEYS.values():
        columns += [count_if(_compared(pairs, column)), count_if(_differs(pairs, column))]
    with engine.connect() as connection:
        row = connection.execute(sa.select(*columns)).one()
    return {
        parameter: (int(row[2 * i] or 0), int(row[2 * i + 1] or 0))
        for i, parameter in enumerate(TWIN_KEYS)
    }


# ---------------------------------------------------------------------------
# 3. A channel that stops while the other continues
def channel_last_days(engine: Engine, filters: Filters, min_events: int) -> list[dict]:
    """Per (dataset, event_name, channel) with `min_events` or more accepted events in the
    slice: those events, their last UTC day ("last") and the slice's last day of any
    accepted event ("slice_last", whatever its group's size).

    A channel with fewer events can never be judged stopped, and leaving those groups in
    the database keeps a diverse log's tens of thousands of rows out of Python.
    """
    e = events
    key = (e.c.dataset_id, e.c.event_name, e.c.channel)
    per_channel = (
        sa.select(*key, sa.func.count().label("events"), sa.func.max(e.c.event_day).label("last"))
        .where(_accepted(e), *where(filters, e))
        .group_by(*key)
        .cte("channel_days")
    )
    slice_last = sa.select(sa.func.max(per_channel.c["last"])).scalar_subquery()
    query = sa.select(per_channel, slice_last.label("slice_last")).where(
        per_channel.c.events >= min_events
    )
    with engine.connect() as connection:
        return [dict(row) for row in connection.execute(query).mappings()]


def channel_events_after(
    filters: Filters, dataset_id: str, event_name: str, channel: str, after: date
) -> sa.Select:
    """Positions of the slice's accepted `channel` events of (dataset, event_name) on the
    UTC days after `after`."""
    e = events
    return sa.select(*[e.c[c] for c in POSITION], e.c.channel, e.c.event_name).where(
        _accepted(e),
        e.c.dataset_id == dataset_id,
        e.c.event_name == event_name,
        e.c.channel == channel,
        e.c.event_day > after,
        *where(filters, e),
    )


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


def _candidates(table, channel: str, conditions: list) -> sa.CTE:
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
        .cte(f"missed_{channel}")
    )


def _affixed(a, b, min_chars: int) -> sa.ColumnElement[bool]:
    """One id starts or ends with the other, the shorter of `min_chars` or more
    (portable substr/length: no LIKE, whose wildcards an id may hold)."""
    length_a, length_b = sa.func.length(a), sa.func.length(b)

    def contains_at_edge(longer, long_len, shorter, short_len):
        return sa.and_(
            short_len >= min_chars,
            long_len > short_len,
            sa.or_(
                sa.func.substr(longer, 1, short_len) == shorter,
                sa.func.substr(longer, long_len - short_len + 1) == shorter,
            ),
        )

    return sa.or_(
        contains_at_edge(a, length_a, b, length_b), contains_at_edge(b, length_b, a, length_a)
    )


def transformed_id_pairs(filters: Filters, affix_min_chars: int) -> sa.Select:
    """Pairs of a server event of the slice and a browser event, neither with an id twin,
    within 48 h and of the same dataset: either the same event_id under an event_name
    differing only by case ("casing"), or the same lower-cased event_name and person
    (fbp or external_id) with one event_id a prefix or suffix of the other, the shorter
    keeping `affix_min_chars` or more ("affix"). Columns: the server event's position,
    s_event_name, s_event_id, b_event_name, b_event_id, kind and the browser event's position
    (b_source_id, b_line_no, b_idx). Every join is an equality
    join (event_id, or fbp/external_id)."""
    s = _candidates(events, "server", where(filters, events))
    b = _candidates(events.alias("browser_events"), "browser", [])

    def pairs(kind: str, on: sa.ColumnElement[bool], condition: sa.ColumnElement[bool]):
        return (
            sa.select(
                *[s.c[c] for c in POSITION],
                s.c.event_name.label("s_event_name"),
                s.c.event_id.label("s_event_id"),
                b.c.event_name.label("b_event_name"),
                b.c.event_id.label("b_event_id"),
                sa.literal(kind).label("kind"),
                *[b.c[c].label(f"b_{c}") for c in POSITION],
            )
            .select_from(s.join(b, on))
            .where(condition, _within_window(s.c.sent_at, b.c.sent_at))
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
            sa.and_(
                s.c.event_id != b.c.event_id,
                _affixed(s.c.event_id, b.c.event_id, affix_min_chars),
            ),
        )
        for person in ("fbp", "external_id")
    ]
    return sa.union_all(casing, *by_person)


def transformed_id_events(filters: Filters, affix_min_chars: int) -> sa.Select:
    """Positions (and event_name) of the slice's server events that miss their Pixel
    twin only by a transformed event_id or event_name casing."""
    pairs = transformed_id_pairs(filters, affix_min_chars).subquery("pairs")
    return sa.select(*[pairs.c[c] for c in POSITION], pairs.c.s_event_name).distinct()


def transformed_id_twins(filters: Filters, affix_min_chars: int) -> sa.Select:
    """`transformed_id_pairs` as a drill-down lists them: the server event's position with
    its Pixel twin's id and name beside it (twin_event_id, twin_event_name) and the kind
    of near miss (near_miss: casing or affix)."""
    pairs = transformed_id_pairs(filters, affix_min_chars).subquery("pairs")
    return sa.select(
        *[pairs.c[c] for c in POSITION],
        pairs.c.b_event_id.label("twin_event_id"),
        pairs.c.b_event_name.label("twin_event_name"),
        pairs.c.kind.label("near_miss"),
    )


def union_of(queries: Sequence[sa.Select]) -> sa.Select | sa.CompoundSelect:
    """Several position queries with the same columns as one (UNION ALL)."""
    return queries[0] if len(queries) == 1 else sa.union_all(*queries)


def transformed_id_counts(engine: Engine, filters: Filters, affix_min_chars: int) -> dict[str, Any]:
    """The transformed-id rule's numbers, from one run of `transformed_id_pairs`:

    - "by_server_name": per server event_name with affected events (unordered):
      event_name, server_events (affected, each counted once), total (accepted server
      events of the name in the slice), kinds (sorted: casing and/or affix) and example,
      the first pair's (browser name, browser id, server name, server id) by kind, the
      server event's position and the browser id;
    - "browser_events": per browser event_name, the Pixel events a server event of the
      slice misses only by a transformed id or name casing (each counted once).

    The pairs are few next to the events (only events without an id twin that look
    alike), so they are fetched once and counted here; each count used to run the
    self-join again.
    """
    with engine.connect() as connection:
        pairs = read_frame(connection, transformed_id_pairs(filters, affix_min_chars))
    if pairs.empty:
        return {"by_server_name": [], "browser_events": {}}
    browser_positions = [f"b_{c}" for c in POSITION]
    browser_events = (
        pairs.drop_duplicates([*browser_positions, "b_event_name"]).groupby("b_event_name").size()
    )
    affected = pairs.drop_duplicates([*POSITION, "s_event_name"]).groupby("s_event_name").size()
    kinds = pairs.groupby("s_event_name")["kind"].agg(lambda k: tuple(sorted(set(k))))
    first = pairs.sort_values(["kind", *POSITION, "b_event_id"], kind="stable")
    examples = first.drop_duplicates("s_event_name").set_index("s_event_name")
    e = events
    with engine.connect() as connection:
        totals = dict(
            connection.execute(
                sa.select(e.c.event_name, sa.func.count())
                .where(e.c.channel == "server", _accepted(e), *where(filters, e))
                .group_by(e.c.event_name)
            ).all()
        )
    by_server_name = []
    for name, count in affected.items():
        example = examples.loc[name]
        by_server_name.append(
            {
                "event_name": name,
                "server_events": int(count),
                "total": int(totals.get(name, count)),
                "kinds": kinds[name],
                "example": (
                    example["b_event_name"],
                    example["b_event_id"],
                    name,
                    example["s_event_id"],
                ),
            }
        )
    return {
        "by_server_name": by_server_name,
        "browser_events": {str(n): int(c) for n, c in browser_events.items()},
    }
