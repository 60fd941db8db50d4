"""Shareable quality reports: HTML, PDF, Excel and zipped CSV, from one content. No Streamlit.

Owns the report's entry points (`collect`, `render`, `default_file_name`) and printing
the HTML to PDF with headless Chromium (optional: a clear error when no Chromium is
found). What the report says is `client_report`; the HTML is `report_html`; the
workbook and the CSV zip are `report_files`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from dashboard.core.config import Config
from dashboard.core.filters import Filters
from dashboard.outputs.client_report import build
from dashboard.outputs.report_model import ClientReport
from dashboard.store.handles import Engine

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Headless Chromium on a closed network: no sandbox as root, no GPU, no background calls.
CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)
FORMATS = ("html", "pdf", "xlsx", "csv")
MIME_TYPES = {
    "html": "text/html",
    "pdf": "application/pdf",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "application/zip",
}


class PdfUnavailable(RuntimeError):
    """No Chromium/Chrome on this machine to print the PDF with."""


def collect(
    engine: Engine, filters: Filters, config: Config, *, appendix: bool = False
) -> ClientReport:
    """Compute the report's content for a slice (with `appendix`: the capped gap list)."""
    return build(engine, filters, config, appendix=appendix)


def find_chromium() -> str | None:
    """A Chromium/Chrome executable: $BROWSER_PATH, else the usual names on PATH."""
    explicit = os.environ.get("BROWSER_PATH")
    if explicit and Path(explicit).exists():
        return explicit
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def render_pdf(html_text: str, timeout_s: float = 120) -> bytes:
    """Print the HTML report to PDF with headless Chromium."""
    browser = find_chromium()
    if browser is None:
        raise PdfUnavailable(
            "PDF needs Chromium or Chrome (apt-get install chromium, or set BROWSER_PATH); "
            "the HTML report works without it."
        )
    with tempfile.TemporaryDirectory(prefix="eqm-pdf-") as folder:
        page = Path(folder) / "report.html"
        out = Path(folder) / "report.pdf"
        page.write_text(html_text, encoding="utf-8")
        command = [
            browser,
            "--headless",
            *CHROMIUM_FLAGS,
            "--no-pdf-header-footer",
            f"--user-data-dir={Path(folder) / 'profile'}",
            "--virtual-time-budget=20000",
            f"--print-to-pdf={out}",
            page.as_uri(),
        ]
        done = subprocess.run(command, capture_output=True, timeout=timeout_s)
        if not out.exists() or out.stat().st_size == 0:
            raise PdfUnavailable(
                f"Chromium could not print the PDF: {done.stderr.decode(errors='replace')[-300:]}"
            )
        return out.read_bytes()


def render(content: ClientReport, form: str) -> bytes:
    """Bytes of the report in one format: html, pdf, xlsx or csv (a zip of CSV files)."""
    from dashboard.outputs import report_files, report_html

    if form == "html":
        return report_html.render_html(content).encode("utf-8")
    if form == "pdf":
        return render_pdf(report_html.render_html(content))
    if form == "xlsx":
        return report_files.render_xlsx(content)
    if form == "csv":
        return report_files.render_csv_zip(content)
    raise ValueError(f"unknown report format {form}")


def default_file_name(form: str) -> str:
    """event-quality-report-YYYYMMDD.<ext> (the CSV tables come as one .zip)."""
    extension = "zip" if form == "csv" else form
    return f"event-quality-report-{datetime.now(tz=UTC):%Y%m%d}.{extension}"
