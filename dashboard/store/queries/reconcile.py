"""The server events a reconciliation matches orders against.

Owns one named query: the server events of the purchase event name, sent in a time
range, that carry a match key (the event_id, or custom_data's order_id) or a hashed
e-mail, with what the reconciliation compares (send time, value, currency, whether Meta
accepted the batch, campaign). SQLAlchemy Core, bound parameters; rows cross as one
frame (Arrow on DuckDB).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import sqlalchemy as sa

from dashboard.store.database import events
from dashboard.store.functions import count_where
from dashboard.store.queries.common import ACCEPTED, SERVER, read_frame

SEND_COLUMNS = (
    "match_key",
    "event_id",
    "sent_at",
    "value",
    "currency",
    "accepted",
    "campaign",
    "dataset_id",
    "em_hash",
)


def purchase_sends(
    engine,
    *,
    match_on: str,
    event_name: str,
    sent_from: float,
    sent_to: float,
    datasets: Sequence[str] = (),
) -> pd.DataFrame:
    """Server `event_name` events sent in [sent_from, sent_to) with a match key or an
    e-mail hash; `match_key` is the event_id or the order_id (`match_on`)."""
    key = events.c.event_id if match_on == "event_id" else events.c.order_id
    query = sa.select(
        key.label("match_key"),
        events.c.event_id,
        events.c.sent_at,
        events.c.value,
        events.c.currency,
        ACCEPTED.label("accepted"),
        events.c.campaign,
        events.c.dataset_id,
        events.c.em_hash,
    ).where(
        SERVER,
        events.c.event_name == event_name,
        events.c.sent_at >= sent_from,
        events.c.sent_at < sent_to,
        sa.or_(key.is_not(None), events.c.em_hash.is_not(None)),
    )
    if datasets:
        query = query.where(events.c.dataset_id.in_(list(datasets)))
    with engine.connect() as connection:
        frame = read_frame(connection, query.order_by(events.c.sent_at), SEND_COLUMNS)
    frame["accepted"] = frame["accepted"].astype(bool)
    return frame


def stage_sends(
    engine,
    *,
    event_names: Sequence[str],
    sent_from: float,
    sent_to: float,
    datasets: Sequence[str] = (),
) -> pd.DataFrame:
    """Server events of `event_names` with a lead_id, sent in [sent_from, sent_to): what
    a CRM's stage changes are matched against."""
    query = sa.select(
        events.c.lead_id,
        events.c.event_name,
        events.c.sent_at,
        ACCEPTED.label("accepted"),
        events.c.campaign,
    ).where(
        SERVER,
        events.c.lead_id.is_not(None),
        events.c.event_name.in_(list(event_names) or [""]),
        events.c.sent_at >= sent_from,
        events.c.sent_at < sent_to,
    )
    if datasets:
        query = query.where(events.c.dataset_id.in_(list(datasets)))
    columns = ("lead_id", "event_name", "sent_at", "accepted", "campaign")
    with engine.connect() as connection:
        frame = read_frame(connection, query.order_by(events.c.sent_at), columns)
    frame["accepted"] = frame["accepted"].astype(bool)
    return frame


def keyless_events(
    engine, *, column: str, event_names: Sequence[str], sent_from: float, sent_to: float
) -> tuple[int, int]:
    """(server events of `event_names` sent in the range, those without `column`:
    "order_id" or "lead_id"), for a lead_id also counting only events whose lead_id is
    valid: a store imported before these columns existed holds them all empty."""
    from dashboard.core.params import VALID

    key = events.c[column]
    condition = key.is_(None)
    if column == "lead_id":
        condition = sa.and_(condition, events.c.p_lead_id == VALID)
    query = sa.select(sa.func.count(), count_where(condition)).where(
        SERVER,
        events.c.event_name.in_(list(event_names) or [""]),
        events.c.sent_at >= sent_from,
        events.c.sent_at < sent_to,
    )
    with engine.connect() as connection:
        total, keyless = connection.execute(query).one()
    return int(total), int(keyless or 0)
