"""A slice of the store: the filter dimensions, and the `Filters` value every query takes.

Each dimension is defined once here (Datasette's filter registry is the model): the
`Filters` field it fills, the stored column it compares, its label, its URL parameter and
its command-line flag. The sidebar, the shared URL, `report`/`check` options and the
SQL WHERE clause (`store.queries.common.where`) are all built from `FILTER_DIMENSIONS`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class FilterDimension:
    """One way to narrow the slice: a set of allowed values of one stored column."""

    field: str  # the Filters attribute (a tuple of values; empty means all)
    column: str  # the events column compared
    label: str  # what people read (sidebar, descriptions)
    url: str  # query parameter of a shared link
    flag: str  # command-line option of report and check (repeatable)
    help: str

    @property
    def session_key(self) -> str:
        """The Streamlit session-state key of its sidebar widget."""
        return f"f_{self.url}"


FILTER_DIMENSIONS = (
    FilterDimension("datasets", "dataset_id", "Dataset", "dataset", "--dataset", "dataset id"),
    FilterDimension("campaigns", "campaign", "Campaign", "campaign", "--campaign", "campaign"),
    FilterDimension("stages", "funnel_stage", "Funnel stage", "stage", "--stage", "funnel stage"),
    FilterDimension("event_names", "event_name", "Event name", "event", "--event", "event name"),
    FilterDimension(
        "action_sources",
        "action_source",
        "Action source",
        "action_source",
        "--action-source",
        "action_source",
    ),
    FilterDimension(
        "messaging_channels",
        "messaging_channel",
        "Messaging channel",
        "messaging_channel",
        "--messaging-channel",
        "messaging_channel",
    ),
    FilterDimension("channels", "channel", "Channel", "channel", "--channel", "browser or server"),
)

# Columns a block of indicators can be grouped by: every filter column and the event day.
DIMENSIONS = (*(d.column for d in FILTER_DIMENSIONS), "event_day")


def epoch(day: date) -> float:
    """Midnight UTC of `day` as Unix seconds."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


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
