"""The exported report as an Excel workbook and as a zip of CSV files. No Streamlit.

Owns the spreadsheet forms of `client_report.ClientReport`. The workbook opens on a
Summary sheet (the first page: each headline as a number with its own format, then what
is good and the fixes first), then one sheet per table in report order, every row of
each: headers frozen, widths from the content, long texts wrapped, shares as 0.0%,
scores as 0.0, counts with thousands separators, lags in seconds with "(s)" in the
header. The zip holds one CSV per table, numbered in report order, shares in percent
with one decimal. Text from the log is neutralised so no cell runs as a formula.
"""

from __future__ import annotations

import io
import re
import zipfile

import pandas as pd

from dashboard.outputs.exports import neutralise, safe_frame
from dashboard.outputs.report_html import is_missing
from dashboard.outputs.report_model import (
    COUNT,
    DURATION,
    FLAG,
    SCORE,
    SHARE,
    TEXT,
    ClientReport,
    Table,
)

_NUMBER_FORMATS = {COUNT: "#,##0", SHARE: "0.0%", SCORE: "0.0", DURATION: "#,##0"}
MAX_WIDTH = 60  # characters; longer texts wrap
_SHEET_CHARS = re.compile(r"[\[\]:*?/\\]")


def _header(column) -> str:
    return column.header + (" (s)" if column.kind == DURATION else "")


def _width(frame: pd.DataFrame, column) -> int:
    sample = frame[column.key].head(500).map(lambda v: len(str(v)))
    longest = int(sample.max()) if len(sample) else 0
    if column.kind in _NUMBER_FORMATS:
        longest = min(longest, 14)
    return max(8, min(MAX_WIDTH, max(longest, len(_header(column)) // 2, 6) + 2))


def _sheet_name(title: str, used: set[str]) -> str:
    base = _SHEET_CHARS.sub(" ", title)[:31].strip() or "Sheet"
    name, n = base, 2
    while name.lower() in used:
        suffix = f" {n}"
        name, n = base[: 31 - len(suffix)] + suffix, n + 1
    used.add(name.lower())
    return name


def _cell_value(value, kind: str):
    if is_missing(value):
        return None
    if kind == FLAG:
        return "yes" if bool(value) else "no"
    if kind in _NUMBER_FORMATS and not isinstance(value, str):
        return float(value) if kind in (SHARE, SCORE) else int(round(float(value)))
    return neutralise(str(value))


def _summary_sheet(book, content: ClientReport, styles: dict) -> None:
    sheet = book.add_worksheet("Summary")
    sheet.set_column(0, 0, 30)
    sheet.set_column(1, 1, 16)
    sheet.set_column(2, 2, 90)
    row = 0
    sheet.write(row, 0, neutralise(content.title), styles["title"])
    for label, text in (
        ("Prepared for", content.client),
        ("Period", content.period),
        ("Data through", content.through),
        ("Generated", content.generated),
        ("Filters", content.filters),
    ):
        if text:
            row += 1
            sheet.write(row, 0, label, styles["bold"])
            sheet.write(row, 1, neutralise(text))
    row += 2
    for col, text in enumerate(("Measure", "Value", "Goal, tier and change")):
        sheet.write(row, col, text, styles["header"])
    sheet.freeze_panes(row + 1, 0)
    for h in content.headlines:
        row += 1
        sheet.write(row, 0, h.label)
        value = _cell_value(h.value, h.kind)
        if value is None:
            sheet.write(row, 1, "–")
        else:
            sheet.write_number(row, 1, value, styles.get(h.kind, styles["count"]))
        mark = {"good": "✓ on target", "bad": "✗ needs attention"}.get(h.verdict, "")
        sheet.write(row, 2, " · ".join(x for x in (mark, h.detail) if x))
    row += 2
    sheet.write(row, 0, "What is good", styles["bold"])
    for text in content.good:
        row += 1
        sheet.write(row, 2, text, styles["wrap"])
    row += 2
    sheet.write(row, 0, "What to fix first", styles["bold"])
    for i, f in enumerate(content.fixes, 1):
        row += 1
        sheet.write(row, 0, f"{i}. {neutralise(f.title)}", styles["wrap"])
        sheet.write(row, 2, f"{f.affected}.\nWhat you gain: {f.gain}\nHow: {f.how}", styles["wrap"])
    row += 2
    sheet.write(row, 0, neutralise(content.comparison), styles["muted"])


def _table_sheet(writer, book, table: Table, name: str, styles: dict) -> None:
    frame = table.frame
    values = pd.DataFrame(
        {c.key: [_cell_value(v, c.kind) for v in frame[c.key]] for c in table.columns},
        columns=[c.key for c in table.columns],
    )
    values.to_excel(writer, sheet_name=name, index=False, header=False, startrow=1)
    sheet = writer.sheets[name]
    for col, column in enumerate(table.columns):
        sheet.write(0, col, _header(column), styles["header"])
        width = _width(values, column)
        style = styles.get(column.kind) if column.kind != TEXT else styles["wrap"]
        sheet.set_column(col, col, width, style)
    sheet.freeze_panes(1, 0)
    if len(table.columns):
        sheet.autofilter(0, 0, max(1, len(values)), len(table.columns) - 1)
    if table.note or table.total_rows is not None:
        sheet.write(len(values) + 2, 0, neutralise(table.note), styles["muted"])


def render_xlsx(content: ClientReport) -> bytes:
    """The workbook: Summary first, then one sheet per table with every row."""
    buffer = io.BytesIO()
    options = {"strings_to_formulas": False, "strings_to_urls": False}
    with pd.ExcelWriter(buffer, engine="xlsxwriter", engine_kwargs={"options": options}) as writer:
        book = writer.book
        styles = {
            "header": book.add_format(
                {"bold": True, "bg_color": "#E8E8E8", "border": 1, "text_wrap": True}
            ),
            "title": book.add_format({"bold": True, "font_size": 16}),
            "bold": book.add_format({"bold": True}),
            "wrap": book.add_format({"text_wrap": True, "valign": "top"}),
            "muted": book.add_format({"font_color": "#555555", "italic": True}),
            **{k: book.add_format({"num_format": f}) for k, f in _NUMBER_FORMATS.items()},
        }
        _summary_sheet(book, content, styles)
        used = {"summary"}
        for table in content.tables()[1:]:
            _table_sheet(writer, book, table, _sheet_name(table.title, used), styles)
    return buffer.getvalue()


def csv_frame(table: Table) -> pd.DataFrame:
    """A table as its CSV holds it: human headers, shares in % with one decimal."""
    out = {}
    for column in table.columns:
        values = table.frame[column.key]
        header = _header(column)
        if column.kind == SHARE:
            header = header if header.endswith("(%)") else f"{header} (%)"
            values = values.map(lambda v: None if pd.isna(v) else round(float(v) * 100, 1))
        elif column.kind == SCORE:
            values = values.map(lambda v: None if pd.isna(v) else round(float(v), 1))
        elif column.kind == FLAG:
            values = values.map(lambda v: "yes" if bool(v) else "no")
        out[header] = list(values)
    return safe_frame(pd.DataFrame(out, columns=list(out)))


def render_csv_zip(content: ClientReport) -> bytes:
    """One CSV per table, numbered in report order, in one zip."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for i, table in enumerate(content.tables(), 1):
            data = csv_frame(table).to_csv(index=False).encode("utf-8-sig")
            archive.writestr(f"{i:02d}-{table.key}.csv", data)
    return buffer.getvalue()
