"""Benchmarks: `python -m benchmarks.bench`. Speed is measured here, never in timed tests.

Owns generating sample logs of given sizes (with the one seeded generator, cached by
size, seed and generator version), and measuring on DuckDB, SQLite and PostgreSQL:
ingest (JSONL and gzip), the full JSON report, each dashboard page's computations for a
default and a filtered view, and the pandas reference (tests.oracle.reference) with a check
that it gives the report's numbers. Every measurement runs in a fresh child process, so
its time is uncached and its peak memory (RSS) is its own; each figure is the median of
--runs such processes. Writes Markdown tables (figures, growth ratios, the issue #6
targets met or not) with the machine and library versions.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from dashboard.core.config import REPO_ROOT

DEFAULT_SIZES = "100000,1000000,10000000"
STORES = ("duckdb", "sqlite", "postgresql")
# SQLite and PostgreSQL are compared with the embedded default at one size. 100k by
# default: at 1M each takes 9-13 minutes here (`--store-sizes sqlite=1M,postgresql=1M`),
# which alone would break the 20 minutes the whole command may take.
OTHER_STORE_SIZE = 100_000
# From this size on, one run per figure (--large-runs) and no gzip import (--gzip-max-size):
# a 10M import alone takes minutes, and the issue wants the whole command under 20.
LARGE_SIZE = 5_000_000
PAGES = ("overview", "match_quality", "coverage_dedup", "funnel", "freshness_delivery")
VIEWS = ("default", "filtered")

# Issue #6 targets.
INGEST_TARGET = 200_000  # events/s from JSONL
REPORT_TARGETS = {1_000_000: 0.5, 10_000_000: 3.0}  # seconds
PANDAS_RATIO_TARGET = 20.0  # report at least this much faster than pandas at 10M
PAGE_TARGETS = {1_000_000: 1.0, 10_000_000: 3.0}  # seconds
RSS_TARGET_MB = 2048  # at 10M, for ingest, report and dashboard pages

_CHILD = r"""
import json, resource, sys, time
args = json.loads(sys.stdin.read())
task, url = args["task"], args["url"]
# Imports first: the clock measures the work, not loading Python modules.
from dashboard.core.config import load_config
from dashboard.store.database import make_engine, release_connections
if task == "ingest":
    from dashboard.ingest import ingest
else:
    from tests.oracle import reference
    from benchmarks.bench import page_computations, page_filters
    from dashboard.core.filters import Filters
    from dashboard.outputs.report import build_report
config = load_config()
if task == "page":
    # As the dashboard does: one pooled connection for a page run's queries, the store
    # opened anew at each run (so the page starts with DuckDB's cache cold).
    engine = make_engine(url, reuse_connections=True)
    filters = page_filters(engine, config, args["view"])
    release_connections(engine)
else:
    engine = make_engine(url, hold_connection=task != "ingest")
out = {}
start = time.perf_counter()
if task == "ingest":
    summary = ingest([args["path"]], engine)
    out["events"] = summary.events_imported
elif task == "report":
    report = build_report(engine, Filters(), config)
elif task == "page":
    out["queries"] = page_computations(engine, config, args["page"], filters)
elif task == "pandas":
    frame = reference.load_events(engine)
    rejected = reference.load_rejected_records(engine)
    out["load_s"] = time.perf_counter() - start
    expected = reference.compute_report(frame, rejected, config)
    out["compute_s"] = time.perf_counter() - start - out["load_s"]
seconds = time.perf_counter() - start
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
if task == "report":
    with open(args["report_path"], "w", encoding="utf-8") as fh:
        json.dump(report, fh)
elif task == "pandas":
    with open(args["report_path"], encoding="utf-8") as fh:
        report = json.load(fh)
    out["differences"] = reference.compare_reports(report, expected)
    out["numbers_compared"] = reference.count_numbers(expected)
