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

from dashboard.cli import build_parser, main
from dashboard.core.filters import Filters
from dashboard.ingest import ingest
from dashboard.outputs.check import CHECKS, Thresholds, run_check

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
            # Every 48 min around the clock: a healthy integration is never silent for
            # long (the last server event of the window is sent 48 min before END).
            t = T0 + day * DAY + k * 2880
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
    # Every check judged but Meta's two (no snapshot): EMQ and coverage on Purchase (30
    # events of each channel in the window), the baseline has server events.
    assert result.checks_run == list(CHECKS)
    assert result.summary() == {"passed": 10, "breached": 0, "skipped": 2}
    assert result.lines() == ["OK: 10 of 12 checks passed, 2 skipped"]


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
    assert ok.returncode == 0 and ok.stdout.startswith("OK: 10 of 12 checks passed, 2 skipped\n")
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


# ---------------------------------------------------------------------------
# Pipeline checks: no_events and server_silence
# The healthy log's newest server event: day 7, k = 29, sent 5 s after its event_time
# T0 + 7 d + 29 * 2880 s = 2025-11-27 10:00 + 23 h 12 min = 2025-11-28 09:12:05 UTC.
LAST_SERVER_SENT = T0 + 7 * DAY + 29 * 2880 + 5


def test_dead_integration_breaches_no_events_and_server_silence(engine, tmp_path, config):
    # Issue #14: a store whose newest event is 27 days old used to pass every check
    # (an empty window breaches no rate, an empty baseline no volume drop).
    load(engine, tmp_path, config, None)
    result = run_check(engine, config, Thresholds(), LAST_SERVER_SENT + 27 * DAY)
    assert [b.check for b in result.breaches] == ["no_events", "server_silence"]
    silence = result.breaches[1]
    assert silence.value == 648.0  # 27 d * 24 h
    assert silence.threshold == 6.0
    assert silence.message == (
        "last server event sent 27.0 days ago, at 2025-11-28 09:12 UTC; limit 6 h"
    )
    assert result.breaches[0].message == (
        "no events were sent in the 24 h before 2025-12-25 09:12 UTC"
    )
    # An empty window and an empty baseline: every other check is skipped, with its reason.
    assert result.summary() == {"passed": 0, "breached": 2, "skipped": 10}
    reasons = {o.check: o.message for o in result.outcomes if o.status == "skipped"}
    assert reasons["error_rate"] == "no server event sent in the window"
    assert reasons["server_volume_drop"] == (
        "no server event in the 7 days before the window to compare with"
    )
    assert json.loads(json.dumps(result.to_dict()))["breaches"][1]["value"] == 648.0


def silence_breaches(engine, config, window_end, **thresholds):
    result = run_check(engine, config, Thresholds(**thresholds), window_end)
    return [b for b in result.breaches if b.check == "server_silence"]


def test_server_silence_counts_accepted_events_sent_up_to_the_window_end(
    duck_engine, tmp_path, config
):
    s = T0 + 1000
    records = [
        capi([good_event("Purchase", s - 5, 1)], sent_at=s),  # the last accepted one
        # Rejected: it proves the integration runs, not that Meta gets anything.
        capi(
            [good_event("Purchase", s + 3 * 3600 - 5, 2)],
            sent_at=s + 3 * 3600,
            status=400,
            error={"code": 100, "message": "Invalid parameter"},
        ),
        pixel(good_event("Purchase", s + 5 * 3600, 3)),  # the window is not empty
        capi([good_event("Purchase", s + 6 * 3600, 4)], sent_at=s + 6 * 3600 + 60),
    ]
    ingest([write_jsonl(tmp_path / "silence.jsonl", records)], duck_engine, config=config)
    # Exactly 6 h after s: not older than the limit.
    assert silence_breaches(duck_engine, config, s + 6 * 3600) == []
    # 36 s (0.01 h) later it is; the rejected batch 3 h before does not count, and the
    # event sent 24 s after this window's end is not seen yet.
    late = silence_breaches(duck_engine, config, s + 6 * 3600 + 36)
    assert [(b.value, b.threshold) for b in late] == [(6.0, 6.0)]
    assert late[0].message.startswith("last server event sent 6.0 h ago, at 2025-11-20 10:16 UTC")
    assert silence_breaches(duck_engine, config, s + 6 * 3600 + 36, max_silence_hours=7) == []
    # An event sent exactly at the window's end counts ("at or before").
    assert silence_breaches(duck_engine, config, s + 6 * 3600 + 60) == []


def test_server_silence_is_judged_per_dataset(duck_engine, tmp_path, config):
    # Dataset 1 sends every hour; dataset 2's integration died 30 h before the check.
    # Looking at the newest server event of the store alone, nothing would breach.
    end = T0 + 2 * DAY
    records = [
        capi([good_event("Purchase", end - h * 3600 - 5, h)], sent_at=end - h * 3600)
        for h in range(1, 40)
    ]
    records += [
        capi(
            [good_event("Lead", end - h * 3600 - 5, 100 + h)],
            sent_at=end - h * 3600,
            dataset="2",
        )
        for h in range(30, 40)
    ]
    ingest([write_jsonl(tmp_path / "two.jsonl", records)], duck_engine, config=config)
    silent = silence_breaches(duck_engine, config, end)
    assert [(b.subject, b.value) for b in silent] == [("dataset 2", 30.0)]
    assert silent[0].message.startswith("last server event sent 30.0 h ago")


