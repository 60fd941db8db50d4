"""Proving a fix: the headline measures per day (a day without events is 0 events and no
share, never a gap), `report --by day` as JSON and CSV, and the days before and after a
marker with its honesty rules. Logs built by hand, numbers worked out by hand."""

from __future__ import annotations

import csv
import io
import json
from datetime import date

import pandas as pd
import pytest
from conftest import write_jsonl
from logkit import T0, capi, event, pixel, sha
from streamlit.testing.v1 import AppTest

from dashboard import cli
from dashboard.core.config import REPO_ROOT
from dashboard.core.filters import Filters
from dashboard.ingest import ingest
from dashboard.outputs import charts
from dashboard.quality.blocks import overall_block
from dashboard.quality.daily import DAILY_KEYS, before_after, daily_series
from dashboard.store.database import make_engine
from dashboard.store.markers import add_marker

APP = str(REPO_ROOT / "dashboard" / "app.py")
DAY = 86_400
META_ERROR = {"code": 100, "message": "Invalid parameter"}
PLAIN = "plain@example.com"  # an e-mail sent in plaintext where Meta wants a hash

# Three days, the middle one without any event:
# 20 Nov: Purchase o1 in both channels (a covered pair, hashed em), Purchase o2 in the
#   browser only, a Lead l1 on the server only with a plaintext e-mail.
# 21 Nov: nothing.
# 22 Nov: Purchase o3 in both channels; Purchase o4 in a batch Meta rejected; a Lead s1
#   sent 8 days after it happened (stale).
THREE_DAYS = [
    pixel(event("Purchase", T0, "o1")),
    capi([event("Purchase", T0, "o1", em=sha("a@x.test"))], sent_at=T0 + 5),
    pixel(event("Purchase", T0 + 100, "o2")),
    capi([event("Lead", T0 + 200, "l1", em=PLAIN)], sent_at=T0 + 205),
    pixel(event("Purchase", T0 + 2 * DAY, "o3")),
    capi([event("Purchase", T0 + 2 * DAY, "o3", em=sha("b@x.test"))], sent_at=T0 + 2 * DAY + 5),
    capi(
        [event("Purchase", T0 + 2 * DAY + 60, "o4")],
        sent_at=T0 + 2 * DAY + 65,
        status=400,
        error=META_ERROR,
    ),
    capi([event("Lead", T0 + 2 * DAY + 300, "s1")], sent_at=T0 + 10 * DAY + 300),
]
PERIOD = Filters(since=date(2025, 11, 20), until=date(2025, 11, 22))


def load(engine, tmp_path, config, records) -> None:
    ingest([write_jsonl(tmp_path / "log.jsonl", records)], engine, config=config)


def test_every_day_of_the_period_with_zeros_on_the_missing_day(engine, tmp_path, config):
    load(engine, tmp_path, config, THREE_DAYS)
    series = daily_series(engine, PERIOD, config)
    assert list(series.columns) == ["day", *DAILY_KEYS]
    assert list(series["day"].dt.date) == [date(2025, 11, d) for d in (20, 21, 22)]
    rows = series.set_index(series["day"].dt.day)
    # 20 Nov: 2 browser events, o1 covered: 1/2; server o1 deduplicated, l1 server-only.
    assert rows.loc[20, "browser_events"] == 2 and rows.loc[20, "server_events"] == 2
    assert rows.loc[20, "event_coverage"] == 0.5
    assert rows.loc[20, "dedup.rate"] == 0.5
    assert rows.loc[20, "unhashed_pii"] == 1
    assert rows.loc[20, "server_rejected_by_meta"] == 0
    assert rows.loc[20, "freshness.stale_over_7d"] == 0
    # 21 Nov: no event at all: counts are 0 and shares have nothing to divide.
    for key in ("browser_events", "server_events", "unhashed_pii", "server_rejected_by_meta"):
        assert rows.loc[21, key] == 0, key
    assert rows.loc[21, "freshness.stale_over_7d"] == 0
    for key in ("event_coverage", "dedup.rate", "emq_estimate"):
        assert pd.isna(rows.loc[21, key]), key
    # 22 Nov: o3 covered (1/1); accepted server o3 (deduplicated) and s1 (server only);
    # o4 rejected; s1 stale.
    assert rows.loc[22, "browser_events"] == 1 and rows.loc[22, "server_events"] == 2
    assert rows.loc[22, "event_coverage"] == 1.0
    assert rows.loc[22, "dedup.rate"] == 0.5
    assert rows.loc[22, "unhashed_pii"] == 0
    assert rows.loc[22, "server_rejected_by_meta"] == 1
    assert rows.loc[22, "freshness.stale_over_7d"] == 1
    # The EMQ estimate of a day is the block's, for that day alone.
    for day in (20, 22):
        one_day = Filters(since=date(2025, 11, day), until=date(2025, 11, day))
        assert (
            rows.loc[day, "emq_estimate"] == overall_block(engine, one_day, config)["emq_estimate"]
        )


