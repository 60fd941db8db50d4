"""From a finding to its events (dashboard.quality.drilldown): each finding, parameter
status, dedup status and Meta error lists exactly the events it counts, with why in
words, on every backend; hand-made logs with the expected rows worked out by hand, and
the bundled sample, where every list's total equals its finding's count."""

from __future__ import annotations

import csv
import io
import json

import pytest
from conftest import write_jsonl
from logkit import T0, capi, event, pixel, sha

from dashboard.core.config import SAMPLE_LOG_PATH
from dashboard.core.filters import Filters
from dashboard.core.selection import Selection, SelectionError
from dashboard.ingest import ingest
from dashboard.outputs import event_list
from dashboard.quality import drilldown
from dashboard.quality.diagnostics import COVERAGE_ADVICE, diagnose
from dashboard.store.database import make_engine

FBC = "fb.1.1763632800000.AbCdEf"
ERROR = {
    "message": "Invalid parameter",
    "type": "OAuthException",
    "code": 100,
    "error_subcode": 2804003,
    "error_user_title": "Invalid fbc Parameter",
    "error_user_msg": "The fbc sent for jane.doe@example.com is invalid.",
    "fbtrace_id": "AbC123xyz",
}


def load(engine, tmp_path, config, records, name="log.jsonl") -> None:
    ingest([write_jsonl(tmp_path / name, records)], engine, config=config)


def listed(engine, config, selection, **kwargs):
    frame, total = drilldown.event_page(engine, Filters(), config, selection, **kwargs)
    return frame, total


def _faults_log() -> list:
    return [
        # line 1: plaintext e-mail in em (PII), the value never stored
        capi([event("Purchase", T0, "o1", em="Jane.Doe@Example.com")], sent_at=T0 + 30),
        # line 2: an upper-case SHA-256 in em (invalid, no PII)
        capi([event("Purchase", T0 + 60, "o2", em=sha("a@b.co").upper())], sent_at=T0 + 90),
        # line 3: fbc without the fb.1. prefix
        capi([event("Purchase", T0 + 120, "o3", fbc="AbCdEf")], sent_at=T0 + 150),
        # line 4: event_time in milliseconds
        capi([event("Purchase", (T0 + 180) * 1000, "o4", fbc=FBC)], sent_at=T0 + 210),
        # line 5: a batch of two that Meta rejected, with its user title, message and trace
        capi(
            [event("Lead", T0 + 240, "l1", fbc=FBC), event("Lead", T0 + 241, "l2", fbc=FBC)],
            sent_at=T0 + 270,
            status=400,
            error=ERROR,
        ),
        # line 6: a Pixel event no server event answers
        pixel(event("PageView", T0 + 300, "p1")),
    ]


def test_each_fault_lists_its_events_with_why(engine, tmp_path, config):
    load(engine, tmp_path, config, _faults_log())

    pii, total = listed(engine, config, Selection("finding", finding="unhashed_pii"))
    assert total == 1
    row = pii.iloc[0]
    assert (row["event_id"], row["field"], row["line"]) == ("o1", "em", 1)
    assert "plaintext e-mail" in row["why"]
    assert row["source_file"].endswith("log.jsonl")
    # The plaintext is nowhere in the list.
    assert "jane" not in pii.to_csv().lower()

    invalid, total = listed(
        engine, config, Selection("parameter", parameter="em", status="invalid")
    )
    assert total == 1
    assert (invalid.iloc[0]["event_id"], invalid.iloc[0]["why"][:14]) == ("o2", "upper-case hex")
    unhashed, total = listed(
        engine, config, Selection("parameter", parameter="em", status="unhashed")
    )
    assert list(unhashed["event_id"]) == ["o1"]
    # absent em: o3, o4 and the two rejected Leads (server events only)
    _, total = listed(engine, config, Selection("parameter", parameter="em", status="absent"))
    assert total == 4

    fbc, total = listed(engine, config, Selection("finding", finding="invalid_fbc"))
    assert total == 1 and fbc.iloc[0]["event_id"] == "o3"
    assert fbc.iloc[0]["field"] == "fbc" and "fb.1. prefix" in fbc.iloc[0]["why"]

    ms, total = listed(engine, config, Selection("finding", finding="event_time_in_ms"))
    assert total == 1 and ms.iloc[0]["event_id"] == "o4"
    assert ms.iloc[0]["why"] == "event_time in milliseconds"

    rejected, total = listed(
        engine, config, Selection("finding", finding="rejected_events"), sort="event_id",
        descending=False,
    )  # fmt: skip
    assert total == 2
    assert list(rejected["event_id"]) == ["l1", "l2"]
    assert list(rejected["event_in_line"]) == [1, 2]
    first = rejected.iloc[0]
    assert (first["error_code"], first["error_subcode"]) == (100, 2804003)
    assert first["error_user_title"] == "Invalid fbc Parameter"
    assert first["fbtrace_id"] == "AbC123xyz"
    assert "jane.doe@example.com" not in first["error_user_msg"]
    assert first["why"] == "Meta error 100/2804003: Invalid fbc Parameter"
    # The same events from the error row's link.
    _, total = listed(engine, config, Selection("error", error_code=100, error_subcode=2804003))
    assert total == 2

    gaps, total = listed(engine, config, Selection("dedup", dedup="browser_only"))
    assert total == 1 and gaps.iloc[0]["event_id"] == "p1"
    assert gaps.iloc[0]["why"] == "no server event with this event_id within 48 h"