out["seconds"] = seconds
print(json.dumps(out))
"""


class MeasurementFailed(RuntimeError):
    """A measurement crashed or ran longer than --timeout."""


def _run_child(task: str, url: str, timeout: float, **extra: Any) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    # On stdin, not the command line: a PostgreSQL URL may hold a password.
    payload = json.dumps({"task": task, "url": url, **extra})
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD],
            input=payload,
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO_ROOT,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise MeasurementFailed(f"{task}: timed out after {timeout:.0f} s") from None
    if done.returncode != 0:
        print(done.stderr[-4000:], file=sys.stderr)
        last = (done.stderr.strip().splitlines() or ["(no message)"])[-1][:300]
        raise MeasurementFailed(f"{task}: failed (exit {done.returncode}): {last}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def page_filters(engine, config, view: str):
    """The filters of a default or filtered view. Default: the last 28 days. Filtered: the
    same days, one campaign and one stage (the largest of each). Chosen before the clock
    starts: in the dashboard they come from the sidebar's (cached) lists."""
    from datetime import timedelta

    from dashboard.core.filters import Filters
    from dashboard.quality.blocks import block_frame
    from dashboard.store.queries.blocks import data_range

    first, last = data_range(engine)
    filters = Filters(since=last - timedelta(days=27), until=last)
    if view == "filtered":
        by_campaign = block_frame(engine, filters, config, "campaign")
        by_stage = block_frame(engine, filters, config, "funnel_stage")

        def top(frame, column: str) -> str:
            sizes = frame.assign(n=frame["browser_events"] + frame["server_sent"])
            return str(sizes.sort_values("n").iloc[-1][column])

        filters = Filters(
            since=filters.since,
            until=filters.until,
            campaigns=(top(by_campaign, "campaign"),),
            stages=(top(by_stage, "funnel_stage"),),
        )
    return filters


def page_computations(engine, config, page: str, filters) -> int:
    """Run the computations one dashboard page makes for `filters`, uncached (what a page
    change costs before the per-filter cache helps). Returns the number of steps run."""
    from dashboard.quality.blocks import block_frames, overall_block
    from dashboard.quality.diagnostics import overview
    from dashboard.quality.freshness import lag_stats
    from dashboard.quality.funnel import conversion_from_stages, funnel_stages
    from dashboard.quality.match_quality import what_to_fix
    from dashboard.store.queries.freshness import delivery_errors, delivery_summary, lag_sample
    from dashboard.store.queries.funnel import purchases, stage_order_gaps
    from dashboard.store.queries.match import dedup_key_feedback, gap_events

    plans = {
        "overview": [
            lambda: overview(engine, filters, config),
            lambda: overall_block(engine, filters.previous(), config),
        ],
        "match_quality": [
            lambda: block_frames(
                engine,
                filters,
                config,
                [[], ["event_name"], ["campaign"], ["funnel_stage"], ["event_day"]],
            ),
            lambda: what_to_fix(engine, filters, config, 15),
        ],
        "coverage_dedup": [
            lambda: block_frames(engine, filters, config, [[], ["event_name"]]),
            lambda: dedup_key_feedback(engine, filters),
            lambda: gap_events(engine, filters),
        ],
        "funnel": [
            lambda: conversion_from_stages(funnel_stages(engine, filters, config), config),
            lambda: stage_order_gaps(engine, filters, config),
            lambda: purchases(engine, filters, config),
        ],
        "freshness_delivery": [
            lambda: overall_block(engine, filters, config),
            lambda: delivery_summary(engine, filters),
            lambda: lag_stats(engine, filters, config, "funnel_stage"),
            lambda: lag_sample(engine, filters),
            lambda: delivery_errors(engine, filters),
        ],
    }
    for step in plans[page]:
        step()
    return len(plans[page])


# ---------------------------------------------------------------------------
# Machine, logs, stores
def machine(pg_version: str | None = None) -> dict[str, str]:
    """Machine and versions the figures were measured with."""
    import sqlite3

    import duckdb
    import numpy
    import pandas
    import pyarrow
    import sqlalchemy

    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cpus": str(os.cpu_count()),
        "memory_gb": f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f}",
        "platform": platform.platform(),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "sqlite": sqlite3.sqlite_version,
        "sqlalchemy": sqlalchemy.__version__,
        "pandas": pandas.__version__,
        "numpy": numpy.__version__,
        "pyarrow": pyarrow.__version__,
    }
    try:
        import orjson

        info["orjson"] = orjson.__version__
    except ImportError:
        pass
    if pg_version:
        info["postgresql"] = pg_version
    return info


def _load() -> str:
    try:
        return " / ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "?"


