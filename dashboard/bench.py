"""Benchmarks: `python -m dashboard.bench`. Speed is measured here, never in timed tests.

Owns generating sample logs of given sizes (with the one seeded generator), timing
ingest (JSONL and gzip) and the full JSON report, each measurement in a fresh child
process so its peak memory (RSS) is its own, and writing the results as a Markdown
table with the machine and library versions.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dashboard.config import REPO_ROOT

_CHILD = r"""
import json, resource, sys, time
from dashboard.config import load_config
from dashboard.store import make_engine
task, url, path = sys.argv[1], sys.argv[2], sys.argv[3]
engine = make_engine(url, hold_connection=task != "ingest")
start = time.perf_counter()
if task.startswith("page:"):
    from dashboard.bench import page_computations
    _, page, view = task.split(":")
    count = page_computations(engine, load_config(), page, view)
elif task == "ingest":
    from dashboard.ingest import ingest
    summary = ingest([path], engine)
    count = summary.events_imported
else:
    from dashboard.indicators import Filters
    from dashboard.report import build_report
    report = build_report(engine, Filters(), load_config())
    count = report["overall"]["server_sent"] + report["overall"]["browser_events"]
seconds = time.perf_counter() - start
peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "events": count, "peak_rss_mb": peak_kb / 1024}))
"""


def _run_child(task: str, url: str, path: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, task, url, path],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{task} failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


PAGES = ("overview", "match_quality", "coverage_dedup", "funnel", "freshness_delivery")


def page_computations(engine, config, page: str, view: str) -> int:
    """Run the computations one dashboard page makes, uncached, for a default or filtered view.

    The filtered view is one campaign and one stage (the largest of each). Returns the
    number of queries run.
    """
    from dashboard import indicators as ind
    from dashboard.diagnostics import diagnose

    first, last = ind.data_range(engine)
    from datetime import timedelta

    filters = ind.Filters(since=last - timedelta(days=27), until=last)
    if view == "filtered":
        by_campaign = ind.block_frame(engine, filters, config, "campaign")
        by_stage = ind.block_frame(engine, filters, config, "funnel_stage")
        top = lambda frame, col: str(  # noqa: E731
            frame.assign(n=frame["browser_events"] + frame["server_sent"])
            .sort_values("n")
            .iloc[-1][col]
        )
        filters = ind.Filters(
            since=filters.since,
            until=filters.until,
            campaigns=(top(by_campaign, "campaign"),),
            stages=(top(by_stage, "funnel_stage"),),
        )
    plans = {
        "overview": [
            lambda: ind.overall_block(engine, filters, config),
            lambda: ind.overall_block(engine, filters.previous(), config),
            lambda: ind.delivery_summary(engine, filters),
            lambda: diagnose(engine, filters, config),
            lambda: ind.block_frame(engine, filters, config, "event_day"),
        ],
        "match_quality": [
            lambda: ind.overall_block(engine, filters, config),
            lambda: ind.what_to_fix(engine, filters, config, 15),
            lambda: ind.block_frames(
                engine,
                filters,
                config,
                [["event_name"], ["campaign"], ["funnel_stage"], ["event_day"]],
            ),
        ],
        "coverage_dedup": [
            lambda: ind.overall_block(engine, filters, config),
            lambda: ind.block_frame(engine, filters, config, "event_name"),
            lambda: ind.dedup_key_feedback(engine, filters),
            lambda: ind.gap_events(engine, filters),
        ],
        "funnel": [
            lambda: ind.funnel_stages(engine, filters, config),
            lambda: ind.funnel_conversion(engine, filters, config),
            lambda: ind.stage_order_gaps(engine, filters, config),
            lambda: ind.purchases(engine, filters, config),
        ],
        "freshness_delivery": [
            lambda: ind.overall_block(engine, filters, config),
            lambda: ind.delivery_summary(engine, filters),
            lambda: ind.lag_stats(engine, filters, config, "funnel_stage"),
            lambda: ind.lag_sample(engine, filters),
            lambda: ind.delivery_errors(engine, filters),
        ],
    }
    for step in plans[page]:
        step()
    return len(plans[page])


def machine() -> dict[str, str]:
    """Machine and versions the figures were measured with."""
    import duckdb
    import pandas
    import sqlalchemy

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": str(os.cpu_count()),
        "memory_gb": f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f}",
        "duckdb": duckdb.__version__,
        "sqlalchemy": sqlalchemy.__version__,
        "pandas": pandas.__version__,
    }


def run(sizes: list[int], runs: int, workdir: Path, backends: list[str]) -> list[dict]:
    """Measure ingest and report at each size; medians of `runs` fresh runs."""
    from dashboard.sample import write_sample_log

    results = []
    for size in sizes:
        log = workdir / f"sample_{size}.jsonl"
        packed = workdir / f"sample_{size}.jsonl.gz"
        if not log.exists():
            write_sample_log(log, target_events=size)
        if not packed.exists():
            write_sample_log(packed, target_events=size)
        for backend in backends:
            ingest_runs, gzip_runs, report_runs = [], [], []
            url = ""
            for attempt in range(runs):
                url = _fresh_url(backend, workdir, f"{size}_{attempt}")
                ingest_runs.append(_run_child("ingest", url, str(log)))
                gz_url = _fresh_url(backend, workdir, f"{size}_{attempt}_gz")
                gzip_runs.append(_run_child("ingest", gz_url, str(packed)))
                _drop(gz_url)
            for _ in range(runs):
                report_runs.append(_run_child("report", url, ""))
            pages = {}
            for page in PAGES:
                for view in ("default", "filtered"):
                    measured = [_run_child(f"page:{page}:{view}", url, "") for _ in range(runs)]
                    pages[f"{page}:{view}"] = {
                        "seconds": statistics.median(r["seconds"] for r in measured),
                        "peak_rss_mb": max(r["peak_rss_mb"] for r in measured),
                    }
            events = ingest_runs[0]["events"]
            results.append(
                {
                    "size": size,
                    "backend": backend,
                    "events": events,
                    "ingest_s": statistics.median(r["seconds"] for r in ingest_runs),
                    "ingest_events_per_s": events
                    / statistics.median(r["seconds"] for r in ingest_runs),
                    "ingest_gzip_events_per_s": events
                    / statistics.median(r["seconds"] for r in gzip_runs),
                    "ingest_peak_rss_mb": max(r["peak_rss_mb"] for r in ingest_runs),
                    "report_s": statistics.median(r["seconds"] for r in report_runs),
                    "report_peak_rss_mb": max(r["peak_rss_mb"] for r in report_runs),
                    "pages": pages,
                }
            )
            print(json.dumps(results[-1]), flush=True)
    return results


def _fresh_url(backend: str, workdir: Path, name: str) -> str:
    if backend == "duckdb":
        path = workdir / f"store_{name}.duckdb"
        path.unlink(missing_ok=True)
        return f"duckdb:///{path}"
    if backend == "sqlite":
        path = workdir / f"store_{name}.sqlite"
        path.unlink(missing_ok=True)
        return f"sqlite:///{path}"
    raise ValueError(f"unknown backend {backend} (postgresql: set EQM_BENCH_PG_URL; not yet wired)")


def _drop(url: str) -> None:
    if ":///" in url:
        Path(url.split(":///", 1)[1]).unlink(missing_ok=True)


def to_markdown(results: list[dict], info: dict[str, str], runs: int = 1) -> str:
    """The results table as Markdown."""
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `python -m dashboard.bench`; median of {runs} fresh run(s) per figure, each in its own process.",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in info.items()) + ".",
        "",
        "| events | store | ingest JSONL (events/s) | ingest gzip (events/s) | ingest peak RSS (MB) | full report (s) | report peak RSS (MB) |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['events']:,} | {r['backend']} | {r['ingest_events_per_s']:,.0f} | {r['ingest_gzip_events_per_s']:,.0f} "
            f"| {r['ingest_peak_rss_mb']:,.0f} | {r['report_s']:.2f} | {r['report_peak_rss_mb']:,.0f} |"
        )
    lines += [
        "",
        "Dashboard page computations (uncached: what a page change costs before the cache helps), seconds;",
        "default view = last 28 days, filtered = one campaign and one stage:",
        "",
        "| events | store | " + " | ".join(f"{p} (default / filtered)" for p in PAGES) + " |",
        "|---:|---|" + "---:|" * len(PAGES),
    ]
    for r in results:
        cells = [
            f"{r['pages'][f'{p}:default']['seconds']:.2f} / {r['pages'][f'{p}:filtered']['seconds']:.2f}"
            for p in PAGES
        ]
        lines.append(f"| {r['events']:,} | {r['backend']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dashboard.bench", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated event counts")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backends", default="duckdb", help="comma-separated: duckdb,sqlite")
    parser.add_argument("--workdir", help="where logs and stores go (default: a temporary folder)")
    parser.add_argument("--out", help="write the Markdown table here (e.g. BENCHMARKS.md)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    info = machine()
    print(json.dumps(info), flush=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="eqm-bench-") as tmp:
        workdir = Path(args.workdir) if args.workdir else Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        results = run(sizes, args.runs, workdir, args.backends.split(","))
    table = to_markdown(results, info, args.runs)
    print(table)
    print(
        f"total {time.perf_counter() - started:.0f} s; peak RSS of this process "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )
    if args.out:
        Path(args.out).write_text(table, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
