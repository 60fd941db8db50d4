"""Ingest speed by log format: the same server calls written in every format we read.

Owns the format benchmark of issue #12. The seeded sample (dashboard.sample.generator) of about
`--events` events gives the server calls (its `capi_request` records); tests/formatkit.py
writes them as each integration logs them; each file is imported into a fresh DuckDB
store by a fresh process, timed inside the process around `ingest()` only (no Python
start-up), `--runs` times. Every format must import the same number of events (the
check fails the run otherwise). Prints a Markdown table of median events/s and the ratio
to log format v1, measured in one run.

    python3 -m benchmarks.ingest_formats --events 100000 --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from tests import formatkit as fk  # noqa: E402 - the writers live with the tests

# label -> (file name, writer); the writers are the tests'.
FORMATS = {
    "log format v1 (JSON Lines)": ("v1.jsonl", fk.write_v1),
    "raw bodies, JSON lines": ("bodies.ndjson", fk.write_bodies),
    "raw bodies, form-encoded": ("bodies.txt", fk.write_form_bodies),
    "raw bodies, one JSON array": (
        "bodies.json",
        lambda p, c: fk.write_body_array(p, c, pretty=False),
    ),
    "Python SDK debug (curl)": ("python-sdk.log", fk.write_python_sdk_debug),
    "sGTM (Stape) console": ("sgtm.jsonl", fk.write_stape_console),
    "sGTM Cloud Logging": ("sgtm-cl.jsonl", fk.write_stape_cloud_logging),
    "sGTM BigQuery rows (CSV)": ("sgtm-bq.csv", fk.write_stape_bigquery_csv),
    "WooCommerce debug log": ("woocommerce.log", fk.write_woocommerce),
    "Node SDK debug": ("node.log", fk.write_node_sdk),
}

_CHILD = r"""
import json, resource, sys, time
args = json.loads(sys.stdin.read())
from dashboard.ingest import ingest
from dashboard.store.database import make_engine
engine = make_engine(args["url"])
start = time.perf_counter()
summary = ingest([args["path"]], engine, default_dataset=args["dataset"])
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "events": summary.events_imported,
                  "format": next(iter(summary.formats.values())),
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def sample_calls(events: int, seed: int, folder: Path) -> list[fk.Call]:
    """The sample's server calls (its capi_request records), as formatkit calls. Pixel
    events are left out: only v1 and CSV carry browser events."""
    from dashboard.ingest.rows import to_unix_seconds
    from dashboard.sample.generator import write_sample_log

    log = folder / "sample.jsonl"
    write_sample_log(log, seed=seed, target_events=events)
    calls = []
    with log.open(encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            record = json.loads(line)
            if record.get("kind") != "capi_request":
                continue
            seconds = int(to_unix_seconds(record["sent_at"], "sent_at"))
            calls.append(
                fk.Call(
                    body=record["request"],
                    dataset_id=str(record.get("dataset_id", "1")),
                    sent_at=seconds,
                    answer=record.get("response"),
                    trace_id=f"trace-{i}",
                )
            )
    return calls


def measure(path: Path, folder: Path, dataset: str) -> dict:
    store = folder / f"store-{time.monotonic_ns()}.duckdb"
    done = subprocess.run(
        [sys.executable, "-c", _CHILD],
        input=json.dumps({"url": f"duckdb:///{store}", "path": str(path), "dataset": dataset}),
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
        timeout=3600,
        check=True,
    )
    for leftover in folder.glob(store.name + "*"):
        leftover.unlink()
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="eqm-formats-") as tmp:
        folder = Path(tmp)
        calls = sample_calls(args.events, args.seed, folder)
        dataset = calls[0].dataset_id
        rows = []
        for label, (file_name, write) in FORMATS.items():
            path = folder / file_name
            write(path, calls)
            runs = [measure(path, folder, dataset) for _ in range(args.runs)]
            counts = {run["events"] for run in runs}
            median = statistics.median(run["seconds"] for run in runs)
            rows.append(
                {
                    "format": label,
                    "detected": runs[0]["format"].split(" ")[0],
                    "events": counts.pop() if len(counts) == 1 else None,
                    "seconds": median,
                    "mb": path.stat().st_size / 1e6,
                    "rss_mb": max(run["rss_mb"] for run in runs),
                }
            )
            print(f"{label}: {median:.2f} s", file=sys.stderr, flush=True)
    base = rows[0]
    print(
        f"Ingest by log format: {len(calls):,} server calls from the seeded sample "
        f"(--events {args.events:,}, seed {args.seed}), DuckDB, median of {args.runs} fresh "
        f"processes each, on {os.cpu_count()} cores, Python {platform.python_version()}.\n"
    )
    print("| format | detected as | file MB | events | median s | events/s | vs v1 | peak RSS MB |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        eps = row["events"] / row["seconds"] if row["events"] else 0
        ratio = base["seconds"] / row["seconds"]
        print(
            f"| {row['format']} | {row['detected']} | {row['mb']:.1f} | {row['events']:,} | "
            f"{row['seconds']:.2f} | {eps:,.0f} | {ratio:.2f}x | {row['rss_mb']:.0f} |"
        )
    # Formats that carry fewer events (the Node SDK prints nothing for a call that got no
    # answer) differ by design; any other difference is a bug.
    same = {row["events"] for row in rows if row["format"] != "Node SDK debug"}
    if len(same) != 1 or None in same:
        print(f"error: formats imported different event counts: {same}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
