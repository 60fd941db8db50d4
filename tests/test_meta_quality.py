"""Meta's own numbers (Dataset Quality API) beside ours: import, fetch, the report's
fields, the calibration and the two check rules, on hand-made logs whose estimates are
worked out below.

The log (dataset "1"): before each snapshot S1 and S2 (three days apart), ten server
events of each event name are sent one hour earlier, so each snapshot's 48 h window
holds exactly its own ten:
- Purchase: em + ph + external_id valid: 3 + 1.5 + 1.5 = 6.0 points -> estimate 6.0;
- AddToCart: em + ph: 4.5;
- Lead: em only: 3.0.
Four Purchase Pixel events before S1, two of them with a server twin: our coverage over
the 7 days before S1 is 2/4 = 0.5.
Meta's scores at S1 are 2 + 0.5 x ours (5.0, 4.25, 3.5), so the fit must find intercept
2, slope 0.5 and no error; the raw error is (1 + 0.25 + 0.5) / 3 = 0.583 points.
At S2 Meta's Purchase falls to 2.5 (a drop of 2.5, and 3.5 points from our 6.0).
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from dashboard.capture.graph_quality import FetchError, fetch_answer, find_token, parse_every
from dashboard.cli import main
from dashboard.core.filters import Filters
from dashboard.core.meta_quality import MetaAnswerError, parse_answer
from dashboard.ingest import ingest
from dashboard.outputs.check import Thresholds, run_check
from dashboard.outputs.report import build_report
from dashboard.quality.meta_compare import Comparison, fit_calibration, fit_line
from dashboard.store.database import make_engine
from dashboard.store.meta_snapshots import load_snapshots
from tests import logkit as lk
from tests.conftest import write_jsonl

S1 = lk.T0 + 3 * 86_400
S2 = S1 + 3 * 86_400
TOKEN = "EAAB-secret-token-value-123"
PARAMS = {
    "Purchase": {"em": lk.sha("a@x.com"), "ph": lk.sha("15551234567"), "external_id": "c1"},
    "AddToCart": {"em": lk.sha("a@x.com"), "ph": lk.sha("15551234567")},
    "Lead": {"em": lk.sha("a@x.com")},
}


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat().replace("+00:00", "Z")


def _log(path: Path) -> Path:
    records = []
    for snap in (S1, S2):
        sent = snap - 3600
        for name, user_data in PARAMS.items():
            events = [
                lk.event(name, sent - 60, f"{name}-{snap}-{i}", **user_data) for i in range(10)
            ]
            records.append(lk.capi(events, sent))
    for i in range(4):
        # Two of the four share an event_id with a Purchase server event before S1.
        event_id = f"Purchase-{S1}-{i}" if i < 2 else f"pixel-only-{i}"
        records.append(lk.pixel(lk.event("Purchase", S1 - 3600 - 60, event_id)))
    return write_jsonl(path, records)


def _entry(name: str, score: float, dedup_field: str = "dedupe_key_feedback") -> dict:
    """One event of an answer, in the documented shape (real-sources.md section 3)."""
    return {
        "event_name": name,
        "event_match_quality": {
            "composite_score": score,
            "match_key_feedback": [
                {
                    "identifier": "email",
                    "coverage": {"percentage": 100},
                    "potential_aly_acr_increase": {"percentage": 58.96, "description": "…"},
                }
            ],
            "diagnostics": [
                {
                    "name": "Server sending mismatched IP addresses",
                    "description": "…",
                    "solution": "…",
                    "percentage": 61.5,
                    "affected_event_count": 19567,
                    "total_event_count": 31830,
                }
            ],
        },
        "event_coverage": {"percentage": 34.1, "goal_percentage": 75, "description": "…"},
        dedup_field: [
            {
                "dedupe_key": "event_id",
                "browser_events_with_dedupe_key": {"percentage": 100, "description": "…"},
                "server_events_with_dedupe_key": {"percentage": 100, "description": "…"},
                "overall_browser_coverage_from_dedupe_key": {"percentage": 14.8},
            }
        ],
        "data_freshness": {"upload_frequency": "real_time", "description": "…"},
        "acr": {"percentage": 37.9, "description": "…"},
        "event_potential_aly_acr_increase": {"percentage": 32.9, "description": "…"},
    }


# The docs' field table spells it dedup_key_feedback at S1; the SDK's spelling at S2.
ANSWER_S1 = {
    "web": [
        _entry("Purchase", 5.0, "dedup_key_feedback"),
        _entry("AddToCart", 4.25, "dedup_key_feedback"),
        _entry("Lead", 3.5, "dedup_key_feedback"),
    ]
}
ANSWER_S2 = {"web": [_entry("Purchase", 2.5), _entry("AddToCart", 4.25), _entry("Lead", 3.4)]}


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def answers(tmp_path) -> tuple[Path, Path]:
    first = tmp_path / "dq_s1.json"
    first.write_text(json.dumps(ANSWER_S1))
    second = tmp_path / "dq_s2.json"
    second.write_text(json.dumps(ANSWER_S2))
    return first, second


def _imported(url: str, tmp_path: Path, config) -> None:
    engine = make_engine(url)
    ingest([_log(tmp_path / "log.jsonl")], engine, config=config)
    engine.dispose()


# ---------------------------------------------------------------------------
# Import


def test_import_both_spellings_report_fields_and_reimport_on_every_store(
    store_url, tmp_path, config, capsys, answers
):
    _imported(store_url, tmp_path, config)
    first, second = answers
    code, out, err = run(
        capsys, "meta", "import", str(first), "--dataset", "1", "--at", _iso(S1), "--db", store_url
    )
    assert code == 0, err
    assert "3 event name(s) stored" in out
    assert "calibrated on 3 snapshots" in out and "2.00 + 0.50" in out
    # Again: nothing added, and no second fit.
    code, out, _ = run(
        capsys, "meta", "import", str(first), "--dataset", "1", "--at", _iso(S1), "--db", store_url
    )
    assert code == 0 and "0 event name(s) stored, 3 already there" in out
    assert "calibrated" not in out
    code, out, _ = run(
        capsys, "meta", "import", str(second), "--dataset", "1", "--at", _iso(S2), "--db", store_url
    )
    assert code == 0 and "3 event name(s) stored" in out

    engine = make_engine(store_url)
    try:
        stored = load_snapshots(engine)
        assert len(stored) == 6
        # Every field kept as sent, both spellings of the dedup field.
        s1_purchase = next(s for s in stored if s.fetched_at == S1 and s.event_name == "Purchase")
        assert s1_purchase.raw == ANSWER_S1["web"][0]
        report = build_report(engine, Filters(), config)
        early = build_report(
            engine, Filters(until=datetime.fromtimestamp(S1, tz=UTC).date()), config
        )
    finally:
        engine.dispose()

    meta = report["by_event_name"]["Purchase"]["meta"]
    assert meta["fetched_at"] == _iso(S2)  # the newest in the period
    assert meta["emq"] == 2.5
    assert meta["event_coverage"] == 0.341
    assert meta["match_keys"] == {"email": 1.0}
    assert meta["dedup"] == {"event_id": {"browser": 1.0, "server": 1.0, "overall": 0.148}}
    assert meta["acr"] == 0.379
    assert meta["upload_frequency"] == "real_time"
    assert meta["diagnostics"] == ANSWER_S2["web"][0]["event_match_quality"]["diagnostics"]
    assert meta["our_emq_estimate"] == 6.0
    assert meta["emq_difference"] == -3.5
    assert report["meta_snapshots"] == [
        {"dataset_id": "1", "fetched_at": _iso(S1)},
        {"dataset_id": "1", "fetched_at": _iso(S2)},
    ]
    # Until S1's day: S1's snapshot, with its own 48 h window and the 7-day coverage.
    meta = early["by_event_name"]["Purchase"]["meta"]
    assert meta["fetched_at"] == _iso(S1) and meta["emq"] == 5.0
    assert meta["dedup"]["event_id"]["overall"] == 0.148  # read under the docs' spelling
    assert meta["our_emq_estimate"] == 6.0 and meta["our_event_coverage"] == 0.5
    assert early["meta_snapshots"] == [{"dataset_id": "1", "fetched_at": _iso(S1)}]
    # The calibration in use is the newest fit (on all six points after S2).
    assert report["emq_calibration"]["status"] == "calibrated"
    assert len(report["emq_calibration"]["points"]) == 6


def test_import_defaults_to_the_files_modification_time(tmp_path, capsys, answers):
    url = f"duckdb:///{tmp_path / 's.duckdb'}"
    first, _ = answers
    os.utime(first, (S1, S1))
    code, out, err = run(capsys, "meta", "import", str(first), "--dataset", "1", "--db", url)
    assert code == 0, err
    engine = make_engine(url)
    assert {s.fetched_at for s in load_snapshots(engine)} == {float(S1)}
    engine.dispose()
    # No event of ours at all: nothing to calibrate on, and it says so.
    assert "uncalibrated: 0 snapshot(s)" in out


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"data": []}', "no `web` list"),
        (b'{"error": {"code": 190, "message": "expired"}}', "Graph API error (code 190)"),
        (b'{"web": [{"event_name": "A"}, {"event_name": "A"}]}', "appears twice"),
        (b'{"web": [{"event_name": "A"}, {"score": 1}]}', "web[2] has no event_name"),
        (
            b'{"web": [{"event_name": "A", "event_match_quality": {"composite_score": 11}}]}',
            "is not 0-10",
        ),
        # Fields of the wrong shape, after a valid event: refused whole, never a traceback.
        (
            b'{"web": [{"event_name": "B"}, {"event_name": "A", "event_match_quality": "x"}]}',
            "web[2] (A): event_match_quality is not an object",
        ),
        (
            b'{"web": [{"event_name": "A", "data_freshness": [1]}]}',
            "data_freshness is not an object",
        ),
        (
            b'{"web": [{"event_name": "A", "dedupe_key_feedback": {"dedupe_key": "event_id"}}]}',
            "dedupe_key_feedback is not a list",
        ),
        (
            b'{"web": [{"event_name": "A", "event_match_quality": {"diagnostics": "x"}}]}',
            "diagnostics is not a list",
        ),
    ],
)
def test_a_malformed_answer_exits_2_and_stores_nothing(tmp_path, capsys, content, says):
    url = f"duckdb:///{tmp_path / 's.duckdb'}"
    path = tmp_path / "bad.json"
    # Some put a valid event before the fault: a half-read answer must store none of it.
    path.write_bytes(content)
    code, out, err = run(capsys, "meta", "import", str(path), "--dataset", "1", "--db", url)
    assert code == 2
    assert says in err and "nothing stored" in err
    engine = make_engine(url)
    assert load_snapshots(engine) == []
    engine.dispose()


def test_parse_needs_a_dataset_and_lifts_shares():
    with pytest.raises(MetaAnswerError, match="dataset id"):
        parse_answer(ANSWER_S1, "", S1)
    (purchase, *_) = parse_answer(json.dumps(ANSWER_S1), "9", S1)
    assert (purchase.emq, purchase.event_coverage, purchase.acr) == (5.0, 0.341, 0.379)
    # No score at all is allowed (Meta gives none for non-web events), and stays None.
    (bare,) = parse_answer({"web": [{"event_name": "Contact"}]}, "9", S1)
    assert bare.emq is None and bare.event_coverage is None


# ---------------------------------------------------------------------------
# Calibration


def test_fit_line_by_hand():
    # (5, 6), (7, 7), (9, 8): slope 0.5, intercept 3.5.
    assert fit_line([(5, 6), (7, 7), (9, 8)]) == pytest.approx((3.5, 0.5))
    # A negative best slope would map a better estimate lower: the mean offset instead.
    assert fit_line([(5, 8), (7, 7), (9, 6)]) == pytest.approx((0.0, 1.0))
    # Estimates that do not vary: the mean offset (8 - 6 = 2).
    assert fit_line([(6, 7), (6, 9)]) == pytest.approx((2.0, 1.0))


def _comparison(meta: float, ours: float, n: int = 10) -> Comparison:
    (snapshot,) = parse_answer({"web": [_entry("X", meta)]}, "1", S1)
    block = {"server_sent": n, "emq_estimate": ours}
    return Comparison(snapshot, block, block)


def test_calibration_needs_three_points_with_enough_events():
    two = fit_calibration([_comparison(5, 6), _comparison(4, 4)], S2)
    assert two.status == "uncalibrated" and "2 snapshot(s)" in two.reason
    assert two.apply(6.0) is None
    # Under 10 of our server events a point does not count.
    thin = fit_calibration([_comparison(5, 6), _comparison(4, 4), _comparison(3, 2, n=9)], S2)
    assert thin.status == "uncalibrated"
    fit = fit_calibration([_comparison(5, 6), _comparison(4.25, 4.5), _comparison(3.5, 3)], S2)
    assert fit.calibrated
    assert (fit.intercept, fit.slope) == pytest.approx((2.0, 0.5))
    assert fit.mae_raw == 0.583 and fit.mae_calibrated == 0.0
    assert fit.apply(8.0) == 6.0 and fit.apply(100.0) == 10.0  # clipped to 0-10


def test_without_snapshots_the_estimate_says_uncalibrated(sample_engine, config):
    report = build_report(sample_engine, Filters(), config)
    assert report["emq_calibration"]["status"] == "uncalibrated"
    assert report["overall"]["emq_estimate_calibrated"] is None
    assert report["meta_snapshots"] == []
    assert all(block["meta"] is None for block in report["by_event_name"].values())


def test_the_calibration_is_stored_with_its_points_and_applied_to_blocks(
    tmp_path, config, capsys, answers
):
    url = f"duckdb:///{tmp_path / 's.duckdb'}"
    _imported(url, tmp_path, config)
    run(capsys, "meta", "import", str(answers[0]), "--dataset", "1", "--at", _iso(S1), "--db", url)
    engine = make_engine(url)
    report = build_report(engine, Filters(), config)
    engine.dispose()
    fit = report["emq_calibration"]
    assert (fit["intercept"], fit["slope"], fit["mae_raw"], fit["mae_calibrated"]) == (
        2.0,
        0.5,
        0.583,
        0.0,
    )
    assert sorted((p["event_name"], p["meta"], p["estimate"]) for p in fit["points"]) == [
        ("AddToCart", 4.25, 4.5),
        ("Lead", 3.5, 3.0),
        ("Purchase", 5.0, 6.0),
    ]
    assert {p["fetched_at"] for p in fit["points"]} == {_iso(S1).replace("Z", "+00:00")}
    # Each block's calibrated estimate: Lead's 3.0 (both windows) maps to 2 + 1.5 = 3.5.
    assert report["by_event_name"]["Lead"]["emq_estimate_calibrated"] == 3.5
    assert report["by_event_name"]["Purchase"]["meta"]["our_emq_calibrated"] == 5.0


# ---------------------------------------------------------------------------
# check


def test_check_breaches_on_meta_drop_and_on_a_gap_with_our_estimate(
    tmp_path, config, capsys, answers
):
    url = f"duckdb:///{tmp_path / 's.duckdb'}"
    _imported(url, tmp_path, config)
    engine = make_engine(url)
    result = run_check(engine, config, Thresholds(), S2 + 60)
    skipped = {o.check: o.message for o in result.outcomes if o.status == "skipped"}
    assert "two Meta snapshots" in skipped["meta_emq_drop"]
    assert "no Meta snapshot" in skipped["meta_estimate_gap"]
    engine.dispose()
    for path, at in zip(answers, (S1, S2), strict=True):
        run(capsys, "meta", "import", str(path), "--dataset", "1", "--at", _iso(at), "--db", url)
    engine = make_engine(url)
    result = run_check(engine, config, Thresholds(), S2 + 60)
    # Before S2 only one snapshot per event exists: no drop to judge; the gap at S1 holds.
    before = run_check(engine, config, Thresholds(), S1 + 60)
    engine.dispose()
    drops = {o.subject: o for o in result.outcomes if o.check == "meta_emq_drop"}
    assert drops["Purchase (dataset 1)"].status == "breached"
    assert drops["Purchase (dataset 1)"].value == 2.5
    assert drops["Lead (dataset 1)"].status == "passed" and drops["Lead (dataset 1)"].value == 0.1
    assert drops["AddToCart (dataset 1)"].value == 0.0
    gaps = {o.subject: o for o in result.outcomes if o.check == "meta_estimate_gap"}
    assert gaps["Purchase (dataset 1)"].status == "breached"
    assert gaps["Purchase (dataset 1)"].value == 3.5
    assert "hashing" in gaps["Purchase (dataset 1)"].message
    assert gaps["Lead (dataset 1)"].status == "passed" and gaps["Lead (dataset 1)"].value == 0.4
    assert not result.ok
    assert {o.status for o in before.outcomes if o.check == "meta_emq_drop"} == {"skipped"}
    at_s1 = {o.subject: o.value for o in before.outcomes if o.check == "meta_estimate_gap"}
    assert at_s1 == {
        "AddToCart (dataset 1)": 0.25,
        "Lead (dataset 1)": 0.5,
        "Purchase (dataset 1)": 1.0,
    }
    # Thresholds move the verdicts: a 3 point drop and a 4 point gap are allowed.
    code, out, _ = run(
        capsys, "check", "--db", url, "--at", _iso(S2 + 60), "--format", "json",
        "--max-meta-emq-drop", "3", "--max-meta-gap", "4",
    )  # fmt: skip
    statuses = {
        (c["check"], c.get("subject")): c["status"]
        for c in json.loads(out)["checks"]
        if c["check"].startswith("meta_")
    }
    assert statuses[("meta_emq_drop", "Purchase (dataset 1)")] == "passed"
    assert statuses[("meta_estimate_gap", "Purchase (dataset 1)")] == "passed"


# ---------------------------------------------------------------------------
# Fetch, against a local server that answers as the Graph API did


class GraphStub:
    """A local Graph API: answers from a queue of (status, body) and records requests."""

    def __init__(self):
        self.queue: list[tuple[int, dict]] = []
        self.requests: list[dict] = []
        self.redirect_to: str | None = None
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                stub.requests.append({"path": self.path, "headers": dict(self.headers)})
                if stub.redirect_to:
                    self.send_response(302)
                    self.send_header("Location", stub.redirect_to + self.path)
                    self.end_headers()
                    return
                status, body = stub.queue.pop(0) if stub.queue else (500, {})
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def graph(monkeypatch):
    stub = GraphStub()
    monkeypatch.setenv("EQM_GRAPH_URL", stub.url)
    monkeypatch.setenv("META_ACCESS_TOKEN", TOKEN)
    yield stub
    stub.close()


def _error(code: int, message: str, subcode: int | None = None) -> dict:
    error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "A1"}
    if subcode:
        error["error_subcode"] = subcode
    return {"error": error}


def _fetch(capsys, url: str, *extra: str) -> tuple[int, str, str]:
    return run(
        capsys, "meta", "fetch", "--dataset", "1", "--db", url, "--retry-wait", "0.01", *extra
    )


def test_fetch_success_stores_the_answer_and_never_shows_the_token(graph, tmp_path, capsys):
    url = f"duckdb:///{tmp_path / 's.duckdb'}"
    graph.queue.append((200, ANSWER_S1))
    code, out, err = _fetch(capsys, url, "--agent", "Kommo")
    assert code == 0, err
    assert "3 event name(s) stored" in out
    (request,) = graph.requests
    assert request["path"].startswith("/v24.0/dataset_quality?dataset_id=1&fields=web")
    assert "agent_name=kommo" in request["path"]  # Meta wants it in lower case
    assert request["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in request["path"]  # never in a URL that could be logged
    assert TOKEN not in out + err
    engine = make_engine(url)
    stored = load_snapshots(engine)
    engine.dispose()
    assert sorted(s.event_name for s in stored) == ["AddToCart", "Lead", "Purchase"]
    assert {s.agent for s in stored} == {"Kommo"}


def test_the_token_is_not_sent_on_a_redirect_nor_to_plain_http(
    graph, tmp_path, capsys, monkeypatch
):
    """A redirect to another host gets no Authorization header; a plain-http Graph URL
    other than this machine is refused before anything is sent."""
    url = f"duckdb:///{tmp_path / 's.duckdb'}"
    target = GraphStub()
    try:
        target.queue.append((200, ANSWER_S1))
        graph.redirect_to = target.url.replace("127.0.0.1", "localhost")
        code, out, err = _fetch(capsys, url)
        assert code == 0, err
        assert graph.requests[0]["headers"]["Authorization"] == f"Bearer {TOKEN}"
        assert "Authorization" not in target.requests[0]["headers"]
        assert "3 event name(s) stored" in out
    finally:
        target.close()
    monkeypatch.setenv("EQM_GRAPH_URL", "http://graph.example.org")
    code, _, err = _fetch(capsys, url)
    assert code == 2 and "must be an https URL" in err


def test_fetch_token_error_190_exits_2_without_retry(graph, tmp_path, capsys):
    url = f"duckdb:///{tmp_path / 's.duckdb'}"
    graph.queue.append((400, _error(190, f"Error validating access token {TOKEN}", 463)))
    code, out, err = _fetch(capsys, url)
    assert code == 2
    assert "refused the access token (code 190" in err and "META_ACCESS_TOKEN" in err
    assert TOKEN not in out + err  # Meta's message quoted the token: it is masked
    assert len(graph.requests) == 1


def test_fetch_unknown_dataset_100_exits_2(graph, tmp_path, capsys):
    url = f"duckdb:///{tmp_path / 's.duckdb'}"
    graph.queue.append(
        (400, _error(100, "Unsupported get request. Object with ID '1' does not exist"))
    )
    code, _, err = _fetch(capsys, url)
    assert code == 2 and "does not know dataset 1" in err and "code 100" in err
    assert len(graph.requests) == 1


@pytest.mark.parametrize("code", [17, 80004])
def test_fetch_retries_a_rate_limit_then_succeeds(graph, tmp_path, capsys, code):
    url = f"duckdb:///{tmp_path / 's.duckdb'}"
    graph.queue += [(400, _error(code, "User request limit reached"))] * 2 + [(200, ANSWER_S1)]
    status, out, err = _fetch(capsys, url)
    assert status == 0, err
    assert len(graph.requests) == 3
    assert err.count(f"rate limit (code {code})") == 2 and "retrying in 0.01 s" in err
    assert "retrying in 0.02 s" in err  # the wait doubles
    assert "3 event name(s) stored" in out


def test_fetch_gives_up_after_its_retries(graph, tmp_path, capsys):
    url = f"duckdb:///{tmp_path / 's.duckdb'}"
    graph.queue += [(400, _error(80004, "too many calls"))] * 5
    code, _, err = _fetch(capsys, url, "--retries", "3")
    assert code == 2 and len(graph.requests) == 3
    engine = make_engine(url)
    assert load_snapshots(engine) == []
    engine.dispose()


def test_fetch_every_keeps_fetching(graph, tmp_path, capsys):
    url = f"duckdb:///{tmp_path / 's.duckdb'}"
    graph.queue += [(200, ANSWER_S1), (200, ANSWER_S2)]
    code, out, err = _fetch(capsys, url, "--every", "1s", "--times", "2")
    assert code == 0, err
    assert len(graph.requests) == 2
    engine = make_engine(url)
    times = {s.fetched_at for s in load_snapshots(engine)}
    engine.dispose()
    assert len(times) == 2 and max(times) - min(times) >= 1


def test_fetch_without_a_token_says_where_to_put_it(monkeypatch, tmp_path):
    monkeypatch.delenv("META_ACCESS_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FetchError, match="no access token"):
        fetch_answer("1", find_token([tmp_path / "none.toml"]) or "")
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(f'[meta]\naccess_token = "{TOKEN}"\n')
    assert find_token([secrets]) == TOKEN


def test_every_takes_durations():
    assert parse_every("6h") == 21_600 and parse_every("30m") == 1_800
    assert parse_every("1d") == 86_400 and parse_every("90") == 90
    with pytest.raises(ValueError, match="duration"):
        parse_every("often")


# ---------------------------------------------------------------------------
# The sample's answers (the demo's)


def test_the_bundled_sample_answers_come_from_the_generator(tmp_path):
    from dashboard.core.config import SAMPLE_META_DIR
    from dashboard.sample.meta_answers import write_sample_answers

    written = write_sample_answers(tmp_path)
    assert len(written) == 6
    for path, _ in written:
        assert path.read_bytes() == (SAMPLE_META_DIR / path.name).read_bytes(), path.name


def test_the_sample_snapshots_catch_the_planted_fault(tmp_path, config):
    from dashboard.cli.meta import import_sample_snapshots
    from dashboard.core.config import SAMPLE_LOG_PATH

    engine = make_engine(f"duckdb:///{tmp_path / 's.duckdb'}")
    ingest([SAMPLE_LOG_PATH], engine, config=config)
    assert import_sample_snapshots(engine, config).endswith("36 stored")
    assert import_sample_snapshots(engine, config).endswith("0 stored")
    end = datetime(2026, 11, 5, tzinfo=UTC).timestamp()
    result = run_check(engine, config, Thresholds(), end)
    engine.dispose()
    breached = {(o.check, o.subject) for o in result.outcomes if o.status == "breached"}
    meta = {pair for pair in breached if pair[0].startswith("meta_")}
    assert meta == {
        ("meta_emq_drop", "Purchase (dataset 1111111111)"),
        ("meta_estimate_gap", "Purchase (dataset 1111111111)"),
    }