def test_reuse_is_listed_and_retries_are_not(engine, tmp_path, config):
    same = [event("Purchase", T0 + k * 600, "same", custom_data={"value": k}) for k in range(3)]
    retried = event("Purchase", T0 + 5000, "r1")
    load(
        engine,
        tmp_path,
        config,
        [
            # One id over three different purchases (three event_times), the last one
            # retried: 4 events under a reused id.
            *[capi([ev], sent_at=ev["event_time"] + 30) for ev in same],
            capi([same[2]], sent_at=same[2]["event_time"] + 900),
            # A retry of one purchase: one event_time twice, no reuse.
            capi([retried], sent_at=T0 + 5030),
            capi([retried], sent_at=T0 + 5090),
        ],
    )
    reused, total = listed(engine, config, Selection("finding", finding="reused_event_id"))
    assert total == 4
    assert set(reused["event_id"]) == {"same"}
    assert set(reused["why"]) == {
        "this event_id is used by 4 events at 3 different times; Meta keeps one"
    }
    repeats, total = listed(engine, config, Selection("dedup", dedup="same_channel_repeat"))
    # The dedup status sees every later event under an id as a repeat (three of "same",
    # one of r1): only the reuse list tells different purchases from retries.
    assert total == 4 and sorted(repeats["event_id"]) == ["r1", "same", "same", "same"]


def _near_miss_log(near: int, nothing: int) -> list:
    """`near` Pixel Purchases whose server twin carries a suffixed id, `nothing` without
    any server event; the same person (fbp) on both sides."""
    out = []
    for k in range(near + nothing):
        t = T0 + k * 3600
        fbp = f"fb.1.1763632800000.{1000 + k}"
        out.append(pixel(event("Purchase", t, f"order-{k}", fbp=fbp)))
        if k < near:
            out.append(capi([event("Purchase", t + 60, f"order-{k}-s", fbp=fbp)], sent_at=t + 90))
    return out


def test_near_miss_ids_are_listed_side_by_side(engine, tmp_path, config):
    load(engine, tmp_path, config, _near_miss_log(10, 0))
    rows, total = listed(
        engine, config, Selection("finding", finding="transformed_event_id"), sort="event_id",
        descending=False,
    )  # fmt: skip
    assert total == 10
    assert (rows.iloc[0]["event_id"], rows.iloc[0]["twin_event_id"]) == ("order-0-s", "order-0")
    assert "its Pixel twin has event_id 'order-0'" in rows.iloc[0]["why"]
    # The server sent all ten: the advice is to fix the id, not to send from the server.
    coverage = [d for d in diagnose(engine, Filters(), config) if d.key == "low_event_coverage"]
    assert len(coverage) == 1 and coverage[0].affected == 10
    assert coverage[0].how_to_fix == COVERAGE_ADVICE["all_near"]


