"""Funnel, revenue and weekly Purchases on hand-built logs, numbers worked out by hand, on
every backend: stages not sent, conversion across them, people distinct across campaigns,
revenue per currency, ISO weeks with none."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from conftest import write_jsonl
from logkit import T0, capi, event, pixel

from dashboard.core.filters import Filters
from dashboard.ingest import ingest
from dashboard.quality.funnel import NOT_SENT, conversion_from_stages, funnel_stages, funnel_steps
from dashboard.store.queries.funnel import (
    NO_CURRENCY,
    funnel_people,
    purchase_readiness,
    purchases,
    weekly_purchases,
)

DAY = 86400
CRM = ("Contacted", "Qualified", "Demo scheduled", "Closed won")


def load(engine, tmp_path, config, records) -> None:
    ingest([write_jsonl(tmp_path / "log.jsonl", records)], engine, config=config)


def server(name: str, person: str, campaign: str, t: int = T0, **custom) -> dict:
    """One server event for `person` in `campaign`, sent 5 s later, accepted."""
    ev = event(name, t, f"{name}-{person}-{campaign}", external_id=person)
    ev["custom_data"] = {"campaign": campaign, **custom}
    return capi([ev], sent_at=t + 5)


def funnel_log() -> list:
    return [
        # wa: WhatsApp-like, enters at Qualified, never sends Contact or Schedule.
        *(server("Lead", u, "wa") for u in ("u1", "u2", "u3", "u4")),
        server("Purchase", "u1", "wa", value=100.0, currency="EUR"),
        # b2b: the whole CRM funnel; u1 is Qualified here too.
        *(server("Contact", u, "b2b") for u in ("u5", "u6")),
        *(server("Lead", u, "b2b") for u in ("u5", "u1")),
        server("Schedule", "u5", "b2b"),
        server("Purchase", "u5", "b2b", value=50.0, currency="USD"),
        # web: enters the web funnel only; its Purchase is no CRM "Closed won".
        server("ViewContent", "u7", "web"),
        server("Purchase", "u8", "web", value=10.0, currency="EUR"),
    ]


def test_funnel_steps_runs_conversion_across_stages_not_sent():
    steps = funnel_steps({"Qualified": 534, "Closed won": 83}, CRM).set_index("funnel_stage")
    assert list(steps.index) == list(CRM)
    assert steps.loc["Contacted", "note"] == NOT_SENT and pd.isna(steps.loc["Contacted", "people"])
    assert steps.loc["Demo scheduled", "note"] == NOT_SENT
    assert pd.isna(steps.loc["Qualified", "conversion"])  # the first stage sent
    assert steps.loc["Closed won", "from_stage"] == "Qualified"
    assert steps.loc["Closed won", "conversion"] == pytest.approx(83 / 534)  # 15.5%
    assert "Demo scheduled was not sent" in steps.loc["Closed won", "note"]


def test_funnel_steps_zero_people_and_trailing_stages():
    steps = funnel_steps({"Contacted": 0, "Qualified": 3}, CRM).set_index("funnel_stage")
    assert steps.loc["Qualified", "people"] == 3
    assert pd.isna(steps.loc["Qualified", "conversion"])  # 3 / 0: none, said in the note
    assert steps.loc["Qualified", "note"] == "no people at Contacted"
    # Sent stages, then nothing: the last two are not sent, not 0% conversion.
    assert list(steps["note"][2:]) == [NOT_SENT, NOT_SENT]
    assert steps["conversion"][2:].isna().all()


def test_funnel_of_one_campaign_with_a_stage_not_sent(engine, tmp_path, config):
    load(engine, tmp_path, config, funnel_log())
    stages = funnel_stages(engine, Filters(), config)
    conversion = conversion_from_stages(stages, config)
    wa = conversion[conversion["campaign"] == "wa"].set_index("funnel_stage")
    assert set(wa["funnel"]) == {"crm"}  # wa sends no web step before Purchase
    assert list(wa["note"][["Contacted", "Demo scheduled"]]) == [NOT_SENT, NOT_SENT]
    assert wa.loc["Qualified", "people"] == 4  # u1..u4
    # Qualified -> Closed won across Demo scheduled: 1 / 4 = 25%
    assert wa.loc["Closed won", "from_stage"] == "Qualified"
    assert wa.loc["Closed won", "conversion"] == pytest.approx(0.25)
    web = conversion[conversion["campaign"] == "web"].set_index("funnel_stage")
    # ViewContent -> Closed won across AddToCart and InitiateCheckout: 1 / 1
    assert web.loc["Closed won", "conversion"] == pytest.approx(1.0)
    assert "AddToCart, InitiateCheckout were not sent" in web.loc["Closed won", "note"]
    # The slice of wa alone is wa's funnel.
    alone = funnel_people(engine, Filters(campaigns=("wa",)), config)
    assert list(alone.itertuples(index=False, name=None)) == [
        ("crm", "Qualified", 4, 4),
        ("crm", "Closed won", 1, 1),
    ]


def test_funnel_of_several_campaigns_counts_people_once(engine, tmp_path, config):
    load(engine, tmp_path, config, funnel_log())
    people = funnel_people(engine, Filters(), config).set_index(["funnel", "funnel_stage"])[
        "people"
    ]
    assert people[("crm", "Contacted")] == 2  # u5, u6
    # wa {u1..u4} + b2b {u5, u1}: 5 people, not 4 + 2 = 6
    assert people[("crm", "Qualified")] == 5
    assert people[("crm", "Demo scheduled")] == 1  # u5
    # u1 (wa) and u5 (b2b); u8 bought in web, which never enters the CRM funnel
    assert people[("crm", "Closed won")] == 2
    assert people[("web", "ViewContent")] == 1 and people[("web", "Closed won")] == 1
    assert ("web", "AddToCart") not in people.index  # not sent: no row
    two = funnel_people(engine, Filters(campaigns=("wa", "b2b")), config)
    assert set(two["funnel"]) == {"crm"}


def purchase_log() -> list:
    shop = {"campaign": "shop"}

    def buy(order: str, value=None, currency=None) -> dict:
        custom = {**shop, **({"value": value} if value is not None else {})}
        if currency:
            custom["currency"] = currency
        return event("Purchase", T0, order, external_id=order, custom_data=custom)

    return [
        capi([buy("p1", 100.0, "EUR"), buy("p2", 50.5, "EUR"), buy("p3", 30.0, "USD")], T0 + 5),
        capi([buy("p4", 20.0)], T0 + 5),  # no currency
        capi(
            [buy("r1", 999.0, "EUR")],
            T0 + 5,
            status=400,
            error={"code": 100, "message": "bad"},
        ),  # rejected: not counted
        pixel(buy("p5", 10.0, "EUR")),
        capi([buy("p5", 10.0, "EUR")], T0 + 30),  # the browser/server pair counts once
    ]


def test_revenue_per_currency_never_summed_across(engine, tmp_path, config):
    load(engine, tmp_path, config, purchase_log())
    revenue = purchases(engine, Filters(), config).set_index(["campaign", "currency"])
    assert list(revenue.index) == [("shop", NO_CURRENCY), ("shop", "EUR"), ("shop", "USD")]
    # EUR: p1 100 + p2 50.5 + p5 10 (once) = 160.5; the rejected 999 is not counted
    assert revenue.loc[("shop", "EUR"), "purchases"] == 3
    assert revenue.loc[("shop", "EUR"), "revenue"] == pytest.approx(160.5)
    assert revenue.loc[("shop", "USD"), "revenue"] == pytest.approx(30.0)
    assert revenue.loc[("shop", NO_CURRENCY), "revenue"] == pytest.approx(20.0)
    ready = purchase_readiness(engine, Filters(), config).set_index("campaign")
    # sent: p1, p2, p3, p4, r1, p5 browser, p5 server = 7; counted: 3 EUR + 1 USD + 1 = 5
    assert ready.loc["shop", "purchase_events_sent"] == 7
    assert ready.loc["shop", "purchases"] == 5
    assert ready.loc["shop", "value_completeness"] == pytest.approx(6 / 7)  # all but p4
    assert ready.loc["shop", "purchases_last_7d"] == 5 and not ready.loc["shop", "ready"]


def test_weekly_purchases_iso_weeks_with_an_empty_week(engine, tmp_path, config):
    # T0 is Thursday 2025-11-20, in ISO week 2025-W47 (Monday 11-17 to Sunday 11-23).
    monday = T0 - 3 * DAY
    records = [
        server("Purchase", "a", "c", t=monday),  # 11-17
        server("Purchase", "b", "c", t=T0),  # 11-20
        server("Purchase", "c", "c", t=T0 + 3600),  # 11-20
        server("Lead", "d", "c", t=T0 + 5 * DAY),  # 11-25, W48: no Purchase
        # W48's only Purchase was rejected: W48 stays 0
        capi(
            [event("Purchase", T0 + 6 * DAY, "rej", custom_data={"campaign": "c"})],
            T0 + 6 * DAY,
            status=400,
            error={"code": 100, "message": "bad"},
        ),
        # 12-02 (W49): a browser/server pair, one counted Purchase
        pixel(event("Purchase", T0 + 12 * DAY, "pair", custom_data={"campaign": "c"})),
        capi(
            [event("Purchase", T0 + 12 * DAY, "pair", custom_data={"campaign": "c"})],
            T0 + 12 * DAY + 9,
        ),
    ]
    load(engine, tmp_path, config, records)
    weekly = weekly_purchases(engine, Filters())
    assert list(weekly.itertuples(index=False, name=None)) == [
        ("2025-W47", date(2025, 11, 17), 7, 3),
        ("2025-W48", date(2025, 11, 24), 7, 0),
        ("2025-W49", date(2025, 12, 1), 2, 1),  # the data end on Tuesday 12-02
    ]
    # A period from Wednesday 11-19 drops 11-17's Purchase and holds 5 days of W47.
    period = weekly_purchases(engine, Filters(since=date(2025, 11, 19), until=date(2025, 12, 7)))
    assert list(period["purchases"]) == [2, 0, 1]
    assert list(period["days_in_period"]) == [5, 7, 7]
