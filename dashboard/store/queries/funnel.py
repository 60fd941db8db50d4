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
            .where(*where(filters), ACCEPTED)
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
            *where(filters),
            ACCEPTED,
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
