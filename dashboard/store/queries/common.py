"""What every named query shares: the slice's WHERE clause, channel and acceptance
conditions, conditional counts, group columns, and reading rows into frames.

Every statement is SQLAlchemy Core with bound parameters, so one query runs on DuckDB,
SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dashboard.core.config import Config
from dashboard.core.filters import DIMENSIONS, FILTER_DIMENSIONS, Filters, epoch
from dashboard.core.params import REJECTED_COMBINATIONS
from dashboard.store.database import events, percentile
from dashboard.store.frames import result_frame


def where(filters: Filters, table=events) -> list[sa.ColumnElement[bool]]:
    """WHERE conditions (bound parameters) selecting the slice `filters` describes."""
    conditions: list[sa.ColumnElement[bool]] = []
    if filters.start_ts is not None:
        conditions.append(table.c.event_time >= filters.start_ts)
    if filters.end_ts is not None:
        conditions.append(table.c.event_time < filters.end_ts)
    if filters.sent_start_ts is not None:
        conditions.append(table.c.sent_at >= filters.sent_start_ts)
    if filters.sent_end_ts is not None:
        conditions.append(table.c.sent_at < filters.sent_end_ts)
    if filters.since:
        conditions.append(table.c.event_time >= epoch(filters.since))
    if filters.until:
        conditions.append(table.c.event_time < epoch(filters.until + timedelta(days=1)))
    for dimension in FILTER_DIMENSIONS:
        values = getattr(filters, dimension.field)
        if values:
            conditions.append(table.c[dimension.column].in_(list(values)))
    return conditions


def count_if(condition) -> sa.ColumnElement:
    """The number of rows where `condition` holds (0 for an empty group)."""
    # sum(CAST(... AS INTEGER)) runs about twice as fast as sum(CASE ...) on DuckDB; a
    # NULL condition counts as false.
    return sa.func.coalesce(sa.func.sum(sa.cast(condition, sa.Integer)), 0)


SERVER = events.c.channel == "server"
BROWSER = events.c.channel == "browser"
ACCEPTED = events.c.delivery != "rejected"
LAG = events.c.sent_at - events.c.event_time
# A defaulted sent_at (bare events without one) says nothing about lag: leave those out.
LAG_KNOWN = sa.and_(SERVER, events.c.sent_at_defaulted == sa.false())


def server_only_by_design(config: Config, table=events) -> sa.ColumnElement[bool]:
    """A server event that cannot have a browser (Pixel) twin: its action_source is not
    one the Pixel sends (CRM, messaging, app, offline), or its stage is configured as
    server-only. Such an event is never a dedup gap, whatever its dedup status."""
    conditions = [
        sa.and_(
            table.c.action_source.is_not(None),
            table.c.action_source.not_in(list(config.pixel_action_sources)),
        )
    ]
    if config.server_only_stages:
        conditions.append(table.c.funnel_stage.in_(list(config.server_only_stages)))
    return sa.and_(table.c.channel == "server", sa.or_(*conditions))


def rejected_combination(table=events) -> sa.ColumnElement[bool]:
    """The event's valid parameters form (a subset of) one of Meta's rejected combinations."""
    return sa.and_(
        table.c.n_valid_params > 0,
        sa.or_(*[table.c[f"combo_{k}"] == sa.true() for k in range(len(REJECTED_COMBINATIONS))]),
    )


def group_column(dimension: str) -> sa.ColumnElement:
    """The column a block is grouped by; a missing action source or messaging channel
    reads "(none)"."""
    if dimension not in DIMENSIONS:
        raise ValueError(f"cannot group by {dimension!r}; choose from {', '.join(DIMENSIONS)}")
    column = events.c[dimension]
    if dimension in ("action_source", "messaging_channel"):
        return sa.func.coalesce(column, "(none)").label(dimension)
    return column.label(dimension)


def percentile_aggregates() -> list[sa.ColumnElement]:
    """Median and p90 lag of server events with a known lag."""
    return [
        percentile(sa.case((LAG_KNOWN, LAG)), 0.5).label("median_lag_s"),
        percentile(sa.case((LAG_KNOWN, LAG)), 0.9).label("p90_lag_s"),
    ]


def read_frame(
    connection: Connection, query: sa.Select, columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """A query's rows as a DataFrame (columns named by `columns`, else by the query).

    On DuckDB the result is fetched as one Arrow table (see `dashboard.store.frames`):
    SQLAlchemy's row-by-row fetch costs more than the query itself for tens of thousands
    of signature rows. Either way the frame's dtypes are those pandas infers from the
    rows' Python values, so callers see the same frame on every store.
    """
    return result_frame(connection.execute(query), columns)


def default_config() -> Config:
    """The config file's settings, for callers that pass none."""
    from dashboard.core.config import load_config

    return load_config()
