"""The logging relay against a local fake of the Graph API: forwarding is unchanged, the log
reads back as the right numbers, nothing secret or personal reaches the disk, a full disk
loses no call, and the Pixel mirror works in a real browser.

Both servers are real (uvicorn on free loopback ports, in threads of this process); the
calls go over real HTTP with httpx, the browser is Debian's Chromium.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
import uvicorn
from formatkit import APPSECRET_PROOF, TOKEN
from logkit import sha
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from dashboard.capture.relay import DailyLog, RelaySettings, create_app
from dashboard.core.config import REPO_ROOT
from dashboard.core.filters import Filters
from dashboard.ingest import ingest
from dashboard.outputs.report import build_report
from dashboard.store.database import events, make_engine

CHROMIUM = os.environ.get("EQM_CHROMIUM", "/usr/bin/chromium")
EMAIL, PHONE = "relay.person.5521@example.org", "+15550105521"
T = int(datetime(2026, 11, 20, 10, tzinfo=UTC).timestamp())

# The fake Graph API answers by dataset id.
ACCEPTS, REJECTS, TOKEN_ERROR, SLOW = "1111", "2222", "4444", "3333"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Serving:
    """An ASGI app served by uvicorn on a free loopback port, in a thread."""

    def __init__(self, app) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Serving:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def fake_graph(received: list[dict]) -> Starlette:
    """A stand-in for graph.facebook.com that records what reaches it."""

    async def events_call(request: Request) -> Response:
        body = await request.body()
        received.append(
            {
                "method": request.method,
                "path": request.url.path,
                "query": request.url.query,
                "headers": dict(request.headers),
                "body": body,
            }
        )
        dataset = request.path_params["dataset"]
        if dataset == SLOW:
            await asyncio.sleep(2)
        if dataset == REJECTS:
            return JSONResponse(
                {
                    "error": {
                        "message": "Invalid parameter",
                        "type": "OAuthException",
                        "code": 100,
                        "error_subcode": 2804003,
                        "error_user_title": "Event Timestamp Too Old",
                        "fbtrace_id": "AzZ9",
                    }
                },
                status_code=400,
            )
        if dataset == TOKEN_ERROR:
            return JSONResponse(
                {"error": {"message": "The access token could not be decrypted", "code": 190}},
                status_code=400,
            )
        kind = request.headers.get("content-type", "")
        count = 0
        if "json" in kind:
            count = len(json.loads(body)["data"])
        elif "form" in kind:
            from urllib.parse import parse_qs

            count = len(json.loads(parse_qs(body.decode())["data"][0]))
        return Response(
            json.dumps({"events_received": count, "messages": [], "fbtrace_id": "AbC1"}),
            media_type="application/json; charset=UTF-8",
            headers={"x-fb-trace-id": "AbC1", "x-business-use-case-usage": '{"1":[]}'},
        )

    return Starlette(
        routes=[Route("/{version}/{dataset}/{edge}", events_call, methods=["POST", "GET"])]
    )


@pytest.fixture
def graph():
    received: list[dict] = []
    with Serving(fake_graph(received)) as server:
        server.received = received
        yield server


@pytest.fixture
def relay(graph, tmp_path):
    settings = RelaySettings(
        upstream=graph.base,
        log_dir=tmp_path / "capture",
        allow_origins=("http://127.0.0.1:1",),
        timeout_s=0.5,
        max_body_bytes=64 * 1024,
    )
    app = create_app(settings)
    with Serving(app) as server:
        server.settings, server.stats, server.log = settings, app.state.stats, app.state.log
        yield server


def _event(name: str, t: int, event_id: str, **user_data) -> dict:
    return {
        "event_name": name,
        "event_time": t,
        "event_id": event_id,
        "action_source": "website",
        "event_source_url": f"https://shop.example/thanks?email={EMAIL}&utm_campaign=bf",
        "user_data": {"fbp": "fb.1.1763632800000.42", **user_data},
        "custom_data": {"value": 49.9, "currency": "EUR", "email": EMAIL, "note": f"call {PHONE}"},
    }


def _wait_for_log(relay, records: int) -> None:
    deadline = time.monotonic() + 10
    while relay.stats.log_records + relay.stats.log_failures < records:
        assert time.monotonic() < deadline, relay.stats.to_dict()
        time.sleep(0.02)


def _log_lines(folder: Path) -> list[dict]:
    lines = []
    for path in sorted(folder.glob("events-*")):
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rt") as fh:
            lines += [json.loads(line) for line in fh if line.strip()]
    return lines


def test_a_json_call_is_forwarded_and_answered_unchanged(graph, relay):
    body = json.dumps({"data": [_event("Purchase", T, "o-1", em=sha(EMAIL))]}, indent=1).encode()
    path = f"/v21.0/{ACCEPTS}/events?access_token={TOKEN}&appsecret_proof={APPSECRET_PROOF}"
    headers = {"Content-Type": "application/json", "Authorization": f"OAuth {TOKEN}"}
    direct = httpx.post(graph.base + path, content=body, headers=headers)
    via = httpx.post(relay.base + path, content=body, headers=headers)
    assert (via.status_code, via.content) == (direct.status_code, direct.content)
    assert via.headers["content-type"] == direct.headers["content-type"]
    assert via.headers["x-business-use-case-usage"] == '{"1":[]}'
    first, second = graph.received
    assert second["body"] == first["body"] == body  # byte for byte
    assert (second["path"], second["query"]) == (first["path"], first["query"])
    assert second["headers"]["authorization"] == f"OAuth {TOKEN}"
    _wait_for_log(relay, 1)
    (record,) = _log_lines(relay.settings.log_dir)
    assert record["kind"] == "capi_request" and record["dataset_id"] == ACCEPTS
    assert record["response"] == {"status": 200, "body": json.loads(direct.content)}
    assert record["request"]["data"][0]["event_id"] == "o-1"


def test_a_form_encoded_call_is_forwarded_unchanged(graph, relay):
    from urllib.parse import urlencode

    event = _event("Lead", T, "l-1", em=sha(EMAIL))
    body = urlencode(
        {"data": json.dumps([event]), "access_token": TOKEN, "test_event_code": "TEST42"}
    ).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    via = httpx.post(f"{relay.base}/v21.0/{ACCEPTS}/events", content=body, headers=headers)
    assert via.status_code == 200
    assert graph.received[0]["body"] == body
    _wait_for_log(relay, 1)
    (record,) = _log_lines(relay.settings.log_dir)
    assert record["request"]["test_event_code"] == "TEST42"
    assert "access_token" not in json.dumps(record)


def test_errors_and_timeouts_reach_the_caller_and_the_log(graph, relay):
    body = json.dumps({"data": [_event("Purchase", T, "o-2")]}).encode()
    headers = {"Content-Type": "application/json"}
    rejected = httpx.post(f"{relay.base}/v21.0/{REJECTS}/events", content=body, headers=headers)
    assert rejected.status_code == 400
    assert rejected.json()["error"]["error_subcode"] == 2804003
    slow = httpx.post(f"{relay.base}/v21.0/{SLOW}/events", content=body, headers=headers)
    assert slow.status_code == 504
    error = slow.json()["error"]
    assert error["is_transient"] is True and "did not answer" in error["message"]
    _wait_for_log(relay, 2)
    by_dataset = {r["dataset_id"]: r for r in _log_lines(relay.settings.log_dir)}
    assert by_dataset[REJECTS]["response"]["status"] == 400
    assert by_dataset[SLOW]["response"] is None
    health = httpx.get(f"{relay.base}/health").json()
    assert (health["calls"], health["answered"], health["timeouts"]) == (2, 1, 1)
    assert health["upstream_latency_ms"]["p50"] is not None


def test_the_log_reads_back_as_the_right_numbers(graph, relay, tmp_path):
    """Five calls: 3 accepted (one with two events), 1 rejected (2804003), 1 token error;
    then `ingest` of the capture folder."""
    calls = [
        (ACCEPTS, [_event("Purchase", T, "o-1", em=sha(EMAIL))]),
        (ACCEPTS, [_event("Lead", T + 60, "l-1"), _event("Lead", T + 61, "l-2")]),
        (ACCEPTS, [_event("AddToCart", T + 120, "c-1")]),
        (REJECTS, [_event("Purchase", T + 180, "o-2")]),
        (TOKEN_ERROR, [_event("Purchase", T + 240, "o-3")]),
    ]
    for dataset, batch in calls:
        httpx.post(
            f"{relay.base}/v21.0/{dataset}/events?access_token={TOKEN}",
            json={"data": batch, "partner_agent": "test"},
        )
    _wait_for_log(relay, len(calls))
    engine = make_engine(f"duckdb:///{tmp_path / 'store.duckdb'}")
    summary = ingest([relay.settings.log_dir], engine)
    assert (summary.events_imported, summary.lines_quarantined) == (6, 0)
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(events.c.dataset_id, events.c.delivery, events.c.error_code)
        ).all()
    got = sorted((r.dataset_id, r.delivery, r.error_code) for r in rows)
    assert got == sorted(
        [(ACCEPTS, "accepted", None)] * 4
        + [(REJECTS, "rejected", 100), (TOKEN_ERROR, "rejected", 190)]
    )
    report = build_report(engine, Filters(), _config())
    assert report["overall"]["server_rejected_by_meta"] == 2
    assert report["overall"]["server_events"] == 4
    engine.dispose()


def _config():
    from dashboard.core.config import load_config

    return load_config()


def test_no_token_or_plaintext_reaches_the_disk(graph, relay, tmp_path):
    """Plaintext e-mail and phone in hashed fields, an e-mail as external_id and as
    event_id, in custom_data and in the page URL: forwarded as sent, never written; the
    import still counts them as unhashed PII."""
    event = _event("Lead", T, EMAIL, em=EMAIL, ph=PHONE, external_id=EMAIL, fn="Plantedname")
    twin = _event("Lead", T + 5, "l-9", em=[EMAIL, sha(EMAIL)], external_id=EMAIL)
    body = json.dumps({"data": [event, twin], "access_token": TOKEN}).encode()
    answer = httpx.post(
        f"{relay.base}/v21.0/{ACCEPTS}/events?appsecret_proof={APPSECRET_PROOF}",
        content=body,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
    )
    assert answer.status_code == 200
    assert graph.received[0]["body"] == body  # the user's call goes out as sent
    _wait_for_log(relay, 1)
    on_disk = b"".join(p.read_bytes() for p in relay.settings.log_dir.iterdir())
    for secret in (EMAIL, PHONE, PHONE[1:], "Plantedname", TOKEN, APPSECRET_PROOF):
        assert secret.lower().encode() not in on_disk.lower(), secret
    engine = make_engine(f"sqlite:///{tmp_path / 'store.sqlite'}")
    ingest([relay.settings.log_dir], engine)
    overall = build_report(engine, Filters(), _config())["overall"]
    assert overall["unhashed_pii"] == 2
    assert overall["unhashed_parameters"]["em"] == 1  # the twin also sends a valid hash
    assert overall["unhashed_parameters"]["ph"] == 1
    assert overall["unhashed_parameters"]["external_id"] == 2
    with engine.connect() as connection:
        keys = connection.execute(sa.select(events.c.external_id, events.c.event_id)).all()
    # One person, one key (the marker of the same e-mail); the e-mail event_id hashed.
    assert len({k.external_id for k in keys}) == 1
    assert sha(EMAIL) in {k.event_id for k in keys}
    engine.dispose()


def test_a_full_disk_loses_no_call(graph, relay, tmp_path, monkeypatch):
    """The day's log file is /dev/full: every write fails with ENOSPC."""
    folder = relay.settings.log_dir
    folder.mkdir(parents=True, exist_ok=True)
    relay.log.close()
    folder.joinpath(f"events-{datetime.now(UTC).date().isoformat()}.jsonl").symlink_to("/dev/full")
    body = {"data": [_event("Purchase", T, "o-1")]}
    answers = [httpx.post(f"{relay.base}/v21.0/{ACCEPTS}/events", json=body) for _ in range(5)]
    assert [a.status_code for a in answers] == [200] * 5
    assert len(graph.received) == 5
    _wait_for_log(relay, 5)
    health = httpx.get(f"{relay.base}/health").json()
    assert (health["log_failures"], health["log_records"]) == (5, 0)
    assert health["status"] == "log failing" and "No space left" in health["last_log_error"]
    # The dashboard's Data page says so.
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("EQM_RELAY_URL", relay.base)
    monkeypatch.setenv("EQM_DB_URL", f"duckdb:///{tmp_path / 'store.duckdb'}")
    at = AppTest.from_file(
        str(REPO_ROOT / "dashboard" / "ui" / "pages" / "data.py"), default_timeout=60
    )
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("could not write 5 log records" in e.value for e in at.error)
    assert {m.label: m.value for m in at.metric}["Calls relayed"] == "5"


