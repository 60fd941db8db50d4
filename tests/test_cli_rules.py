"""The command line is safe to put in CI (issue #16, part 5): a read command never creates
a store, a reversed period and a share given as a percentage are usage errors (exit 2),
an unknown filter value is warned about with the closest real one, `check --help` gives
every threshold's meaning and default, `check` reports every check as passed, breached or
skipped (with the reason), and both JSON outputs carry schema_version and follow the
schemas published in schemas/.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import write_jsonl
from jsonschema import Draft202012Validator
from logkit import T0, capi, event, pixel, sha

from dashboard.cli import build_parser, main
from dashboard.core.config import REPO_ROOT
from dashboard.outputs.check import CHECKS
from dashboard.outputs.options import MissingStore, open_existing_store, share
from dashboard.sample.generator import write_sample_log
from dashboard.store.database import create_schema, make_engine

SCHEMAS = REPO_ROOT / "schemas"


def validator(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def errors(name: str, document: dict) -> list[str]:
    return [e.message for e in validator(name).iter_errors(document)]


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory) -> str:
    """The seeded sample (1,500 events over 21 days, last day 2026-10-21) in DuckDB."""
    folder = tmp_path_factory.mktemp("sample")
    log = folder / "seed7.jsonl"
    write_sample_log(log, target_events=1_500, seed=7, days=21)
    db = f"duckdb:///{folder / 'sample.duckdb'}"
    assert main(["ingest", str(log), "--db", db]) == 0
    return db


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


# ---------------------------------------------------------------------------
# 1. Read commands never create a store.
@pytest.mark.parametrize("command", ["report", "check"])
@pytest.mark.parametrize("backend", ["duckdb", "sqlite"])
def test_a_missing_store_exits_2_and_is_not_created(tmp_path, capsys, command, backend):
    path = tmp_path / f"evnts.{backend}"  # the typo in --db
    code, out, err = run(capsys, command, "--db", f"{backend}:///{path}")
    assert code == 2
    assert out == ""
    assert err == f"error: no store at {path}; import a log first\n"
    assert not path.exists()


def test_the_default_store_is_not_created_either(tmp_path, capsys, monkeypatch):
    path = tmp_path / "events.duckdb"
    monkeypatch.setenv("EQM_DB_URL", f"duckdb:///{path}")
    assert run(capsys, "report", "--format", "json")[0] == 2
    assert not path.exists()


def test_open_existing_store_on_every_backend(store_url):
    # Fresh DuckDB and SQLite paths, and a fresh PostgreSQL database without tables.
    with pytest.raises(MissingStore, match="; import a log first$"):
        open_existing_store(store_url)
    if not store_url.startswith("postgresql"):
        assert not Path(store_url.split(":///", 1)[1]).exists()
    made = make_engine(store_url)
    create_schema(made)  # what ingest does first
    made.dispose()
    engine = open_existing_store(store_url)
    engine.dispose()


def test_ingest_still_creates_the_store(tmp_path, capsys):
    path = tmp_path / "new.duckdb"
    log = write_jsonl(tmp_path / "one.jsonl", [pixel(event("PageView", T0, "p1"))])
    assert run(capsys, "ingest", str(log), "--db", f"duckdb:///{path}")[0] == 0
    assert path.exists()
    assert run(capsys, "report", "--format", "json", "--db", f"duckdb:///{path}")[0] == 0


# ---------------------------------------------------------------------------
# 2. A reversed period.
@pytest.mark.parametrize("command", ["report", "check"])
def test_since_after_until_exits_2(tmp_path, capsys, command):
    db = f"duckdb:///{tmp_path / 'none.duckdb'}"
    code, _, err = run(
        capsys, command, "--db", db, "--since", "2026-10-21", "--until", "2026-10-20"
    )
    assert code == 2
    # The period is judged before the store is looked for.
    assert err == "error: --since 2026-10-21 is after --until 2026-10-20\n"


def test_one_day_period_is_fine(sample_db, capsys):
    code, _, err = run(
        capsys, "report", "--format", "json", "--db", sample_db, "--since", "2026-10-21",
        "--until", "2026-10-21",
    )  # fmt: skip
    assert (code, err) == (0, "")


# ---------------------------------------------------------------------------
# 3. Unknown filter values.
def test_unknown_campaign_names_the_closest_real_one(sample_db, capsys):
    code, out, err = run(
        capsys, "report", "--format", "json", "--db", sample_db,
        "--campaign", "black_fridy_retargeting",
    )  # fmt: skip
    assert code == 0  # the command still runs
    assert err == (
        "warning: no event has --campaign 'black_fridy_retargeting' in the store; "
        "closest: black_friday_retargeting\n"
    )
    assert json.loads(out)["overall"]["browser_events"] == 0


def test_unknown_values_of_every_dimension_are_warned_about(sample_db, capsys):
    code, _, err = run(
        capsys, "check", "--db", sample_db, "--at", "latest", "--format", "json",
        "--event", "purchase", "--channel", "serverr", "--dataset", "nope",
        "--campaign", "black_friday_retargeting",  # a real one: no warning
    )  # fmt: skip
    assert code in (0, 1)  # unchanged by the warnings
    lines = err.splitlines()  # in the order of core.filters.FILTER_DIMENSIONS
    assert lines[0] == (
        "warning: no event has --dataset 'nope' in the store; known: 1111111111, 2222222222"
    )
    assert lines[1] == "warning: no event has --event 'purchase' in the store; closest: Purchase"
    assert lines[2] == "warning: no event has --channel 'serverr' in the store; closest: server"
    assert len(lines) == 3


# ---------------------------------------------------------------------------
# 4. Shares are 0-1.
def share_options() -> list[str]:
    check = build_parser()._subparsers._group_actions[0].choices["check"]  # noqa: SLF001
    return sorted(a.option_strings[0] for a in check._actions if a.type is share)  # noqa: SLF001


def test_the_share_options_are_the_three_rates():
    assert share_options() == ["--max-error-rate", "--max-volume-drop", "--min-coverage"]


@pytest.mark.parametrize(
    "value, hint", [("75", ": use 0.75 for 75%"), ("2", ": use 0.02 for 2%"), ("-0.1", "")]
)
@pytest.mark.parametrize("option", share_options())
def test_a_percentage_for_a_share_exits_2(option, value, hint, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["check", option, value])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.splitlines()[-1]
    assert err.endswith(f"argument {option}: must be a share from 0 to 1, not {value}{hint}")


# ---------------------------------------------------------------------------
# 5. check --help.
def test_check_help_explains_every_threshold_with_its_default():
    check = build_parser()._subparsers._group_actions[0].choices["check"]  # noqa: SLF001
    thresholds = [
        a for a in check._actions  # noqa: SLF001
        if a.option_strings and a.option_strings[0].startswith(("--min-", "--max-"))
    ]  # fmt: skip
    assert len(thresholds) == 12
    for action in thresholds:
        text = action.help % {"default": action.default}
        assert "(default " in text, action.option_strings
        assert len(text.split()) >= 8, text  # a sentence, not a label
    text = " ".join(check.format_help().split())
    assert (
        "--max-unhashed-pii N most server events with plaintext personal data (e-mail, phone, "
        "name, ...) in a field Meta wants SHA-256 hashed, a count (default 0)" in text
    )
    assert (
        "Exit codes: 0 no check breached, 1 at least one breached, 2 usage or store error" in text
    )


# ---------------------------------------------------------------------------
# 6. Every check is reported; skipped ones with the reason.
def good(name: str, t: int, i: int, **user) -> dict:
    user = {
        "em": sha(f"p{i}@x.test"),
        "external_id": f"u{i}",
        "fbp": f"fb.1.1700000000000.{i}",
        **user,
    }
    return event(name, t, f"{name}-{i}", **user)


def tiny_log(tmp_path: Path, **server_user) -> str:
    """Three Pixel Purchases (10:00, 10:10, 10:20 UTC on 2025-11-20) and the third's server
    twin, sent at 10:20:05; nothing in the week before."""
    records = [pixel(good("Purchase", T0 + k * 600, k)) for k in range(3)]
    records.append(capi([good("Purchase", T0 + 1200, 2, **server_user)], sent_at=T0 + 1205))
    db = f"duckdb:///{tmp_path / 'tiny.duckdb'}"
    assert main(["ingest", str(write_jsonl(tmp_path / "tiny.jsonl", records)), "--db", db]) == 0
    return db


AT = "2025-11-20T11:00:00Z"  # T0 + 1 h: the window is the 24 h before


def test_skipped_checks_on_a_tiny_log_are_listed_with_reasons(tmp_path, capsys):
    db = tiny_log(tmp_path)
    capsys.readouterr()
    code, out, _ = run(capsys, "check", "--db", db, "--at", AT)
    assert code == 0
    # 4 events; the server event 40 min (2,395 s) before 11:00; 1 server event and 3
    # browser events, under the 20 an event name needs to be judged; no baseline.
    assert out.splitlines() == [
        "OK: 7 of 12 checks passed, 5 skipped",
        "passed no_events [all]: 4 events sent in the 24 h before 2025-11-20 11:00 UTC",
        "passed server_silence [dataset 1]: last server event sent 40 min ago, "
        "at 2025-11-20 10:20 UTC; limit 6 h",
        "passed likely_double_counted [all]: 0 server events are likely counted twice (limit 0)",
        "passed error_rate [all]: 0.0% of server events were rejected by Meta (limit 2.0%)",
        "passed token_errors [all]: 0 events rejected for the access token or permissions "
        "(190/200) (limit 0)",
        "passed stale_events [all]: 0 events were sent more than 7 days after they happened "
        "(limit 0)",
        "passed unhashed_pii [all]: 0 server events carried plaintext personal data in a field "
        "Meta wants SHA-256 hashed (limit 0)",
        "skipped emq_estimate: no event name with ≥20 server events in the window",
        "skipped event_coverage: no event name with ≥20 browser events in the window",
        "skipped server_volume_drop: no server event in the 7 days before the window to "
        "compare with",
        "skipped meta_emq_drop: no event name has two Meta snapshots with a score "
        "(meta import / meta fetch)",
        "skipped meta_estimate_gap: no Meta snapshot with a score and ≥10 of our server "
        "events of its event name in the 48 h before it",
    ]
    code, out, _ = run(capsys, "check", "--db", db, "--at", AT, "--format", "json")
    result = json.loads(out)
    assert errors("check", result) == []
    assert result["checks_run"] == list(CHECKS)
    assert result["summary"] == {"passed": 7, "breached": 0, "skipped": 5}
    skipped = [c for c in result["checks"] if c["status"] == "skipped"]
    assert skipped[0] == {
        "check": "emq_estimate",
        "status": "skipped",
        "value": None,
        "threshold": 4.0,
        "reason": "no event name with ≥20 server events in the window",
    }
    silence = next(c for c in result["checks"] if c["check"] == "server_silence")
    assert (silence["subject"], silence["value"], silence["threshold"]) == ("dataset 1", 0.7, 6.0)
    # --min-events 1 judges Purchase on both: EMQ from em 3 + external_id 1.5 + fbp 1;
    # coverage: 1 of 3 browser events has its twin.
    code, out, _ = run(
        capsys, "check", "--db", db, "--at", AT, "--format", "json", "--min-events", "1"
    )
    judged = {(c["check"], c.get("subject")): c for c in json.loads(out)["checks"]}
    assert judged[("emq_estimate", "Purchase")]["value"] == 5.5
    assert judged[("event_coverage", "Purchase")]["value"] == 0.3333
    assert judged[("event_coverage", "Purchase")]["status"] == "breached"
    assert code == 1


def test_max_unhashed_pii_breaches_on_one_plaintext_email(tmp_path, capsys):
    db = tiny_log(tmp_path, em="Jane.Doe@example.com")  # plaintext, where a hash belongs
    capsys.readouterr()
    code, out, _ = run(capsys, "check", "--db", db, "--at", AT, "--format", "json")
    assert code == 1
    result = json.loads(out)
    assert result["breaches"] == [
        {
            "check": "unhashed_pii",
            "subject": "all",
            "value": 1,
            "threshold": 0,
            "message": "1 server events carried plaintext personal data in a field Meta "
            "wants SHA-256 hashed (limit 0)",
        }
    ]
    assert result["summary"] == {"passed": 6, "breached": 1, "skipped": 5}
    code, out, _ = run(capsys, "check", "--db", db, "--at", AT, "--max-unhashed-pii", "1")
    assert code == 0
    assert "passed unhashed_pii [all]: 1 server events carried" in out


# ---------------------------------------------------------------------------
# 7. Versioned JSON with published schemas.
def test_report_json_follows_its_schema(sample_db, capsys):
    code, out, _ = run(capsys, "report", "--format", "json", "--db", sample_db)
    report = json.loads(out)
    assert code == 0 and report["schema_version"] == "1.1" and report["report_version"] == 1
    assert errors("report", report) == []
    # A period and a slice: with a previous period and filters.
    code, out, _ = run(
        capsys, "report", "--format", "json", "--db", sample_db, "--since", "2026-10-15",
        "--until", "2026-10-21", "--channel", "server",
    )  # fmt: skip
    sliced = json.loads(out)
    assert sliced["previous_overall"] is not None  # 2026-10-08 to 14 is in the data
    assert sliced["period"]["filters"]["channels"] == ["server"]
    assert errors("report", sliced) == []


def test_report_json_on_an_empty_window_follows_its_schema(sample_db, capsys):
    code, out, _ = run(
        capsys, "report", "--format", "json", "--db", sample_db, "--since", "2020-01-01",
        "--until", "2020-01-02",
    )  # fmt: skip
    report = json.loads(out)
    assert report["overall"]["server_sent"] == 0 and report["overall"]["emq_estimate"] is None
    assert errors("report", report) == []


def test_check_json_follows_its_schema(sample_db, capsys):
    code, out, _ = run(capsys, "check", "--db", sample_db, "--at", "latest", "--format", "json")
    result = json.loads(out)
    assert result["schema_version"] == "1.1"
    assert code == (0 if result["ok"] else 1)
    assert errors("check", result) == []
    # An empty window of a browser-only slice: everything but no_events skipped.
    code, out, _ = run(
        capsys, "check", "--db", sample_db, "--at", "2020-01-01", "--format", "json",
        "--channel", "browser",
    )  # fmt: skip
    empty = json.loads(out)
    assert code == 1 and errors("check", empty) == []
    assert empty["summary"] == {"passed": 0, "breached": 1, "skipped": 11}
    assert [c["check"] for c in empty["checks"]] == list(CHECKS)


def test_the_schemas_can_fail(sample_db, capsys):
    code, out, _ = run(capsys, "report", "--format", "json", "--db", sample_db)
    report = json.loads(out)
    del report["overall"]
    assert errors("report", report) == ["'overall' is a required property"]
    code, out, _ = run(capsys, "check", "--db", sample_db, "--at", "latest", "--format", "json")
    result = json.loads(out)
    del result["schema_version"]
    assert errors("check", result) == ["'schema_version' is a required property"]
    # A skipped check must say why, in `reason`.
    result = json.loads(out)
    result["checks"][0] = {"check": "emq_estimate", "status": "skipped", "value": None,
                           "threshold": 4.0, "message": "?"}  # fmt: skip
    assert errors("check", result) != []


def test_every_block_key_is_described_in_the_report_schema(sample_db, capsys):
    """A new measure in the JSON block (core/measures.py) needs its line in
    schemas/report.schema.json ($defs.block): the published contract must not lag."""
    _, out, _ = run(capsys, "report", "--format", "json", "--db", sample_db)
    schema = json.loads((SCHEMAS / "report.schema.json").read_text())

    def undescribed(value: dict, node: dict, path: str) -> list[str]:
        missing = []
        for key, inner in value.items():
            if key not in node.get("properties", {}):
                missing.append(f"{path}.{key}")
            elif isinstance(inner, dict):
                missing += undescribed(inner, node["properties"][key], f"{path}.{key}")
        return missing

    assert undescribed(json.loads(out)["overall"], schema["$defs"]["block"], "block") == []
