"""Reading a CRM export of stage changes (CSV) for a reconciliation: one `StageChange`
per good row, and every other row with its line number and the reason.

Owns the export's columns (config `[reconcile.crm.columns.<name>]`, one shipped for
Kommo's lead export) and the parsing of each field. The CSV reading is shared with the
orders reader (dashboard/ingest/orders.py). Nothing here is stored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, tzinfo
from pathlib import Path

from dashboard.core.orders import StageChange
from dashboard.core.params import LEAD_ID_PATTERN
from dashboard.ingest.orders import parse_time, read_table

REQUIRED_FIELDS = ("lead_id", "stage", "changed_at")
LEAD_ID = re.compile(LEAD_ID_PATTERN)


@dataclass(frozen=True)
class ChangesRead:
    changes: list[StageChange]
    bad_rows: list[tuple[int, str]]
    rows: int


def _change(line: int, cells: dict[str, str], seen: dict[tuple[str, str], int], zone):
    lead_id = cells["lead_id"].strip()
    if not lead_id:
        return "no lead id"
    if not LEAD_ID.fullmatch(lead_id):
        # Only Meta's lead id can meet user_data.lead_id: a CRM's own id never matches.
        return "lead id is not Meta's 15-17 digit lead id"
    stage = " ".join(cells["stage"].split())
    if not stage:
        return "no stage"
    changed = parse_time(cells["changed_at"], zone)
    if changed is None:
        return "changed_at is not an ISO 8601 time or Unix seconds"
    if (lead_id, stage) in seen:
        return f"the same lead and stage as line {seen[(lead_id, stage)]}"
    seen[(lead_id, stage)] = line
    return StageChange(line, lead_id, stage, changed)


def read_changes(
    path: str | Path | bytes, columns: dict[str, str], zone: tzinfo = UTC
) -> ChangesRead:
    """The stage changes of a CSV export whose header names the mapped `columns`; times
    without an offset are in `zone`."""
    rows, count = read_table(path, columns, REQUIRED_FIELDS, ())
    changes: list[StageChange] = []
    bad: list[tuple[int, str]] = []
    seen: dict[tuple[str, str], int] = {}
    for line, cells in rows:
        found = cells if isinstance(cells, str) else _change(line, cells, seen, zone)
        if isinstance(found, str):
            bad.append((line, found))
        else:
            changes.append(found)
    return ChangesRead(changes, bad, count)
