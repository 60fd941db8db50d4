"""The exported report as one self-contained HTML page, for screens and for A4 print.

Owns the HTML and CSS of `client_report.ClientReport`: the first page (branding, period,
headline cards with a symbol beside each colour, what is good, the three fixes first),
then each section with its static SVG charts and tables (human headers, units, one
decimal for shares and scores). Headings stay with their tables in print; long tables
show their first rows on paper and say where every row is. Nothing is fetched: the
logo is embedded and charts are inline SVG, so the file works offline from an e-mail
attachment. Every string from the log or the config is escaped. The PDF is this page
printed by Chromium (`documents.render_pdf`).
"""

from __future__ import annotations

import base64
import html
from typing import Any

import pandas as pd

from dashboard.core import formatting as fmt
from dashboard.outputs.report_charts import bar_svg
from dashboard.outputs.report_model import (
    COUNT,
    DURATION,
    FLAG,
    SCORE,
    SHARE,
    ClientReport,
    Section,
    Table,
)

_CSS = """
*{box-sizing:border-box}
body{font-family:"DejaVu Sans",Verdana,Arial,sans-serif;color:#1d1d1d;margin:0 auto;max-width:1180px;padding:24px;font-size:13px;line-height:1.4}
header{display:flex;align-items:center;gap:18px;border-bottom:2px solid #1d1d1d;padding-bottom:10px}
header img{max-height:56px;max-width:200px}
h1{font-size:24px;margin:0} h2{font-size:18px;margin:28px 0 6px;border-bottom:1px solid #999;padding-bottom:3px}
h3{font-size:14px;margin:16px 0 4px} p{margin:4px 0 8px} .muted{color:#555}
.meta{font-size:12px;color:#444}
.cards{display:grid;grid-template-columns:repeat(4,1fr);gap:10px;margin:14px 0 6px}
.card{border:1px solid #bbb;border-left:6px solid #bbb;border-radius:4px;padding:8px 10px}
.card.good{border-left-color:#1a7f37} .card.bad{border-left-color:#c62828;border-left-style:double}
.card .l{font-size:12px;color:#444} .card .v{font-size:22px;font-weight:bold}
.card .s{font-size:11px;color:#333}
.two{display:grid;grid-template-columns:2fr 3fr;gap:24px}
ol.fixes{padding-left:20px} ol.fixes li{margin-bottom:8px}
table{border-collapse:collapse;width:100%;margin:4px 0 10px;font-size:12px}
th,td{border:1px solid #c8c8c8;padding:3px 6px;vertical-align:top;text-align:left;overflow-wrap:break-word}
td:first-child{white-space:nowrap}
th{background:#eee;font-weight:bold} td.n{text-align:right;white-space:nowrap;overflow-wrap:normal}
.chart svg{width:100%;max-width:860px;height:auto}
.scroll{overflow-x:auto} table.wide{font-size:11px} table.wide th,table.wide td{padding:2px 3px}
.keep,figure{break-inside:avoid} h2,h3{break-after:avoid}
.page1{break-after:page}
@page{size:A4 landscape;margin:11mm 12mm}
@media print{body{max-width:none;padding:0;font-size:10.5px} table{font-size:9px} .scroll{overflow:visible}
 th,td{padding:2px 4px} table.wide{font-size:8px} .card .v{font-size:18px} h2{margin-top:14px} .chart svg{max-width:720px}}
"""

_MARKS = {"good": "✓ on target", "bad": "✗ needs attention", "": ""}
_LOGO_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
_LOGO_TYPES[".svg"] = "image/svg+xml"


def is_missing(value: Any) -> bool:
    """None, NaN, pandas' NA or NaT: shown as "–" (lists and other containers never are)."""
    return value is None or (pd.api.types.is_scalar(value) and bool(pd.isna(value)))


def cell_text(value: Any, kind: str) -> str:
    """A value as people read it in a document: 12,345 · 85.9% · 6.6 · 12 min · yes."""
    if is_missing(value):
        return fmt.NO_DATA
    if kind == COUNT:
        return f"{int(value):,}"
    if kind == SHARE:
        return fmt.percent(value)
    if kind == SCORE:
        return fmt.score(value)
    if kind == DURATION:
        return fmt.duration(value)
    if kind == FLAG:
        return "yes" if bool(value) else "no"
    return str(value)


