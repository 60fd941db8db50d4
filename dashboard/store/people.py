"""The per-person table of first valid times (`person_first_valid`), kept after imports.

Owns how the table is filled: for each person key (fbp, external_id) the earliest
event_time at which each user_data parameter was valid on any event of the store. The
dedup refresh (`dashboard.store.dedup.refresh`) calls `refresh_people` in its own
transaction, so the table and the dedup columns always describe the same events. Only
the people of events not refreshed yet (dedup_status NULL: new events, and rejected ones,
which never get a status) are recomputed, each from all of its events, so a refreshed
person's row is exact; a full refresh (after rows were deleted) rebuilds every row.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dashboard.core.params import PARAMS
from dashboard.store.database import events, get_meta, person_first_valid, set_meta

PERSON_KEYS = ("fbp", "external_id")
# store_meta: 1 once the table was built for the store (a store made before the table
# existed has an empty one, and its first refresh must fill it whole).
BUILT = "people_built"


def needs_full_build(connection: Connection) -> bool:
    return get_meta(connection, BUILT) == 0


def refresh_people(connection: Connection, *, full: bool) -> None:
    """Recompute the rows of the people of events not refreshed yet, or, with `full`
    (or on a store never built), every row."""
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
                sa.select(key).where(events.c.dedup_status.is_(None), key.is_not(None)).distinct()
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
    set_meta(connection, BUILT, 1)
