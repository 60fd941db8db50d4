"""How each kind of file is read: lines, multi-line entries, CSV rows, a whole JSON document.

Owns the reading loops. Every reader starts at the source's checkpoint (a line count and
a byte offset), hands each record to the importer (`Importer.handle_record`), commits in
blocks of whole records, and leaves a last record that is still being written (no
newline yet, an entry not yet whole) for the next import, unless the file is complete
(gzip, an upload: it will not grow). A damaged gzip keeps what was readable before the
damage, which is recorded as a quarantined pseudo-line; a binary file is one
quarantined pseudo-line.
"""

from __future__ import annotations

import csv
import gzip
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from dashboard.ingest.files import (
    BOM,
    MAX_LINE_BYTES,
    LineFeeder,
    Tail,
    open_binary,
    read_csv_header,
)
from dashboard.ingest.formats.base import ENTRY_CONTINUATION, LogFormat
from dashboard.ingest.rows import Rejected
from dashboard.store.database import write_transaction

if TYPE_CHECKING:
    from dashboard.ingest.importer import Importer

CHUNK_LINES = 100_000  # lines per committed block
# Below this many lines a block takes the per-record path: setting up the vectorised
# parser (an in-memory DuckDB) costs more than it saves on a small append.
FAST_PATH_MIN_LINES = 2_000
_READ_BYTES = 1 << 20
_GZIP_DAMAGE = (EOFError, zlib.error, gzip.BadGzipFile, OSError)
BINARY_REASON = "binary file, not text"


@dataclass
class Chunk:
    """What the next commit writes: rows, quarantine, answers to earlier requests."""

    rows: list[tuple] = field(default_factory=list)
    tables: list[Any] = field(default_factory=list)  # Arrow tables from the fast path
    quarantined: list[dict] = field(default_factory=list)
    # Answers to requests committed before this chunk: (request line, answer). An answer
    # to a request still in this chunk is written into its rows instead.
    answers: list[tuple[int, dict]] = field(default_factory=list)
    rows_of_line: dict[int, range] = field(default_factory=dict)  # line -> indexes in rows


@dataclass(frozen=True)
class FileState:
    """One file being read: where it stands in the store, its format, whether it is
    complete (gzip, an upload: a last line without its newline is whole, not one still
    being written) and, for CSV, its delimiter."""

    path: Path
    source_id: int
    lines_done: int
    bytes_done: int
    fmt: LogFormat
    complete: bool = False
    delimiter: str = ","


def _quarantine_damage(importer, chunk, file, line_no: int, damage: Exception) -> None:
    """Truncated or corrupt gzip: the damage is a quarantined pseudo-line after the last."""
    importer.summary.lines_read += 1
    importer.quarantine(
        chunk, file, line_no, -1, Rejected("truncated or corrupt gzip", type(damage).__name__)
    )


