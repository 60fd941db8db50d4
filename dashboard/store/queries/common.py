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
from dashboard.core.definitions import FUTURE_TOLERANCE_S, STALE_AFTER_S
from dashboard.core.filters import DIMENSIONS, FILTER_DIMENSIONS, Filters, epoch
from dashboard.core.measures import Count
from dashboard.store.database import events
from dashboard.store.frames import result_frame
from dashboard.store.functions import count_where
from dashboard.store.queries.emq import rejected_combination


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
    """The number of rows where `condition` holds (0 for an empty group; a NULL
    condition counts as false), as a BIGINT on every store."""
    return count_where(condition)


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


# The per-event flags a `Count` measure can count (its `flag`; "n" is every event).
FLAGS: dict[str, sa.ColumnElement[bool]] = {
    "n": sa.true(),
    "n_test": events.c.is_test == sa.true(),
    "n_no_event_id": events.c.event_id.is_(None),
    "n_id_twin": events.c.id_twin_48h == sa.true(),
    "n_any_key": events.c.covered_any_key == sa.true(),
    "n_pii": events.c.has_unhashed_pii == sa.true(),
    "n_in_ms": events.c.event_time_in_ms == sa.true(),
    "n_double": events.c.likely_double == sa.true(),
    "n_stale": sa.and_(LAG_KNOWN, LAG > STALE_AFTER_S),
    "n_future": sa.and_(LAG_KNOWN, -LAG > FUTURE_TOLERANCE_S),
}


def _measure_column(name: str, config: Config) -> sa.ColumnElement:
    """A column a `Count` measure's `where` names, as an events expression."""
    special = {
        "_channel": events.c.channel,
        "_accepted": ACCEPTED,
        "_dedup_status": events.c.dedup_status,
        "_rejected_combo": rejected_combination(),
        "_by_design": server_only_by_design(config),
    }
    return special[name] if name in special else events.c[name]


def count_condition(count: Count, config: Config) -> sa.ColumnElement[bool]:
    """The events a `Count` measure counts, as a WHERE condition: its channel, accepted
    or not, its flag (a `FLAGS` condition; not "emq", which is a sum) and each `where`
    clause. The block sums and the drill-down lists both use it, so a finding's list
    holds exactly the events its number counts."""
    conditions: list[sa.ColumnElement[bool]] = []
    if count.channel is not None:
        conditions.append(events.c.channel == count.channel)
    if count.accepted is not None:
        conditions.append(ACCEPTED if count.accepted else sa.not_(ACCEPTED))
    if count.flag != "n":
        conditions.append(FLAGS[count.flag])
    for column, operator, value in count.where:
        expression = _measure_column(column, config)
        if isinstance(value, bool):
            # Booleans as SQL booleans (a NULL dedup flag is not true).
            conditions.append(sa.func.coalesce(expression, False) == sa.literal(value))
        elif operator == "==":
            conditions.append(expression == value)
        else:
            conditions.append(expression >= value)
    return sa.and_(sa.true(), *conditions)


def group_column(dimension: str) -> sa.ColumnElement:
    """The column a block is grouped by; a missing action source or messaging channel
    reads "(none)"."""
    if dimension not in DIMENSIONS:
        raise ValueError(f"cannot group by {dimension!r}; choose from {', '.join(DIMENSIONS)}")
    column = events.c[dimension]
    if dimension in ("action_source", "messaging_channel"):
        return sa.func.coalesce(column, "(none)").label(dimension)
    return column.label(dimension)


def read_frame(
    connection: Connection, query: sa.Select, columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """A query's rows as a DataFrame (columns named by `columns`, else by the query).

    On DuckDB the result is fetched as one Arrow table (see `dashboard.store.frames`):
    SQLAlchemy's row-by-row fetch costs more than the query itself for tens of thousands
    of rows. Either way the frame's dtypes are those pandas infers from the
    rows' Python values, so callers see the same frame on every store.
    """
    return result_frame(connection.execute(query), columns)


def default_config() -> Config:
    """The config file's settings, for callers that pass none."""
    from dashboard.core.config import load_config

    return load_config()
