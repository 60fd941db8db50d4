"""`check`: exit codes on stores built to breach each threshold, and one that breaches none."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from conftest import write_jsonl
from logkit import T0, capi, event, pixel, sha

from dashboard.alerts import Thresholds, run_check
from dashboard.ingest import ingest

DAY = 86_400
END = T0 + 8 * DAY  # the window is the 8th day; the baseline the 7 before


def good_event(name, t, i, **extra):
    return event(
        name,
        t,
        f"{name}-{i}",
        em=sha(f"p{i}@x.test"),
        ph=sha(f"1650555{i:04d}"),
        external_id=f"u{i}",
        fbp=f"fb.1.1700000000000.{i}",
        fbc=f"fb.1.1700000000000.Ab{i}",
        client_ip_address="203.0.113.9",
        client_user_agent="UA",
        **extra,
    )


def healthy_log(breach: str | None = None) -> list:
    records = []
    for day in range(8):
        for k in range(30):
            i = day * 100 + k
            t = T0 + day * DAY + k * 600
            ev = good_event("Purchase", t, i)
            records.append(pixel(ev, sent_at=t))
            in_window = day == 7
            if in_window and breach == "volume":
                continue
            if in_window and breach == "coverage" and k < 20:
                continue
            if in_window and breach == "emq":
                ev = event("Purchase", t, f"Purchase-{i}", fn=sha("a"), ln=sha("b"), ct=sha("c"))
            kwargs = {}
            if in_window and breach == "errors" and k < 5:
                kwargs = {"status": 400, "error": {"code": 100, "message": "Invalid parameter"}}
            if in_window and breach == "token" and k == 0:
                kwargs = {
                    "status": 400,
                    "error": {"code": 190, "error_subcode": 463, "message": "expired"},
                }
            records.append(capi([ev], sent_at=t + 5, **kwargs))
    if breach == "double":
        t = END - 3600
        records.append(capi([event("Lead", t, None, em=sha("d@x.test"))], sent_at=t - 30))
        records.append(pixel(event("Lead", t + 60, "lead-d", em=sha("d@x.test")), sent_at=t))
    return records


BREACHES = {
    "emq": "emq_estimate",
    "coverage": "event_coverage",
    "double": "likely_double_counted",
    "errors": "error_rate",
    "token": "token_errors",
    "volume": "server_volume_drop",
}


def load(engine, tmp_path, config, breach):
    ingest([write_jsonl(tmp_path / f"{breach}.jsonl", healthy_log(breach))], engine, config=config)


def test_healthy_store_breaches_nothing(engine, tmp_path, config):
    load(engine, tmp_path, config, None)
    result = run_check(engine, config, Thresholds(), END)
    assert result.ok, result.lines()
    assert result.checks_run == 7  # EMQ and coverage for Purchase, five overall checks
    assert result.lines() == ["OK: all 7 checks hold"]


@pytest.mark.parametrize("breach", sorted(BREACHES))
def test_each_threshold_breaches(duck_engine, tmp_path, config, breach):
    load(duck_engine, tmp_path, config, breach)
    result = run_check(duck_engine, config, Thresholds(), END)
    assert BREACHES[breach] in {b.check for b in result.breaches}, result.lines()


def test_stale_events_breach(duck_engine, tmp_path, config):
    # A stale event's event_time is in the window, but it was sent 8 days later.
    # Windows are on sent_at: an event that happened 8 days ago, sent an hour ago, is stale.
    records = healthy_log(None)
    records.append(capi([good_event("Purchase", END - 3600 - 8 * DAY, 9999)], sent_at=END - 3600))
    ingest([write_jsonl(tmp_path / "stale.jsonl", records)], duck_engine, config=config)
    result = run_check(duck_engine, config, Thresholds(), END)
    assert [b.check for b in result.breaches] == ["stale_events"]


class _Hook(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "dashboard", *args], capture_output=True, text=True
    )


def test_cli_exit_codes_json_and_webhook(tmp_path, config):
    healthy = f"duckdb:///{tmp_path / 'ok.duckdb'}"
    broken = f"duckdb:///{tmp_path / 'bad.duckdb'}"
    assert (
        cli(
            "ingest", str(write_jsonl(tmp_path / "ok.jsonl", healthy_log(None))), "--db", healthy
        ).returncode
        == 0
    )
    assert (
        cli(
            "ingest", str(write_jsonl(tmp_path / "bad.jsonl", healthy_log("token"))), "--db", broken
        ).returncode
        == 0
    )
    ok = cli("check", "--db", healthy, "--at", "latest")
    assert ok.returncode == 0 and ok.stdout.startswith("OK: all")
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/hook"
        bad = cli("check", "--db", broken, "--at", "latest", "--format", "json", "--webhook", url)
    finally:
        server.shutdown()
    assert bad.returncode == 1
    result = json.loads(bad.stdout)
    assert result["ok"] is False and "token_errors" in {b["check"] for b in result["breaches"]}
    assert len(_Hook.received) == 1 and "token_errors" in _Hook.received[0]["text"]
    assert cli("check", "--db", broken, "--at", "yesterday-ish").returncode == 2
    assert (
        cli("check", "--db", f"duckdb:///{tmp_path / 'empty.duckdb'}", "--at", "latest").returncode
        == 2
    )
    relaxed = cli(
        "check",
        "--db",
        broken,
        "--at",
        "latest",
        "--max-token-errors",
        "5",
        "--max-error-rate",
        "0.5",
    )
    assert relaxed.returncode == 0, relaxed.stdout
