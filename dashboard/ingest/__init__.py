"""Log ingestion: the logs advertisers already have, read into the store.

The package's rooms: `files` (paths, opening, knowing a file again), `formats` (one
adapter per log format, and detection), `readers` (lines, entries, CSV rows, whole
documents), `rows` (one store row per event), `fastpath` (the vectorised JSON Lines
parser), `pairing` (requests waiting for an answer on a later line), `importer` (the
run: checkpoints, commits, quarantine) and `summary` (what a run did).

The names below are loaded on first use (PEP 562), not when the package is: importing a
light room such as `summary` (the command line catches its `IngestError`) must not pull
in the importer with pandas, SQLAlchemy and DuckDB.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dashboard.ingest.files import MAX_LINE_BYTES, expand_paths
    from dashboard.ingest.importer import ingest
    from dashboard.ingest.summary import ImportSummary, IngestError

# Each public name and the room that defines it.
_HOMES = {
    "MAX_LINE_BYTES": "dashboard.ingest.files",
    "expand_paths": "dashboard.ingest.files",
    "ingest": "dashboard.ingest.importer",
    "ImportSummary": "dashboard.ingest.summary",
    "IngestError": "dashboard.ingest.summary",
}

__all__ = ["MAX_LINE_BYTES", "ImportSummary", "IngestError", "expand_paths", "ingest"]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
