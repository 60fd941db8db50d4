"""Period-over-period comparisons: the previous period of a slice, and whether the data
covers both periods well enough for a change to mean something.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from dashboard.core import clock
from dashboard.core.filters import Filters, epoch
from dashboard.core.formatting import day as day_text
from dashboard.store.handles import Engine
from dashboard.store.queries import blocks as queries


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
    first, last = queries.event_time_span(engine, undated)
    if first is None:
        return Comparison(previous.since, previous.until, False, None)
    first_day = datetime.fromtimestamp(float(first), tz=UTC).date()
    last_day = datetime.fromtimestamp(float(last), tz=UTC).date()
    # Today is not over: a period running to today is covered by data through yesterday.
    needed = min(filters.until, clock.today() - timedelta(days=1)) if filters.until else None
    ends_early = last_day if needed is not None and last_day < needed else None
    available = first_day <= previous.since and ends_early is None
    cut_at = None
    if filters.until is not None and filters.until >= clock.today():
        # Whole 10 minutes: the cut, and so the cached comparison, changes 6 times an hour.
        since_midnight = clock.now() % 86_400 // 600 * 600
        cut_at = epoch(previous.until) + since_midnight
    return Comparison(previous.since, previous.until, available, first_day, ends_early, cut_at)