def test_the_relay_is_not_an_open_proxy(graph, relay):
    body = json.dumps({"data": [_event("Purchase", T, "o-1")]}).encode()
    assert httpx.get(f"{relay.base}/v21.0/{ACCEPTS}/events").status_code in (404, 405)
    assert httpx.post(f"{relay.base}/v21.0/{ACCEPTS}/adaccounts", content=body).status_code == 404
    assert httpx.post(f"{relay.base}/http://example.org/x", content=body).status_code == 404
    assert httpx.post(f"{relay.base}/latest/{ACCEPTS}/events", content=body).status_code == 404
    big = json.dumps({"data": [_event("Purchase", T, "o-1")] * 400}).encode()
    assert len(big) > relay.settings.max_body_bytes
    assert httpx.post(f"{relay.base}/v21.0/{ACCEPTS}/events", content=big).status_code == 413
    assert graph.received == []  # nothing of that reached the upstream
    # The mirror refuses origins not allowed.
    refused = httpx.post(
        f"{relay.base}/collect", content=b"{}", headers={"Origin": "https://evil.example"}
    )
    assert refused.status_code == 403


def test_a_finished_days_file_is_gzipped_and_stays_the_same_source(tmp_path):
    folder = tmp_path / "capture"
    log = DailyLog(folder)
    day1 = datetime(2026, 11, 30, 23, 59, tzinfo=UTC)
    record = {
        "kind": "capi_request",
        "sent_at": "2026-11-30T23:59:00Z",
        "dataset_id": "1",
        "request": {"data": [_event("Purchase", T, "o-1")]},
        "response": {"status": 200, "body": {"events_received": 1}},
    }
    log.append([record], day1)
    engine = make_engine(f"duckdb:///{tmp_path / 's.duckdb'}")
    assert ingest([folder], engine).events_imported == 1
    log.append([dict(record, sent_at="2026-12-01T00:00:01Z")], day1 + timedelta(minutes=2))
    log.close()
    log.compress_finished(date(2026, 12, 1))  # what the day change started, done or waited for
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["events-2026-11-30.jsonl.gz", "events-2026-12-01.jsonl"]
    again = ingest([folder], engine)
    # The gzipped day is the file imported before: nothing of it twice.
    assert (again.events_imported, again.lines_already_imported) == (1, 1)
    engine.dispose()


