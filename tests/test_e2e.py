"""End to end: the real Streamlit server driven in Debian's headless Chromium by Playwright.

Every page must load without an exception block or a console error, a filter change
must change the numbers, and the drill-down export must download a CSV. Screenshots
of every page are saved under artifacts/screenshots/ (the path is printed).
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request
import zipfile
from pathlib import Path

import openpyxl
import pytest
from conftest import streamlit_command

from dashboard.cli.meta import import_sample_snapshots
from dashboard.core.config import REPO_ROOT, SAMPLE_LOG_PATH, load_config
from dashboard.ingest import ingest
from dashboard.outputs.documents import CHROMIUM_FLAGS
from dashboard.store.database import make_engine

pytestmark = pytest.mark.e2e
CHROMIUM = os.environ.get("EQM_CHROMIUM", "/usr/bin/chromium")
# The Overview's diagnostics table layout (dashboard/ui/pages/overview.py).
DIAGNOSTIC_TEXT_PX = 290
DIAGNOSTIC_ROW_PX = 84
SCREENSHOTS = REPO_ROOT / "artifacts" / "screenshots"
# How long a step waits for what a person would see: a loaded CI machine has kept the
# renderer busy past Playwright's default 30 s.
PAGE_TIMEOUT_MS = 90_000
# Screenshot name -> the page's label in the sidebar navigation.
PAGES = {
    "overview": "Overview",
    "match_quality": "Match quality",
    "coverage_dedup": "Coverage & dedup",
    "funnel": "Funnel",
    "freshness_delivery": "Freshness & delivery",
    "data": "Data",
}
CHROMIUM_ARGS = list(CHROMIUM_FLAGS)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        message = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    folder = tmp_path_factory.mktemp("e2e")
    url = f"duckdb:///{folder / 'store.duckdb'}"
    engine = make_engine(url)
    ingest([SAMPLE_LOG_PATH], engine)
    import_sample_snapshots(engine, load_config())  # Meta's numbers, as the demo has them
    engine.dispose()
    port = _free_port()
    env = dict(os.environ, EQM_DB_URL=url)
    log = (folder / "streamlit.log").open("w")
    process = subprocess.Popen(
        streamlit_command(port),
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as answer:
                if answer.read().decode().strip() == "ok":
                    break
        except OSError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            pytest.fail(
                "Streamlit did not start: " + (folder / "streamlit.log").read_text()[-2000:]
            )
        time.sleep(0.3)
    yield base
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


def _open(browser, url: str):
    page = browser.new_page(viewport={"width": 1440, "height": 1700}, accept_downloads=True)
    # Reading a page waits for the renderer, which a loaded machine can keep busy past
    # Playwright's default 30 s.
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    _settle(page)
    return page, errors


def _settle(page, timeout: float = 60_000) -> None:
    # Streamlit's own e2e harness waits for the script to finish running.
    page.wait_for_selector(
        "[data-testid='stApp'][data-test-script-state='notRunning']", timeout=timeout
    )
    page.wait_for_timeout(400)
    page.wait_for_selector(
        "[data-testid='stApp'][data-test-script-state='notRunning']", timeout=timeout
    )


def _go_to(page, label: str) -> None:
    # Pages are reached the way people reach them: through the sidebar navigation.
    # (Opening a page's own URL directly makes Streamlit's frontend probe
    # <page>/_stcore/* first, which logs two harmless 404s in the console.)
    page.locator("[data-testid='stSidebarNav'] a").filter(has_text=label).first.click()
    # The page has changed once its own heading shows (a loaded machine can take a while
    # to start the run, and "not running" alone is also true before it starts).
    heading = "Event quality overview" if label == "Overview" else label
    page.locator("h1").filter(has_text=heading).first.wait_for(
        state="visible", timeout=PAGE_TIMEOUT_MS
    )
    _settle(page)


def _expect_shown(page, locator, text: str, what: str) -> None:
    """Wait until `locator` shows `text`, as a person waits for a result to appear; on a
    timeout, fail saying what the page read instead."""
    from playwright.sync_api import expect

    try:
        expect(locator.first).to_contain_text(text, timeout=PAGE_TIMEOUT_MS)
    except AssertionError:
        body = page.inner_text("body")[:2500]
        raise AssertionError(f"{what} never showed {text!r}; the page read: {body}") from None


def _expect_chosen(page, box, value: str) -> None:
    """Wait until the select box `box` (its input) reads `value`: a select box shows its
    choice as its input's value, not as text."""
    from playwright.sync_api import expect

    try:
        expect(box.first).to_have_value(value, timeout=PAGE_TIMEOUT_MS)
    except AssertionError:
        raise AssertionError(
            f"the select box reads {box.first.input_value()!r}, not {value!r}"
        ) from None