# -- lines --------------------------------------------------------------------------------
def read_lines(importer: Importer, file: FileState) -> None:
    """One record per line, in blocks of up to CHUNK_LINES complete lines, each committed
    with its checkpoint. For formats the vectorised parser reads, a block goes there
    first; the lines it leaves take the per-record path."""
    chunk = Chunk()
    line_no = file.lines_done
    offset = file.bytes_done
    damage: Exception | None = None
    with open_binary(file.path) as fh:
        try:
            if file.bytes_done:
                fh.seek(file.bytes_done - 1)
                if fh.read(1) != b"\n":
                    # The last import ended on a line with no newline yet: if the writer
                    # has since finished it with a bare newline, that newline is not a line.
                    peek = fh.read(1)
                    if peek == b"\n":
                        offset += 1
                    else:
                        fh.seek(file.bytes_done)
        except _GZIP_DAMAGE as exc:
            damage = exc
        tail = Tail(start=offset)
        carry = b""
        while damage is None:
            pieces = [carry]
            newlines = carry.count(b"\n")
            at_end = False
            while newlines < CHUNK_LINES:
                try:
                    # read1: one underlying read at a time, so on a damaged gzip
                    # everything decompressed before the damage is kept.
                    piece = fh.read1(_READ_BYTES)
                except _GZIP_DAMAGE as exc:
                    damage = exc
                    break
                if not piece:
                    at_end = True
                    break
                pieces.append(piece)
                newlines += piece.count(b"\n")
            data = b"".join(pieces)
            ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)[:CHUNK_LINES] + 1
            cut = int(ends[-1]) if len(ends) else 0
            block, carry = data[:cut], data[cut:]
            if len(ends):
                _read_block(importer, chunk, file, line_no + 1, block, ends)
                line_no += len(ends)
                offset += cut
                tail.add(block)
            if at_end and carry:
                unbommed = carry[len(BOM) :] if line_no == 0 and carry.startswith(BOM) else carry
                if not file.complete and not file.fmt.line_complete(unbommed):
                    # The writer is still writing this last line: leave it for next time.
                    importer.summary.pending_lines += 1
                else:
                    line_no += 1
                    offset += len(carry)
                    tail.add(carry)
                    importer.summary.lines_read += 1
                    _read_line(importer, chunk, file, line_no, carry)
            if damage is None and not at_end:
                importer.commit(chunk, file, line_no, offset, tail, background=True)
            if at_end:
                break
    if damage is not None:
        _quarantine_damage(importer, chunk, file, line_no + 1, damage)
    importer.commit(chunk, file, line_no, offset, tail)


def _read_block(importer, chunk, file, first_line_no: int, block: bytes, ends) -> None:
    importer.summary.lines_read += len(ends)
    fast = file.fmt.vectorised and (
        importer.vectorised or (importer.vectorised is None and len(ends) >= FAST_PATH_MIN_LINES)
    )
    if fast:
        rows, leftover = importer.block_parser().parse(
            block, ends, first_line_no, file.source_id, MAX_LINE_BYTES
        )
        chunk.tables.append(rows)
        importer.summary.events_imported += rows.num_rows
        importer.summary.lines_with_events += len(ends) - len(leftover)
    else:
        leftover = range(len(ends))
    for i in map(int, leftover):
        start = int(ends[i - 1]) if i else 0
        _read_line(importer, chunk, file, first_line_no + i, block[start : ends[i]])


def _read_line(importer, chunk, file, line_no: int, line: bytes) -> None:
    if line_no == 1 and line.startswith(BOM):
        line = line[len(BOM) :]
    if not line.strip():
        importer.summary.blank_lines += 1
        return

    def parse():
        if len(line) > MAX_LINE_BYTES:
            raise Rejected("line too long", f"{len(line)} bytes")
        return file.fmt.parse_line(line, importer.default_dataset)

    importer.handle_record(chunk, file, line_no, parse, nul=b"\\u0000" in line)


