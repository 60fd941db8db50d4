"""The sent-events store: engine factory, table definitions and bulk writes.

Owns the database. Everything else reaches it through `make_engine(url)` and the
SQLAlchemy Core tables defined here, so the same code runs on DuckDB (the embedded
default), SQLite and PostgreSQL. No engine is created at import time.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeAlias

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

# Re-exported: quality/ and store/queries/ modules still import it from here; it is
# defined once, in core/definitions.
from dashboard.core.params import PARAMS, REJECTED_COMBINATIONS
from dashboard.store.errors import StoreError  # re-exported: callers import it from here

# Re-exported: the queries import the portable SQL functions from here.
from dashboard.store.functions import register_sqlite_functions
from dashboard.store.locks import LOCK_POLICY, LOCK_WAIT_S, LockPolicy, is_lock_error

metadata = sa.MetaData()

# One row per log file (identified by its first line, so a renamed, gzipped or grown
# copy is the same source) with the import checkpoint.
sources = sa.Table(
    "sources",
    metadata,
    sa.Column("source_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("head_fingerprint", sa.String(64), nullable=False, index=True),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("lines_done", sa.BigInteger, nullable=False),
    sa.Column("bytes_done", sa.BigInteger, nullable=False),
    sa.Column("last_line_hash", sa.String(64)),
    sa.Column("updated_at", sa.Double, nullable=False),
)

# The log format a source was read in (`ingest --format`, or what detection found), so
# later imports of a growing file read it the same way.
source_formats = sa.Table(
    "source_formats",
    metadata,
    sa.Column("source_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("format", sa.String(32), nullable=False),
    sa.Column("reader", sa.String(8), nullable=False),  # lines | entries | csv | json
)

# Requests whose answer has not been read yet (formats that log the answer on a later
# line: server-side GTM, WooCommerce). Kept with the checkpoint, so an answer that
# arrives in a later import still finds its request's events.
open_requests = sa.Table(
    "open_requests",
    metadata,
    sa.Column("source_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("line_no", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("queue_key", sa.String(512), nullable=False),
    sa.Column("dataset_id", sa.String(64)),
)

imports = sa.Table(
    "imports",
    metadata,
    sa.Column("import_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("started_at", sa.Double, nullable=False),
    sa.Column("finished_at", sa.Double),
    sa.Column("paths", sa.Text, nullable=False),
    sa.Column("lines_read", sa.BigInteger, nullable=False, default=0),
    sa.Column("lines_already_imported", sa.BigInteger, nullable=False, default=0),
    sa.Column("events_imported", sa.BigInteger, nullable=False, default=0),
    sa.Column("events_quarantined", sa.BigInteger, nullable=False, default=0),
    sa.Column("lines_quarantined", sa.BigInteger, nullable=False, default=0),
    sa.Column("status", sa.String(16), nullable=False),
)

# Lines (idx = -1) or single events inside a request line (idx >= 0) that could not
# be imported, with a plain reason. The raw line is not kept: it may hold PII.
quarantine = sa.Table(
    "quarantine",
    metadata,
    sa.Column("source_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("line_no", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("idx", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("import_id", sa.Integer, nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("reason", sa.String(64), nullable=False),
    sa.Column("detail", sa.Text),
)

# Small key/value table: data_version bumps on every committed import chunk,
# dedup_version records which data_version the dedup columns were computed for.
store_meta = sa.Table(
    "store_meta",
    metadata,
    sa.Column("key", sa.String(32), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)

# Markers: a change the tracking engineer made (a deploy, a fix) at a UTC time, drawn
# on every time chart and compared before/after (dashboard.store.markers). A table of
# its own, so create_all adds it to a store made before it existed.
markers = sa.Table(
    "markers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    # Unix seconds (UTC). Quoted: AT is a keyword to DuckDB's parser.
    sa.Column("at", sa.Double, nullable=False, quote=True),
    sa.Column("label", sa.String(200), nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
)

# Meta's own numbers (Dataset Quality API), one row per dataset, event name and time
# (dashboard.store.meta_snapshots). `raw` keeps the event's whole object as Meta sent it;
# the columns beside it are lifted out for the queries. The key makes a re-import a no-op.
meta_snapshots = sa.Table(
    "meta_snapshots",
    metadata,
    sa.Column("dataset_id", sa.String(64), primary_key=True),
    sa.Column("event_name", sa.String(128), primary_key=True),
    sa.Column("fetched_at", sa.Double, primary_key=True),  # UTC Unix seconds
    sa.Column("agent", sa.String(64)),
    sa.Column("emq", sa.Double),  # composite_score, 0-10
    sa.Column("event_coverage", sa.Double),  # 0-1
    sa.Column("acr", sa.Double),  # 0-1
    sa.Column("upload_frequency", sa.String(32)),
    sa.Column("raw", sa.Text, nullable=False),
    sa.Column("imported_at", sa.Double, nullable=False),
)

# The EMQ estimate's calibration against Meta's scores: every fit, the newest in use.
# `points` lists the (dataset, event name, snapshot time) pairs it was fitted on.
meta_calibrations = sa.Table(
    "meta_calibrations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("fitted_at", sa.Double, nullable=False),
    sa.Column("intercept", sa.Double, nullable=False),
    sa.Column("slope", sa.Double, nullable=False),
    sa.Column("mae_raw", sa.Double, nullable=False),
    sa.Column("mae_calibrated", sa.Double, nullable=False),
    sa.Column("points", sa.Text, nullable=False),  # JSON list
)

# Reconciliation runs against orders and CRM exports (dashboard.store.reconciliations):
# each run's summary as JSON, the newest shown on the Overview.
reconciliations = sa.Table(
    "reconciliations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("ran_at", sa.Double, nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),  # orders | crm
    sa.Column("source", sa.String(256), nullable=False),
    sa.Column("total", sa.Integer, nullable=False),
    sa.Column("matched", sa.Integer, nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
)

# The first time each user_data parameter was valid for a person (one row per person key:
# an fbp or an external_id), over every event of the store, of any channel or answer:
# what "what to fix" calls recoverable reads it. It depends on the whole store, never on
# the slice, so it is kept current after each import (dashboard.store.people). One row
# per (key_kind, person) by construction; no primary key, whose index took more than half
# of the table's build (2.3 of 4.3 s at 1M events on DuckDB).
person_first_valid = sa.Table(
    "person_first_valid",
    metadata,
    sa.Column("key_kind", sa.String(16), nullable=False),
    sa.Column("person", sa.Text, nullable=False),
    *[sa.Column(f"first_{param}", sa.Double) for param in PARAMS],
)

_EVENT_COLUMNS: list[sa.Column] = [
    # Identity: position in the source file; unique by construction.
    sa.Column("source_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("line_no", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("idx", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("channel", sa.String(8), nullable=False),  # browser | server
    sa.Column("dataset_id", sa.String(64), nullable=False),
    sa.Column("event_name", sa.String(128), nullable=False),
    sa.Column("event_id", sa.Text),
    # Unix seconds as sent; event_time_in_ms flags a millisecond value (Meta rejects it),
    # event_time is then the value / 1000 so lags and windows stay meaningful.
    sa.Column("event_time_raw", sa.BigInteger, nullable=False),
    sa.Column("event_time", sa.Double, nullable=False),
    sa.Column("event_time_in_ms", sa.Boolean, nullable=False),
    sa.Column("event_day", sa.Date, nullable=False),  # UTC day of event_time
    sa.Column("sent_at", sa.Double, nullable=False),  # Unix seconds (UTC)
    sa.Column("sent_at_defaulted", sa.Boolean, nullable=False),
    sa.Column("action_source", sa.String(32)),
    sa.Column("messaging_channel", sa.String(32)),
    sa.Column("is_test", sa.Boolean, nullable=False),
    # Meta's answer to the event's batch: accepted | rejected | unknown (no answer).
    sa.Column("delivery", sa.String(8), nullable=False),
    sa.Column("http_status", sa.Integer),
    sa.Column("error_code", sa.Integer),
    sa.Column("error_subcode", sa.Integer),
    sa.Column("error_message", sa.Text),
    # Meta's error object's words for people and its request id, for support tickets:
    # error_user_title and error_user_msg redacted like error_message.
    sa.Column("error_user_title", sa.Text),
    sa.Column("error_user_msg", sa.Text),
    sa.Column("fbtrace_id", sa.String(64)),
    sa.Column("batch_size", sa.Integer),
    sa.Column("events_received", sa.Integer),
    sa.Column("campaign", sa.String(256), nullable=False),
    sa.Column("funnel_stage", sa.String(128), nullable=False),
    sa.Column("value", sa.Double),
    sa.Column("currency", sa.String(8)),
    # Dedup and person keys (as sent; hashed email only ever as its hash).
    sa.Column("fbp", sa.Text),
    sa.Column("external_id", sa.Text),
    sa.Column("em_hash", sa.String(64)),
    sa.Column("person_key", sa.Text),
    # Fingerprints (first 16 hex chars of SHA-256) of the first valid client_ip_address
    # (stripped, lower case) and client_user_agent (stripped), never the values: enough
    # to tell whether a browser event and its server twin carried the same one.
    sa.Column("ip_fp", sa.String(16)),
    sa.Column("ua_fp", sa.String(16)),
    sa.Column("has_unhashed_pii", sa.Boolean, nullable=False),
    sa.Column("n_valid_params", sa.Integer, nullable=False),
    *[sa.Column(f"p_{param}", sa.SmallInteger, nullable=False) for param in PARAMS],
    # Why each present parameter that is not valid is not ("em:4;fbc:11", reason codes of
    # dashboard.core.params); NULL when every present one is valid. Never the value.
    sa.Column("param_reasons", sa.Text),
    # Valid-parameter set is a subset of Meta's rejected combination k.
    *[
        sa.Column(f"combo_{k}", sa.Boolean, nullable=False)
        for k in range(len(REJECTED_COMBINATIONS))
    ],
    # What a reconciliation against orders and CRM exports matches on: custom_data's
    # order_id as sent (a text, or an integer's digits), and user_data's first valid lead_id.
    sa.Column("order_id", sa.String(128)),
    sa.Column("lead_id", sa.String(64)),
    # Filled after each import from the whole store (see dashboard.store.dedup).
    sa.Column("dedup_status", sa.String(24)),
    sa.Column("id_twin_48h", sa.Boolean),
    sa.Column("covered_any_key", sa.Boolean),
    sa.Column("likely_double", sa.Boolean),
    # Filled with them (see dashboard.store.people): bit k set when the event lacks a
    # valid PARAMS[k] that its person (fbp or external_id) had valid at or before it.
    sa.Column("recoverable_params", sa.BigInteger),
]
events = sa.Table("events", metadata, *_EVENT_COLUMNS)
_COMPUTED_AFTER_IMPORT = (
    "dedup_status",
    "id_twin_48h",
    "covered_any_key",
    "likely_double",
    "recoverable_params",
)
EVENT_INSERT_COLUMNS: tuple[str, ...] = tuple(
    c.name for c in _EVENT_COLUMNS if c.name not in _COMPUTED_AFTER_IMPORT
)

# Row-store indexes for the dedup joins and time filters. DuckDB scans columns and uses
# its ART indexes only for point lookups, while keeping them up to date costs more than
# the rest of an import: it gets none.
_ROW_STORES = ("postgresql", "sqlite")
for _name, *_columns in (
    ("ix_events_dedup_key", events.c.dataset_id, events.c.event_name, events.c.event_id),
    ("ix_events_time", events.c.event_time),
    ("ix_events_fbp", events.c.event_name, events.c.fbp),
    ("ix_events_external_id", events.c.event_name, events.c.external_id),
    ("ix_events_em_hash", events.c.event_name, events.c.em_hash),
    ("ix_person_first_valid", person_first_valid.c.key_kind, person_first_valid.c.person),
):
    sa.Index(_name, *_columns).ddl_if(dialect=_ROW_STORES)


# DuckDB's own default is 80% of the machine's memory: on a laptop an import's dedup
# refresh or a 10M-event query would take gigabytes instead of spilling to disk.
MEMORY_LIMIT_ENV = "EQM_DUCKDB_MEMORY_LIMIT"
DEFAULT_MEMORY_LIMIT = "1GB"


def _quiet_duckdb(dbapi_connection, _record) -> None:
    # Long dedup queries would otherwise draw a progress bar into ingest's output and logs.
    dbapi_connection.execute("SET enable_progress_bar = false")
    limit = os.environ.get(MEMORY_LIMIT_ENV) or DEFAULT_MEMORY_LIMIT
    try:
        dbapi_connection.execute(f"SET memory_limit = '{_memory_limit(limit)}'")
    except Exception as exc:  # noqa: BLE001 - duckdb raises several kinds for a bad value
        raise StoreError(f"bad {MEMORY_LIMIT_ENV} value {limit!r}: {_short(exc)}") from exc


def _memory_limit(text: str) -> str:
    """A DuckDB memory size such as 1GB or 512MB (nothing that could end the SQL literal)."""
    value = text.strip()
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)?\s*[KMGT]i?B", value, flags=re.IGNORECASE):
        raise ValueError("expected a size such as 1GB or 512MB")
    return value


# ---------------------------------------------------------------------------
# DuckDB lets one process at a time open a file read-write (or several read-only): a
# second process gets "Could not set lock on file". Opening the file waits for it under
# the store's one lock policy (`dashboard.store.locks`).
def _wait_for_file_lock(policy: LockPolicy):
    def connect(dialect, _record, cargs, cparams):
        def attempt():
            # The dialect pops keys from cparams: give each attempt its own copy.
            own = {**cparams, "config": dict(cparams.get("config", {}))}
            return dialect.connect(*cargs, **own)

        return policy.run(attempt)

    return connect


def make_engine(
    url: str,
    *,
    read_only: bool = False,
    hold_connection: bool = False,
    reuse_connections: bool = False,
    lock_wait_s: float = LOCK_WAIT_S,
) -> Engine:
    """Build an engine for a store URL (duckdb:///, sqlite:///, postgresql+psycopg://...).

    DuckDB connections are opened per use by default, so a long-running dashboard never
    keeps the file locked against an import. A short-lived command (report, check) may
    `hold_connection` to skip reopening the file for every query. The dashboard asks to
    `reuse_connections` (a pool) for the queries of one page run, and calls
    `release_connections` when the run ends: one open of the file per page instead of one
    per query, with DuckDB's cache warm between them, and the lock still free between runs.
    Opening a DuckDB file another process has open waits for it up to `lock_wait_s`
    seconds (`LockPolicy`).
    """
    try:
        parsed = sa.engine.make_url(url)
    except (sa.exc.ArgumentError, ValueError) as exc:  # ValueError: e.g. a port not a number
        raise StoreError(f"not a database URL: {exc}") from exc
    kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "duckdb":
        if read_only:
            kwargs["connect_args"] = {"read_only": True}
        # DuckDB has one writer per file; pooling would keep the lock held.
        if hold_connection:
            kwargs["poolclass"] = sa.pool.StaticPool
        elif reuse_connections:
            kwargs.update(poolclass=sa.pool.QueuePool, pool_size=1, max_overflow=8)
        else:
            kwargs["poolclass"] = sa.pool.NullPool
    elif parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() in ("", "psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    try:
        engine = sa.create_engine(parsed, **kwargs)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
        raise StoreError(f"cannot use database URL: {exc}") from exc
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", register_sqlite_functions)
    elif engine.dialect.name == "duckdb":
        sa.event.listen(engine, "do_connect", _wait_for_file_lock(LockPolicy(lock_wait_s)))
        sa.event.listen(engine, "connect", _quiet_duckdb)
    return engine


# File stores: connecting to a missing file creates it, so existence is judged first.
_FILE_BACKENDS = ("duckdb", "sqlite")


def store_exists(engine: Engine) -> bool:
    """Whether the store holds an `events` table, without creating anything: a DuckDB
    or SQLite file that is not there is never opened (opening it would create an empty
    store, and a mistyped --db would then report on nothing)."""
    if engine.dialect.name in _FILE_BACKENDS:
        path = engine.url.database
        if not path or path == ":memory:" or not os.path.exists(path):
            return False
    with engine.connect() as connection:
        return sa.inspect(connection).has_table("events")


def store_location(engine: Engine) -> str:
    """Where the store is, for a message: a file store's path, else its URL with the
    password hidden."""
    if engine.dialect.name in _FILE_BACKENDS and engine.url.database:
        return engine.url.database
    return engine.url.render_as_string(hide_password=True)


def release_connections(engine: Engine) -> None:
    """Close the engine's idle pooled connections (a DuckDB file's lock goes with them).
    A connection still in use elsewhere (another session's run) is left to finish; it
    leaves with its old pool once given back."""
    engine.dispose()


def create_schema(engine: Engine) -> None:
    """Create the tables and indexes that do not exist yet, and add the nullable columns
    a store made by an older version lacks."""
    try:
        metadata.create_all(engine)
        _add_missing_columns(engine, events)
    except sa.exc.SQLAlchemyError as exc:
        raise StoreError(f"cannot create the store schema: {_short(exc)}") from exc


def _table_columns(connection: Connection, table: sa.Table) -> set[str]:
    # Not sa.inspect: its PostgreSQL catalog query fails on DuckDB. A zero-row SELECT *
    # names the columns on every backend.
    result = connection.execute(sa.select(sa.text("*")).select_from(table).limit(0))
    names = {name.lower() for name in result.keys()}
    result.close()
    return names


def _add_missing_columns(engine: Engine, table: sa.Table) -> None:
    """ALTER TABLE ... ADD COLUMN for each nullable column of `table` the stored table
    lacks (create_all never changes an existing table). Idempotent; another process
    adding the same column at the same time is no error. Rows already stored read NULL."""
    with engine.connect() as connection:
        present = _table_columns(connection, table)
    # A missing NOT NULL column cannot be added to a table with rows: left as before.
    missing = [c for c in table.columns if c.name not in present and c.nullable]
    preparer = engine.dialect.identifier_preparer
    for column in missing:
        kind = column.type.compile(dialect=engine.dialect)
        statement = (
            f"ALTER TABLE {preparer.format_table(table)}"
            f" ADD COLUMN {preparer.format_column(column)} {kind}"
        )
        try:
            with engine.begin() as connection:
                connection.execute(sa.text(statement))
        except sa.exc.SQLAlchemyError:
            with engine.connect() as connection:
                if column.name not in _table_columns(connection, table):
                    raise


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:300]


# The store's engine (`make_engine`) and the connection a `write_transaction` yields, as
# modules outside the store name them: they hand them on to the store's functions and
# never import SQLAlchemy themselves.
StoreEngine: TypeAlias = Engine
StoreConnection: TypeAlias = Connection


@contextmanager
def write_transaction(
    engine: Engine, *, policy: LockPolicy = LOCK_POLICY
) -> Iterator[StoreConnection]:
    """A write transaction, opened under the lock policy (waiting while another process
    holds the store)."""
    try:
        connection = policy.run(engine.connect)
    except sa.exc.OperationalError as exc:  # DuckDB: "Could not set lock on file"
        raise StoreError(f"cannot open the store for writing: {_short(exc)}") from exc
    try:
        with connection.begin():
            yield connection
    finally:
        connection.close()


def insert_rows(
    connection: Connection, table: sa.Table, columns: Sequence[str], rows: list[tuple]
) -> None:
    """Bulk insert `rows` (tuples in `columns` order), using DuckDB's columnar path there."""
    if not rows:
        return
    if connection.dialect.name == "duckdb":
        import pyarrow as pa

        arrays = list(zip(*rows, strict=True))
        arrow = pa.table(
            [
                pa.array(values, type=_arrow_type(table.c[name]))
                for name, values in zip(columns, arrays, strict=True)
            ],
            names=list(columns),
        )
        raw = connection.connection.dbapi_connection
        raw.register("_eqm_batch", arrow)
        try:
            column_list = ", ".join(columns)
            raw.execute(
                f"INSERT INTO {table.name} ({column_list}) SELECT {column_list} FROM _eqm_batch"
            )
        finally:
            raw.unregister("_eqm_batch")
        return
    connection.execute(table.insert(), [dict(zip(columns, row, strict=True)) for row in rows])


def events_arrow_schema():
    """The Arrow schema of an `events` insert batch (EVENT_INSERT_COLUMNS order)."""
    import pyarrow as pa

    return pa.schema([(name, _arrow_type(events.c[name])) for name in EVENT_INSERT_COLUMNS])


def insert_arrow(connection: Connection, table: sa.Table, batch) -> None:
    """Bulk insert an Arrow table whose column names are `table`'s (DuckDB scans it)."""
    if batch.num_rows == 0:
        return
    if connection.dialect.name == "duckdb":
        raw = connection.connection.dbapi_connection
        raw.register("_eqm_arrow_batch", batch)
        try:
            column_list = ", ".join(batch.column_names)
            raw.execute(
                f"INSERT INTO {table.name} ({column_list})"
                f" SELECT {column_list} FROM _eqm_arrow_batch"
            )
        finally:
            raw.unregister("_eqm_arrow_batch")
        return
    for start in range(0, batch.num_rows, 10_000):
        connection.execute(table.insert(), batch.slice(start, 10_000).to_pylist())


def _arrow_type(column: sa.Column):
    import pyarrow as pa

    kind = column.type
    if isinstance(kind, sa.Boolean):
        return pa.bool_()
    if isinstance(kind, sa.SmallInteger):
        return pa.int16()
    if isinstance(kind, sa.BigInteger):
        return pa.int64()
    if isinstance(kind, sa.Integer):
        return pa.int64()
    if isinstance(kind, sa.Double):
        return pa.float64()
    if isinstance(kind, sa.Date):
        return pa.date32()
    return pa.string()


def get_meta(connection: Connection, key: str) -> int:
    """A store_meta counter (0 when unset)."""
    value = connection.execute(
        sa.select(store_meta.c.value).where(store_meta.c.key == key)
    ).scalar()
    return int(value or 0)


def set_meta(connection: Connection, key: str, value: int) -> None:
    """Set a store_meta counter."""
    updated = connection.execute(
        sa.update(store_meta).where(store_meta.c.key == key).values(value=value)
    ).rowcount
    if not updated:
        connection.execute(sa.insert(store_meta).values(key=key, value=value))


def next_id(connection: Connection, column: sa.Column) -> int:
    """Next integer id for a table with a client-assigned key (portable, no sequences)."""
    return int(connection.execute(sa.select(sa.func.coalesce(sa.func.max(column), 0))).scalar()) + 1


def store_version(engine: Engine) -> tuple[int, int]:
    """(data_version, dedup_version): cache key for computed results; (0, 0) on an empty store."""
    try:
        with engine.connect() as connection:
            return get_meta(connection, "data_version"), get_meta(connection, "dedup_version")
    except sa.exc.SQLAlchemyError as exc:
        if is_lock_error(exc):
            raise  # busy, not empty: (0, 0) would key the cache to an empty store
        return 0, 0
