"""Which format a file is in: the first records decide (formats.detect), read from disk here.

Owns reading a file's head for detection (complete, non-blank lines; a damaged gzip's
readable part), recognising a whole-file JSON document of request bodies, the reader a
forced format takes, and the stand-in format of files no adapter recognises.
"""

from __future__ import annotations

import gzip
import zlib
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from dashboard.ingest import formats
from dashboard.ingest.files import BOM, MAX_LINE_BYTES, is_csv, is_gzip, open_binary
from dashboard.ingest.formats.base import LogFormat, Outcome
from dashboard.ingest.formats.jsonline import parses
from dashboard.ingest.rows import Rejected

# A whole-file JSON document (one body, an array of bodies) is parsed in memory.
MAX_DOCUMENT_BYTES = 256 * 1024 * 1024


def reader_for(fmt: LogFormat, path: Path) -> str:
    if "csv" in fmt.readers and (is_csv(path) or fmt.readers == ("csv",)):
        return "csv"
    return fmt.readers[0]


class Unrecognised(LogFormat):
    """A file in no known format: every line is quarantined, and says which were tried."""

    name = formats.UNRECOGNISED
    title = "unrecognised format"

    def parse_line(self, line: bytes, default_dataset: str) -> Outcome:
        raise Rejected("unrecognised format", "tried: " + ", ".join(formats.format_names()))

    def line_complete(self, line: bytes) -> bool:
        # A last line without its newline is whole when it parses as JSON (as the head
        # reader judges it); anything else may still be being written: it waits.
        return parses(line)


def sniff(path: Path) -> formats.Detected | None:
    """Detect a file's format from its first non-blank lines (None: nothing to read yet)."""
    if is_csv(path):
        try:
            with open_binary(path) as fh:
                header = peek_csv_header(fh)
        except (EOFError, zlib.error, gzip.BadGzipFile, OSError):
            header = []  # a damaged gzip: the CSV reader quarantines the damage
        if header is None:
            return None
        return formats.Detected(formats.csv_format(header) or formats.BY_NAME["eqm-csv"], "csv")
    head = _head_lines(path)
    # A JSON document: a pretty-printed body, or an array of bodies (on one long line,
    # perhaps, which the head does not hold).
    starts_like_json = (head[0] if head else _first_bytes(path)).lstrip()[:1] in (b"{", b"[")
    document = partial(_whole_document, path, complete_only=True) if starts_like_json else None
    if not head and (document is None or document() is None):
        return None
    return formats.detect(head, document)


def _first_bytes(path: Path) -> bytes:
    try:
        with open_binary(path) as fh:
            return fh.read(4096).removeprefix(BOM)
    except (EOFError, zlib.error, gzip.BadGzipFile, OSError):
        return b""


def _head_lines(path: Path) -> list[bytes]:
    """The first non-blank complete lines (BOM removed), up to formats.HEAD_LINES."""
    gzipped = is_gzip(path)
    head: list[bytes] = []
    read = 0
    try:
        with open_binary(path) as fh:
            while len(head) < formats.HEAD_LINES and read < (1 << 20):
                line = fh.readline(MAX_LINE_BYTES)
                if not line:
                    break
                if read == 0 and line.startswith(BOM):
                    line = line[len(BOM) :]
                read += len(line)
                if not line.strip():
                    continue
                if not line.endswith(b"\n") and not gzipped and not parses(line):
                    break  # still being written
                head.append(line)
    except (EOFError, zlib.error, gzip.BadGzipFile, OSError):
        pass  # a damaged gzip: sniff what could be read
    return head


def read_whole(path: Path) -> bytes | None:
    """The file's bytes when it is small enough to be one JSON document."""
    try:
        with open_binary(path) as fh:
            data = fh.read(MAX_DOCUMENT_BYTES + 1)
    except (EOFError, zlib.error, gzip.BadGzipFile, OSError):
        return None
    return data if len(data) <= MAX_DOCUMENT_BYTES else None


def _whole_document(path: Path, *, complete_only: bool) -> Any:
    """The file as one JSON document of request bodies, or None."""
    if not is_gzip(path) and _last_byte(path) not in (b"}", b"]"):
        return None  # JSON Lines, or a document still being written: no need to read it
    data = read_whole(path)
    if data is None:
        return None
    try:
        document = orjson.loads(data.removeprefix(BOM))
    except orjson.JSONDecodeError:
        return None
    items = document if isinstance(document, list) else [document]
    if not items or not all(isinstance(item, dict) and "data" in item for item in items):
        return None if complete_only else document
    return document


def peek_csv_header(fh) -> list[str] | None:
    """A CSV file's header, or None while it has none."""
    from dashboard.ingest.files import read_csv_header

    header, _, records = read_csv_header(fh, gzipped=True)
    return header if records else None


def _last_byte(path: Path) -> bytes:
    """The last non-blank byte of a plain file."""
    with path.open("rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(max(0, size - 4096))
        tail = fh.read().rstrip()
    return tail[-1:]
