"""The import run: files in, rows and quarantine out, checkpointed so nothing is read twice.

Owns `ingest()` and the state of one run (`Importer`): which source a file is (its
checkpoint), which format it is read in (`formats.detect`, or `ingest --format`),
whether it is complete (gzip, an upload) or may still grow, what becomes of each
record's outcome (events, an answer to an earlier request, a skipped
line, a quarantined one), and the crash-safe commit: rows, quarantine, the queue of
open requests and the file checkpoint are written in one transaction, so a run killed
at any point and started again leaves no duplicate and no gap. How each kind of file
is read is in `dashboard.ingest.readers`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from dashboard.core.config import Config, load_config
from dashboard.core.definitions import UPLOAD_PREFIX
from dashboard.ingest import formats, readers
from dashboard.ingest.detect import Unrecognised, binary_detail, reader_for, sniff
from dashboard.ingest.fastpath import BlockParser
from dashboard.ingest.files import (
    Tail,
    expand_paths,
    head_fingerprints,
    is_csv,
    is_gzip,
    window_hash,
)
from dashboard.ingest.formats.base import (
    ANSWER_LINE,
    Answer,
    Batch,
    Outcome,
    Skipped,
    csv_delimiter,
)
from dashboard.ingest.pairing import OpenRequests
from dashboard.ingest.readers import Chunk
from dashboard.ingest.rows import (
    ANSWER_FIELDS,
    UNKNOWN_DATASET,
    Envelope,
    Rejected,
    build_row,
    with_answer,
    without_nul,
)
from dashboard.ingest.summary import ImportSummary, IngestError
from dashboard.store import checkpoints, dedup
from dashboard.store.database import (
    EVENT_INSERT_COLUMNS,
    StoreConnection,
    StoreEngine,
    create_schema,
    events_arrow_schema,
    write_transaction,
)
from dashboard.store.pending import write_open_request_changes

ANSWER_WITHOUT_REQUEST = "Meta's answer to a request not in this log"


class Importer:
    """One import run over any number of files."""

    def __init__(
        self,
        engine: StoreEngine,
        config: Config,
        import_id: int,
        summary: ImportSummary,
        vectorised: bool | None = None,
        *,
        forced_format: str | None = None,
        default_dataset: str = UNKNOWN_DATASET,
        names: dict[Path, str] | None = None,
    ):
        self.engine = engine
        self.config = config
        self.import_id = import_id
        self.summary = summary
        self.vectorised = vectorised
        self.forced_format = forced_format
        self.default_dataset = default_dataset
        self.names = names or {}
        self.open: OpenRequests | None = None  # the current file's open requests
        self._parser: BlockParser | None = None
        self._writer: ThreadPoolExecutor | None = None
        self._pending: Future | None = None

    def shown(self, path: Path) -> str:
        """How a file is named to people (summary, import history, quarantine)."""
        return self.names.get(path, str(path))

    def close(self) -> None:
        """Release the parser and the writer thread (after the write in flight ends: a
        block being committed is finished even when the import failed elsewhere)."""
        if self._parser is not None:
            self._parser.close()
        if self._writer is not None:
            self._writer.shutdown(wait=True)

    def block_parser(self) -> BlockParser:
        if self._parser is None:
            self._parser = BlockParser(
                self.config, EVENT_INSERT_COLUMNS, events_arrow_schema(), self.default_dataset
            )
        return self._parser

    # -- which source, which format ------------------------------------------------
    def _source(self, connection: StoreConnection, path: Path) -> tuple[int, int, int]:
        """(source_id, lines_done, bytes_done) for a file.

        A file is the same source as an imported one when its first line matches and the
        bytes just before that source's checkpoint match too (a renamed, gzipped or grown
        copy). Same first line but different content: a different file, unless it sits at
        the same path, in which case it was rewritten and is imported again from scratch.
        """
        fingerprint, legacy_fingerprint = head_fingerprints(path)
        candidates = checkpoints.sources_with_head(connection, (fingerprint, legacy_fingerprint))
        for stored in candidates:
            if (
                stored.bytes_done == 0
                or window_hash(path, stored.bytes_done) == stored.last_line_hash
            ):
                checkpoints.resume_source(
                    connection, stored.source_id, fingerprint, stored.lines_done
                )
                return stored.source_id, stored.lines_done, stored.bytes_done
        rewritten = [stored for stored in candidates if stored.path == str(path)]
        if rewritten:
            source_id = rewritten[0].source_id
            self.restart(connection, source_id, path)
            return source_id, 0, 0
        return checkpoints.add_source(connection, fingerprint, str(path)), 0, 0

    def restart(
        self, connection: StoreConnection, source_id: int, path: Path, *, keep_format=False
    ) -> None:
        """Forget what was imported from a source: it is read again from its start (in
        the format just decided with `keep_format`, else in the one detected next: a file
        rewritten in place may be in another format now)."""
        checkpoints.forget_source(connection, source_id, keep_format=keep_format)
        self.summary.reimported_files.append(self.shown(path))

    def _format(
        self,
        connection: StoreConnection,
        path: Path,
        source_id: int,
        sniffed: formats.Detected | None,
    ) -> tuple[formats.Detected, bool]:
        """The file's format and reader, and whether the source must be read again from
        its start (its format changed since the last import). `sniffed` is what detection
        found (None: nothing but blank lines yet, or a forced format)."""
        stored = checkpoints.stored_format(connection, source_id)
        if self.forced_format:
            fmt = formats.BY_NAME[self.forced_format]
            reader = stored.reader if stored and stored.format == fmt.name else None
            detected = formats.Detected(fmt, reader or reader_for(fmt, path))
        elif stored and stored.format != formats.UNRECOGNISED:
            detected = formats.Detected(formats.BY_NAME[stored.format], stored.reader)
            if (
                sniffed is not None
                and sniffed.name == stored.format
                and csv_delimiter(stored.reader) is not None
                and csv_delimiter(sniffed.reader) is not None
            ):
                # A CSV's delimiter comes from its header, which a grown file keeps: it
                # differs only for a source a store read before delimiters were detected
                # (as commas), which is read again in the delimiter it has.
                detected = sniffed
        elif sniffed is None:
            # Nothing but blank lines so far: read them, and decide the format once
            # there is a record to go by.
            default = formats.BY_NAME["eqm-csv" if is_csv(path) else "eqm-v1"]
            return formats.Detected(default, default.readers[0]), False
        else:
            detected = sniffed
        changed = stored is not None and (stored.format, stored.reader) != (
            detected.name,
            detected.reader,
        )
        if stored is None or changed:
            checkpoints.record_format(
                connection, source_id, detected.name, detected.reader, replace=changed
            )
        return detected, changed

    # -- one file ---------------------------------------------------------------
    def import_file(self, path: Path) -> None:
        # An upload is whole when it arrives (uploads.py names it UPLOAD_PREFIX + name):
        # its last line is read even without a newline. A file on disk may still be
        # being written, so there such a line waits (gzip excepted: it is complete).
        complete = is_gzip(path) or self.shown(path).startswith(UPLOAD_PREFIX)
        binary = binary_detail(path)
        sniffed = None if self.forced_format or binary else sniff(path, complete)
        # One transaction (one opening of the store) for the source, its format and its
        # open requests.
        with write_transaction(self.engine) as connection:
            source_id, lines_done, bytes_done = self._source(connection, path)
            if binary is None:
                detected, changed = self._format(connection, path, source_id, sniffed)
                if changed and (lines_done or bytes_done):
                    self.restart(connection, source_id, path, keep_format=True)
                    lines_done = bytes_done = 0
            self.open = OpenRequests.load(connection, source_id)
        self.summary.files += 1
        self.summary.lines_already_imported += lines_done
        if binary is not None:
            self.summary.formats[self.shown(path)] = "(binary file, not text)"
            file = readers.FileState(path, source_id, lines_done, bytes_done, Unrecognised())
            readers.read_binary(self, file, *binary)
            return
        fmt = detected.format
        self.summary.formats[self.shown(path)] = (
            f"{fmt.name} ({fmt.title})" if fmt else detected.name
        )
        if fmt is None:
            self.summary.unrecognised_tried = tuple(formats.format_names())
            fmt = Unrecognised()
        delimiter = csv_delimiter(detected.reader)
        file = readers.FileState(
            path, source_id, lines_done, bytes_done, fmt, complete, delimiter or ","
        )
        if delimiter is not None:
            readers.read_csv(self, file)
        elif detected.reader == "json":
            readers.read_document(self, file)
        elif detected.reader == "entries":
            readers.read_entries(self, file)
        else:
            readers.read_lines(self, file)

    # -- outcomes -------------------------------------------------------------------
    def handle(
        self, chunk: Chunk, file: readers.FileState, line_no: int, outcome: Outcome, nul=False
    ) -> None:
        """Account for one record's outcome, at `line_no` (its first line)."""
        if outcome is None:
            self.summary.blank_lines += 1
        elif isinstance(outcome, Batch):
            self._handle_events(chunk, file, line_no, outcome.envelope, outcome.events, nul)
            if outcome.awaits is not None:
                self.open.add(outcome.awaits, line_no)
        elif isinstance(outcome, Answer):
            request_line = self.open.take(outcome.key, outcome.dataset_id)
            if request_line is None:
                self.summary.lines_skipped[ANSWER_WITHOUT_REQUEST] += 1
            else:
                self.summary.lines_skipped[ANSWER_LINE] += 1
                rows = chunk.rows_of_line.get(request_line)
                if rows is None:
                    chunk.answers.append((request_line, outcome.delivery))
                else:
                    for i in rows:
                        chunk.rows[i] = with_answer(chunk.rows[i], outcome.delivery)
        elif isinstance(outcome, Skipped):
            self.summary.lines_skipped[outcome.reason] += 1
            if outcome.awaits is not None:
                self.open.add(outcome.awaits, line_no)

    def handle_record(
        self, chunk: Chunk, file: readers.FileState, line_no: int, parse, nul=False
    ) -> None:
        """Parse one record (`parse()` gives its outcome) and account for it; a record that
        cannot be read is quarantined whole."""
        try:
            outcome = parse()
        except Rejected as exc:
            self.quarantine(chunk, file, line_no, -1, exc)
            if exc.awaits is not None:
                self.open.add(exc.awaits, line_no)
            return
        except RecursionError:
            self.quarantine(chunk, file, line_no, -1, Rejected("nested too deeply"))
            return
        self.handle(chunk, file, line_no, outcome, nul)

    def _handle_events(
        self, chunk, file, line_no, envelope: Envelope, raw_events, nul: bool = False
    ) -> None:
        """`nul`: the line may hold a NUL (only a JSON \\u0000 escape can put one in a
        parsed JSONL value; CSV lines are decoded without them), so rows are cleaned."""
        self.summary.lines_with_events += 1
        first = len(chunk.rows)
        for idx, raw in enumerate(raw_events):
            try:
                row = build_row(raw, envelope, self.config, (file.source_id, line_no, idx))
                chunk.rows.append(without_nul(row) if nul else row)
                self.summary.events_imported += 1
            except Rejected as exc:
                self.quarantine(chunk, file, line_no, idx, exc)
        chunk.rows_of_line[line_no] = range(first, len(chunk.rows))

    def quarantine(
        self, chunk: Chunk, file: readers.FileState, line_no: int, idx: int, exc: Rejected
    ) -> None:
        chunk.quarantined.append(
            {
                "source_id": file.source_id,
                "line_no": line_no,
                "idx": idx,
                "import_id": self.import_id,
                "path": self.shown(file.path),
                "reason": exc.reason[:64].replace("\x00", ""),
                "detail": exc.detail[:300].replace("\x00", "") or None,
            }
        )
        self.summary.quarantined_by_reason[exc.reason] += 1
        if idx < 0:
            self.summary.lines_quarantined += 1
        else:
            self.summary.events_quarantined += 1

    # -- commits ----------------------------------------------------------------------
    def commit(
        self,
        chunk: Chunk,
        file: readers.FileState,
        lines_done: int,
        bytes_done: int,
        tail: Tail | None = None,
        *,
        background: bool = False,
    ) -> None:
        """Write the chunk with its checkpoint in one transaction, and empty the chunk.

        With `background`, the write runs on the writer thread while the caller parses the
        next block (DuckDB and the database driver release the GIL); the caller's next
        commit waits for it first, so blocks still commit one at a time and in file order.
        """
        window = None
        if bytes_done:
            window = (tail.window_hash(bytes_done) if tail else None) or window_hash(
                file.path, bytes_done
            )
        progress = self.summary.progress()  # a snapshot: the summary moves on meanwhile
        block = Chunk(chunk.rows, chunk.tables, chunk.quarantined, chunk.answers)
        chunk.rows, chunk.tables, chunk.quarantined, chunk.answers = [], [], [], []
        chunk.rows_of_line = {}
        queue_changes = self.open.drain() if self.open is not None else ([], [])
        self.wait_for_writes()

        def write() -> None:
            self._write(block, file, lines_done, bytes_done, window, progress, queue_changes)

        if background:
            if self._writer is None:
                self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="eqm-writer")
            self._pending = self._writer.submit(write)
        else:
            write()

    def wait_for_writes(self) -> None:
        """Wait for the write in flight, if any; its error is raised here."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def _write(
        self,
        chunk: Chunk,
        file: readers.FileState,
        lines_done: int,
        bytes_done: int,
        window: str | None,
        progress: dict[str, int],
        queue_changes: tuple[list[dict], list[int]],
    ) -> None:
        # One transaction: the block's rows, quarantine and answers, the queue's changes,
        # the checkpoint and the run's counts commit together or not at all, so an import
        # killed at any point resumes from the last checkpoint with no duplicate and no gap.
        with write_transaction(self.engine) as connection:
            checkpoints.insert_events(connection, chunk.rows, chunk.tables)
            checkpoints.insert_quarantine(connection, chunk.quarantined)
            checkpoints.apply_answers(connection, file.source_id, chunk.answers, ANSWER_FIELDS)
            write_open_request_changes(connection, file.source_id, *queue_changes)
            checkpoints.save_checkpoint(
                connection,
                file.source_id,
                path=str(file.path),
                lines_done=lines_done,
                bytes_done=bytes_done,
                window=window,
            )
            checkpoints.record_progress(connection, self.import_id, progress)


def _names(files: list[Path], names: Mapping[str | os.PathLike, str]) -> dict[Path, str]:
    """The people's name of each file that `names` names (itself or a folder above it)."""
    given = {Path(os.fspath(path)).resolve(): name for path, name in names.items()}
    shown: dict[Path, str] = {}
    for file in files:
        for folder in (file, *file.parents):
            if folder in given:
                rest = file.relative_to(folder).as_posix()
                shown[file] = given[folder] if rest == "." else f"{given[folder]}/{rest}"
                break
    return shown


