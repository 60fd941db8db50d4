"""Quality indicators computed inside the database, returned as small pandas frames.

Owns the definitions of every number the dashboard, the reports and the CLI show:
parameter coverage and validity, the EMQ estimate and what to fix next, event coverage
and dedup, freshness, delivery, funnel and readiness. All SQL is SQLAlchemy Core with
bound parameters, so the same code runs on DuckDB, SQLite and PostgreSQL. Rates are
0-1, times are UTC Unix seconds, lags are seconds. Dedup statuses are precomputed per
event by dashboard.store.dedup.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from dashboard.core.config import Config
from dashboard.core.meta_errors import TOKEN_ERROR_CODES
from dashboard.core.params import PARAMS, REJECTED_COMBINATIONS, applicable_params
from dashboard.outputs.formatting import day as day_text
from dashboard.store.database import DEDUP_STATUSES, events, percentile

STALE_AFTER_S = 7 * 86400  # Meta rejects a batch holding an event older than 7 days
FUTURE_TOLERANCE_S = 60
DIMENSIONS = (
    "dataset_id",
    "campaign",
    "funnel_stage",
    "event_name",
    "action_source",
    "messaging_channel",
    "channel",
    "event_day",
)


@dataclass(frozen=True)
class Filters:
    """A slice of the store. Empty tuples mean 'all'; dates are inclusive UTC days of event_time."""

    since: date | None = None
    until: date | None = None
    datasets: tuple[str, ...] = ()
    campaigns: tuple[str, ...] = ()
    stages: tuple[str, ...] = ()
    event_names: tuple[str, ...] = ()
    action_sources: tuple[str, ...] = ()
    messaging_channels: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    # Finer windows than whole days (UTC Unix seconds, end exclusive), e.g. "the last 24 h".
    start_ts: float | None = None
    end_ts: float | None = None
    # The same on sent_at, for "what was sent in the last 24 h" (alerts).
    sent_start_ts: float | None = None
    sent_end_ts: float | None = None

    def conditions(self, table=events) -> list[sa.ColumnElement[bool]]:
        """WHERE conditions (bound parameters) for this slice."""
        conditions: list[sa.ColumnElement[bool]] = []
        if self.start_ts is not None:
            conditions.append(table.c.event_time >= self.start_ts)
        if self.end_ts is not None:
            conditions.append(table.c.event_time < self.end_ts)
        if self.sent_start_ts is not None:
            conditions.append(table.c.sent_at >= self.sent_start_ts)
        if self.sent_end_ts is not None:
            conditions.append(table.c.sent_at < self.sent_end_ts)
        if self.since:
            conditions.append(table.c.event_time >= _epoch(self.since))
        if self.until:
            conditions.append(table.c.event_time < _epoch(self.until + timedelta(days=1)))
        for attr, column in (
            ("datasets", "dataset_id"),
            ("campaigns", "campaign"),
            ("stages", "funnel_stage"),
            ("event_names", "event_name"),
            ("action_sources", "action_source"),
            ("messaging_channels", "messaging_channel"),
            ("channels", "channel"),
        ):
            values = getattr(self, attr)
            if values:
                conditions.append(table.c[column].in_(list(values)))
        return conditions

    def previous(self) -> Filters | None:
        """The period of equal length just before this one (None without both dates)."""
        if not (self.since and self.until):
            return None
        length = (self.until - self.since).days + 1
        return replace(
            self,
            since=self.since - timedelta(days=length),
            until=self.since - timedelta(days=1),
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready description of the slice."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, date):
                out[f.name] = value.isoformat()
            elif isinstance(value, float):
                out[f.name] = value
            elif value:
                out[f.name] = list(value)
        return out


@dataclass(frozen=True)
class Comparison:
    """The period a slice is compared with, and whether the data covers all of it.

    A delta against a period the data only partly covers (the log starts inside it)
    would read as a change that never happened, so it is shown only when `available`.
    """

    since: date
    until: date
    available: bool
    data_first_day: date | None
    # The slice's last day with data when it ends before the current period does (the
    # current period is then not fully covered either), else None.
    data_ends_early: date | None = None
    # When the current period runs through today, which is not over: the previous
    # period's last day is cut at the same time of day (UTC Unix seconds), so a morning
    # is not compared with a whole day.
    cut_at: float | None = None

    def previous_filters(self, filters: Filters) -> Filters:
        """The filters of the comparison period for a slice."""
        return replace(filters, since=self.since, until=self.until, end_ts=self.cut_at)

    @property
    def note(self) -> str:
        """What a reader sees next to the numbers."""
        span = f"{day_text(self.since)} – {day_text(self.until)}"
        if self.available:
            days = (self.until - self.since).days + 1
            if self.cut_at is not None:
                moment = datetime.fromtimestamp(self.cut_at, tz=UTC)
                return (
                    f"Changes compare with {span}, the {days} days before, up to "
                    f"{moment:%H:%M} UTC on {day_text(moment.date())}: today is not over."
                )
            return f"Changes compare with {span}, the {days} days before."
        if self.data_first_day is None:
            return "No comparison: no data in this selection."
        if self.data_ends_early is not None:
            return (
                f"No comparison: no data after {day_text(self.data_ends_early)}, so this "
                "period is not fully covered and its totals would read as a fall."
            )
        return (
            f"No comparison: no data before {day_text(self.data_first_day)}, so {span} "
            "is not fully covered."
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "available": self.available,
            "note": self.note,
        }


def comparison(engine: Engine, filters: Filters) -> Comparison | None:
    """The previous period of `filters` and whether the slice's data covers both periods
    (its first event, with the same campaign/stage/... filters, on or before the previous
    period's first day, and its last on or after the current period's last whole day).
    None when the slice has no since/until."""
    previous = filters.previous()
    if previous is None or previous.since is None or previous.until is None:
        return None
    undated = replace(filters, since=None, until=None)
    with engine.connect() as connection:
        first, last = connection.execute(
            sa.select(sa.func.min(events.c.event_time), sa.func.max(events.c.event_time)).where(
                *undated.conditions()
            )
        ).one()
    if first is None:
        return Comparison(previous.since, previous.until, False, None)
    first_day = datetime.fromtimestamp(float(first), tz=UTC).date()
    last_day = datetime.fromtimestamp(float(last), tz=UTC).date()
    # Today is not over: a period running to today is covered by data through yesterday.
    needed = min(filters.until, today() - timedelta(days=1)) if filters.until else None
    ends_early = last_day if needed is not None and last_day < needed else None
    available = first_day <= previous.since and ends_early is None
    cut_at = None
    if filters.until is not None and filters.until >= today():
        # Whole 10 minutes: the cut, and so the cached comparison, changes 6 times an hour.
        since_midnight = now() % 86_400 // 600 * 600
        cut_at = _epoch(previous.until) + since_midnight
    return Comparison(previous.since, previous.until, available, first_day, ends_early, cut_at)


def _epoch(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


# ---------------------------------------------------------------------------
# Building blocks
def count_if(condition) -> sa.ColumnElement:
    # sum(CAST(... AS INTEGER)) runs about twice as fast as sum(CASE ...) on DuckDB; a
    # NULL condition counts as false, and an empty group gives 0.
    return sa.func.coalesce(sa.func.sum(sa.cast(condition, sa.Integer)), 0)


_SERVER = events.c.channel == "server"
_BROWSER = events.c.channel == "browser"
_ACCEPTED = events.c.delivery != "rejected"
_LAG = events.c.sent_at - events.c.event_time
# A defaulted sent_at (bare events without one) says nothing about lag: leave those out.
_LAG_KNOWN = sa.and_(_SERVER, events.c.sent_at_defaulted == sa.false())


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


def estimate_emq(valid_params: set[str] | frozenset[str], config: Config) -> float:
    """EMQ estimate (0-10) of one event from its set of valid parameters (reference version).

    The SQL in `emq_score` computes the same inside the database.
    """
    if valid_params and any(valid_params <= combo for combo in REJECTED_COMBINATIONS):
        return 0.0
    points = sum(config.emq_points.get(p, 0.0) for p in valid_params)
    if {"client_ip_address", "client_user_agent"} <= valid_params:
        points += config.emq_pair_points
    return 10.0 if points >= config.emq_cap else points * 10.0 / config.emq_cap


def emq_points(
    config: Config, table=events, *, assume_valid: str | None = None
) -> sa.ColumnElement:
    """Points earned by an event's valid parameters (optionally as if `assume_valid` were valid)."""

    def is_valid(param: str):
        if param == assume_valid:
            return sa.true()
        return table.c[f"p_{param}"] == 1

    terms = [
        sa.case((is_valid(param), config.emq_points.get(param, 0.0)), else_=0.0)
        for param in PARAMS
        if config.emq_points.get(param, 0.0) or param == assume_valid
    ]
    terms.append(
        sa.case(
            (
                sa.and_(is_valid("client_ip_address"), is_valid("client_user_agent")),
                config.emq_pair_points,
            ),
            else_=0.0,
        )
    )
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


