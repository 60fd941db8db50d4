"""The Funnel page through AppTest on the bundled sample: it follows the sidebar filters
and the URL (no campaign selector of its own), draws stages not sent as such, and its
tables never show "None"."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from dashboard.core.config import REPO_ROOT, SAMPLE_LOG_PATH, load_config
from dashboard.core.filters import Filters
from dashboard.ingest import ingest
from dashboard.store.database import make_engine
from dashboard.store.queries.funnel import funnel_people

APP = str(REPO_ROOT / "dashboard" / "app.py")
PAGE = "ui/pages/funnel.py"
# In the sample it sends Qualified and Closed won only: no Contact, no Schedule.
WHATSAPP = "whatsapp_chat_promo"


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory):
    url = f"duckdb:///{tmp_path_factory.mktemp('funnel_page') / 'store.duckdb'}"
    engine = make_engine(url)
    ingest([SAMPLE_LOG_PATH], engine)
    engine.dispose()
    return url


def funnel_page(url: str, monkeypatch, **params: str) -> AppTest:
    monkeypatch.setenv("EQM_DB_URL", url)
    at = AppTest.from_file(APP, default_timeout=120)
    for name, value in params.items():
        at.query_params[name] = value
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def funnel_specs(at: AppTest) -> dict[str, dict]:
    """Plotly figures on the page by title."""
    specs = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    return {spec["layout"]["title"]["text"]: spec for spec in specs}


def assert_no_none(at: AppTest) -> None:
    assert at.dataframe, "the page shows tables"
    for table in at.dataframe:
        frame = table.value
        assert not frame.isna().any().any(), frame[frame.isna().any(axis=1)]
        assert not (frame.astype(str) == "None").any().any(), frame


def test_funnel_follows_the_campaign_in_the_url(sample_store, monkeypatch):
    at = funnel_page(sample_store, monkeypatch, period="All data", campaign=WHATSAPP)
    assert at.multiselect(key="f_campaign").value == [WHATSAPP]
    assert not at.main.selectbox  # the sidebar's Campaign filter is the only campaign choice

    engine = make_engine(sample_store)
    expected = funnel_people(engine, Filters(campaigns=(WHATSAPP,)), load_config())
    engine.dispose()
    people = expected[expected["funnel"] == "crm"].set_index("funnel_stage")["people"]
    qualified, won = int(people["Qualified"]), int(people["Closed won"])

    specs = funnel_specs(at)
    trace = specs[f"CRM funnel · {WHATSAPP}"]["data"][0]
    assert trace["y"] == ["Contacted", "Qualified", "Demo scheduled", "Closed won"]
    assert trace["x"] == [0, qualified, 0, won]
    assert trace["text"][0] == trace["text"][2] == "not sent"
    assert trace["text"][3] == f"{won:,} · {won / qualified:.1%} of Qualified"
    assert not any(title.startswith("WEB funnel") for title in specs)  # no web step sent

    tables = [t.value for t in at.dataframe if "Conversion (%)" in t.value.columns]
    (conversion,) = tables
    rows = conversion.set_index("Funnel stage")
    assert list(rows.loc[["Contacted", "Demo scheduled"], "Note"]) == ["not sent", "not sent"]
    # Qualified -> Closed won across Demo scheduled (on the whole sample: 91 / 666 = 13.7%)
    assert rows.loc["Closed won", "From stage"] == "Qualified"
    # A column with gaps ("–") is text once shown.
    assert str(rows.loc["Closed won", "Conversion (%)"]) == f"{won / qualified * 100:.1f}"
    assert "Demo scheduled was not sent" in rows.loc["Closed won", "Note"]
    assert_no_none(at)


def test_funnel_of_several_campaigns_says_how_to_see_one(sample_store, monkeypatch):
    at = funnel_page(sample_store, monkeypatch, period="All data")
    captions = " ".join(c.value for c in at.caption)
    assert "pick it under **Campaign** in the sidebar" in captions
    engine = make_engine(sample_store)
    expected = funnel_people(engine, Filters(), load_config())
    engine.dispose()
    campaigns = len(at.multiselect(key="f_campaign").options)
    specs = funnel_specs(at)
    trace = specs[f"CRM funnel · {campaigns} campaigns"]["data"][0]
    crm = expected[expected["funnel"] == "crm"].set_index("funnel_stage")["people"]
    assert trace["x"] == [int(crm[s]) for s in trace["y"]]  # distinct people, from SQL
    revenue = next(t.value for t in at.dataframe if "Currency" in t.value.columns)
    assert not revenue.duplicated(["Campaign", "Currency"]).any()
    assert pd.api.types.is_numeric_dtype(revenue["Revenue"])
    assert_no_none(at)
