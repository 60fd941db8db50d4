"""Security and privacy: planted personal data never leaves the log, login guards the
dashboard when configured, and the store URL's password is never shown.

The privacy check plants unique e-mail addresses and phone numbers in every field a log
can carry them in, imports the log with the real CLI, and then greps everything the
tool produces: the store files and every table in them, each report format, the CLI's
output, the quarantine, and what the real Streamlit server sends to a real browser
(page HTML, every websocket message, every downloadable file).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import streamlit_command
from formatkit import (
    APPSECRET_PROOF,
    TOKEN,
    real_calls,
    write_form_bodies,
    write_node_sdk,
    write_python_sdk_debug,
    write_stape_bigquery_csv,
    write_stape_cloud_logging,
    write_woocommerce,
)
from logkit import capi, event, pixel, sha
from streamlit.testing.v1 import AppTest

from dashboard.cli import main as cli_main
from dashboard.core import formatting as fmt
from dashboard.core.config import REPO_ROOT, load_config
from dashboard.core.filters import Filters
from dashboard.ingest import ingest
from dashboard.outputs import documents as reports
from dashboard.outputs.documents import CHROMIUM_FLAGS
from dashboard.sample.generator import write_sample_log
from dashboard.store.database import make_engine, metadata
from dashboard.ui import shared as ui

APP = str(REPO_ROOT / "dashboard" / "app.py")
CHROMIUM = os.environ.get("EQM_CHROMIUM", "/usr/bin/chromium")
ENV = dict(os.environ, PYTHONPATH=str(REPO_ROOT))

# Planted personal data. Set A: fields the importer already guards. Set B: an e-mail or
# phone as event_id, as an unknown `kind`, or echoed in Meta's error message.
EMAIL, PHONE, FIRST_NAME = "planted.person.7731@example.org", "+15550107731", "Plantedfirstname"
EMAIL_IN_URL = "planted.person.7731%40example.org"
EMAIL_B, PHONE_B = "planted.person.8842@example.org", "+15550108842"
SECRETS_A = (EMAIL, PHONE, PHONE[1:], FIRST_NAME, EMAIL_IN_URL)
SECRETS_B = (EMAIL_B, PHONE_B, PHONE_B[1:])
T = int(datetime(2026, 11, 1, 12, tzinfo=UTC).timestamp())  # inside the sample's period
PLANTED_SERVER_EVENTS_WITH_PII = 3  # records 1 and 2 below, and the CSV row
PLANTED_UNHASHED = {"em": 2, "ph": 3, "fn": 1, "external_id": 2}  # records 1, 2, CSV


def _planted_records() -> tuple[list, list]:
    """(set A records, set B records) for a JSONL log; times are inside the sample."""
    url = f"https://shop.example/form?email={EMAIL_IN_URL}&phone={PHONE}&utm_campaign=spring"
    records_a = [
        capi(
            [
                event(
                    "Lead",
                    T,
                    "pl-1",
                    em=EMAIL,
                    ph=PHONE,
                    fn=FIRST_NAME,
                    external_id=EMAIL,
                    fbp="fb.1.1793534400000.111",
                    custom_data={"email": EMAIL, "phone": PHONE, "note": f"call {PHONE}"},
                    extra={"event_source_url": url},
                )
            ],
            sent_at=T + 5,
        ),
        capi(
            [event("Purchase", T + 60, "pl-2", em=[EMAIL, sha(EMAIL)], ph=[PHONE, PHONE[1:]])],
            sent_at=T + 65,
        ),
        pixel(event("Lead", T, EMAIL, em=EMAIL, external_id=PHONE, custom_data={"email": EMAIL})),
        # Quarantined: malformed JSON, events without a name or time, a non-object event.
        f'{{"kind": "capi_request", "request": {{"data": [{{"user_data": {{"em": "{EMAIL}"',
        capi(
            [
                {"event_time": T, "user_data": {"em": EMAIL, "ph": PHONE}},
                {"event_name": "Lead", "event_time": EMAIL, "user_data": {"em": EMAIL}},
            ],
            sent_at=T,
        ),
        {"kind": "pixel_event", "sent_at": T, "event": EMAIL},
    ]
    records_b = [
        capi([event("Lead", T + 120, PHONE_B, em=sha(EMAIL_B))], sent_at=T + 121),
        pixel(event("Lead", T + 120, PHONE_B, em=sha(EMAIL_B))),
        {"kind": EMAIL_B, "user_data": {"em": EMAIL_B}},
        capi(
            [event("Lead", T + 180, "pl-b3", em=sha(EMAIL_B))],
            sent_at=T + 181,
            status=400,
            error={"message": f"Invalid parameter: em {EMAIL_B} / ph {PHONE_B}", "code": 100},
        ),
    ]
    return records_a, records_b


def _write_logs(folder: Path) -> tuple[list[Path], object]:
    """The sample log with the planted records appended, and a CSV log with more."""
    log = folder / "sent_events.jsonl"
    truth = write_sample_log(log, seed=3, target_events=800)
    records_a, records_b = _planted_records()
    with log.open("a", encoding="utf-8") as fh:
        for record in records_a + records_b:
            fh.write((record if isinstance(record, str) else json.dumps(record)) + "\n")
    csv_log = folder / "crm_export.csv"
    with csv_log.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            ["channel", "event_name", "event_time", "event_id", "sent_at", "em", "ph"]
            + ["external_id", "event_source_url", "custom_data.email"]
        )
        writer.writerow(
            ["server", "Lead", T + 30, "pl-csv", T + 40, EMAIL, PHONE, EMAIL]
            + [f"https://crm.example/?mail={EMAIL}", EMAIL]
        )
    # The logs other integrations write, each with the access token (and an
    # appsecret_proof) where that integration puts it. Meta's GTM tag test body is left
    # out: its plaintext test@example.com would change the planted PII counts below.
    calls = [call for call in real_calls() if call.body.get("partner_agent", "")[:5] != "gtmss"]
    others = [
        write_stape_cloud_logging(folder / "sgtm.jsonl", calls),
        write_stape_bigquery_csv(folder / "sgtm_bigquery.csv", calls),
        write_woocommerce(folder / "facebook_for_woocommerce.log", calls),
        write_node_sdk(folder / "node.log", calls),
        write_python_sdk_debug(folder / "python_sdk.log", calls),
        write_form_bodies(folder / "rudderstack.txt", calls),
    ]
    assert all(TOKEN.encode() in path.read_bytes() for path in others)
    return [log, csv_log, *others], truth


def _run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dashboard", *args],
        cwd=REPO_ROOT,
        env=env or ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _cli_in_process(*args: str) -> tuple[int, str]:
    """`python -m dashboard ...` in this process (saves a start-up per call): code, output."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli_main(list(args))
    return code, out.getvalue() + err.getvalue()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _StreamlitServer:
    """The real dashboard server (`streamlit run dashboard/app.py`) in its own process."""

    def __init__(self, folder: Path, env: dict) -> None:
        port = _free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.log_path = folder / f"streamlit-{port}.log"
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                streamlit_command(port),
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_until_up(self) -> str:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{self.base}/_stcore/health", timeout=2) as answer:
                    if answer.read().decode().strip() == "ok":
                        return self.base
            except OSError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                pytest.fail("Streamlit did not start: " + self.log_path.read_text()[-2000:])
            time.sleep(0.3)

    def stop(self) -> bytes:
        """Stop the server; its log (everything it printed)."""
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return self.log_path.read_bytes()