def emq_score(config: Config, table=events, *, assume_valid: str | None = None) -> sa.ColumnElement:
    """Per-event EMQ estimate, 0-10: capped points, 0 for Meta's rejected combinations."""
    points = emq_points(config, table, assume_valid=assume_valid)
    if assume_valid is None:
        rejected = sa.and_(
            table.c.n_valid_params > 0,
            sa.or_(
                *[table.c[f"combo_{k}"] == sa.true() for k in range(len(REJECTED_COMBINATIONS))]
            ),
        )
    else:
        # The set plus `assume_valid` is non-empty and a subset of combination k only
        # when the set already was and k contains the parameter.
        ks = [k for k, combo in enumerate(REJECTED_COMBINATIONS) if assume_valid in combo]
        rejected = sa.or_(*[table.c[f"combo_{k}"] == sa.true() for k in ks]) if ks else sa.false()
    return sa.case(
        (rejected, 0.0),
        (points >= config.emq_cap, 10.0),
        else_=points * (10.0 / config.emq_cap),
    )


def rejected_combination(table=events) -> sa.ColumnElement[bool]:
    """The event's valid parameters form (a subset of) one of Meta's rejected combinations."""
    return sa.and_(
        table.c.n_valid_params > 0,
        sa.or_(*[table.c[f"combo_{k}"] == sa.true() for k in range(len(REJECTED_COMBINATIONS))]),
    )


def tier(score: float | None, config: Config) -> str:
    """Poor / OK / Good / Great for an EMQ estimate (cut-offs approximate, not Meta's).

    The tier is that of the value as people see it, one decimal: 3.996 shows as "4.0"
    and is OK when OK starts at 4, so a label never contradicts its number.
    """
    if score is None or (isinstance(score, float) and np.isnan(score)):
        return "No data"
    score = round(float(score), 1)
    if score >= config.emq_tiers["great"]:
        return "Great"
    if score >= config.emq_tiers["good"]:
        return "Good"
    if score >= config.emq_tiers["ok"]:
        return "OK"
    return "Poor"


def upload_frequency(median_lag_s: float | None, config: Config) -> str:
    """Events Manager's upload-frequency class from the median lag."""
    if median_lag_s is None:
        return "no data"
    if median_lag_s <= config.freshness["real_time_max_s"]:
        return "real time"
    if median_lag_s <= config.freshness["hourly_max_s"]:
        return "hourly"
    if median_lag_s <= config.freshness["daily_max_s"]:
        return "daily"
    return "weekly"


def _group_column(dimension: str) -> sa.ColumnElement:
    if dimension not in DIMENSIONS:
        raise ValueError(f"cannot group by {dimension!r}; choose from {', '.join(DIMENSIONS)}")
    column = events.c[dimension]
    if dimension in ("action_source", "messaging_channel"):
        return sa.func.coalesce(column, "(none)").label(dimension)
    return column.label(dimension)


def _block_aggregates(config: Config) -> list[sa.ColumnElement]:
    server_sent = _SERVER
    aggregates = [
        count_if(sa.and_(_BROWSER, _ACCEPTED)).label("browser_events"),
        count_if(sa.and_(_SERVER, _ACCEPTED)).label("server_events"),
        count_if(sa.and_(_SERVER, ~_ACCEPTED)).label("server_rejected_by_meta"),
        count_if(server_sent).label("server_sent"),
        count_if(sa.and_(_SERVER, events.c.is_test == sa.true())).label("test_events"),
        count_if(sa.and_(_SERVER, _ACCEPTED, events.c.event_id.is_(None))).label(
            "server_without_event_id"
        ),
        count_if(sa.and_(_BROWSER, _ACCEPTED, events.c.id_twin_48h == sa.true())).label("covered"),
        count_if(sa.and_(_BROWSER, _ACCEPTED, events.c.covered_any_key == sa.true())).label(
            "covered_any_key"
        ),
        sa.func.sum(sa.case((server_sent, emq_score(config)), else_=0.0)).label("emq_sum"),
        count_if(sa.and_(_SERVER, events.c.has_unhashed_pii == sa.true())).label("unhashed_pii"),
        count_if(sa.and_(_SERVER, rejected_combination())).label("rejected_combination"),
        count_if(sa.and_(_SERVER, events.c.event_time_in_ms == sa.true())).label(
            "event_time_in_ms"
        ),
        count_if(sa.and_(_SERVER, _ACCEPTED, events.c.likely_double == sa.true())).label(
            "likely_double_counted"
        ),
        count_if(sa.and_(_LAG_KNOWN, _LAG > STALE_AFTER_S)).label("stale_over_7d"),
        count_if(sa.and_(_LAG_KNOWN, -_LAG > FUTURE_TOLERANCE_S)).label("future"),
    ]
    for param in PARAMS:
        column = events.c[f"p_{param}"]
        aggregates.append(count_if(sa.and_(_SERVER, column == 1)).label(f"valid__{param}"))
        aggregates.append(count_if(sa.and_(_SERVER, column >= 2)).label(f"invalid__{param}"))
        aggregates.append(count_if(sa.and_(_SERVER, column == 3)).label(f"unhashed__{param}"))
    for channel in ("browser", "server"):
        for status in DEDUP_STATUSES:
            aggregates.append(
                count_if(
                    sa.and_(events.c.channel == channel, events.c.dedup_status == status)
                ).label(f"dedup__{channel}__{status}")
            )
    by_design = server_only_by_design(config)
    for status in DEDUP_STATUSES:
        aggregates.append(
            count_if(sa.and_(by_design, events.c.dedup_status == status)).label(
                f"by_design__{status}"
            )
        )
    return aggregates


# Newest times per block (rolled up with max, not sum): accepted events only.
_LATEST_AGGREGATES = {
    "last_event_at": (None, events.c.event_time),
    "last_browser_event_at": ("browser", events.c.event_time),
    "last_server_event_at": ("server", events.c.event_time),
    "last_sent_at": (None, events.c.sent_at),
    "last_server_sent_at": ("server", events.c.sent_at),
}


def _latest_aggregates() -> list[sa.ColumnElement]:
    out = []
    for name, (channel, column) in _LATEST_AGGREGATES.items():
        condition = (
            _ACCEPTED if channel is None else sa.and_(_ACCEPTED, events.c.channel == channel)
        )
        out.append(sa.func.max(sa.case((condition, column))).label(name))
    return out


def _percentile_aggregates() -> list[sa.ColumnElement]:
    return [
        percentile(sa.case((_LAG_KNOWN, _LAG)), 0.5).label("median_lag_s"),
        percentile(sa.case((_LAG_KNOWN, _LAG)), 0.9).label("p90_lag_s"),
    ]


def block_frame(
    engine: Engine, filters: Filters, config: Config, by: str | Sequence[str] | None = None
) -> pd.DataFrame:
    """One row of raw block aggregates per group (one row overall when `by` is None)."""
    dims = [by] if isinstance(by, str) else list(by or [])
    return block_frames(engine, filters, config, [dims])[0]


