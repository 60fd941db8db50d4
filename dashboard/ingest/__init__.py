"""Log ingestion: the logs advertisers already have, read into the store.

The package's rooms: `files` (paths, opening, knowing a file again), `formats` (one
adapter per log format, and detection), `readers` (lines, entries, CSV rows, whole
documents), `rows` (one store row per event), `fastpath` (the vectorised JSON Lines
parser), `pairing` (requests waiting for an answer on a later line), `importer` (the
run: checkpoints, commits, quarantine) and `summary` (what a run did).
"""

from dashboard.ingest.files import MAX_LINE_BYTES, expand_paths
from dashboard.ingest.importer import ingest
from dashboard.ingest.summary import ImportSummary, IngestError

__all__ = ["MAX_LINE_BYTES", "ImportSummary", "IngestError", "expand_paths", "ingest"]