def generator_version() -> str:
    """Changes whenever the generator's code does (cache key of generated logs)."""
    digest = hashlib.sha256()
    for module in sorted((REPO_ROOT / "dashboard" / "sample").glob("*.py")):
        digest.update(module.read_bytes())
    return digest.hexdigest()[:12]


def sample_logs(
    size: int, seed: int, folder: Path, profile: str = "standard"
) -> tuple[Path, Path, float]:
    """JSONL and gzip logs of about `size` events (generated once, then reused).

    Returns both paths and the seconds spent generating (0 when cached).
    """
    from dashboard.sample.generator import write_sample_log

    kind = "" if profile == "standard" else f"{profile}_"  # standard keeps its cache names
    stem = f"sample_{kind}{size}_seed{seed}_{generator_version()}"
    log, packed = folder / f"{stem}.jsonl", folder / f"{stem}.jsonl.gz"
    if log.exists() and packed.exists():
        return log, packed, 0.0
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    part, part_gz = folder / f"{stem}.part.jsonl", folder / f"{stem}.part.jsonl.gz"
    # One generation pass writes both (gzip level 1: the benchmark measures reading it).
    write_sample_log(
        part,
        seed=seed,
        target_events=size,
        gzip_copy=part_gz,
        compresslevel=1,
        profile=profile,
    )
    part_gz.replace(packed)
    part.replace(log)  # last: a complete pair exists only once both are written
    folder.joinpath(f"{stem}.part.truth.json").unlink(missing_ok=True)
    return log, packed, time.perf_counter() - started


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


# ---------------------------------------------------------------------------
# Measuring
@dataclass
class Result:
    """Every figure for one (store, size)."""

    store: str
    size: int
    runs: int
    events: int = 0
    ingest_s: float | None = None
    ingest_gzip_s: float | None = None
    ingest_rss_mb: float | None = None
    report_s: float | None = None
    report_rss_mb: float | None = None
    pages: dict[str, float] = field(default_factory=dict)  # "page:view" -> seconds
    pages_rss_mb: float | None = None
    pandas_s: float | None = None
    pandas_load_s: float | None = None
    pandas_compute_s: float | None = None
    pandas_rss_mb: float | None = None
    numbers_compared: int = 0
    differences: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # timed out or crashed
    seconds: float = 0.0  # wall time spent measuring this (store, size)

    @property
    def ingest_eps(self) -> float | None:
        return self.events / self.ingest_s if self.ingest_s else None

    @property
    def ingest_gzip_eps(self) -> float | None:
        return self.events / self.ingest_gzip_s if self.ingest_gzip_s else None

    @property
    def ratio(self) -> float | None:
        if self.pandas_s is None or not self.report_s:
            return None
        return self.pandas_s / self.report_s

    @property
    def slowest_page_s(self) -> float | None:
        return max(self.pages.values()) if self.pages else None

    @property
    def pages_total_s(self) -> float | None:
        return sum(self.pages.values()) if self.pages else None

    @property
    def identical(self) -> bool | None:
        if self.pandas_s is None:
            return None
        return not self.differences

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out.update(
            ingest_eps=self.ingest_eps, ingest_gzip_eps=self.ingest_gzip_eps, ratio=self.ratio
        )
        return out


def _median(values: list[float]) -> float:
    return statistics.median(values)