def block_frames(
    engine: Engine,
    filters: Filters,
    config: Config,
    groupings: Sequence[Sequence[str]],
    *,
    missing_days: bool = False,
) -> list[pd.DataFrame]:
    """`block_frame` for several groupings from two scans.

    `_block_aggregates` defines every block column in SQL. Evaluating those ~110
    conditional sums per row is most of a report's time, and every one of them depends
    only on a few columns with few distinct values. So the scan groups events by that
    *signature* (the groupings' dimensions, channel, accepted, dedup status, rejected
    combination and the 25 parameter statuses: a few hundred rows for a million
    events) and the block columns are summed from those rows here, then rolled up per
    grouping. `tests/test_indicators.py` checks the result equals `_block_aggregates`
    evaluated directly. The lag percentiles cannot be rolled up and get their own query.
    The newest event and send times are maxima, rolled up with max.

    With `missing_days`, each row also gets `days_without_events`: the days of the
    period (see `_period_days`) on which the group has no event at all.
    """
    dims: list[str] = []
    for grouping in groupings:
        dims.extend(d for d in grouping if d not in dims)
    names = [a.name for a in _block_aggregates(config)]
    latest = list(_LATEST_AGGREGATES)
    signature = _signature_frame(engine, filters, dims, config)
    columns = _block_columns(signature, config)
    summed = columns.drop(columns=latest)
    percentiles = _percentile_frames(engine, filters, groupings)
    present = _days_present(engine, filters, dims) if missing_days else None
    period = _period_days(engine, filters) if missing_days else []
    out = []
    for grouping, lags in zip(groupings, percentiles, strict=True):
        grouping = list(grouping)
        if grouping:
            keys = [signature[d] for d in grouping]
            part = summed.groupby(keys, dropna=False, sort=True).sum()
            newest = columns[latest].groupby(keys, dropna=False, sort=True).max()
            part = part.join(newest).reset_index()
            part = part.merge(lags, on=grouping, how="left") if len(part) else part
            for lag in ("median_lag_s", "p90_lag_s"):
                if lag not in part:
                    part[lag] = pd.Series(dtype=float)
        else:
            part = pd.DataFrame(
                [summed.sum().to_dict() | columns[latest].max().to_dict()],
                columns=[*names, *latest],
            )
            for lag in ("median_lag_s", "p90_lag_s"):
                part[lag] = lags[lag].iloc[0] if len(lags) else None
        part = part[[*grouping, *names, *latest, "median_lag_s", "p90_lag_s"]]
        frame = _finish_block_frame(part.reset_index(drop=True), grouping)
        if present is not None:
            frame["days_without_events"] = _missing_days(frame, grouping, present, period)
        out.append(frame)
    return out


def now() -> float:
    """The time (UTC Unix seconds): the one clock of periods and comparisons, so a test
    can move it."""
    return datetime.now(tz=UTC).timestamp()


def today() -> date:
    """Today's UTC date: the dashboard's periods end today, and today is not over."""
    return datetime.fromtimestamp(now(), tz=UTC).date()


def _period_days(engine: Engine, filters: Filters) -> list[date]:
    """The whole days a slice's period covers: its since..until, else the store's first
    to last day; never today or later (today is not over, so not yet missing)."""
    span = data_range(engine)
    first = filters.since or (span[0] if span else None)
    last = filters.until or (span[1] if span else None)
    if first is None or last is None:
        return []
    last = min(last, today() - timedelta(days=1))
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _days_present(engine: Engine, filters: Filters, dims: Sequence[str]) -> pd.DataFrame:
    """The (dims, event_day) combinations that have at least one event in the slice."""
    keys = [*[_group_column(d) for d in dims if d != "event_day"], events.c.event_day]
    query = sa.select(*keys).where(*filters.conditions()).group_by(*keys)
    with engine.connect() as connection:
        frame = _read_frame(connection, query)
    frame["event_day"] = pd.to_datetime(frame["event_day"]).dt.date
    return frame


def _missing_days(
    frame: pd.DataFrame, grouping: list[str], present: pd.DataFrame, period: list[date]
) -> list[list[str]]:
    if "event_day" in grouping:
        return [[] for _ in range(len(frame))]
    if not grouping:
        seen = set(present["event_day"])
        return [[d.isoformat() for d in period if d not in seen]] * len(frame)
    days_by_group = present.groupby(grouping, dropna=False)["event_day"].agg(set)
    out = []
    for row in frame[grouping].itertuples(index=False, name=None):
        seen = days_by_group.get(row if len(grouping) > 1 else row[0], set())
        out.append([d.isoformat() for d in period if d not in seen])
    return out


# Per-signature sums of the flags that are not part of the signature.
_SIGNATURE_SUMS = {
    "n": sa.true(),
    "n_test": events.c.is_test == sa.true(),
    "n_no_event_id": events.c.event_id.is_(None),
    "n_id_twin": events.c.id_twin_48h == sa.true(),
    "n_any_key": events.c.covered_any_key == sa.true(),
    "n_pii": events.c.has_unhashed_pii == sa.true(),
    "n_in_ms": events.c.event_time_in_ms == sa.true(),
    "n_double": events.c.likely_double == sa.true(),
    "n_stale": sa.and_(_LAG_KNOWN, _LAG > STALE_AFTER_S),
    "n_future": sa.and_(_LAG_KNOWN, -_LAG > FUTURE_TOLERANCE_S),
}


def _read_frame(
    connection: Connection, query: sa.Select, columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """A query's rows as a DataFrame (columns named by `columns`, else by the query).

    Rows become plain tuples first: given SQLAlchemy Rows, pandas probes each one for
    attributes, which costs more than the query itself for a few thousand rows.
    """
    result = connection.execute(query)
    names = list(columns) if columns is not None else list(result.keys())
    return pd.DataFrame([tuple(row) for row in result], columns=names)


def _signature_frame(
    engine: Engine, filters: Filters, dims: Sequence[str], config: Config
) -> pd.DataFrame:
    keys = [
        *[_group_column(d) for d in dims],
        # Underscored: a grouping may use channel itself as a dimension.
        events.c.channel.label("_channel"),
        _ACCEPTED.label("_accepted"),
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
            *[count_if(c).label(n) for n, c in _SIGNATURE_SUMS.items()],
            sa.func.max(events.c.event_time).label("_max_event_time"),
            sa.func.max(events.c.sent_at).label("_max_sent_at"),
        )
        .where(*filters.conditions())
        .group_by(*keys)
    )
    names = [*dims, "_channel", "_accepted", "_dedup_status", "_rejected_combo", "_by_design"]
    names += [f"p_{p}" for p in PARAMS]
    names += [f"combo_{k}" for k in range(len(REJECTED_COMBINATIONS))] + list(_SIGNATURE_SUMS)
    names += ["_max_event_time", "_max_sent_at"]
    with engine.connect() as connection:
        frame = _read_frame(connection, query, names)
    for flag in (
        "_accepted",
        "_rejected_combo",
        "_by_design",
        *[f"combo_{k}" for k in range(len(REJECTED_COMBINATIONS))],
    ):
        frame[flag] = frame[flag].astype(bool)
    for column in [f"p_{p}" for p in PARAMS] + list(_SIGNATURE_SUMS):
        frame[column] = frame[column].astype("int64")
    return frame


def _signature_emq(
    signature: pd.DataFrame, config: Config, assume_valid: str | None = None
) -> pd.Series:
    """`emq_score` of each signature row, term by term in the same order as the SQL."""

    def is_valid(param: str) -> pd.Series:
        if param == assume_valid:
            return pd.Series(True, index=signature.index)
        return signature[f"p_{param}"] == 1

    points = pd.Series(0.0, index=signature.index)
    for param in PARAMS:
        weight = config.emq_points.get(param, 0.0)
        if weight or param == assume_valid:
            points = points + is_valid(param) * weight
    pair = is_valid("client_ip_address") & is_valid("client_user_agent")
    points = points + pair * config.emq_pair_points
    score = points.where(points < config.emq_cap, 10.0)
    score = score.where(points >= config.emq_cap, points * (10.0 / config.emq_cap))
    if assume_valid is None:
        rejected = signature["_rejected_combo"]
    else:
        rejected = pd.Series(False, index=signature.index)
        for k, combo in enumerate(REJECTED_COMBINATIONS):
            if assume_valid in combo:
                rejected = rejected | signature[f"combo_{k}"]
    return score.where(~rejected, 0.0)


