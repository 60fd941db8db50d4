"""The Streamlit app through AppTest: every page and filter, numbers equal to the indicators API."""

from __future__ import annotations

import ast
import base64
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import plotly.io
import pytest
from streamlit.testing.v1 import AppTest

from dashboard.core import formatting as fmt
from dashboard.core.config import REPO_ROOT, SAMPLE_LOG_PATH, load_config
from dashboard.core.filters import Filters
from dashboard.ingest import ingest
from dashboard.quality.blocks import overall_block
from dashboard.quality.emq import tier
from dashboard.store.database import make_engine
from dashboard.store.queries.blocks import data_range

APP = str(REPO_ROOT / "dashboard" / "app.py")
PAGE_FILES = sorted(
    p.relative_to(REPO_ROOT / "dashboard").as_posix()
    for p in (REPO_ROOT / "dashboard" / "ui" / "pages").glob("*.py")
    if p.name != "__init__.py"
)


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory):
    url = f"duckdb:///{tmp_path_factory.mktemp('app') / 'store.duckdb'}"
    engine = make_engine(url)
    ingest([SAMPLE_LOG_PATH], engine)
    engine.dispose()
    return url


def last_day(url: str):
    engine = make_engine(url)
    span = data_range(engine)
    engine.dispose()
    return span[1]


@pytest.fixture(autouse=True)
def clock_after_the_sample(sample_store, monkeypatch):
    """Today is 60 days after the sample's last day whatever the machine's date, so
    "Last 28 days" falls back to the sample's latest 28 days, as it will for anyone
    opening the demo long after the sample was made."""
    today = last_day(sample_store) + timedelta(days=60)
    monkeypatch.setattr("dashboard.core.clock.today", lambda: today)
    return today


@pytest.fixture
def app(sample_store, monkeypatch):
    monkeypatch.setenv("EQM_DB_URL", sample_store)
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def default_filters(url: str) -> Filters:
    engine = make_engine(url)
    first, last = data_range(engine)
    engine.dispose()
    return Filters(since=last - timedelta(days=27), until=last)


def expected_overview(url: str, filters: Filters) -> dict[str, str]:
    engine = make_engine(url)
    config = load_config()
    block = overall_block(engine, filters, config)
    engine.dispose()
    return {
        "EMQ estimate": f"{fmt.score(block['emq_estimate'])} · {tier(block['emq_estimate'], config)}",
        "Event coverage": fmt.percent(block["event_coverage"]),
        "Likely double counts": fmt.compact(block["dedup"]["likely_double_counted"]),
        "Median lag": fmt.duration(block["freshness"]["median_lag_s"]),
        "Rejected by Meta": fmt.compact(block["server_rejected_by_meta"]),
        "Events with plaintext PII": fmt.compact(block["unhashed_pii"]),
        "Events (browser / server)": f"{fmt.compact(block['browser_events'])} / {fmt.compact(block['server_events'])}",
    }


def test_every_page_file_is_registered_in_navigation():
    tree = ast.parse(Path(APP).read_text())
    registered = sorted(
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "Page"
    )
    assert registered == PAGE_FILES


def test_overview_numbers_match_the_indicators(app, sample_store):
    shown = metrics(app)
    for label, value in expected_overview(sample_store, default_filters(sample_store)).items():
        assert shown[label] == value, label
    assert app.dataframe, "the diagnostics table is shown"


def test_campaign_filter_changes_overview_and_url(app, sample_store):
    campaign = app.multiselect(key="f_campaign").options[1]
    app.multiselect(key="f_campaign").select(campaign).run()
    assert not app.exception
    filters = Filters(**{**default_filters(sample_store).__dict__, "campaigns": (campaign,)})
    shown = metrics(app)
    for label, value in expected_overview(sample_store, filters).items():
        assert shown[label] == value, label
    assert app.query_params["campaign"] in (campaign, [campaign])


def test_period_and_stage_filters(app, sample_store):
    app.selectbox(key="f_period").select("All data").run()
    stage = "Qualified"
    app.multiselect(key="f_stage").select(stage).run()
    assert not app.exception
    shown = metrics(app)
    for label, value in expected_overview(sample_store, Filters(stages=(stage,))).items():
        assert shown[label] == value, label


