"""An event list as it leaves the program: CSV (streamed, formula-safe), JSON Lines and a
plain-text table for a terminal. No Streamlit.

Owns the shapes of `python -m dashboard events` and of the Events page's download. The
rows come from `dashboard.quality.drilldown` in chunks; nothing here holds a whole list,
so a list of a million events streams in constant memory.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

import pandas as pd

from dashboard.outputs import labels
from dashboard.outputs.exports import safe_frame
from dashboard.quality import drilldown
from dashboard.quality.drilldown import READABLE_COLUMNS

# The text table's columns and widths (the rest is in the CSV and JSON Lines).
TEXT_COLUMNS = (
    ("event_time", 23),
    ("event_name", 18),
    ("channel", 7),
    ("campaign", 18),
    ("event_id", 24),
    ("line", 8),
    ("field", 14),
    ("why", 60),
)


def _cell(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def csv_chunks(chunks: Iterable[pd.DataFrame], *, human_headers: bool = False) -> Iterator[str]:
    """The list as CSV text, one piece per chunk (header first, once). Headers are the
    column keys, or with `human_headers` the labels the pages show."""
    first = True
    for chunk in chunks:
        frame = safe_frame(chunk)
        if human_headers:
            frame.columns = [labels.label(c) for c in chunk.columns]
        buffer = io.StringIO()
        frame.to_csv(buffer, index=False, header=first, lineterminator="\n")
        first = False
        yield buffer.getvalue()
    if first:  # an empty list still has its header
        header = [labels.label(c) if human_headers else c for c in READABLE_COLUMNS]
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(header)
        yield buffer.getvalue()


def csv_bytes(chunks: Iterable[pd.DataFrame]) -> bytes:
    """The whole list as one UTF-8 CSV with a BOM (Excel reads the encoding), human
    headers: the Events page's download."""
    return ("\ufeff" + "".join(csv_chunks(chunks, human_headers=True))).encode("utf-8")


def jsonl_lines(chunks: Iterable[pd.DataFrame]) -> Iterator[str]:
    """One JSON object per event, keys as in READABLE_COLUMNS, nulls kept."""
    for chunk in chunks:
        for record in chunk.to_dict("records"):
            yield json.dumps({k: _cell(v) for k, v in record.items()}, ensure_ascii=False)


def _fit(value: Any, width: int) -> str:
    text = "–" if _cell(value) is None else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def text_lines(chunks: Iterable[pd.DataFrame]) -> Iterator[str]:
    """A fixed-width table for a terminal: header, rule, one line per event."""
    yield "  ".join(labels.label(c).ljust(w)[:w] for c, w in TEXT_COLUMNS).rstrip()
    yield "  ".join("-" * w for _, w in TEXT_COLUMNS)
    for chunk in chunks:
        for record in chunk.to_dict("records"):
            yield "  ".join(_fit(record.get(c), w).ljust(w) for c, w in TEXT_COLUMNS).rstrip()


def write_events(
    engine: Any,
    filters: Any,
    config: Any,
    selection: Any,
    out: TextIO,
    *,
    form: str = "table",
    limit: int | None = None,
    sort: str = "sent_at",
    descending: bool = True,
) -> int:
    """Stream `selection`'s events to `out` as a table, CSV or JSON Lines; the number
    written. The table ends with a count line; CSV and JSON Lines hold only rows."""
    chunks = drilldown.iter_events(
        engine, filters, config, selection, sort=sort, descending=descending, limit=limit
    )
    written = 0

    def counted(pieces: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        nonlocal written
        for piece in pieces:
            written += len(piece)
            yield piece

    if form == "csv":
        for text in csv_chunks(counted(chunks)):
            out.write(text)
    elif form == "jsonl":
        for line in jsonl_lines(counted(chunks)):
            out.write(line + "\n")
    else:
        for line in text_lines(counted(chunks)):
            out.write(line + "\n")
        out.write(f"{written:,} events ({selection.describe()})\n")
    return written


def findings_lines(engine: Any, filters: Any, config: Any) -> list[str]:
    """Every listable finding key with its severity, meaning and the events it affects
    in the slice now (0 when it does not fire), for `python -m dashboard findings`."""
    from dashboard.quality.diagnostics import diagnose

    affected: dict[str, int] = {}
    severity: dict[str, str] = {}
    for found in diagnose(engine, filters, config):
        affected[found.key] = affected.get(found.key, 0) + found.affected
        severity.setdefault(found.key, found.severity)
    width = max(len(k) for k in drilldown.FINDINGS)
    lines = [f"{'finding'.ljust(width)}  {'severity':8}  {'affected':>9}  meaning"]
    for key, listed in drilldown.FINDINGS.items():
        lines.append(
            f"{key.ljust(width)}  {severity.get(key, '-'):8}  {affected.get(key, 0):>9,}  "
            f"{listed.meaning}"
        )
    lines.append("")
    lines.append(
        "List one: python -m dashboard events --finding KEY; parameters: --parameter NAME "
        "--status absent|valid|invalid|unhashed; dedup: --dedup STATUS."
    )
    return lines
