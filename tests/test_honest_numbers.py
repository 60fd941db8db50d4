"""Numbers a person checks every morning must not mislead: tiers and deltas as shown,
comparisons only against covered periods, server-only by design not read as a gap,
pipeline freshness in every block, and filters that never hide a fault."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pandas as pd
import pytest
from conftest import write_jsonl
from logkit import T0, capi, event, pixel, sha

from dashboard.core import clock
from dashboard.core import formatting as fmt
from dashboard.core.filters import Filters, epoch
from dashboard.ingest import ingest
from dashboard.outputs import charts
from dashboard.outputs.report import build_report
from dashboard.quality.blocks import block_frame, largest_groups, overall_block
from dashboard.quality.diagnostics import diagnose
from dashboard.quality.emq import tier
from dashboard.quality.match_quality import applicable_by_group, coverage_table
from dashboard.quality.periods import comparison
from dashboard.store.queries.match import action_sources_by, gap_events

DAY = 86_400
# T0 is 2025-11-20 10:00 UTC.


def load(engine, tmp_path, config, records) -> None:
    ingest([write_jsonl(tmp_path / "log.jsonl", records)], engine, config=config)


def test_tier_follows_the_value_as_displayed(config):
    assert config.emq_tiers["ok"] == 4.0 and config.emq_tiers["good"] == 6.0
    # 3.996 shows as "4.0": it must not read "4.0 · Poor" next to a "4.0 · OK".
    assert fmt.score(3.996) == "4.0" and tier(3.996, config) == "OK"
    assert tier(3.94, config) == "Poor"  # shows 3.9
    assert tier(5.95, config) == "Good"  # shows 6.0 (round half to even: 5.95 -> 6.0)
    assert tier(None, config) == "No data"


def test_deltas_are_computed_from_the_displayed_values():
    # 6.64 shows "6.6", 6.46 shows "6.5": the change reads +0.1, not the raw +0.18 -> "+0.2".
    assert fmt.delta(6.64, 6.46, "score") == "+0.1"
    # 74.11% vs 74.14%: both show 74.1%, so no change, never "-0.0 pp".
    assert fmt.delta(0.7411, 0.7414, "rate") == fmt.NO_CHANGE
    assert fmt.delta(0.7444, 0.7451, "rate") == "-0.1 pp"  # 74.4% vs 74.5%
    assert fmt.delta(-0.00001, 0.0, "rate") == fmt.NO_CHANGE
    assert fmt.delta(3, 3) == fmt.NO_CHANGE
    assert fmt.delta(5, 3) == "+2" and fmt.delta(3, 5) == "-2"
    assert fmt.delta(60.2, 60.0, "duration") == fmt.NO_CHANGE  # both "60 s"
    assert fmt.delta(None, 3) is None


def test_comparison_only_against_a_period_the_data_covers(engine, tmp_path, config):
    load(
        engine,
        tmp_path,
        config,
        [
            capi([event("Purchase", T0, "a")], sent_at=T0 + 5),  # 20 Nov 2025
            capi([event("Purchase", T0 + 7 * DAY, "b")], sent_at=T0 + 7 * DAY + 5),  # 27 Nov
        ],
    )
    # 27 Nov compared with 26 Nov: the data starts 20 Nov, so 26 Nov is covered (empty,
    # but truly empty: a real zero).
    covered = comparison(engine, Filters(since=date(2025, 11, 27), until=date(2025, 11, 27)))
    assert covered.available and (covered.since, covered.until) == (
        date(2025, 11, 26),
        date(2025, 11, 26),
    )
    assert covered.note.startswith("Changes compare with 26 Nov 2025 – 26 Nov 2025")
    # 20-21 Nov compared with 18-19 Nov: no data before 20 Nov, so no delta at all.
    partial = Filters(since=date(2025, 11, 20), until=date(2025, 11, 21))
    uncovered = comparison(engine, partial)
    assert not uncovered.available
    assert "no data before 20 Nov 2025" in uncovered.note
    report = build_report(engine, partial, config)
    assert report["previous_overall"] is None
    assert report["period"]["comparison"]["available"] is False
    assert report["period"]["previous_since"] == "2025-11-18"  # still named
    assert (
        build_report(engine, Filters(since=date(2025, 11, 27), until=date(2025, 11, 27)), config)[
            "previous_overall"
        ]["server_events"]
        == 0
    )
    # 27-30 Nov: the data ends on 27 Nov, so the current period is not covered either:
    # its totals would read as a fall against 23-26 Nov.
    ends_early = comparison(engine, Filters(since=date(2025, 11, 27), until=date(2025, 11, 30)))
    assert not ends_early.available
    assert "no data after 27 Nov 2025" in ends_early.note
    # A campaign with no data at all has nothing to compare.
    nothing = comparison(
        engine, Filters(since=date(2025, 11, 27), until=date(2025, 11, 27), campaigns=("x",))
    )
    assert not nothing.available and nothing.note == "No comparison: no data in this selection."
    assert comparison(engine, Filters()) is None


def _crm_and_web_log():
    crm = {"action_source": "system_generated"}
    return [
        # A website Purchase sent by both channels: deduplicated on both sides.
        pixel(event("Purchase", T0, "p1", fbp="fb.1.1763632800000.1")),
        capi([event("Purchase", T0, "p1", fbp="fb.1.1763632800000.1")], sent_at=T0 + 60),
        # A website Purchase only the server sent: a real gap (server_only).
        capi([event("Purchase", T0 + 100, "p2", fbp="fb.1.1763632800000.2")], sent_at=T0 + 160),
        # CRM and messaging events: server_only too, but no Pixel can ever send them.
        capi([event("Contact", T0, "c1", external_id="k1", extra=crm)], sent_at=T0 + 60),
        capi(
            [
                event(
                    "LeadSubmitted",
                    T0,
                    "l1",
                    external_id="k2",
                    extra={"action_source": "business_messaging", "messaging_channel": "whatsapp"},
                )
            ],
            sent_at=T0 + 60,
        ),
        # A website event at a stage a config may declare server-only (Demo scheduled).
        capi([event("Schedule", T0, "s1", external_id="k3")], sent_at=T0 + 60),
    ]


def test_server_only_by_design_is_neutral_and_out_of_the_dedup_rate(engine, tmp_path, config):
    load(engine, tmp_path, config, _crm_and_web_log())
    block = overall_block(engine, Filters(), config)
    server = block["dedup"]["server"]
    # What Meta does with each event is unchanged: 1 deduplicated, 4 server_only
    # (p2, c1, l1, s1) ...
    assert server["deduplicated"] == 1 and server["server_only"] == 4
    # ... of which Contact (system_generated) and LeadSubmitted (business_messaging)
    # cannot have a twin: 2 by design.
    assert server["by_design"] == 2
    # Dedup rate over the 5 - 2 = 3 server events that can have a twin: 1 / 3.
    assert block["dedup"]["rate"] == round(1 / 3, 6)
    gaps, total = gap_events(engine, Filters(), ["server_only"], config=config)
    assert total == 2 and set(gaps["event_id"]) == {"p2", "s1"}

    # Declaring Demo scheduled server-only moves Schedule into the neutral category.
    staged = replace(config, server_only_stages=("Demo scheduled",))
    block = overall_block(engine, Filters(), staged)
    assert block["dedup"]["server"]["by_design"] == 3
    assert block["dedup"]["rate"] == 0.5  # 1 of the 2 left (p1, p2)
    gaps, total = gap_events(engine, Filters(), ["server_only"], config=staged)
    assert total == 1 and list(gaps["event_id"]) == ["p2"]
    # The per-campaign chart paints them as one grey "server-only by design" segment.
    frame = block_frame(engine, Filters(), config, "event_name")
    figure = charts.dedup_stacked(frame, "event_name", "server")
    names = {bar.name: dict(zip(bar.x, bar.y, strict=True)) for bar in figure.data}
    assert names[charts.BY_DESIGN] == {
        "Contact": 1,
        "LeadSubmitted": 1,
        "Purchase": 0,
        "Schedule": 0,
    }
    assert names["server only"]["Purchase"] == 1 and names["server only"]["Contact"] == 0


def test_every_block_says_when_data_last_arrived_and_which_days_are_empty(engine, tmp_path, config):
    load(
        engine,
        tmp_path,
        config,
        [
            pixel(event("PageView", T0, "v1")),  # 20 Nov 10:00
            capi([event("Purchase", T0 + 2 * DAY, "o1")], sent_at=T0 + 2 * DAY + 60),  # 22 Nov
            # A rejected batch an hour later: proof the integration runs, not that Meta
            # received anything, so it is not the last server event.
            capi(
                [event("Purchase", T0 + 2 * DAY + 3600, "o2")],
                sent_at=T0 + 2 * DAY + 3660,
                status=400,
                error={"code": 100, "message": "Invalid parameter"},
            ),
        ],
    )
    report = build_report(
        engine, Filters(since=date(2025, 11, 20), until=date(2025, 11, 23)), config
    )
    fresh = report["overall"]["freshness"]
    assert fresh["last_event_at"] == "2025-11-22T10:00:00Z"
    assert fresh["last_browser_event_at"] == "2025-11-20T10:00:00Z"
    assert fresh["last_server_event_at"] == "2025-11-22T10:00:00Z"
    assert fresh["last_sent_at"] == "2025-11-22T10:01:00Z"
    # 20 Nov (PageView) and 22 Nov (Purchases) have events; 21 and 23 Nov none at all.
    assert fresh["days_without_events"] == ["2025-11-21", "2025-11-23"]
    page_view = report["by_event_name"]["PageView"]["freshness"]
    assert page_view["last_server_event_at"] is None
    assert page_view["days_without_events"] == ["2025-11-21", "2025-11-22", "2025-11-23"]
    assert report["by_funnel_stage"]["Closed won"]["freshness"]["days_without_events"] == [
        "2025-11-20",
        "2025-11-21",
        "2025-11-23",
    ]


def _lead_campaigns_log():
    records = []
    for campaign, with_em in (("a", True), ("b", True), ("c", False)):
        for i in range(10):
            user = {"external_id": f"{campaign}{i}", "custom_data": {"campaign": campaign}}
            if with_em:
                user["em"] = sha(f"{campaign}{i}@example.com")
            records.append(capi([event("Lead", T0 + i, f"{campaign}-{i}", **user)], T0 + 60))
    return records


def test_a_campaign_filter_keeps_that_campaigns_missing_parameter(engine, tmp_path, config):
    load(engine, tmp_path, config, _lead_campaigns_log())

    def gap_finding(filters):
        found = [d for d in diagnose(engine, filters, config) if d.key == "parameter_gap"]
        return [(d.campaign, d.parameter, d.affected, d.total) for d in found]

    # c's 10 Leads lack em, which a's and b's 20 all carry.
    assert gap_finding(Filters()) == [("c", "em", 10, 10)]
    # Filtered to c alone there is nobody "elsewhere" in the slice: the finding must stay.
    assert gap_finding(Filters(campaigns=("c",))) == [("c", "em", 10, 10)]
    assert gap_finding(Filters(campaigns=("a",))) == []
    block = overall_block(engine, Filters(campaigns=("c",)), config)
    assert block["parameter_coverage"]["em"] == 0.0  # a real 0, not absent


def test_parameters_that_cannot_apply_are_na_not_zero(engine, tmp_path, config):
    load(engine, tmp_path, config, [*_lead_campaigns_log(), *_crm_and_web_log()])
    filters = Filters(campaigns=("c", "(none)"))
    frame = block_frame(engine, filters, config, "event_name")
    applicable = applicable_by_group(action_sources_by(engine, filters, "event_name"), "event_name")
    table = coverage_table(frame, "event_name", applicable).set_index("event_name")
    # A website Lead can carry em (0% here) but never a WhatsApp click id: n/a (NaN).
    assert table.loc["Lead", "em"] == 0.0
    assert pd.isna(table.loc["Lead", "ctwa_clid"])
    # A WhatsApp LeadSubmitted can carry ctwa_clid (not sent: 0%) but no fbp cookie.
    assert table.loc["LeadSubmitted", "ctwa_clid"] == 0.0
    assert pd.isna(table.loc["LeadSubmitted", "fbp"])
    figure = charts.coverage_heatmap(table.reset_index(), "event_name")
    texts = dict(zip(figure.data[0].y, figure.data[0].text, strict=True))
    columns = list(figure.data[0].x)
    assert texts["Lead"][columns.index("ctwa_clid")] == "n/a"
    assert texts["Lead"][columns.index("em")] == "0%"


def test_daily_series_show_missing_days_as_zero():
    daily = pd.DataFrame(
        {
            "event_day": pd.to_datetime(["2025-11-20", "2025-11-23"]),
            "browser_events": [5, 7],
            "server_events": [4, 6],
            "server_rejected_by_meta": [0, 1],
        }
    )
    figure = charts.daily_volume(daily, first=date(2025, 11, 19), last=date(2025, 11, 24))
    browser = figure.data[0]
    assert [str(x)[:10] for x in browser.x] == [
        "2025-11-19",
        "2025-11-20",
        "2025-11-21",
        "2025-11-22",
        "2025-11-23",
        "2025-11-24",
    ]
    assert list(browser.y) == [0, 5, 0, 0, 7, 0]
    assert figure.layout.xaxis.type == "date" and figure.layout.xaxis.tickformat == "%d %b"


def test_a_period_running_to_today_is_compared_up_to_the_same_time(
    engine, tmp_path, config, monkeypatch
):
    # It is 27 Nov 2025, 09:05 UTC. Yesterday had server events at 08:00 and 12:00, today
    # one at 08:30 so far. A whole yesterday (2 events) against this morning (1) would
    # read as a fall by half; up to 09:00 yesterday it is 1 against 1.
    day = T0 - 10 * 3600 + 6 * DAY  # 26 Nov 2025 00:00 UTC (T0 is 20 Nov 10:00)
    load(
        engine,
        tmp_path,
        config,
        [
            capi([event("Purchase", day + 8 * 3600, "a")], sent_at=day + 8 * 3600 + 5),
            capi([event("Purchase", day + 12 * 3600, "b")], sent_at=day + 12 * 3600 + 5),
            capi(
                [event("Purchase", day + DAY + 8.5 * 3600, "c")],
                sent_at=day + DAY + 8.5 * 3600 + 5,
            ),
        ],
    )
    monkeypatch.setattr("dashboard.core.clock.now", lambda: day + DAY + 9 * 3600 + 5 * 60)
    today_only = Filters(since=date(2025, 11, 27), until=date(2025, 11, 27))
    compared = comparison(engine, today_only)
    assert compared.available
    assert compared.cut_at == day + 9 * 3600  # 09:05 to the whole 10 minutes: 09:00
    assert "up to 09:00 UTC on 26 Nov 2025: today is not over" in compared.note
    report = build_report(engine, today_only, config)
    assert report["overall"]["server_events"] == 1
    assert report["previous_overall"]["server_events"] == 1  # not 2
    # A period that ended yesterday is over: compared whole.
    yesterday = comparison(engine, Filters(since=date(2025, 11, 26), until=date(2025, 11, 26)))
    assert yesterday.cut_at is None


def test_coverage_goal_is_judged_on_the_value_as_shown(config):
    from dashboard.quality.diagnostics import coverage_shortfalls as _coverage_findings

    def findings(covered: int) -> list:
        frame = pd.DataFrame(
            [
                {
                    "event_name": "Purchase",
                    "browser_events": 10_000,
                    "covered": covered,
                    "event_coverage": covered / 10_000,
                }
            ]
        )
        return _coverage_findings(frame, config)

    # 7,496 of 10,000 = 74.96%, shown "75.0%": it meets the 75% goal, no finding.
    assert fmt.percent(0.7496) == "75.0%" and findings(7_496) == []
    # 7,494 = 74.94%, shown "74.9%": below the goal.
    assert [f.affected for f in findings(7_494)] == [2_506]


def test_todays_partial_day_is_marked_so_far():
    daily = pd.DataFrame(
        {
            "event_day": pd.to_datetime(["2025-11-20", "2025-11-21"]),
            "browser_events": [50, 7],
            "server_events": [40, 6],
            "server_rejected_by_meta": [0, 0],
        }
    )
    figure = charts.daily_volume(daily, partial=date(2025, 11, 21))
    assert [a.text for a in figure.layout.annotations] == ["today, so far"]
    assert charts.daily_volume(daily).layout.annotations == ()


def test_days_without_events_per_group_take_groups_without_a_value_and_skip_today(
    engine, tmp_path, config
):
    """Per campaign, the events without one form their own group with its own empty days;
    a period that reaches today stops at yesterday (today is not over)."""
    today = clock.today()
    day = lambda n: epoch(today - timedelta(days=n)) + 36_000  # noqa: E731 - 10:00 UTC
    load(
        engine,
        tmp_path,
        config,
        [
            pixel(event("PageView", day(3), "v1")),  # no campaign, 3 days ago
            capi([event("Lead", day(2), "l1", custom_data={"campaign": "a"})], day(2) + 60),
            capi([event("Lead", day(0), "l2", custom_data={"campaign": "a"})], day(0) + 60),
            pixel(event("PageView", day(0), "v2")),  # today: outside the judged days
        ],
    )
    report = build_report(engine, Filters(since=today - timedelta(days=3), until=today), config)
    iso = lambda n: (today - timedelta(days=n)).isoformat()  # noqa: E731
    by_campaign = {
        k: v["freshness"]["days_without_events"] for k, v in report["by_campaign"].items()
    }
    assert set(by_campaign) == {"a", "(none)"}, by_campaign
    assert by_campaign["a"] == [iso(3), iso(1)]
    assert by_campaign["(none)"] == [iso(2), iso(1)]
    assert report["overall"]["freshness"]["days_without_events"] == [iso(1)]


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (9_999, "9,999"),
        (12_345, "12.3k"),
        (99_949, "99.9k"),
        (99_960, "100k"),  # rounds to 100.0k: three figures, no decimal
        (313_300, "313k"),
        (675_900, "676k"),
        (999_960, "1.0M"),  # not "1000k"
        (123_400_000, "123M"),
        (-313_300, "-313k"),
    ],
)
def test_compact_counts_keep_three_figures_so_a_pair_fits_its_card(value, shown):
    """The Overview's "Events (browser / server)" card read "313.3k / 675.…" at 1M events."""
    assert fmt.compact(value) == shown