def _block_columns(signature: pd.DataFrame, config: Config) -> pd.DataFrame:
    """The block columns of `_block_aggregates`, one row per signature row."""
    # NumPy arrays, not Series: ~110 columns over a few hundred rows, where pandas'
    # per-operation overhead would cost more than the sums.
    n = signature["n"].to_numpy(dtype="int64")
    channel = signature["_channel"].to_numpy()
    server = channel == "server"
    browser = channel == "browser"
    accepted = signature["_accepted"].to_numpy(dtype=bool)
    dedup_status = signature["_dedup_status"].to_numpy()

    def where(mask: np.ndarray, values: np.ndarray | str = n) -> np.ndarray:
        if isinstance(values, str):
            values = signature[values].to_numpy(dtype="int64")
        return np.where(mask, values, 0)

    emq = _signature_emq(signature, config).to_numpy(dtype=float)
    columns = {
        "browser_events": where(browser & accepted),
        "server_events": where(server & accepted),
        "server_rejected_by_meta": where(server & ~accepted),
        "server_sent": where(server),
        "test_events": where(server, "n_test"),
        "server_without_event_id": where(server & accepted, "n_no_event_id"),
        "covered": where(browser & accepted, "n_id_twin"),
        "covered_any_key": where(browser & accepted, "n_any_key"),
        "emq_sum": np.where(server, n * emq, 0.0),
        "unhashed_pii": where(server, "n_pii"),
        "rejected_combination": where(server & signature["_rejected_combo"].to_numpy(dtype=bool)),
        "event_time_in_ms": where(server, "n_in_ms"),
        "likely_double_counted": where(server & accepted, "n_double"),
        "stale_over_7d": signature["n_stale"].to_numpy(dtype="int64"),
        "future": signature["n_future"].to_numpy(dtype="int64"),
    }
    for param in PARAMS:
        status = signature[f"p_{param}"].to_numpy(dtype="int64")
        columns[f"valid__{param}"] = where(server & (status == 1))
        columns[f"invalid__{param}"] = where(server & (status >= 2))
        columns[f"unhashed__{param}"] = where(server & (status == 3))
    for channel_name, on_channel in (("browser", browser), ("server", server)):
        for status in DEDUP_STATUSES:
            columns[f"dedup__{channel_name}__{status}"] = where(
                on_channel & (dedup_status == status)
            )
    by_design = signature["_by_design"].to_numpy(dtype=bool)
    for status in DEDUP_STATUSES:
        columns[f"by_design__{status}"] = where(by_design & (dedup_status == status))
    # Maxima of accepted events (NaN elsewhere, so max skips them).
    event_time = signature["_max_event_time"].to_numpy(dtype=float)
    sent_at = signature["_max_sent_at"].to_numpy(dtype=float)
    for name, (channel_name, column) in _LATEST_AGGREGATES.items():
        mask = accepted if channel_name is None else accepted & (channel == channel_name)
        values = sent_at if column.name == "sent_at" else event_time
        columns[name] = np.where(mask, values, np.nan)
    return pd.DataFrame(columns, index=signature.index)


def _percentile_frames(
    engine: Engine, filters: Filters, groupings: Sequence[Sequence[str]]
) -> list[pd.DataFrame]:
    """Median and p90 lag per group, one frame per grouping."""
    lag_names = ["median_lag_s", "p90_lag_s"]
    if engine.dialect.name not in ("duckdb", "postgresql") or len(groupings) < 2:
        frames = []
        for grouping in groupings:
            group_columns = [_group_column(d) for d in grouping]
            query = sa.select(*group_columns, *_percentile_aggregates()).where(
                *filters.conditions()
            )
            if group_columns:
                query = query.group_by(*group_columns)
            with engine.connect() as connection:
                frames.append(_read_frame(connection, query, [*grouping, *lag_names]))
        return frames
    dims: list[str] = []
    for grouping in groupings:
        dims.extend(d for d in grouping if d not in dims)
    columns = {d: _group_column(d) for d in dims}
    sets = [sa.tuple_(*[columns[d] for d in g]) if g else sa.text("()") for g in groupings]
    grouping_id = sa.func.grouping(*columns.values()).label("_grouping_id")
    query = (
        sa.select(*columns.values(), grouping_id, *_percentile_aggregates())
        .where(*filters.conditions())
        .group_by(sa.func.grouping_sets(*sets))
    )
    with engine.connect() as connection:
        everything = _read_frame(connection, query, [*dims, "_grouping_id", *lag_names])
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
    group_columns = [_group_column(d) for d in by]
    query = (
        sa.select(
            *group_columns,
            sa.func.count().label("server_sent"),
            *[count_if(events.c[f"p_{p}"] == 1).label(f"valid__{p}") for p in params],
        )
        .where(*filters.conditions(), _SERVER)
        .group_by(*group_columns)
        .order_by(*group_columns)
    )
    with engine.connect() as connection:
        frame = _read_frame(connection, query)
    if frame.empty:
        return pd.DataFrame(columns=[*by, "server_sent", *[f"valid__{p}" for p in params]])
    for column in ["server_sent", *[f"valid__{p}" for p in params]]:
        frame[column] = frame[column].astype("int64")
    return frame


def _finish_block_frame(frame: pd.DataFrame, dims: list[str]) -> pd.DataFrame:
    floats = [
        c
        for c in frame.columns
        if c not in dims and (c.endswith("lag_s") or c == "emq_sum" or c in _LATEST_AGGREGATES)
    ]
    counts = [c for c in frame.columns if c not in dims and c not in floats]
    # Whole-frame conversions: one per kind of column, not one per column.
    as_float = _numeric(frame[floats]).astype(float)
    as_count = _numeric(frame[counts]).fillna(0).astype("int64")
    out = pd.concat([frame[dims], as_count, as_float], axis=1)[list(frame.columns)]
    if "event_day" in dims:
        out["event_day"] = pd.to_datetime(out["event_day"])
    browser = out["browser_events"].where(out["browser_events"] > 0)
    sent = out["server_sent"].where(out["server_sent"] > 0)
    emq_sum = out["emq_sum"].fillna(0.0)
    return out.assign(
        emq_sum=emq_sum,
        event_coverage=out["covered"] / browser,
        event_coverage_any_key=out["covered_any_key"] / browser,
        emq_estimate=emq_sum / sent,
    )


