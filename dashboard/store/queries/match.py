"""Queries of match quality and dedup: what-to-fix's gains, recoverable values per
person, action sources, dedup-key feedback and the event-level gap list.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dashboard.core.config import Config
from dashboard.core.definitions import (
    DEDUP_STATUSES,
    GAP_STATUSES,
)
from dashboard.core.filters import Filters
from dashboard.core.params import PARAMS, REJECTED_COMBINATIONS, VALID
from dashboard.store.database import events
from dashboard.store.queries.common import (
    ACCEPTED,
    BROWSER,
    SERVER,
    count_if,
    default_config,
    group_column,
    read_frame,
    server_only_by_design,
    where,
)
from dashboard.store.queries.emq import emq_points, points_gained, rejected_combination, score_of


# ---------------------------------------------------------------------------
# Match quality
def fix_gains(
    engine: Engine, filters: Filters, config: Config, params: Sequence[str]
) -> pd.DataFrame:
    """Per (event name, action source) of the slice's server events, sorted: the events
    (`server_events`), the sum of their EMQ estimates (`score_sum`) and, for each of
    `params`, the events with a valid value (`valid__<p>`) and how much the sum would
    rise if every event had one (`gain__<p>`). Scored per event in the database."""
    # Each event's points once, in a subquery: every candidate's score adds to them
    # (the weights are sums of quarters, so the order of the additions changes nothing).
    needed = {f"p_{p}" for p in PARAMS} | {"n_valid_params"}
    needed |= {f"combo_{k}" for k in range(len(REJECTED_COMBINATIONS))}
    scored = (
        sa.select(
            group_column("event_name"),
            group_column("action_source"),
            *[events.c[c] for c in sorted(needed)],
            emq_points(config).label("points"),
        )
        .where(*where(filters), SERVER)
        .subquery("scored")
    )
    base = score_of(scored.c.points, rejected_combination(table=scored), config)
    gains = [
        sa.func.sum(
            score_of(
                scored.c.points + points_gained(config, p, scored),
                rejected_combination(p, scored),
                config,
            )
            - base
        ).label(f"gain__{p}")
        for p in params
    ]
    keys = [scored.c.event_name, scored.c.action_source]
    query = (
        sa.select(
            *keys,
            sa.cast(sa.func.count(), sa.BigInteger).label("server_events"),
            sa.func.sum(base).label("score_sum"),
            *gains,
            *[
                sa.cast(count_if(scored.c[f"p_{p}"] == VALID), sa.BigInteger).label(f"valid__{p}")
                for p in params
            ],
        )
        .group_by(*keys)
        .order_by(*keys)
    )
    with engine.connect() as connection:
        return read_frame(connection, query)


def recoverable_counts(engine: Engine, filters: Filters, params: Sequence[str]) -> pd.DataFrame:
    """Per (event name, action source) of the slice's server events: for each of `params`,
    how many lack a valid value but belong to a person (same fbp, or same external_id)
    who had sent a valid value on another event, of any channel, anywhere in the store,
    at or before this event's time.

    Those values are recoverable: the integration already knew them when it sent the
    event and only has to pass them along. A value first seen later is not: a page
    view sent before its visitor filled in the checkout form could not carry the
    e-mail, and a sent event cannot be amended. The first time each person had each
    parameter valid is kept at import (`person_first_valid`), and with it each server
    event's bitmask of such parameters (`recoverable_params`, see dashboard.store.people),
    so this is a scan of the slice. An event lacking the parameter cannot be the one that
    carried it, so "another event" needs no self-exclusion.
    """
    group_columns = [group_column("event_name"), group_column("action_source")]
    mask = events.c.recoverable_params
    query = (
        sa.select(
            *group_columns,
            *[
                count_if(mask.op("&")(1 << PARAMS.index(p)) != 0).label(f"recoverable__{p}")
                for p in params
            ],
        )
        .where(*where(filters), SERVER)
        .group_by(*group_columns)
    )
    names = ["event_name", "action_source", *[f"recoverable__{p}" for p in params]]
    with engine.connect() as connection:
        frame = read_frame(connection, query, names)
    for p in params:
        frame[f"recoverable__{p}"] = frame[f"recoverable__{p}"].astype("int64")
    return frame


def action_sources_by(engine: Engine, filters: Filters, by: str | Sequence[str]) -> pd.DataFrame:
    """The action sources of the slice's server events per group: one row per distinct
    (dims..., action_source), so one scan serves every grouping of those dims."""
    dims = [by] if isinstance(by, str) else list(by)
    source = sa.func.coalesce(events.c.action_source, "(none)").label("action_source")
    query = (
        sa.select(*[group_column(d) for d in dims], source)
        .where(*where(filters), SERVER)
        .distinct()
    )
    with engine.connect() as connection:
        return read_frame(connection, query, [*dims, "action_source"])


# ---------------------------------------------------------------------------
# Dedup and coverage
def dedup_key_feedback(engine: Engine, filters: Filters) -> pd.DataFrame:
    """Meta's dedup-key feedback: per key, share of browser and of server events carrying it."""
    keys = {"event_id": events.c.event_id, "external_id": events.c.external_id, "fbp": events.c.fbp}
    columns = [
        count_if(BROWSER).label("browser"),
        count_if(SERVER).label("server"),
    ]
    for key, column in keys.items():
        columns.append(count_if(sa.and_(BROWSER, column.is_not(None))).label(f"b__{key}"))
        columns.append(count_if(sa.and_(SERVER, column.is_not(None))).label(f"s__{key}"))
    query = sa.select(*columns).where(*where(filters), ACCEPTED)
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


def gap_events(
    engine: Engine,
    filters: Filters,
    statuses: Sequence[str] = (*GAP_STATUSES, "likely_double_counted"),
    limit: int | None = 1000,
    config: Config | None = None,
) -> tuple[pd.DataFrame, int]:
    """Event-level dedup gaps for a developer (no PII: hashed fields never shown) and the
    total; the latest `limit` (None: all of them).

    server_only is a gap only for events that can have a browser twin: CRM, messaging
    and offline events are sent from the server alone by design (`server_only_by_design`).
    """
    wanted = [s for s in statuses if s in DEDUP_STATUSES and s != "server_only"]
    conditions = []
    if wanted:
        conditions.append(events.c.dedup_status.in_(wanted))
    if "server_only" in statuses:
        # CRM and messaging events have no Pixel counterpart: server_only is a gap on the web.
        by_design = server_only_by_design(config or default_config())
        conditions.append(sa.and_(events.c.dedup_status == "server_only", sa.not_(by_design)))
    if "likely_double_counted" in statuses:
        conditions.append(events.c.likely_double == sa.true())
    if not conditions:
        return pd.DataFrame(), 0
    selected = [*where(filters), ACCEPTED, sa.or_(*conditions)]
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
        .where(*selected)
        .order_by(events.c.sent_at.desc(), events.c.source_id, events.c.line_no, events.c.idx)
        .limit(limit)
    )
    with engine.connect() as connection:
        total = int(connection.execute(sa.select(sa.func.count()).where(*selected)).scalar() or 0)
        frame = pd.DataFrame(connection.execute(query).mappings().all())
    if frame.empty:
        frame = pd.DataFrame(columns=[c.name for c in query.selected_columns])
    for column in ("event_time", "sent_at"):
        frame[column] = pd.to_datetime(frame[column], unit="s", utc=True)
    return frame, total