def test_coverage_advice_splits_near_misses_from_events_never_sent(engine, tmp_path, config):
    load(engine, tmp_path, config, _near_miss_log(6, 4))
    coverage = [d for d in diagnose(engine, Filters(), config) if d.key == "low_event_coverage"]
    assert coverage[0].how_to_fix.startswith(
        "6 of the 10 uncovered Pixel events have a server event under a different event_id"
    )
    assert "Send the other 4 from the server too" in coverage[0].how_to_fix


def test_without_near_misses_the_advice_is_to_send_from_the_server(engine, tmp_path, config):
    load(engine, tmp_path, config, _near_miss_log(0, 10))
    coverage = [d for d in diagnose(engine, Filters(), config) if d.key == "low_event_coverage"]
    assert coverage[0].how_to_fix == COVERAGE_ADVICE["none_sent"]


# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sample_engine(tmp_path_factory):
    folder = tmp_path_factory.mktemp("drill")
    engine = make_engine(f"duckdb:///{folder / 'store.duckdb'}")
    ingest([SAMPLE_LOG_PATH], engine)
    yield engine
    engine.dispose()


# Findings whose number is not a count of events: batches without an answer, a batch's
# shortfall (Meta does not say which events), and the parameter gap's largest single
# parameter (the list holds events lacking any of them).
NOT_EVENT_COUNTS = {"unanswered_batches", "events_received_shortfall", "parameter_gap"}


def test_every_sample_finding_lists_exactly_its_events(sample_engine, config):
    found = diagnose(sample_engine, Filters(), config)
    assert len(found) >= 8
    for finding in found:
        selection = Selection(
            "finding",
            finding=finding.key,
            event_name=finding.event_name,
            campaign=finding.campaign,
            funnel_stage=finding.funnel_stage,
            on_parameter=finding.parameter,
        )
        _, total = drilldown.event_page(sample_engine, Filters(), config, selection, limit=1)
        if finding.key in NOT_EVENT_COUNTS:
            assert total >= finding.affected > 0, finding.key
        else:
            assert total == finding.affected, finding.key


def test_every_rule_has_a_list():
    from dashboard.quality.diagnostics import RULES, Rule
    from dashboard.quality.integrity import DIAGNOSTIC_KEYS

    keys = {rule.key for rule in RULES if isinstance(rule, Rule)} | set(DIAGNOSTIC_KEYS)
    assert keys == set(drilldown.FINDINGS)


def test_pages_cover_the_list_once_and_the_export_holds_every_row(sample_engine, config):
    selection = Selection("finding", finding="low_event_coverage")
    seen = []
    page_rows, total = drilldown.event_page(
        sample_engine, Filters(), config, selection, sort="event_time", limit=100
    )
    assert total > 300  # more than one page, more than the old 1,000-row cap's share
    for offset in range(0, total, 100):
        page, _ = drilldown.event_page(
            sample_engine, Filters(), config, selection, sort="event_time", offset=offset,
            limit=100,
        )  # fmt: skip
        seen += list(zip(page["source_file"], page["line"], page["event_in_line"], strict=True))
        times = list(page["event_time"])
        assert times == sorted(times, reverse=True)
    assert len(seen) == total == len(set(seen))
    # The streamed CSV holds every row, in small chunks too.
    chunks = drilldown.iter_events(sample_engine, Filters(), config, selection, chunk_rows=97)
    text = event_list.csv_bytes(chunks).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == total
    assert rows[0]["Why"] == "no server event with this event_id within 48 h"


def test_a_subject_narrows_the_list(sample_engine, config):
    everything = Selection("finding", finding="low_event_coverage")
    one = everything.with_subject(event_name="ViewContent")
    _, all_total = drilldown.event_page(sample_engine, Filters(), config, everything, limit=1)
    rows, one_total = drilldown.event_page(sample_engine, Filters(), config, one, limit=50)
    assert 0 < one_total < all_total
    assert set(rows["event_name"]) == {"ViewContent"}
    # A subject outside the slice's own filter lists nothing.
    other = Filters(event_names=("PageView",))
    _, none = drilldown.event_page(sample_engine, other, config, one, limit=1)
    assert none == 0


