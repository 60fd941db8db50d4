"""Shared fixtures: fresh stores on DuckDB, SQLite and a real PostgreSQL server.

The PostgreSQL server is started by the test run itself (initdb + pg_ctl on a
temporary folder and a free port on 127.0.0.1, as the unprivileged `postgres` user
when the tests run as root). Without PostgreSQL binaries the pg tests are skipped
locally, and fail under CI (CI=true), so CI cannot pass by skipping them.
"""

from __future__ import annotations

import glob
import itertools
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import settings

from dashboard.config import load_config
from dashboard.store import make_engine

# CI replays the same examples every run (a red CI must be reproducible); locally
# hypothesis explores new ones each time.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

BACKENDS = ("duckdb", "sqlite", "postgresql")
_counter = itertools.count()


def _pg_bin() -> Path | None:
    explicit = os.environ.get("EQM_PG_BIN")
    candidates = (
        [explicit] if explicit else sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    )
    for folder in candidates:
        if folder and (Path(folder) / "initdb").exists():
            return Path(folder)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """A throwaway PostgreSQL cluster owned by the test session."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.port = _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="eqm-pg-"))
        self.data = self.root / "data"
        self.run_as: list[str] = []
        if os.geteuid() == 0:
            # PostgreSQL refuses to run as root.
            shutil.chown(self.root, user="postgres", group="postgres")
            self.run_as = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        subprocess.run([*self.run_as, *args], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self._run(
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "eqm",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-locale",
        )
        self._run(
            str(self.bin_dir / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.root / "log"),
            "-w",
            "-o",
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off",
            "start",
        )

    def stop(self) -> None:
        try:
            self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://eqm@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        name = f"eqm_{os.getpid()}_{next(_counter)}"
        engine = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE template0'))
        engine.dispose()
        return self.url(name)


@pytest.fixture(scope="session")
def postgres_server():
    bin_dir = _pg_bin()
    if bin_dir is None:
        message = "PostgreSQL server binaries not found (apt-get install postgresql)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    server = PostgresServer(bin_dir)
    try:
        server.start()
    except subprocess.CalledProcessError as exc:
        server.stop()
        message = f"cannot start PostgreSQL: {exc.stderr.decode(errors='replace')[:500]}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    yield server
    server.stop()


@pytest.fixture(params=BACKENDS)
def store_url(request, tmp_path) -> str:
    """URL of a fresh, empty store on each backend."""
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path / 'store.duckdb'}"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite'}"
    server = request.getfixturevalue("postgres_server")
    return server.new_database()


@pytest.fixture
def engine(store_url):
    engine = make_engine(store_url)
    yield engine
    engine.dispose()


@pytest.fixture
def duck_engine(tmp_path):
    """A DuckDB store only, for tests about file formats rather than backends."""
    engine = make_engine(f"duckdb:///{tmp_path / 'store.duckdb'}")
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def config():
    return load_config()


def write_jsonl(path: Path, records: list) -> Path:
    """Write records (dicts, or raw strings/bytes for broken lines) one per line."""
    with path.open("wb") as fh:
        for record in records:
            if isinstance(record, bytes):
                fh.write(record + b"\n")
            elif isinstance(record, str):
                fh.write(record.encode() + b"\n")
            else:
                fh.write(json.dumps(record).encode() + b"\n")
    return path


@pytest.fixture
def wait_for():
    def _wait(predicate, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.05)
        return False

    return _wait