# -- multi-line entries -----------------------------------------------------------------
def read_entries(importer: Importer, file: FileState) -> None:
    """Records spanning several lines (a WooCommerce log entry, an SDK's request and
    answer). An entry begins at a line its format recognises as a start and runs to the
    next one; the checkpoint only ever falls between entries. Lines that hold no event
    and no error are counted as skipped, with their reason."""
    chunk = Chunk()
    line_no, offset = file.lines_done, file.bytes_done
    tail = Tail(start=offset)
    entry: list[str] = []  # the open entry's lines
    entry_bytes: list[bytes] = []
    since_commit = 0
    damage: Exception | None = None

    def finish_entry() -> None:
        nonlocal line_no, offset, since_commit
        first = line_no + 1
        lines = list(entry)
        importer.summary.lines_read += len(lines)
        importer.handle_record(
            chunk,
            file,
            first,
            lambda: file.fmt.parse_entry(lines, importer.default_dataset),
        )
        for rest in lines[1:]:
            if rest.strip():
                importer.summary.lines_skipped[ENTRY_CONTINUATION] += 1
            else:
                importer.summary.blank_lines += 1
        for raw in entry_bytes:
            tail.add(raw)
            offset += len(raw)
        line_no += len(lines)
        since_commit += len(lines)
        entry.clear()
        entry_bytes.clear()

    with open_binary(file.path) as fh:
        try:
            if file.bytes_done:
                fh.seek(file.bytes_done)
            while True:
                raw = fh.readline(MAX_LINE_BYTES)
                if not raw:
                    break
                if not raw.endswith(b"\n") and len(raw) >= MAX_LINE_BYTES:
                    raw += _rest_of_line(fh)  # over-long: read to its end, then quarantined
                if not raw.endswith(b"\n") and not file.complete:
                    break  # still being written: this line and its entry wait
                if line_no + len(entry) == 0 and raw.startswith(BOM):
                    text = raw[len(BOM) :].decode("utf-8", "replace")
                else:
                    text = raw.decode("utf-8", "replace")
                if len(raw) > MAX_LINE_BYTES:
                    text = ""  # too long to be a log line: quarantined below, unread
                starts = bool(text.strip()) and file.fmt.starts_entry(text)
                if entry and (starts or len(raw) > MAX_LINE_BYTES):
                    finish_entry()
                    if since_commit >= CHUNK_LINES:
                        importer.commit(chunk, file, line_no, offset, tail)
                        since_commit = 0
                if len(raw) > MAX_LINE_BYTES:
                    _skip_line(importer, chunk, file, line_no + 1, Rejected("line too long"))
                    line_no += 1
                    offset += len(raw)
                    tail.add(raw)
                    continue
                if not entry and not starts:
                    # Blank, or a continuation whose entry began before the checkpoint.
                    importer.summary.lines_read += 1
                    if text.strip():
                        importer.summary.lines_skipped[ENTRY_CONTINUATION] += 1
                    else:
                        importer.summary.blank_lines += 1
                    line_no += 1
                    offset += len(raw)
                    tail.add(raw)
                    continue
                entry.append(text)
                entry_bytes.append(raw)
        except _GZIP_DAMAGE as exc:
            damage = exc
    if entry:
        if file.complete or damage is not None or file.fmt.entry_complete(entry):
            finish_entry()
        else:
            importer.summary.pending_lines += len(entry)
    if damage is not None:
        _quarantine_damage(importer, chunk, file, line_no + 1, damage)
    importer.commit(chunk, file, line_no, offset, tail)


def _rest_of_line(fh) -> bytes:
    pieces = []
    while True:
        piece = fh.readline(_READ_BYTES)
        pieces.append(piece)
        if not piece or piece.endswith(b"\n"):
            return b"".join(pieces)


def _skip_line(importer, chunk, file, line_no: int, exc: Rejected) -> None:
    importer.summary.lines_read += 1
    importer.quarantine(chunk, file, line_no, -1, exc)


# -- CSV rows -----------------------------------------------------------------------------
def read_csv(importer: Importer, file: FileState) -> None:
    """CSV, one record per row; checkpoints are byte offsets like JSONL's.

    Bytes are decoded line by line (a bad byte quarantines its record, not the rest
    of the file); line numbers are record numbers, the header being record 1.
    """
    chunk = Chunk()
    since_commit = 0
    record_no = file.lines_done
    offset = file.bytes_done
    feeder = None
    try:
        with open_binary(file.path) as fh:
            header, header_bytes, header_records, _ = read_csv_header(
                fh, file.complete, file.delimiter
            )
            if not header_records:
                return  # empty, or blank lines only so far: wait for a header
            if file.lines_done == 0:
                # Leading blank lines and the header: read, hold no event.
                importer.summary.lines_read += header_records
                importer.summary.blank_lines += header_records - (header is None)
                record_no = header_records
                offset = header_bytes
                if header is None:
                    importer.quarantine(
                        chunk, file, record_no, -1, Rejected("malformed CSV header")
                    )
            else:
                fh.seek(file.bytes_done)
            start = file.bytes_done or header_bytes
            feeder = LineFeeder(fh, start=start)
            rows = csv.reader(feeder, delimiter=file.delimiter)
            while True:
                try:
                    row = next(rows)
                except StopIteration:
                    break
                except csv.Error as exc:
                    record_no += 1
                    importer.summary.lines_read += 1
                    offset = start + feeder.consumed
                    importer.quarantine(
                        chunk, file, record_no, -1, Rejected("malformed CSV", str(exc)[:100])
                    )
                    continue
                if (feeder.unterminated or feeder.exhausted) and not file.complete:
                    # A last row with no newline may still be being written (even a
                    # row with all its columns can be cut inside the last field), and
                    # so may one whose quoted field the file ended in: they wait.
                    importer.summary.pending_lines += 1
                    break
                record_no += 1
                offset = start + feeder.consumed
                importer.summary.lines_read += 1
                since_commit += 1
                if header is None:
                    importer.quarantine(
                        chunk, file, record_no, -1, Rejected("no usable CSV header")
                    )
                else:
                    _read_row(importer, chunk, file, record_no, header, row)
                if since_commit >= CHUNK_LINES:
                    importer.commit(chunk, file, record_no, offset, feeder.tail)
                    since_commit = 0
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        _quarantine_damage(importer, chunk, file, record_no + 1, exc)
    importer.commit(chunk, file, record_no, offset, feeder.tail if feeder else None)


