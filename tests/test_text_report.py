"""`report --format text`: the one-screen summary, and JSON whenever stdout is not a terminal."""

from __future__ import annotations

import copy
import json
from datetime import date

import pytest
from conftest import write_jsonl
from logkit import T0, capi, event, pixel, sha

from dashboard import cli
from dashboard.core.filters import Filters
from dashboard.ingest import ingest
from dashboard.outputs.report import build_report
from dashboard.outputs.text_report import MAX_LINES, render_text

DAY = 86_400
D0 = T0  # 2025-11-20 10:00 UTC: the previous period is 20-21 Nov
D2 = T0 + 2 * DAY  # 2025-11-22 10:00 UTC: the period is 22-23 Nov
D3 = T0 + 3 * DAY
PERIOD = Filters(since=date(2025, 11, 22), until=date(2025, 11, 23))
NOW = D3 + 7 * 3600  # 2025-11-23 17:00 UTC


def em_fbp(name: str, t: int, i: int, **extra) -> dict:
    # em 3 + fbp 1 points: an EMQ estimate of 4.0 (cap 10).
    return event(name, t, f"{name}-{i}", em=sha(f"p{i}@x.test"), fbp=f"fb.1.1700000000000.{i}")


def summary_log() -> list:
    records = []
    for i in range(2):  # previous period: 2 twins, all covered, lag 30 s
        ev = em_fbp("Purchase", D0 + i * 3600, i)
        records += [pixel(ev), capi([ev], sent_at=D0 + i * 3600 + 30)]
    for i in range(3):  # this period: 3 twins (lag 30 s) ...
        ev = em_fbp("Purchase", D2 + i * 3600, 10 + i)
        records += [pixel(ev), capi([ev], sent_at=D2 + i * 3600 + 30)]
    records.append(pixel(em_fbp("Purchase", D2 + 4 * 3600, 20)))  # ... a Pixel event alone,
    plain = event("Purchase", D3, "Purchase-21", em="someone@x.test")  # plaintext e-mail: 0 points
    records.append(capi([plain], sent_at=D3 + 90))  # ... a server event alone (lag 90 s)
    rejected = em_fbp("Purchase", D3 + 3600, 22)  # ... and a rejected one (4 points, lag 30 s)
    records.append(
        capi(
            [rejected],
            sent_at=D3 + 3630,
            status=400,
            error={"code": 100, "message": "Invalid parameter"},
        )
    )
    return records


@pytest.fixture
def summary_report(duck_engine, tmp_path, config):
    ingest([write_jsonl(tmp_path / "summary.jsonl", summary_log())], duck_engine, config=config)
    return build_report(duck_engine, PERIOD, config)


def test_render_text_headline_numbers(summary_report, config):
    lines = render_text(summary_report, config, now=NOW).splitlines()
    assert (
        lines[0] == "Event quality report: 2025-11-22 to 2025-11-23 (data 2025-11-20 to 2025-11-23)"
    )
    assert lines[1].startswith("Changes compare with")
    body = {line.split("  ")[0]: " ".join(line.split()) for line in lines}
    # EMQ: (4 + 4 + 4 + 0 + 4 rejected) / 5 sent = 3.2, Poor; before 4.0: -0.8.
    assert body["EMQ estimate"] == "EMQ estimate 3.2 (Poor) -0.8"
    # Coverage: 3 of 4 Pixel events have a server twin; before 2 of 2.
    assert body["Event coverage"] == "Event coverage 75.0% (goal 75%) -25.0 pp"
    # Dedup: 3 of the 4 accepted server events deduplicated; before 2 of 2.
    assert body["Dedup rate"] == "Dedup rate 75.0% -25.0 pp"
    assert body["Likely double counts"] == "Likely double counts 0 no change"
    assert body["Rejected by Meta"] == "Rejected by Meta 1 of 5 sent (20.0%) +1"
    assert body["Events with plaintext PII"] == "Events with plaintext PII 1 server events +1"
    # Lags 30, 30, 30, 30 (rejected too) and 90 s: median 30 s, as before.
    assert body["Median lag"] == "Median lag 30 s (real time) no change"
    fix = lines[lines.index("What to fix first") + 1 :]
    assert 1 <= len(fix) <= 4
    first = summary_report["diagnostics"][0]
    assert fix[0] == (
        f"  1. [{first['severity']}] {first['name']} ({first['affected']}/{first['total']} events)"
    )
    assert len(lines) <= MAX_LINES