def test_jsonl_and_table_outputs(sample_engine, config):
    out = io.StringIO()
    selection = Selection("finding", finding="unhashed_pii")
    written = event_list.write_events(
        sample_engine, Filters(), config, selection, out, form="jsonl", limit=5
    )
    lines = out.getvalue().splitlines()
    assert written == 5 == len(lines)
    record = json.loads(lines[0])
    assert set(record) == set(drilldown.READABLE_COLUMNS)
    assert record["field"] and "plaintext" in record["why"]
    out = io.StringIO()
    event_list.write_events(sample_engine, Filters(), config, selection, out, limit=3)
    text = out.getvalue().splitlines()
    assert text[0].startswith("Event time (UTC)") and len(text) == 2 + 3 + 1
    assert text[-1] == "3 events (Finding: unhashed_pii)"


def test_selection_in_a_url_round_trips_and_bad_ones_say_why():
    chosen = Selection("parameter", parameter="em", status="unhashed", campaign="spring")
    assert Selection.from_query(chosen.to_query()) == chosen
    assert Selection.from_query({"campaign": ["spring"]}) is None  # a filter, no selection
    with pytest.raises(SelectionError, match="unknown parameter 'email'"):
        Selection("parameter", parameter="email", status="invalid")
    with pytest.raises(SelectionError, match="unknown status"):
        Selection("parameter", parameter="em", status="missing")
    with pytest.raises(SelectionError, match="unknown dedup status"):
        Selection("dedup", dedup="gap")
    with pytest.raises(SelectionError, match="code must be a number"):
        Selection.from_query({"list": "error", "code": "abc"})


# ---------------------------------------------------------------------------
# The same from the command line
def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    from dashboard.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def faults_store(tmp_path, config):
    url = f"duckdb:///{tmp_path / 'faults.duckdb'}"
    engine = make_engine(url)
    load(engine, tmp_path, config, _faults_log())
    engine.dispose()
    return url


def test_cli_lists_events_in_every_format(faults_store, capsys):
    code, out, _ = run_cli(capsys, "events", "--db", faults_store, "--finding", "rejected_events",
                           "--format", "csv", "--sort", "line", "--oldest-first")  # fmt: skip
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["event_id"], r["line"], r["event_in_line"]) for r in rows] == [
        ("l1", "5", "1"),
        ("l2", "5", "2"),
    ]
    assert rows[0]["error_user_title"] == "Invalid fbc Parameter"
    assert rows[0]["fbtrace_id"] == "AbC123xyz"
    code, out, _ = run_cli(capsys, "events", "--db", faults_store, "--parameter", "em",
                           "--status", "unhashed", "--format", "jsonl")  # fmt: skip
    records = [json.loads(line) for line in out.splitlines()]
    assert [(r["event_id"], r["field"]) for r in records] == [("o1", "em")]
    assert "jane" not in out.lower()  # the plaintext is never printed
    code, out, _ = run_cli(capsys, "events", "--db", faults_store, "--dedup", "browser_only")
    assert code == 0 and out.splitlines()[-1] == "1 events (Dedup status: browser_only)"


def test_cli_findings_lists_every_key_with_what_it_affects(faults_store, capsys):
    code, out, _ = run_cli(capsys, "findings", "--db", faults_store)
    assert code == 0
    lines = {line.split()[0]: line for line in out.splitlines()[1:] if line.strip()}
    assert set(drilldown.FINDINGS) <= set(lines)
    assert lines["unhashed_pii"].split()[1:3] == ["critical", "1"]
    assert lines["stale_events"].split()[1:3] == ["-", "0"]


def test_cli_usage_errors_exit_2(faults_store, tmp_path, capsys):
    code, _, err = run_cli(capsys, "events", "--db", faults_store, "--finding", "nope")
    assert code == 2 and "unknown finding 'nope'" in err
    code, _, err = run_cli(capsys, "events", "--db", faults_store, "--parameter", "em")
    assert code == 2 and "--status" in err
    missing = tmp_path / "typo.duckdb"
    code, _, err = run_cli(capsys, "events", "--db", f"duckdb:///{missing}", "--finding",
                           "unhashed_pii")  # fmt: skip
    assert code == 2 and "no store at" in err and not missing.exists()
    with pytest.raises(SystemExit) as exited:
        run_cli(capsys, "events", "--db", faults_store)  # no selection
    assert exited.value.code == 2