def measure(
    store: str,
    size: int,
    log: Path,
    packed: Path,
    stores: Stores,
    runs: int,
    timeout: float,
    pages: tuple[str, ...],
    gzip_runs: int = 1,
) -> Result:
    """All measurements for one store and size (median of `runs` fresh processes each;
    `gzip_runs` of them, 0 for none, also import the gzip log)."""
    result = Result(store, size, runs)
    started = time.perf_counter()
    kept: str | None = None
    try:
        # Ingest: a fresh store per run; the last JSONL store is kept for the queries.
        jsonl, gz, rss, counts = [], [], [], set()
        for attempt in range(runs):
            for packed_log in (False, True) if attempt < gzip_runs else (False,):
                url = stores.fresh(store)
                try:
                    run = _run_child(
                        "ingest", url, timeout, path=str(packed if packed_log else log)
                    )
                except BaseException:
                    stores.drop(url)
                    raise
                (gz if packed_log else jsonl).append(run["seconds"])
                rss.append(run["peak_rss_mb"])
                counts.add(run["events"])
                if packed_log or attempt < runs - 1:
                    stores.drop(url)
                else:
                    kept = url
        if len(counts) != 1:
            raise MeasurementFailed(f"ingest runs imported different counts: {sorted(counts)}")
        result.events = counts.pop()
        result.ingest_s = _median(jsonl)
        result.ingest_gzip_s = _median(gz) if gz else None
        result.ingest_rss_mb = max(rss)

        report_path = stores.workdir / f"report_{store}_{size}.json"
        runs_ = [
            _run_child("report", kept, timeout, report_path=str(report_path)) for _ in range(runs)
        ]
        result.report_s = _median([r["seconds"] for r in runs_])
        result.report_rss_mb = max(r["peak_rss_mb"] for r in runs_)

        page_rss = []
        for page in pages:
            for view in VIEWS:
                runs_ = [
                    _run_child("page", kept, timeout, page=page, view=view) for _ in range(runs)
                ]
                result.pages[f"{page}:{view}"] = _median([r["seconds"] for r in runs_])
                page_rss.extend(r["peak_rss_mb"] for r in runs_)
        result.pages_rss_mb = max(page_rss) if page_rss else None

        runs_ = [
            _run_child("pandas", kept, timeout, report_path=str(report_path)) for _ in range(runs)
        ]
        result.pandas_s = _median([r["seconds"] for r in runs_])
        result.pandas_load_s = _median([r["load_s"] for r in runs_])
        result.pandas_compute_s = _median([r["compute_s"] for r in runs_])
        result.pandas_rss_mb = max(r["peak_rss_mb"] for r in runs_)
        result.numbers_compared = runs_[0]["numbers_compared"]
        result.differences = runs_[0]["differences"]
    except MeasurementFailed as exc:
        result.failed.append(str(exc))
    finally:
        if kept:
            stores.drop(kept)
        result.seconds = time.perf_counter() - started
    return result


# ---------------------------------------------------------------------------
# Markdown
def _n(value: float | None, fmt: str = ",.0f") -> str:
    return "–" if value is None else format(value, fmt)


def _s(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.3f}" if value < 1 else f"{value:.2f}" if value < 100 else f"{value:,.0f}"


def _label(size: int) -> str:
    if size >= 1_000_000 and size % 1_000_000 == 0:
        return f"{size // 1_000_000}M"
    if size >= 1000 and size % 1000 == 0:
        return f"{size // 1000}k"
    return f"{size:,}"


