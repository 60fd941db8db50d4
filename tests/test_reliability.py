"""Reliability with real processes: imports killed with SIGKILL resume to the same store,
and the dashboard's queries and an import in other processes share one DuckDB file.

No mocks: the importer is `dashboard.ingest.ingest` in a child process, as the CLI runs it
(with small chunks so it commits often), the reader runs the dashboard's own query path
(`dashboard.ui.shared`: cached engine, retry, dedup refresh when stale), and the stores are
real files compared row by row with a clean single import. Kills are aimed with markers
the child prints (each transaction commit, the start of the dedup refresh) plus seeded
random delays, so every run kills at the same kinds of moments.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from logkit import T0, capi, event

from dashboard.core.config import REPO_ROOT, load_config
from dashboard.core.filters import Filters
from dashboard.ingest import ingest
from dashboard.quality.blocks import overall_block
from dashboard.sample.generator import write_sample_log
from dashboard.store.database import events, make_engine, quarantine, sources, store_version

CHUNK_LINES = 400  # instead of 20,000: a few thousand lines commit in many chunks
ENV = dict(os.environ, PYTHONPATH=str(REPO_ROOT))

# The importer: `ingest` as the CLI runs it, reporting each transaction commit and the start
# of the dedup refresh on stdout so the test can aim its kills.
IMPORTER = """
import sys

import sqlalchemy as sa

import dashboard.ingest as ingest_module
import dashboard.ingest.readers as ingest_readers
from dashboard.store import dedup
from dashboard.store.database import make_engine

ingest_readers.CHUNK_LINES = int(sys.argv[1])
sa.event.listen(sa.engine.Engine, "commit", lambda connection: print("commit", flush=True))
_refresh = dedup.refresh


def _refresh_traced(*args, **kwargs):
    print("dedup", flush=True)
    return _refresh(*args, **kwargs)


dedup.refresh = _refresh_traced
# What `python -m dashboard ingest LOG --db URL` does, without the report modules'
# start-up time (pandas), which would only make each of these runs slower.
print(ingest_module.ingest([sys.argv[3]], make_engine(sys.argv[2])).to_text(), flush=True)
"""


def _build_log(path: Path, target_events: int, seed: int) -> list[bytes]:
    """Sample lines with a malformed line and a half-bad batch every few hundred lines."""
    base = path.with_name(f"base_{seed}.jsonl")
    write_sample_log(base, seed=seed, target_events=target_events)
    out: list[bytes] = []
    for number, line in enumerate(base.read_bytes().splitlines(keepends=True), 1):
        out.append(line)
        if number % 250 == 0:
            out.append(b'{"kind": "capi_request", "request": {"data": [\n')  # malformed JSON
        if number % 400 == 0:
            batch = capi(
                [{"event_time": T0}, event("Lead", T0 + number, f"q{number}")], T0 + number
            )
            out.append(json.dumps(batch).encode() + b"\n")  # one event quarantined, one kept
    path.write_bytes(b"".join(out))
    return out


class _Importer:
    """One importer child process, its stdout markers timestamped as they arrive."""

    def __init__(self, url: str, log: Path) -> None:
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-c", IMPORTER, str(CHUNK_LINES), url, str(log)],
            cwd=REPO_ROOT,
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.markers: list[tuple[float, str]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for raw in self.process.stdout:
            self.markers.append((time.monotonic(), raw.decode().strip()))

    def when(self, marker: str, nth: int, timeout: float = 60.0) -> float | None:
        """Time the nth `marker` arrived (waiting for it); None if the process ended first."""
        if nth == 0:
            return self.started
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = [t for t, text in self.markers if text == marker]
            if len(seen) >= nth:
                return seen[nth - 1]
            if self.process.poll() is not None:
                self._reader.join(5)
                seen = [t for t, text in self.markers if text == marker]
                return seen[nth - 1] if len(seen) >= nth else None
            time.sleep(0.002)
        raise AssertionError(f"no {marker} #{nth} within {timeout} s")

    def finish(self, timeout: float = 120.0) -> int:
        code = self.process.wait(timeout)
        self._reader.join(5)
        stderr = self.process.stderr.read().decode()
        assert code == 0, stderr
        return code

    def kill_at(self, moment: float) -> str:
        """SIGKILL at `moment` (monotonic); the phase it interrupted, or 'finished'."""
        time.sleep(max(0.0, moment - time.monotonic()))
        self.process.send_signal(signal.SIGKILL)
        code = self.process.wait(30)
        self._reader.join(5)
        self.process.stderr.close()
        if code != -signal.SIGKILL:
            assert code == 0, code
            return "finished"
        texts = [text for _, text in self.markers]
        if any(text.startswith("files:") for text in texts):
            return "after the summary"
        if "dedup" in texts:
            after = texts[texts.index("dedup") :]
            return "after the dedup refresh" if "commit" in after else "dedup refresh"
        commits = texts.count("commit")
        return "startup" if commits < 3 else f"import, after {commits} commits"


def _store_path(url: str) -> Path:
    return Path(url.split(":///", 1)[1])


def _assert_checkpoints_match_rows(url: str) -> None:
    """Every line up to each file's checkpoint is in the store once, and nothing beyond."""
    if not _store_path(url).exists():
        return
    engine = make_engine(url, read_only=url.startswith("duckdb"))
    try:
        if not sa.inspect(engine).has_table("sources"):
            return
        with engine.connect() as connection:
            for source_id, lines_done in connection.execute(
                sa.select(sources.c.source_id, sources.c.lines_done)
            ):
                found: set[int] = set()  # a line may hold kept and quarantined events
                for table in (events, quarantine):
                    found.update(
                        connection.execute(
                            sa.select(table.c.line_no).where(table.c.source_id == source_id)
                        ).scalars()
                    )
                assert sorted(found) == list(range(1, lines_done + 1)), (
                    f"source {source_id}: rows do not match its checkpoint of {lines_done} lines"
                )
    finally:
        engine.dispose()