PAGE_TIMEOUT_MS = 90_000


def _settle(page) -> None:
    done = "[data-testid='stApp'][data-test-script-state='notRunning']"
    page.wait_for_selector(done, timeout=PAGE_TIMEOUT_MS)
    page.wait_for_timeout(400)
    page.wait_for_selector(done, timeout=PAGE_TIMEOUT_MS)


def _wait_shown(page, text: str, what: str, selector: str = "[data-testid='stMain']") -> None:
    """Wait until the page shows `text` (in `selector`); on a timeout, fail saying what it
    read instead. (Not on <body>: Streamlit's body has no height, so is never "visible".)"""
    from playwright.sync_api import expect

    try:
        expect(page.locator(selector).filter(has_text=text).first).to_be_visible(
            timeout=PAGE_TIMEOUT_MS
        )
    except AssertionError:
        body = page.inner_text("body")[:2500]
        raise AssertionError(f"{what} never showed {text!r}; the page read: {body}") from None


def _download_offered(base: str, frames: list[bytes], label: str, found: dict) -> None:
    """Every file a page offers (each table's CSV download), while it is served."""
    for name in sorted(set(re.findall(rb"/media/[0-9a-f]+\.[a-z]+", b"".join(frames)))):
        with urllib.request.urlopen(base + name.decode(), timeout=30) as answer:
            found[f"download {label} {name.decode()}"] = answer.read()


