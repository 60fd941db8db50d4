"""What the capture relay costs a call: latency overhead, lost and altered calls.

Owns the relay benchmark of issue #13. A fake Graph API (a local uvicorn process that
answers at once and remembers the SHA-256 of every body it gets) is called at a fixed
rate, first directly, then through the relay (`python -m dashboard relay`, its own
process, logging to a temporary folder), `--rate` calls a second for `--seconds` each,
each body a realistic CAPI call with its own event_id. The first `--warmup` seconds of
each phase are left out. Prints p50/p90/p99/max latency of both phases and their
differences, calls lost (no 200 answer) and altered (a body the upstream got that differs
from the one sent, or an answer the caller got that differs from the upstream's), and
the log lines written.

    python3 -m benchmarks.relay_latency --rate 200 --seconds 60
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent

_UPSTREAM = r"""
import hashlib, json, sys
import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
seen = []
ANSWER = json.dumps({"events_received": 1, "messages": [], "fbtrace_id": "AbCdEf012"})
async def events(request):
    seen.append(hashlib.sha256(await request.body()).hexdigest())
    return Response(ANSWER, media_type="application/json; charset=UTF-8")
async def received(request):
    return JSONResponse(seen)
app = Starlette(routes=[Route("/{v}/{pixel}/events", events, methods=["POST"]),
                        Route("/_received", received)])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""
ANSWER = {"events_received": 1, "messages": [], "fbtrace_id": "AbCdEf012"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"{url} did not come up") from None
            time.sleep(0.1)


def body(i: int) -> bytes:
    """A realistic call: one Purchase with hashed contact data, cookies, IP and agent."""
    event = {
        "event_name": "Purchase",
        "event_time": 1_764_000_000 + i,
        "event_id": f"order-{i}",
        "action_source": "website",
        "event_source_url": "https://shop.example/checkout/thanks?utm_campaign=bf",
        "user_data": {
            "em": [hashlib.sha256(f"buyer{i}@example.org".encode()).hexdigest()],
            "ph": [hashlib.sha256(f"3360{i:07d}".encode()).hexdigest()],
            "external_id": [hashlib.sha256(f"customer-{i}".encode()).hexdigest()],
            "fbp": f"fb.1.1764000000000.{i}",
            "fbc": f"fb.1.1764000000000.IwAR{i:012d}",
            "client_ip_address": "203.0.113.7",
            "client_user_agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0",
        },
        "custom_data": {"value": 49.9, "currency": "EUR", "order_id": f"order-{i}"},
    }
    return json.dumps({"data": [event], "partner_agent": "bench"}).encode()


async def phase(base: str, rate: float, seconds: float, offset: int) -> list[dict]:
    """Calls at a fixed rate (open loop: a slow answer does not delay the next call)."""
    limits = httpx.Limits(max_connections=512, max_keepalive_connections=128)
    results: list[dict] = []
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:

        async def one(i: int) -> None:
            payload = body(offset + i)
            started = time.perf_counter()
            try:
                answer = await client.post(
                    f"{base}/v21.0/1234567890/events?access_token=EAAbench",
                    content=payload,
                    headers={"Content-Type": "application/json"},
                )
                status, content = answer.status_code, answer.content
            except httpx.HTTPError as exc:
                status, content = None, repr(exc).encode()
            results.append(
                {
                    "i": i,
                    "ms": (time.perf_counter() - started) * 1000,
                    "status": status,
                    "answer_ok": status == 200 and json.loads(content) == ANSWER,
                    "sha": hashlib.sha256(payload).hexdigest(),
                }
            )

        total = int(rate * seconds)
        start = time.perf_counter()
        tasks = []
        for i in range(total):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
    return results


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="calls per second")
    parser.add_argument("--seconds", type=float, default=60.0, help="per phase")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds left out")
    args = parser.parse_args(argv)
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    upstream_port, relay_port = _free_port(), _free_port()
    with tempfile.TemporaryDirectory(prefix="eqm-relay-bench-") as tmp:
        upstream = subprocess.Popen([sys.executable, "-c", _UPSTREAM, str(upstream_port)], env=env)
        relay = subprocess.Popen(
            [
                sys.executable, "-m", "dashboard", "relay",
                "--listen", f"127.0.0.1:{relay_port}",
                "--upstream", f"http://127.0.0.1:{upstream_port}",
                "--log", str(Path(tmp) / "capture"),
            ],
            cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            direct_base = f"http://127.0.0.1:{upstream_port}"
            relay_base = f"http://127.0.0.1:{relay_port}"
            _wait(f"{direct_base}/_received", upstream)
            _wait(f"{relay_base}/health", relay)
            direct = asyncio.run(phase(direct_base, args.rate, args.seconds, 0))
            via = asyncio.run(phase(relay_base, args.rate, args.seconds, 10_000_000))
            received = httpx.get(f"{direct_base}/_received", timeout=30).json()
            time.sleep(1.0)  # the relay writes its log after answering
            health = httpx.get(f"{relay_base}/health", timeout=5).json()
        finally:
            relay.terminate()
            upstream.terminate()
            relay.wait(timeout=20)
            upstream.wait(timeout=20)
        log_lines = sum(
            1 for path in (Path(tmp) / "capture").glob("events-*.jsonl") for _ in path.open()
        )
    skip = int(args.rate * args.warmup)
    d_ms = [r["ms"] for r in direct if r["i"] >= skip]
    v_ms = [r["ms"] for r in via if r["i"] >= skip]
    sent_via = {r["sha"] for r in via}
    got = set(received)
    lost = sum(1 for r in via if r["status"] != 200)
    altered = len(sent_via - got) + sum(1 for r in via if r["status"] == 200 and not r["answer_ok"])
    print(
        f"Relay overhead: {args.rate:g} calls/s for {args.seconds:g} s per phase "
        f"({len(direct):,} direct, then {len(via):,} through the relay; the first "
        f"{args.warmup:g} s of each left out), on {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; load generator, relay and fake upstream share them.\n"
    )
    print("| latency (ms) | direct | via relay | overhead |")
    print("|---|---:|---:|---:|")
    for label, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0)):
        a, b = _pct(d_ms, q), _pct(v_ms, q)
        print(f"| {label} | {a:.2f} | {b:.2f} | {b - a:+.2f} |")
    print(f"| mean | {statistics.mean(d_ms):.2f} | {statistics.mean(v_ms):.2f} | "
          f"{statistics.mean(v_ms) - statistics.mean(d_ms):+.2f} |")  # fmt: skip
    print(
        f"\nLost (no 200 through the relay): {lost}. Altered (body or answer changed): "
        f"{altered}. Log lines written: {log_lines:,} of {len(via):,} "
        f"(/health: {health['log_records']:,} records, {health['log_failures']} failures)."
    )
    return 0 if lost == 0 and altered == 0 and log_lines == len(via) else 1


if __name__ == "__main__":
    raise SystemExit(main())
