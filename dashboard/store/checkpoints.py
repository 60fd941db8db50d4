"""Sources and their checkpoints, the formats they are read in, the import runs, and
what one committed import block writes.

Owns every statement the importer (`dashboard.ingest.importer`) runs on `sources`,
`source_formats` and `imports`, and its writes of events, quarantine and Meta's late
answers. The importer keeps the transaction boundaries (what must commit together so
that an import killed at any point resumes with no duplicate and no gap): the functions
here run inside the transaction they are handed, except `start_import` and
`finish_import`, which are a transaction each. The queue of open requests is
`dashboard.store.pending`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from dashboard.store import dedup
from dashboard.store.database import (
    EVENT_INSERT_COLUMNS,
    events,
    get_meta,
    imports,
    insert_arrow,
    insert_rows,
    next_id,
    quarantine,
    set_meta,
    source_formats,
    sources,
    write_transaction,
)
from dashboard.store.pending import forget_open_requests


@dataclass(frozen=True)
class StoredSource:
    """A source as stored: where its import stands (its checkpoint)."""

    source_id: int
    path: str
    lines_done: int
    bytes_done: int
    last_line_hash: str | None  # hash of the bytes just before the checkpoint


class StoredFormat(NamedTuple):
    """The format and reader a source was read in."""

    format: str
    reader: str


# -- sources and checkpoints ------------------------------------------------------------
def sources_with_head(connection: Connection, fingerprints: Iterable[str]) -> list[StoredSource]:
    """The sources whose first line has one of `fingerprints`, oldest first."""
    rows = (
        connection.execute(
            sa.select(sources)
            .where(sources.c.head_fingerprint.in_(sorted(set(fingerprints))))
            .order_by(sources.c.source_id)
        )
        .mappings()
        .all()
    )
    return [
        StoredSource(
            row["source_id"],
            row["path"],
            row["lines_done"],
            row["bytes_done"],
            row["last_line_hash"],
        )
        for row in rows
    ]


def resume_source(connection: Connection, source_id: int, fingerprint: str, lines_done: int):
    """A file is this source again: record its first line's current fingerprint, and drop
    the quarantined pseudo-lines (e.g. "truncated gzip") recorded past its checkpoint,
    which are redone from there."""
    connection.execute(
        sa.update(sources)
        .where(sources.c.source_id == source_id)
        .values(head_fingerprint=fingerprint)
    )
    connection.execute(
        sa.delete(quarantine).where(
            quarantine.c.source_id == source_id, quarantine.c.line_no > lines_done
        )
    )


def add_source(connection: Connection, fingerprint: str, path: str) -> int:
    """A new source, nothing imported yet; its id."""
    source_id = next_id(connection, sources.c.source_id)
    connection.execute(
        sa.insert(sources).values(
            source_id=source_id,
            head_fingerprint=fingerprint,
            path=path,
            lines_done=0,
            bytes_done=0,
            last_line_hash=None,
            updated_at=time.time(),
        )
    )
    return source_id


def forget_source(connection: Connection, source_id: int, *, keep_format: bool = False) -> None:
    """Forget what was imported from a source (its events, quarantine, open requests and,
    unless `keep_format`, its format), and set its checkpoint back to its start. The
    events of other sources that paired with the forgotten ones are recomputed by the
    next dedup refresh, which must then be a full one."""
    connection.execute(sa.delete(events).where(events.c.source_id == source_id))
    connection.execute(sa.delete(quarantine).where(quarantine.c.source_id == source_id))
    forget_open_requests(connection, source_id)
    if not keep_format:
        connection.execute(sa.delete(source_formats).where(source_formats.c.source_id == source_id))
    dedup.request_full_refresh(connection)
    connection.execute(
        sa.update(sources)
        .where(sources.c.source_id == source_id)
        .values(lines_done=0, bytes_done=0, last_line_hash=None)
    )
    bump_data_version(connection)


def save_checkpoint(
    connection: Connection,
    source_id: int,
    *,
    path: str,
    lines_done: int,
    bytes_done: int,
    window: str | None,
) -> None:
    """Move the source's checkpoint to `lines_done` lines, `bytes_done` bytes (`window`:
    the hash of the bytes just before it), and bump data_version: the store changed."""
    connection.execute(
        sa.update(sources)
        .where(sources.c.source_id == source_id)
        .values(
            lines_done=lines_done,
            bytes_done=bytes_done,
            last_line_hash=window,
            path=path,
            updated_at=time.time(),
        )
    )
    bump_data_version(connection)


def bump_data_version(connection: Connection) -> None:
    """The store's data changed: cached results and the dedup columns are now stale."""
    set_meta(connection, "data_version", get_meta(connection, "data_version") + 1)