def test_without_a_period_the_series_runs_over_the_data(duck_engine, tmp_path, config):
    load(duck_engine, tmp_path, config, THREE_DAYS)
    series = daily_series(duck_engine, Filters(), config)
    assert list(series["day"].dt.day) == [20, 21, 22]
    longer = daily_series(
        duck_engine, Filters(since=date(2025, 11, 19), until=date(2025, 11, 23)), config
    )
    assert list(longer["day"].dt.day) == [19, 20, 21, 22, 23]
    assert list(longer["browser_events"]) == [0, 2, 0, 1, 0]


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_report_by_day_json_and_csv(duck_engine, tmp_path, config, capsys):
    load(duck_engine, tmp_path, config, THREE_DAYS)
    add_marker(duck_engine, "Hashed em on the Lead form", T0 + DAY + 3600)  # 21 Nov 11:00
    add_marker(duck_engine, "Outside the period", T0 + 30 * DAY)
    duck_engine.dispose()
    db = str(duck_engine.url)
    period = ("--since", "2025-11-20", "--until", "2025-11-22")
    code, out, err = run_cli(capsys, "report", "--by", "day", "--db", db, *period)
    assert code == 0, err
    report = json.loads(out)
    assert report["schema_version"] == "1.0"
    assert [m["key"] for m in report["measures"]] == list(DAILY_KEYS)
    days = {d["day"]: d for d in report["by_day"]}
    assert list(days) == ["2025-11-20", "2025-11-21", "2025-11-22"]
    assert days["2025-11-20"]["event_coverage"] == 0.5
    assert days["2025-11-20"]["unhashed_pii"] == 1
    assert days["2025-11-21"] == {
        "day": "2025-11-21",
        "browser_events": 0,
        "server_events": 0,
        "event_coverage": None,
        "dedup.rate": None,
        "emq_estimate": None,
        "unhashed_pii": 0,
        "server_rejected_by_meta": 0,
        "freshness.stale_over_7d": 0,
    }
    assert days["2025-11-22"]["server_rejected_by_meta"] == 1
    assert report["markers"] == [
        {"id": 1, "at": "2025-11-21T11:00:00Z", "label": "Hashed em on the Lead form"}
    ]

    code, out, err = run_cli(
        capsys, "report", "--by", "day", "--format", "csv", "--db", db, *period
    )
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == ["day", *DAILY_KEYS]  # the JSON's keys, for scripts
    assert [r["day"] for r in rows] == ["2025-11-20", "2025-11-21", "2025-11-22"]
    assert rows[0]["event_coverage"] == "0.5" and rows[0]["unhashed_pii"] == "1"
    assert rows[1]["browser_events"] == "0" and rows[1]["event_coverage"] == ""
    assert rows[2]["server_rejected_by_meta"] == "1"

    code, _, err = run_cli(capsys, "report", "--by", "day", "--format", "text", "--db", db)
    assert code == 2 and "json or csv" in err


