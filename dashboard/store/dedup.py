"""Dedup status of every event, computed in the database after each import.

Owns the definitions of browser/server twins (Meta: same Pixel ID, event_name and
event_id within 48 hours; fallback event_name + fbp/external_id only when the browser
event came first) and of likely double counts. Results are stored in the events table
(dedup_status, id_twin_48h, covered_any_key, likely_double) because they depend on
the whole store, not on the slice being viewed.
Source: developers.facebook.com/documentation/ads-commerce/conversions-api/
deduplicate-pixel-and-server-events.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from dashboard.core.definitions import DEDUP_WINDOW_S, DOUBLE_COUNT_WINDOW_S
from dashboard.store import people
from dashboard.store.database import events, get_meta, set_meta, write_transaction


def _accepted(table) -> sa.ColumnElement[bool]:
    return table.c.delivery != "rejected"


def status_query(affected: sa.Table | None = None) -> sa.Select:
    """SELECT of (pk, dedup_status, id_twin_48h) for accepted events.

    With `affected` (a table of event positions), only the events that share an
    event_id key with one of them (whole window partitions, so statuses stay exact)
    and the affected events without an event_id.
    """
    w = _neighbours(affected)
    has_id = w.c.event_id.is_not(None)
    is_server = w.c.channel == "server"
    prev_other = sa.case((is_server, w.c.prev_browser), else_=w.c.prev_server)
    next_other = sa.case((is_server, w.c.next_browser), else_=w.c.next_server)
    n_other = sa.case((is_server, w.c.n_browser), else_=w.c.n_server)
    twin_48h = sa.or_(
        w.c.sent_at - prev_other <= DEDUP_WINDOW_S, next_other - w.c.sent_at <= DEDUP_WINDOW_S
    )
    fallback = sa.and_(
        is_server,
        sa.or_(
            _fallback_exists("fbp", w),
            _fallback_exists("external_id", w),
        ),
    )
    status = sa.case(
        (sa.and_(has_id, w.c.sent_at - w.c.prev_same <= DEDUP_WINDOW_S), "same_channel_repeat"),
        (sa.and_(has_id, twin_48h), "deduplicated"),
        (sa.and_(has_id, n_other > 0), "outside_48h"),
        (fallback, "fallback_deduplicated"),
        (sa.and_(has_id, is_server), "server_only"),
        (has_id, "browser_only"),
        else_="missing_event_id",
    )
    id_twin = sa.and_(has_id, sa.func.coalesce(twin_48h, False))
    return sa.select(
        w.c.source_id,
        w.c.line_no,
        w.c.idx,
        status.label("dedup_status"),
        sa.case((id_twin, True), else_=False).label("id_twin_48h"),
    )


def _neighbours(affected: sa.Table | None) -> sa.Subquery:
    """Accepted events (in `_scope`) with, per event_id key, the send times of the
    previous event of their own channel and of the nearest events of each channel
    before and after them, and how many events of each channel the key has."""
    e = events.alias("e")
    key = (e.c.dataset_id, e.c.event_name, e.c.event_id)
    order = (e.c.sent_at, e.c.source_id, e.c.line_no, e.c.idx)

    def sent_when(channel: str):
        return sa.case((e.c.channel == channel, e.c.sent_at))

    return (
        sa.select(
            e.c.source_id,
            e.c.line_no,
            e.c.idx,
            e.c.channel,
            e.c.dataset_id,
            e.c.event_name,
            e.c.event_id,
            e.c.fbp,
            e.c.external_id,
            e.c.sent_at,
            sa.func.lag(e.c.sent_at)
            .over(partition_by=(*key, e.c.channel), order_by=order)
            .label("prev_same"),
            sa.func.max(sent_when("browser"))
            .over(partition_by=key, order_by=order, rows=(None, -1))
            .label("prev_browser"),
            sa.func.min(sent_when("browser"))
            .over(partition_by=key, order_by=order, rows=(1, None))
            .label("next_browser"),
            sa.func.max(sent_when("server"))
            .over(partition_by=key, order_by=order, rows=(None, -1))
            .label("prev_server"),
            sa.func.min(sent_when("server"))
            .over(partition_by=key, order_by=order, rows=(1, None))
            .label("next_server"),
            sa.func.count(sent_when("browser")).over(partition_by=key).label("n_browser"),
            sa.func.count(sent_when("server")).over(partition_by=key).label("n_server"),
        )
        .where(_accepted(e), *_scope(e, affected))
        .subquery("w")
    )


def _scope(e: sa.Alias, affected: sa.Table | None) -> list[sa.ColumnElement[bool]]:
    """No condition without `affected`; with it, the events sharing an event_id key with
    an affected event (whole keys: a window over part of one would be wrong) and the
    affected events without an event_id."""
    if affected is None:
        return []
    positions = sa.select(affected.c.source_id, affected.c.line_no, affected.c.idx)
    a = events.alias("a")
    keys = (
        sa.select(a.c.dataset_id, a.c.event_name, a.c.event_id)
        .where(
            sa.tuple_(a.c.source_id, a.c.line_no, a.c.idx).in_(positions),
            a.c.event_id.is_not(None),
        )
        .distinct()
    )
    return [
        sa.or_(
            sa.tuple_(e.c.dataset_id, e.c.event_name, e.c.event_id).in_(keys),
            sa.and_(
                e.c.event_id.is_(None),
                sa.tuple_(e.c.source_id, e.c.line_no, e.c.idx).in_(positions),
            ),
        )
    ]


def _fallback_exists(column: str, w) -> sa.ColumnElement[bool]:
    """A browser event with the same event_name and `column` arrived earlier, within 48 h."""
    b = events.alias(f"fb_{column}")
    return sa.exists().where(
        w.c[column].is_not(None),
        b.c.channel == "browser",
        _accepted(b),
        b.c.dataset_id == w.c.dataset_id,
        b.c.event_name == w.c.event_name,
        b.c[column] == w.c[column],
        b.c.sent_at < w.c.sent_at,
        w.c.sent_at - b.c.sent_at <= DEDUP_WINDOW_S,
    )


def _any_key_server_match(column: str) -> sa.ColumnElement[bool]:
    s = events.alias(f"s_{column}")
    return sa.exists().where(
        s.c.channel == "server",
        _accepted(s),
        s.c.dataset_id == events.c.dataset_id,
        s.c.event_name == events.c.event_name,
        events.c[column].is_not(None),
        s.c[column] == events.c[column],
        sa.func.abs(s.c.sent_at - events.c.sent_at) <= DEDUP_WINDOW_S,
    )


def _double_count_match(column: str) -> sa.ColumnElement[bool]:
    b = events.alias(f"b_{column}")
    return sa.exists().where(
        b.c.channel == "browser",
        _accepted(b),
        b.c.dataset_id == events.c.dataset_id,
        b.c.event_name == events.c.event_name,
        events.c[column].is_not(None),
        b.c[column] == events.c[column],
        sa.func.abs(b.c.event_time - events.c.event_time) <= DOUBLE_COUNT_WINDOW_S,
    )


def refresh(engine: Engine, *, full: bool = False) -> None:
    """Bring every event's dedup columns up to date.

    Incremental by default: only events that share a dedup key (event_id) or a person key
    (fbp, external_id, em_hash) with events not computed yet (dedup_status NULL) can
    change, so only they are recomputed, each id key's events as a whole. A full
    recompute runs on a store never computed, after rows were deleted (a rewritten file
    re-imported), or when asked.
    """
    with write_transaction(engine) as connection:
        if connection.dialect.name in ("sqlite", "postgresql"):
            # Fresh statistics, or the planners pick the (dataset, event name) index for
            # the person-key lookups below and scan every event of that name per row.
            connection.execute(sa.text("ANALYZE events"))
        version = get_meta(connection, "data_version")
        full = (
            full or get_meta(connection, "dedup_version") == 0 or get_meta(connection, "dedup_full")
        )
        # Before the dedup columns: it finds its people by the events still without them.
        people.refresh_people(connection, full=full)
        if full:
            _recompute(connection, None)
            set_meta(connection, "dedup_full", 0)
        else:
            affected = _mark_affected(connection)
            try:
                _recompute(connection, affected)
            finally:
                affected.drop(connection)
        set_meta(connection, "dedup_version", version)


def request_full_refresh(connection: Connection) -> None:
    """Events were deleted: statuses that paired with them must all be recomputed."""
    set_meta(connection, "dedup_full", 1)


_PERSON_KEYS = ("fbp", "external_id", "em_hash")
_DEDUP_COLUMNS = {
    "dedup_status": None,
    "id_twin_48h": None,
    "covered_any_key": None,
    "likely_double": None,
}


def forget(connection: Connection, source_id: int, line_nos: list[int]) -> None:
    """The events on these lines of a source became rejected after their dedup status
    may have been computed (Meta's answer read on a later line): they, and every event
    sharing a dedup or person key with them, are recomputed by the next refresh."""
    changed = events.alias("changed")  # not correlated with the UPDATE's own table
    at = sa.and_(changed.c.source_id == source_id, changed.c.line_no.in_(line_nos))
    for column in ("event_id", *_PERSON_KEYS):
        keys = (
            sa.select(changed.c.dataset_id, changed.c.event_name, changed.c[column])
            .where(at, changed.c[column].is_not(None))
            .distinct()
        )
        key = (events.c.dataset_id, events.c.event_name, events.c[column])
        connection.execute(
            sa.update(events).where(sa.tuple_(*key).in_(keys)).values(**_DEDUP_COLUMNS)
        )
    connection.execute(
        sa.update(events)
        .where(events.c.source_id == source_id, events.c.line_no.in_(line_nos))
        .values(**_DEDUP_COLUMNS)
    )


def _mark_affected(connection: Connection) -> sa.Table:
    """A temporary table of the events whose dedup columns an incremental refresh redoes."""
    affected = sa.Table(
        "eqm_dedup_affected",
        sa.MetaData(),
        sa.Column("source_id", sa.Integer),
        sa.Column("line_no", sa.BigInteger),
        sa.Column("idx", sa.Integer),
        prefixes=["TEMPORARY"],
    )
    affected.create(connection)
    position = ("source_id", "line_no", "idx")
    # A union of one narrow select per key, not one OR of the five conditions over the
    # whole table: DuckDB evaluated the OR's subqueries for every event (a 2,000-line
    # import into a 1M-event store spent 7.5 s here).
    fresh = events.alias("fresh")
    in_scope = [
        sa.select(*[fresh.c[c] for c in position]).where(
            _accepted(fresh), fresh.c.dedup_status.is_(None)
        )
    ]
    for column in ("event_id", *_PERSON_KEYS):
        new, theirs = events.alias(f"new_{column}"), events.alias(f"sharing_{column}")
        new_keys = (
            sa.select(new.c.dataset_id, new.c.event_name, new.c[column])
            .where(_accepted(new), new.c.dedup_status.is_(None), new.c[column].is_not(None))
            .distinct()
        )
        key = (theirs.c.dataset_id, theirs.c.event_name, theirs.c[column])
        in_scope.append(
            sa.select(*[theirs.c[c] for c in position]).where(
                _accepted(theirs), sa.tuple_(*key).in_(new_keys)
            )
        )
    connection.execute(affected.insert().from_select(list(position), sa.union(*in_scope)))
    return affected


def _recompute(connection: Connection, affected: sa.Table | None) -> None:
    """Recompute the dedup columns of every event, or of the `affected` ones."""
    in_scope: list[sa.ColumnElement[bool]] = []
    if affected is not None:
        in_scope.append(
            sa.tuple_(events.c.source_id, events.c.line_no, events.c.idx).in_(
                sa.select(affected.c.source_id, affected.c.line_no, affected.c.idx)
            )
        )
    connection.execute(
        sa.update(events)
        .where(*in_scope)
        .values(dedup_status=None, id_twin_48h=None, covered_any_key=None, likely_double=None)
    )
    computed = status_query(affected).subquery("d")
    connection.execute(
        sa.update(events)
        .values(dedup_status=computed.c.dedup_status, id_twin_48h=computed.c.id_twin_48h)
        .where(
            events.c.source_id == computed.c.source_id,
            events.c.line_no == computed.c.line_no,
            events.c.idx == computed.c.idx,
        )
    )
    # Coverage with any dedup key: an event_id twin, or a server event sharing
    # event_name and fbp or external_id within 48 h (either order).
    connection.execute(
        sa.update(events)
        .where(events.c.channel == "browser", _accepted(events), *in_scope)
        .values(
            covered_any_key=sa.or_(
                events.c.id_twin_48h.is_(True),
                _any_key_server_match("fbp"),
                _any_key_server_match("external_id"),
            )
        )
    )
    # Meta counts both when a server event escapes dedup although the same person's
    # browser event of the same name happened within 5 minutes.
    connection.execute(
        sa.update(events)
        .where(events.c.channel == "server", _accepted(events), *in_scope)
        .values(
            likely_double=sa.and_(
                events.c.dedup_status.in_(("server_only", "missing_event_id", "outside_48h")),
                sa.or_(
                    _double_count_match("fbp"),
                    _double_count_match("external_id"),
                    _double_count_match("em_hash"),
                ),
            )
        )
    )


def refresh_if_stale(engine: Engine) -> bool:
    """Refresh when data changed since the last refresh; True if it ran."""
    with engine.connect() as connection:
        stale = get_meta(connection, "data_version") != get_meta(connection, "dedup_version")
        # A store made before the per-person table existed fills it once.
        stale = stale or people.needs_full_build(connection)
    if stale:
        refresh(engine)
    return stale
