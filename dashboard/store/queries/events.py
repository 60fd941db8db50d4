"""Event lists: the rows behind a finding, paged, sorted, counted or streamed whole.

Owns the SQL of the drill-down. A list is the slice's events where a condition holds
(`listing(filters, condition=...)`), or the events at the positions another query
returns (`listing(filters, positions=...)`, e.g. an integrity rule's `*_events` SELECT,
whose extra columns such as a near-miss twin's id ride along). `count_condition` spells
a registry `Count` measure as a WHERE condition (`common.count_condition`, which the block sums use too), so a finding's list holds exactly the
events its number counts. Rows carry what a developer needs to find an event in the log
(source file and line) and to see why it is listed; never a plaintext value (the store
has none).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dashboard.core.definitions import FUTURE_TOLERANCE_S, STALE_AFTER_S
from dashboard.core.meta_errors import TOKEN_ERROR_CODES
from dashboard.core.params import PARAMS
from dashboard.store.database import events, sources
from dashboard.store.queries.common import (
    ACCEPTED,
    LAG,
    LAG_KNOWN,
    SERVER,
    where,
)

if TYPE_CHECKING:
    from dashboard.core.filters import Filters

Condition = sa.ColumnElement[bool]
POSITION = ("source_id", "line_no", "idx")

# The columns of every list, in order (p_<param> statuses and the reasons follow).
LIST_COLUMNS = (
    "event_id",
    "event_time",
    "sent_at",
    "dataset_id",
    "event_name",
    "channel",
    "campaign",
    "funnel_stage",
    "action_source",
    "delivery",
    "dedup_status",
    "likely_double",
    "is_test",
    "event_time_in_ms",
    "has_unhashed_pii",
    "value",
    "currency",
    "error_code",
    "error_subcode",
    "error_message",
    "error_user_title",
    "error_user_msg",
    "fbtrace_id",
    "param_reasons",
)
# Sort keys a list offers -> the columns ordered by (the position breaks ties, so pages
# never overlap or skip a row).
SORTS = {
    "sent_at": ("sent_at",),
    "event_time": ("event_time",),
    "event_name": ("event_name",),
    "campaign": ("campaign",),
    "funnel_stage": ("funnel_stage",),
    "channel": ("channel",),
    "event_id": ("event_id",),
    "line": (),
}


def parameter_status(param: str, code: int) -> Condition:
    """Server events whose `param` has stored status `code`."""
    return sa.and_(SERVER, events.c[f"p_{param}"] == code)


def dedup_status(status: str) -> Condition:
    """Accepted events with dedup status `status` ("likely_double_counted": the flag)."""
    if status == "likely_double_counted":
        return sa.and_(ACCEPTED, events.c.likely_double == sa.true())
    return sa.and_(ACCEPTED, events.c.dedup_status == status)


def rejected_batches(code: int | None = None, subcode: int | None = None) -> Condition:
    """Server events of batches Meta rejected, with error `code` (and `subcode`)."""
    conditions = [SERVER, events.c.delivery == "rejected"]
    if code is not None:
        conditions.append(sa.func.coalesce(events.c.error_code, -1) == code)
    if subcode is not None:
        conditions.append(sa.func.coalesce(events.c.error_subcode, -1) == subcode)
    return sa.and_(*conditions)


def token_errors(token: bool = True) -> Condition:
    """Rejected server events whose error is (or, with token=False, is not) a token or
    permission error."""
    is_token = sa.func.coalesce(events.c.error_code, -1).in_(list(TOKEN_ERROR_CODES))
    return sa.and_(rejected_batches(), is_token if token else sa.not_(is_token))


def unanswered() -> Condition:
    """Server events whose batch got no answer from Meta."""
    return sa.and_(SERVER, events.c.delivery == "unknown")


def received_shortfall() -> Condition:
    """Server events of accepted batches where Meta reported fewer events_received than
    were sent (which of a batch's events were dropped, Meta does not say)."""
    return sa.and_(
        SERVER,
        events.c.delivery == "accepted",
        events.c.events_received.is_not(None),
        events.c.events_received < events.c.batch_size,
    )


def uncovered_browser() -> Condition:
    """Accepted browser events with no server twin by event_id within 48 h."""
    return sa.and_(
        events.c.channel == "browser",
        ACCEPTED,
        sa.func.coalesce(events.c.id_twin_48h, False) == sa.false(),
    )


def not_valid_any(params: Sequence[str]) -> Condition:
    """Server events where at least one of `params` is absent or not valid."""
    return sa.and_(SERVER, sa.or_(*[events.c[f"p_{p}"] != 1 for p in params]))


def nothing() -> Condition:
    """No event (a finding with nothing to list)."""
    return sa.false()


def server_events() -> Condition:
    return SERVER


def stale() -> Condition:
    return sa.and_(LAG_KNOWN, LAG > STALE_AFTER_S)


def future() -> Condition:
    return sa.and_(LAG_KNOWN, -LAG > FUTURE_TOLERANCE_S)


# ---------------------------------------------------------------------------
# Lists
def listing(
    filters: Filters,
    *,
    condition: Condition | None = None,
    positions: sa.Select | sa.CompoundSelect | None = None,
) -> sa.Select:
    """The slice's events where `condition` holds and/or at the positions `positions`
    returns, with the list columns, every parameter status, the source file's path and
    `positions`' own extra columns (one row per event: a position repeated in
    `positions` is listed once)."""
    e = events
    columns: list[Any] = [
        *[e.c[c] for c in POSITION],
        *[e.c[c] for c in LIST_COLUMNS],
        *[e.c[f"p_{p}"] for p in PARAMS],
        sources.c.path.label("source_path"),
    ]
    joined = e.join(sources, sources.c.source_id == e.c.source_id, isouter=True)
    if positions is not None:
        listed = positions.subquery("positions")
        extra = [c for c in listed.c if c.name not in e.c]
        grouped = (
            sa.select(
                *[listed.c[c] for c in POSITION],
                *[sa.func.min(c).label(c.name) for c in extra],
            )
            .group_by(*[listed.c[c] for c in POSITION])
            .subquery("listed")
        )
        joined = joined.join(grouped, sa.and_(*[e.c[c] == grouped.c[c] for c in POSITION]))
        columns += [grouped.c[c.name] for c in extra]
    conditions = list(where(filters))
    if condition is not None:
        conditions.append(condition)
    return sa.select(*columns).select_from(joined).where(*conditions)


def ordered(query: sa.Select, sort: str = "sent_at", descending: bool = True) -> sa.Select:
    """`query` sorted by one of SORTS, the position breaking ties."""
    if sort not in SORTS:
        raise ValueError(f"cannot sort by {sort!r}; choose from {', '.join(SORTS)}")
    keys = [query.selected_columns[c] for c in (*SORTS[sort], *POSITION)]
    return query.order_by(*[k.desc() if descending else k.asc() for k in keys])


def count_listed(engine: Engine, query: sa.Select) -> int:
    """How many events the list holds."""
    with engine.connect() as connection:
        counted = sa.select(sa.func.count()).select_from(query.order_by(None).subquery())
        return int(connection.execute(counted).scalar() or 0)


def list_page(engine: Engine, query: sa.Select, offset: int, limit: int) -> pd.DataFrame:
    """Rows offset..offset+limit of an ordered list."""
    with engine.connect() as connection:
        result = connection.execute(query.offset(offset).limit(limit))
        return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


def iter_list(engine: Engine, query: sa.Select, chunk_rows: int = 20_000) -> Iterator[pd.DataFrame]:
    """The whole ordered list in chunks of `chunk_rows` (a server-side cursor where the
    driver has one), for exports that must not hold a million rows at once."""
    with engine.connect() as connection:
        result = connection.execution_options(stream_results=True).execute(query)
        names = list(result.keys())
        while rows := result.fetchmany(chunk_rows):
            yield pd.DataFrame(rows, columns=names)