# Before / after a marker at 22 Nov 10:00, two days each side: the fix hashed the e-mail.
# Before (20 and 21 Nov): o1 in both channels with a plaintext e-mail, b2 in the browser
#   only, Lead b3 on the server only with a plaintext e-mail.
# After (22 and 23 Nov): a1 and a2 in both channels, hashed.
# 24 Nov 10:01, outside both sides: the log goes on after them.
MARKER_AT = T0 + 2 * DAY
BEFORE_AFTER = [
    pixel(event("Purchase", T0, "o1")),
    capi([event("Purchase", T0, "o1", em=PLAIN)], sent_at=T0 + 5),
    pixel(event("Purchase", T0 + DAY, "b2")),
    capi([event("Lead", T0 + DAY + 60, "b3", em=PLAIN)], sent_at=T0 + DAY + 65),
    pixel(event("Purchase", T0 + 2 * DAY, "a1")),
    capi([event("Purchase", T0 + 2 * DAY, "a1", em=sha("a@x.test"))], sent_at=T0 + 2 * DAY + 5),
    pixel(event("Purchase", T0 + 3 * DAY, "a2")),
    capi([event("Purchase", T0 + 3 * DAY, "a2", em=sha("b@x.test"))], sent_at=T0 + 3 * DAY + 5),
    pixel(event("PageView", T0 + 4 * DAY + 60, "later")),
]


def test_before_after_numbers(engine, tmp_path, config):
    load(engine, tmp_path, config, BEFORE_AFTER)
    result = before_after(engine, Filters(), config, MARKER_AT, days=2)
    assert result.available, result.note
    assert result.before_days_with_events == 2 and result.after_days_with_events == 2
    changes = {c.measure.key: c for c in result.changes}
    coverage = changes["event_coverage"]
    assert (coverage.before, coverage.after) == (0.5, 1.0)
    assert (coverage.change, coverage.verdict) == ("+50.0 pp", "better")
    pii = changes["unhashed_pii"]
    assert (pii.before, pii.after, pii.change, pii.verdict) == (2, 0, "-2", "better")
    dedup = changes["dedup.rate"]
    assert (dedup.before, dedup.after, dedup.verdict) == (0.5, 1.0, "better")
    browser = changes["browser_events"]
    # Volumes have no better or worse.
    assert (browser.before, browser.after, browser.change, browser.verdict) == (
        2,
        2,
        "no change",
        "",
    )
    rejected = changes["server_rejected_by_meta"]
    assert (rejected.before, rejected.after, rejected.verdict) == (0, 0, "no change")
    assert "22 Nov 2025 10:00 UTC" in result.note


def test_before_after_says_no_comparison_when_it_would_mislead(
    duck_engine, tmp_path, config, monkeypatch
):
    load(duck_engine, tmp_path, config, BEFORE_AFTER)
    # Three days before the marker start on 19 Nov, before the log does.
    early = before_after(duck_engine, Filters(), config, MARKER_AT, days=3)
    assert not early.available
    assert early.note.startswith("No comparison: no data before 20 Nov 2025")
    assert all(c.change is None for c in early.changes)
    # The numbers of each side are still there, without a change (three days after the
    # marker also hold the PageView of 24 Nov, which has no server twin: 2 of 3).
    coverage = next(c for c in early.changes if c.measure.key == "event_coverage")
    assert (coverage.before, coverage.after) == (0.5, 0.666667)
    # A marker long after the log: no event on either side.
    empty = before_after(duck_engine, Filters(), config, MARKER_AT + 30 * DAY, days=2)
    assert not empty.available and "no events in the 2 days before" in empty.note
    # A campaign filter no event has: no event on either side either.
    none = before_after(duck_engine, Filters(campaigns=("nope",)), config, MARKER_AT, days=2)
    assert not none.available and "no events" in none.note
    # The days after are not over yet: a side cut short would read as a fall.
    monkeypatch.setattr("dashboard.core.clock.now", lambda: MARKER_AT + DAY)
    cut = before_after(duck_engine, Filters(), config, MARKER_AT, days=2)
    assert not cut.available and cut.note.startswith("No comparison yet")