def _choose(page, filter_label: str, option: str) -> None:
    # Under a loaded machine the first click can land while the sidebar is still
    # being redrawn; the selection counts once its chip shows, as a person would see.
    box = (
        page.locator("[data-testid='stSidebar'] [data-testid='stMultiSelect']")
        .filter(has_text=filter_label)
        .first
    )
    chip = box.locator("[data-tag]").filter(has_text=option)
    for _attempt in range(3):
        if chip.count():
            return
        box.click()
        page.locator("[role='option']").filter(has_text=option).first.click()
        page.keyboard.press("Escape")
        try:
            chip.wait_for(timeout=15_000)
            return
        except Exception:
            _settle(page)
    raise AssertionError(f"could not choose {option!r} in the {filter_label} filter")


def _metric(page, label: str) -> str:
    card = page.locator("[data-testid='stMetric']").filter(has_text=label).first
    return card.locator("[data-testid='stMetricValue']").inner_text()


def test_every_page_loads_cleanly_and_is_screenshotted(server, browser):
    if SCREENSHOTS.exists():
        shutil.rmtree(SCREENSHOTS)
    SCREENSHOTS.mkdir(parents=True)
    page, errors = _open(browser, f"{server}/?period=All+data")
    titles = set()
    for name, label in PAGES.items():
        _go_to(page, label)
        assert page.locator("[data-testid='stException']").count() == 0, name
        titles.add(page.locator("h1").first.inner_text().strip())
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
        assert not errors, (name, errors)
    page.close()
    assert len(titles) == len(PAGES)  # each page drew its own title
    print(f"\nscreenshots saved in {SCREENSHOTS}")
    # Every page's own file (other tests add theirs, at the same time under pytest -n).
    assert set(PAGES) <= {p.stem for p in SCREENSHOTS.glob("*.png")}


def test_a_filter_changes_the_numbers_and_lands_in_the_url(server, browser):
    page, errors = _open(browser, f"{server}/?period=All+data")
    everything = _metric(page, "Events (browser / server)")
    _choose(page, "Campaign", "spring_leads_form")
    page.wait_for_url("**campaign=spring_leads_form**", timeout=60_000)
    _settle(page)
    filtered = _metric(page, "Events (browser / server)")
    assert filtered != everything
    # The shared URL reproduces the same view in a fresh tab.
    again, _ = _open(browser, page.url)
    assert _metric(again, "Events (browser / server)") == filtered
    assert not errors
    page.close()
    again.close()


def test_a_shared_link_keeps_its_period_when_a_page_is_clicked_while_it_loads(server, browser):
    """A colleague opens a shared link and clicks a page at once, while the first run still
    goes: the box and the URL both keep the link's period. (Before the fix, about 1 click in
    7 showed "Last 7 days" over all-data numbers, or fell back to the default period.) The
    click's moment is a race, so four moments are tried."""
    for wait_ms in (0, 50, 100, 150):
        page = browser.new_page(viewport={"width": 1440, "height": 1700})
        page.set_default_timeout(PAGE_TIMEOUT_MS)
        page.goto(f"{server}/?period=All+data")
        link = page.locator("[data-testid='stSidebarNav'] a").filter(has_text="Reconcile")
        link.first.wait_for()
        page.wait_for_timeout(wait_ms)
        link.first.click()
        page.locator("h1").filter(has_text="Reconcile").first.wait_for(state="visible")
        _settle(page)
        _expect_chosen(page, page.get_by_role("combobox", name="Period"), "All data")
        assert "period=All+data" in page.url, (wait_ms, page.url)
        page.close()