def test_render_text_pipeline_and_silence_warning(summary_report, config):
    lines = render_text(summary_report, config, now=NOW).splitlines()
    # Newest accepted events: server at D3 (23 Nov 10:00; the rejected one an hour later
    # does not count), sent 90 s later, and browser at D2 + 4 h (22 Nov 14:00). Now is
    # D3 + 7 h: received 6.975 h ago, shown 7.0 h.
    assert (
        "Pipeline: last event received 7.0 h ago (2025-11-23 10:01 UTC); "
        "newest event times: browser 27.0 h ago, server 7.0 h ago"
    ) in lines
    warning = (
        "  Warning: the newest server event was sent 7.0 h ago (limit 6 h): "
        "is the Conversions API still sending?"
    )
    assert warning in lines
    # Five hours after it, no warning.
    assert warning.split(" is ")[0] not in render_text(summary_report, config, now=D3 + 5 * 3600)
    # A period that ended long ago cannot hold a recent event: no warning either.
    later = render_text(summary_report, config, now=D3 + 30 * DAY).splitlines()
    assert not any("Warning" in line for line in later)
    assert any("last event received 30.0 d ago" in line for line in later)


def test_render_text_reads_reports_without_the_newer_keys(summary_report, config):
    old = copy.deepcopy(summary_report)
    for block in (old["overall"], old["previous_overall"]):
        del block["dedup"]["rate"]
        for key in ("last_event_at", "last_browser_event_at", "last_server_event_at"):
            block["freshness"].pop(key, None)
        block["freshness"].pop("last_sent_at", None)
        block["freshness"].pop("days_without_events", None)
    old["period"].pop("comparison", None)
    lines = render_text(old, config, now=NOW).splitlines()
    assert lines[1] == "Changes compare with 2025-11-20 to 2025-11-21."
    assert "Pipeline: newest event on 2025-11-23 (no event times in this report)" in lines
    # Dedup rate from the statuses: (3 deduplicated + 0 fallback) / 4 accepted server events.
    assert any(" ".join(line.split()) == "Dedup rate 75.0% -25.0 pp" for line in lines)


def test_render_text_without_previous_and_with_empty_days(summary_report, config):
    report = copy.deepcopy(summary_report)
    report["previous_overall"] = None
    report["period"]["comparison"] = None
    report["overall"]["freshness"]["days_without_events"] = ["2025-11-22"]
    lines = render_text(report, config, now=NOW).splitlines()
    assert "  Days without events: 1 (2025-11-22)" in lines
    assert not any("vs previous" in line for line in lines)
    assert any(" ".join(line.split()) == "EMQ estimate 3.2 (Poor)" for line in lines)


def test_render_text_names_each_dataset(summary_report, config):
    report = copy.deepcopy(summary_report)
    report["by_dataset"]["2\x1b[31m"] = {
        "freshness": {"last_sent_at": "2025-11-21T17:00:00Z", "last_server_sent_at": None}
    }
    lines = render_text(report, config, now=NOW).splitlines()
    # Dataset 1's newest send is the server event's, D3 + 90 s: 6.975 h before NOW.
    assert "  dataset 1: last received 7.0 h ago, last server event sent 7.0 h ago" in lines
    # Control characters from the log never reach the terminal.
    assert "  dataset 2[31m: last received 2.0 d ago, last server event sent –" in lines


def test_cli_report_format_default_and_text(tmp_path, config, capsys, monkeypatch):
    log = write_jsonl(tmp_path / "summary.jsonl", summary_log())
    db = f"duckdb:///{tmp_path / 'cli.duckdb'}"
    assert cli.main(["ingest", str(log), "--db", db]) == 0
    capsys.readouterr()
    # Captured stdout is not a terminal: JSON, as for a pipe or a script.
    assert cli.main(["report", "--db", db]) == 0
    assert json.loads(capsys.readouterr().out)["report_version"] == 1
    assert cli.main(["report", "--db", db, "--format", "text"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("Event quality report: all data (data 2025-11-20 to 2025-11-23)\n")
    assert "Rejected by Meta" in text and len(text.splitlines()) <= MAX_LINES
    # At a terminal the default is the text; with --out, the file gets the JSON.
    monkeypatch.setattr(cli, "_stdout_is_terminal", lambda: True)
    assert cli.main(["report", "--db", db]) == 0
    assert capsys.readouterr().out.startswith("Event quality report:")
    out = tmp_path / "report.json"
    assert cli.main(["report", "--db", db, "--out", str(out)]) == 0
    assert json.loads(out.read_text())["overall"]["server_sent"] == 5 + 2