def _snapshot(url: str) -> dict:
    """Everything an import decides, in a comparable form (ids of imports aside)."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            pk = (events.c.source_id, events.c.line_no, events.c.idx)
            qcols = [c for c in quarantine.c if c.name != "import_id"]
            data_version, dedup_version = store_version(engine)
            return {
                "events": [tuple(r) for r in connection.execute(sa.select(events).order_by(*pk))],
                "quarantine": [
                    tuple(r)
                    for r in connection.execute(
                        sa.select(*qcols).order_by(
                            quarantine.c.source_id, quarantine.c.line_no, quarantine.c.idx
                        )
                    )
                ],
                "sources": [
                    tuple(r)
                    for r in connection.execute(
                        sa.select(
                            sources.c.source_id,
                            sources.c.head_fingerprint,
                            sources.c.path,
                            sources.c.lines_done,
                            sources.c.bytes_done,
                            sources.c.last_line_hash,
                        ).order_by(sources.c.source_id)
                    )
                ],
                "dedup_current": data_version == dedup_version,
            }
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["duckdb", "sqlite"])
def test_an_import_killed_at_random_moments_resumes_to_the_same_store(tmp_path, backend):
    log = tmp_path / "sent_events.jsonl"
    lines = _build_log(log, target_events=2500, seed=11)
    suffix = "duckdb" if backend == "duckdb" else "sqlite"
    clean_url = f"{backend}:///{tmp_path / f'clean.{suffix}'}"
    killed_url = f"{backend}:///{tmp_path / f'killed.{suffix}'}"

    # A clean single import, timed, to aim the kills.
    clean = _Importer(clean_url, log)
    clean.finish()
    commits = [t for t, text in clean.markers if text == "commit"]
    dedup_at = next(t for t, text in clean.markers if text == "dedup")
    chunk_commits = [t for t in commits if t < dedup_at][3:]
    assert len(chunk_commits) >= 6, "the import should commit in several chunks"
    gap = (chunk_commits[-1] - chunk_commits[0]) / (len(chunk_commits) - 1)
    dedup_s = next(t for t in commits if t > dedup_at) - dedup_at

    rng = random.Random(f"kill-{backend}")
    plan = [
        ("start", 0, rng.uniform(0.0, commits[0] - clean.started)),  # opening the store
        ("commit", 3, rng.uniform(0.0, gap)),  # reading the first chunk
        ("commit", 4, rng.uniform(0.0, gap)),  # during or just after a chunk commit
        ("commit", 5, rng.uniform(0.0, gap)),
        ("commit", 4, rng.uniform(0.0, gap)),
        ("dedup", 1, rng.uniform(0.0, 0.6 * dedup_s)),  # inside the dedup refresh
        ("dedup", 1, rng.uniform(0.0, 0.3 * dedup_s)),
    ]
    outcomes = []
    for marker, nth, delay in plan:
        run = _Importer(killed_url, log)
        seen = run.when(marker, nth)
        if seen is None:  # nothing left for this marker: the run completed
            run.finish()
            outcomes.append("finished")
        else:
            outcomes.append(run.kill_at(seen + delay))
        _assert_checkpoints_match_rows(killed_url)
    _Importer(killed_url, log).finish()  # and once more, to completion

    print(f"\n{backend}: {len(lines)} lines; kills: {outcomes}")
    killed = [o for o in outcomes if not o.startswith(("finished", "after"))]
    assert len(killed) >= 5, outcomes
    assert any(o.startswith("import") for o in killed), outcomes
    assert "dedup refresh" in killed, outcomes

    got, want = _snapshot(killed_url), _snapshot(clean_url)
    assert want["dedup_current"] and got["dedup_current"]
    assert len(got["events"]) == len(want["events"]) > 2000
    assert len(got["quarantine"]) == len(want["quarantine"]) > 10
    assert got["sources"] == want["sources"]
    assert got["quarantine"] == want["quarantine"]
    assert got["events"] == want["events"]  # every column, dedup statuses included
    _assert_checkpoints_match_rows(killed_url)


# ---------------------------------------------------------------------------
# One DuckDB file, an importer process and a dashboard process.
GROWING_IMPORTER = """
import json, sys, time
from pathlib import Path

