"""The exported report's data model: typed tables, bar charts, sections and the first page.

Owns the shapes every renderer reads (`report_html`, `report_files`, `report_charts`):
a table keeps raw values (shares 0-1, lags in seconds) with typed columns, so each format
shows units its own way; `paper_rows` caps a long table in HTML and PDF only, and
`paper_frame` gives them a shorter view of it. What goes into them is `client_report`
(the first page and the order) and `report_sections`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from dashboard.core.measures import BY_KEY
from dashboard.outputs import labels

# Kinds of column: how a value is shown and, in a workbook, its number format.
TEXT, COUNT, SHARE, SCORE, DURATION, FLAG = "text", "count", "share", "score", "duration", "flag"
APPENDIX_CAP = 200  # gap rows in the appendix; the full list is a download
DOCUMENT_ROWS = 25  # rows of a long table on paper; the workbook and CSV hold every row
CHART_BARS = 15  # bars in a chart: the largest groups by volume
HEADLINE_KEYS = (
    "emq_estimate",
    "event_coverage",
    "dedup.rate",
    "dedup.likely_double_counted",
    "server_rejected_by_meta",
    "freshness.stale_over_7d",
    "freshness.median_lag_s",
    "unhashed_pii",
)
KINDS = {"count": COUNT, "rate": SHARE, "score": SCORE, "duration": DURATION}


@dataclass(frozen=True)
class Column:
    """One column of a report table: its key in the frame, its header and its kind."""

    key: str
    header: str
    kind: str = TEXT


@dataclass
class Table:
    """A table with raw values; `paper_rows` caps it in HTML and PDF (never in XLSX/CSV)."""

    key: str  # file and sheet name
    title: str
    columns: tuple[Column, ...]
    frame: pd.DataFrame
    note: str = ""
    paper_rows: int | None = DOCUMENT_ROWS
    total_rows: int | None = None  # when the frame itself is a capped list
    # What HTML and PDF show instead of `frame` (a shorter view, such as findings of one
    # kind sharing a row), with the note that says so; XLSX and CSV always hold `frame`.
    paper_frame: pd.DataFrame | None = None
    paper_note: str = ""

    @property
    def rows(self) -> int:
        return len(self.frame) if self.total_rows is None else self.total_rows


@dataclass(frozen=True)
class BarChart:
    """A horizontal bar chart: one bar per label, its value printed at the bar's end."""

    title: str
    labels: tuple[str, ...]
    values: tuple[float | None, ...]
    kind: str  # SHARE, SCORE or COUNT
    lines: tuple[tuple[float, str], ...] = ()  # goal or tier lines: (value, label)


@dataclass
class Section:
    key: str
    title: str
    intro: str
    charts: list[BarChart] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)


@dataclass(frozen=True)
class Headline:
    label: str
    shown: str
    verdict: str  # "good", "bad" or "" (no bar to pass)
    detail: str  # the goal or tier, and the change against the previous period
    value: Any = None  # raw: a 0-1 share, a score, seconds or a count
    kind: str = TEXT


@dataclass(frozen=True)
class Fix:
    title: str
    affected: str
    gain: str
    how: str


@dataclass
class ClientReport:
    """Everything an exported report shows, computed once for one slice."""

    title: str
    client: str
    logo: Path | None
    period: str
    through: str
    generated: str
    filters: str
    comparison: str
    headlines: list[Headline]
    good: list[str]
    fixes: list[Fix]
    sections: list[Section]
    appendix: Table | None
    report: dict[str, Any]  # the JSON report it was built from

    def tables(self) -> list[Table]:
        """Every table in report order (the summary first, the appendix last)."""
        out = [summary_table(self)]
        for section in self.sections:
            out.extend(section.tables)
        return out + ([self.appendix] if self.appendix is not None else [])


def measure_column(key: str) -> Column:
    """A column of a registry measure: its header and kind come from `core.measures`."""
    measure = BY_KEY[key]
    return Column(measure.column, labels.label(measure.column), KINDS.get(measure.kind, COUNT))


def column(key: str, header: str | None = None, kind: str = TEXT) -> Column:
    return Column(key, header or labels.label(key), kind)


def summary_table(content: ClientReport) -> Table:
    """Page 1 as a table (the workbook's first sheet and summary.csv)."""
    rows = [("Period", content.period, ""), ("Data through", content.through, "")]
    rows += [(h.label, h.shown, h.detail) for h in content.headlines]
    rows += [("What is good", text, "") for text in content.good]
    rows += [
        (f"Fix {i}", f.title, f"{f.affected}. {f.gain} How: {f.how}")
        for i, f in enumerate(content.fixes, 1)
    ]
    frame = pd.DataFrame(rows, columns=["item", "value", "detail"])
    columns = (column("item", "Item"), column("value", "Value"), column("detail", "Detail"))
    return Table("summary", "Summary", columns, frame, paper_rows=None)