def _read_row(importer, chunk, file, record_no, header, row) -> None:
    if not any(cell.strip() for cell in row):
        importer.summary.blank_lines += 1
        return

    def parse():
        try:
            "".join(row).encode("utf-8")
        except UnicodeEncodeError:  # undecodable bytes were kept as surrogates
            raise Rejected("not UTF-8") from None
        if len(row) != len(header):
            raise Rejected(
                "CSV row has the wrong number of columns", f"{len(row)} vs {len(header)}"
            )
        cells = {
            name: value for name, value in zip(header, row, strict=True) if value.strip() != ""
        }
        return file.fmt.parse_row(cells, importer.default_dataset)

    importer.handle_record(chunk, file, record_no, parse)


# -- one JSON document ----------------------------------------------------------------
def read_document(importer: Importer, file: FileState) -> None:
    """The whole file as one JSON document: a pretty-printed body, or an array of bodies.
    Its "line" numbers are record numbers (the body's place in the array, from 1). A
    document that changed after its import is read again whole."""
    from dashboard.ingest.detect import read_whole

    chunk = Chunk()
    data = read_whole(file.path)
    size = len(data) if data is not None else 0
    if file.bytes_done and file.bytes_done == size:
        return  # imported whole already
    if file.bytes_done:
        with write_transaction(importer.engine) as connection:
            importer.restart(connection, file.source_id, file.path)
    if data is None:
        _skip_line(
            importer,
            chunk,
            file,
            1,
            Rejected("JSON document too large", "write one request body per line instead"),
        )
        importer.commit(chunk, file, 1, 0)
        return
    try:
        document = orjson.loads(data.removeprefix(BOM))
    except orjson.JSONDecodeError:
        _skip_line(importer, chunk, file, 1, Rejected("malformed JSON document"))
        importer.commit(chunk, file, 1, size)
        return
    records = file.fmt.document_records(document)
    for record_no, record in enumerate(records, start=1):
        importer.summary.lines_read += 1
        importer.handle_record(
            chunk,
            file,
            record_no,
            lambda record=record: file.fmt.parse_record(record, importer.default_dataset),
        )
    importer.commit(chunk, file, len(records), size)


# -- a binary file ----------------------------------------------------------------------
def read_binary(importer: Importer, file: FileState, detail: str, size: int) -> None:
    """A binary file (an image, an archive) is no log: one quarantined pseudo-line for
    the whole file, not one per chunk of bytes that happens to end in a newline byte. Its
    checkpoint covers the `size` bytes judged, so importing it again adds nothing."""
    if file.lines_done:
        return  # quarantined by an earlier import
    chunk = Chunk()
    _skip_line(importer, chunk, file, 1, Rejected(BINARY_REASON, detail))
    importer.commit(chunk, file, 1, size)
