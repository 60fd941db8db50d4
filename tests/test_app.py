"""The Streamlit app through AppTest: every page and filter, numbers equal to the indicators API."""

from __future__ import annotations

import ast
from datetime import timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import formatting as fmt
from dashboard.config import REPO_ROOT, SAMPLE_LOG_PATH, load_config
from dashboard.indicators import Filters, data_range, overall_block, tier
from dashboard.ingest import ingest
from dashboard.store import make_engine

APP = str(REPO_ROOT / "dashboard" / "app.py")
PAGE_FILES = sorted(
    p.relative_to(REPO_ROOT / "dashboard").as_posix()
    for p in (REPO_ROOT / "dashboard" / "app_pages").glob("*.py")
    if p.name != "__init__.py"
)


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory):
    url = f"duckdb:///{tmp_path_factory.mktemp('app') / 'store.duckdb'}"
    engine = make_engine(url)
    ingest([SAMPLE_LOG_PATH], engine)
    engine.dispose()
    return url


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
        "Rejected events": fmt.compact(block["server_rejected_by_meta"]),
        "Unhashed PII": fmt.compact(block["unhashed_pii"]),
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
    app.switch_page("app_pages/coverage_dedup.py").run()
    engine = make_engine(sample_store)
    block = overall_block(engine, default_filters(sample_store), load_config())
    engine.dispose()
    shown = metrics(app)
    assert shown["Event coverage (event_id)"] == fmt.percent(block["event_coverage"])
    assert shown["Coverage with any dedup key"] == fmt.percent(block["event_coverage_any_key"])
    assert shown["Server events without event_id"] == fmt.compact(block["server_without_event_id"])


def test_empty_slice_says_so(app):
    app.selectbox(key="f_period").select("All data").run()
    app.multiselect(key="f_event").select(app.multiselect(key="f_event").options[0]).run()
    app.multiselect(key="f_channel").select("browser").run()
    app.switch_page("app_pages/freshness_delivery.py").run()  # browser only: no server events
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