import dashboard.ingest as ingest_module
import dashboard.ingest.readers as ingest_readers
from dashboard.store.database import make_engine

ingest_readers.CHUNK_LINES = int(sys.argv[1])
url, log, writer_done = sys.argv[2], sys.argv[3], Path(sys.argv[4])
last = False
while True:
    last = writer_done.exists()
    summary = ingest_module.ingest([log], make_engine(url))
    print(json.dumps({"events": summary.events_imported, "lines": summary.lines_read,
                      "quarantined": summary.lines_quarantined + summary.events_quarantined,
                      "pending": summary.pending_lines}), flush=True)
    if last:
        break
    time.sleep(0.05)
"""

# The dashboard's own query path, as a page run does it: read the store version
# (refreshing dedup when an import left it stale), then the overview's numbers.
DASHBOARD_READER = """
import json, logging, sys, time
from pathlib import Path

logging.disable(logging.WARNING)  # "missing ScriptRunContext": no Streamlit server here
from dashboard.ui import shared as ui
from dashboard.core.filters import Filters

stop = Path(sys.argv[1])


def page_run():
    # As dashboard/app.py runs a page: queries share a pooled connection, closed at the end.
    try:
        version = ui._read_version()
        engine = ui.get_engine(ui.store_url())
        block = ui.with_retry(lambda: ui.QUERIES["overall"](engine, Filters(), ui.get_config()))
        return version, block
    finally:
        ui.end_run()


page_run()
print("ready", flush=True)
runs, failures, versions = [], [], set()
while not stop.exists():
    started = time.monotonic()
    try:
        version, _ = page_run()
        versions.add(tuple(version))
    except Exception as exc:
        failures.append(repr(exc)[:300])
    runs.append(time.monotonic() - started)
    time.sleep(0.02)
version, block = page_run()
print(json.dumps({"runs": runs, "failures": failures, "versions": sorted(versions),
                  "final_version": list(version), "block": block}))
