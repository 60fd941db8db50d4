"""The diverse sample profile: many campaigns, event names, datasets and people, and
customer parameters whose statuses are independent draws; the standard profile unchanged.

Thresholds come from the profile's design (expected distinct counts of uniform picks,
the configured status shares), not from a run of the generator.
"""

from __future__ import annotations

import hashlib
import itertools
import json

import pytest
import sqlalchemy as sa

from dashboard.cli import main
from dashboard.core.config import SAMPLE_LOG_PATH
from dashboard.core.params import ABSENT, INVALID, PARAMS, UNHASHED, VALID
from dashboard.ingest import ingest
from dashboard.sample.generator import _plan_sources, write_sample_log
from dashboard.sample.scenario import DEFAULT_START, DIVERSE
from dashboard.sample.userdata import PARAM_MIX, status_shares
from dashboard.store.database import make_engine

EVENTS = 20_000
# sha256 of the log and truth that the generator wrote for seed 7, 5,000 events, taken
# by running the code from before profiles existed (commit dafc571): the standard
# profile must stay byte-identical, golden files and the bundled sample depend on it.
STANDARD_SEED7_5000_LOG = "6f95136861253dfe36351ef77b3e0385ffc9edb1b5ee49b76747db198d7555b9"
STANDARD_SEED7_5000_TRUTH = "fa834dded5fbf7f980216c9ff78247381399a5170d25e4268c41ca5060c1ab2a"
# Each scored parameter's status: generous against sampling noise at 20k events
# (one standard deviation is below 0.004), tight against a wrong design.
SHARE_TOLERANCE = 0.02
_SIGNATURE = ", ".join(f"p_{p}" for p in PARAMS)


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def diverse(tmp_path_factory):
    folder = tmp_path_factory.mktemp("diverse")
    log = folder / "diverse.jsonl"
    truth = write_sample_log(log, seed=42, target_events=EVENTS, profile="diverse")
    engine = make_engine(f"duckdb:///{folder / 'd.duckdb'}")
    summary = ingest([log], engine)
    yield engine, summary, truth
    engine.dispose()


def _scalar(engine, sql: str):
    with engine.connect() as conn:
        return conn.execute(sa.text(sql)).scalar()


def _expected_distinct(n: int, picks: float) -> float:
    """Expected distinct items after `picks` uniform picks among `n`."""
    return n * (1.0 - (1.0 - 1.0 / n) ** picks)


def _expected_units() -> list[tuple[tuple, float]]:
    """(source, expected units) of the diverse profile at EVENTS events."""
    t0 = int(DEFAULT_START.timestamp())
    planned = _plan_sources(t0, 35, EVENTS, DIVERSE)
    return [(src, sum(p[3])) for src, p in zip(DIVERSE.sources, planned, strict=True)]


def test_import_takes_everything(diverse):
    engine, summary, truth = diverse
    assert summary.lines_quarantined == summary.events_quarantined == 0
    assert summary.events_imported == truth.total_events
    assert 0.9 * EVENTS < truth.total_events < 1.1 * EVENTS
    # About one new person per two events is what makes the profile diverse.
    assert 0.4 < truth.people / truth.total_events < 0.6
    assert truth.to_dict()["profile"] == "diverse"


def test_many_campaigns_event_names_and_datasets(diverse):
    engine, _, truth = diverse
    # Every diverse source picks among its pool; the organic one has no campaign.
    expected_campaigns = sum(
        _expected_distinct(len(src[6]), units)
        for src, units in _expected_units()
        if src[6][0][0] is not None
    )
    campaigns = _scalar(
        engine, "SELECT count(DISTINCT campaign) FROM events WHERE campaign <> '(none)'"
    )
    assert campaigns >= 0.9 * expected_campaigns > 1000
    assert len(truth.campaigns) == 2000

    # Custom events: one after a shop visit's PageView with probability p_custom.
    shop_visits = sum(u for src, u in _expected_units() if src[1] == "web_shop")
    custom = _expected_distinct(len(DIVERSE.custom_events), shop_visits * DIVERSE.p_custom)
    names = _scalar(engine, "SELECT count(DISTINCT event_name) FROM events")
    assert names >= 10 + 0.9 * custom > 200

    datasets = _scalar(engine, "SELECT count(DISTINCT dataset_id) FROM events")
    assert datasets == len(DIVERSE.web_datasets + DIVERSE.crm_datasets) == 30