def test_the_cli_starts_the_relay_and_says_where_it_listens(tmp_path):
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dashboard",
            "relay",
            "--listen",
            f"127.0.0.1:{port}",
            "--upstream",
            "http://127.0.0.1:9",
            "--log",
            str(tmp_path / "cap"),
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).json()
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.1)
        assert health["calls"] == 0
        unreachable = httpx.post(f"http://127.0.0.1:{port}/v21.0/1/events", json={"data": []})
        assert unreachable.status_code == 502
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=20)
    assert f"relay on http://127.0.0.1:{port} -> http://127.0.0.1:9" in output
    assert "Pixel mirror off" in output


@pytest.mark.e2e
def test_the_pixel_mirror_pairs_browser_events_with_server_events(graph, tmp_path):
    """A page with the Pixel's stub fbq and the mirror script, in Chromium: its track calls
    reach the log with their eventIDs and pair with the server events sent through the
    relay under the same ids (dedup: deduplicated on both sides)."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"Chromium not found at {CHROMIUM}")
        pytest.skip("Chromium not installed")
    from playwright.sync_api import sync_playwright

    settings = RelaySettings(upstream=graph.base, log_dir=tmp_path / "capture")
    app = create_app(settings)
    with Serving(app) as relay:
        html = f"""<!doctype html><html><head><script>
        !function(f,b,e,v,n,t,s){{if(f.fbq)return;n=f.fbq=function(){{n.callMethod?
        n.callMethod.apply(n,arguments):n.queue.push(arguments)}};if(!f._fbq)f._fbq=n;
        n.push=n;n.loaded=!0;n.version='2.0';n.queue=[]}}(window,document,'script');
        fbq('init', '{ACCEPTS}');
        document.cookie = "_fbp=fb.1.1763632800000.77; path=/";
        </script><script src="{relay.base}/pixel-mirror.js"></script></head><body>
        <button id="buy" onclick="fbq('track','Purchase',{{value:49.9,currency:'EUR'}},{{eventID:'order-77'}})">Buy</button>
        <script>fbq('track','PageView',{{}},{{eventID:'pv-77'}});
        fbq('trackSingle','{ACCEPTS}','Lead',{{}},{{eventID:'lead-77'}});</script>
        </body></html>"""

        async def page(request):
            return HTMLResponse(html)

        with Serving(Starlette(routes=[Route("/shop", page)])) as shop:
            settings.allow_origins = (shop.base,)  # the shop's origin may mirror
            shop_url = f"{shop.base}/shop?utm_campaign=bf&email={EMAIL}"
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM,
                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
                )
                tab = browser.new_page()
                tab.goto(shop_url)
                tab.click("#buy")
                queued = tab.evaluate("window.fbq.queue.length")
                browser.close()
            deadline = time.monotonic() + 10
            while app.state.stats.log_records < 3:
                assert time.monotonic() < deadline, app.state.stats.to_dict()
                time.sleep(0.05)
        # The Pixel itself still got every call (the stub queued them for fbevents.js).
        assert queued == 4  # init, PageView, Lead, Purchase
        for event_id, name in (
            ("order-77", "Purchase"),
            ("pv-77", "PageView"),
            ("lead-77", "Lead"),
        ):
            httpx.post(
                f"{relay.base}/v21.0/{ACCEPTS}/events?access_token={TOKEN}",
                json={
                    "data": [
                        {
                            "event_name": name,
                            "event_time": int(time.time()),
                            "event_id": event_id,
                            "action_source": "website",
                            "user_data": {"fbp": "fb.1.1763632800000.77"},
                        }
                    ]
                },
            )
        deadline = time.monotonic() + 10
        while app.state.stats.log_records < 6:
            assert time.monotonic() < deadline, app.state.stats.to_dict()
            time.sleep(0.05)
    records = _log_lines(settings.log_dir)
    mirrored = [r for r in records if r["kind"] == "pixel_event"]
    assert sorted(r["event"]["event_id"] for r in mirrored) == ["lead-77", "order-77", "pv-77"]
    assert {r["dataset_id"] for r in mirrored} == {ACCEPTS}
    purchase = next(r["event"] for r in mirrored if r["event"]["event_name"] == "Purchase")
    assert purchase["custom_data"] == {"value": 49.9, "currency": "EUR"}
    assert purchase["user_data"]["fbp"] == "fb.1.1763632800000.77"
    assert EMAIL not in json.dumps(records) and "utm_campaign=bf" in purchase["event_source_url"]
    engine = make_engine(f"duckdb:///{tmp_path / 'store.duckdb'}")
    ingest([settings.log_dir], engine)
    with engine.connect() as connection:
        statuses = connection.execute(
            sa.select(events.c.channel, events.c.event_id, events.c.dedup_status)
        ).all()
    assert sorted(statuses) == sorted(
        (channel, event_id, "deduplicated")
        for channel in ("browser", "server")
        for event_id in ("lead-77", "order-77", "pv-77")
    )
    engine.dispose()


def test_the_official_python_sdk_sends_through_the_relay(graph, relay, tmp_path):
    """facebook-business (Meta's Python SDK), pointed at the relay by its GRAPH setting."""
    from facebook_business.adobjects.serverside.action_source import ActionSource
    from facebook_business.adobjects.serverside.event import Event
    from facebook_business.adobjects.serverside.event_request import EventRequest
    from facebook_business.adobjects.serverside.user_data import UserData
    from facebook_business.api import FacebookAdsApi
    from facebook_business.session import FacebookSession

    original = FacebookSession.GRAPH
    FacebookSession.GRAPH = relay.base  # the one line an integration changes
    try:
        FacebookAdsApi.init(access_token=TOKEN, crash_log=False)
        user = UserData(emails=[EMAIL], fbp="fb.1.1763632800000.42")  # the SDK hashes em
        event = Event(
            event_name="Purchase",
            event_time=T,
            event_id="sdk-1",
            user_data=user,
            action_source=ActionSource.WEBSITE,
        )
        answer = EventRequest(events=[event], pixel_id=ACCEPTS).execute()
    finally:
        FacebookSession.GRAPH = original
    assert answer.events_received == 1
    assert graph.received[0]["path"].endswith(f"/{ACCEPTS}/events")
    _wait_for_log(relay, 1)
    (record,) = _log_lines(relay.settings.log_dir)
    assert record["request"]["data"][0]["user_data"]["em"] == [sha(EMAIL)]
    assert TOKEN not in json.dumps(record)
    engine = make_engine(f"duckdb:///{tmp_path / 'sdk.duckdb'}")
    summary = ingest([relay.settings.log_dir], engine)
    assert summary.events_imported == 1
    with engine.connect() as connection:
        row = connection.execute(sa.select(events.c.delivery, events.c.p_em)).one()
    assert tuple(row) == ("accepted", 1)
    engine.dispose()
