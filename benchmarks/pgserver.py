"""A throwaway PostgreSQL server (initdb + pg_ctl) for the tests and the benchmarks.

Owns finding the server binaries (EQM_PG_BIN, else /usr/lib/postgresql/*/bin, else
PATH), starting a cluster in a temporary folder on a free port on 127.0.0.1 (as the
unprivileged `postgres` user when run as root: PostgreSQL refuses to run as root),
creating databases in it, and removing it all again. Durability is off (fsync,
synchronous commit, full-page writes): the data is disposable.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import sqlalchemy as sa

_counter = itertools.count()


def pg_bin() -> Path | None:
    """Folder holding initdb and pg_ctl, or None when PostgreSQL is not installed."""
    explicit = os.environ.get("EQM_PG_BIN")
    candidates = (
        [explicit] if explicit else sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    )
    for folder in candidates:
        if folder and (Path(folder) / "initdb").exists():
            return Path(folder)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """A throwaway PostgreSQL cluster: start(), url()/new_database(), stop()."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.port = free_port()
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

    def version(self) -> str:
        done = subprocess.run(
            [str(self.bin_dir / "postgres"), "--version"], capture_output=True, text=True
        )
        return done.stdout.strip().rsplit(" ", 1)[-1] if done.returncode == 0 else "?"
