"""The scans behind a block of indicators: every counted measure per group in one
GROUPING SETS scan, the days with events, the data's date range.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dashboard.core import clock
from dashboard.core.config import Config
from dashboard.core.filters import Filters, epoch
from dashboard.core.measures import MEASURES, Count, LagPercentile, Latest
from dashboard.store.database import events
from dashboard.store.functions import percentile
from dashboard.store.queries.common import (
    ACCEPTED,
    LAG,
    LAG_KNOWN,
    SERVER,
    count_condition,
    count_if,
    group_column,
    read_frame,
    where,
)
from dashboard.store.queries.emq import emq_score


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


def days_present(
    engine: Engine, filters: Filters, groupings: Sequence[Sequence[str]]
) -> list[pd.DataFrame]:
    """Per grouping, the (grouping's dimensions, event_day) pairs with at least one event in
    the slice: one frame per grouping, from one GROUPING SETS scan where the store has them.

    Each grouping apart, not every dimension at once: the combinations of all of them
    grow with the data's diversity (145,825 rows for the report's groupings on the 1M
    diverse store, 59,234 per grouping).
    """
    with_days = [
        [*(d for d in grouping if d != "event_day"), "event_day"] for grouping in groupings
    ]
    events_count = _Aggregate("events", sa.literal(1), sa.func.count)
    frames = _grouped(engine, list(where(filters)), with_days, [events_count], materialize=False)
    for frame in frames:
        frame["event_day"] = pd.to_datetime(frame["event_day"]).dt.date
    return [frame.drop(columns="events") for frame in frames]


def block_sums(
    engine: Engine, filters: Filters, groupings: Sequence[Sequence[str]], config: Config
) -> list[pd.DataFrame]:
    """Every `Count`, `Latest` and `LagPercentile` measure of the registry per group, one
    frame per grouping (columns: the grouping's dimensions, then the measures' columns,
    groups in no particular order).

    The database does all the work: each measure is one aggregate over the slice's
    events, and the groupings are GROUPING SETS over one pass computing each event's
    values on DuckDB and PostgreSQL (one query per grouping on SQLite, which has none).
    Server events and the others are scanned apart, each with only the measures that
    can count them: most measures (the 75 parameter counts) are of server events, and a
    scan of those alone with plain conditions runs about 3x faster on DuckDB than
    conditions on every event. What crosses into Python is one row per group, however
    diverse the events are.
    """
    server, others = _aggregates_for(config)
    server_frames = _grouped(engine, [*where(filters), SERVER], groupings, server)
    other_frames = _grouped(engine, [*where(filters), sa.not_(SERVER)], groupings, others)
    names = list(dict.fromkeys(a.name for a in [*server, *others]))
    both = [a.name for a in server if a.name in {b.name for b in others}]
    latest = {m.column for m in MEASURES if isinstance(m.aggregate, Latest)}
    counted = np.array([name in _COUNT_COLUMNS for name in names])
    out = []
    for grouping, on_server, elsewhere in zip(groupings, server_frames, other_frames, strict=True):
        keys = list(grouping)
        elsewhere = elsewhere.rename(columns={name: f"{name}__other" for name in both})
        if keys:
            merged = on_server.merge(elsewhere, on=keys, how="outer")
        else:
            merged = pd.concat([on_server, elsewhere], axis=1)
        # Whole-array arithmetic: one pandas operation per frame, not per column (a
        # hundred columns over a few groups cost more in pandas' overhead than in sums).
        values = merged[names].to_numpy(dtype=float)
        for name in both:
            column = names.index(name)
            other = merged[f"{name}__other"].to_numpy(dtype=float)
            if name in latest:
                values[:, column] = np.fmax(values[:, column], other)
            else:
                values[:, column] = np.nan_to_num(values[:, column]) + np.nan_to_num(other)
        # A group with events of one side only has no row on the other: none counted.
        values[:, counted] = np.nan_to_num(values[:, counted])
        measures = pd.DataFrame(values, columns=names)
        out.append(pd.concat([merged[keys].reset_index(drop=True), measures], axis=1))
    return out


@dataclass(frozen=True)
class _Aggregate:
    """One measure's aggregate, split into what is computed per event (`value`) and how
    a group's values are combined (`combine`): a scan with several grouping sets computes
    the values once and combines them per set."""

    name: str
    value: sa.ColumnElement
    combine: Callable[[sa.ColumnElement], sa.ColumnElement]

    def of(self, values: sa.ColumnElement | None = None) -> sa.Label:
        """The aggregate over `values` (the per-event expression when None)."""
        return self.combine(self.value if values is None else values).label(self.name)


_AGGREGATES: dict[tuple, tuple[list[_Aggregate], list[_Aggregate]]] = {}


def _aggregates_for(config: Config) -> tuple[list[_Aggregate], list[_Aggregate]]:
    """The server scan's and the other scan's aggregates, built once per EMQ and
    by-design settings (building ~130 expressions costs more than a small scan)."""
    key = (
        tuple(sorted(config.emq_points.items())),
        config.emq_pair_points,
        config.emq_cap,
        tuple(config.pixel_action_sources),
        tuple(config.server_only_stages),
    )
    if key not in _AGGREGATES:
        _AGGREGATES[key] = (
            _measure_aggregates(config, "server"),
            _measure_aggregates(config, "browser"),
        )
    return _AGGREGATES[key]


def _grouped(
    engine: Engine,
    conditions: list[sa.ColumnElement[bool]],
    groupings: Sequence[Sequence[str]],
    aggregates: list[_Aggregate],
    *,
    materialize: bool = True,
) -> list[pd.DataFrame]:
    """`aggregates` over the events where `conditions` hold, one frame per grouping.

    `materialize` computes each event's values once before the grouping sets combine
    them; aggregates as cheap as a count gain nothing from it, and pay its write.
    """
    names = [a.name for a in aggregates]
    if engine.dialect.name not in ("duckdb", "postgresql") or len(groupings) < 2:
        frames = []
        for grouping in groupings:
            keys = [group_column(d) for d in grouping]
            query = sa.select(*keys, *[a.of() for a in aggregates]).where(*conditions)
            if keys:
                query = query.group_by(*keys)
            with engine.connect() as connection:
                frames.append(read_frame(connection, query, [*grouping, *names]))
        return frames
    dims: list[str] = []
    for grouping in groupings:
        dims.extend(d for d in grouping if d not in dims)
    # The per-event values once, then every grouping set over them. Left inline, DuckDB
    # evaluates the ~100 expressions again for each grouping set: the report's two scans
    # of the 1M diverse store took 1.9-2.7 s so, 1.1-1.3 s materialized. The memory is
    # bounded by the store's memory_limit (DuckDB spills beyond it).
    if materialize:
        values = (
            sa.select(
                *[group_column(d) for d in dims],
                *[a.value.label(f"v{i}") for i, a in enumerate(aggregates)],
            )
            .where(*conditions)
            .cte("event_values")
            .prefix_with("MATERIALIZED")
        )
        columns = {d: values.c[d] for d in dims}
        combined = [a.of(values.c[f"v{i}"]) for i, a in enumerate(aggregates)]
    else:
        columns = {d: group_column(d) for d in dims}
        combined = [a.of() for a in aggregates]
    sets = [sa.tuple_(*[columns[d] for d in g]) if g else sa.text("()") for g in groupings]
    grouping_id = sa.func.grouping(*columns.values()).label("_grouping_id")
    query = sa.select(*columns.values(), grouping_id, *combined).group_by(
        sa.func.grouping_sets(*sets)
    )
    if not materialize:
        query = query.where(*conditions)
    with engine.connect() as connection:
        everything = read_frame(connection, query, [*dims, "_grouping_id", *names])
    frames = []
    for grouping in groupings:
        # GROUPING() sets a bit (leftmost dimension = highest bit) for each dimension
        # that is *not* grouped in that row's set.
        wanted = sum(1 << (len(dims) - 1 - i) for i, d in enumerate(dims) if d not in grouping)
        part = everything[everything["_grouping_id"] == wanted]
        frames.append(part[[*grouping, *names]].reset_index(drop=True))
    return frames


_COUNT_COLUMNS = {m.column for m in MEASURES if isinstance(m.aggregate, Count)}


def _measure_aggregates(config: Config, channel: str) -> list[_Aggregate]:
    """One aggregate per `Count`, `Latest` and `LagPercentile` measure that can count
    events of `channel` (those of no channel count every event)."""
    out = []
    for measure in MEASURES:
        aggregate = measure.aggregate
        if isinstance(aggregate, LagPercentile):
            if channel == "server":  # a lag is a server event's
                fraction = aggregate.fraction
                out.append(
                    _Aggregate(
                        measure.column,
                        sa.case((LAG_KNOWN, LAG)),
                        lambda v, fraction=fraction: percentile(v, fraction),
                    )
                )
            continue
        if not isinstance(aggregate, Count | Latest):
            continue
        if aggregate.channel not in (None, channel):
            continue
        if isinstance(aggregate, Count) and aggregate.flag == "emq":
            # The sum of the events' estimates (a mean once divided by their count).
            events_of = count_condition(replace(aggregate, flag="n", channel=None), config)
            value = sa.case((events_of, emq_score(config)), else_=0.0)
            out.append(
                _Aggregate(measure.column, value, lambda v: sa.func.coalesce(sa.func.sum(v), 0.0))
            )
        elif isinstance(aggregate, Count):
            # The scan already holds only this channel's events.
            condition = count_condition(replace(aggregate, channel=None), config)
            out.append(_Aggregate(measure.column, condition, count_if))
        else:
            value = sa.case((ACCEPTED, events.c[aggregate.source]))
            out.append(_Aggregate(measure.column, value, sa.func.max))
    return out


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
