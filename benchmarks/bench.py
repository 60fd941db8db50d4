"""Benchmarks: `python -m benchmarks.bench`. Speed is measured here, never in timed tests.

Owns generating sample logs of given sizes and profiles (with the one seeded generator,
cached by profile, size, seed and generator version), and measuring on DuckDB, SQLite
and PostgreSQL: ingest (JSONL and gzip) next to DuckDB's own read_json of the same file,
the full JSON report, each dashboard page's computations for a default and a filtered
view, the pandas reference (tests.oracle.reference) with a check that it gives the
report's numbers, and the CLI's start-up. Every measurement runs in a fresh child
process, so its time is uncached and its peak memory (RSS) is its own; each figure is
the median of --runs such processes. `benchmarks.tables` turns the figures into
Markdown (tables, growth ratios, the issue #17 targets met or not).
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
from dataclasses import fields
from pathlib import Path
from typing import Any

from benchmarks.stores import STORES, Stores
from benchmarks.tables import PAGES, PROFILES, VIEWS, Result, to_markdown
from dashboard.core.config import REPO_ROOT

DEFAULT_SIZES = "100000,1000000,10000000"
# SQLite and PostgreSQL are compared with the embedded default at one size. 100k by
# default: at 1M each takes 9-13 minutes here (`--store-sizes sqlite=1M,postgresql=1M`),
# which alone would break the 20 minutes the whole command may take.
OTHER_STORE_SIZE = 100_000
# From this size on, one run per figure (--large-runs) and no gzip import (--gzip-max-size):
# a 10M import alone takes minutes, and the issue wants the whole command under 20.
LARGE_SIZE = 5_000_000
STARTUP_RUNS = 7  # fresh `--help` processes (median)

_CHILD = r"""
import json, resource, sys, time
args = json.loads(sys.stdin.read())
task, url = args["task"], args["url"]
# Imports first: the clock measures the work, not loading Python modules.
from dashboard.core.config import load_config
from dashboard.store.database import make_engine, release_connections
if task == "ingest":
    from dashboard.ingest import ingest
elif task == "read_json":
    import duckdb
else:
    from tests.oracle import reference
    from benchmarks.pages import page_computations, page_filters
    from dashboard.core.filters import Filters
    from dashboard.outputs.report import build_report
config = load_config()
if task == "page":
    # As the dashboard does: one pooled connection for a page run's queries, the store
    # opened anew at each run (so the page starts with DuckDB's cache cold).
    engine = make_engine(url, reuse_connections=True)
    filters = page_filters(engine, config, args["view"])
    release_connections(engine)
elif task != "read_json":
    engine = make_engine(url, hold_connection=task != "ingest")
out = {}
start = time.perf_counter()
if task == "ingest":
    summary = ingest([args["path"]], engine)
    out["events"] = summary.events_imported
elif task == "read_json":
    # Every field of the schema DuckDB infers from a sample, batch by batch. A log mixes
    # record shapes: ignore_errors keeps the lines with keys outside the sampled schema
    # (their known fields). sample_size=-1 would read the whole file twice and make the
    # anchor 2-3x slower, flattering the ratio; this is the stricter figure.
    reader = duckdb.connect().sql(
        "SELECT * FROM read_json($path, format='newline_delimited', ignore_errors=true)",
        params={"path": args["path"]},
    ).to_arrow_reader(100_000)
    out["rows"] = sum(batch.num_rows for batch in reader)
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


# ---------------------------------------------------------------------------
# Machine and logs
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


# ---------------------------------------------------------------------------
# Measuring
def startup(runs: int = STARTUP_RUNS) -> dict[str, Any]:
    """Median wall time of `python -m dashboard --help` in fresh processes, next to a
    bare interpreter's start in the same run (what no import work can go below)."""

    def timed(argv: list[str]) -> float:
        started = time.perf_counter()
        subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, check=True)
        return time.perf_counter() - started

    help_s, python_s = [], []
    for _ in range(runs):  # interleaved, so a burst of other work hits both alike
        help_s.append(timed([sys.executable, "-m", "dashboard", "--help"]))
        python_s.append(timed([sys.executable, "-c", "pass"]))
    return {"help_s": _median(help_s), "python_s": _median(python_s), "runs": runs}


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
    profile: str = "standard",
    browser: bool = False,
) -> Result:
    """All measurements for one profile, store and size (median of `runs` fresh processes
    each; `gzip_runs` of them, 0 for none, also import the gzip log)."""
    result = Result(store, size, runs, profile=profile)
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
        if store == "duckdb":  # the anchor: once per file is enough, DuckDB's is the store
            anchor = [
                _run_child("read_json", "", timeout, path=str(log))["seconds"] for _ in range(runs)
            ]
            result.read_json_s = _median(anchor)

        report_path = stores.workdir / f"report_{profile}_{store}_{size}.json"
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
        if browser and pages:
            from benchmarks.browser import page_changes

            try:
                timed = page_changes(kept, pages, runs=runs, timeout=timeout)
            except Exception as exc:  # noqa: BLE001 - Playwright's own errors too: a failed figure, not a crash
                raise MeasurementFailed(f"pages in Chromium: {exc}") from exc
            # The uncached change only (the load and the cached change are in its JSON).
            result.browser = {page: seconds for page, seconds in timed.items() if ":" not in page}

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
        "--profiles",
        "--profile",
        default=",".join(PROFILES),
        help="comma-separated sample generator profiles (default both: standard, and diverse "
        "with many campaigns, names, datasets and people); each is measured at every size",
    )
    parser.add_argument(
        "--no-browser",
        action="store_true",
        help="skip timing page changes in Chromium (benchmarks/browser.py; DuckDB only)",
    )
    parser.add_argument(
        "--no-startup",
        action="store_true",
        help="skip timing `python -m dashboard --help`",
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
    profiles = [p.strip() for p in args.profiles.split(",") if p.strip()]
    if (
        not sizes
        or unknown
        or bad_pages
        or not profiles
        or any(p not in PROFILES for p in profiles)
        or min(args.runs, args.other_runs, args.large_runs) < 1
        or args.gzip_runs < 0
    ):
        print(
            "usage error: need sizes, runs ≥ 1, stores among "
            f"{', '.join(STORES)}, pages among {', '.join(PAGES)} and profiles among "
            f"{', '.join(PROFILES)}",
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
            startup_figures = None if args.no_startup else startup()
            for profile, (size, store) in [(f, pair) for f in profiles for pair in pairs]:
                log, packed, spent = sample_logs(size, args.seed, cache, profile)
                generation += spent
                if spent:
                    print(f"generated ~{size:,} {profile} events in {spent:.0f} s", flush=True)
                runs = args.runs if store == "duckdb" else args.other_runs
                if size >= LARGE_SIZE:
                    runs = min(runs, args.large_runs)
                gzip = store in args.gzip_stores.split(",") and size <= gzip_max
                gzip_runs = min(runs, args.gzip_runs) if gzip else 0
                result = measure(
                    store,
                    size,
                    log,
                    packed,
                    stores,
                    runs,
                    args.timeout,
                    pages,
                    gzip_runs,
                    profile,
                    browser=store == "duckdb" and not args.no_browser,
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
        "startup": startup_figures,
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
    table = to_markdown(
        results,
        record["info"],
        record["runs"],
        command,
        notes,
        record["extra"],
        record.get("startup"),
    )
    print(table)
    if args.out:
        Path(args.out).write_text(table, encoding="utf-8")
    differing = [r for r in results if r.differences]
    for r in differing:
        print(
            f"ERROR: the pandas reference and the report differ on {r.profile} {r.store} at "
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