def test_statuses_are_independent_draws(diverse):
    engine, _, _ = diverse
    columns = [f"p_{row[0]}" for row in PARAM_MIX]
    with engine.connect() as conn:
        rows = conn.execute(sa.text(f"SELECT {', '.join(columns)} FROM events")).fetchall()
    n = len(rows)
    shares = status_shares()
    for i, (param, *_) in enumerate(PARAM_MIX):
        for status in (ABSENT, VALID, INVALID, UNHASHED):
            seen = sum(1 for r in rows if r[i] == status) / n
            assert abs(seen - shares[param][status]) < SHARE_TOLERANCE, (param, status, seen)
    # Pairwise: P(both valid) is the product of the two shares.
    valid = [[r[i] == VALID for r in rows] for i in range(len(columns))]
    share = [sum(v) / n for v in valid]
    for i, j in itertools.combinations(range(len(columns)), 2):
        both = sum(a and b for a, b in zip(valid[i], valid[j], strict=True)) / n
        assert abs(both - share[i] * share[j]) < SHARE_TOLERANCE, (columns[i], columns[j])


def test_far_more_status_signatures_than_the_standard_profile(diverse, tmp_path):
    engine, _, _ = diverse
    signatures = f"SELECT count(*) FROM (SELECT DISTINCT {_SIGNATURE} FROM events) s"
    standard = make_engine(f"duckdb:///{tmp_path / 's.duckdb'}")
    ingest([SAMPLE_LOG_PATH], standard)  # the bundled standard sample: 20,000 events too
    few = _scalar(standard, signatures)
    standard.dispose()
    many = _scalar(engine, signatures)
    assert many > 100 * few
    assert many > 0.5 * EVENTS  # most events have a signature of their own


def test_twins_gaps_and_dedup_stay_meaningful(diverse):
    engine, _, _ = diverse
    with engine.connect() as conn:
        status = dict(
            conn.execute(
                sa.text("SELECT dedup_status, count(*) FROM events GROUP BY dedup_status")
            ).fetchall()
        )
    total = sum(status.values())
    for kind in ("deduplicated", "browser_only", "server_only"):
        assert status.get(kind, 0) > 0.05 * total, kind
    browser_share_twinned = status["deduplicated"] / (
        status["deduplicated"] + status["browser_only"]
    )
    assert 0.4 < browser_share_twinned < 0.9
    stages = _scalar(engine, "SELECT count(DISTINCT funnel_stage) FROM events")
    assert stages >= 5


def test_same_seed_same_bytes_other_profile_other_bytes(tmp_path):
    a, b, std = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "s.jsonl"
    write_sample_log(a, seed=3, target_events=3000, profile="diverse")
    assert main(["sample", str(b), "--events", "3000", "--seed", "3", "--profile", "diverse"]) == 0
    write_sample_log(std, seed=3, target_events=3000)
    assert _sha(a) == _sha(b)
    assert a.with_name("a.truth.json").read_text() == b.with_name("b.truth.json").read_text()
    assert _sha(a) != _sha(std)


def test_standard_profile_is_byte_identical_to_before_profiles(tmp_path):
    log = tmp_path / "s.jsonl"
    write_sample_log(log, seed=7, target_events=5000, profile="standard")
    assert _sha(log) == STANDARD_SEED7_5000_LOG
    assert _sha(tmp_path / "s.truth.json") == STANDARD_SEED7_5000_TRUTH
    assert "profile" not in json.loads((tmp_path / "s.truth.json").read_text())