def ingest(
    paths: Iterable[str | os.PathLike],
    engine: StoreEngine,
    *,
    config: Config | None = None,
    update_dedup: bool = True,
    vectorised: bool | None = None,
    log_format: str | None = None,
    default_dataset: str | None = None,
    names: Mapping[str | os.PathLike, str] | None = None,
) -> ImportSummary:
    """Import every log file under `paths` into the store behind `engine`.

    Each file's format is detected from its first records, or forced with `log_format`
    (a name from `formats.FORMATS`). `default_dataset` names the dataset of records that
    name none (raw request bodies). JSON Lines blocks of at least FAST_PATH_MIN_LINES
    lines go through the vectorised parser (`dashboard.ingest.fastpath`);
    `vectorised=True` sends every block there, `False` none (the per-record Python
    path, which the vectorised one is tested against).

    `names` names files for people in the summary, the import history and the
    quarantine: a file given in `paths` by its name, a folder's files by the folder's
    name and their path in it (an upload's temporary copy by the name it was uploaded
    under). Which source a file is still goes by its content, never by its name.
    """
    if log_format is not None and log_format not in formats.BY_NAME:
        raise IngestError(
            f"unknown format {log_format!r} (known: {', '.join(formats.format_names())})"
        )
    config = config or load_config()
    files = expand_paths(paths)
    shown = _names(files, names or {})
    create_schema(engine)
    summary = ImportSummary()
    import_id = checkpoints.start_import(
        engine, "\n".join(shown.get(f, str(f)) for f in files), summary.progress()
    )
    summary.import_id = import_id
    importer = Importer(
        engine,
        config,
        import_id,
        summary,
        vectorised,
        forced_format=log_format,
        default_dataset=(default_dataset or "").strip()[:64] or UNKNOWN_DATASET,
        names=shown,
    )
    status = "failed"
    try:
        for path in files:
            importer.import_file(path)
        status = "done"
    finally:
        importer.close()
        if update_dedup:
            # Also after a failure: the chunks that did commit must get their dedup status.
            try:
                dedup.refresh_if_stale(engine)
            except Exception:  # noqa: BLE001 - never mask the original error
                if status == "done":
                    raise
        try:
            checkpoints.finish_import(engine, import_id, status)
        except Exception:  # noqa: BLE001 - never mask the original error
            if status == "done":
                raise
    return summary