def targets(results: list[Result]) -> list[tuple[str, str, str]]:
    """(target, verdict, measured) for every target of issue #6, from the DuckDB figures."""
    duck = {r.size: r for r in results if r.store == "duckdb" and r.events}
    rows: list[tuple[str, str, str]] = []

    def verdict(ok: bool | None) -> str:
        return "not measured" if ok is None else "**met**" if ok else "**not met**"

    if duck:
        largest = duck[max(duck)]
        eps = largest.ingest_eps
        rows.append(
            (
                f"Ingest ≥ {INGEST_TARGET:,} events/s from JSONL",
                verdict(None if eps is None else eps >= INGEST_TARGET),
                f"{_n(eps)} events/s at {largest.events:,} events (largest size); "
                + ", ".join(f"{_label(s)}: {_n(r.ingest_eps)}" for s, r in sorted(duck.items())),
            )
        )
    else:
        rows.append((f"Ingest ≥ {INGEST_TARGET:,} events/s from JSONL", verdict(None), "–"))
    for size, limit in REPORT_TARGETS.items():
        r = duck.get(size)
        rows.append(
            (
                f"Full report at {_label(size)} events < {limit} s",
                verdict(None if r is None or r.report_s is None else r.report_s < limit),
                "–" if r is None else f"{_s(r.report_s)} s",
            )
        )
    big = duck.get(10_000_000)
    ratio = None if big is None else big.ratio
    rows.append(
        (
            f"Report ≥ {PANDAS_RATIO_TARGET:.0f}× faster than pandas at 10M, identical numbers",
            verdict(
                None if ratio is None else ratio >= PANDAS_RATIO_TARGET and bool(big.identical)
            ),
            "–"
            if ratio is None
            else f"{ratio:.1f}× (pandas {_s(big.pandas_s)} s vs report {_s(big.report_s)} s; "
            f"pandas compute alone, without loading: {big.pandas_compute_s / big.report_s:.1f}×); "
            + ("identical numbers" if big.identical else "NUMBERS DIFFER"),
        )
    )
    for size, limit in PAGE_TARGETS.items():
        r = duck.get(size)
        slowest = None if r is None else r.slowest_page_s
        worst = "" if r is None or not r.pages else max(r.pages, key=r.pages.get)
        rows.append(
            (
                f"Any page change at {_label(size)} events < {limit:g} s",
                verdict(None if slowest is None else slowest < limit),
                "–" if slowest is None else f"slowest {_s(slowest)} s ({worst.replace(':', ', ')})",
            )
        )
    rss = None
    if big is not None and big.ingest_rss_mb is not None:
        parts = [big.ingest_rss_mb, big.report_rss_mb, big.pages_rss_mb]
        rss = None if None in parts else parts
    rows.append(
        (
            "Peak RSS at 10M < 2 GB for ingest, report and dashboard",
            verdict(None if rss is None else max(rss) < RSS_TARGET_MB),
            "–"
            if rss is None
            else f"ingest {rss[0]:,.0f} MB, report {rss[1]:,.0f} MB, pages {rss[2]:,.0f} MB",
        )
    )
    growth = growth_rows(results)
    if growth:
        worst = max(
            (g[key] / g["events"], key, g)
            for g in growth
            for key in ("ingest", "report", "pages")
            if g[key] is not None
        )
        ok = all(
            g[key] <= g["events"] for g in growth for key in ("ingest", "report", "pages") if g[key]
        )
        rows.append(
            (
                "Time grows linearly or better (time ratio ≤ event ratio)",
                verdict(ok),
                f"worst: {worst[1]} ×{worst[2][worst[1]]:.2f} for ×{worst[2]['events']:.2f} "
                f"events ({worst[2]['step']})",
            )
        )
    else:
        rows.append(("Time grows linearly or better", verdict(None), "needs two sizes"))
    return rows


def growth_rows(results: list[Result]) -> list[dict[str, Any]]:
    """Time ratios between consecutive DuckDB sizes, next to the event ratio."""
    duck = sorted((r for r in results if r.store == "duckdb" and r.events), key=lambda r: r.size)
    out = []
    for a, b in zip(duck, duck[1:], strict=False):

        def ratio(x: float | None, y: float | None) -> float | None:
            return None if not x or y is None else y / x

        out.append(
            {
                "step": f"{_label(a.size)} → {_label(b.size)}",
                "events": b.events / a.events,
                "ingest": ratio(a.ingest_s, b.ingest_s),
                "report": ratio(a.report_s, b.report_s),
                "pages": ratio(a.pages_total_s, b.pages_total_s),
                "pandas": ratio(a.pandas_s, b.pandas_s),
            }
        )
    return out