def test_drill_down_export_downloads_a_csv(server, browser):
    page, errors = _open(browser, f"{server}/?period=All+data")
    _go_to(page, "Coverage & dedup")
    # The gap list shows times as times: as text columns they read as epoch milliseconds
    # ("1793836799000") under "Event time (UTC)". The grid draws only the columns in view:
    # a wide window shows them all.
    page.set_viewport_size({"width": 2600, "height": 1700})
    grid = page.locator("[data-testid='stDataFrame']").filter(has_text="Event time (UTC)")
    grid.first.wait_for(state="attached")  # the grid's cells arrive after the page's run
    headers = grid.first.locator("[role='columnheader']").all_inner_texts()
    first_row = grid.first.locator("[role='gridcell']").all_inner_texts()[: len(headers)]
    shown = dict(zip(headers, first_row, strict=True))
    for column in ("Event time (UTC)", "Sent at (UTC)"):
        assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", shown[column]), shown
    button = page.locator(".st-key-dl_gaps button")
    with page.expect_download() as download_info:
        button.click()
    download = download_info.value
    assert download.suggested_filename == "dedup_gaps.csv"
    text = Path(download.path()).read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    # The download has the page's human headers.
    assert rows and {
        "Gap",
        "Event",
        "event_id",
        "Campaign",
        "Funnel stage",
        "Event time (UTC)",
    } <= set(rows[0])
    assert {row["Gap"] for row in rows} <= {
        "browser_only",
        "server_only",
        "missing_event_id",
        "outside_48h",
        "likely_double_counted",
    }
    assert not errors
    page.close()


def test_report_downloads_for_the_filtered_view(server, browser):
    """A marketer filters to one campaign, ticks the gap appendix and downloads the report
    in each format; every file is that campaign's, and the HTML reads without a script."""
    page, errors = _open(browser, f"{server}/?period=All+data&campaign=spring_leads_form")
    page.get_by_text("Add the event-level dedup gap list").click()
    page.wait_for_timeout(1500)
    files = {}
    for form in ("html", "pdf", "xlsx", "csv"):
        with page.expect_download(timeout=120_000) as download_info:
            page.locator(f".st-key-dl_report_{form} button").click()
        files[form] = download_info.value
    assert files["html"].suggested_filename.endswith(".html")
    assert files["csv"].suggested_filename.endswith(".zip")
    text = Path(files["html"].path()).read_text(encoding="utf-8")
    assert "filters: Campaign: spring_leads_form" in text
    assert 'id="appendix"' in text and "<script" not in text and "<svg" in text
    from pypdf import PdfReader

    pdf = PdfReader(files["pdf"].path())
    assert 1 <= len(pdf.pages) <= 12
    assert "spring_leads_form" in pdf.pages[0].extract_text()
    book = openpyxl.load_workbook(io.BytesIO(Path(files["xlsx"].path()).read_bytes()))
    assert book.sheetnames[0] == "Summary"
    campaigns = {row[0].value for row in book["Per campaign"].iter_rows(min_row=2)}
    assert campaigns == {"spring_leads_form"}
    names = zipfile.ZipFile(files["csv"].path()).namelist()
    assert names[0] == "01-summary.csv" and names[-1].endswith("-dedup_gaps.csv")
    assert not errors
    page.close()


