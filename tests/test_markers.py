"""Markers: what changed, and when. Stored (also in a store made before markers existed),
added, listed and deleted through `mark` on a real DuckDB store, `--at` read as UTC
unless it names an offset, drawn on every time chart, and added on the Data page."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pandas as pd
import pytest
import sqlalchemy as sa
from conftest import write_jsonl
from logkit import T0, capi, event, pixel
from streamlit.testing.v1 import AppTest

from dashboard import cli
from dashboard.core.config import REPO_ROOT
from dashboard.ingest import ingest
from dashboard.outputs import charts
from dashboard.quality.daily import DAILY_MEASURES, series_from_frame
from dashboard.store.database import create_schema, make_engine, markers
from dashboard.store.markers import (
    Marker,
    MarkerError,
    add_marker,
    delete_marker,
    list_markers,
)

APP = str(REPO_ROOT / "dashboard" / "app.py")
AT_10 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC).timestamp()


@pytest.fixture
def db(tmp_path, config) -> str:
    """A real DuckDB store in tmp_path holding one day of events."""
    url = f"duckdb:///{tmp_path / 'store.duckdb'}"
    engine = make_engine(url)
    log = write_jsonl(
        tmp_path / "log.jsonl",
        [pixel(event("Purchase", T0, "o1")), capi([event("Purchase", T0, "o1")], T0 + 5)],
    )
    ingest([log], engine, config=config)
    engine.dispose()
    return url


def mark(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main(["mark", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_add_list_delete_through_the_cli(db, capsys):
    code, out, err = mark(capsys, "Hashed em on checkout", "--at", "2026-12-01T10:00Z", "--db", db)
    assert code == 0, err
    assert out.strip() == "added marker 1  2026-12-01T10:00:00Z  Hashed em on checkout"
    assert mark(capsys, "Earlier deploy", "--at", "2026-11-28T08:30Z", "--db", db)[0] == 0
    code, out, _ = mark(capsys, "--list", "--db", db)
    assert code == 0
    lines = out.strip().splitlines()
    # Oldest first, whatever order they were added in.
    assert lines[1:] == [
        "   2  2026-11-28T08:30:00Z  Earlier deploy",
        "   1  2026-12-01T10:00:00Z  Hashed em on checkout",
    ]
    code, out, _ = mark(capsys, "--delete", "2", "--db", db)
    assert code == 0 and "deleted marker 2" in out
    engine = make_engine(db)
    assert [(m.id, m.at, m.label) for m in list_markers(engine)] == [
        (1, AT_10, "Hashed em on checkout")
    ]
    engine.dispose()
    code, _, err = mark(capsys, "--delete", "2", "--db", db)
    assert code == 2 and "no marker 2" in err


def test_at_defaults_to_now(db, capsys, monkeypatch):
    monkeypatch.setattr("dashboard.core.clock.now", lambda: AT_10 + 42)
    assert mark(capsys, "Deploy", "--db", db)[0] == 0
    engine = make_engine(db)
    assert [m.at for m in list_markers(engine)] == [AT_10 + 42]
    engine.dispose()


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-01T10:00Z",
        "2026-12-01T10:00:00+00:00",
        "2026-12-01T11:00+01:00",
        "2026-12-01T05:00-05:00",
        "2026-12-01T10:00",  # no offset: UTC
        "2026-12-01 10:00:00",
    ],
)
def test_at_is_utc_unless_it_names_an_offset(db, capsys, text):
    assert mark(capsys, "x", "--at", text, "--db", db)[0] == 0
    engine = make_engine(db)
    assert [m.at for m in list_markers(engine)] == [AT_10]
    engine.dispose()


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01T10:00Z", "10:00", ""])
def test_a_bad_at_exits_2(db, capsys, text):
    with pytest.raises(SystemExit) as exited:
        cli.main(["mark", "x", "--at", text, "--db", db])
    assert exited.value.code == 2
    assert "--at" in capsys.readouterr().err


def test_bad_labels_and_calls_exit_2(db, capsys, tmp_path):
    code, _, err = mark(capsys, "x" * 201, "--db", db)
    assert code == 2 and "at most 200 characters" in err
    assert mark(capsys, "x" * 200, "--db", db)[0] == 0
    code, _, err = mark(capsys, "   ", "--db", db)
    assert code == 2 and "needs a label" in err
    code, _, err = mark(capsys, "--db", db)  # nothing to do
    assert code == 2
    code, _, err = mark(capsys, "x", "--list", "--db", db)  # two things at once
    assert code == 2
    code, _, err = mark(capsys, "--list", "--db", f"duckdb:///{tmp_path / 'none.duckdb'}")
    assert code == 2 and "no store" in err
    assert not (tmp_path / "none.duckdb").exists()


def test_a_store_made_before_markers_gets_the_table(tmp_path, config, capsys):
    url = f"duckdb:///{tmp_path / 'old.duckdb'}"
    engine = make_engine(url)
    ingest([write_jsonl(tmp_path / "log.jsonl", [pixel(event("Lead", T0, "l1"))])], engine)
    with engine.begin() as connection:  # as a store made by a version without markers
        connection.execute(sa.text("DROP TABLE markers"))
    engine.dispose()
    code, out, err = mark(capsys, "First marker", "--at", "2026-12-01T10:00Z", "--db", url)
    assert code == 0, err
    assert mark(capsys, "--list", "--db", url)[1].strip().endswith("First marker")


def test_create_schema_adds_the_markers_table_on_every_backend(engine):
    create_schema(engine)
    with engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE markers"))
    create_schema(engine)  # create_all: checkfirst adds what is missing, keeps the rest
    added = add_marker(engine, "  Hashed   em  ", AT_10)
    assert added.label == "Hashed em"  # one line: it is drawn on a chart
    assert list_markers(engine) == [added]
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(markers)).scalar() == 1
    assert delete_marker(engine, added.id) == added
    assert list_markers(engine) == []
    with pytest.raises(MarkerError):
        add_marker(engine, "far future", 5_000_000_000)


# ---------------------------------------------------------------------------
# Drawn on every time chart.
def marker_lines(figure) -> list[float]:
    return [s.x0 for s in figure.layout.shapes if s.line.dash == "dash" and s.x0 == s.x1]


def marker_texts(figure) -> list[str]:
    return [a.text for a in figure.layout.annotations if a.font.color == charts.MARKER_COLOR]


MARKER = Marker(7, AT_10, "Hashed em on checkout", AT_10)
FAR = Marker(8, AT_10 + 90 * 86_400, "Months later", AT_10)
DAYS = pd.to_datetime(["2026-11-30", "2026-12-01", "2026-12-02"])


def daily_frame() -> pd.DataFrame:
    """A per-day block frame with only the columns the charts read."""
    return pd.DataFrame(
        {
            "event_day": DAYS,
            "browser_events": [3, 4, 5],
            "server_events": [3, 4, 6],
            "server_rejected_by_meta": [0, 1, 0],
            "server_sent": [3, 5, 6],
            "emq_estimate": [5.0, 6.0, 7.0],
        }
    )


def test_a_marker_is_a_dashed_line_with_its_label_at_its_time():
    figure = charts.daily_volume(daily_frame(), markers=[MARKER, FAR])
    # Epoch milliseconds on a date axis: 1 Dec 2026 10:00 UTC. The marker three months
    # later is left out: it would stretch the axis.
    assert marker_lines(figure) == [AT_10 * 1000]
    assert marker_texts(figure) == ["Hashed em on checkout"]
    assert pd.Timestamp(figure.layout.shapes[0].x0, unit="ms") == pd.Timestamp("2026-12-01 10:00")
    long = Marker(9, AT_10, "x" * 200, AT_10)
    text = marker_texts(charts.daily_volume(daily_frame(), markers=[long]))[0]
    assert len(text) == charts.MARKER_TEXT_CHARS and text.endswith("…")


def test_every_time_chart_draws_the_markers(config):
    errors = pd.DataFrame(
        {
            "event_day": [date(2026, 12, 1)],
            "error_code": [100],
            "error_subcode": [None],
            "error_message": ["Invalid parameter"],
            "events": [2],
        }
    )
    series = series_from_frame(
        pd.DataFrame(columns=["event_day"]), date(2026, 11, 30), date(2026, 12, 2)
    )
    figures = [
        charts.daily_volume(daily_frame(), markers=[MARKER]),
        charts.emq_trend(daily_frame(), config, markers=[MARKER]),
        charts.errors_over_time(errors, markers=[MARKER]),
        *(charts.daily_measure(series, m, [MARKER]) for m in DAILY_MEASURES),
    ]
    for figure in figures:
        assert marker_lines(figure) == [AT_10 * 1000], figure.layout.title.text
        assert marker_texts(figure) == ["Hashed em on checkout"], figure.layout.title.text
    # Without markers, nothing is drawn.
    assert marker_lines(charts.daily_volume(daily_frame())) == []


def test_a_per_day_chart_shows_zeros_and_breaks_shares_on_a_day_without_events():
    series = series_from_frame(
        pd.DataFrame(columns=["event_day"]), date(2026, 11, 30), date(2026, 12, 2)
    )
    by_key = {m.key: m for m in DAILY_MEASURES}
    bars = charts.daily_measure(series, by_key["unhashed_pii"])
    assert list(bars.data[0].y) == [0, 0, 0]
    line = charts.daily_measure(series, by_key["event_coverage"], goal=0.75)
    assert line.data[0].connectgaps is False
    assert all(pd.isna(v) for v in line.data[0].y)


# ---------------------------------------------------------------------------
# The Data page's form.
def test_the_data_page_adds_lists_and_deletes_markers(db, monkeypatch):
    monkeypatch.setenv("EQM_DB_URL", db)
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("ui/pages/data.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(i.value == "No markers yet." for i in at.info)
    at.text_input(key="marker_label").input("Hashed em on checkout")
    at.date_input(key="marker_day").set_value(date(2026, 12, 1))
    at.time_input(key="marker_time").set_value(datetime(2026, 12, 1, 10, 0).time())
    at.button(key="btn_add_marker").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Marker 1 added" in s.value for s in at.success)
    table = next(d.value for d in at.dataframe if "Label" in d.value.columns)
    assert list(table["Label"]) == ["Hashed em on checkout"]
    assert list(table["Time"]) == ["2026-12-01T10:00:00Z"]
    engine = make_engine(db)
    assert [m.at for m in list_markers(engine)] == [AT_10]
    engine.dispose()
    # No label: refused with the reason (the field holds at most 200 characters), nothing
    # stored.
    at.button(key="btn_add_marker").click().run()
    assert not at.exception
    assert any("needs a label" in e.value for e in at.error)
    at.selectbox(key="marker_to_delete").select(1)
    at.button(key="btn_delete_marker").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(i.value == "No markers yet." for i in at.info)