# -- formats ------------------------------------------------------------------------------
def stored_format(connection: Connection, source_id: int) -> StoredFormat | None:
    """The format and reader the source was read in; None when none is recorded."""
    row = connection.execute(
        sa.select(source_formats.c.format, source_formats.c.reader).where(
            source_formats.c.source_id == source_id
        )
    ).first()
    return None if row is None else StoredFormat(row.format, row.reader)


def record_format(
    connection: Connection, source_id: int, fmt: str, reader: str, *, replace: bool
) -> None:
    """Record the source's format and reader (`replace`: in place of the one stored)."""
    if replace:
        connection.execute(sa.delete(source_formats).where(source_formats.c.source_id == source_id))
    connection.execute(
        sa.insert(source_formats).values(source_id=source_id, format=fmt, reader=reader)
    )


# -- what a block writes ------------------------------------------------------------------
def insert_events(connection: Connection, rows: list[tuple], tables: Sequence[Any] = ()) -> None:
    """Event rows (tuples in EVENT_INSERT_COLUMNS order) and Arrow tables of them."""
    insert_rows(connection, events, EVENT_INSERT_COLUMNS, rows)
    for table in tables:
        insert_arrow(connection, events, table)


def insert_quarantine(connection: Connection, records: list[dict]) -> None:
    """Quarantine records (dicts of the `quarantine` table's columns)."""
    if records:
        connection.execute(sa.insert(quarantine), records)


def apply_answers(
    connection: Connection,
    source_id: int,
    answers: list[tuple[int, Mapping[str, Any]]],
    fields: Sequence[str],
) -> None:
    """Meta's answers to requests committed earlier: the events of each request line
    take the answer's `fields`. Events that became rejected leave dedup (their twins are
    recomputed by the next refresh)."""
    if not answers:
        return
    connection.execute(
        sa.update(events)
        .where(events.c.source_id == source_id, events.c.line_no == sa.bindparam("request_line"))
        .values({name: sa.bindparam(f"new_{name}") for name in fields}),
        [
            {"request_line": line_no, **{f"new_{n}": answer.get(n) for n in fields}}
            for line_no, answer in answers
        ],
    )
    rejected = [line_no for line_no, answer in answers if answer.get("delivery") == "rejected"]
    if rejected:
        dedup.forget(connection, source_id, rejected)


# -- import runs --------------------------------------------------------------------------
def start_import(engine: Engine, paths: str, progress: Mapping[str, int]) -> int:
    """Record a new import run as running (a transaction of its own); its id."""
    with write_transaction(engine) as connection:
        import_id = next_id(connection, imports.c.import_id)
        connection.execute(
            sa.insert(imports).values(
                import_id=import_id,
                started_at=time.time(),
                paths=paths[:4000],
                **progress,
                status="running",
            )
        )
    return import_id


def record_progress(connection: Connection, import_id: int, progress: Mapping[str, int]) -> None:
    """The run's counts so far (`ImportSummary.progress()`), with the block they count."""
    connection.execute(
        sa.update(imports).where(imports.c.import_id == import_id).values(**progress)
    )


def finish_import(engine: Engine, import_id: int, status: str) -> None:
    """Record the run's end and status (a transaction of its own)."""
    with write_transaction(engine) as connection:
        connection.execute(
            sa.update(imports)
            .where(imports.c.import_id == import_id)
            .values(finished_at=time.time(), status=status)
        )