def to_markdown(
    results: list[Result],
    info: dict[str, str],
    runs: int,
    command: str = "",
    notes: str = "",
    extra: list[str] | None = None,
) -> str:
    """The results as Markdown (BENCHMARKS.md)."""
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `python -m benchmarks.bench{(' ' + command) if command else ''}`: each "
        "figure is the median of the fresh processes the runs column gives (at most "
        f"{runs}), uncached; peak RSS is the largest of those processes' (for PostgreSQL, the "
        "client process only). Logs come from the sample generator (`dashboard/sample/generator.py`). "
        "A dash is a figure not measured (gzip imports stop at `--gzip-max-size`); the gzip "
        "figure is the median of `--gzip-runs` imports.",
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in info.items()) + ".",
        *[line for text in extra or [] for line in ("", text)],
        "",
        "## Ingest, full report and the pandas reference",
        "",
        "| events | store | runs | ingest JSONL (events/s) | ingest gzip (events/s) | ingest peak RSS (MB) "
        "| full report (s) | report peak RSS (MB) | pandas: load + compute (s) | pandas peak RSS (MB) "
        "| report vs pandas | same numbers |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        if r.pandas_s is None:
            pandas = "–"
        else:
            pandas = f"{_s(r.pandas_s)} ({_s(r.pandas_load_s)} + {_s(r.pandas_compute_s)})"
        same = (
            "–"
            if r.identical is None
            else f"yes ({r.numbers_compared:,} numbers)"
            if r.identical
            else f"**NO** ({len(r.differences)} differences)"
        )
        events = f"{r.events:,}" if r.events else f"~{r.size:,}"
        lines.append(
            f"| {events} | {r.store} | {r.runs} | {_n(r.ingest_eps)} | {_n(r.ingest_gzip_eps)} "
            f"| {_n(r.ingest_rss_mb)} | {_s(r.report_s)} | {_n(r.report_rss_mb)} | {pandas} "
            f"| {_n(r.pandas_rss_mb)} | {'–' if r.ratio is None else f'{r.ratio:.1f}×'} | {same} |"
        )
    pages = sorted({k.split(":")[0] for r in results for k in r.pages}, key=_page_order)
    if pages:
        lines += [
            "",
            "## Dashboard pages",
            "",
            "Each page's computations (its queries, uncached: what a page change costs before "
            "the cache helps; Streamlit's rendering not included), seconds, default view (last "
            "28 days) / filtered view (same days, largest campaign and largest stage):",
            "",
            "| events | store | " + " | ".join(pages) + " | slowest | peak RSS (MB) |",
            "|---:|---|" + "---:|" * (len(pages) + 2),
        ]
        for r in results:
            if not r.pages:
                continue
            cells = [
                f"{_s(r.pages.get(f'{p}:default'))} / {_s(r.pages.get(f'{p}:filtered'))}"
                for p in pages
            ]
            lines.append(
                f"| {r.events:,} | {r.store} | "
                + " | ".join(cells)
                + f" | {_s(r.slowest_page_s)} | {_n(r.pages_rss_mb)} |"
            )
    growth = growth_rows(results)
    if growth:
        lines += [
            "",
            "## Growth (DuckDB)",
            "",
            "Time ratio between consecutive sizes next to the event ratio: linear growth keeps "
            "the time ratio at or below the event ratio.",
            "",
            "| step | events × | ingest JSONL time × | full report time × | all pages time × "
            "| pandas time × |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for g in growth:
            cells = [_n(g[k], ".2f") for k in ("ingest", "report", "pages", "pandas")]
            lines.append(f"| {g['step']} | {g['events']:.2f} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Targets (issue #6)",
        "",
        "| target | verdict | measured (DuckDB) |",
        "|---|---|---|",
    ]
    for target, verdict, measured in targets(results):
        lines.append(f"| {target} | {verdict} | {measured} |")
    problems = [r for r in results if r.failed or r.differences]
    if problems:
        lines += ["", "## Problems", ""]
        for r in problems:
            for text in r.failed:
                lines.append(
                    f"- {r.store} at ~{r.size:,} events: {text} (later figures not measured)"
                )
            for text in r.differences[:10]:
                lines.append(f"- {r.store} at {r.events:,} events: pandas differs: {text}")
    if notes.strip():
        lines += ["", "## Notes", "", notes.strip()]
    return "\n".join(lines) + "\n"


def _page_order(page: str) -> int:
    return PAGES.index(page) if page in PAGES else len(PAGES)


# ---------------------------------------------------------------------------
def _sizes(text: str) -> list[int]:
    out = []
    for part in text.split(","):
        part = part.strip().lower().replace("_", "")
        if not part:
            continue
        scale = {"k": 1_000, "m": 1_000_000}.get(part[-1], 1)
        out.append(int(float(part[:-1] if scale > 1 else part) * scale))
    return out


def plan(
    stores: list[str], sizes: list[int], store_sizes: dict[str, list[int]]
) -> list[tuple[int, str]]:
    """(size, store) pairs to measure, smallest size first, DuckDB first at each size."""
    default_other = (
        [OTHER_STORE_SIZE]
        if OTHER_STORE_SIZE in sizes
        else [max([s for s in sizes if s <= OTHER_STORE_SIZE], default=min(sizes))]
    )
    pairs = set()
    for store in stores:
        chosen = store_sizes.get(store, sizes if store == "duckdb" else default_other)
        pairs.update((size, store) for size in chosen)
    return sorted(pairs, key=lambda p: (p[0], STORES.index(p[1])))


_PATH_OPTIONS = ("--workdir", "--cache", "--out", "--notes", "--json")


def _shown_command(argv: list[str]) -> str:
    """The options that shape the figures, as typed: no local paths, and no PostgreSQL URL
    (it may hold a password)."""
    shown: list[str] = []
    skip = hide = False
    for arg in argv:
        if skip:
            skip = False
        elif hide:
            shown.append("URL")
            hide = False
        elif arg in _PATH_OPTIONS:
            skip = True
        elif arg.startswith(tuple(f"{o}=" for o in _PATH_OPTIONS)):
            continue
        elif arg == "--postgres-url":
            shown.append(arg)
            hide = True
        elif arg.startswith("--postgres-url="):
            shown.append("--postgres-url=URL")
        else:
            shown.append(arg)
    return " ".join(shown)


def _default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "eqm-bench"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--sizes",
        default=DEFAULT_SIZES,
        help=f"comma-separated event counts for DuckDB (default {DEFAULT_SIZES}; 100k, 1M work)",
    )
    parser.add_argument(
        "--stores",
        "--backends",
        default=",".join(STORES),
        help="comma-separated: duckdb,sqlite,postgresql (default all three)",
    )
    parser.add_argument(
        "--store-sizes",
        default="",
        help="sizes per store, e.g. sqlite=1M,postgresql=100k+1M (default: DuckDB at every "
        "--sizes value, SQLite and PostgreSQL at 100k, or the largest --sizes value below)",
    )
    parser.add_argument("--runs", type=int, default=3, help="fresh processes per figure (median)")
    parser.add_argument(
        "--large-runs",
        type=int,
        default=1,
        help=f"runs at sizes of {LARGE_SIZE:,} events and more (default 1)",
    )
    parser.add_argument(
        "--gzip-runs",
        type=int,
        default=1,
        help="runs that import the gzip log too (default 1: a secondary figure, and each "
        "import takes half a minute at 1M)",
    )
    parser.add_argument(
        "--gzip-max-size",
        default="1M",
        help="largest size whose gzip import is measured (default 1M: the events/s of a gzip "
        "import do not change with size, and each 10M import takes minutes)",
    )
    parser.add_argument(
        "--other-runs",
        type=int,
        default=1,
        help="runs for SQLite and PostgreSQL (default 1: their import takes minutes at 1M)",
    )
    parser.add_argument(
        "--gzip-stores",
        default="duckdb",
        help="stores whose gzip ingest is measured too (default duckdb: decompressing costs "
        "the same whatever the store)",
    )
    parser.add_argument(
        "--pages",
        default=",".join(PAGES),
        help="comma-separated dashboard pages to measure (default all)",
    )
    parser.add_argument("--seed", type=int, default=42, help="sample generator seed")
    parser.add_argument(
        "--profile",
        choices=("standard", "diverse"),
        default="standard",
        help="sample generator profile (diverse: many campaigns, names, datasets, people)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=600,
        help="seconds one measurement may take before that store and size is given up (default 600)",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("EQM_BENCH_PG_URL"),
        help="PostgreSQL server to use (it creates and drops databases; default "
        "$EQM_BENCH_PG_URL, else a temporary local server); never printed",
    )
    parser.add_argument("--workdir", help="where stores go (default: a temporary folder)")
    parser.add_argument(
        "--cache",
        help="where generated logs are kept for the next run (default $XDG_CACHE_HOME/eqm-bench "
        "or ~/.cache/eqm-bench)",
    )
    parser.add_argument(
        "--no-cache", action="store_true", help="generate logs in the workdir, removed afterwards"
    )
    parser.add_argument("--out", help="write the Markdown here (e.g. BENCHMARKS.md)")
    parser.add_argument("--notes", help="Markdown file appended as a Notes section")
    parser.add_argument("--json", help="also save the raw figures here (for --render)")
    parser.add_argument(
        "--render",
        help="measure nothing: write the Markdown of a run saved with --json (e.g. with new --notes)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.render:
        return _finish(json.loads(Path(args.render).read_text(encoding="utf-8")), args)
    sizes = _sizes(args.sizes)
    stores_wanted = [s.strip() for s in args.stores.split(",") if s.strip()]
    unknown = [s for s in stores_wanted if s not in STORES]
    pages = tuple(p.strip() for p in args.pages.split(",") if p.strip())
    bad_pages = [p for p in pages if p not in PAGES]
    gzip_max = (_sizes(args.gzip_max_size) or [0])[0]
    if (
        not sizes
        or unknown
        or bad_pages
        or min(args.runs, args.other_runs, args.large_runs) < 1
        or args.gzip_runs < 0
    ):
        print(
            "usage error: need sizes, runs ≥ 1, stores among "
            f"{', '.join(STORES)} and pages among {', '.join(PAGES)}",
            file=sys.stderr,
        )
        return 2
    store_sizes = {}
    for part in filter(None, (p.strip() for p in args.store_sizes.split(","))):
        store, _, values = part.partition("=")
        store_sizes[store.strip()] = _sizes(values.replace("+", ","))
    pairs = plan(stores_wanted, sizes, store_sizes)
    started = time.perf_counter()
    load_before = _load()
    results: list[Result] = []
    generation = 0.0
    extra: list[str] = []
    with tempfile.TemporaryDirectory(prefix="eqm-bench-") as tmp:
        workdir = Path(args.workdir) if args.workdir else Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        cache = workdir / "logs" if args.no_cache else Path(args.cache or _default_cache())
        stores = Stores(workdir, args.postgres_url)
        try:
            if any(store == "postgresql" for _, store in pairs) and not stores.start_postgres():
                print(stores.pg_note, file=sys.stderr)
                extra.append(f"{stores.pg_note}.")
                pairs = [p for p in pairs if p[1] != "postgresql"]
            elif stores.pg_note:
                extra.append(f"PostgreSQL: {stores.pg_note}.")
            info = machine(stores.pg_version)
            print(json.dumps(info), flush=True)
            for size, store in pairs:
                log, packed, spent = sample_logs(size, args.seed, cache, args.profile)
                generation += spent
                if spent:
                    print(f"generated ~{size:,} events in {spent:.0f} s", flush=True)
                runs = args.runs if store == "duckdb" else args.other_runs
                if size >= LARGE_SIZE:
                    runs = min(runs, args.large_runs)
                gzip = store in args.gzip_stores.split(",") and size <= gzip_max
                gzip_runs = min(runs, args.gzip_runs) if gzip else 0
                result = measure(
                    store, size, log, packed, stores, runs, args.timeout, pages, gzip_runs
                )
                results.append(result)
                print(json.dumps(result.to_dict()), flush=True)
        finally:
            stores.stop()
            if args.no_cache:
                for path in cache.glob("sample_*"):
                    path.unlink()
    total = time.perf_counter() - started
    extra.append(
        f"Whole run: {total:,.0f} s, of which {generation:,.0f} s generating logs "
        f"({'none: all cached' if not generation else 'not cached before'}); load average "
        f"(1/5/15 min) {load_before} at the start, {_load()} at the end (2 cores: above 2 means "
        "other work shared the machine)."
    )
    record = {
        "info": info,
        "runs": args.runs,
        "command": _shown_command(argv if argv is not None else sys.argv[1:]),
        "extra": extra,
        "results": [r.to_dict() for r in results],
    }
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=1), encoding="utf-8")
    print(
        f"total {total:.0f} s (generation {generation:.0f} s); peak RSS of this process "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )
    return _finish(record, args)


def _finish(record: dict[str, Any], args: argparse.Namespace) -> int:
    """Write the Markdown of a run (just measured, or loaded with --render); exit code."""
    names = {f.name for f in fields(Result)}
    results = [Result(**{k: v for k, v in r.items() if k in names}) for r in record["results"]]
    notes = Path(args.notes).read_text(encoding="utf-8") if args.notes else ""
    command = _shown_command(record["command"].split())
    table = to_markdown(results, record["info"], record["runs"], command, notes, record["extra"])
    print(table)
    if args.out:
        Path(args.out).write_text(table, encoding="utf-8")
    differing = [r for r in results if r.differences]
    for r in differing:
        print(
            f"ERROR: the pandas reference and the report differ on {r.store} at "
            f"{r.events:,} events:\n  " + "\n  ".join(r.differences[:20]),
            file=sys.stderr,
        )
    if differing:
        return 1
    if any(r.failed for r in results):
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
