"""Fresh, empty stores for the benchmark on DuckDB, SQLite and PostgreSQL, and their removal.

Owns naming the stores of one run, starting a temporary PostgreSQL server when no
--postgres-url is given, and dropping each store once measured.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

STORES = ("duckdb", "sqlite", "postgresql")


class Stores:
    """Fresh, empty stores on each backend, and their removal."""

    def __init__(self, workdir: Path, postgres_url: str | None = None) -> None:
        self.workdir = workdir
        self.postgres_url = postgres_url
        self.server = None
        self.pg_version: str | None = None
        self.pg_note = ""
        self._n = 0

    def start_postgres(self) -> bool:
        """Use --postgres-url, else start a temporary server; False when neither works."""
        if self.postgres_url:
            try:
                self.pg_version = self._server_version(self.postgres_url)
            except Exception as exc:  # noqa: BLE001 - any failure: say so, measure the rest
                self.pg_note = f"PostgreSQL not measured: cannot connect ({type(exc).__name__})"
                return False
            self.pg_note = "PostgreSQL server given with --postgres-url / EQM_BENCH_PG_URL"
            return True
        from benchmarks.pgserver import PostgresServer, pg_bin

        bin_dir = pg_bin()
        if bin_dir is None:
            self.pg_note = (
                "PostgreSQL not measured: no server binaries (apt-get install postgresql)"
            )
            return False
        server = PostgresServer(bin_dir)
        try:
            server.start()
        except (subprocess.SubprocessError, OSError) as exc:
            server.stop()
            self.pg_note = f"PostgreSQL not measured: cannot start a server ({type(exc).__name__})"
            return False
        self.server = server
        self.postgres_url = server.url()
        self.pg_note = "temporary local PostgreSQL server (fsync off), as the tests use"
        self.pg_version = self._server_version(self.postgres_url)
        return True

    @staticmethod
    def _server_version(url: str) -> str:
        import sqlalchemy as sa

        from dashboard.store.database import make_engine

        engine = make_engine(url)
        try:
            with engine.connect() as connection:
                return str(connection.execute(sa.text("SHOW server_version")).scalar())
        finally:
            engine.dispose()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def fresh(self, store: str) -> str:
        self._n += 1
        name = f"eqm_bench_{os.getpid()}_{self._n}"
        if store == "duckdb":
            path = self.workdir / f"{name}.duckdb"
            path.unlink(missing_ok=True)
            return f"duckdb:///{path}"
        if store == "sqlite":
            path = self.workdir / f"{name}.sqlite"
            path.unlink(missing_ok=True)
            return f"sqlite:///{path}"
        if store == "postgresql":
            import sqlalchemy as sa

            admin = sa.create_engine(_psycopg(self.postgres_url), isolation_level="AUTOCOMMIT")
            try:
                with admin.connect() as connection:
                    connection.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE template0'))
            finally:
                admin.dispose()
            return (
                sa.engine.make_url(_psycopg(self.postgres_url))
                .set(database=name)
                .render_as_string(hide_password=False)
            )
        raise ValueError(f"unknown store {store!r}; choose from {', '.join(STORES)}")

    def drop(self, url: str) -> None:
        if url.startswith(("duckdb:///", "sqlite:///")):
            path = Path(url.split(":///", 1)[1])
            for extra in ("", ".wal", "-journal", "-wal", "-shm"):
                Path(f"{path}{extra}").unlink(missing_ok=True)
            return
        import sqlalchemy as sa

        name = sa.engine.make_url(url).database
        admin = sa.create_engine(_psycopg(self.postgres_url), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                try:  # FORCE (PostgreSQL 13+) also ends a killed measurement's session
                    connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                except sa.exc.ProgrammingError:
                    connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        finally:
            admin.dispose()


def _psycopg(url: str) -> str:
    import sqlalchemy as sa

    parsed = sa.engine.make_url(url)
    if parsed.get_driver_name() in ("", "psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)
