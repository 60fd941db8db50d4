"""The seeded sample: deterministic, and every planted defect found with the right count.

Runs on DuckDB, SQLite and PostgreSQL against the bundled sample (data/sample/), whose
ground truth the generator wrote beside it.
"""

from __future__ import annotations

import gzip
import json

import pytest

from dashboard.core.config import SAMPLE_LOG_PATH, load_config
from dashboard.core.filters import Filters
from dashboard.ingest import ingest
from dashboard.quality.blocks import overall_block
from dashboard.quality.diagnostics import diagnose
from dashboard.quality.freshness import lag_stats
from dashboard.sample.generator import write_sample_log
from dashboard.store.database import make_engine
from dashboard.store.queries.freshness import delivery_summary

TRUTH = json.loads(SAMPLE_LOG_PATH.with_name("sent_events.truth.json").read_text())


@pytest.fixture(scope="module", params=["duckdb", "sqlite", "postgresql"])
def sample_engine(request, tmp_path_factory):
    if request.param == "duckdb":
        url = f"duckdb:///{tmp_path_factory.mktemp('s') / 'sample.duckdb'}"
    elif request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('s') / 'sample.sqlite'}"
    else:
        url = request.getfixturevalue("postgres_server").new_database()
    engine = make_engine(url)
    summary = ingest([SAMPLE_LOG_PATH], engine)
    engine.summary = summary
    yield engine
    engine.dispose()


def test_the_bundled_sample_is_what_the_generator_writes(tmp_path):
    out = tmp_path / "sent_events.jsonl.gz"
    truth = write_sample_log(out, seed=TRUTH["seed"], target_events=TRUTH["target_events"])
    assert gzip.decompress(out.read_bytes()) == gzip.decompress(SAMPLE_LOG_PATH.read_bytes())
    assert truth.to_dict() == TRUTH


def test_everything_imports(sample_engine):
    summary = sample_engine.summary
    assert summary.lines_read == TRUTH["records"]
    assert summary.events_imported == TRUTH["total_events"]
    assert summary.lines_quarantined == summary.events_quarantined == 0


def test_totals_and_delivery(sample_engine):
    config = load_config()
    block = overall_block(sample_engine, Filters(), config)
    assert block["browser_events"] == TRUTH["browser_events"]
    assert block["server_sent"] == TRUTH["server_events"]
    assert block["server_rejected_by_meta"] == TRUTH["server_events_in_rejected_batches"]
    delivery = delivery_summary(sample_engine, Filters())
    burst = TRUTH["token_error_burst"]
    assert (delivery["token_error_batches"], delivery["token_error_events"]) == (
        burst["batches"],
        burst["events"],
    )
    assert delivery["rejected_batches"] == TRUTH["rejected_batches"]
    assert delivery["unanswered_batches"] == TRUTH["timeouts"]["batches"]
    # A timed-out batch may have arrived, so its re-sent events are same-channel repeats;
    # events re-sent after a rejection are not (the rejected copies never counted).
    assert block["dedup"]["server"]["same_channel_repeat"] == TRUTH["retries"]["after_timeout"]


def test_planted_defects_are_found_with_the_right_counts(sample_engine):
    config = load_config()
    block = overall_block(sample_engine, Filters(), config)
    assert block["unhashed_parameters"]["em"] == TRUTH["plaintext_emails"]["events"]
    assert block["unhashed_parameters"]["ph"] == TRUTH["plaintext_phones"]["events"]
    assert block["invalid_parameters"]["fbc"] == TRUTH["malformed_fbc"]["events"]
    assert block["test_events"] == TRUTH["test_event_code_left_on"]["events"]

    missing = TRUTH["purchases_without_event_id"]
    purchases = overall_block(
        sample_engine, Filters(event_names=("Purchase",), datasets=(missing["dataset_id"],)), config
    )
    assert purchases["server_without_event_id"] == missing["events"]

    leads = TRUTH["leads_without_em"]
    lead_slice = overall_block(
        sample_engine,
        Filters(campaigns=(leads["campaign"],), event_names=(leads["event_name"],)),
        config,
    )
    assert lead_slice["server_sent"] == leads["events"]
    assert lead_slice["parameter_coverage"]["em"] == 0.0

    late = TRUTH["late_stage"]
    lags = lag_stats(sample_engine, Filters(), config, "funnel_stage").set_index("funnel_stage")
    assert late["min_lag_s"] <= lags.loc[late["stage"], "p50_lag_s"] <= late["max_lag_s"]
    assert lags.loc[late["stage"], "server_events"] == late["events"]

    found = diagnose(sample_engine, Filters(), config)
    by_key: dict[str, list] = {}
    for d in found:
        by_key.setdefault(d.key, []).append(d)
    assert (
        by_key["unhashed_pii"][0].affected
        == TRUTH["plaintext_emails"]["events"] + TRUTH["plaintext_phones"]["events"]
    )
    assert by_key["token_errors"][0].affected == TRUTH["token_error_burst"]["events"]
    assert by_key["test_event_code"][0].affected == TRUTH["test_event_code_left_on"]["events"]
    assert by_key["invalid_fbc"][0].affected == TRUTH["malformed_fbc"]["events"]
    assert by_key["missing_event_id"][0].affected == missing["events"]
    assert by_key["rejected_events"][0].affected == TRUTH["genuine_errors"]["events"]
    assert [d.funnel_stage for d in by_key["late_stage"]] == [late["stage"]]
    gaps = [(d.campaign, d.event_name, d.parameter) for d in by_key["parameter_gap"]]
    assert (leads["campaign"], leads["event_name"], "em") in gaps
    assert all(d.campaign == leads["campaign"] for d in by_key["parameter_gap"])  # no false alarms


def test_plaintext_from_the_sample_never_reaches_the_store(tmp_path):
    path = tmp_path / "s.duckdb"
    engine = make_engine(f"duckdb:///{path}")
    ingest([SAMPLE_LOG_PATH], engine)
    engine.dispose()
    data = path.read_bytes()
    for secret in TRUTH["plaintext_emails"]["addresses"] + TRUTH["plaintext_phones"]["numbers"]:
        assert secret.encode() not in data
