"""Shareable quality reports: one self-contained HTML file, PDF, Excel and CSV. No Streamlit.

Owns the report's tables (summary with period-over-period change, per campaign, per
funnel stage, per event, diagnostics, the capped dedup gap list), and rendering them.
Every string from the log is escaped in HTML and neutralised in spreadsheets. The HTML
embeds plotly.js, so it renders offline from an e-mail attachment; the PDF is that HTML
printed by headless Chromium (optional: a clear error when no Chromium is found).
"""

from __future__ import annotations

import html
import io
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from dashboard.core import formatting as fmt
from dashboard.core.config import Config
from dashboard.core.filters import Filters
from dashboard.core.measures import SUMMARY
from dashboard.outputs import charts, labels
from dashboard.outputs.exports import safe_frame
from dashboard.outputs.report import build_report_and_frames
from dashboard.outputs.scorecards import FORMATS, Scorecard, scorecards
from dashboard.quality.emq import tier
from dashboard.store.handles import Engine
from dashboard.store.queries.match import gap_events

GAP_LIST_CAP = 500
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
RATE_COLUMNS = ("event_coverage", "event_coverage_any_key", "share", "coverage")


class PdfUnavailable(RuntimeError):
    """No Chromium/Chrome on this machine to print the PDF with."""


@dataclass
class ReportData:
    """Everything a rendered report shows, computed once."""

    report: dict[str, Any]
    tables: dict[str, pd.DataFrame]
    gaps_total: int
    by_campaign: pd.DataFrame
    by_event: pd.DataFrame
    filters: Filters
    config: Config


def _block_row(name: str, block: dict[str, Any]) -> dict[str, Any]:
    return {
        "group": name,
        "browser_events": block["browser_events"],
        "server_events": block["server_events"],
        "server_rejected_by_meta": block["server_rejected_by_meta"],
        "event_coverage": block["event_coverage"],
        "event_coverage_any_key": block["event_coverage_any_key"],
        "emq_estimate": block["emq_estimate"],
        "emq_tier": block.get("emq_tier"),
        "likely_double_counted": block["dedup"]["likely_double_counted"],
        "server_without_event_id": block["server_without_event_id"],
        "unhashed_pii": block["unhashed_pii"],
        "test_events": block["test_events"],
        "median_lag_s": block["freshness"]["median_lag_s"],
        "stale_over_7d": block["freshness"]["stale_over_7d"],
    }


def summary_table(report: dict[str, Any], config: Config) -> pd.DataFrame:
    """The registry's summary measures as rows: value, previous period, change, goal or tier."""
    cards = scorecards(report["overall"], report.get("previous_overall"), config, SUMMARY)
    return pd.DataFrame(
        [
            {
                "metric": card.label,
                "value": card.value,
                "previous_period": card.previous,
                "change": card.change,
                "goal_or_tier": card.goal,
            }
            for card in cards
        ],
        columns=["metric", "value", "previous_period", "change", "goal_or_tier"],
    )


def collect(engine: Engine, filters: Filters, config: Config) -> ReportData:
    """Compute the report and its tables for a slice."""
    report, frames = build_report_and_frames(engine, filters, config)
    tables = {
        "Summary": summary_table(report, config),
        "Campaigns": pd.DataFrame([_block_row(k, v) for k, v in report["by_campaign"].items()]),
        "Funnel stages": pd.DataFrame(
            [_block_row(k, v) for k, v in report["by_funnel_stage"].items()]
        ),
        "Events": pd.DataFrame([_block_row(k, v) for k, v in report["by_event_name"].items()]),
        "Diagnostics": pd.DataFrame(
            report["diagnostics"],
            columns=["severity", "name", "affected", "total", "share", "how_to_fix"],
        )[["severity", "name", "affected", "total", "share", "how_to_fix"]],
    }
    gaps, total = gap_events(engine, filters, limit=GAP_LIST_CAP, config=config)
    if not gaps.empty:
        for column in ("event_time", "sent_at"):
            gaps[column] = gaps[column].dt.strftime("%Y-%m-%d %H:%M:%S UTC")
    tables["Dedup gaps"] = gaps
    return ReportData(
        report=report,
        tables=tables,
        gaps_total=total,
        by_campaign=frames["campaign"],
        by_event=frames["event_name"],
        filters=filters,
        config=config,
    )