def _browse_every_page(base: str) -> dict[str, bytes]:
    """What a browser receives on every page: HTML, websocket messages, downloadables."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
    from playwright.sync_api import sync_playwright

    found: dict[str, bytes] = {}
    frames: list[bytes] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=list(CHROMIUM_FLAGS)
        )
        page = browser.new_page(viewport={"width": 1440, "height": 1700})
        # Reading a page waits for the renderer, which a loaded machine (a CI run after
        # 1,800 tests, charts over 1,845 days) kept busy past Playwright's default 30 s.
        page.set_default_timeout(PAGE_TIMEOUT_MS)
        page.on(
            "websocket",
            lambda ws: ws.on(
                "framereceived",
                lambda payload: frames.append(
                    payload if isinstance(payload, bytes) else payload.encode()
                ),
            ),
        )
        page.goto(f"{base}/?period=All+data")
        _settle(page)
        # The Overview has drawn its scorecards for all the data (a loaded machine can
        # take a while to start the first run, and "not running" is true before it).
        _wait_shown(page, "Events with plaintext PII", "the Overview's scorecards")

        def record(label: str, seen: int) -> None:
            assert page.locator("[data-testid='stException']").count() == 0, label
            found[f"page {label}"] = page.content().encode()
            found[f"page text {label}"] = page.inner_text("body").encode()
            _download_offered(base, frames[seen:], label, found)

        record("Overview", 0)  # the default page, loaded above: clicking it would rerun it
        for label in (
            "Match quality",
            "Coverage & dedup",
            "Funnel",
            "Freshness & delivery",
            "Events",
            "Reconcile",
            "Data",
        ):
            seen = len(frames)
            link = page.locator("[data-testid='stSidebarNav'] a").filter(has_text=label).first
            try:  # a loaded machine can take long to draw the sidebar: wait, then say what shows
                link.wait_for(state="visible", timeout=PAGE_TIMEOUT_MS)
            except PlaywrightTimeoutError:
                text = page.inner_text("body")[:1500]
                raise AssertionError(
                    f"no {label!r} link in the sidebar; the page reads: {text}"
                ) from None
            # Not a trial click: a sidebar redrawn under load can keep "moving" for long,
            # and the page's heading below proves the click landed.
            link.click(force=True)
            _wait_shown(page, label, "the page heading", selector="h1")
            _settle(page)
            record(label, seen)
        # The Events page on the lists that hold plaintext-bearing events, and their
        # whole-list downloads (built when clicked).
        for query in (
            "list=finding&finding=unhashed_pii",
            "list=parameter&parameter=em&status=unhashed",
        ):
            page = browser.new_page(viewport={"width": 1440, "height": 1700}, accept_downloads=True)
            page.set_default_timeout(PAGE_TIMEOUT_MS)
            page.goto(f"{base}/events?period=All+data&{query}")
            _settle(page)
            assert page.locator("[data-testid='stException']").count() == 0, query
            found[f"events page {query}"] = page.content().encode()
            found[f"events page text {query}"] = page.inner_text("body").encode()
            with page.expect_download(timeout=60_000) as download:
                page.locator(".st-key-dl_events button").click()
            found[f"events download {query}"] = Path(download.value.path()).read_bytes()
            page.close()
        browser.close()
    found["websocket messages"] = b"\n".join(frames)
    return found


def _table_dump(url: str) -> bytes:
    """Every row of every table, as text (DuckDB compresses strings in its file)."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            parts = []
            for table in metadata.sorted_tables:
                rows = connection.execute(sa.select(table)).all()
                parts.append(f"{table.name}: " + "\n".join(map(repr, rows)))
        return "\n".join(parts).encode()
    finally:
        engine.dispose()