def _numeric(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with every column numeric (already so when it came from sums)."""
    if all(pd.api.types.is_numeric_dtype(kind) for kind in frame.dtypes):
        return frame
    return frame.apply(pd.to_numeric, errors="coerce")


def _none_if_nan(value: Any) -> Any:
    if value is None:
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        return value
    return value


def iso_utc(seconds: Any) -> str | None:
    """UTC Unix seconds as ISO 8601 ("2026-11-04T18:22:05Z"); None when missing."""
    seconds = _none_if_nan(seconds)
    if seconds is None:
        return None
    moment = datetime.fromtimestamp(float(seconds), tz=UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def dedup_rate(block: dict[str, Any]) -> float | None:
    """Share of the accepted server events that can have a browser twin which Meta
    deduplicates against one (by event_id, or the fbp/external_id fallback). Server-only
    events by design are left out of both sides: they have no twin to find."""
    server = block["dedup"]["server"]
    by_design = block["dedup"].get("server_by_design_statuses") or {}
    twinnable = sum(server[s] for s in DEDUP_STATUSES) - sum(by_design.values())
    deduped = sum(
        server[s] - by_design.get(s, 0) for s in ("deduplicated", "fallback_deduplicated")
    )
    return round(deduped / twinnable, 6) if twinnable > 0 else None


def block_dict(row: pd.Series | dict) -> dict[str, Any]:
    """The report contract's block B from one row of `block_frame`."""
    get = row.get if isinstance(row, dict) else row.__getitem__
    sent = int(get("server_sent"))

    def rate(value: Any) -> float | None:
        value = _none_if_nan(value)
        return None if value is None else round(float(value), 6)

    by_design = {s: int(get(f"by_design__{s}")) for s in DEDUP_STATUSES}
    dedup = {
        channel: {s: int(get(f"dedup__{channel}__{s}")) for s in DEDUP_STATUSES}
        for channel in ("browser", "server")
    }
    dedup["server"]["by_design"] = sum(by_design.values())
    dedup["likely_double_counted"] = int(get("likely_double_counted"))
    dedup["rate"] = dedup_rate({"dedup": dedup | {"server_by_design_statuses": by_design}})
    missing = get("days_without_events") if "days_without_events" in _keys(row) else None
    return {
        "browser_events": int(get("browser_events")),
        "server_events": int(get("server_events")),
        "server_rejected_by_meta": int(get("server_rejected_by_meta")),
        "server_sent": sent,
        "test_events": int(get("test_events")),
        "server_without_event_id": int(get("server_without_event_id")),
        "event_coverage": rate(get("event_coverage")),
        "event_coverage_any_key": rate(get("event_coverage_any_key")),
        "emq_estimate": None if sent == 0 else round(float(get("emq_sum")) / sent, 4),
        "parameter_coverage": {
            p: (round(int(get(f"valid__{p}")) / sent, 6) if sent else None) for p in PARAMS
        },
        "invalid_parameters": {p: int(get(f"invalid__{p}")) for p in PARAMS},
        "unhashed_parameters": {p: int(get(f"unhashed__{p}")) for p in PARAMS},
        "unhashed_pii": int(get("unhashed_pii")),
        "rejected_combination": int(get("rejected_combination")),
        "event_time_in_ms": int(get("event_time_in_ms")),
        "dedup": dedup,
        "freshness": {
            "median_lag_s": rate(get("median_lag_s")),
            "p90_lag_s": rate(get("p90_lag_s")),
            "stale_over_7d": int(get("stale_over_7d")),
            "future": int(get("future")),
            "last_event_at": iso_utc(get("last_event_at")),
            "last_browser_event_at": iso_utc(get("last_browser_event_at")),
            "last_server_event_at": iso_utc(get("last_server_event_at")),
            "last_sent_at": iso_utc(get("last_sent_at")),
            "last_server_sent_at": iso_utc(get("last_server_sent_at")),
            "days_without_events": None if missing is None else list(missing),
        },
    }


def _keys(row: pd.Series | dict) -> Any:
    return row.keys() if isinstance(row, dict) else row.index


def overall_block(engine: Engine, filters: Filters, config: Config) -> dict[str, Any]:
    """Block B for the whole slice."""
    frame = block_frame(engine, filters, config)
    return block_dict(frame.iloc[0])


def blocks_by(engine: Engine, filters: Filters, config: Config, by: str) -> dict[str, dict]:
    """Block B per value of one dimension."""
    frame = block_frame(engine, filters, config, by)
    return {str(row[by]): block_dict(row) for _, row in frame.iterrows()}


# ---------------------------------------------------------------------------
# Match quality
def recoverable_counts(engine: Engine, filters: Filters, params: Sequence[str]) -> pd.DataFrame:
    """Per (event name, action source) of the slice's server events: for each of `params`,
    how many lack a valid value but belong to a person (same fbp, or same external_id)
    who had sent a valid value on another event, of any channel, anywhere in the store,
    at or before this event's time.

    Those values are recoverable: the integration already knew them when it sent the
    event and only has to pass them along. A value first seen later is not: a page
    view sent before its visitor filled in the checkout form could not carry the
    e-mail, and a sent event cannot be amended. One query: a table per person key
    (the first time each parameter was valid) left-joined to the slice on equality, so
    it grows linearly with the store. An event lacking the parameter cannot be the one
    that carried it, so "another event" needs no self-exclusion.
    """

    def carried_by(key: sa.Column, name: str):
        # Only the people of the slice: a filtered view then groups a few thousand
        # people, not every visitor in the store.
        slice_people = sa.select(key).where(*filters.conditions(), _SERVER, key.is_not(None))
        return (
            sa.select(
                key.label("person"),
                *[
                    sa.func.min(sa.case((events.c[f"p_{p}"] == 1, events.c.event_time))).label(
                        f"first_{p}"
                    )
                    for p in params
                ],
            )
            .where(key.in_(slice_people))
            .group_by(key)
            .cte(name)
        )

    by_fbp = carried_by(events.c.fbp, "carried_by_fbp")
    by_external_id = carried_by(events.c.external_id, "carried_by_external_id")
    group_columns = [_group_column("event_name"), _group_column("action_source")]
    query = (
        sa.select(
            *group_columns,
            *[
                count_if(
                    sa.and_(
                        events.c[f"p_{p}"] != 1,
                        # A person without that key, or who never sent the parameter
                        # valid, compares NULL: counted as false.
                        sa.or_(
                            by_fbp.c[f"first_{p}"] <= events.c.event_time,
                            by_external_id.c[f"first_{p}"] <= events.c.event_time,
                        ),
                    )
                ).label(f"recoverable__{p}")
                for p in params
            ],
        )
        .select_from(
            events.outerjoin(by_fbp, events.c.fbp == by_fbp.c.person).outerjoin(
                by_external_id, events.c.external_id == by_external_id.c.person
            )
        )
        .where(*filters.conditions(), _SERVER)
        .group_by(*group_columns)
    )
    names = ["event_name", "action_source", *[f"recoverable__{p}" for p in params]]
    with engine.connect() as connection:
        frame = _read_frame(connection, query, names)
    for p in params:
        frame[f"recoverable__{p}"] = frame[f"recoverable__{p}"].astype("int64")
    return frame


WHAT_TO_FIX_COLUMNS = (
    "event_name",
    "action_source",
    "parameter",
    "server_events",
    "coverage",
    "recoverable_events",
    "recoverable_share",
    "emq_now",
    "emq_if_fixed",
    "recoverable_gain",
    "gain_slice",
    "gain_event",
)


def what_to_fix(engine: Engine, filters: Filters, config: Config, limit: int = 50) -> pd.DataFrame:
    """Expected EMQ gain per (event name, action source, parameter) if the parameter were valid
    on every such event. Only parameters that this action source can send are suggested.

    gain_event: rise of that event's mean estimate; gain_slice: rise of the slice's mean.
    recoverable_events: events lacking a valid value whose person had already sent one
    on another event (see `recoverable_counts`); recoverable_share: of those lacking it.
    recoverable_gain: rise of the slice's mean if only those were fixed, taken as
    gain_slice * recoverable_events / events lacking, i.e. assuming the recoverable
    events gain like the average lacking event. Ranked by recoverable_gain, then
    gain_slice: advice nobody can act on (a value the integration never sees, such as
    an e-mail on an anonymous page view) sinks, but is still listed.
    """
    candidates = [p for p in PARAMS if config.emq_points.get(p, 0.0) > 0] + [
        "client_ip_address",
        "client_user_agent",
    ]
    # From the signature rows (see block_frames): the EMQ of each status combination is
    # scored here once per candidate, not once per event in SQL.
    signature = _signature_frame(engine, filters, ["event_name", "action_source"], config)
    signature = signature[signature["_channel"] == "server"]
    n = signature["n"]
    base = _signature_emq(signature, config)
    sums = {"server_events": n, "score_sum": n * base}
    for param in candidates:
        sums[f"gain__{param}"] = n * (_signature_emq(signature, config, param) - base)
        sums[f"valid__{param}"] = n.where(signature[f"p_{param}"] == 1, 0)
    grouped = (
        pd.DataFrame(sums)
        .groupby([signature["event_name"], signature["action_source"]], sort=True)
        .sum()
        .reset_index()
    )
    rows = grouped.to_dict("records")
    total = sum(int(r["server_events"]) for r in rows)
    recoverable = {
        (r["event_name"], r["action_source"]): r
        for r in recoverable_counts(engine, filters, candidates).to_dict("records")
    }
    records = []
    for row in rows:
        n = int(row["server_events"])
        known = recoverable.get((row["event_name"], row["action_source"]), {})
        allowed = applicable_params(
            None if row["action_source"] == "(none)" else row["action_source"]
        )
        for param in candidates:
            gain = float(row[f"gain__{param}"] or 0.0)
            if gain <= 1e-9 or param not in allowed:
                continue
            # A positive gain means some events lack a valid value.
            lacking = n - int(row[f"valid__{param}"])
            recoverable_events = int(known.get(f"recoverable__{param}", 0))
            records.append(
                {
                    "event_name": row["event_name"],
                    "action_source": row["action_source"],
                    "parameter": param,
                    "server_events": n,
                    "coverage": int(row[f"valid__{param}"]) / n,
                    "recoverable_events": recoverable_events,
                    "recoverable_share": recoverable_events / lacking,
                    "emq_now": float(row["score_sum"]) / n,
                    "emq_if_fixed": (float(row["score_sum"]) + gain) / n,
                    "recoverable_gain": gain / total * recoverable_events / lacking,
                    "gain_slice": gain / total,
                    "gain_event": gain / n,
                }
            )
    frame = pd.DataFrame(records, columns=list(WHAT_TO_FIX_COLUMNS))
    return (
        frame.sort_values(["recoverable_gain", "gain_slice", "gain_event"], ascending=False)
        .head(limit)
        .reset_index(drop=True)
    )


def parameter_coverage(
    engine: Engine, filters: Filters, config: Config, by: str = "event_name"
) -> pd.DataFrame:
    """Share of server events with a valid value, one row per group, one column per parameter."""
    return coverage_table(block_frame(engine, filters, config, by), by)


def coverage_table(
    frame: pd.DataFrame, by: str, applicable: dict[str, set[str]] | None = None
) -> pd.DataFrame:
    """Parameter coverage (0-1) per group from a `block_frame` already computed.

    With `applicable` (group -> parameters its action sources can carry, from
    `applicable_by_group`), a parameter that cannot apply to a group is NaN ("n/a"),
    while one that can and was never sent stays a real 0: a slice never hides a gap.
    """
    out = frame[[by, "server_sent"]].copy()
    for param in PARAMS:
        out[param] = frame[f"valid__{param}"] / frame["server_sent"].where(frame["server_sent"] > 0)
        if applicable is not None:
            allowed = frame[by].astype(str).map(lambda g, p=param: p in applicable.get(g, PARAMS))
            out[param] = out[param].where(allowed)
    return out[out["server_sent"] > 0].reset_index(drop=True)


def action_sources_by(engine: Engine, filters: Filters, by: str | Sequence[str]) -> pd.DataFrame:
    """The action sources of the slice's server events per group: one row per distinct
    (dims..., action_source), so one scan serves every grouping of those dims."""
    dims = [by] if isinstance(by, str) else list(by)
    source = sa.func.coalesce(events.c.action_source, "(none)").label("action_source")
    query = (
        sa.select(*[_group_column(d) for d in dims], source)
        .where(*filters.conditions(), _SERVER)
        .distinct()
    )
    with engine.connect() as connection:
        return _read_frame(connection, query, [*dims, "action_source"])


def applicable_by_group(pairs: pd.DataFrame, by: str) -> dict[str, set[str]]:
    """Group -> the parameters any of its action sources can carry (params.APPLICABLE_PARAMS)."""
    out: dict[str, set[str]] = {}
    for group, source in pairs[[by, "action_source"]].itertuples(index=False, name=None):
        params = applicable_params(None if source == "(none)" else source)
        out.setdefault(str(group), set()).update(params)
    return out


# ---------------------------------------------------------------------------
# Dedup and coverage
def dedup_key_feedback(engine: Engine, filters: Filters) -> pd.DataFrame:
    """Meta's dedup-key feedback: per key, share of browser and of server events carrying it."""
    keys = {"event_id": events.c.event_id, "external_id": events.c.external_id, "fbp": events.c.fbp}
    columns = [
        count_if(_BROWSER).label("browser"),
        count_if(_SERVER).label("server"),
    ]
    for key, column in keys.items():
        columns.append(count_if(sa.and_(_BROWSER, column.is_not(None))).label(f"b__{key}"))
        columns.append(count_if(sa.and_(_SERVER, column.is_not(None))).label(f"s__{key}"))
    query = sa.select(*columns).where(*filters.conditions(), _ACCEPTED)
    with engine.connect() as connection:
        row = connection.execute(query).mappings().one()
    browser = int(row["browser"] or 0)
    server = int(row["server"] or 0)
    return pd.DataFrame(
        [
            {
                "dedup_key": key,
                "browser_events_with_key": (int(row[f"b__{key}"] or 0) / browser)
                if browser
                else None,
                "server_events_with_key": (int(row[f"s__{key}"] or 0) / server) if server else None,
            }
            for key in keys
        ]
    )


GAP_STATUSES = ("browser_only", "server_only", "missing_event_id", "outside_48h")


def _DEFAULT_CONFIG() -> Config:  # noqa: N802 - reads like the constant it stands for
    from dashboard.core.config import load_config

    return load_config()


def gap_events(
    engine: Engine,
    filters: Filters,
    statuses: Sequence[str] = (*GAP_STATUSES, "likely_double_counted"),
    limit: int = 1000,
    config: Config | None = None,
) -> tuple[pd.DataFrame, int]:
    """Event-level dedup gaps for a developer (no PII: hashed fields never shown) and the total.

    server_only is a gap only for events that can have a browser twin: CRM, messaging
    and offline events are sent from the server alone by design (`server_only_by_design`).
    """
    wanted = [s for s in statuses if s in DEDUP_STATUSES and s != "server_only"]
    conditions = []
    if wanted:
        conditions.append(events.c.dedup_status.in_(wanted))
    if "server_only" in statuses:
        # CRM and messaging events have no Pixel counterpart: server_only is a gap on the web.
        by_design = server_only_by_design(config or _DEFAULT_CONFIG())
        conditions.append(sa.and_(events.c.dedup_status == "server_only", sa.not_(by_design)))
    if "likely_double_counted" in statuses:
        conditions.append(events.c.likely_double == sa.true())
    if not conditions:
        return pd.DataFrame(), 0
    where = [*filters.conditions(), _ACCEPTED, sa.or_(*conditions)]
    gap = sa.case(
        (events.c.likely_double == sa.true(), "likely_double_counted"),
        else_=events.c.dedup_status,
    ).label("gap")
    query = (
        sa.select(
            gap,
            events.c.channel,
            events.c.dataset_id,
            events.c.event_name,
            events.c.event_id,
            events.c.campaign,
            events.c.funnel_stage,
            events.c.event_time,
            events.c.sent_at,
            events.c.fbp,
            events.c.external_id,
            events.c.action_source,
        )
        .where(*where)
        .order_by(events.c.sent_at.desc(), events.c.source_id, events.c.line_no, events.c.idx)
        .limit(limit)
    )
    with engine.connect() as connection:
        total = int(connection.execute(sa.select(sa.func.count()).where(*where)).scalar() or 0)
        frame = pd.DataFrame(connection.execute(query).mappings().all())
    if frame.empty:
        frame = pd.DataFrame(columns=[c.name for c in query.selected_columns])
    for column in ("event_time", "sent_at"):
        frame[column] = pd.to_datetime(frame[column], unit="s", utc=True)
    return frame, total


# ---------------------------------------------------------------------------
# Freshness and delivery
def lag_stats(
    engine: Engine, filters: Filters, config: Config, by: str = "funnel_stage"
) -> pd.DataFrame:
    """Lag percentiles (seconds) of server events per group, with the upload-frequency class."""
    group = _group_column(by)
    query = (
        sa.select(
            group,
            sa.func.count().label("server_events"),
            percentile(_LAG, 0.5).label("p50_lag_s"),
            percentile(_LAG, 0.9).label("p90_lag_s"),
            percentile(_LAG, 0.99).label("p99_lag_s"),
            sa.func.max(_LAG).label("max_lag_s"),
            count_if(_LAG > STALE_AFTER_S).label("stale_over_7d"),
            count_if(-_LAG > FUTURE_TOLERANCE_S).label("future"),
        )
        .where(*filters.conditions(), _LAG_KNOWN)
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
                "upload_frequency",
            ]
        )
    frame["upload_frequency"] = [upload_frequency(v, config) for v in frame["p50_lag_s"]]
    return frame


