"""One JSON value per line, read alike by the per-record path and the vectorised one.

Owns `load_json_line`: orjson first, and DuckDB's JSON reader where orjson refuses
(`dashboard.store.duckdb_json`), so the vectorised path (which uses DuckDB) and the
per-record path agree on which lines are JSON; and `parses`, whether a last line without
its newline is complete yet.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from dashboard.ingest.rows import Rejected
from dashboard.store.duckdb_json import duckdb_json_text


def load_json_line(line: bytes) -> Any:
    """A JSON value from one line (Rejected when it is not JSON or not UTF-8)."""
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            raise Rejected("not UTF-8") from None
        return lenient_loads(text)


def lenient_loads(text: str) -> Any:
    """A record orjson refused, read as DuckDB's JSON reader reads it (the vectorised path).

    DuckDB accepts NaN and Infinity, numbers beyond a double's range and trailing commas,
    which some loggers write (Python's json.dumps writes NaN). Both paths must agree on
    which lines are JSON, so both accept these; a NaN value then counts as missing.
    Anything DuckDB refuses too is malformed.
    """
    normalised = duckdb_json_text(text)
    if normalised is None:
        raise Rejected("malformed JSON")
    # DuckDB also reads nan/inf in any case; Python's reader knows NaN and Infinity only.
    normalised = _NON_FINITE.sub(_python_constant, normalised)
    try:
        # Integers outside orjson's 64-bit range become floats there: the same here.
        return json.loads(normalised, parse_int=_orjson_int)
    except ValueError:
        raise Rejected("malformed JSON") from None


# A JSON string (kept as is) or a bare nan/inf/infinity token outside strings.
_NON_FINITE = re.compile(r'("(?:[^"\\]|\\.)*")|(-?)(nan|infinity|inf)\b', re.IGNORECASE)


def _python_constant(match: re.Match) -> str:
    if match.group(1) is not None:
        return match.group(1)
    if match.group(3).lower() == "nan":
        return "NaN"  # a sign on NaN means nothing, and Python's reader refuses "-NaN"
    return match.group(2) + "Infinity"


def _orjson_int(digits: str) -> int | float:
    value = int(digits)
    return value if -(2**63) <= value < 2**64 else float(digits)


def parses(line: bytes) -> bool:
    """Whether a line is complete JSON (a last line without newline may still be written)."""
    try:
        load_json_line(line)
    except (Rejected, RecursionError):
        return False
    return True
