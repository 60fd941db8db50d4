"""Which format a file is in: the first records decide (formats.detect), read from disk here.

Owns reading a file's head for detection (complete, non-blank lines; a damaged gzip's
readable part), telling a binary file from a text one, recognising a whole-file JSON
document (an array of records or of request bodies), a CSV file's delimiter, the reader
a forced format takes, and the stand-in format of files no adapter recognises.
"""

from __future__ import annotations

import gzip
import zlib
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from dashboard.ingest import formats
from dashboard.ingest.files import (
    BOM,
    MAX_LINE_BYTES,
    is_csv,
    is_gzip,
    open_binary,
    read_csv_header,
)
from dashboard.ingest.formats.base import LogFormat, Outcome, csv_reader
from dashboard.ingest.formats.jsonline import parses
from dashboard.ingest.rows import Rejected

# A whole-file JSON document (one body, an array of bodies) is parsed in memory.
MAX_DOCUMENT_BYTES = 256 * 1024 * 1024
# A file is binary, not text, when this share of its first block is no text: NUL and
# other control bytes, bytes that are no UTF-8. Judged on a block of at least
# BINARY_MIN_BYTES only: a short text log with a damaged line is still read line by line.
BINARY_BLOCK = 4096
BINARY_MIN_BYTES = 512
BINARY_SHARE = 0.3
# Files people drop on the importer by mistake, known by first bytes no log starts with
# (so a short one is known too).
_MAGIC = {
    b"\x89PNG\r\n\x1a\n": "a PNG image",
    b"%PDF-": "a PDF document",
    b"PK\x03\x04": "a ZIP archive (an .xlsx too): unzip it, or export the log as CSV",
    b"SQLite format 3\x00": "an SQLite database",
}
_TEXT_CONTROLS = frozenset(b"\t\n\r\x0b\x0c\x1b")  # whitespace, and ESC of coloured logs


def reader_for(fmt: LogFormat, path: Path) -> str:
    """The reader a forced format takes for this file."""
    if "csv" in fmt.readers and (is_csv(path) or fmt.readers == ("csv",)):
        return csv_reader(_csv_delimiter(path))
    if "json" in fmt.readers and _first_bytes(path).lstrip()[:1] == b"[":
        return "json"  # a JSON array of records: no record of ours starts with "["
    return fmt.readers[0]


def _csv_delimiter(path: Path) -> str:
    try:
        with open_binary(path) as fh:
            return read_csv_header(fh, complete=True, delimiter=None).delimiter
    except (EOFError, zlib.error, gzip.BadGzipFile, OSError):
        return ","  # a damaged gzip: the CSV reader quarantines the damage


def binary_detail(path: Path) -> tuple[str, int] | None:
    """Why the file is binary, not text, and how many of its first bytes say so (None:
    it is text). A gzip file is judged by what it holds; a damaged one is left to the
    readers, which quarantine the damage."""
    try:
        with open_binary(path) as fh:
            block = fh.read(BINARY_BLOCK)
    except (EOFError, zlib.error, gzip.BadGzipFile, OSError):
        return None
    detail = _not_text(block)
    return (detail, len(block)) if detail is not None else None


def _not_text(block: bytes) -> str | None:
    """Why a file's first block is no text (None: it is text)."""
    for magic, what in _MAGIC.items():
        if block.startswith(magic):
            return what
    if block.startswith((b"\xff\xfe", b"\xfe\xff")) and block.count(0) * 4 >= len(block):
        # A BOM and a NUL byte in every other character: what Windows tools save as
        # "Unicode" (PowerShell's > among them).
        return "UTF-16 text: save it as UTF-8"
    if len(block) < BINARY_MIN_BYTES:
        return None
    # A UTF-8 sequence cut by the block's end is not counted against the file.
    text = block.decode("utf-8", errors="replace").removesuffix("\ufffd")
    controls = sum(1 for byte in block if byte < 32 and byte not in _TEXT_CONTROLS)
    share = (text.count("\ufffd") + controls) / len(block)
    if share < BINARY_SHARE:
        return None
    return f"{share:.0%} of its first {len(block):,} bytes are not text"


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


def sniff(path: Path, complete: bool = False) -> formats.Detected | None:
    """Detect a file's format from its first non-blank lines (None: nothing to read yet).
    `complete`: the file will not grow (an upload), so a last line without its newline
    is whole."""
    if is_csv(path):
        delimiter = ","
        try:
            with open_binary(path) as fh:
                header, _, _, delimiter = read_csv_header(fh, True, delimiter=None)
        except (EOFError, zlib.error, gzip.BadGzipFile, OSError):
            header = []  # a damaged gzip: the CSV reader quarantines the damage
        if header is None:
            return None  # no header yet (or an unparseable one, which the reader quarantines)
        fmt = formats.csv_format(header) or formats.BY_NAME["eqm-csv"]
        return formats.Detected(fmt, csv_reader(delimiter))
    head = _head_lines(path, complete or is_gzip(path))
    # A JSON document: a pretty-printed record or body, or an array of them (on one long
    # line, perhaps, which the head does not hold).
    starts_like_json = (head[0] if head else _first_bytes(path)).lstrip()[:1] in (b"{", b"[")
    document = partial(_document_format, path) if starts_like_json else None
    if not head and (document is None or document() is None):
        return None
    return formats.detect(head, document)


def _first_bytes(path: Path) -> bytes:
    try:
        with open_binary(path) as fh:
            return fh.read(4096).removeprefix(BOM)
    except (EOFError, zlib.error, gzip.BadGzipFile, OSError):
        return b""


def _head_lines(path: Path, complete: bool) -> list[bytes]:
    """The first non-blank complete lines (BOM removed), up to formats.HEAD_LINES."""
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
                if not line.endswith(b"\n") and not complete and not parses(line):
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


def _document_format(path: Path) -> formats.Detected | None:
    """The format of the file read as one JSON document (`formats.detect_document`), or
    None (not one JSON document, or one of no known records)."""
    if not is_gzip(path) and _last_byte(path) not in (b"}", b"]"):
        return None  # JSON Lines, or a document still being written: no need to read it
    data = read_whole(path)
    if data is None:
        return None
    try:
        document: Any = orjson.loads(data.removeprefix(BOM))
    except orjson.JSONDecodeError:
        return None
    return formats.detect_document(document)


def _last_byte(path: Path) -> bytes:
    """The last non-blank byte of a plain file."""
    with path.open("rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(max(0, size - 4096))
        tail = fh.read().rstrip()
    return tail[-1:]
