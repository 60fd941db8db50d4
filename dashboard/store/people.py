"""The per-person table of first valid times (`person_first_valid`), and what each server
event could have carried (`events.recoverable_params`), kept after imports.

Owns how both are filled: for each person key (fbp, external_id) the earliest
event_time at which each user_data parameter was valid on any event of the store; and,
for each server event, a bitmask of the parameters (bit k for PARAMS[k]) it lacks while
its person had them valid at or before its time, which "what to fix next" counts. The
dedup refresh (`dashboard.store.dedup.refresh`) calls `refresh_people` in its own
transaction, so both always describe the same events as the dedup columns. Only the
people of new events (mask NULL: every event gets a mask, read or not) are recomputed,
each from all of its events, so a refreshed person's row is exact; the masks of the new
events and of every event of those people are recomputed with them. A full refresh
(after rows were deleted) rebuilds everything.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dashboard.core.params import PARAMS
from dashboard.store.database import events, get_meta, person_first_valid, set_meta

PERSON_KEYS = ("fbp", "external_id")
# store_meta: 1 once the table and the masks were built for the store (a store made
# before either existed has them empty, and its first refresh must fill them whole). A
# new name, as the masks came after the table: "people_built" marked the table alone.
BUILT = "recoverable_built"


def needs_full_build(connection: Connection) -> bool:
    return get_meta(connection, BUILT) == 0


def refresh_people(connection: Connection, *, full: bool) -> None:
    """Recompute the rows of the people of new events and the masks they change, or,
    with `full` (or on a store never built), every row and every mask."""
    full = full or needs_full_build(connection)
    for kind in PERSON_KEYS:
        key = events.c[kind]
        touched = None
        if full:
            connection.execute(
                sa.delete(person_first_valid).where(person_first_valid.c.key_kind == kind)
            )
        else:
            touched = (
                sa.select(key)
                .where(events.c.recoverable_params.is_(None), key.is_not(None))
                .distinct()
            )
            connection.execute(
                sa.delete(person_first_valid).where(
                    person_first_valid.c.key_kind == kind,
                    person_first_valid.c.person.in_(touched),
                )
            )
        firsts = [
            sa.func.min(sa.case((events.c[f"p_{p}"] == 1, events.c.event_time))) for p in PARAMS
        ]
        rows = sa.select(sa.literal(kind, sa.String(16)), key, *firsts).where(key.is_not(None))
        if touched is not None:
            rows = rows.where(key.in_(touched))
        connection.execute(
            person_first_valid.insert().from_select(
                ["key_kind", "person", *[f"first_{p}" for p in PARAMS]], rows.group_by(key)
            )
        )
    _refresh_masks(connection, incremental=not full)
    set_meta(connection, BUILT, 1)


def _refresh_masks(connection: Connection, *, incremental: bool) -> None:
    """Recompute `recoverable_params` of every event, or (`incremental`) of the new ones
    (mask NULL) and every event of their people: a person's earlier event may arrive in
    a later import, so an old event's mask can change. Browser events get one too, though
    only server events' are read: a NULL mask is what marks an event as new here."""
    position = ("source_id", "line_no", "idx")
    # Aliases throughout: none may be correlated with the UPDATE's own table.
    masked = events.alias("masked")
    if incremental:
        # The events in scope as a union of three narrow selects, joined back: one OR
        # of the three conditions over the whole table took 2.5 times as long on DuckDB.
        new = events.alias("new")
        in_scope = [
            sa.select(*[new.c[c] for c in position]).where(new.c.recoverable_params.is_(None))
        ]
        for kind in PERSON_KEYS:
            theirs, touched = events.alias(f"of_{kind}"), events.alias(f"touched_{kind}")
            people = sa.select(touched.c[kind]).where(
                touched.c.recoverable_params.is_(None), touched.c[kind].is_not(None)
            )
            in_scope.append(
                sa.select(*[theirs.c[c] for c in position]).where(theirs.c[kind].in_(people))
            )
        scope = sa.union(*in_scope).subquery("scope")
        source = (
            sa.select(masked)
            .join(scope, sa.and_(*[masked.c[c] == scope.c[c] for c in position]))
            .subquery("in_scope")
        )
    else:
        source = sa.select(masked).subquery("in_scope")
    carried = {kind: person_first_valid.alias(f"carried_by_{kind}") for kind in PERSON_KEYS}
    joined = source
    for kind, table in carried.items():
        joined = joined.outerjoin(
            table, sa.and_(table.c.key_kind == kind, source.c[kind] == table.c.person)
        )
    bits = [
        sa.case(
            (
                sa.and_(
                    source.c[f"p_{param}"] != 1,
                    # A person without that key, or who never sent the parameter valid,
                    # compares NULL: not recoverable.
                    sa.or_(
                        *[t.c[f"first_{param}"] <= source.c.event_time for t in carried.values()]
                    ),
                ),
                1 << k,
            ),
            else_=0,
        )
        for k, param in enumerate(PARAMS)
    ]
    computed = (
        sa.select(
            *[source.c[c] for c in position],
            sa.cast(sum(bits[1:], bits[0]), sa.BigInteger).label("mask"),
        )
        .select_from(joined)
        .subquery("computed")
    )
    connection.execute(
        sa.update(events)
        .values(recoverable_params=computed.c.mask)
        .where(*[events.c[c] == computed.c[c] for c in position])
    )