def test_url_query_string_sets_the_filters(sample_store, monkeypatch):
    monkeypatch.setenv("EQM_DB_URL", sample_store)
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["period"] = "All data"
    at.query_params["channel"] = "server"
    at.run()
    assert at.multiselect(key="f_channel").value == ["server"]
    shown = metrics(at)
    assert shown["Events (browser / server)"].startswith("0 / ")


@pytest.mark.parametrize("page", PAGE_FILES)
def test_each_page_runs_on_the_sample(app, page):
    app.switch_page(page).run()
    assert not app.exception, [e.value for e in app.exception]
    assert app.title and app.title[0].value


def test_coverage_page_numbers(app, sample_store):
    app.switch_page("ui/pages/coverage_dedup.py").run()
    engine = make_engine(sample_store)
    block = overall_block(engine, default_filters(sample_store), load_config())
    engine.dispose()
    shown = metrics(app)
    assert shown["Event coverage"] == fmt.percent(block["event_coverage"])
    assert shown["Coverage, any dedup key"] == fmt.percent(block["event_coverage_any_key"])
    assert shown["Server events without event_id"] == fmt.compact(block["server_without_event_id"])


def test_empty_slice_says_so(app):
    app.selectbox(key="f_period").select("All data").run()
    app.multiselect(key="f_event").select(app.multiselect(key="f_event").options[0]).run()
    app.multiselect(key="f_channel").select("browser").run()
    app.switch_page("ui/pages/freshness_delivery.py").run()  # browser only: no server events
    assert not app.exception
    assert any("No events in this selection" in i.value for i in app.info)


def test_empty_store_offers_the_sample(tmp_path, monkeypatch):
    monkeypatch.setenv("EQM_DB_URL", f"duckdb:///{tmp_path / 'empty.duckdb'}")
    at = AppTest.from_file(APP, default_timeout=180).run()
    assert not at.exception
    assert any("store is empty" in i.value for i in at.info)
    at.button(key="btn_import_sample").click().run()
    assert not at.exception
    assert "EMQ estimate" in metrics(at)


def test_match_quality_what_to_fix_shows_recoverable(app, sample_store):
    from dashboard.quality.match_quality import what_to_fix

    app.selectbox(key="f_period").select("All data").run()
    app.switch_page("ui/pages/match_quality.py").run()
    assert not app.exception, [e.value for e in app.exception]
    assert any("Recoverable events lack a valid value" in c.value for c in app.caption)
    shown = app.dataframe[0].value  # "What to fix next" is the page's first table
    assert list(shown.columns) == [
        "Event",
        "Action source",
        "Parameter",
        "Server events",
        "Coverage now (%)",
        "Recoverable events",
        "Recoverable (%)",
        "EMQ now",
        "EMQ if fixed",
        "Recoverable gain",
        "Gain if all fixed",
    ]
    engine = make_engine(sample_store)
    expected = what_to_fix(engine, Filters(), load_config(), 15)
    engine.dispose()
    top = shown.iloc[0].tolist()
    assert top[:3] == expected.loc[0, ["event_name", "action_source", "parameter"]].tolist()
    assert int(str(top[5]).replace(",", "")) == expected.loc[0, "recoverable_events"]


def test_last_28_days_falls_back_with_a_plain_banner(app, sample_store, clock_after_the_sample):
    # Today is 60 days after the sample's last day: "Last 28 days" up to today hold nothing.
    last = last_day(sample_store)
    banner = " ".join(w.value for w in app.warning)
    assert f"Showing data through {fmt.day(last)}, 60 days ago: nothing received since" in banner
    assert fmt.day(last - timedelta(days=27)) in app.caption[0].value
    # The pipeline itself is silent: the Overview says so before any scorecard.
    assert any("no server event sent for" in e.value for e in app.error)
    # The comparison period (the 28 days before) starts before the sample's first day:
    # no delta anywhere, and the caption says why.
    assert all(not m.delta for m in app.metric)
    assert any("No comparison: no data before 1 Oct 2026" in c.value for c in app.caption)


def _values(encoded) -> list:
    """A plotly array from a figure's JSON: a list, or a typed array (dtype + base64)."""
    if isinstance(encoded, dict):
        return np.frombuffer(base64.b64decode(encoded["bdata"]), dtype=encoded["dtype"]).tolist()
    return list(encoded)