"""


def test_the_dashboard_reads_while_a_growing_log_is_imported(tmp_path):
    url = f"duckdb:///{tmp_path / 'store.duckdb'}"
    lines = _build_log(tmp_path / "full.jsonl", target_events=2500, seed=5)
    log = tmp_path / "growing.jsonl"
    log.write_bytes(b"".join(lines[:200]))
    writer_done, reader_stop = tmp_path / "writer.done", tmp_path / "reader.stop"
    engine = make_engine(url)
    initial = ingest([log], engine)  # the dashboard starts on a store with some data
    engine.dispose()
    reader = subprocess.Popen(
        [sys.executable, "-c", DASHBOARD_READER, str(reader_stop)],
        cwd=REPO_ROOT,
        env=dict(ENV, EQM_DB_URL=url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    importer = None
    try:
        assert reader.stdout.readline().strip() == "ready", reader.stderr.read()
        importer = subprocess.Popen(
            [
                sys.executable,
                "-c",
                GROWING_IMPORTER,
                str(CHUNK_LINES),
                url,
                str(log),
                str(writer_done),
            ],
            cwd=REPO_ROOT,
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        # The log grows in uneven steps while both run; a step may end mid-line.
        rng = random.Random(3)
        data = b"".join(lines)
        offset = len(b"".join(lines[:200]))
        step = (len(data) - offset) // 10
        while offset < len(data):
            end = min(len(data), offset + rng.randint(step // 2, step * 3 // 2))
            with log.open("ab") as fh:
                fh.write(data[offset:end])
            offset = end
            time.sleep(0.5)
        writer_done.touch()
        imported, importer_err = importer.communicate(timeout=120)
        assert importer.returncode == 0, importer_err
        time.sleep(1.0)  # let the reader run a few more pages on the finished store
        reader_stop.touch()
        seen, reader_err = reader.communicate(timeout=120)
        assert reader.returncode == 0, reader_err
    finally:
        for process in (importer, reader):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()

    runs = [json.loads(line) for line in imported.splitlines()]
    result = json.loads(seen.splitlines()[-1])
    print(
        f"\nimport runs: {len(runs)}; page runs: {len(result['runs'])}, "
        f"max {max(result['runs']):.2f} s, median {sorted(result['runs'])[len(result['runs']) // 2]:.2f} s; "
        f"store versions seen: {len(result['versions'])}"
    )
    assert result["failures"] == []
    assert max(result["runs"]) < 20.0  # every page run got its numbers, within a bounded wait
    assert len(result["runs"]) >= 5 and len(result["versions"]) >= 3  # it really overlapped
    assert sum(r["lines"] for r in runs) == len(lines) - 200

    # After the import: the reader sees exactly what was imported...
    block = result["block"]
    imported_events = initial.events_imported + sum(r["events"] for r in runs)
    assert block["browser_events"] + block["server_sent"] == imported_events
    # ...and the same numbers as one clean import of the whole log.
    clean_log = tmp_path / "clean" / "growing.jsonl"
    clean_log.parent.mkdir()
    clean_log.write_bytes(log.read_bytes())
    clean = make_engine(f"duckdb:///{tmp_path / 'clean.duckdb'}")
    summary = ingest([clean_log], clean)
    expected = overall_block(clean, Filters(), load_config())
    clean.dispose()
    assert summary.events_imported == imported_events
    assert summary.lines_quarantined + summary.events_quarantined == (
        initial.lines_quarantined + initial.events_quarantined + sum(r["quarantined"] for r in runs)
    )
    assert json.loads(json.dumps(expected)) == block


HOLDER = """
import logging, sys, time

import sqlalchemy as sa

logging.disable(logging.WARNING)  # "missing ScriptRunContext": no Streamlit server here
from dashboard.ui import shared as ui

engine = ui.get_engine(sys.argv[1])  # the dashboard's engine, as a page gets it
with engine.connect() as connection:  # a long page query: the file stays open meanwhile
    connection.execute(sa.text("SELECT count(*) FROM events")).scalar()
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
print("released", flush=True)
"""


def test_an_import_waits_for_a_dashboard_that_holds_the_store(tmp_path):
    url = f"duckdb:///{tmp_path / 'store.duckdb'}"
    _build_log(tmp_path / "first.jsonl", target_events=300, seed=1)
    engine = make_engine(url)
    ingest([tmp_path / "first.jsonl"], engine)
    engine.dispose()
    second = tmp_path / "second.jsonl"
    _build_log(second, target_events=600, seed=2)

    hold_s = 2.5
    dashboard = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url, str(hold_s)],
        cwd=REPO_ROOT,
        env=ENV,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert dashboard.stdout.readline().strip() == "holding"
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "dashboard", "ingest", str(second), "--db", url],
            cwd=REPO_ROOT,
            env=ENV,
            capture_output=True,
            text=True,
            timeout=120,
        )
        waited = time.monotonic() - started
        assert dashboard.wait(30) == 0
    finally:
        if dashboard.poll() is None:
            dashboard.kill()
            dashboard.wait()
    print(f"\nimport finished {waited:.1f} s after starting against a {hold_s:.0f} s hold")
    assert result.returncode == 0, result.stderr
    assert waited >= hold_s * 0.5  # it really met the lock, and waited instead of failing
    engine = make_engine(url)
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(sources)).scalar() == 2
    assert store_version(engine)[0] == store_version(engine)[1]
    engine.dispose()
