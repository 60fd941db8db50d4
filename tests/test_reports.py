"""Shareable reports opened for real: XLSX with openpyxl, HTML parsed, PDF read back."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import openpyxl
import pytest
from conftest import write_jsonl
from logkit import T0, capi, event, pixel, sha

from dashboard.core.filters import Filters
from dashboard.ingest import ingest
from dashboard.outputs import documents as reports

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


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def test_html_is_escaped_self_contained_and_has_charts(nasty_store):
    page = reports.render_html(nasty_store)
    assert "<script>alert(1)</script>" not in page
    parsed = _Collector()
    parsed.feed(page)
    text = "".join(parsed.text)
    assert "<script>alert(1)</script>" in text  # shown as text
    assert "plain@example.com" not in page
    scripts = [attrs for tag, attrs in parsed.tags if tag == "script"]
    assert scripts and all("src" not in attrs for attrs in scripts)  # plotly.js is inlined
    for tag, attrs in parsed.tags:
        for name in ("src", "href"):
            assert not str(attrs.get(name, "")).startswith(("http:", "https:", "//")), (tag, attrs)
    assert page.count('class="plotly-graph-div"') == 3
    assert "Per campaign" in text and "Per funnel stage" in text and "Top diagnostics" in text
    assert "Dedup gaps (showing" in text


def test_xlsx_sheets_values_formats_and_no_formulas(nasty_store):
    book = openpyxl.load_workbook(io.BytesIO(reports.render_xlsx(nasty_store)))
    assert book.sheetnames == [
        "Summary",
        "Campaigns",
        "Funnel stages",
        "Events",
        "Diagnostics",
        "Dedup gaps",
    ]
    sheet = book["Campaigns"]
    header = [c.value for c in sheet[1]]
    rows = [
        dict(zip(header, [c.value for c in row], strict=True)) for row in sheet.iter_rows(min_row=2)
    ]
    groups = {r["Group"] for r in rows}  # human headers in every download
    assert '\'=HYPERLINK("http://evil.test","x")' in groups
    # (the tab is stripped at import, like any surrounding whitespace)
    assert {"'+1+2", "'-3", "'@SUM(A1)", "Tab", "<script>alert(1)</script>", "leads"} <= groups
    for row in sheet.iter_rows():
        for cell in row:
            assert cell.data_type != "f"
    coverage_col = header.index("Event coverage (%)") + 1
    assert sheet.cell(row=2, column=coverage_col).number_format == "0.0%"
    purchase = next(r for r in rows if r["Group"] == "<script>alert(1)</script>")
    assert purchase["Event coverage (%)"] == 1.0 and purchase["Browser events"] == 1


def test_csv_report_is_neutralised(nasty_store):
    text = reports.render_csv(nasty_store).decode("utf-8-sig")
    assert "'=HYPERLINK" in text and "\n=HYPERLINK" not in text and ",=HYPERLINK" not in text
    assert text.splitlines()[0].startswith("Section,Group,Browser events,")


def test_pdf_has_pages_and_text(nasty_store):
    if reports.find_chromium() is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium missing under CI")
        pytest.skip("no Chromium")
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(reports.render_pdf(reports.render_html(nasty_store))))
    assert len(reader.pages) >= 1
    text = " ".join(page.extract_text() for page in reader.pages)
    assert "Event quality report" in text and "Per campaign" in text


def test_pdf_without_chromium_is_a_clear_error(nasty_store, monkeypatch):
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
        )  # noqa: E731

    assert run("ingest", str(log), "--db", db).returncode == 0
    out = tmp_path / "r.xlsx"
    assert run("report", "--db", db, "--format", "xlsx", "--out", str(out)).returncode == 0
    assert openpyxl.load_workbook(out)["Campaigns"]["A2"].value == "'=1"
    html = run("report", "--db", db, "--format", "html")
    assert html.returncode == 0 and html.stdout.startswith("<!DOCTYPE html>")
    missing_out = run("report", "--db", db, "--format", "pdf")
    assert missing_out.returncode == 2 and "needs --out" in missing_out.stderr
    assert Path(out).stat().st_size > 0


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