def _download_csv(page, key: str) -> list[dict[str, str]]:
    with page.expect_download() as download_info:
        page.locator(f".st-key-dl_{key} button").click()
    text = Path(download_info.value.path()).read_text(encoding="utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


def test_a_filtered_view_still_shows_the_missing_parameter(server, browser):
    """spring_leads_form sends Lead without em, while other campaigns' Leads carry it.
    Filtered to that campaign and its Qualified stage, em must stay visible at 0% and
    the diagnostics must still name it (a filter never hides a fault)."""
    view = f"{server}/?period=All+data&campaign=spring_leads_form&stage=Qualified"
    page, errors = _open(browser, view)
    findings = [row["Finding"] for row in _download_csv(page, "diagnostics")]
    assert any("spring_leads_form lack em" in f for f in findings), findings
    page.screenshot(path=str(SCREENSHOTS / "filtered_overview.png"), full_page=True)
    _go_to(page, "Match quality")
    validity = {row["Parameter"]: row for row in _download_csv(page, "invalid_params")}
    assert float(validity["em"]["Valid (%)"]) == 0.0
    # The heatmap keeps an em column, its cell reading 0%, and has no column for the
    # messaging-only parameters a website Lead cannot carry.
    heatmap = page.locator(".st-key-chart_heat_event_name")
    ticks = heatmap.locator(".xtick text").evaluate_all("els => els.map(e => e.textContent)")
    assert "em" in ticks and "ctwa_clid" not in ticks
    # What the drawn heatmap holds: its columns and the Lead row's cell texts.
    drawn = heatmap.locator(".js-plotly-plot").first.evaluate(
        "el => ({x: el.data[0].x, y: el.data[0].y, text: el.data[0].text})"
    )
    lead = drawn["text"][list(drawn["y"]).index("Lead")]
    assert lead[list(drawn["x"]).index("em")] == "0%"
    page.screenshot(path=str(SCREENSHOTS / "filtered_match_quality.png"), full_page=True)
    assert not errors
    page.close()


def test_from_a_diagnostic_to_its_events_and_the_whole_list_downloads(server, browser):
    """The tracking engineer's path: a diagnostic's "List events" link opens the Events
    page with the finding in the URL; the download holds every event, not one page."""
    context = browser.new_context(viewport={"width": 1440, "height": 1700}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    page.goto(f"{server}/?period=All+data")
    _settle(page)
    grid = page.locator("[data-testid='stDataFrame']").first  # the Overview's first: Diagnostics
    box = grid.bounding_box()
    # Fixed column widths (Severity small 75 px, Finding 290 px, Events 90 px) and row
    # height put the first row's link at a known place; glide opens links on a click after
    # a hover.
    x = box["x"] + 75 + DIAGNOSTIC_TEXT_PX + 40
    y = box["y"] + 35 + DIAGNOSTIC_ROW_PX // 2
    with context.expect_page(timeout=30_000) as opened:
        page.mouse.move(x, y)
        page.wait_for_timeout(400)
        page.mouse.click(x, y)
    events_page = opened.value
    _settle(events_page)
    assert "list=finding" in events_page.url and "finding=unhashed_pii" in events_page.url
    assert "period=All+data" in events_page.url
    body = events_page.locator("[data-testid='stMain']").inner_text()
    assert "Server events with plaintext personal data" in body
    total = int(re.search(r"([\d,]+) events; page 1 of", body).group(1).replace(",", ""))
    assert total > 50  # more than the first page of 50
    with events_page.expect_download(timeout=60_000) as download_info:
        events_page.locator(".st-key-dl_events button").click()
    text = Path(download_info.value.path()).read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == total
    assert {"Why", "Field", "Source file", "Line", "event_id"} <= set(rows[0])
    assert all("plaintext" in row["Why"] for row in rows)
    context.close()


def test_meta_numbers_sit_beside_ours_and_follow_the_filters(server, browser):
    """Match quality sets Meta's EMQ (the sample's synthetic snapshots) beside our
    estimate: the planted Purchase fault asks for a hashing check, the history charts draw
    Meta's line and ours for every event, the tables download, and the event filter
    narrows them."""
    page, errors = _open(browser, f"{server}/?period=All+data")
    _go_to(page, "Match quality")
    section = page.get_by_text("Meta's numbers beside ours")
    section.scroll_into_view_if_needed()
    assert "Calibrated" in page.get_by_text("Meta ≈").first.inner_text()
    # Only the sample's dataset: the upload test may store another dataset's snapshot.
    rows = {
        row["Event"]: row
        for row in _download_csv(page, "meta_emq")
        if row["Dataset"] == "1111111111"
    }
    assert sorted(rows) == [
        "AddToCart", "InitiateCheckout", "Lead", "PageView", "Purchase", "ViewContent"
    ]  # fmt: skip
    purchase = rows["Purchase"]
    assert purchase["Meta's EMQ"] == "6.4" and purchase["Meta snapshot (UTC)"] == "2026-11-04 00:00"
    assert float(purchase["Meta minus ours (points)"]) < -2
    assert "check hashing" in purchase["Finding"], purchase
    assert rows["PageView"]["Finding"] == ""
    chart = page.locator(".st-key-chart_meta_emq .js-plotly-plot").first
    traces = chart.evaluate("el => el._fullData.map(t => [t.name, t._length])")
    assert ["Purchase", 6] in traces and ["Purchase (ours)", 6] in traces
    page.get_by_role("tab", name="Diagnostics").click()
    diagnostics = _download_csv(page, "meta_diagnostics")
    assert [(d["Event"], d["Affected events"]) for d in diagnostics] == [("Purchase", "97")]
    page.screenshot(path=str(SCREENSHOTS / "meta_numbers.png"), full_page=True)
    _choose(page, "Event name", "Lead")
    _settle(page)
    rows = _download_csv(page, "meta_emq")
    assert [row["Event"] for row in rows] == ["Lead"]
    assert "event=Lead" in page.url
    assert not errors
    page.close()


def test_a_saved_meta_answer_uploads_on_the_data_page(server, browser, tmp_path):
    """A marketer without the command line stores Meta's answer from the Data page, for a
    dataset typed in, and finds it on Match quality."""
    answer = tmp_path / "dataset_quality.json"
    answer.write_text(
        '{"web": [{"event_name": "Subscribe", "event_match_quality": {"composite_score": 7.7},'
        ' "event_coverage": {"percentage": 61.0, "goal_percentage": 75}}]}'
    )
    page, errors = _open(browser, f"{server}/?period=All+data")
    _go_to(page, "Data")
    page.locator(".st-key-upload_meta input[type='file']").set_input_files(str(answer))
    _settle(page)
    dataset = page.locator(".st-key-meta_dataset input")
    dataset.click()
    dataset.fill("9999999999")
    page.keyboard.press("Enter")
    _settle(page)
    page.locator(".st-key-btn_meta_import button").click()
    _settle(page)
    stored = page.locator("[data-testid='stAlert']").filter(has_text="event name(s) stored")
    assert "1 event name(s) stored for dataset 9999999999" in stored.first.inner_text()
    # The same answer again, a minute later by the form's clock: one snapshot, not two.
    page.locator(".st-key-btn_meta_import button").click()
    _settle(page)
    again = page.locator("[data-testid='stAlert']").filter(has_text="stored already")
    assert "This answer is stored already for dataset 9999999999" in again.first.inner_text()
    _go_to(page, "Match quality")
    rows = [r for r in _download_csv(page, "meta_emq") if r["Dataset"] == "9999999999"]
    assert [(r["Event"], r["Meta's EMQ"], r["Meta's coverage (%)"]) for r in rows] == [
        ("Subscribe", "7.7", "61.0")
    ]
    # No event of ours for it: no estimate, and the finding says why.
    assert rows[0]["Our estimate (48 h before)"] == "–"
    assert rows[0]["Finding"] == "too few of our events to compare"
    assert not errors
    page.close()


def _reconcile_file(page, kind: str, file: str, card: str, shows: str) -> None:
    """On the Reconcile page's `kind` tab, pick `file` from the data folder and run the
    reconciliation; done once the result's `card` shows `shows`."""
    page.locator(f".st-key-pick_{kind}").click()
    page.locator("[role='option']").filter(has_text=file).first.click()
    _expect_chosen(page, page.locator(f".st-key-pick_{kind} input"), file)
    _settle(page)
    page.locator(f".st-key-btn_reconcile_{kind} button").click()
    result = page.locator("[data-testid='stMetric']").filter(has_text=card)
    _expect_shown(page, result, shows, f"the {card} card")
    _settle(page)


def test_reconcile_page_finds_the_sample_exports_faults_and_downloads_them(server, browser):
    """A marketer picks the bundled orders export on the Reconcile page: the planted
    orders neither stream sent are listed and download, the Overview then shows the match
    rate; the CRM tab's stage table shows the Demo scheduled stage late and 5 never sent."""
    page, errors = _open(browser, f"{server}/?period=All+data")
    _go_to(page, "Reconcile")
    period = page.get_by_role("combobox", name="Period")
    _expect_chosen(page, period, "All data")  # every order of the export counts
    _reconcile_file(page, "orders", "sample/orders.csv", "Orders", "241")  # 241 orders
    findings = _download_csv(page, "reconcile_findings")
    missing = [row["Order"] for row in findings if row["Status"] == "missing"]
    assert sum(order.startswith("ORD-9") for order in missing) == 12
    assert any("value mismatch" in row["What is wrong"] for row in findings)
    page.screenshot(path=str(SCREENSHOTS / "reconcile.png"), full_page=True)
    page.get_by_role("tab", name="CRM stages").click()
    _reconcile_file(page, "crm", "sample/crm_stages.csv", "Stage changes", "Stage changes")
    stages = {row["Stage"]: row for row in _download_csv(page, "reconcile_stages")}
    assert stages["Demo scheduled"]["Missing"] == "5"
    assert stages["Demo scheduled"]["Late"] == stages["Demo scheduled"]["Sent"]
    _go_to(page, "Overview")
    assert "orders reached Meta as server Purchases" in page.inner_text("body")
    assert not errors
    page.close()
