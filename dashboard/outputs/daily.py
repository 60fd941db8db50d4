"""Proving a fix, as it leaves the program: `report --by day` (JSON and CSV), the
before/after view around a marker (JSON and text), and the lines `mark` prints.

The numbers come from dashboard.quality.daily (the registry's measures per day and on
both sides of a marker); the markers from dashboard.store.markers. The CSV is for
machines: its header is the measure keys of the JSON (`dedup.rate`), not the labels
people read, so a script reads both the same way.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from dashboard.core import formatting as fmt
from dashboard.core.config import Config
from dashboard.core.filters import Filters, epoch
from dashboard.outputs.scorecards import FORMATS
from dashboard.quality.daily import (
    DAILY_KEYS,
    DAILY_MEASURES,
    BeforeAfter,
    before_after,
    daily_series,
    period_of,
    series_records,
)
from dashboard.store.handles import Engine
from dashboard.store.markers import (
    Marker,
    add_marker,
    delete_marker,
    get_marker,
    list_markers,
)

SCHEMA_VERSION = "1.0"  # as report and check: keys are only added within a major version
BY_DAY_FORMATS = ("json", "csv")
BEFORE_AFTER_FORMATS = ("json", "text")


def parse_moment(text: str) -> float:
    """An ISO time ("2026-12-01T10:00Z", "2026-12-01T11:00+01:00", "2026-12-01") as UTC
    Unix seconds; UTC unless it names an offset. ValueError when it is not one."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"not an ISO time (2026-12-01T10:00Z, or with an offset such as +01:00): {text!r}"
        ) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def markers_between(engine: Engine, first, last) -> list[Marker]:
    """The markers on the days `first`..`last` (dates, inclusive; None: unbounded)."""
    low = epoch(first) if first else float("-inf")
    high = epoch(last + timedelta(days=1)) if last else float("inf")
    return [m for m in list_markers(engine) if low <= m.at < high]


def by_day_report(engine: Engine, filters: Filters, config: Config) -> dict[str, Any]:
    """`report --by day --format json`: every day of the period with the measures of
    `quality.daily.DAILY_MEASURES` (a day without events: counts 0, shares null), and
    the markers on those days."""
    first, last = period_of(engine, filters)
    return {
        "schema_version": SCHEMA_VERSION,
        "period": {
            "since": first.isoformat() if first else None,
            "until": last.isoformat() if last else None,
            "filters": filters.as_dict(),
        },
        "measures": [{"key": m.key, "label": m.label, "kind": m.kind} for m in DAILY_MEASURES],
        "by_day": series_records(daily_series(engine, filters, config)),
        "markers": [m.as_dict() for m in markers_between(engine, first, last)],
    }


def by_day_csv(engine: Engine, filters: Filters, config: Config) -> str:
    """`report --by day --format csv`: one row per day, `day` then the measure keys;
    an empty cell where a share has nothing to divide."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["day", *DAILY_KEYS], lineterminator="\n")
    writer.writeheader()
    for record in series_records(daily_series(engine, filters, config)):
        writer.writerow({k: "" if v is None else v for k, v in record.items()})
    return out.getvalue().rstrip("\n")


def before_after_dict(result: BeforeAfter, marker: Marker) -> dict[str, Any]:
    """The before/after view as JSON, with the marker it pivots on."""
    return {"schema_version": SCHEMA_VERSION, "marker": marker.as_dict(), **result.as_dict()}


def before_after_table(result: BeforeAfter) -> pd.DataFrame:
    """The before/after view as people read it: one row per measure, its values
    formatted by their kind, the change as shown ("–" without a comparison) and whether
    it is better or worse for a measure with a direction."""
    rows = []
    for change in result.changes:
        shown = FORMATS.get(change.measure.kind, fmt.compact)
        rows.append(
            {
                "measure": change.measure.label,
                "before": shown(change.before),
                "after": shown(change.after),
                "change": change.change or fmt.NO_DATA,
                "verdict": change.verdict or fmt.NO_DATA,
            }
        )
    return pd.DataFrame(rows, columns=["measure", "before", "after", "change", "verdict"])


def before_after_text(result: BeforeAfter, marker: Marker) -> str:
    """The before/after view as a few lines for a terminal."""
    table = before_after_table(result)
    width = int(table["measure"].str.len().max())
    lines = [f"Marker {marker.id}: {marker.label} ({marker.at_iso})", result.note, ""]
    lines.append(f"{'':{width}}  {'before':>10}  {'after':>10}  change")
    for row in table.itertuples(index=False):
        verdict = f" ({row.verdict})" if row.verdict not in (fmt.NO_DATA, fmt.NO_CHANGE) else ""
        lines.append(
            f"{row.measure:{width}}  {row.before:>10}  {row.after:>10}  {row.change}{verdict}"
        )
    return "\n".join(lines)


def render_daily(
    engine: Engine,
    filters: Filters,
    config: Config,
    *,
    by: str | None,
    marker_id: int | None,
    days: int,
    form: str | None,
) -> str:
    """What `report --by day` or `report --before-after ID` prints (JSON by default).
    ValueError for a format the view does not have; MarkerError for an unknown marker."""
    form = form or "json"
    if by is not None and marker_id is not None:
        raise ValueError("--by day and --before-after are two reports: pick one")
    if by is not None:
        if form not in BY_DAY_FORMATS:
            raise ValueError(f"--by day is written as json or csv, not {form}")
        if form == "csv":
            return by_day_csv(engine, filters, config)
        return json.dumps(by_day_report(engine, filters, config), indent=2, ensure_ascii=False)
    if form not in BEFORE_AFTER_FORMATS:
        raise ValueError(f"--before-after is written as json or text, not {form}")
    marker = get_marker(engine, marker_id)
    result = before_after(engine, filters, config, marker.at, days)
    if form == "text":
        return before_after_text(result, marker)
    return json.dumps(before_after_dict(result, marker), indent=2, ensure_ascii=False)


def marker_line(marker: Marker) -> str:
    return f"{marker.id:>4}  {marker.at_iso}  {marker.label}"


def mark_lines(
    engine: Engine,
    label: str | None,
    at: float | None,
    *,
    listing: bool = False,
    delete: int | None = None,
) -> list[str]:
    """What `mark` does and prints: add a marker (the default), `--list` them, or
    `--delete ID` one. ValueError for a call that mixes them or names no label."""
    if sum((listing, delete is not None, label is not None)) != 1:
        raise ValueError('mark takes a label, --list or --delete ID (one of them): mark "…"')
    if listing:
        markers = list_markers(engine)
        if not markers:
            return ['no markers yet: python3 -m dashboard mark "what changed" --at TIME']
        return [f"{'id':>4}  {'at (UTC)':<20}  label", *map(marker_line, markers)]
    if delete is not None:
        return [f"deleted marker {marker_line(delete_marker(engine, delete)).strip()}"]
    return [f"added marker {marker_line(add_marker(engine, label or '', at)).strip()}"]
