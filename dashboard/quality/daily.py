"""Proving a fix: the headline measures per day, and the days before and after a marker.

Owns `DAILY_MEASURES` (which measures of the registry get a per-day series), the
per-day series (`daily_series`: one row per day of the period, a day without events
read as 0 events and no share, never a gap) and the before/after comparison around a
marker (`before_after`), with its honesty rules: like a period-over-period comparison
(dashboard.quality.periods), a change is shown only when the data covers both sides.
The values are the registry's (dashboard.core.measures), computed by the block
(dashboard.quality.blocks); nothing here redefines a measure.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd

from dashboard.core import clock
from dashboard.core import formatting as fmt
from dashboard.core.config import Config
from dashboard.core.filters import Filters
from dashboard.core.measures import BY_KEY, NEUTRAL, Measure
from dashboard.quality.blocks import block_frame, block_frames, measure_columns, measure_values
from dashboard.store.handles import Engine
from dashboard.store.queries.blocks import data_range, event_time_span
from dashboard.store.queries.windows import events_per_slot

# The measures a tracking engineer proves a fix with, in the order they are shown.
DAILY_KEYS = (
    "browser_events",
    "server_events",
    "event_coverage",
    "dedup.rate",
    "emq_estimate",
    "unhashed_pii",
    "server_rejected_by_meta",
    "freshness.stale_over_7d",
)
DAILY_MEASURES: tuple[Measure, ...] = tuple(BY_KEY[k] for k in DAILY_KEYS)
DAY_S = 86_400
# A side of a marker with events on fewer than half its days (an outage, or log files
# never imported) is not compared: its totals would read as a change nobody made.
MIN_SHARE_OF_DAYS_WITH_EVENTS = 0.5


def _empty_day(day: date) -> dict[str, Any]:
    # No events: every count is 0, and a share, score or rate has nothing to divide.
    return {"day": day} | {m.key: 0 if m.kind == "count" else None for m in DAILY_MEASURES}


def series_from_frame(
    daily: pd.DataFrame, first: date | None = None, last: date | None = None
) -> pd.DataFrame:
    """The per-day series from a block frame grouped by `event_day` (as the Overview's
    shared scan returns it): a `day` column (datetime64, midnight UTC) and one column
    per measure key of `DAILY_MEASURES`, one row for every day from `first` (else the
    first day with events) to `last` (else the last day with events)."""
    rows: dict[date, dict[str, Any]] = {}
    if len(daily):  # an empty scan may lack the measures' columns
        values = measure_columns(DAILY_MEASURES, daily)
        for i, event_day in enumerate(daily["event_day"].tolist()):
            day = pd.Timestamp(event_day).date()
            rows[day] = {"day": day} | {key: column[i] for key, column in values.items()}
    days = sorted(rows)
    start = min([d for d in (first, *days[:1]) if d is not None], default=None)
    end = max([d for d in (last, *days[-1:]) if d is not None], default=None)
    records = []
    if start is not None and end is not None:
        records = [
            rows.get(day) or _empty_day(day)
            for day in (start + timedelta(days=i) for i in range((end - start).days + 1))
        ]
    frame = pd.DataFrame(records, columns=["day", *DAILY_KEYS])
    for measure in DAILY_MEASURES:
        kind = "int64" if measure.kind == "count" else float
        frame[measure.key] = pd.to_numeric(frame[measure.key]).astype(kind)
    frame["day"] = pd.to_datetime(frame["day"])
    return frame


def period_of(engine: Engine, filters: Filters) -> tuple[date | None, date | None]:
    """The days a slice's series runs over: its since..until, else the store's first to
    last day, never past today (today's partial day is shown, tomorrow's is not)."""
    span = data_range(engine) if not (filters.since and filters.until) else None
    first = filters.since or (span[0] if span else None)
    last = filters.until or (span[1] if span else None)
    if last is not None:
        last = min(last, clock.today())
    if first is not None and last is not None and last < first:
        return None, None
    return first, last


def daily_series(engine: Engine, filters: Filters, config: Config) -> pd.DataFrame:
    """The measures of `DAILY_MEASURES` per day of the slice's period (see
    `series_from_frame`), from one block scan grouped by event day."""
    frame = block_frames(engine, filters, config, [("event_day",)])[0]
    first, last = period_of(engine, filters)
    return series_from_frame(frame, first, last)


def series_records(series: pd.DataFrame) -> list[dict[str, Any]]:
    """The series as JSON-ready rows: `day` as YYYY-MM-DD, no value missing as NaN."""
    out = []
    for row in series.to_dict("records"):
        record: dict[str, Any] = {"day": pd.Timestamp(row["day"]).date().isoformat()}
        for measure in DAILY_MEASURES:
            value = row[measure.key]
            if value is None or value != value:  # NaN: a share with nothing to divide
                record[measure.key] = None
            elif measure.kind == "count":
                record[measure.key] = int(value)
            else:
                record[measure.key] = float(value)
        out.append(record)
    return out


# ---------------------------------------------------------------------------
# Before / after a marker.
@dataclass(frozen=True)
class Change:
    """One measure on both sides of a marker."""

    measure: Measure
    before: Any
    after: Any
    change: str | None  # as people read it ("+12.0 pp", "-40", "no change"); None: none
    verdict: str  # "better", "worse", "no change", or "" (neutral measure, or no change)

    def as_dict(self) -> dict[str, Any]:
        return {
            "measure": self.measure.key,
            "label": self.measure.label,
            "kind": self.measure.kind,
            "before": self.before,
            "after": self.after,
            "change": self.change,
            "verdict": self.verdict,
        }


@dataclass(frozen=True)
class BeforeAfter:
    """The `days` days before and after a marker (UTC Unix seconds), for the slice."""

    marker_at: float
    days: int
    available: bool
    note: str  # why there is no comparison, or what is compared
    changes: tuple[Change, ...]
    before_days_with_events: int
    after_days_with_events: int

    @property
    def before_start(self) -> float:
        return self.marker_at - self.days * DAY_S

    @property
    def after_end(self) -> float:
        return self.marker_at + self.days * DAY_S

    def as_dict(self) -> dict[str, Any]:
        return {
            "marker_at": _iso(self.marker_at),
            "days": self.days,
            "before": {"since": _iso(self.before_start), "until": _iso(self.marker_at)},
            "after": {"since": _iso(self.marker_at), "until": _iso(self.after_end)},
            "before_days_with_events": self.before_days_with_events,
            "after_days_with_events": self.after_days_with_events,
            "available": self.available,
            "note": self.note,
            "measures": [c.as_dict() for c in self.changes],
        }


def _iso(seconds: float) -> str:
    return (
        datetime.fromtimestamp(seconds, tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )


def _moment(seconds: float) -> str:
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    return f"{fmt.day(moment.date())} {moment:%H:%M} UTC"


def _verdict(measure: Measure, before: Any, after: Any, change: str | None) -> str:
    if change is None or measure.direction == NEUTRAL:
        return ""
    if change == fmt.NO_CHANGE:
        return fmt.NO_CHANGE
    return "better" if (after - before) * measure.direction > 0 else "worse"


def _unavailable_because(engine: Engine, filters: Filters, span: BeforeAfter) -> str | None:
    """Why the two sides cannot be compared honestly (None: they can)."""
    days = f"{span.days} day{'s' if span.days != 1 else ''}"
    if span.after_end > clock.now():
        return (
            f"No comparison yet: the {days} after the marker end at "
            f"{_moment(span.after_end)}; a side not over would read as a fall."
        )
    for side, count in (
        ("before", span.before_days_with_events),
        ("after", span.after_days_with_events),
    ):
        if count == 0:
            return f"No comparison: no events in the {days} {side} the marker."
    # As for the previous period: the slice's log must cover both sides entirely.
    first, last = event_time_span(engine, filters)
    first_day = datetime.fromtimestamp(float(first), tz=UTC).date()
    last_day = datetime.fromtimestamp(float(last), tz=UTC).date()
    start_day = datetime.fromtimestamp(span.before_start, tz=UTC).date()
    end_day = datetime.fromtimestamp(span.after_end - 1, tz=UTC).date()
    if first_day > start_day:
        return (
            f"No comparison: no data before {fmt.day(first_day)}, so the {days} before "
            "the marker are not fully covered."
        )
    if last_day < end_day:
        return (
            f"No comparison: no data after {fmt.day(last_day)}, so the {days} after "
            "the marker are not fully covered."
        )
    needed = span.days * MIN_SHARE_OF_DAYS_WITH_EVENTS
    for side, count in (
        ("before", span.before_days_with_events),
        ("after", span.after_days_with_events),
    ):
        if count < needed:
            return (
                f"No comparison: events on only {count} of the {days} {side} the marker "
                "(an outage, or log files not imported): its totals would mislead."
            )
    return None


def before_after(
    engine: Engine, filters: Filters, config: Config, marker_at: float, days: int = 7
) -> BeforeAfter:
    """`DAILY_MEASURES` over the `days` × 24 h before the marker and the `days` × 24 h
    from it, for the slice's other filters (its period is replaced by the two sides).
    Changes only when both sides are over, hold events on at least half their days and
    lie wholly inside the slice's data; else `available` is False and `note` says why."""
    if days < 1:
        raise ValueError("the days before and after a marker must be 1 or more")
    undated = replace(filters, since=None, until=None, start_ts=None, end_ts=None)
    start = marker_at - days * DAY_S
    per_day = events_per_slot(engine, undated, start, DAY_S, 2 * days)
    span = BeforeAfter(
        marker_at,
        days,
        False,
        "",
        (),
        sum(1 for n in per_day[:days] if n),
        sum(1 for n in per_day[days:] if n),
    )
    reason = _unavailable_because(engine, undated, span)
    sides = []
    for low, high in ((start, marker_at), (marker_at, span.after_end)):
        row = block_frame(engine, replace(undated, start_ts=low, end_ts=high), config).iloc[0]
        sides.append(measure_values(DAILY_MEASURES, row))
    changes = []
    for measure in DAILY_MEASURES:
        before, after = sides[0][measure.key], sides[1][measure.key]
        change = None if reason else fmt.delta(after, before, measure.kind)
        changes.append(
            Change(measure, before, after, change, _verdict(measure, before, after, change))
        )
    note = reason or (
        f"The {days} day{'s' if days != 1 else ''} before the marker "
        f"({_moment(start)} – {_moment(marker_at)}) against the {days} after "
        f"(to {_moment(span.after_end)})."
    )
    return replace(span, available=reason is None, note=note, changes=tuple(changes))
