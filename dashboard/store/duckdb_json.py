"""DuckDB's JSON reader applied to one record: the SQL behind `jsonline.lenient_loads`.

Owns a per-thread in-memory DuckDB connection (no store file) and its one statement.
The vectorised import path reads JSON Lines with DuckDB; a record that orjson refuses
is read here the same way, so both paths agree on which lines are JSON.
"""

from __future__ import annotations

import threading

_READER = threading.local()  # one connection per thread: a DuckDB connection is not shared


def duckdb_json_text(text: str) -> str | None:
    """`text` read by DuckDB's JSON reader and written back as JSON text; None when DuckDB
    does not read it as JSON."""
    reader = getattr(_READER, "connection", None)
    if reader is None:
        import duckdb  # only when a record needs it: most imports never do

        reader = _READER.connection = duckdb.connect()
    try:
        return reader.execute(
            "SELECT CASE WHEN json_valid($1) THEN CAST(json($1) AS VARCHAR) END", [text]
        ).fetchall()[0][0]
    except Exception:  # noqa: BLE001 - anything DuckDB cannot read is not JSON to us
        return None
