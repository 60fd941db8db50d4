"""The Events page through AppTest: a finding in the URL lists its events (the count the
drill-down API gives), the chooser writes its selection to the URL, paging and sorting
land in the URL, and a bad link says why."""

from __future__ import annotations

from datetime import timedelta

import pytest
from streamlit.testing.v1 import AppTest

from dashboard.core.config import REPO_ROOT, SAMPLE_LOG_PATH, load_config
from dashboard.core.filters import Filters
from dashboard.core.selection import Selection
from dashboard.ingest import ingest
from dashboard.quality import drilldown
from dashboard.store.database import make_engine
from dashboard.store.queries.blocks import data_range

APP = str(REPO_ROOT / "dashboard" / "app.py")
PAGE = "ui/pages/events.py"


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory):
    url = f"duckdb:///{tmp_path_factory.mktemp('events_page') / 'store.duckdb'}"
    engine = make_engine(url)
    ingest([SAMPLE_LOG_PATH], engine)
    engine.dispose()
    return url


@pytest.fixture(autouse=True)
def after_the_sample(sample_store, monkeypatch):
    engine = make_engine(sample_store)
    last = data_range(engine)[1]
    engine.dispose()
    monkeypatch.setattr("dashboard.core.clock.today", lambda: last + timedelta(days=60))
    monkeypatch.setenv("EQM_DB_URL", sample_store)


def open_events(query: dict[str, str]) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for key, value in {"period": "All data", **query}.items():
        at.query_params[key] = value
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def expected_total(url: str, selection: Selection) -> int:
    engine = make_engine(url)
    _, total = drilldown.event_page(engine, Filters(), load_config(), selection, limit=1)
    engine.dispose()
    return total


def test_a_finding_in_the_url_lists_its_events(sample_store):
    selection = Selection("finding", finding="token_errors")
    at = open_events(selection.to_query())
    total = expected_total(sample_store, selection)
    assert total > 0
    text = " ".join(m.value for m in at.markdown)
    assert f"**{total:,}** events; page 1 of 1" in text
    assert at.subheader[0].value.startswith("Server events rejected for an access token")
    shown = at.dataframe[0].value
    assert len(shown) == total and set(shown["Field"]) == {"batch"}
    assert all(why.startswith("Meta error 190") for why in shown["Why"])


def test_paging_and_sorting_land_in_the_url(sample_store):
    selection = Selection("finding", finding="unhashed_pii")
    at = open_events({**selection.to_query(), "size": "100", "page": "2", "order": "asc"})
    total = expected_total(sample_store, selection)
    assert at.number_input(key="ev_page").value == 2
    assert len(at.dataframe[0].value) == min(100, total - 100)
    assert at.query_params["order"] in ("asc", ["asc"])
    assert at.query_params["page"] in ("2", ["2"])


def test_the_chooser_writes_its_selection_to_the_url(sample_store):
    at = open_events({})
    at.radio(key="ev_kind").set_value("parameter").run()
    at.selectbox(key="ev_param").set_value("em").run()
    at.selectbox(key="ev_status").set_value("unhashed").run()
    at.button(key="ev_go").click().run()
    assert not at.exception
    assert at.query_params["list"] in ("parameter", ["parameter"])
    assert at.query_params["parameter"] in ("em", ["em"])
    total = expected_total(sample_store, Selection("parameter", parameter="em", status="unhashed"))
    assert total > 0
    assert f"**{total:,}** events" in " ".join(m.value for m in at.markdown)


def test_a_bad_link_says_why():
    at = open_events({"list": "parameter", "parameter": "email", "status": "invalid"})
    assert "unknown parameter 'email'" in at.error[0].value