def lag_sample(engine: Engine, filters: Filters, limit: int = 20_000) -> pd.DataFrame:
    """A bounded sample of per-event lags (seconds) with their stage, for a histogram."""
    query = (
        sa.select(events.c.funnel_stage, _LAG.label("lag_s"))
        .where(*filters.conditions(), _LAG_KNOWN)
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
        .where(*filters.conditions(), _SERVER, events.c.delivery == "rejected")
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
        .where(*filters.conditions(), _SERVER)
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


# ---------------------------------------------------------------------------
# Funnel
_COUNTED = sa.and_(
    _ACCEPTED,
    sa.or_(
        events.c.dedup_status.is_(None),
        events.c.dedup_status.not_in(("same_channel_repeat", "fallback_deduplicated")),
    ),
    sa.not_(sa.and_(_SERVER, events.c.dedup_status == "deduplicated")),
)
"""An event Meta counts: accepted, not a discarded repeat, one per browser/server pair."""


def funnel_stages(engine: Engine, filters: Filters, config: Config) -> pd.DataFrame:
    """Per campaign and stage: counted events, distinct people, EMQ estimate, coverage, lag."""
    query = (
        sa.select(
            events.c.campaign,
            events.c.funnel_stage,
            count_if(_COUNTED).label("events"),
            sa.func.count(sa.distinct(sa.case((_COUNTED, events.c.person_key)))).label("people"),
            count_if(_SERVER).label("server_sent"),
            sa.func.sum(sa.case((_SERVER, emq_score(config)), else_=0.0)).label("emq_sum"),
            count_if(sa.and_(_BROWSER, _ACCEPTED)).label("browser_events"),
            count_if(sa.and_(_BROWSER, _ACCEPTED, events.c.id_twin_48h == sa.true())).label(
                "covered"
            ),
            percentile(sa.case((_LAG_KNOWN, _LAG)), 0.5).label("median_lag_s"),
        )
        .where(*filters.conditions())
        .group_by(events.c.campaign, events.c.funnel_stage)
    )
    with engine.connect() as connection:
        frame = pd.DataFrame(connection.execute(query).mappings().all())
    columns = [
        "campaign",
        "funnel_stage",
        "events",
        "people",
        "emq_estimate",
        "event_coverage",
        "median_lag_s",
        "server_sent",
        "browser_events",
    ]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    for column in ("events", "people", "server_sent", "browser_events", "covered"):
        frame[column] = frame[column].fillna(0).astype("int64")
    frame["emq_estimate"] = frame["emq_sum"].astype(float) / frame["server_sent"].where(
        frame["server_sent"] > 0
    )
    frame["event_coverage"] = frame["covered"] / frame["browser_events"].where(
        frame["browser_events"] > 0
    )
    frame["median_lag_s"] = pd.to_numeric(frame["median_lag_s"], errors="coerce")
    order = {stage: i for i, stage in enumerate(config.stage_order())}
    frame["_order"] = frame["funnel_stage"].map(order).fillna(len(order))
    frame = frame.sort_values(["campaign", "_order", "funnel_stage"]).reset_index(drop=True)
    return frame[columns]


NOT_SENT = "not sent"
STEP_COLUMNS = ["funnel_stage", "people", "from_stage", "conversion", "note"]


def enters(sent: Collection[str], order: Sequence[str]) -> bool:
    """Whether a campaign (or slice) with events at the `sent` stages is in a funnel: it
    has events at one of the funnel's stages before the last (Purchase, "Closed won",
    closes both the web and the CRM funnel, so a purchase alone enters neither)."""
    return any(stage in sent for stage in order[:-1])


def funnel_people(engine: Engine, filters: Filters, config: Config) -> pd.DataFrame:
    """Per funnel and stage: counted events and distinct people of the whole slice.

    Only campaigns of the slice that enter the funnel count (see `enters`), so the CRM
    funnel's "Closed won" holds no purchases of web-only campaigns. People are distinct
    across campaigns (grouped by stage in SQL, not summed per campaign): a person in two
    campaigns is one. A stage with no row had no events in the slice (not sent); a slice
    of one campaign gives that campaign's rows of `funnel_stages`.
    """
    columns = ["funnel", "funnel_stage", "events", "people"]
    records = []
    with engine.connect() as connection:
        for funnel, order in config.funnels.items():
            entering = (
                sa.select(events.c.campaign)
                .where(*filters.conditions(), events.c.funnel_stage.in_(list(order[:-1])))
                .distinct()
            )
            query = (
                sa.select(
                    events.c.funnel_stage,
                    count_if(_COUNTED).label("events"),
                    sa.func.count(sa.distinct(sa.case((_COUNTED, events.c.person_key)))).label(
                        "people"
                    ),
                )
                .where(
                    *filters.conditions(),
                    events.c.funnel_stage.in_(list(order)),
                    events.c.campaign.in_(entering),
                )
                .group_by(events.c.funnel_stage)
            )
            rows = {stage: (n, p) for stage, n, p in connection.execute(query).all()}
            records.extend(
                (funnel, stage, int(rows[stage][0] or 0), int(rows[stage][1] or 0))
                for stage in order
                if stage in rows
            )
    frame = pd.DataFrame(records, columns=columns)
    for column in ("events", "people"):
        frame[column] = frame[column].astype("int64")
    return frame


def funnel_steps(people: Mapping[str, int], order: Sequence[str]) -> pd.DataFrame:
    """One funnel's stages in order, for its chart and conversion table (no query).

    `people` maps each stage that was sent (had events) to its distinct people; a stage
    missing from it was not sent and shows as such (people missing, note "not sent"), not
    as 0 people, which would read as everybody dropping out. Conversion runs from the
    previous stage that was sent, across those that were not (Qualified -> Closed won when
    Demo scheduled was not sent, with a note saying so); the first stage sent has none,
    and none runs out of a stage with 0 people.
    """
    records = []
    previous: str | None = None  # the last stage sent so far
    skipped: list[str] = []  # stages not sent since `previous`
    for stage in order:
        if stage not in people:
            records.append((stage, None, None, None, NOT_SENT))
            if previous is not None:
                skipped.append(stage)
            continue
        count = int(people[stage])
        conversion = None
        notes = []
        if previous is not None:
            before = int(people[previous])
            conversion = count / before if before else None
            if skipped:
                verb = "was" if len(skipped) == 1 else "were"
                notes.append(f"{', '.join(skipped)} {verb} not sent: from {previous}")
            if not before:
                notes.append(f"no people at {previous}")
        records.append((stage, count, previous, conversion, "; ".join(notes)))
        previous, skipped = stage, []
    frame = pd.DataFrame(records, columns=STEP_COLUMNS)
    frame["people"] = frame["people"].astype("Int64")
    frame["conversion"] = frame["conversion"].astype(float)
    return frame


def conversion_from_stages(stages: pd.DataFrame, config: Config) -> pd.DataFrame:
    """Per funnel and campaign (of a `funnel_stages` frame, no query): `funnel_steps`, for
    every campaign that enters the funnel."""
    columns = ["funnel", "campaign", *STEP_COLUMNS]
    parts = []
    for funnel, order in config.funnels.items():
        for campaign, group in stages.groupby("campaign", sort=True):
            people = dict(zip(group["funnel_stage"], group["people"], strict=True))
            if not enters(people, order):
                continue
            steps = funnel_steps({s: n for s, n in people.items() if s in order}, order)
            parts.append(steps.assign(funnel=funnel, campaign=campaign)[columns])
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat(parts, ignore_index=True)


def stage_order_gaps(engine: Engine, filters: Filters, config: Config) -> pd.DataFrame:
    """People with an event at a stage but none, anywhere in the store, at an earlier stage.

    "Earlier" starts at the campaign's entry stage in each funnel (its first stage with
    any events), so a WhatsApp campaign whose people start at Qualified is not reported
    for lacking Contacted; a later stage without the entry stage is.
    """
    columns = ["campaign", "funnel_stage", "people_without_earlier_stage"]
    with engine.connect() as connection:
        present = connection.execute(
            sa.select(events.c.campaign, events.c.funnel_stage)
            .where(*filters.conditions(), _ACCEPTED)
            .distinct()
        ).all()
    stages_by_campaign: dict[str, set[str]] = {}
    for campaign, stage in present:
        stages_by_campaign.setdefault(campaign, set()).add(stage)

    def earlier_for(campaign: str, stage: str) -> list[str]:
        mine = stages_by_campaign.get(campaign, set())
        earlier: set[str] = set()
        for order in config.funnels.values():
            if stage not in order:
                continue
            entry = next((i for i, s in enumerate(order) if s in mine), None)
            position = order.index(stage)
            if entry is not None and entry < position:
                earlier.update(order[entry:position])
        return sorted(earlier)

    # One anti-join for every (campaign, stage): its people minus those with any event at
    # one of its earlier stages (a (campaign, stage, earlier stage) table drives it).
    mapping_rows = []
    for campaign, stages in stages_by_campaign.items():
        for stage in config.stage_order():
            if stage in stages:
                mapping_rows.extend((campaign, stage, e) for e in earlier_for(campaign, stage))
    if not mapping_rows:
        return pd.DataFrame(columns=columns)
    # UNION ALL of bound literals: SQLite has no column aliases for a VALUES list.
    mapping = sa.union_all(
        *[
            sa.select(
                sa.literal(c, sa.String).label("m_campaign"),
                sa.literal(st, sa.String).label("m_stage"),
                sa.literal(e, sa.String).label("m_earlier"),
            )
            for c, st, e in mapping_rows
        ]
    ).cte("stage_mapping")
    pairs = sorted({(c, st) for c, st, _ in mapping_rows})
    subject = (
        sa.select(events.c.campaign, events.c.funnel_stage, events.c.person_key)
        .where(
            *filters.conditions(),
            _ACCEPTED,
            events.c.person_key.is_not(None),
            sa.tuple_(events.c.campaign, events.c.funnel_stage).in_(pairs),
        )
        .distinct()
        .cte("subject")
    )
    other = events.alias("other")
    person_stages = (
        sa.select(other.c.person_key, other.c.funnel_stage)
        .where(other.c.person_key.is_not(None))
        .distinct()
        .cte("person_stages")
    )
    has_earlier = (
        sa.select(sa.literal(1))
        .select_from(mapping)
        .join(person_stages, person_stages.c.funnel_stage == mapping.c.m_earlier)
        .where(
            mapping.c.m_campaign == subject.c.campaign,
            mapping.c.m_stage == subject.c.funnel_stage,
            person_stages.c.person_key == subject.c.person_key,
        )
        .exists()
    )
    query = (
        sa.select(
            subject.c.campaign,
            subject.c.funnel_stage,
            sa.func.count().label("people_without_earlier_stage"),
        )
        .where(~has_earlier)
        .group_by(subject.c.campaign, subject.c.funnel_stage)
    )
    with engine.connect() as connection:
        frame = pd.DataFrame(connection.execute(query).fetchall(), columns=columns)
    order = {stage: i for i, stage in enumerate(config.stage_order())}
    frame["_order"] = frame["funnel_stage"].map(order)
    frame = frame.sort_values(["_order", "campaign"]).drop(columns="_order")
    frame["people_without_earlier_stage"] = frame["people_without_earlier_stage"].astype("int64")
    return frame.reset_index(drop=True)


NO_CURRENCY = "(none)"
_PURCHASE = events.c.event_name == "Purchase"


def purchases(engine: Engine, filters: Filters, config: Config) -> pd.DataFrame:
    """Per campaign and currency: counted Purchases and their revenue (sum of value).

    Revenue is never added up across currencies; counted Purchases without a currency
    are their own row, currency "(none)". Readiness is per campaign: `purchase_readiness`.
    """
    currency = sa.func.coalesce(events.c.currency, NO_CURRENCY)
    query = (
        sa.select(
            events.c.campaign,
            currency.label("currency"),
            sa.func.count().label("purchases"),
            sa.func.coalesce(sa.func.sum(events.c.value), 0.0).label("revenue"),
        )
        .where(*filters.conditions(), _PURCHASE, _COUNTED)
        .group_by(events.c.campaign, currency)
        .order_by(events.c.campaign, currency)
    )
    columns = ["campaign", "currency", "purchases", "revenue"]
    with engine.connect() as connection:
        frame = pd.DataFrame(connection.execute(query).all(), columns=columns)
    frame["purchases"] = frame["purchases"].astype("int64")
    frame["revenue"] = frame["revenue"].astype(float)
    return frame


def purchase_readiness(engine: Engine, filters: Filters, config: Config) -> pd.DataFrame:
    """Per campaign: Purchase events sent and counted, value/currency completeness, and
    purchase-optimization readiness on the counted Purchases of the period's last 7 days."""
    complete = sa.and_(events.c.value.is_not(None), events.c.currency.is_not(None))
    end = _period_end(engine, filters)
    last_7d = sa.and_(events.c.event_time >= end - 7 * 86400, events.c.event_time < end)
    query = (
        sa.select(
            events.c.campaign,
            sa.func.count().label("purchase_events_sent"),
            count_if(_COUNTED).label("purchases"),
            count_if(complete).label("with_value_and_currency"),
            count_if(sa.and_(_COUNTED, last_7d)).label("purchases_last_7d"),
        )
        .where(*filters.conditions(), _PURCHASE)
        .group_by(events.c.campaign)
        .order_by(events.c.campaign)
    )
    with engine.connect() as connection:
        frame = pd.DataFrame(connection.execute(query).mappings().all())
    columns = [
        "campaign",
        "purchase_events_sent",
        "purchases",
        "value_completeness",
        "purchases_last_7d",
        "ready",
        "learning_phase_ok",
    ]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    frame["value_completeness"] = frame["with_value_and_currency"] / frame["purchase_events_sent"]
    frame["ready"] = frame["purchases_last_7d"] >= config.readiness["min_purchases_7d"]
    frame["learning_phase_ok"] = (
        frame["purchases_last_7d"] >= config.readiness["learning_phase_per_week"]
    )
    return frame[columns]


def weekly_purchases(engine: Engine, filters: Filters) -> pd.DataFrame:
    """Counted Purchases of the slice per ISO week (UTC, Monday to Sunday), 0 in a week
    without any.

    The weeks cover the period (`since` to `until`; without them the slice's first and
    last event days). `days_in_period` says how many of a week's 7 days the period
    holds, so a partial first or last week is not read against a weekly level.
    """
    columns = ["week", "week_start", "days_in_period", "purchases"]
    # Per UTC day in SQL (the event_day column: portable), weeks in pandas: date
    # arithmetic differs between DuckDB, SQLite and PostgreSQL, and a period has few days.
    query = (
        sa.select(events.c.event_day, count_if(sa.and_(_PURCHASE, _COUNTED)).label("purchases"))
        .where(*filters.conditions())
        .group_by(events.c.event_day)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    if not rows:
        return pd.DataFrame(columns=columns)
    per_day = {pd.Timestamp(day).date(): int(n or 0) for day, n in rows}
    first = filters.since or min(per_day)
    last = filters.until or max(per_day)
    records = []
    monday = first - timedelta(days=first.weekday())
    while monday <= last:
        sunday = monday + timedelta(days=6)
        iso = monday.isocalendar()
        records.append(
            (
                f"{iso.year}-W{iso.week:02d}",
                monday,
                (min(sunday, last) - max(monday, first)).days + 1,
                sum(per_day.get(monday + timedelta(days=k), 0) for k in range(7)),
            )
        )
        monday += timedelta(days=7)
    return pd.DataFrame(records, columns=columns)


def _period_end(engine: Engine, filters: Filters) -> float:
    """End (exclusive) of the period's last UTC day: `until`, else the latest event's day."""
    if filters.until:
        return _epoch(filters.until + timedelta(days=1))
    with engine.connect() as connection:
        latest = connection.execute(
            sa.select(sa.func.max(events.c.event_time)).where(*filters.conditions())
        ).scalar()
    if latest is None:
        return 0.0
    last_day = datetime.fromtimestamp(float(latest), tz=UTC).date()
    return _epoch(last_day + timedelta(days=1))


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
        condition = (
            _ACCEPTED if channel is None else sa.and_(_ACCEPTED, events.c.channel == channel)
        )
        return sa.func.max(sa.case((condition, column)))

    query = (
        sa.select(
            events.c.dataset_id,
            newest(events.c.event_time, None),
            newest(events.c.event_time, "browser"),
            newest(events.c.event_time, "server"),
            newest(events.c.sent_at, None),
            newest(events.c.sent_at, "server"),
            count_if(sa.and_(_ACCEPTED, _BROWSER)),
            count_if(sa.and_(_ACCEPTED, _SERVER)),
        )
        .where(*filters.conditions())
        .group_by(events.c.dataset_id)
        .order_by(events.c.dataset_id)
    )
    with engine.connect() as connection:
        frame = _read_frame(connection, query, PIPELINE_HEALTH_COLUMNS)
    for column in PIPELINE_HEALTH_COLUMNS[1:6]:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    for column in PIPELINE_HEALTH_COLUMNS[6:]:
        frame[column] = frame[column].astype("int64")
    frame["dataset_id"] = frame["dataset_id"].astype(str)
    return frame


def distinct_values(engine: Engine, column: str) -> list[str]:
    """Sorted distinct values of a filter dimension."""
    col = events.c[column]
    with engine.connect() as connection:
        values = (
            connection.execute(sa.select(col).where(col.is_not(None)).distinct()).scalars().all()
        )
    return sorted(str(v) for v in values)
