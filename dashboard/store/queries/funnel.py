"""Queries of the funnel: counted events and people per stage, stage-order gaps,
purchases and purchase-optimisation readiness.
"""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dashboard.core.config import Config
from dashboard.core.filters import Filters
from dashboard.store.database import events
from dashboard.store.functions import percentile
from dashboard.store.queries import blocks as block_queries
from dashboard.store.queries.common import (
    ACCEPTED,
    LAG,
    LAG_KNOWN,
    SERVER,
    count_if,
    read_frame,
    where,
)

# ---------------------------------------------------------------------------
# Funnel
_COUNTED = sa.and_(
    ACCEPTED,
    sa.or_(
        events.c.dedup_status.is_(None),
        events.c.dedup_status.not_in(("same_channel_repeat", "fallback_deduplicated")),
    ),
    sa.not_(sa.and_(SERVER, events.c.dedup_status == "deduplicated")),
)


def stage_counts(engine: Engine, filters: Filters) -> pd.DataFrame:
    """Per campaign and stage: counted events, distinct people and the median lag."""
    query = (
        sa.select(
            events.c.campaign,
            events.c.funnel_stage,
            count_if(_COUNTED).label("events"),
            sa.func.count(sa.distinct(sa.case((_COUNTED, events.c.person_key)))).label("people"),
            percentile(sa.case((LAG_KNOWN, LAG)), 0.5).label("median_lag_s"),
        )
        .where(*where(filters))
        .group_by(events.c.campaign, events.c.funnel_stage)
    )
    with engine.connect() as connection:
        frame = read_frame(connection, query)
    for column in ("events", "people"):
        frame[column] = frame[column].fillna(0).astype("int64")
    frame["median_lag_s"] = pd.to_numeric(frame["median_lag_s"], errors="coerce")
    return frame


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
                .where(*where(filters), events.c.funnel_stage.in_(list(order[:-1])))
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
                    *where(filters),
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


def _stage_mapping(filters: Filters, config: Config) -> sa.CTE | None:
    """The (m_campaign, m_stage, m_earlier) rows of the slice: for each campaign and stage
    with events, the stages of each funnel from the campaign's entry up to this one. Only
    the configured funnel orders (a few rows) are sent as literals, so thousands of
    campaigns cost no more parameters than one. None when no funnel is configured."""
    steps = [
        (funnel, stage, position)
        for funnel, order in config.funnels.items()
        for position, stage in enumerate(order)
        if stage not in order[:position]  # a repeated stage keeps its first place
    ]
    if not steps:
        return None
    # UNION ALL of bound literals: SQLite has no column aliases for a VALUES list.
    orders = sa.union_all(
        *[
            sa.select(
                sa.literal(funnel, sa.String).label("funnel"),
                sa.literal(stage, sa.String).label("stage"),
                sa.literal(position, sa.Integer).label("position"),
            )
            for funnel, stage, position in steps
        ]
    ).cte("funnel_orders")
    present = (
        sa.select(events.c.campaign, events.c.funnel_stage)
        .where(*where(filters), ACCEPTED)
        .distinct()
        .cte("present")
    )
    # Each campaign's entry position in each funnel: its first stage with events.
    entry = (
        sa.select(
            present.c.campaign, orders.c.funnel, sa.func.min(orders.c.position).label("entry")
        )
        .join_from(present, orders, orders.c.stage == present.c.funnel_stage)
        .group_by(present.c.campaign, orders.c.funnel)
        .cte("entry")
    )
    # (campaign, stage, earlier stage): the stages from the entry up to this one, per funnel.
    at, earlier = orders.alias("at_stage"), orders.alias("earlier")
    return (
        sa.select(
            present.c.campaign.label("m_campaign"),
            present.c.funnel_stage.label("m_stage"),
            earlier.c.stage.label("m_earlier"),
        )
        .join_from(present, at, at.c.stage == present.c.funnel_stage)
        .join(entry, sa.and_(entry.c.campaign == present.c.campaign, entry.c.funnel == at.c.funnel))
        .join(
            earlier,
            sa.and_(
                earlier.c.funnel == at.c.funnel,
                earlier.c.position >= entry.c.entry,
                earlier.c.position < at.c.position,
            ),
        )
        .distinct()
        .cte("stage_mapping")
    )


def stage_order_gaps(engine: Engine, filters: Filters, config: Config) -> pd.DataFrame:
    """People with an event at a stage but none, anywhere in the store, at an earlier stage.

    "Earlier" starts at the campaign's entry stage in each funnel (its first stage with
    any events), so a WhatsApp campaign whose people start at Qualified is not reported
    for lacking Contacted; a later stage without the entry stage is. One query.
    """
    columns = ["campaign", "funnel_stage", "people_without_earlier_stage"]
    mapping = _stage_mapping(filters, config)
    if mapping is None:
        return pd.DataFrame(columns=columns)
    pairs = sa.select(mapping.c.m_campaign, mapping.c.m_stage).distinct().cte("pairs")
    subject = (
        sa.select(events.c.campaign, events.c.funnel_stage, events.c.person_key)
        .join(
            pairs,
            sa.and_(
                pairs.c.m_campaign == events.c.campaign,
                pairs.c.m_stage == events.c.funnel_stage,
            ),
        )
        .where(*where(filters), ACCEPTED, events.c.person_key.is_not(None))
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
    # The subject's people with an event at one of the earlier stages: hash joins, then
    # a left anti-join (a correlated NOT EXISTS ran 15x slower on DuckDB at 1M events).
    with_earlier = (
        sa.select(subject.c.campaign, subject.c.funnel_stage, subject.c.person_key)
        .join(
            mapping,
            sa.and_(
                mapping.c.m_campaign == subject.c.campaign,
                mapping.c.m_stage == subject.c.funnel_stage,
            ),
        )
        .join(
            person_stages,
            sa.and_(
                person_stages.c.person_key == subject.c.person_key,
                person_stages.c.funnel_stage == mapping.c.m_earlier,
            ),
        )
        .distinct()
        .cte("with_earlier")
    )
    query = (
        sa.select(
            subject.c.campaign,
            subject.c.funnel_stage,
            sa.func.count().label("people_without_earlier_stage"),
        )
        .join(
            with_earlier,
            sa.and_(
                with_earlier.c.campaign == subject.c.campaign,
                with_earlier.c.funnel_stage == subject.c.funnel_stage,
                with_earlier.c.person_key == subject.c.person_key,
            ),
            isouter=True,
        )
        .where(with_earlier.c.person_key.is_(None))
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
        .where(*where(filters), _PURCHASE, _COUNTED)
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
    end = block_queries.period_end(engine, filters)
    last_7d = sa.and_(events.c.event_time >= end - 7 * 86400, events.c.event_time < end)
    query = (
        sa.select(
            events.c.campaign,
            sa.func.count().label("purchase_events_sent"),
            count_if(_COUNTED).label("purchases"),
            count_if(complete).label("with_value_and_currency"),
            count_if(sa.and_(_COUNTED, last_7d)).label("purchases_last_7d"),
        )
        .where(*where(filters), _PURCHASE)
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
        .where(*where(filters))
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
