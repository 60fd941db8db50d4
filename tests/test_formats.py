"""The log formats users already have, read from payloads real integrations publish.

Every format's test file is written by tests/formatkit.py, which follows the
integration's own logging code, around the request bodies and Meta answers copied from
real integrations' tests (tests/fixtures/real_payloads.py: Segment, Meta's and Stape's
server-side GTM tags, WooCommerce, RudderStack's recorded errors). Their quirks come
with them: string event_time, user_data keys Meta ignores, list-valued external_id,
plaintext in hashed fields, malformed fbp/fbc, a 1973 event_time, an ISO event_time.

The 14 calls of `real_calls()` (i: event, answer):
   0 Purchase 200 · 1 Purchase 190 · 2 Purchase 200 · 3 AddToCart 2804003 · 4 Initiate 200
   5 identify (ISO event_time: quarantined) · 6 PageView 17 · 7 Search 200 · 8 ViewContent 190
   9 Test1 (1973: quarantined) · 10 test 2804003 · 11 test 200 · 12 AppendValue no answer
  13 Purchase 17
so 12 events import: 5 accepted (0 2 4 7 11), 6 rejected (1 3 6 8 10 13), 1 unknown (12).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import write_jsonl
from formatkit import (
    APPSECRET_PROOF,
    TOKEN,
    Carried,
    node_sdk_calls,
    real_calls,
    write_bodies,
    write_body_array,
    write_form_bodies,
    write_node_sdk,
    write_python_sdk_debug,
    write_stape_bigquery_csv,
    write_stape_bigquery_jsonl,
    write_stape_cloud_logging,
    write_stape_console,
    write_v1,
    write_woocommerce,
)
from logkit import pixel

from dashboard.core.config import REPO_ROOT
from dashboard.core.filters import Filters
from dashboard.ingest import ingest
from dashboard.ingest.formats import FORMATS
from dashboard.outputs.report import build_report
from dashboard.store.database import events, make_engine, quarantine

DATASET = "1234567890123"
IMPORTED, QUARANTINED_EVENTS = 12, 2
DELIVERY = {"accepted": 5, "rejected": 6, "unknown": 1}
ERRORS = Counter({(190, None): 2, (100, 2804003): 2, (17, None): 2})


def _write_all(write, path: Path, calls=None) -> Path:
    return write(path, real_calls() if calls is None else calls)


# name -> (file name, writer, format detected, what the format carries beyond bodies)
FORMAT_FILES = {
    "v1": ("log.jsonl", write_v1, "eqm-v1", Carried()),
    "bodies": ("bodies.ndjson", write_bodies, "capi-body", Carried(sent_at=False, answer="none")),
    "form": ("bodies.txt", write_form_bodies, "capi-body", Carried(sent_at=False, answer="none")),
    "array": (
        "bodies.json",
        write_body_array,
        "capi-body-json",
        Carried(sent_at=False, answer="none"),
    ),
    "python-sdk": (
        "debug.log",
        write_python_sdk_debug,
        "python-sdk",
        Carried(sent_at=False, answer="none"),
    ),
    "stape": ("sgtm.jsonl", write_stape_console, "sgtm", Carried(sent_at=False)),
    "stape-cloud-logging": ("sgtm-cl.jsonl", write_stape_cloud_logging, "sgtm", Carried()),
    "stape-bigquery": ("sgtm-bq.jsonl", write_stape_bigquery_jsonl, "sgtm", Carried()),
    "stape-bigquery-csv": ("sgtm-bq.csv", write_stape_bigquery_csv, "sgtm", Carried()),
    "woocommerce": ("facebook_for_woocommerce.log", write_woocommerce, "woocommerce", Carried()),
    "node-sdk": (
        "node.log",
        write_node_sdk,
        "node-sdk",
        Carried(sent_at=False, answer="no_error_body"),
    ),
}


def _report(engine) -> dict:
    report = build_report(engine, Filters(), _config())
    report.pop("generated_at")
    return report


def _config():
    from dashboard.core.config import load_config

    return load_config()


def _store(tmp_path: Path, name: str):
    return make_engine(f"duckdb:///{tmp_path / (name + '.duckdb')}")


def _deliveries(engine) -> tuple[Counter, Counter, int]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(events.c.delivery, events.c.error_code, events.c.error_subcode)
        ).all()
        quarantined = connection.execute(sa.select(sa.func.count()).select_from(quarantine))
        return (
            Counter(row.delivery for row in rows),
            Counter((r.error_code, r.error_subcode) for r in rows if r.delivery == "rejected"),
            quarantined.scalar(),
        )


@pytest.mark.parametrize("name", [n for n in FORMAT_FILES if n != "node-sdk"])
def test_each_format_is_detected_and_reads_the_real_payloads(tmp_path, name):
    file_name, write, detected, carried = FORMAT_FILES[name]
    path = _write_all(write, tmp_path / file_name)
    engine = _store(tmp_path, name)
    summary = ingest([path], engine, default_dataset=DATASET)
    assert summary.formats[str(path.resolve())].split(" ")[0] == detected
    assert summary.accounted()
    assert (summary.events_imported, summary.events_quarantined) == (IMPORTED, QUARANTINED_EVENTS)
    # The ISO event_time (Segment's custom event) and the 1973 one (Meta's GTM tag test).
    assert summary.quarantined_by_reason == {
        "event_time not a number": 1,
        "event_time out of range": 1,
    }
    deliveries, errors, quarantined = _deliveries(engine)
    assert quarantined == QUARANTINED_EVENTS
    if carried.answer == "none":
        assert deliveries == {"unknown": IMPORTED}
    else:
        assert deliveries == DELIVERY
        assert errors == ERRORS
    with engine.connect() as connection:
        datasets = connection.execute(sa.select(events.c.dataset_id).distinct()).scalars().all()
        defaulted = connection.execute(
            sa.select(sa.func.count()).where(events.c.sent_at_defaulted)
        ).scalar()
    assert datasets == [DATASET]
    assert defaulted == (0 if carried.sent_at else IMPORTED)
    engine.dispose()


def test_node_sdk_prints_nothing_for_a_call_without_answer(tmp_path):
    path = write_node_sdk(tmp_path / "node.log", real_calls())
    engine = _store(tmp_path, "node")
    summary = ingest([path], engine)
    assert summary.formats[str(path.resolve())].startswith("node-sdk")
    # Calls 5 (ISO, no answer) and 12 (no answer) are not in the output; call 9 is.
    assert (summary.events_imported, summary.events_quarantined) == (11, 1)
    deliveries, errors, _ = _deliveries(engine)
    assert deliveries == {"accepted": 5, "rejected": 6}
    # The SDK logs the status of a failed call, not Meta's error body.
    assert errors == {(None, None): 6}
    # Lines: "Server listening", 12 calls x (request, answer or body, "GET /health"),
    # and the other two calls' "GET /health".
    assert summary.lines_read == 1 + 12 * 3 + 2
    assert summary.lines_skipped == {
        "not a Meta events request": 1 + 14,
        "part of a multi-line log entry": 12,
    }
    engine.dispose()


@pytest.mark.parametrize("name", [n for n in FORMAT_FILES if n != "v1"])
def test_one_set_of_calls_gives_the_same_report_in_every_format(tmp_path, name):
    """The same calls, with browser twins for the ids they carry, imported from the format
    and from a v1 log written with the same losses (what the format cannot carry): the
    whole JSON report is identical, dedup and coverage included."""
    file_name, write, _, carried = FORMAT_FILES[name]
    calls = node_sdk_calls(real_calls()) if name == "node-sdk" else real_calls()
    browser = tmp_path / "pixel.jsonl"
    twins = [
        pixel(dict(call.body["data"][0]), sent_at=call.sent_at - 2, dataset=DATASET)
        for call in calls
        if call.body["data"][0].get("event_id")
        and str(call.body["data"][0]["event_time"]).isdigit()
    ]
    assert len(twins) >= 4
    write_jsonl(browser, twins)
    from_format = _store(tmp_path, "format")
    ingest([browser, write(tmp_path / file_name, calls)], from_format, default_dataset=DATASET)
    from_v1 = _store(tmp_path, "v1")
    ingest([browser, write_v1(tmp_path / "same.jsonl", calls, carried)], from_v1)
    expected = _report(from_v1)
    assert expected["overall"]["event_coverage"] is not None
    assert _report(from_format) == expected


def test_an_answer_read_by_a_later_import_updates_its_request(engine, tmp_path):
    """sGTM logs write the answer lines after other lines; an import that ends between
    a request and its answer stores the request as unknown, and the next import's answer
    makes it rejected, leaving dedup (its browser twin becomes browser_only)."""
    calls = real_calls()
    log = write_stape_console(tmp_path / "sgtm.jsonl", calls)
    lines = log.read_bytes().splitlines(keepends=True)
    twin = calls[13].body["data"][0]  # the WooCommerce Purchase: rate-limited (17)
    browser = tmp_path / "pixel.jsonl"
    write_jsonl(browser, [pixel(dict(twin), sent_at=calls[13].sent_at - 2, dataset=DATASET)])
    # Up to call 13's request, before its answer (answers follow two calls later).
    cut = next(
        i for i, line in enumerate(lines) if b'"Type":"Request"' in line and b"trace-13" in line
    )
    growing = tmp_path / "growing" / "sgtm.jsonl"
    growing.parent.mkdir()
    growing.write_bytes(b"".join(lines[: cut + 1]))
    ingest([browser, growing], engine)
    with engine.connect() as connection:
        before = connection.execute(
            sa.select(events.c.channel, events.c.delivery, events.c.dedup_status).where(
                events.c.event_id == twin["event_id"]
            )
        ).all()
    assert sorted(before) == [
        ("browser", "unknown", "deduplicated"),
        ("server", "unknown", "deduplicated"),
    ]
    growing.write_bytes(b"".join(lines))
    ingest([browser, growing], engine)
    with engine.connect() as connection:
        after = connection.execute(
            sa.select(
                events.c.channel, events.c.delivery, events.c.error_code, events.c.dedup_status
            ).where(events.c.event_id == twin["event_id"])
        ).all()
        deliveries = Counter(
            connection.execute(
                sa.select(events.c.delivery).where(events.c.channel == "server")
            ).scalars()
        )
    assert sorted(after) == [
        ("browser", "unknown", None, "browser_only"),
        ("server", "rejected", 17, None),
    ]
    assert deliveries == DELIVERY
    # The same store as one import of the whole file.
    whole = make_engine(f"sqlite:///{tmp_path / 'whole.sqlite'}")
    ingest([browser, log], whole)
    assert _report(engine) == _report(whole)
    whole.dispose()


def test_answers_pair_by_trace_event_and_pixel(tmp_path):
    """One trace holds two pixels; their answers come in the other order."""
    body = real_calls()[0].body
    url = "https://graph.facebook.com/v24.0/{pixel}/events?access_token=" + TOKEN

    def request(pixel_id):
        return {
            "Name": "Facebook",
            "Type": "Request",
            "EventName": "Purchase",
            "RequestMethod": "POST",
            "RequestUrl": url.format(pixel=pixel_id),
            "RequestBody": body,
            "TraceId": "t1",
        }

    def response(pixel_id, status, answer):
        return {
            "Name": "Facebook",
            "Type": "Response",
            "EventName": "Purchase",
            "ResponseStatusCode": status,
            "ResponseHeaders": {},
            "ResponseBody": json.dumps(answer),
            "Message": f"Pixel ID: {pixel_id}",
            "TraceId": "t1",
        }

    log = tmp_path / "sgtm.jsonl"
    write_jsonl(
        log,
        [
            request("111"),
            request("222"),
            response("222", 400, {"error": {"message": "Invalid parameter", "code": 100}}),
            response("111", 200, {"events_received": 1}),
            {
                "Name": "Facebook",
                "Type": "Message",
                "EventName": "Purchase",
                "Message": "Something went wrong.",
            },
            response("333", 200, {"events_received": 1}),  # no such request in this log
        ],
    )
    engine = _store(tmp_path, "s")
    summary = ingest([log], engine)
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(events.c.dataset_id, events.c.delivery, events.c.error_code).order_by(
                events.c.dataset_id
            )
        ).all()
    assert [tuple(r) for r in rows] == [("111", "accepted", None), ("222", "rejected", 100)]
    assert summary.lines_skipped == {
        "Meta's answer to an earlier request": 3,  # two answers, and the tag's "Message" line
        "Meta's answer to a request not in this log": 1,
    }
    assert summary.accounted()


def test_woocommerce_answers_are_not_taken_by_other_requests(tmp_path):
    """A catalog request and its answer sit between an events request and its answer
    (two PHP processes writing at once): each answer goes to its own request."""
    calls = real_calls()
    log = write_woocommerce(tmp_path / "woo.log", [calls[1], calls[0]], headers=False)
    text = log.read_text()
    first_answer = text.index("NOTICE Response")
    catalog = (
        "2025-08-12T00:00:00+00:00 NOTICE Request\nmethod: POST\n"
        'uri: https://graph.facebook.com/v21.0/987/items_batch\nbody: {"requests":[]}\n'
        "duration: 0.2s\n\n"
        '2025-08-12T00:00:00+00:00 NOTICE Response\ncode: 200\nmessage: OK\nbody: {"handles":[]}\n\n'
    )
    # The catalog request comes after call 1's request, its answer after call 1's answer.
    request_end = text.index("\n\n", text.index("duration:")) + 2
    reordered = (
        text[:request_end] + catalog.split("\n\n")[0] + "\n\n" + text[request_end:first_answer]
    )
    rest = text[first_answer:]
    answer_end = rest.index("\n\n") + 2
    reordered += rest[:answer_end] + catalog.split("\n\n", 1)[1] + rest[answer_end:]
    log.write_text(reordered)
    engine = _store(tmp_path, "w")
    summary = ingest([log], engine)
    deliveries, errors, _ = _deliveries(engine)
    assert summary.events_imported == 2
    assert deliveries == {"accepted": 1, "rejected": 1}
    assert errors == {(190, None): 1}
    assert summary.lines_skipped["not a Meta events request"] == 2  # product sync, catalog


def test_a_file_in_no_known_format_is_quarantined_line_by_line(tmp_path):
    path = tmp_path / "mystery.log"
    path.write_text('hello world\nsecond line\n\n{"some": "json"}\n')
    engine = _store(tmp_path, "u")
    summary = ingest([path], engine)
    assert summary.formats[str(path.resolve())] == "(unrecognised)"
    assert summary.quarantined_by_reason == {"unrecognised format": 3}
    assert (summary.lines_read, summary.blank_lines) == (4, 1)
    text = summary.to_text()
    assert "formats tried: " + ", ".join(fmt.name for fmt in FORMATS) in text
    with engine.connect() as connection:
        detail = connection.execute(sa.select(quarantine.c.detail).distinct()).scalar()
    assert detail.startswith("tried: sgtm, eqm-v1, capi-body")
    # Forcing a format reads the file again from its start, in that format.
    again = ingest([path], engine, log_format="capi-body")
    assert again.reimported_files == [str(path.resolve())]
    assert again.lines_read == 4
    assert again.quarantined_by_reason == {"form body without data": 2, "unknown kind": 1}


def test_forced_format_is_kept_for_later_imports_of_a_growing_file(tmp_path):
    calls = real_calls()
    path = tmp_path / "bodies.jsonl"
    write_bodies(path, calls[:4])
    engine = _store(tmp_path, "f")
    first = ingest([path], engine, log_format="capi-body", default_dataset=DATASET)
    assert first.events_imported == 4
    with path.open("a") as fh:
        for call in calls[4:8]:
            fh.write(json.dumps(call.body) + "\n")
    second = ingest([path], engine, default_dataset=DATASET)
    assert (second.lines_already_imported, second.lines_read) == (4, 4)
    assert second.events_imported == 3  # call 5 has the ISO event_time
    assert second.formats[str(path.resolve())].startswith("capi-body")


def test_a_growing_woocommerce_log_waits_for_a_whole_entry(tmp_path):
    calls = real_calls()[:3]
    full = write_woocommerce(tmp_path / "full.log", calls).read_text()
    path = tmp_path / "live" / "facebook_for_woocommerce.log"
    path.parent.mkdir()
    # Cut inside call 1's request entry (before its duration line).
    cut = full.index("duration:", full.index("NOTICE Request", full.index("NOTICE Request") + 1))
    path.write_text(full[:cut])
    engine = _store(tmp_path, "g")
    first = ingest([path], engine)
    assert first.events_imported == 1 and first.pending_lines > 0
    path.write_text(full)
    second = ingest([path], engine)
    assert second.events_imported == 2
    deliveries, _, _ = _deliveries(engine)
    assert deliveries == {"accepted": 2, "rejected": 1}


def test_form_encoded_data_elements_may_be_json_strings(tmp_path):
    """RudderStack sends `data=['<event JSON>']`: each element a JSON string."""
    event = real_calls()[0].body["data"][0]
    from urllib.parse import urlencode

    path = tmp_path / "rudder.txt"
    path.write_text(
        urlencode({"data": json.dumps([json.dumps(event)]), "access_token": TOKEN}) + "\n"
    )
    engine = _store(tmp_path, "r")
    summary = ingest([path], engine)
    assert summary.events_imported == 1 and summary.formats[str(path.resolve())].startswith(
        "capi-body"
    )


def test_secrets_in_every_format_reach_no_output(tmp_path):
    """The access token and appsecret_proof are in every format's file (URLs, form bodies,
    an Authorization header): nothing stored, printed or reported holds them."""
    paths = []
    for name, (file_name, write, _, _) in FORMAT_FILES.items():
        paths.append(write(tmp_path / f"{name}-{file_name}", real_calls()))
    planted_in = [p.name for p in paths if TOKEN.encode() in p.read_bytes()]
    assert len(planted_in) >= 8, planted_in
    db = tmp_path / "store.duckdb"
    out = subprocess.run(
        [sys.executable, "-m", "dashboard", "ingest", *map(str, paths), "--db", f"duckdb:///{db}"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    report = subprocess.run(
        [
            sys.executable,
            "-m",
            "dashboard",
            "report",
            "--format",
            "html",
            "--db",
            f"duckdb:///{db}",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert report.returncode == 0, report.stderr
    exposed = {
        "ingest output": (out.stdout + out.stderr).encode(),
        "report": report.stdout.encode(),
        "store file": db.read_bytes(),
    }
    engine = make_engine(f"duckdb:///{db}")
    from dashboard.store.database import metadata

    with engine.connect() as connection:
        exposed["tables"] = "\n".join(
            repr(connection.execute(sa.select(table)).all()) for table in metadata.sorted_tables
        ).encode()
    engine.dispose()
    for secret in (TOKEN, APPSECRET_PROOF):
        assert [where for where, data in exposed.items() if secret.encode() in data] == []
    assert b"events imported: " in exposed["ingest output"]


def test_follow_imports_a_growing_folder_until_interrupted(tmp_path):
    folder = tmp_path / "capture"
    folder.mkdir()
    calls = real_calls()
    db = f"sqlite:///{tmp_path / 'follow.sqlite'}"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dashboard",
            "ingest",
            str(folder),
            "--follow",
            "--interval",
            "0.2",
            "--db",
            db,
            "--dataset",
            DATASET,
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    engine = make_engine(db)

    def stored() -> int:
        try:
            with engine.connect() as connection:
                return connection.execute(sa.select(sa.func.count()).select_from(events)).scalar()
        except sa.exc.OperationalError:
            return -1  # no table yet

    def wait_for(count: int) -> None:
        deadline = time.monotonic() + 60
        while stored() != count:
            assert time.monotonic() < deadline, f"{stored()} events, waiting for {count}"
            assert process.poll() is None, process.stdout.read()
            time.sleep(0.1)

    try:
        time.sleep(0.5)  # an empty folder: the follower waits
        write_bodies(folder / "a.jsonl", calls[:3])
        wait_for(3)
        with (folder / "a.jsonl").open("a") as fh:
            fh.write(json.dumps(calls[3].body) + "\n")
        write_stape_console(folder / "b.jsonl", calls[6:9])
        wait_for(3 + 1 + 3)
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert "total:" in output and "events imported: 7" in output
    engine.dispose()
    # The same store as one import of the final files.
    once = make_engine(f"sqlite:///{tmp_path / 'once.sqlite'}")
    ingest([folder], once, default_dataset=DATASET)
    follower = make_engine(db)
    assert _report(follower) == _report(once)
    once.dispose()
    follower.dispose()


def test_the_dashboard_shows_a_raw_bodies_file_and_a_stape_log(tmp_path, monkeypatch):
    """`ingest FILE` with no flags, then the Overview: its scorecards are the numbers of
    what the two files hold (the 12 bodies, unanswered; the Stape log's 12 events: 5
    accepted, 6 rejected, 1 unanswered)."""
    from streamlit.testing.v1 import AppTest

    calls = real_calls()
    bodies = write_bodies(tmp_path / "bodies.ndjson", calls)
    stape = write_stape_console(tmp_path / "sgtm.jsonl", calls)
    url = f"duckdb:///{tmp_path / 'store.duckdb'}"
    out = subprocess.run(
        [sys.executable, "-m", "dashboard", "ingest", str(bodies), str(stape), "--db", url],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert f"{bodies.resolve()}: capi-body" in out.stdout
    assert f"{stape.resolve()}: sgtm" in out.stdout
    monkeypatch.setenv("EQM_DB_URL", url)
    at = AppTest.from_file(str(REPO_ROOT / "dashboard" / "app.py"), default_timeout=120)
    at.query_params["period"] = "All data"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    shown = {metric.label: metric.value for metric in at.metric}
    # Accepted or unanswered: the 12 bodies, and 5 + 1 of the Stape log; 6 rejected.
    assert shown["Events (browser / server)"] == "0 / 18"
    assert shown["Rejected by Meta"] == "6"


def test_the_data_page_imports_a_path_and_names_its_format(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    log = write_woocommerce(tmp_path / "facebook_for_woocommerce-2025-08-12.log", real_calls())
    monkeypatch.setenv("EQM_DB_URL", f"duckdb:///{tmp_path / 'store.duckdb'}")
    at = AppTest.from_file(
        str(REPO_ROOT / "dashboard" / "ui" / "pages" / "data.py"), default_timeout=120
    )
    at.run()
    at.text_input(key="import_path").set_value(str(log)).run()
    at.button(key="btn_import").click().run()
    assert not at.exception, [e.value for e in at.exception]
    summary = "\n".join(block.value for block in at.code)
    assert "woocommerce (facebook-for-woocommerce debug log" in summary
    assert "events imported: 12" in summary
    assert "Meta's answer to an earlier request: 14" in summary


def _hostile_lines():
    from hypothesis import strategies as st

    fragments = st.sampled_from(
        [
            b'{"Name":"Facebook","Type":"Request","RequestUrl":"https://graph.facebook.com/v1/9/events","RequestBody":',
            b'{"Type":"Response","ResponseStatusCode":"x","Message":"Pixel ID: ","TraceId":[1]}',
            b"2025-01-01T00:00:00+00:00 NOTICE Request",
            b"2025-01-01T00:00:00+00:00 NOTICE Response",
            b"uri: https://graph.facebook.com/v21.0/1/events",
            b'body: {"data":[1,{}]}',
            b"code: 99999999999",
            b"200 POST https://graph.facebook.com/v18.0/1/events {",
            b"Response: [",
            b'            {"data":null}',
            b"data=%5B%7B%7D%5D&access_token=x",
            b"data=%ZZ",
            b"curl -d 'data=[{\"event_name\":1}]' https://graph.facebook.com/v2/1/events",
            b"curl '",
            b'{"data": "not a list"}',
            b'{"textPayload": "{", "timestamp": "nope"}',
            b"\xff\xfe\x00",
        ]
    )
    line = st.one_of(fragments, st.binary(max_size=60), fragments.map(lambda b: b + b'}"]'))
    return st.lists(line, min_size=1, max_size=25)


@pytest.mark.parametrize("log_format", [fmt.name for fmt in FORMATS])
def test_hostile_lines_in_any_format_are_accounted_for(tmp_path_factory, log_format):
    """Broken pieces of every format's lines, read in every format: no crash, and every
    line read is imported, skipped with a reason, or quarantined."""
    from hypothesis import HealthCheck, given, settings

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(_hostile_lines())
    def check(lines):
        folder = tmp_path_factory.mktemp("hostile")
        path = folder / ("log.csv" if log_format == "eqm-csv" else "log.txt")
        path.write_bytes(b"\n".join(line.replace(b"\n", b" ") for line in lines) + b"\n")
        engine = make_engine(f"sqlite:///{folder / 's.sqlite'}")
        summary = ingest([path], engine, log_format=log_format)
        assert summary.accounted()
        with engine.connect() as connection:
            stored = connection.execute(sa.select(sa.func.count()).select_from(events)).scalar()
            held = connection.execute(sa.select(sa.func.count()).select_from(quarantine)).scalar()
        assert stored == summary.events_imported
        assert held == summary.lines_quarantined + summary.events_quarantined
        engine.dispose()

    check()


def test_an_array_of_bodies_on_one_long_line_is_one_document(tmp_path):
    """Larger than the longest line the line readers take (4 MB): still one document."""
    from dashboard.ingest.files import MAX_LINE_BYTES

    calls = real_calls()
    many = [call for _ in range(MAX_LINE_BYTES // 2_000 + 1) for call in calls[:4]]
    path = write_body_array(tmp_path / "bodies.json", many, pretty=False)
    assert path.stat().st_size > MAX_LINE_BYTES and path.read_bytes().count(b"\n") == 1
    engine = _store(tmp_path, "a")
    summary = ingest([path], engine)
    assert summary.formats[str(path.resolve())].startswith("capi-body-json")
    assert summary.events_imported == len(many)
    engine.dispose()
