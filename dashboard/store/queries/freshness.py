"""Queries of freshness and delivery: lags, Meta's errors, pipeline health per dataset."""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dashboard.core.definitions import (
    FUTURE_TOLERANCE_S,
    STALE_AFTER_S,
)
from dashboard.core.filters import Filters
from dashboard.core.meta_errors import TOKEN_ERROR_CODES
from dashboard.store.database import events
from dashboard.store.functions import percentile
from dashboard.store.queries.common import (
    ACCEPTED,
    BROWSER,
    LAG,
    LAG_KNOWN,
    SERVER,
    count_if,
    group_column,
    read_frame,
    where,
)


# ---------------------------------------------------------------------------
# Freshness and delivery
def lag_percentiles(engine: Engine, filters: Filters, by: str = "funnel_stage") -> pd.DataFrame:
    """Lag percentiles (seconds) of server events per group, and stale and future counts."""
    group = group_column(by)
    query = (
        sa.select(
            group,
            sa.func.count().label("server_events"),
            percentile(LAG, 0.5).label("p50_lag_s"),
            percentile(LAG, 0.9).label("p90_lag_s"),
            percentile(LAG, 0.99).label("p99_lag_s"),
            sa.func.max(LAG).label("max_lag_s"),
            count_if(LAG > STALE_AFTER_S).label("stale_over_7d"),
            count_if(-LAG > FUTURE_TOLERANCE_S).label("future"),
        )
        .where(*where(filters), LAG_KNOWN)
        .group_by(group)
        .order_by(group)
    )
    with engine.connect() as connection:
        frame = pd.DataFrame(connection.execute(query).mappings().all())
    if frame.empty:
        return pd.DataFrame(
            columns=[
                by,
                "server_events",
                "p50_lag_s",
                "p90_lag_s",
                "p99_lag_s",
                "max_lag_s",
                "stale_over_7d",
                "future",
            ]
        )
    return frame


def lag_sample(engine: Engine, filters: Filters, limit: int = 20_000) -> pd.DataFrame:
    """A bounded sample of per-event lags (seconds) with their stage, for a histogram."""
    query = (
        sa.select(events.c.funnel_stage, LAG.label("lag_s"))
        .where(*where(filters), LAG_KNOWN)
        .order_by(events.c.sent_at.desc())
        .limit(limit)
    )
    with engine.connect() as connection:
        return pd.DataFrame(
            connection.execute(query).mappings().all(), columns=["funnel_stage", "lag_s"]
        )


def delivery_errors(engine: Engine, filters: Filters) -> pd.DataFrame:
    """Rejected batches and events per day and error (code, subcode, Meta's message)."""
    batches = (
        sa.select(
            events.c.event_day,
            events.c.source_id,
            events.c.line_no,
            sa.func.coalesce(events.c.error_code, -1).label("error_code"),
            sa.func.coalesce(events.c.error_subcode, -1).label("error_subcode"),
            sa.func.coalesce(events.c.error_message, "(no message)").label("error_message"),
            sa.func.count().label("events"),
        )
        .where(*where(filters), SERVER, events.c.delivery == "rejected")
        .group_by(
            events.c.event_day,
            events.c.source_id,
            events.c.line_no,
            events.c.error_code,
            events.c.error_subcode,
            events.c.error_message,
        )
        .subquery()
    )
    query = (
        sa.select(
            batches.c.event_day,
            batches.c.error_code,
            batches.c.error_subcode,
            batches.c.error_message,
            sa.func.count().label("batches"),
            sa.func.sum(batches.c.events).label("events"),
        )
        .group_by(
            batches.c.event_day,
            batches.c.error_code,
            batches.c.error_subcode,
            batches.c.error_message,
        )
        .order_by(batches.c.event_day, batches.c.error_code)
    )
    with engine.connect() as connection:
        frame = pd.DataFrame(connection.execute(query).mappings().all())
    if frame.empty:
        return pd.DataFrame(
            columns=[
                "event_day",
                "error_code",
                "error_subcode",
                "error_message",
                "batches",
                "events",
            ]
        )
    frame["event_day"] = pd.to_datetime(frame["event_day"])
    for column in ("error_code", "error_subcode"):
        frame[column] = frame[column].astype("int64").astype("Int64").where(frame[column] >= 0)
    frame["events"] = frame["events"].astype("int64")
    return frame


