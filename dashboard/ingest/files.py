"""Log files on disk: finding them, opening them (gzip or not), and knowing them again.

Owns which paths an import reads (files, folders, globs), how a file is identified
across renames, gzipping and growth (the fingerprint of its first line, and the hash of
the bytes before a checkpoint), and the line-level reading helpers shared by the
readers: the byte tail for checkpoints, CSV headers (and their delimiter) and decoded
CSV lines.
"""

from __future__ import annotations

import csv
import glob
import gzip
import hashlib
import os
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from dashboard.ingest.summary import IngestError

MAX_LINE_BYTES = 4 * 1024 * 1024  # a single record above this is quarantined, not parsed
WINDOW = 256  # bytes before the checkpoint whose hash proves the file was not rewritten
BOM = b"\xef\xbb\xbf"
# The delimiters a CSV header is tried with, the usual one first (it wins a tie).
CSV_DELIMITERS = (",", ";", "\t", "|")
LOG_SUFFIXES = (
    ".jsonl",
    ".jsonl.gz",
    ".ndjson",
    ".ndjson.gz",
    ".json",
    ".json.gz",
    ".csv",
    ".csv.gz",
    ".log",  # WooCommerce logs, SDK debug output
    ".log.gz",
)


def expand_paths(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Files named directly, found in folders (recursively) or matched by globs, sorted."""
    found: list[Path] = []
    for entry in paths:
        text = os.fspath(entry)
        if any(ch in text for ch in "*?["):
            matches = sorted(Path(p) for p in glob.glob(text, recursive=True))
            if not matches:
                raise IngestError(f"no file matches {text}")
            found.extend(p for p in matches if p.is_file())
        elif os.path.isdir(text):
            found.extend(
                sorted(
                    p
                    for p in Path(text).rglob("*")
                    if p.is_file() and p.name.endswith(LOG_SUFFIXES)
                )
            )
        elif os.path.isfile(text):
            found.append(Path(text))
        else:
            raise IngestError(f"no such file or folder: {text}")
    unique = list(dict.fromkeys(p.resolve() for p in found))
    if not unique:
        raise IngestError("no log files found (looked for " + ", ".join(LOG_SUFFIXES) + ")")
    return unique


def is_gzip(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def is_csv(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith(".csv") or name.endswith(".csv.gz")


def open_binary(path: Path):
    return gzip.open(path, "rb") if is_gzip(path) else path.open("rb")


def head_fingerprints(path: Path) -> tuple[str, str]:
    """SHA-256 of the file's first line (first two for CSV: header + first row) without
    trailing whitespace, so a first line whose newline (or trailing spaces) arrives later
    still names the same file;
    and the older form with line ends, which stores made before kept."""
    try:
        with open_binary(path) as fh:
            lines = [fh.readline(65536)]
            if is_csv(path):
                lines.append(fh.readline(65536))
    except (EOFError, zlib.error, gzip.BadGzipFile):
        # A damaged gzip: identify it by its raw bytes; the import quarantines the damage.
        with path.open("rb") as fh:
            raw = hashlib.sha256(b"raw:" + fh.read(65536)).hexdigest()
        return raw, raw
    bare = b"".join(line.rstrip() + b"\n" for line in lines)
    return hashlib.sha256(bare).hexdigest(), hashlib.sha256(b"".join(lines)).hexdigest()


def window_hash(path: Path, offset: int) -> str | None:
    """Hash of the bytes just before `offset` (None when the file is shorter than that)."""
    start = max(0, offset - WINDOW)
    try:
        with open_binary(path) as fh:
            fh.seek(start)
            window = fh.read(offset - start)
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile):
        return None
    if len(window) != offset - start:
        return None
    return hashlib.sha256(window).hexdigest()


class Tail:
    """The last bytes read, so a checkpoint's window hash needs no second read of the file
    (for gzip a second read means decompressing again from the start, at every commit)."""

    def __init__(self, start: int = 0) -> None:
        self.recent = b""
        self.end = start  # file offset just after the last bytes added

    def add(self, data: bytes) -> None:
        self.recent = (self.recent + data[-WINDOW:])[-WINDOW:]
        self.end += len(data)

    def window_hash(self, offset: int) -> str | None:
        """Hash of the bytes before `offset`, or None when they were not all read here."""
        wanted = min(offset, WINDOW)
        if offset != self.end or len(self.recent) < wanted:
            return None  # e.g. a pending last line was read past the checkpoint
        return hashlib.sha256(self.recent[len(self.recent) - wanted :]).hexdigest()


class CsvHeader(NamedTuple):
    """A CSV file's start: the header (None if unparseable or not there yet), the bytes
    and records it took (blank lines before it included) and its delimiter."""

    cells: list[str] | None
    consumed: int
    records: int
    delimiter: str


def header_delimiter(text: str) -> str:
    """The delimiter of a CSV header line: of CSV_DELIMITERS, the one that splits it into
    the most cells, quotes respected (a tie, e.g. a one-column header, keeps the comma).
    A header names columns, so it holds no delimiter of its own unquoted."""
    best, most = ",", 0
    for delimiter in CSV_DELIMITERS:
        try:
            cells = len(next(csv.reader([text], delimiter=delimiter), []))
        except csv.Error:
            continue
        if cells > most:
            best, most = delimiter, cells
    return best


def read_csv_header(fh, complete: bool, delimiter: str | None = ",") -> CsvHeader:
    """The header at a CSV's start, split by `delimiter` (None: the one the header line
    uses, `header_delimiter`).

    Leading blank lines are skipped (and counted); a BOM is dropped before decoding, so
    a quoted first header cell is still recognised. `complete`: the file will not grow
    (gzip, an upload), so a header without its newline is whole.
    """
    consumed = 0
    records = 0
    while True:
        line = fh.readline(MAX_LINE_BYTES)
        if not line:
            # Blank lines only, so far: nothing to read until a header arrives.
            return CsvHeader(None, 0, 0, delimiter or ",")
        first = consumed == 0
        consumed += len(line)
        records += 1
        if first and line.startswith(BOM):
            line = line[len(BOM) :]
        if not line.strip():
            continue
        text = decode_line(line)
        delimiter = delimiter or header_delimiter(text)
        try:
            header = [h.strip() for h in next(csv.reader([text], delimiter=delimiter), [])]
        except csv.Error:  # e.g. bare CRs: an old Mac file, read as one line
            return CsvHeader(None, consumed, records, delimiter)
        if not line.endswith(b"\n") and not complete:
            # A header still being written (its CRLF half there, or a quoted CR in it):
            # wait for its newline.
            return CsvHeader(None, 0, 0, delimiter)
        return CsvHeader(header if any(header) else None, consumed, records, delimiter)


csv.field_size_limit(MAX_LINE_BYTES)


def decode_line(line: bytes) -> str:
    # surrogateescape keeps bad bytes visible to the row check instead of failing the file
    return line.decode("utf-8", errors="surrogateescape").replace("\x00", "")


class LineFeeder:
    """Decoded lines for csv.reader, counting the bytes handed out (for checkpoints)."""

    def __init__(self, fh, start: int = 0) -> None:
        self.fh = fh
        self.consumed = 0
        self.unterminated = False
        self.exhausted = False  # the file ended while the reader wanted more of a row
        self.tail = Tail(start)

    def __iter__(self) -> LineFeeder:
        return self

    def __next__(self) -> str:
        line = self.fh.readline()
        if not line:
            self.exhausted = True
            raise StopIteration
        self.consumed += len(line)
        self.tail.add(line)
        self.unterminated = not line.endswith(b"\n")
        return decode_line(line)
