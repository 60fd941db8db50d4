"""Shared fixtures: fresh stores on DuckDB, SQLite and a real PostgreSQL server.

The PostgreSQL server is started by the test run itself (benchmarks.pgserver: initdb +
pg_ctl on a temporary folder and a free port on 127.0.0.1, as the unprivileged
`postgres` user when the tests run as root). Without PostgreSQL binaries the pg tests
are skipped locally, and fail under CI (CI=true), so CI cannot pass by skipping them.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from hypothesis import settings

from benchmarks.browser import streamlit_command  # noqa: F401 - the browser tests import it from here
from benchmarks.pgserver import PostgresServer, pg_bin
from dashboard.core.config import SAMPLE_LOG_PATH, load_config
from dashboard.store.database import make_engine

# CI replays the same examples every run (a red CI must be reproducible); locally
# hypothesis explores new ones each time.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

BACKENDS = ("duckdb", "sqlite", "postgresql")


@pytest.fixture(scope="session")
def postgres_server():
    bin_dir = pg_bin()
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


@pytest.fixture(scope="session")
def sample_engine(tmp_path_factory):
    """The bundled sample in a DuckDB store, imported once per worker; tests only read it."""
    from dashboard.ingest import ingest

    engine = make_engine(f"duckdb:///{tmp_path_factory.mktemp('sample') / 'store.duckdb'}")
    ingest([SAMPLE_LOG_PATH], engine)
    yield engine
    engine.dispose()