# ---------------------------------------------------------------------------
# HTML
_CSS = """
body{font-family:-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif;margin:2rem auto;max-width:1200px;color:#222;padding:0 1rem}
h1{margin-bottom:.2rem} .muted{color:#666} table{border-collapse:collapse;width:100%;margin:.5rem 0 1.5rem;font-size:13px}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top} th{background:#f3f3f3}
td.num{text-align:right;white-space:nowrap} .cards{display:flex;flex-wrap:wrap;gap:12px;margin:1rem 0}
.card{border:1px solid #ddd;border-radius:8px;padding:10px 14px;min-width:200px;flex:1}
.card .v{font-size:26px;font-weight:600} .bad{color:#c62828} .good{color:#1a7f37}
.chart{page-break-inside:avoid} @page{size:A4 landscape;margin:10mm}
@media print{body{margin:0;max-width:none} table{font-size:8px} th,td{padding:2px 4px}}
"""


def _cell(value: Any, column: str) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return '<td class="num">–</td>'
    if column in RATE_COLUMNS and isinstance(value, int | float):
        return f'<td class="num">{fmt.percent(value)}</td>'
    if column == "emq_estimate" and isinstance(value, int | float):
        return f'<td class="num">{fmt.score(value)}</td>'
    if column.endswith("_lag_s") and isinstance(value, int | float):
        return f'<td class="num">{fmt.duration(value)}</td>'
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (
            f'<td class="num">{value:,}</td>'
            if isinstance(value, int)
            else f'<td class="num">{value:,.2f}</td>'
        )
    return f"<td>{html.escape(str(value))}</td>"


def html_table(frame: pd.DataFrame) -> str:
    """An escaped HTML table."""
    if frame.empty:
        return '<p class="muted">No events in this selection.</p>'
    head = "".join(f"<th>{html.escape(labels.label(c))}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(_cell(v, c) for c, v in zip(frame.columns, row, strict=True)) + "</tr>"
        for row in frame.itertuples(index=False, name=None)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _summary_html(frame: pd.DataFrame) -> str:
    out = frame.copy()
    kinds = {measure.label: measure.kind for measure in SUMMARY}
    for column in ("value", "previous_period"):
        out[column] = [
            FORMATS[kinds[metric]](value)
            for metric, value in zip(out["metric"], out[column], strict=True)
        ]
    return html_table(out)


def _comparison_note(report: dict[str, Any]) -> str:
    compared = report["period"].get("comparison")
    if compared is None:
        return "No comparison: a comparison needs both --since and --until."
    return compared["note"]


def _card_value(card: Scorecard) -> str:
    if card.measure.kind == "score":
        return f"{card.shown} · {card.goal.removeprefix('tier ')}"
    if card.measure.goal:
        return f"{card.shown} ({card.goal})"
    return card.shown


def _verdict(card: Scorecard, config: Config) -> str:
    """The colour of a card: good, bad, or none for a measure without a bar to pass."""
    value = card.value
    if card.measure.kind == "score":
        return "good" if tier(value, config) in ("Good", "Great") else "bad"
    if card.measure.goal:  # judged on the value as shown: 74.96% reads 75.0%
        goal = getattr(config, card.measure.goal)
        return "good" if value is not None and round(value, 3) >= goal else "bad"
    if card.measure.kind == "duration":
        late = config.freshness["late_median_lag_s"]
        return "good" if (value or 0) <= late else "bad"
    if card.lower_is_better:
        return "good" if not value else "bad"
    return ""


def render_html(data: ReportData) -> str:
    """The whole report as one self-contained HTML page (plotly.js inlined, works offline)."""
    report, config = data.report, data.config
    overall = report["overall"]
    period = report["period"]
    span = (
        f"{period['since']} to {period['until']}"
        if period["since"]
        else f"all data ({period['data_first_day']} to {period['data_last_day']})"
    )
    filters = (
        ", ".join(
            f"{k}: {', '.join(v) if isinstance(v, list) else v}"
            for k, v in period["filters"].items()
            if k not in ("since", "until")
        )
        or "none"
    )
    card_html = "".join(
        f'<div class="card"><div class="muted">{html.escape(card.label)}</div>'
        f'<div class="v {_verdict(card, config)}">{html.escape(_card_value(card))}</div></div>'
        for card in scorecards(overall, None, config)
    )
    figures = [
        charts.emq_bars(data.by_campaign, "campaign", config, "EMQ by campaign"),
        charts.coverage_bars(
            data.by_event, "event_name", config.coverage_goal, "Event coverage by event"
        ),
        charts.dedup_stacked(data.by_event, "event_name", "server"),
    ]
    chart_html = "".join(
        f'<div class="chart">{fig.to_html(full_html=False, include_plotlyjs=(i == 0), config={"displaylogo": False})}</div>'
        for i, fig in enumerate(figures)
    )
    gaps = data.tables["Dedup gaps"]
    sections = [
        f"<h1>Event quality report</h1><p class=muted>Period: {html.escape(span)} · filters: {html.escape(filters)} · "
        f"generated {html.escape(report['generated_at'])} · EMQ values are estimates from the parameters sent, "
        "not Meta's score; tier cut-offs are approximate.</p>",
        f'<div class="cards">{card_html}</div>',
        "<h2>Summary and change vs the previous period</h2>"
        + f'<p class="muted">{html.escape(_comparison_note(report))}</p>'
        + _summary_html(data.tables["Summary"]),
        "<h2>Top diagnostics</h2>" + html_table(data.tables["Diagnostics"].head(15)),
        "<h2>Charts</h2>" + chart_html,
        "<h2>Per campaign</h2>" + html_table(data.tables["Campaigns"]),
        "<h2>Per funnel stage</h2>" + html_table(data.tables["Funnel stages"]),
        "<h2>Per event</h2>" + html_table(data.tables["Events"]),
        f"<h2>Dedup gaps (showing {len(gaps):,} of {data.gaps_total:,})</h2>" + html_table(gaps),
    ]
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        "<title>Event quality report</title>"
        f"<style>{_CSS}</style></head><body>{''.join(sections)}</body></html>"
    )