def test_a_side_with_events_on_too_few_days_is_not_compared(duck_engine, tmp_path, config):
    # Before the marker (24 Nov 10:00, four days each side) only 20 Nov has events: the
    # log of 21-23 Nov is missing. After it, every day has events; 28 Nov 11:00 shows the
    # log goes on.
    times = [T0, T0 + 4 * DAY, T0 + 5 * DAY, T0 + 6 * DAY, T0 + 7 * DAY, T0 + 8 * DAY + 3600]
    load(duck_engine, tmp_path, config, [pixel(event("PageView", t, f"e{t}")) for t in times])
    result = before_after(duck_engine, Filters(), config, T0 + 4 * DAY, days=4)
    assert (result.before_days_with_events, result.after_days_with_events) == (1, 4)
    assert not result.available
    assert "events on only 1 of the 4 days before" in result.note


def test_report_before_after_cli(duck_engine, tmp_path, config, capsys):
    load(duck_engine, tmp_path, config, BEFORE_AFTER)
    marker = add_marker(duck_engine, "Hash em", MARKER_AT)
    duck_engine.dispose()
    db = str(duck_engine.url)
    code, out, err = run_cli(
        capsys, "report", "--before-after", str(marker.id), "--days", "2", "--db", db
    )
    assert code == 0, err
    view = json.loads(out)
    assert view["marker"] == {"id": 1, "at": "2025-11-22T10:00:00Z", "label": "Hash em"}
    assert view["available"] is True
    assert view["before"] == {"since": "2025-11-20T10:00:00Z", "until": "2025-11-22T10:00:00Z"}
    pii = next(m for m in view["measures"] if m["measure"] == "unhashed_pii")
    assert (pii["before"], pii["after"], pii["change"]) == (2, 0, "-2")
    code, out, _ = run_cli(
        capsys, "report", "--before-after", "1", "--days", "2", "--format", "text", "--db", db
    )
    assert code == 0
    assert "Events with plaintext PII" in out and "-2 (better)" in out
    code, _, err = run_cli(capsys, "report", "--before-after", "9", "--db", db)
    assert code == 2 and "no marker 9" in err
    code, _, err = run_cli(capsys, "report", "--before-after", "1", "--days", "0", "--db", db)
    assert code == 2 and "1 or more" in err


@pytest.mark.parametrize("days", [1, 2])
def test_the_days_either_side_hold_every_event_once(duck_engine, tmp_path, config, days):
    """The two sides split the log at the marker: no event counted on both sides."""
    load(duck_engine, tmp_path, config, BEFORE_AFTER)
    result = before_after(duck_engine, Filters(), config, MARKER_AT, days=days)
    browser = next(c for c in result.changes if c.measure.key == "browser_events")
    assert browser.before + browser.after == 2 * days


def test_the_overview_shows_per_day_charts_with_markers_and_before_after(
    tmp_path, config, monkeypatch
):
    url = f"duckdb:///{tmp_path / 'store.duckdb'}"
    engine = make_engine(url)
    load(engine, tmp_path, config, BEFORE_AFTER)
    add_marker(engine, "Hash em", MARKER_AT)
    engine.dispose()
    monkeypatch.setenv("EQM_DB_URL", url)
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["period"] = "All data"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Per day" in [h.value for h in at.subheader]
    figures = {}
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        figures[spec["layout"]["title"]["text"]] = spec
    # The daily volume chart and one chart per measure, each with the marker's line.
    for title in ("Events per day", "Event coverage", "Events with plaintext PII"):
        shapes = figures[title]["layout"].get("shapes", [])
        assert [s["x0"] for s in shapes if s["line"].get("color") == charts.MARKER_COLOR] == [
            MARKER_AT * 1000
        ], title
    at.number_input(key="ba_days").set_value(2).run()
    assert not at.exception, [e.value for e in at.exception]
    table = next(d.value for d in at.dataframe if "Verdict" in d.value.columns)
    rows = table.set_index("Measure")
    assert list(rows.loc["Events with plaintext PII"]) == ["2", "0", "-2", "better"]
    assert list(rows.loc["Event coverage"]) == ["50.0%", "100.0%", "+50.0 pp", "better"]
    # Seven days each side start before the log does: no comparison, and it says why.
    at.number_input(key="ba_days").set_value(7).run()
    assert any("No comparison" in c.value for c in at.caption)
    table = next(d.value for d in at.dataframe if "Verdict" in d.value.columns)
    assert set(table["Change"]) == {"–"}
