"""Events per fixed-length time slot from a start time: which of the days before and
after a marker hold any event (dashboard.quality.daily.before_after).

One scan with one conditional count per slot, not `floor((t - start) / width)`: SQLite
has no portable floor, and DuckDB and PostgreSQL round a cast to integer.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dashboard.core.filters import Filters
from dashboard.store.database import events
from dashboard.store.queries.common import count_if, where


def events_per_slot(
    engine: Engine, filters: Filters, start: float, width_s: float, slots: int
) -> list[int]:
    """The slice's events in each of `slots` consecutive slots of `width_s` seconds from
    `start` (UTC Unix seconds, each slot's start inclusive, its end exclusive)."""
    if slots <= 0:
        return []
    bounds = [start + i * width_s for i in range(slots + 1)]
    counts = [
        count_if(sa.and_(events.c.event_time >= low, events.c.event_time < high)).label(f"s{i}")
        for i, (low, high) in enumerate(zip(bounds, bounds[1:], strict=False))
    ]
    inside = sa.and_(events.c.event_time >= bounds[0], events.c.event_time < bounds[-1])
    with engine.connect() as connection:
        row = connection.execute(sa.select(*counts).where(inside, *where(filters))).one()
    return [int(value or 0) for value in row]