def test_a_chart_keeps_the_groups_with_the_most_events_in_their_own_order():
    frame = pd.DataFrame(
        {
            "event_name": ["A", "B", "C", "D", "E"],
            "browser_events": [5, 0, 1, 4, 0],
            "server_events": [0, 10, 0, 6, 2],
        }
    )  # volumes 5, 10, 1, 10, 2
    assert list(largest_groups(frame, 2)["event_name"]) == ["B", "D"]
    assert list(largest_groups(frame, 3)["event_name"]) == ["A", "B", "D"]
    assert list(largest_groups(frame, 4)["event_name"]) == ["A", "B", "D", "E"]
    assert largest_groups(frame, 5) is frame


def test_emq_bar_tier_labels_never_share_a_line(config):
    """Long campaign names leave a narrow plot: the labels of the cut-offs 4, 6 and 8
    sit a step apart above it instead of printing over each other."""
    frame = pd.DataFrame(
        {"campaign": ["a" * 80, "b" * 80], "server_sent": [10, 10], "emq_estimate": [3.0, 8.5]}
    )
    figure = charts.emq_bars(frame, "campaign", config)
    labels = {a.text: a.yshift for a in figure.layout.annotations if "≥" in a.text}
    assert labels == {"OK ≥ 4": 0, "Good ≥ 6": 14, "Great ≥ 8": 28}
