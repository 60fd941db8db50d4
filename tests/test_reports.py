"""The exported report opened for real: HTML parsed and shown in Chromium, the XLSX with
openpyxl, the CSV zip unpacked, the PDF read back with pypdf and rendered with pdftoppm.
Numbers on a hand-built log are worked out in the tests; layout is checked on the sample."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
import unicodedata
import zipfile
from html.parser import HTMLParser

import openpyxl
import pandas as pd
import pytest
from conftest import write_jsonl
from logkit import T0, capi, event, pixel, sha

from dashboard.core.config import load_config
from dashboard.core.filters import Filters
from dashboard.ingest import ingest
from dashboard.outputs import documents as reports
from dashboard.outputs.documents import CHROMIUM_FLAGS
from dashboard.outputs.report_html import render_html
from dashboard.outputs.report_model import APPENDIX_CAP, DOCUMENT_ROWS

SECTION_ORDER = [
    "summary",
    "campaigns",
    "stages",
    "funnel",
    "parameters",
    "delivery",
    "diagnostics",
]
NASTY = [
    "<script>alert(1)</script>",
    '=HYPERLINK("http://evil.test","x")',
    "+1+2",
    "-3",
    "@SUM(A1)",
    "\tTab",
]


@pytest.fixture
def nasty_store(duck_engine, tmp_path, config):
    records = []
    for i, campaign in enumerate(NASTY):
        ev = event(
            "Purchase",
            T0 + i,
            f"o{i}",
            em=sha(f"{i}@x.test"),
            fbp=f"fb.1.1700000000000.{i}",
            custom_data={"campaign": campaign, "value": 10, "currency": "EUR"},
        )
        records += [pixel(ev, sent_at=T0 + i), capi([ev], sent_at=T0 + i + 5)]
    records.append(
        capi(
            [event("Lead", T0, None, em="plain@example.com", custom_data={"campaign": "leads"})],
            sent_at=T0,
        )
    )
    ingest([write_jsonl(tmp_path / "log.jsonl", records)], duck_engine, config=config)
    return reports.collect(duck_engine, Filters(), config)


def _needs_chromium():
    if reports.find_chromium() is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium missing under CI")
        pytest.skip("no Chromium")


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def _parsed(page: str) -> _Collector:
    parsed = _Collector()
    parsed.feed(page)
    return parsed


@pytest.fixture
def hand_report(duck_engine, tmp_path, config):
    """4 Pixel Purchases of campaign "spring", 3 with a server twin (coverage exactly the
    75% goal); one server Lead of campaign "leads" with a plaintext e-mail."""
    records = []
    for i in range(4):
        ev = event(
            "Purchase",
            T0 + 60 * i,
            f"o{i}",
            em=sha(f"{i}@x.test"),
            fbp=f"fb.1.1700000000000.{i}",
            custom_data={"campaign": "spring", "value": 10, "currency": "EUR"},
        )
        records.append(pixel(ev, sent_at=T0 + 60 * i))
        if i < 3:
            records.append(capi([ev], sent_at=T0 + 60 * i + 5))
    lead = event("Lead", T0, "l1", em="plain@example.com", custom_data={"campaign": "leads"})
    records.append(capi([lead], sent_at=T0 + 1))
    ingest([write_jsonl(tmp_path / "hand.jsonl", records)], duck_engine, config=config)
    return reports.collect(duck_engine, Filters(), config)


def test_html_is_escaped_and_self_contained(nasty_store):
    page = render_html(nasty_store)
    assert "<script>alert(1)</script>" not in page
    parsed = _parsed(page)
    assert "<script>alert(1)</script>" in "".join(parsed.text)  # shown as text
    assert "plain@example.com" not in page
    assert not [attrs for tag, attrs in parsed.tags if tag == "script"]  # static SVG charts
    for tag, attrs in parsed.tags:
        for name in ("src", "href"):
            assert not str(attrs.get(name, "")).startswith(("http:", "https:", "//")), (tag, attrs)


def test_first_page_numbers_worked_out_by_hand(hand_report):
    cards = {h.label: h for h in hand_report.headlines}
    # 3 of 4 Pixel Purchases have a server twin: exactly the goal, which passes.
    assert cards["Event coverage"].shown == "75.0%"
    assert cards["Event coverage"].verdict == "good"
    assert cards["Event coverage"].value == pytest.approx(0.75)
    assert cards["Events with plaintext PII"].shown == "1"
    assert cards["Events with plaintext PII"].verdict == "bad"
    assert cards["Rejected by Meta"].shown == "0"
    # Critical first: the plaintext e-mail, 1 of the 4 server events sent.
    first = hand_report.fixes[0]
    assert first.title.startswith("Plaintext personal data")
    assert first.affected == "1 of 4 events (25.0%)"
    assert len(hand_report.fixes) <= 3
    assert any("Event coverage is 75.0%" in line for line in hand_report.good)
    assert not any("unhashed personal data" in line for line in hand_report.good)
    page = render_html(hand_report)
    text = "".join(_parsed(page).text)
    assert "Period: All data: 20 Nov 2025 – 20 Nov 2025" in text
    assert "What is good" in text and "What to fix first" in text
    assert "✗ needs attention" in text and "✓ on target" in text  # never colour alone


def test_section_order_and_tables(hand_report):
    page = render_html(hand_report)
    ids = [attrs["id"] for tag, attrs in _parsed(page).tags if tag == "section"]
    assert ids == SECTION_ORDER  # no appendix unless asked for
    campaigns = next(t for t in hand_report.tables() if t.key == "campaigns").frame
    assert list(campaigns["campaign"]) == ["spring", "leads"]  # largest first
    spring = campaigns.iloc[0]
    assert (spring["server_events"], spring["browser_events"]) == (3, 4)
    assert spring["event_coverage"] == pytest.approx(0.75)
    keys = next(t for t in hand_report.tables() if t.key == "match_keys").frame.set_index(
        "event_name"
    )
    assert keys.loc["Purchase", "em"] == 1.0 and keys.loc["Lead", "em"] == 0.0
    problems = next(t for t in hand_report.tables() if t.key == "key_problems").frame
    assert problems.to_dict("records") == [
        {
            "event_name": "Lead",
            "parameter": "E-mail",
            "sent": 1,
            "invalid": 1,
            "unhashed_plaintext": 1,
        }
    ]


def test_xlsx_summary_first_with_number_formats(hand_report):
    book = openpyxl.load_workbook(io.BytesIO(reports.render(hand_report, "xlsx")))
    assert book.sheetnames[:3] == ["Summary", "Per campaign", "Per funnel stage"]
    assert book.sheetnames[-1] == "All findings"
    summary = book["Summary"]
    rows = {row[0].value: row for row in summary.iter_rows() if row[0].value}
    coverage = rows["Event coverage"][1]
    assert coverage.value == pytest.approx(0.75) and coverage.number_format == "0.0%"
    assert rows["EMQ estimate"][1].number_format == "0.0"
    assert rows["Events with plaintext PII"][1].value == 1
    assert rows["Events with plaintext PII"][1].number_format == "#,##0"
    assert summary.freeze_panes is not None
    sheet = book["Per campaign"]
    assert sheet.freeze_panes == "A2"
    header = [c.value for c in sheet[1]]
    assert header[:4] == ["Campaign", "Server events", "Browser events", "Event coverage (%)"]
    assert sheet.cell(row=2, column=4).number_format == "0.0%"
    assert sheet.cell(row=2, column=2).number_format == "#,##0"
    findings = book["All findings"]
    how = [c.value for c in findings[1]].index("How to fix") + 1
    letter = findings.cell(row=1, column=how).column_letter
    assert findings.column_dimensions[letter].width >= 40  # long advice is wide and wraps
    assert findings.cell(row=2, column=how).alignment.wrap_text


def test_xlsx_values_are_neutralised(nasty_store):
    book = openpyxl.load_workbook(io.BytesIO(reports.render(nasty_store, "xlsx")))
    sheet = book["Per campaign"]
    groups = {row[0].value for row in sheet.iter_rows(min_row=2) if row[0].value}
    assert '\'=HYPERLINK("http://evil.test","x")' in groups
    # (the tab is stripped at import, like any surrounding whitespace)
    assert {"'+1+2", "'-3", "'@SUM(A1)", "Tab", "<script>alert(1)</script>", "leads"} <= groups
    for name in book.sheetnames:
        for row in book[name].iter_rows():
            assert all(cell.data_type != "f" for cell in row)


def test_csv_zip_one_file_per_table_in_order(hand_report):
    archive = zipfile.ZipFile(io.BytesIO(reports.render(hand_report, "csv")))
    names = archive.namelist()
    assert names[0] == "01-summary.csv" and names[1] == "02-campaigns.csv"
    assert names[-1].endswith("-diagnostics.csv")
    rows = list(csv.DictReader(io.StringIO(archive.read(names[1]).decode("utf-8-sig"))))
    spring = next(r for r in rows if r["Campaign"] == "spring")
    assert spring["Event coverage (%)"] == "75.0" and spring["Browser events"] == "4"
    assert reports.default_file_name("csv").endswith(".zip")


def test_csv_zip_is_neutralised(nasty_store):
    archive = zipfile.ZipFile(io.BytesIO(reports.render(nasty_store, "csv")))
    text = archive.read("02-campaigns.csv").decode("utf-8-sig")
    assert "'=HYPERLINK" in text and "\n=HYPERLINK" not in text and ",=HYPERLINK" not in text


def test_branding_from_config(duck_engine, tmp_path):
    logo = tmp_path / "logo.png"
    from PIL import Image

    Image.new("RGB", (40, 20), "navy").save(logo)
    (tmp_path / "brand.toml").write_text(
        '[report]\ntitle = "Tracking health"\nclient = "Acme <Shoes>"\nlogo = "logo.png"\n'
    )
    config = load_config(tmp_path / "brand.toml")
    log = write_jsonl(tmp_path / "l.jsonl", [capi([event("Lead", T0, "a")], sent_at=T0)])
    ingest([log], duck_engine, config=config)
    content = reports.collect(duck_engine, Filters(), config)
    page = render_html(content)
    assert "<title>Tracking health · Acme &lt;Shoes&gt;</title>" in page
    assert "Prepared for Acme &lt;Shoes&gt;" in page
    assert '<img src="data:image/png;base64,' in page
    summary = openpyxl.load_workbook(io.BytesIO(reports.render(content, "xlsx")))["Summary"]
    assert summary["A1"].value == "Tracking health"
    assert summary["B2"].value == "Acme <Shoes>"


def test_appendix_is_capped_and_points_to_the_full_list(duck_engine, tmp_path, config):
    # 205 Pixel events without a server twin: 205 gaps, 200 in the appendix.
    records = [pixel(event("ViewContent", T0 + i, f"v{i}"), sent_at=T0 + i) for i in range(205)]
    ingest([write_jsonl(tmp_path / "gaps.jsonl", records)], duck_engine, config=config)
    assert reports.collect(duck_engine, Filters(), config).appendix is None
    content = reports.collect(duck_engine, Filters(), config, appendix=True)
    assert len(content.appendix.frame) == APPENDIX_CAP and content.appendix.rows == 205
    assert f"The first {APPENDIX_CAP} of 205 events" in content.appendix.note
    page = render_html(content)
    ids = [attrs["id"] for tag, attrs in _parsed(page).tags if tag == "section"]
    assert ids[-1] == "appendix"
    assert page.count("<tr>") >= APPENDIX_CAP


def test_long_tables_are_cut_on_paper_only(duck_engine, tmp_path, config):
    records = [
        capi([event("Lead", T0 + i, f"l{i}", custom_data={"campaign": f"c{i:02d}"})], T0 + i)
        for i in range(DOCUMENT_ROWS + 5)
    ]
    ingest([write_jsonl(tmp_path / "many.jsonl", records)], duck_engine, config=config)
    content = reports.collect(duck_engine, Filters(), config)
    page = render_html(content)
    campaigns = page[page.index('id="campaigns"') : page.index('id="stages"')]
    assert campaigns.count("<tr>") == DOCUMENT_ROWS + 1  # the header row and 25 campaigns
    assert f"The {DOCUMENT_ROWS} largest of {DOCUMENT_ROWS + 5} campaigns" in campaigns
    book = openpyxl.load_workbook(io.BytesIO(reports.render(content, "xlsx")))
    assert book["Per campaign"].max_row >= DOCUMENT_ROWS + 5 + 1


def test_sample_html_is_small_and_fits_1280_px(sample_engine, tmp_path):
    _needs_chromium()
    page = render_html(reports.collect(sample_engine, Filters(), load_config(), appendix=True))
    assert len(page.encode()) < 1_500_000
    path = tmp_path / "report.html"
    path.write_text(page, encoding="utf-8")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=reports.find_chromium(), args=CHROMIUM_FLAGS)
        view = browser.new_page(viewport={"width": 1280, "height": 900})
        view.goto(path.as_uri())
        assert view.evaluate("document.documentElement.scrollWidth") <= 1280
        assert view.locator("figure.chart svg").count() >= 4
        browser.close()


def test_sample_pdf_pages_and_headings_kept_with_tables(sample_engine, tmp_path):
    _needs_chromium()
    from pypdf import PdfReader

    content = reports.collect(sample_engine, Filters(), load_config())
    pdf = reports.render(content, "pdf")
    reader = PdfReader(io.BytesIO(pdf))
    assert 2 <= len(reader.pages) <= 12
    # NFKC: the PDF's text has ligatures ("ﬁ") where the HTML has two letters.
    texts = [unicodedata.normalize("NFKC", page.extract_text()) for page in reader.pages]
    assert "What to fix first" in texts[0] and "Period:" in texts[0]
    assert "Per campaign" not in texts[0]  # page 1 is the summary alone
    headings = {s.title for s in content.sections} | {t.title for t in content.tables()}
    intros = " ".join(s.intro for s in content.sections)
    for number, text in enumerate(texts[:-1], 1):
        lines = [line.strip() for line in text.strip().splitlines()]
        while lines and lines[-1] and lines[-1] in intros:  # a heading's intro lines
            lines.pop()
        assert lines[-1] not in headings, f"page {number} ends with the heading {lines[-1]!r}"
    if shutil.which("pdftoppm"):
        (tmp_path / "r.pdf").write_bytes(pdf)
        subprocess.run(
            ["pdftoppm", "-r", "40", "-png", str(tmp_path / "r.pdf"), str(tmp_path / "page")],
            check=True,
        )
        assert len(list(tmp_path.glob("page-*.png"))) == len(reader.pages)


def test_pdf_without_chromium_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(reports, "find_chromium", lambda: None)
    with pytest.raises(reports.PdfUnavailable, match="apt-get install chromium"):
        reports.render_pdf("<html></html>")


def test_cli_report_formats(tmp_path):
    db = f"duckdb:///{tmp_path / 'r.duckdb'}"
    log = write_jsonl(
        tmp_path / "log.jsonl",
        [capi([event("Lead", T0, "x", custom_data={"campaign": "=1"})], sent_at=T0)],
    )

    def run(*a):
        return subprocess.run(
            [sys.executable, "-m", "dashboard", *a], capture_output=True, text=True
        )

    assert run("ingest", str(log), "--db", db).returncode == 0
    out = tmp_path / "r.xlsx"
    assert run("report", "--db", db, "--format", "xlsx", "--out", str(out)).returncode == 0
    assert openpyxl.load_workbook(out)["Per campaign"]["A2"].value == "'=1"
    html = run("report", "--db", db, "--format", "html", "--appendix")
    assert html.returncode == 0 and html.stdout.startswith("<!DOCTYPE html>")
    assert 'id="appendix"' in html.stdout
    for form in ("pdf", "csv"):
        missing_out = run("report", "--db", db, "--format", form)
        assert missing_out.returncode == 2 and "needs --out" in missing_out.stderr
    zipped = tmp_path / "r.zip"
    assert run("report", "--db", db, "--format", "csv", "--out", str(zipped)).returncode == 0
    assert zipfile.ZipFile(zipped).namelist()[0] == "01-summary.csv"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("spring_sale", "spring_sale"),
        ("a=b", "a=b"),  # only a leading character makes a formula
        (-1, -1),  # numbers stay numbers
        (None, None),
    ],
)
def test_neutralise(value, expected):
    from dashboard.outputs.exports import neutralise

    assert neutralise(value) == expected


def test_findings_of_one_kind_share_a_row_on_paper_only(duck_engine, tmp_path, config):
    """Five event names below the coverage goal (no server events at all): one row on
    paper, worked out by hand; the workbook keeps the five."""
    names = ["Lead", "Contact", "Search", "AddToCart", "Schedule"]
    records = [
        pixel(event(name, T0 + 60 * n + i, f"{name}{i}"), sent_at=T0 + 60 * n + i)
        for n, name in enumerate(names)
        for i in range(10 + n)  # 10, 11, 12, 13, 14 browser events: 60 in all
    ]
    ingest([write_jsonl(tmp_path / "uncovered.jsonl", records)], duck_engine, config=config)
    content = reports.collect(duck_engine, Filters(), config)
    (findings,) = [t for s in content.sections for t in s.tables if t.key == "diagnostics"]
    coverage = findings.frame[findings.frame["name"].str.contains("covered by the Conversions")]
    assert len(coverage) == 5
    grouped = findings.paper_frame
    assert len(grouped) == len(findings.frame) - 4
    (row,) = grouped[grouped["name"].str.startswith("5 findings of one kind")].to_dict("records")
    assert (row["affected"], row["total"], row["share"]) == (60, 60, 1.0)
    assert "The worst: " in row["name"] and "(goal 75.0%)" in row["name"]
    page = render_html(content)
    listed = page[page.index('id="diagnostics"') :]
    assert "5 findings of one kind" in listed and "list each of the" in listed
    assert listed.count("covered by the Conversions API") == 1
    book = openpyxl.load_workbook(io.BytesIO(reports.render(content, "xlsx")))
    cells = [c.value for c in book["All findings"]["B"] if c.value]
    assert sum("covered by the Conversions API" in str(v) for v in cells) == 5
    assert not any("share one row" in str(c.value) for row in book["All findings"] for c in row)


def test_grouped_findings_keep_order_and_small_kinds():
    from dashboard.outputs.report_sections import grouped_findings

    def found(key, severity, name, affected, total, fix="fix"):
        return [key, severity, name, affected, total, affected / total, fix]

    columns = ["key", "severity", "name", "affected", "total", "share", "how_to_fix"]
    frame = pd.DataFrame(
        [
            found("unhashed_pii", "critical", "Plaintext", 3, 10),
            found("parameter_gap", "warning", "gap a", 8, 10, "a"),
            found("late_stage", "warning", "late", 2, 2),
            found("parameter_gap", "warning", "gap b", 5, 10, "b"),
            found("parameter_gap", "warning", "gap c", 2, 10, "a"),
            found("parameter_gap", "warning", "gap d", 1, 20, "a"),
        ],
        columns=columns,
    )
    paper = grouped_findings(frame)
    assert paper["key"].tolist() == ["unhashed_pii", "parameter_gap", "late_stage"]
    gap = paper.iloc[1]
    assert (gap["affected"], gap["total"]) == (16, 50) and gap["share"] == 16 / 50
    assert gap["name"].startswith("4 findings of one kind: ") and gap["name"].endswith("gap a")
    assert gap["how_to_fix"].startswith("a (The advice differs")
    # Three of one kind stay three rows.
    assert len(grouped_findings(frame.iloc[:5])) == 5