def _xlsx_text(data: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as book:
        return b"\n".join(book.read(name) for name in book.namelist())


@pytest.fixture(scope="module")
def exposed(tmp_path_factory) -> dict:
    """Everything the tool writes, prints, exports or serves after importing planted PII."""
    folder = tmp_path_factory.mktemp("privacy")
    logs, truth = _write_logs(folder)
    duck_url = f"duckdb:///{folder / 'store.duckdb'}"
    sqlite_url = f"sqlite:///{folder / 'store.sqlite'}"
    found: dict[str, bytes] = {}

    result = _run_cli("ingest", *map(str, logs), "--db", duck_url)  # a real process
    assert result.returncode == 0, result.stderr
    found["ingest output (duckdb)"] = (result.stdout + result.stderr).encode()
    code, output = _cli_in_process("ingest", *map(str, logs), "--db", sqlite_url)
    assert code == 0, output
    found["ingest output (sqlite)"] = output.encode()
    # The dashboard serves the SQLite copy (same rows), so the reports below need not
    # wait for its DuckDB queries; it starts up meanwhile.
    server = None
    if Path(CHROMIUM).exists():
        server = _StreamlitServer(folder, dict(ENV, EQM_DB_URL=sqlite_url))
    elif os.environ.get("CI"):
        pytest.fail(f"Chromium not found at {CHROMIUM}")
    try:
        for name, url in (("duckdb", duck_url), ("sqlite", sqlite_url)):
            found[f"tables ({name})"] = _table_dump(url)
        code, output = _cli_in_process("report", "--format", "json", "--db", duck_url)
        assert code == 0, output
        found["report json"] = output.encode()
        report = json.loads(output)
        zipped = folder / "report.zip"
        code, output = _cli_in_process(
            "report", "--format", "csv", "--appendix", "--out", str(zipped), "--db", duck_url
        )
        assert code == 0, output
        with zipfile.ZipFile(zipped) as archive:  # every table's CSV, the gap appendix too
            found["report csv"] = b"".join(archive.read(name) for name in archive.namelist())
        # HTML and Excel from one collection, as the Overview page's downloads build them.
        # (The PDF is the same HTML printed by Chromium.)
        engine = make_engine(duck_url)
        data = reports.collect(engine, Filters(), load_config(), appendix=True)
        engine.dispose()
        found["report html"] = reports.render(data, "html")
        found["report xlsx"] = _xlsx_text(reports.render(data, "xlsx"))
        for args in (("check", "--at", "latest"), ("check", "--at", "latest", "--format", "json")):
            code, output = _cli_in_process(*args, "--db", duck_url)
            assert code in (0, 1), output
            found[" ".join(args)] = output.encode()
        # A reconciliation of an orders export and a CRM export with plaintext contact
        # details, one of them shifted into the value column: run on both stores (the
        # dashboard's Overview and Reconcile page show the SQLite run).
        orders = folder / "orders.csv"
        orders.write_text(
            "order_id,created_at,value,currency,email,phone\n"
            f"P-1,2026-11-01T12:00:00Z,10,USD,{EMAIL},{PHONE}\n"
            f"P-2,2026-11-01T12:00:00Z,{EMAIL_B},USD,{EMAIL_B},{PHONE_B}\n"
        )
        crm = folder / "crm.csv"
        crm.write_text(f"lead_id,stage,changed_at\n123456789012345,Contacted,{PHONE_B}\n")
        for url in (duck_url, sqlite_url):
            args = ("reconcile", str(orders), "--crm", str(crm), "--since", "2026-10-01")
            for form in ("text", "json"):
                code, output = _cli_in_process(*args, "--format", form, "--db", url)
                assert code == 0, output
                found[f"reconcile {form} ({url[:6]})"] = output.encode()
        assert b"line 3: value is not a number" in found["reconcile text (duckdb)"]
        # The drill-down: every finding's and every parameter status's event list, in
        # every format, and the per-day report.
        from dashboard.core.params import PARAMS
        from dashboard.quality.drilldown import FINDINGS

        listings = [("events", "--finding", key) for key in FINDINGS]
        listings += [
            ("events", "--parameter", p, "--status", status)
            for p in PARAMS
            for status in ("invalid", "unhashed")
        ]
        listings += [("events", "--dedup", "browser_only"), ("findings",)]
        listings += [("report", "--by", "day"), ("report", "--by", "day", "--format", "csv")]
        for args in listings:
            for form in (
                (("--format", "jsonl"), ("--format", "csv")) if args[0] == "events" else [()]
            ):
                code, output = _cli_in_process(*args, *form, "--db", duck_url)
                assert code == 0, (args, output)
                if output:  # JSON Lines of an empty list is rightly empty
                    found[" ".join((*args, *form))] = output.encode()
        if server is not None:
            found.update(_browse_every_page(server.wait_until_up()))
    finally:
        if server is not None:
            found["streamlit server log"] = server.stop()

    # The store files themselves, last: every writer has let go of them.
    for path in sorted(folder.glob("store.*")):
        found[f"file {path.name}"] = path.read_bytes()

    return {"found": found, "report": report, "truth": truth}


def _leaks(found: dict[str, bytes], secrets: tuple[str, ...]) -> list[tuple[str, str]]:
    return [
        (where, secret)
        for where, data in found.items()
        for secret in secrets
        if secret.lower().encode() in data.lower()
    ]


def test_planted_personal_data_appears_nowhere(exposed):
    found = exposed["found"]
    sample_secrets = tuple(
        exposed["truth"].plaintext_emails["addresses"]
        + exposed["truth"].plaintext_phones["numbers"]
    )
    assert _leaks(found, SECRETS_A + sample_secrets) == []
    # Everything looked at really was produced (a silent empty output would pass).
    assert all(found.values()), [where for where, data in found.items() if not data]
    expected = {
        "report html",
        "report xlsx",
        "report csv",
        "file store.duckdb",
        "file store.sqlite",
    }
    assert expected <= set(found)
    if Path(CHROMIUM).exists():
        assert {"page Data", "page Coverage & dedup", "websocket messages"} <= set(found)
        # The quarantine list and the gap list reached the browser, and their CSVs were read.
        assert b"missing event_name" in found["websocket messages"]
        assert b"server_only" in found["websocket messages"]
        # The stored reconciliation reached the Overview and the Reconcile page.
        assert b"orders reached Meta" in found["page text Overview"]
        assert b"value is not a number" in found["websocket messages"]
        downloads = [data for where, data in found.items() if where.startswith("download ")]
        assert any(b"missing event_name" in data for data in downloads)
        assert any(b"server_only" in data for data in downloads)


def test_pii_in_event_id_kind_and_error_message_appears_nowhere(exposed):
    assert _leaks(exposed["found"], SECRETS_B) == []


def test_access_tokens_in_other_integrations_logs_appear_nowhere(exposed):
    assert _leaks(exposed["found"], (TOKEN, APPSECRET_PROOF)) == []
    # Their events were imported (and so were looked for): each format's Purchase.
    assert b"sgtm" in exposed["found"]["ingest output (duckdb)"]
    assert b"woocommerce" in exposed["found"]["ingest output (duckdb)"]


def test_the_fact_that_pii_was_found_is_shown(exposed):
    overall, truth = exposed["report"]["overall"], exposed["truth"]
    # The sample's own plaintext e-mails and phones (see test_sample), plus the planted ones.
    sample_emails, sample_phones = (
        truth.plaintext_emails["events"],
        truth.plaintext_phones["events"],
    )
    unhashed = overall["unhashed_pii"]
    assert unhashed == sample_emails + sample_phones + PLANTED_SERVER_EVENTS_WITH_PII
    expected = dict.fromkeys(overall["unhashed_parameters"], 0)
    expected.update(em=sample_emails, ph=sample_phones)
    for param, planted in PLANTED_UNHASHED.items():
        expected[param] += planted
    assert overall["unhashed_parameters"] == expected
    report = exposed["report"]
    diagnostics = {d["key"]: d for d in report["diagnostics"]}
    assert diagnostics["unhashed_pii"]["affected"] == unhashed
    assert diagnostics["unhashed_pii"]["severity"] == "critical"
    found = exposed["found"]
    if "page text Match quality" in found:
        shown = f"{fmt.compact(unhashed)} server events carried plaintext personal data"
        assert shown.encode() in found["page text Match quality"]
        assert b"Events with plaintext PII" in found["page text Overview"]


# ---------------------------------------------------------------------------
# Login (Streamlit's OIDC, configured under [auth] in the secrets).
AUTH = {
    "redirect_uri": "http://localhost:8501/oauth2callback",
    "cookie_secret": "a-test-cookie-secret",
    "client_id": "eqm",
    "client_secret": "s3cret-client",
    "server_metadata_url": "https://accounts.example.com/.well-known/openid-configuration",
}


@pytest.fixture(scope="module")
def small_store(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("auth")
    log = folder / "sent_events.jsonl"
    write_sample_log(log, seed=4, target_events=400)
    url = f"duckdb:///{folder / 'store.duckdb'}"
    engine = make_engine(url)
    ingest([log], engine)
    engine.dispose()
    return url


def _app(monkeypatch, url: str, *, secrets: dict | None = None, user: dict | None = None):
    monkeypatch.setenv("EQM_DB_URL", url)
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["period"] = "All data"
    if secrets:
        at.secrets.update(secrets)
    if user is not None:
        at.user = user
    return at.run()


def _shows_nothing(at) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.metric) == 0 and len(at.dataframe) == 0
    assert len(at.multiselect) == 0 and len(at.selectbox) == 0  # no filters, no store values
    assert [t.value for t in at.title] == ["Event Quality Monitor"]


def test_without_login_configured_the_overview_renders_and_says_local_only(
    small_store, monkeypatch
):
    at = _app(monkeypatch, small_store)
    assert not at.exception
    assert "EMQ estimate" in {m.label for m in at.metric}
    notes = [c.value for c in at.sidebar.caption] + [w.value for w in at.sidebar.warning]
    assert any("No login configured" in note for note in notes)
    assert not any(b.label == "Log in" for b in at.button)


def test_with_login_configured_nothing_renders_before_login(tmp_path, monkeypatch):
    # A store that cannot even be opened: the page must not try.
    url = f"duckdb:///{tmp_path / 'missing' / 'folder' / 'store.duckdb'}"
    at = _app(monkeypatch, url, secrets={"auth": AUTH}, user={"is_logged_in": False})
    _shows_nothing(at)
    assert [b.label for b in at.button] == ["Log in"]
    # The default AppTest user, an e-mail without a login, is not logged in either.
    at = _app(monkeypatch, url, secrets={"auth": AUTH})
    _shows_nothing(at)


def test_a_logged_in_user_sees_the_dashboard_and_can_log_out(small_store, monkeypatch):
    user = {"is_logged_in": True, "email": "ana@example.com", "name": "Ana"}
    at = _app(monkeypatch, small_store, secrets={"auth": AUTH}, user=user)
    assert not at.exception
    assert "EMQ estimate" in {m.label for m in at.metric}
    assert any(b.label == "Log out" for b in at.sidebar.button)
    assert any("ana@example.com" in c.value for c in at.sidebar.caption)


@pytest.mark.parametrize(
    "user, allowed",
    [
        ({"is_logged_in": True, "email": "ana@example.com"}, True),
        ({"is_logged_in": True, "email": "Ana@Example.COM"}, True),  # domains are case-blind
        ({"is_logged_in": True, "email": "eve@elsewhere.test"}, False),
        ({"is_logged_in": True, "email": "eve@example.com.evil.test"}, False),  # exact domain
        ({"is_logged_in": True, "email": "ana@example.com", "email_verified": False}, False),
        ({"is_logged_in": True, "name": "No e-mail claim"}, False),
    ],
)
def test_the_email_domain_allow_list(small_store, monkeypatch, user, allowed):
    secrets = {"auth": AUTH, "access": {"allowed_email_domains": ["example.com"]}}
    at = _app(monkeypatch, small_store, secrets=secrets, user=user)
    assert not at.exception
    if allowed:
        assert "EMQ estimate" in {m.label for m in at.metric}
    else:
        assert len(at.metric) == 0 and len(at.dataframe) == 0 and len(at.multiselect) == 0
        assert any("may not see the dashboard" in e.value for e in at.error)
        assert any(b.label == "Log out" for b in at.sidebar.button)


@pytest.mark.parametrize(
    "email, verified, domains, expected",
    [
        ("a@x.org", None, (), True),  # no allow-list: any logged-in user
        (None, None, (), True),
        ("a@x.org", True, ("x.org",), True),
        ("a@X.Org ", None, ("x.org",), True),
        ("a@sub.x.org", None, ("x.org",), False),  # subdomains are not the domain
        ("a@x.org", False, ("x.org",), False),  # the provider says unverified
        ("x.org", None, ("x.org",), False),  # not an address
        (None, None, ("x.org",), False),
    ],
)
def test_email_allowed(email, verified, domains, expected):
    assert ui.email_allowed(email, verified, domains) is expected


def test_the_dashboard_is_bound_to_localhost_without_login():
    import tomllib

    config = tomllib.loads((REPO_ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "localhost"
    assert not (REPO_ROOT / ".streamlit" / "secrets.toml").exists()  # no login shipped
    assert (
        '"--server.address=localhost"'
        in (REPO_ROOT / "dashboard" / "cli" / "__init__.py").read_text()
    )


# ---------------------------------------------------------------------------
# The store URL may carry a password: it is never printed, shown or logged.
PASSWORD = "s3cretPW"


def _app_text(at) -> str:
    """Every protobuf the app produced, and every table's values."""
    parts: list[str] = []

    def walk(node) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            parts.append(str(proto))
        with contextlib.suppress(Exception):
            value = node.value
            parts.append(value.to_csv() if hasattr(value, "to_csv") else str(value))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)  # noqa: SLF001 - the whole rendered tree
    return "\n".join(parts)


def test_the_store_password_is_never_shown(postgres_server, tmp_path, monkeypatch, capfd):
    url = postgres_server.new_database().replace("://eqm@", f"://eqm:{PASSWORD}@")
    unreachable = f"postgresql+psycopg://eqm:{PASSWORD}@127.0.0.1:{_free_port()}/nowhere"
    not_a_url = f"postgresql+psycopg://eqm:{PASSWORD}@127.0.0.1:port/db"
    log = tmp_path / "sent_events.jsonl"
    write_sample_log(log, seed=6, target_events=300)
    outputs: list[str] = []

    result = _run_cli("ingest", str(log), "--db", url)
    assert result.returncode == 0, result.stderr
    outputs.append(result.stdout + result.stderr)
    for args in (("check", "--at", "latest"), ("report", "--format", "json")):
        code, output = _cli_in_process(*args, "--db", url)
        assert code in (0, 1)
        outputs.append(output)
    monkeypatch.setenv("EQM_DB_URL", url)  # the URL from the environment
    code, output = _cli_in_process("report", "--format", "html")
    assert code == 0, output
    outputs.append(output)
    result = _run_cli("ingest", str(log), "--db", unreachable)
    assert result.returncode == 2 and result.stderr.startswith("error: "), result.stderr
    outputs.append(result.stdout + result.stderr)
    for bad in (unreachable, not_a_url):
        for command in (("ingest", str(log)), ("report",), ("check",)):
            code, output = _cli_in_process(*command, "--db", bad)
            assert code == 2 and output.startswith("error: "), (command, output)
            outputs.append(output)

    # The dashboard, from the environment and from Streamlit's secrets.
    at = _app(monkeypatch, url)
    assert not at.exception and "EMQ estimate" in {m.label for m in at.metric}
    outputs.append(_app_text(at))
    outputs.append(_app_text(at.switch_page("ui/pages/data.py").run()))
    monkeypatch.delenv("EQM_DB_URL")
    at = AppTest.from_file(APP, default_timeout=120)
    at.secrets["db_url"] = url
    at.run()
    assert not at.exception and "EMQ estimate" in {m.label for m in at.metric}
    outputs.append(_app_text(at.switch_page("ui/pages/data.py").run()))
    assert "Store: postgresql" in outputs[-1]
    for bad in (unreachable, not_a_url):  # a store that fails: the error is shown, not the URL
        at = _app(monkeypatch, bad)
        assert at.exception or at.error
        outputs.append(_app_text(at))
    assert all(outputs)  # each of them said something
    captured = capfd.readouterr()  # and whatever was logged meanwhile (may be nothing)
    outputs.append(captured.out + captured.err)

    leaks = [text for text in outputs if PASSWORD.lower() in text.lower()]
    assert leaks == []