def test_a_period_ending_today_shows_its_empty_days(sample_store, monkeypatch):
    # Three days after the sample ends: the period reaches today, the two whole days
    # since the sample's end hold no events (today is not over, so not counted).
    last = last_day(sample_store)
    monkeypatch.setattr("dashboard.core.clock.today", lambda: last + timedelta(days=3))
    monkeypatch.setenv("EQM_DB_URL", sample_store)
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception
    assert not any("Showing data through" in w.value for w in at.warning)
    assert any(
        "No events at all on 2 days of this period in the store" in w.value for w in at.warning
    )
    chart = next(c for c in at.get("plotly_chart") if "Events per day" in c.proto.spec)
    figure = plotly.io.from_json(chart.proto.spec)
    assert figure.layout.xaxis.tickformat == "%d %b"  # dates, not "23:59:59.9996"
    browser = figure.data[0]
    # The line runs to today, the days after the sample at 0 (no bridged outage).
    assert str(browser.x[-1]).startswith((last + timedelta(days=3)).isoformat())
    assert list(_values(browser.y)[-3:]) == [0, 0, 0]


def test_tiers_and_deltas_read_as_shown(app):
    app.selectbox(key="f_period").select("Custom").run()
    app.date_input(key="f_dates").set_value((date(2026, 10, 22), date(2026, 11, 4))).run()
    assert not app.exception
    # 22 Oct - 4 Nov against 8 - 21 Oct: both inside the sample, so deltas are shown and
    # named, and none reads "-0.0".
    assert any("Changes compare with 8 Oct 2026 – 21 Oct 2026" in c.value for c in app.caption)
    deltas = [m.delta for m in app.metric if m.delta]
    assert deltas and not any("-0.0" in d or "+0.0" in d for d in deltas)


@pytest.mark.parametrize("page", PAGE_FILES)
def test_every_table_reads_for_people(app, page):
    """Human headers, and no "None" or empty cell where a value is missing ("–")."""
    app.selectbox(key="f_period").select("All data").run()
    app.switch_page(page).run()
    assert not app.exception
    for table in app.dataframe:
        frame = table.value
        for header in frame.columns:
            # event_id, external_id and fbp are Meta's own field names, kept as such.
            assert "_" not in header or header in ("event_id", "external_id"), (page, header)
        assert not frame.isna().any().any(), (page, list(frame.columns))
        assert not frame.astype(str).isin(["None", "nan", "NaN", "<NA>"]).any().any(), page


def test_a_store_made_before_the_per_person_table_fills_it_when_opened(
    sample_store, tmp_path, monkeypatch
):
    """Match quality's recoverable counts read `person_first_valid`; a store made by an
    older version has none of its rows, and opening the dashboard builds them."""
    import shutil

    import sqlalchemy as sa

    from dashboard.quality.match_quality import what_to_fix
    from dashboard.store import people
    from dashboard.store.database import events, person_first_valid, store_meta

    old = tmp_path / "old.duckdb"
    shutil.copy(sample_store.removeprefix("duckdb:///"), old)
    engine = make_engine(f"duckdb:///{old}")
    expected = what_to_fix(engine, Filters(), load_config(), 15)
    assert expected.loc[0, "recoverable_events"] > 0
    with engine.begin() as connection:
        # A store made before the table and the masks: empty table, masks NULL.
        connection.execute(sa.delete(person_first_valid))
        connection.execute(sa.update(events).values(recoverable_params=None))
        connection.execute(sa.delete(store_meta).where(store_meta.c.key == people.BUILT))
    assert what_to_fix(engine, Filters(), load_config(), 15).loc[0, "recoverable_events"] == 0
    engine.dispose()

    monkeypatch.setenv("EQM_DB_URL", f"duckdb:///{old}")
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.selectbox(key="f_period").select("All data").run()
    at.switch_page("ui/pages/match_quality.py").run()
    assert not at.exception, [e.value for e in at.exception]
    top = at.dataframe[0].value.iloc[0].tolist()
    assert int(str(top[5]).replace(",", "")) == expected.loc[0, "recoverable_events"]
