"""The import history and the quarantine, read for people (the Data page).

Owns the reads of the `imports` and `quarantine` tables as small frames with the
store's snake_case columns (dashboard.outputs.labels gives them human headers): times as UTC
text without microseconds, files by the names people know them by, a quarantined
line's detail never empty. SQLAlchemy Core, no Streamlit.
"""

from __future__ import annotations

import re
import tempfile
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dashboard.core.definitions import UPLOAD_PREFIX
from dashboard.core.formatting import NO_DATA
from dashboard.store.database import imports, quarantine

# Reasons whose detail is empty, said in words (any other: "–").
DETAIL_BY_REASON = {
    "malformed JSON": "Not valid JSON: the line is cut off or holds more than one record.",
    "malformed JSON document": "The file is not one valid JSON document.",
    "not UTF-8": "The bytes are not UTF-8 text.",
    "line too long": "Longer than any log line the importer reads.",
    "missing event_name": "The event has no event_name.",
    "missing event_time": "The event has no event_time.",
}

# Before uploads were imported under their own names, the Data page stored the path of
# their temporary copy (tempfile.TemporaryDirectory(): TMP/tmpXXXXXXXX/NAME). Such rows
# in older stores are shown as uploads too.
_OLD_UPLOAD = re.compile(r"^" + re.escape(tempfile.gettempdir()) + r"/tmp[a-z0-9_]{8}/([^/]+)$")


def shown_path(path: Any) -> Any:
    """A stored file path as people know it ("upload: x.jsonl" for an old upload copy)."""
    if not isinstance(path, str):
        return path
    match = _OLD_UPLOAD.match(path)
    return UPLOAD_PREFIX + match.group(1) if match else path


def utc_text(seconds: Any) -> str | None:
    """Unix seconds as "2025-11-20 10:00:00" (UTC, no microseconds); None stays None."""
    if seconds is None or pd.isna(seconds):
        return None
    return datetime.fromtimestamp(float(seconds), tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def import_history(engine: Engine, limit: int = 200) -> pd.DataFrame:
    """The latest imports, newest first: when, which files, what each did."""
    columns = [
        "import_id",
        "started_at",
        "finished_at",
        "status",
        "paths",
        "lines_read",
        "lines_already_imported",
        "events_imported",
        "events_quarantined",
        "lines_quarantined",
    ]
    query = (
        sa.select(*(imports.c[name] for name in columns))
        .order_by(imports.c.import_id.desc())
        .limit(limit)
    )
    with engine.connect() as connection:
        frame = pd.DataFrame(connection.execute(query).mappings().all(), columns=columns)
    for column in ("started_at", "finished_at"):
        frame[column] = frame[column].map(utc_text).astype(object)
    frame["paths"] = frame["paths"].map(
        lambda text: "\n".join(shown_path(p) for p in str(text).split("\n"))
    )
    return frame


def quarantine_count(engine: Engine) -> int:
    """How many lines and events the quarantine holds (the report's rejected_records)."""
    with engine.connect() as connection:
        return int(connection.execute(sa.select(sa.func.count()).select_from(quarantine)).scalar())


def quarantine_reasons(engine: Engine) -> pd.DataFrame:
    """Quarantined lines and events per reason, most frequent first."""
    count = sa.func.count().label("count")
    query = (
        sa.select(quarantine.c.reason, count)
        .group_by(quarantine.c.reason)
        .order_by(count.desc(), quarantine.c.reason)
    )
    with engine.connect() as connection:
        return pd.DataFrame(connection.execute(query).mappings().all(), columns=["reason", "count"])


def quarantined_lines(engine: Engine, limit: int = 5000) -> pd.DataFrame:
    """Quarantined lines and events: file, line, which event of the line (None: the whole
    line; 1 is the first event), reason, and a detail that is never empty."""
    columns = ["path", "line_no", "idx", "reason", "detail"]
    query = (
        sa.select(*(quarantine.c[name] for name in columns))
        .order_by(quarantine.c.path, quarantine.c.line_no, quarantine.c.idx)
        .limit(limit)
    )
    with engine.connect() as connection:
        frame = pd.DataFrame(connection.execute(query).mappings().all(), columns=columns)
    frame["path"] = frame["path"].map(shown_path)
    # Stored 0-based, -1 for a whole line: people count events from 1.
    idx = pd.to_numeric(frame["idx"]).astype("Int64")
    frame["idx"] = (idx + 1).where(idx >= 0)
    frame["detail"] = [
        detail
        if isinstance(detail, str) and detail.strip()
        else DETAIL_BY_REASON.get(reason, NO_DATA)
        for reason, detail in zip(frame["reason"], frame["detail"], strict=True)
    ]
    return frame


READS = {
    "import_history": import_history,
    "quarantine_reasons": quarantine_reasons,
    "quarantined_lines": quarantined_lines,
}