def table_html(table: Table, *, paper: bool = True, heading: bool = True) -> str:
    """The table with its heading and note; on paper, long tables show their first rows."""
    shorter = paper and table.paper_frame is not None
    frame = table.paper_frame if shorter else table.frame
    shown = frame
    if paper and table.paper_rows is not None and len(frame) > table.paper_rows:
        shown = frame.head(table.paper_rows)
    note = table.paper_note if shorter and table.paper_note else table.note
    if len(shown) < table.rows and not note:
        note = (
            f"The first {len(shown):,} of {table.rows:,} rows; the Excel and CSV versions hold "
            "every row."
        )
    numeric = {c.key for c in table.columns if c.kind not in ("text", FLAG)}
    head = "".join(f"<th>{html.escape(c.header)}</th>" for c in table.columns)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{html.escape(cell_text(row[c.key], c.kind))}</td>'
            if c.key in numeric
            else f"<td>{html.escape(cell_text(row[c.key], c.kind))}</td>"
            for c in table.columns
        )
        + "</tr>"
        for row in shown.to_dict("records")
    )
    heading = f"<h3>{html.escape(table.title)}</h3>" if heading else ""
    note_html = f'<p class="muted">{html.escape(note)}</p>' if note else ""
    if frame.empty:
        return f'<div class="keep">{heading}<p class="muted">Nothing in this selection.</p></div>'
    # Many columns (the match keys per event): a smaller type, and a scroll bar rather
    # than a page wider than the screen.
    wide = ' class="wide"' if len(table.columns) > 12 else ""
    grid = (
        f'<div class="scroll"><table{wide}><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )
    # A short table moves to the next page whole; a long one keeps at least its heading
    # and note with its first rows (thead repeats on each printed page).
    wrapper = "keep" if len(shown) <= 30 else "long"
    return f'<div class="{wrapper}">{heading}{note_html}{grid}</div>'


def _logo(content: ClientReport) -> str:
    if content.logo is None:
        return ""
    mime = _LOGO_TYPES.get(content.logo.suffix.lower())
    if mime is None:
        return ""
    data = base64.b64encode(content.logo.read_bytes()).decode()
    return f'<img src="data:{mime};base64,{data}" alt="logo">'


def first_page(content: ClientReport) -> str:
    """Branding, period, headline cards, what is good and the three fixes first."""
    e = html.escape
    client = f'<div class="meta">Prepared for {e(content.client)}</div>' if content.client else ""
    cards = "".join(
        f'<div class="card {h.verdict}"><div class="l">{e(h.label)}</div>'
        f'<div class="v">{e(h.shown)}</div>'
        f'<div class="s">{e(" · ".join(x for x in (_MARKS[h.verdict], h.detail) if x))}</div></div>'
        for h in content.headlines
    )
    good = "".join(f"<li>{e(g)}</li>" for g in content.good) or (
        "<li>Nothing meets its bar yet: start with the fixes.</li>"
    )
    fixes = (
        "".join(
            f"<li><b>{e(f.title)}</b><br>{e(f.affected)}.<br><i>What you gain:</i> {e(f.gain)}"
            f"<br><i>How:</i> {e(f.how)}</li>"
            for f in content.fixes
        )
        or "<li>No findings: nothing to fix in this selection.</li>"
    )
    return (
        '<section id="summary" class="page1">'
        f"<header>{_logo(content)}<div><h1>{e(content.title)}</h1>{client}"
        f'<div class="meta">Period: <b>{e(content.period)}</b> · data through '
        f"{e(content.through)} · generated {e(content.generated)} · filters: "
        f"{e(content.filters)}</div></div></header>"
        f'<div class="cards">{cards}</div>'
        f'<p class="muted">{e(content.comparison)} EMQ here is an estimate from the '
        "parameters sent, not Meta's own score.</p>"
        f'<div class="two"><div><h2>What is good</h2><ul>{good}</ul></div>'
        f'<div><h2>What to fix first</h2><ol class="fixes">{fixes}</ol></div></div>'
        "</section>"
    )


def section_html(section: Section) -> str:
    """A section; its heading and intro are held on one page with its first chart or table."""
    blocks = [f'<figure class="chart">{bar_svg(chart)}</figure>' for chart in section.charts]
    # A table named like its section needs no heading of its own.
    blocks += [table_html(t, heading=t.title != section.title) for t in section.tables]
    first, rest = (blocks[0], blocks[1:]) if blocks else ("", [])
    return (
        f'<section id="{html.escape(section.key)}"><div class="keep">'
        f"<h2>{html.escape(section.title)}</h2>"
        f'<p class="muted">{html.escape(section.intro)}</p>{first}</div>{"".join(rest)}</section>'
    )


def render_html(content: ClientReport) -> str:
    """The whole report as one HTML document."""
    sections = "".join(section_html(s) for s in content.sections)
    if content.appendix is not None:
        sections += (
            '<section id="appendix"><h2>Appendix</h2>'
            f"{table_html(content.appendix, paper=False)}</section>"
        )
    title = html.escape(content.title + (f" · {content.client}" if content.client else ""))
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{_CSS}</style></head>"
        f"<body>{first_page(content)}{sections}</body></html>"
    )
