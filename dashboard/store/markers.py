"""Markers: what the tracking engineer changed, and when (a deploy, a fix).

Owns the writes and reads of the `markers` table (dashboard.store.database): add one,
list them in time order, delete one. A marker is a label of at most
`MAX_LABEL_CHARS` characters at a UTC time (Unix seconds); it is drawn on every time
chart (dashboard.outputs.charts.with_markers) and is the pivot of the before/after view
(dashboard.quality.daily.before_after). Markers belong to the store, not to a slice:
every filter shows all of them. SQLAlchemy Core, no Streamlit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dashboard.core import clock
from dashboard.core.definitions import MAX_TIMESTAMP_S, MIN_TIMESTAMP_S
from dashboard.store.database import StoreError, markers, next_id, write_transaction
from dashboard.store.locks import retry_on_lock

MAX_LABEL_CHARS = 200  # the column's width: a chart label, not a changelog


class MarkerError(StoreError):
    """A marker that cannot be stored (empty or too long label, time out of range) or
    found."""


@dataclass(frozen=True)
class Marker:
    """One stored marker."""

    id: int
    at: float  # UTC Unix seconds
    label: str
    created_at: float

    @property
    def moment(self) -> datetime:
        return datetime.fromtimestamp(self.at, tz=UTC)

    @property
    def at_iso(self) -> str:
        """The marker's time as ISO 8601 UTC ("2026-12-01T10:00:00Z")."""
        return self.moment.isoformat(timespec="seconds").replace("+00:00", "Z")

    def as_dict(self) -> dict:
        return {"id": self.id, "at": self.at_iso, "label": self.label}


def clean_label(label: str) -> str:
    """The label as stored (stripped), or MarkerError when empty or too long."""
    text = " ".join(str(label or "").split())  # one line: it is drawn on a chart
    if not text:
        raise MarkerError("a marker needs a label (what changed)")
    if len(text) > MAX_LABEL_CHARS:
        raise MarkerError(
            f"a marker's label has at most {MAX_LABEL_CHARS} characters, not {len(text)}"
        )
    return text


def add_marker(engine: Engine, label: str, at: float | None = None) -> Marker:
    """Store a marker at `at` (UTC Unix seconds; default now) and return it."""
    text = clean_label(label)
    moment = clock.now() if at is None else float(at)
    # Outside the times an event may carry it could never sit on a chart's axis.
    if not MIN_TIMESTAMP_S <= moment < MAX_TIMESTAMP_S:
        raise MarkerError("a marker's time must lie between 2000 and 2100")
    created = clock.now()

    def write() -> Marker:
        with write_transaction(engine) as connection:
            marker_id = next_id(connection, markers.c.id)
            connection.execute(
                sa.insert(markers).values(id=marker_id, at=moment, label=text, created_at=created)
            )
        return Marker(marker_id, moment, text, created)

    return retry_on_lock(write)


def list_markers(engine: Engine) -> list[Marker]:
    """Every marker, oldest first."""
    query = sa.select(markers.c.id, markers.c.at, markers.c.label, markers.c.created_at)
    with engine.connect() as connection:
        rows = connection.execute(query.order_by(markers.c.at, markers.c.id)).all()
    return [Marker(int(r.id), float(r.at), str(r.label), float(r.created_at)) for r in rows]


def get_marker(engine: Engine, marker_id: int) -> Marker:
    """One marker by id, or MarkerError."""
    for marker in list_markers(engine):
        if marker.id == marker_id:
            return marker
    raise MarkerError(f"no marker {marker_id} (see `python3 -m dashboard mark --list`)")


def delete_marker(engine: Engine, marker_id: int) -> Marker:
    """Delete one marker by id and return it, or MarkerError when there is none."""
    marker = get_marker(engine, marker_id)

    def write() -> None:
        with write_transaction(engine) as connection:
            connection.execute(sa.delete(markers).where(markers.c.id == marker_id))

    retry_on_lock(write)
    return marker