def test_server_silence_without_any_server_event(duck_engine, tmp_path, config):
    records = [pixel(good_event("Purchase", T0 + k * 600, k)) for k in range(3)]
    ingest([write_jsonl(tmp_path / "browser.jsonl", records)], duck_engine, config=config)
    end = T0 + 3600
    result = run_check(duck_engine, config, Thresholds(), end)
    assert [(b.check, b.value) for b in result.breaches] == [("server_silence", None)]
    assert result.breaches[0].message == (
        "no accepted server event sent up to 2025-11-20 11:00 UTC; limit 6 h"
    )
    # A browser-only slice has no server integration to watch: the check is not run.
    browser = run_check(
        duck_engine, config, Thresholds(), end, filters=Filters(channels=("browser",))
    )
    # Judged: no_events (3 Pixel events) and stale_events; the server checks, the
    # volume drop (no server baseline) and EMQ/coverage (3 < 20 events) are skipped.
    assert browser.ok and browser.summary() == {"passed": 2, "breached": 0, "skipped": 10}
    assert browser.statuses()["server_silence"] == "skipped"


def test_check_at_latest_ends_at_the_newest_send_time(tmp_path, config, capsys):
    # Daily uploads: each day's server events go in one batch an hour after the day ends,
    # up to 25 h after they happened. Ending the window at the newest event_time would
    # leave the last batch out and see 22.2 h of server silence; at the newest send time
    # everything holds: 30 server events vs 30 a day before, 28 of day 7's Pixel events
    # sent in the window (k >= 2), all with their twin.
    records = []
    for day in range(8):
        batch = []
        for k in range(30):
            ev = good_event("Purchase", T0 + day * DAY + k * 2880, day * 100 + k)
            records.append(pixel(ev))
            batch.append(ev)
        records.append(capi(batch, sent_at=T0 + (day + 1) * DAY + 3600))
    log = write_jsonl(tmp_path / "daily.jsonl", records)
    db = f"duckdb:///{tmp_path / 'daily.duckdb'}"
    assert main(["ingest", str(log), "--db", db]) == 0
    capsys.readouterr()
    assert main(["check", "--db", db, "--at", "latest"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "OK: 10 of 12 checks passed, 2 skipped"
    # Ten passed, then Meta's two checks skipped (no snapshot in this store).
    assert len(out) == 13 and all(line.startswith("passed ") for line in out[1:11])
    assert [line.split(":")[0] for line in out[11:]] == [
        "skipped meta_emq_drop",
        "skipped meta_estimate_gap",
    ]
    # The case: checked weeks after the last upload (27 d after it), it breaches.
    at = "2025-12-25T11:00:01Z"  # T0 + 8 d + 1 h (the last batch) + 27 d, + 1 s
    assert main(["check", "--db", db, "--at", at]) == 1
    assert capsys.readouterr().out.splitlines()[:3] == [
        "BREACH: 2 of 12 checks breached, 0 passed, 10 skipped",
        "BREACH no_events [all]: no events were sent in the 24 h before 2025-12-25 11:00 UTC",
        "BREACH server_silence [dataset 1]: last server event sent 27.0 days ago, "
        "at 2025-11-28 11:00 UTC; limit 6 h",
    ]
    assert main(["check", "--db", db, "--at", at, "--max-silence-hours", "1000"]) == 1
    assert "BREACH server_silence" not in capsys.readouterr().out


@pytest.mark.parametrize(
    "option, value",
    [
        ("--min-coverage", "75"),
        ("--max-error-rate", "1.5"),
        ("--max-volume-drop", "-0.1"),
        ("--max-silence-hours", "0"),
        ("--max-stale", "-1"),
    ],
)
def test_check_rejects_thresholds_out_of_range(option, value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["check", option, value])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert f"argument {option}:" in error and f"not {value}" in error, error


def test_check_help_gives_meaning_unit_and_default():
    parser = build_parser()
    check = parser._subparsers._group_actions[0].choices["check"]  # noqa: SLF001
    text = " ".join(check.format_help().split())
    for phrase in (
        "--min-coverage SHARE smallest event coverage per event name, a 0-1 share (default 0.75)",
        "--max-error-rate SHARE largest share of sent server events Meta rejected, 0-1 (default 0.02)",
        "--max-volume-drop SHARE largest fall of server events vs the baseline's daily average, "
        "a 0-1 share (default 0.5)",
        "--max-silence-hours HOURS largest age of the newest accepted server event, in hours",
        "(default 6, or max_silence_hours under [health] in the config file)",
        "--min-emq-tier {Poor,OK,Good,Great} lowest EMQ estimate tier per event name (default OK)",
        "--max-token-errors N most events rejected for the token or permissions (codes 190/200), "
        "a count (default 0)",
        "--window-hours HOURS length of the window checked, in hours of send time (default 24)",
    ):
        assert phrase in text, phrase
