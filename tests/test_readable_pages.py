"""The Data and Freshness & delivery pages read for people: uploads by their own names,
history and quarantine without temporary paths or "None", errors explained, empty
states that say what is empty."""

from __future__ import annotations

import json
import re
import tempfile

import pandas as pd
import sqlalchemy as sa
from conftest import write_jsonl
from logkit import T0, capi, event
from streamlit.testing.v1 import AppTest

from dashboard.core.config import REPO_ROOT
from dashboard.ingest import ingest
from dashboard.ingest.uploads import ingest_uploads, upload_name
from dashboard.store import import_log
from dashboard.store.database import imports, make_engine, quarantine

APP = str(REPO_ROOT / "dashboard" / "app.py")


def _lines(records: list) -> bytes:
    return b"".join(
        (r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in records
    )


LOG = [
    capi([event("Purchase", T0, "p1")], sent_at=T0 + 60),
    b'{"kind": "capi_request", "sent_at": ',  # cut off: quarantined as malformed JSON
    capi([event("Lead", T0 + 100, "l1")], sent_at=T0 + 4000),
]


def test_uploads_are_named_as_uploaded_and_known_again(engine, config):
    summary = ingest_uploads([("orders.jsonl", _lines(LOG))], engine, config=config)
    assert summary.events_imported == 2 and summary.lines_quarantined == 1
    text = summary.to_text()
    temporary = tempfile.gettempdir()
    assert "upload: orders.jsonl" in text and temporary not in text
    with engine.connect() as connection:
        assert connection.execute(sa.select(imports.c.paths)).scalar_one() == (
            "upload: orders.jsonl"
        )
        assert connection.execute(sa.select(quarantine.c.path)).scalar_one() == (
            "upload: orders.jsonl"
        )
    lines = import_log.quarantined_lines(engine)
    assert list(lines["path"]) == ["upload: orders.jsonl"]
    assert lines["detail"][0].startswith("Not valid JSON")  # never None
    assert pd.isna(lines["idx"][0])  # the whole line, not "-1"
    history = import_log.import_history(engine)
    assert list(history["paths"]) == ["upload: orders.jsonl"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", history["started_at"][0])

    # The same upload again (another temporary folder): recognised by its content.
    again = ingest_uploads([("orders-copy.jsonl", _lines(LOG))], engine, config=config)
    assert again.events_imported == 0 and again.lines_quarantined == 0
    assert again.lines_already_imported == 3
    assert list(import_log.import_history(engine)["paths"]) == [
        "upload: orders-copy.jsonl",
        "upload: orders.jsonl",
    ]


def test_two_uploads_with_one_name_are_both_imported(duck_engine, config):
    first = _lines([capi([event("Purchase", T0, "a")], sent_at=T0)])
    second = _lines([capi([event("Lead", T0, "b")], sent_at=T0)])
    summary = ingest_uploads([("x.jsonl", first), ("x.jsonl", second)], duck_engine, config=config)
    assert summary.events_imported == 2 and summary.files == 2


def test_an_upload_named_like_a_glob_is_imported_under_its_name(duck_engine, config):
    data = _lines([capi([event("Purchase", T0, "a")], sent_at=T0)])
    summary = ingest_uploads([("events[2] *final?.jsonl", data)], duck_engine, config=config)
    assert summary.events_imported == 1
    assert list(import_log.import_history(duck_engine)["paths"]) == [
        "upload: events[2] *final?.jsonl"
    ]


def test_names_cover_a_folder_and_leave_other_paths_alone(duck_engine, tmp_path, config):
    folder = tmp_path / "drop"
    (folder / "day1").mkdir(parents=True)
    write_jsonl(folder / "day1" / "a.jsonl", [capi([event("Lead", T0, "a")], sent_at=T0)])
    other = write_jsonl(tmp_path / "b.jsonl", [capi([event("Lead", T0, "b")], sent_at=T0)])
    summary = ingest([folder, other], duck_engine, config=config, names={folder: "shared drop"})
    assert set(summary.formats) == {"shared drop/day1/a.jsonl", str(other.resolve())}


def test_upload_names_and_old_upload_paths():
    assert upload_name("C:\\Users\\me\\log.jsonl", 1) == "log.jsonl"
    assert upload_name("..", 2) == "upload-2"
    old = f"{tempfile.gettempdir()}/tmpab12cd_9/x.jsonl"  # what the Data page used to store
    assert import_log.shown_path(old) == "upload: x.jsonl"
    assert import_log.shown_path("/var/log/eqm/x.jsonl") == "/var/log/eqm/x.jsonl"
    assert import_log.utc_text(T0 + 0.123456) == "2025-11-20 10:00:00"
    assert import_log.utc_text(None) is None


# ---------------------------------------------------------------------------
# The pages, through AppTest, on hand-built stores.
def _app(tmp_path, monkeypatch, records: list, name: str = "log.jsonl") -> AppTest:
    url = f"duckdb:///{tmp_path / 'store.duckdb'}"
    engine = make_engine(url)
    ingest_uploads([(name, _lines(records))], engine)
    engine.dispose()
    monkeypatch.setenv("EQM_DB_URL", url)
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _frames(at) -> list[pd.DataFrame]:
    return [d.value for d in at.dataframe]


def test_data_page_without_quarantine_says_so(tmp_path, monkeypatch):
    at = _app(tmp_path, monkeypatch, [LOG[0], LOG[2]], name="clean.jsonl")
    at.switch_page("ui/pages/data.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(i.value == "Nothing quarantined: every line read was imported." for i in at.info)
    history = next(f for f in _frames(at) if "Files" in f.columns)
    assert list(history["Files"]) == ["upload: clean.jsonl"]
    assert not any("No events in this selection" in i.value for i in at.info)


def test_data_page_quarantine_shows_upload_name_and_detail(tmp_path, monkeypatch):
    at = _app(tmp_path, monkeypatch, LOG, name="orders.jsonl")
    at.switch_page("ui/pages/data.py").run()
    assert not at.exception, [e.value for e in at.exception]
    lines = next(f for f in _frames(at) if "Detail" in f.columns)
    assert list(lines["File"]) == ["upload: orders.jsonl"]
    assert "None" not in lines.astype(str).to_numpy().ravel().tolist()


TOKEN_ERROR = {"code": 190, "error_subcode": 463, "message": "Session has expired"}


def test_freshness_page_explains_a_token_error(tmp_path, monkeypatch):
    records = [
        capi([event("Purchase", T0, "p1")], sent_at=T0 + 5 * 3600),
        capi([event("Lead", T0, "l1")], sent_at=T0 + 60, status=400, error=TOKEN_ERROR),
    ]
    at = _app(tmp_path, monkeypatch, records)
    at.switch_page("ui/pages/freshness_delivery.py").run()
    assert not at.exception, [e.value for e in at.exception]
    errors = next(f for f in _frames(at) if "Meaning" in f.columns)
    assert "How to fix" in errors.columns
    assert "expired" in errors["Meaning"][0] and "access token" in errors["How to fix"][0]
    lags = next(f for f in _frames(at) if "Median lag" in f.columns)
    assert lags["Median lag"][0] == "5.0 h"  # a duration, not 18000 seconds


def test_freshness_page_without_rejections_says_what_is_empty(tmp_path, monkeypatch):
    at = _app(tmp_path, monkeypatch, [LOG[0], LOG[2]])
    at.switch_page("ui/pages/freshness_delivery.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(i.value == "No rejected batches in this selection." for i in at.info)
    assert not any("Meaning" in f.columns for f in _frames(at))
