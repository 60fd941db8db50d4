"""The scans behind a block of indicators: status signatures, lag percentiles, the days
with events, the data's date range.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dashboard.core import clock
from dashboard.core.config import Config
from dashboard.core.definitions import (
    FUTURE_TOLERANCE_S,
    STALE_AFTER_S,
)
from dashboard.core.filters import Filters, epoch
from dashboard.core.params import PARAMS, REJECTED_COMBINATIONS
from dashboard.store.database import events
from dashboard.store.queries.common import (
    ACCEPTED,
    LAG,
    LAG_KNOWN,
    SERVER,
    count_if,
    group_column,
    percentile_aggregates,
    read_frame,
    rejected_combination,
    server_only_by_design,
    where,
)


def period_days(engine: Engine, filters: Filters) -> list[date]:
    """The whole days a slice's period covers: its since..until, else the store's first
    to last day; never today or later (today is not over, so not yet missing)."""
    span = data_range(engine)
    first = filters.since or (span[0] if span else None)
    last = filters.until or (span[1] if span else None)
    if first is None or last is None:
        return []
    last = min(last, clock.today() - timedelta(days=1))
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def days_present(engine: Engine, filters: Filters, dims: Sequence[str]) -> pd.DataFrame:
    """The (dims, event_day) combinations that have at least one event in the slice."""
    keys = [*[group_column(d) for d in dims if d != "event_day"], events.c.event_day]
    query = sa.select(*keys).where(*where(filters)).group_by(*keys)
    with engine.connect() as connection:
        frame = read_frame(connection, query)
    frame["event_day"] = pd.to_datetime(frame["event_day"]).dt.date
    return frame


# Per-signature sums of the flags that are not part of the signature.
SIGNATURE_SUMS = {
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


def signature_frame(
    engine: Engine, filters: Filters, dims: Sequence[str], config: Config
) -> pd.DataFrame:
    keys = [
        *[group_column(d) for d in dims],
        # Underscored: a grouping may use channel itself as a dimension.
        events.c.channel.label("_channel"),
        ACCEPTED.label("_accepted"),
        events.c.dedup_status.label("_dedup_status"),
        rejected_combination().label("_rejected_combo"),
        server_only_by_design(config).label("_by_design"),
        *[events.c[f"p_{p}"] for p in PARAMS],
        # Functions of the statuses above: they add no groups, but what-to-fix needs them.
        *[events.c[f"combo_{k}"] for k in range(len(REJECTED_COMBINATIONS))],
    ]
    query = (
        sa.select(
            *keys,
            *[count_if(c).label(n) for n, c in SIGNATURE_SUMS.items()],
            sa.func.max(events.c.event_time).label("_max_event_time"),
            sa.func.max(events.c.sent_at).label("_max_sent_at"),
        )
        .where(*where(filters))
        .group_by(*keys)
    )
    names = [*dims, "_channel", "_accepted", "_dedup_status", "_rejected_combo", "_by_design"]
    names += [f"p_{p}" for p in PARAMS]
    names += [f"combo_{k}" for k in range(len(REJECTED_COMBINATIONS))] + list(SIGNATURE_SUMS)
    names += ["_max_event_time", "_max_sent_at"]
    with engine.connect() as connection:
        frame = read_frame(connection, query, names)
    for flag in (
        "_accepted",
        "_rejected_combo",
        "_by_design",
        *[f"combo_{k}" for k in range(len(REJECTED_COMBINATIONS))],
    ):
        frame[flag] = frame[flag].astype(bool)
    for column in [f"p_{p}" for p in PARAMS] + list(SIGNATURE_SUMS):
        frame[column] = frame[column].astype("int64")
    return frame


def percentile_frames(
    engine: Engine, filters: Filters, groupings: Sequence[Sequence[str]]
) -> list[pd.DataFrame]:
    """Median and p90 lag per group, one frame per grouping."""
    lag_names = ["median_lag_s", "p90_lag_s"]
    if engine.dialect.name not in ("duckdb", "postgresql") or len(groupings) < 2:
        frames = []
        for grouping in groupings:
            group_columns = [group_column(d) for d in grouping]
            query = sa.select(*group_columns, *percentile_aggregates()).where(*where(filters))
            if group_columns:
                query = query.group_by(*group_columns)
            with engine.connect() as connection:
                frames.append(read_frame(connection, query, [*grouping, *lag_names]))
        return frames
    dims: list[str] = []
    for grouping in groupings:
        dims.extend(d for d in grouping if d not in dims)
    columns = {d: group_column(d) for d in dims}
    sets = [sa.tuple_(*[columns[d] for d in g]) if g else sa.text("()") for g in groupings]
    grouping_id = sa.func.grouping(*columns.values()).label("_grouping_id")
    query = (
        sa.select(*columns.values(), grouping_id, *percentile_aggregates())
        .where(*where(filters))
        .group_by(sa.func.grouping_sets(*sets))
    )
    with engine.connect() as connection:
        everything = read_frame(connection, query, [*dims, "_grouping_id", *lag_names])
    frames = []
    for grouping in groupings:
        # GROUPING() sets a bit (leftmost dimension = highest bit) for each dimension
        # that is *not* grouped in that row's set.
        wanted = sum(1 << (len(dims) - 1 - i) for i, d in enumerate(dims) if d not in grouping)
        part = everything[everything["_grouping_id"] == wanted]
        frames.append(part[[*grouping, *lag_names]].reset_index(drop=True))
    return frames


def parameter_presence_frame(
    engine: Engine, filters: Filters, params: Sequence[str], by: Sequence[str]
) -> pd.DataFrame:
    """Server events sent and those with a valid value of each of `params`, per group.

    A light query for the parameter-gap diagnostic, which needs a handful of columns
    over many groups rather than whole blocks.
    """
    group_columns = [group_column(d) for d in by]
    query = (
        sa.select(
            *group_columns,
            sa.func.count().label("server_sent"),
            *[count_if(events.c[f"p_{p}"] == 1).label(f"valid__{p}") for p in params],
        )
        .where(*where(filters), SERVER)
        .group_by(*group_columns)
        .order_by(*group_columns)
    )
    with engine.connect() as connection:
        frame = read_frame(connection, query)
    if frame.empty:
        return pd.DataFrame(columns=[*by, "server_sent", *[f"valid__{p}" for p in params]])
    for column in ["server_sent", *[f"valid__{p}" for p in params]]:
        frame[column] = frame[column].astype("int64")
    return frame


def event_time_span(engine: Engine, filters: Filters) -> tuple[float | None, float | None]:
    """The first and last event_time of the slice (None, None when it is empty)."""
    with engine.connect() as connection:
        first, last = connection.execute(
            sa.select(sa.func.min(events.c.event_time), sa.func.max(events.c.event_time)).where(
                *where(filters)
            )
        ).one()
    return first, last


def period_end(engine: Engine, filters: Filters) -> float:
    """End (exclusive) of the period's last UTC day: `until`, else the latest event's day."""
    if filters.until:
        return epoch(filters.until + timedelta(days=1))
    with engine.connect() as connection:
        latest = connection.execute(
            sa.select(sa.func.max(events.c.event_time)).where(*where(filters))
        ).scalar()
    if latest is None:
        return 0.0
    last_day = datetime.fromtimestamp(float(latest), tz=UTC).date()
    return epoch(last_day + timedelta(days=1))


# ---------------------------------------------------------------------------
# Misc helpers for pages and reports
def data_range(engine: Engine) -> tuple[date, date] | None:
    """First and last UTC day of event_time in the store (None when empty)."""
    with engine.connect() as connection:
        low, high = connection.execute(
            sa.select(sa.func.min(events.c.event_time), sa.func.max(events.c.event_time))
        ).one()
    if low is None:
        return None
    return (
        datetime.fromtimestamp(low, tz=UTC).date(),
        datetime.fromtimestamp(high, tz=UTC).date(),
    )


def latest_sent_at(engine: Engine) -> float | None:
    """The latest sent_at in the store, rejected batches included (UTC Unix seconds),
    None when empty. `check --at latest` ends its sent_at window here: ending it at the
    newest event_time would leave out a batch uploaded hours after its events."""
    with engine.connect() as connection:
        value = connection.execute(sa.select(sa.func.max(events.c.sent_at))).scalar()
    return None if value is None else float(value)


def distinct_values(engine: Engine, column: str) -> list[str]:
    """Sorted distinct values of a filter dimension."""
    col = events.c[column]
    with engine.connect() as connection:
        values = (
            connection.execute(sa.select(col).where(col.is_not(None)).distinct()).scalars().all()
        )
    return sorted(str(v) for v in values)
