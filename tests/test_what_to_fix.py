"""What to fix next ranks what can be fixed: recoverable values, on hand-built logs on every
backend, and on the bundled sample (issue #14, item 9)."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from conftest import write_jsonl
from logkit import T0, capi, event, pixel, sha

from dashboard.core.config import SAMPLE_LOG_PATH
from dashboard.core.filters import Filters
from dashboard.ingest import ingest
from dashboard.quality.match_quality import what_to_fix
from dashboard.store import dedup, people
from dashboard.store.database import events, person_first_valid, store_meta

FBP_A = "fb.1.1700000000000.1111111111"
FBP_B = "fb.1.1700000000000.2222222222"
EM_A = sha("a@example.com")
PH_A = sha("31612345678")
TRUTH = json.loads(SAMPLE_LOG_PATH.with_name("sent_events.truth.json").read_text())


def load(engine, tmp_path, config, records) -> None:
    ingest([write_jsonl(tmp_path / "log.jsonl", records)], engine, config=config)


def row(fixes, event_name: str, parameter: str):
    match = fixes[(fixes.event_name == event_name) & (fixes.parameter == parameter)]
    assert len(match) == 1, (event_name, parameter)
    return match.iloc[0]


def test_lacking_values_the_same_person_sent_elsewhere_are_recoverable(engine, tmp_path, config):
    records = [
        # Person A (fbp A): a Purchase with em, then a PageView without it.
        capi([event("Purchase", T0, "p1", em=EM_A, fbp=FBP_A)], sent_at=T0),
        capi([event("PageView", T0 + 60, "v1", fbp=FBP_A)], sent_at=T0 + 60),
        # Person B (fbp B): page views only, never an e-mail.
        capi([event("PageView", T0 + 10, "v2", fbp=FBP_B)], sent_at=T0 + 10),
        capi([event("PageView", T0 + 70, "v3", fbp=FBP_B)], sent_at=T0 + 70),
    ]
    load(engine, tmp_path, config, records)
    fixes = what_to_fix(engine, Filters(), config)
    page_em = row(fixes, "PageView", "em")
    # 3 PageViews lack em; only A's had a person who had sent it: 1 of 3.
    assert page_em["recoverable_events"] == 1
    assert page_em["recoverable_share"] == pytest.approx(1 / 3)
    # A PageView with fbp only scores 1.0, with em 4.0: +3 on each of 3 of the 4 server
    # events, gain_slice = 3 * 3 / 4 = 2.25; recoverable_gain = 2.25 * 1 / 3 = 0.75.
    assert page_em["gain_slice"] == pytest.approx(2.25)
    assert page_em["recoverable_gain"] == pytest.approx(0.75)
    assert (fixes.iloc[0]["event_name"], fixes.iloc[0]["parameter"]) == ("PageView", "em")
    # Nobody sent a phone number: the row stays, with nothing recoverable.
    page_ph = row(fixes, "PageView", "ph")
    assert page_ph["recoverable_events"] == 0 and page_ph["recoverable_gain"] == 0.0
    # The Purchase already has em; nobody else had anything it lacks.
    assert row(fixes, "Purchase", "ph")["recoverable_events"] == 0


def test_ranked_by_recoverable_gain_then_raw_gain(engine, tmp_path, config):
    records = [
        # A sends ph (not em) on a Purchase; nobody ever sends em.
        capi([event("Purchase", T0, "p1", ph=PH_A, fbp=FBP_A)], sent_at=T0),
        capi([event("PageView", T0 + 60, "v1", fbp=FBP_A)], sent_at=T0 + 60),
        capi([event("PageView", T0 + 10, "v2", fbp=FBP_B)], sent_at=T0 + 10),
        capi([event("PageView", T0 + 70, "v3", fbp=FBP_B)], sent_at=T0 + 70),
    ]
    load(engine, tmp_path, config, records)
    fixes = what_to_fix(engine, Filters(), config)
    # PageView + em: +3 on 3 of 4 events, gain_slice 2.25, nothing recoverable.
    # PageView + ph: +1.5 on 3 of 4, gain_slice 1.125, 1 of 3 recoverable: 0.375.
    top, second = fixes.iloc[0], fixes.iloc[1]
    assert (top["event_name"], top["parameter"]) == ("PageView", "ph")
    assert top["gain_slice"] == pytest.approx(1.125)
    assert top["recoverable_gain"] == pytest.approx(0.375)
    # Among rows with nothing recoverable the raw gain decides: em on PageView (2.25)
    # before em on the Purchase (fbp + ph = 2.5 -> 5.5: +3 on 1 of 4 = 0.75).
    assert (second["event_name"], second["parameter"]) == ("PageView", "em")
    assert second["recoverable_gain"] == 0.0 and second["gain_slice"] == pytest.approx(2.25)
    assert row(fixes, "Purchase", "em")["gain_slice"] == pytest.approx(0.75)
    assert list(fixes["recoverable_gain"]) == sorted(fixes["recoverable_gain"], reverse=True)


def test_a_value_first_sent_later_is_not_recoverable(engine, tmp_path, config):
    records = [
        # Person D, known by external_id only: a page view before the e-mail is known,
        # the e-mail sent by the Pixel only, then another page view.
        capi([event("PageView", T0, "v1", external_id="d")], sent_at=T0),
        pixel(event("Lead", T0 + 100, "l1", external_id="d", em=EM_A)),
        capi([event("PageView", T0 + 200, "v2", external_id="d")], sent_at=T0 + 200),
        # Person E, another external_id: never an e-mail anywhere.
        capi([event("PageView", T0 + 300, "v3", external_id="e", fbp=FBP_B)], sent_at=T0 + 300),
    ]
    load(engine, tmp_path, config, records)
    page_em = row(what_to_fix(engine, Filters(), config), "PageView", "em")
    # 3 server PageViews lack em; only v2 was sent after D's e-mail was known (through the
    # browser channel): 1 of 3. v1 came before it, v3 is someone else.
    assert page_em["recoverable_events"] == 1
    assert page_em["recoverable_share"] == pytest.approx(1 / 3)


def test_values_sent_outside_the_slice_count(engine, tmp_path, config):
    day = 86400
    records = [
        capi([event("Purchase", T0, "p1", em=EM_A, fbp=FBP_A)], sent_at=T0),
        capi([event("PageView", T0 + 2 * day, "v1", fbp=FBP_A)], sent_at=T0 + 2 * day),
        capi([event("PageView", T0 + 2 * day, "v2", fbp=FBP_B)], sent_at=T0 + 2 * day),
    ]
    load(engine, tmp_path, config, records)
    later = Filters(start_ts=T0 + day)
    page_em = row(what_to_fix(engine, later, config), "PageView", "em")
    # The Purchase is outside the slice, but the integration knew A's e-mail: 1 of 2.
    assert page_em["server_events"] == 2
    assert page_em["recoverable_events"] == 1
    assert page_em["recoverable_share"] == pytest.approx(0.5)


def test_sample_top_advice_is_actionable(sample_engine, config):
    fixes = what_to_fix(sample_engine, Filters(), config)
    top = fixes.iloc[0]
    # By raw gain, em on anonymous page views led; few of those visitors were known yet.
    assert (top["event_name"], top["parameter"]) != ("PageView", "em")
    assert top["recoverable_events"] > 0
    page_em = row(fixes, "PageView", "em")
    assert page_em["gain_slice"] == fixes["gain_slice"].max()
    assert page_em["recoverable_share"] < 0.05
    # The sample plants malformed fbc on server events whose Pixel twin sends it right
    # (truth: 384 events): nearly all of them are recoverable, and fbc can be nothing else
    # (a visitor without a click has no fbc anywhere).
    all_fixes = what_to_fix(sample_engine, Filters(), config, limit=10_000)
    fbc = all_fixes[all_fixes.parameter == "fbc"]["recoverable_events"].sum()
    assert 0.9 * TRUTH["malformed_fbc"]["events"] <= fbc <= TRUTH["malformed_fbc"]["events"]


def test_sample_planted_leads_without_em_lead_their_campaign(sample_engine, config):
    # The sample plants Leads sent without em in one campaign (truth: 146 events) while
    # the Pixel twin carries it: the server integration had the e-mail all along.
    planted = TRUTH["leads_without_em"]
    fixes = what_to_fix(sample_engine, Filters(campaigns=(planted["campaign"],)), config)
    top = fixes.iloc[0]
    assert (top["event_name"], top["action_source"], top["parameter"]) == (
        "Lead",
        "website",
        "em",
    )
    assert top["server_events"] == planted["events"] and top["coverage"] == 0.0
    assert top["recoverable_share"] > 0.9
    # By raw gain, em on the campaign's page views would have come first.
    assert row(fixes, "PageView", "em")["gain_slice"] > top["gain_slice"]


def test_a_later_import_moves_a_persons_first_value_earlier(engine, tmp_path, config):
    """The first valid times are kept at import (person_first_valid): a second file's
    earlier e-mail updates the person's row, and a store without the table's rows (made
    before it existed) fills them on its next refresh."""
    first = [
        capi([event("PageView", T0 + 100, "v1", fbp=FBP_A)], sent_at=T0 + 100),
        capi([event("Purchase", T0 + 200, "p1", em=EM_A, fbp=FBP_A)], sent_at=T0 + 200),
    ]
    ingest([write_jsonl(tmp_path / "first.jsonl", first)], engine, config=config)
    # A's e-mail was first valid at T0 + 200, after the PageView: nothing recoverable.
    assert row(what_to_fix(engine, Filters(), config), "PageView", "em")["recoverable_events"] == 0
    second = [
        # A's e-mail through the Pixel at T0 + 50, before the PageView.
        pixel(event("Lead", T0 + 50, "l1", em=EM_A, fbp=FBP_A)),
        # B's e-mail on a batch Meta rejected: the integration still knew it.
        capi([event("Lead", T0, "l2", em=EM_A, fbp=FBP_B)], sent_at=T0, status=400),
        capi([event("PageView", T0 + 10, "v2", fbp=FBP_B)], sent_at=T0 + 10),
    ]
    ingest([write_jsonl(tmp_path / "second.jsonl", second)], engine, config=config)
    page_em = row(what_to_fix(engine, Filters(), config), "PageView", "em")
    assert (page_em["server_events"], page_em["recoverable_events"]) == (2, 2)

    with engine.begin() as connection:
        # A store made before the table and the masks: empty table, masks NULL.
        connection.execute(sa.delete(person_first_valid))
        connection.execute(sa.update(events).values(recoverable_params=None))
        connection.execute(sa.delete(store_meta).where(store_meta.c.key == people.BUILT))
    assert row(what_to_fix(engine, Filters(), config), "PageView", "em")["recoverable_events"] == 0
    assert dedup.refresh_if_stale(engine)
    assert row(what_to_fix(engine, Filters(), config), "PageView", "em")["recoverable_events"] == 2
    assert not dedup.refresh_if_stale(engine)