# ---------------------------------------------------------------------------
# PDF, Excel, CSV
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


def render_xlsx(data: ReportData) -> bytes:
    """One sheet per table, formatted headers, rates as percentages, formulas neutralised."""
    buffer = io.BytesIO()
    options = {"strings_to_formulas": False, "strings_to_urls": False}
    with pd.ExcelWriter(buffer, engine="xlsxwriter", engine_kwargs={"options": options}) as writer:
        book = writer.book
        header = book.add_format(
            {"bold": True, "bg_color": "#F3F3F3", "border": 1, "text_wrap": True}
        )
        percent = book.add_format({"num_format": "0.0%"})
        number = book.add_format({"num_format": "#,##0.00"})
        for name, frame in data.tables.items():
            safe = safe_frame(frame)
            safe.to_excel(writer, sheet_name=name[:31], index=False)
            sheet = writer.sheets[name[:31]]
            for col, column in enumerate(safe.columns):
                # Numbers stay numbers in a workbook: a lag keeps its unit in the header.
                name = labels.label(column)
                if column in labels.DURATION_COLUMNS:
                    name += " (s)"
                sheet.write(0, col, name, header)
                width = min(60, max(10, len(str(column)) + 2))
                if column in RATE_COLUMNS:
                    sheet.set_column(col, col, width, percent)
                elif column in ("emq_estimate", "median_lag_s"):
                    sheet.set_column(col, col, width, number)
                else:
                    sheet.set_column(col, col, width)
            sheet.freeze_panes(1, 0)
    return buffer.getvalue()


def render_csv(data: ReportData) -> bytes:
    """The per-group tables stacked in one CSV (a 'section' column says which)."""
    parts = []
    for section in ("Campaigns", "Funnel stages", "Events"):
        frame = data.tables[section].copy()
        frame.insert(0, "section", section)
        parts.append(frame)
    overall = pd.DataFrame([_block_row("(all)", data.report["overall"])])
    overall.insert(0, "section", "Overall")
    table = pd.concat([overall, *parts], ignore_index=True)
    # As people read it: shares in % with one decimal, lags as durations, "–" for none.
    return safe_frame(labels.for_people(table)).to_csv(index=False).encode("utf-8-sig")


def render(data: ReportData, form: str) -> bytes:
    """Bytes of the report in one format: html, pdf, xlsx or csv."""
    if form == "html":
        return render_html(data).encode("utf-8")
    if form == "pdf":
        return render_pdf(render_html(data))
    if form == "xlsx":
        return render_xlsx(data)
    if form == "csv":
        return render_csv(data)
    raise ValueError(f"unknown report format {form}")


def default_file_name(form: str) -> str:
    """event-quality-report-YYYYMMDD.<ext>"""
    return f"event-quality-report-{datetime.now(tz=UTC):%Y%m%d}.{form}"