def delivery_summary(engine: Engine, filters: Filters) -> dict[str, int]:
    """Batch counts: sent, rejected, unanswered, token/permission errors, events_received shortfalls."""
    batch = (
        sa.select(
            events.c.source_id,
            events.c.line_no,
            sa.func.min(events.c.delivery).label("delivery"),
            sa.func.min(events.c.error_code).label("error_code"),
            sa.func.min(events.c.batch_size).label("batch_size"),
            sa.func.min(events.c.events_received).label("events_received"),
            sa.func.count().label("events"),
        )
        .where(*where(filters), SERVER)
        .group_by(events.c.source_id, events.c.line_no)
        .subquery()
    )
    shortfall = sa.and_(
        batch.c.delivery == "accepted",
        batch.c.events_received.is_not(None),
        batch.c.events_received < batch.c.batch_size,
    )
    token = sa.and_(batch.c.delivery == "rejected", batch.c.error_code.in_(TOKEN_ERROR_CODES))
    query = sa.select(
        sa.func.count().label("batches"),
        count_if(batch.c.delivery == "rejected").label("rejected_batches"),
        sa.func.sum(sa.case((batch.c.delivery == "rejected", batch.c.events), else_=0)).label(
            "rejected_events"
        ),
        count_if(batch.c.delivery == "unknown").label("unanswered_batches"),
        count_if(token).label("token_error_batches"),
        sa.func.sum(sa.case((token, batch.c.events), else_=0)).label("token_error_events"),
        count_if(shortfall).label("shortfall_batches"),
        sa.func.sum(
            sa.case((shortfall, batch.c.batch_size - batch.c.events_received), else_=0)
        ).label("shortfall_events"),
    )
    with engine.connect() as connection:
        row = connection.execute(query).mappings().one()
    return {key: int(value or 0) for key, value in row.items()}


PIPELINE_HEALTH_COLUMNS = (
    "dataset_id",
    "last_event_at",
    "last_browser_event_at",
    "last_server_event_at",
    "last_sent_at",
    "last_server_sent_at",
    "browser_events",
    "server_events",
)


def pipeline_health(engine: Engine, filters: Filters) -> pd.DataFrame:
    """Per dataset of the slice: newest event_time of accepted events (all, browser,
    server), newest sent_at of accepted events (all, server; UTC Unix seconds, NaN when
    none: the silence rule of `check` and the Overview reads the server one) and the
    accepted browser and server event counts. "Is data still arriving?" per dataset: a
    rejected batch proves the integration runs, not that Meta receives anything, so only
    accepted events count. A dataset whose events were all rejected has a row of NaN."""

    def newest(column: sa.Column, channel: str | None) -> sa.ColumnElement:
        condition = ACCEPTED if channel is None else sa.and_(ACCEPTED, events.c.channel == channel)
        return sa.func.max(sa.case((condition, column)))

    query = (
        sa.select(
            events.c.dataset_id,
            newest(events.c.event_time, None),
            newest(events.c.event_time, "browser"),
            newest(events.c.event_time, "server"),
            newest(events.c.sent_at, None),
            newest(events.c.sent_at, "server"),
            count_if(sa.and_(ACCEPTED, BROWSER)),
            count_if(sa.and_(ACCEPTED, SERVER)),
        )
        .where(*where(filters))
        .group_by(events.c.dataset_id)
        .order_by(events.c.dataset_id)
    )
    with engine.connect() as connection:
        frame = read_frame(connection, query, PIPELINE_HEALTH_COLUMNS)
    for column in PIPELINE_HEALTH_COLUMNS[1:6]:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    for column in PIPELINE_HEALTH_COLUMNS[6:]:
        frame[column] = frame[column].astype("int64")
    frame["dataset_id"] = frame["dataset_id"].astype(str)
    return frame
