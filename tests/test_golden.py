"""The JSON report does not change under a refactor: golden files taken before the first move.

Each case imports a log (the bundled sample, a second seeded sample, the published payloads
of real integrations) with the clock fixed, builds the JSON report for one slice and
compares it, whole, with `tests/golden/<case>.json` (all but `generated_at`). A
restructuring that changes one number, key or rounding fails here.

Regenerate only for a deliberate change of the contract:
`EQM_WRITE_GOLDEN=1 python3 -m pytest tests/test_golden.py`, and say why in the commit.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dashboard.core.config import SAMPLE_LOG_PATH, load_config
from dashboard.core.filters import Filters
from dashboard.ingest import ingest
from dashboard.outputs.report import build_report
from dashboard.sample.generator import write_sample_log
from dashboard.store.database import make_engine
from dashboard.store.queries.blocks import data_range
from tests import formatkit as fk

GOLDEN = Path(__file__).parent / "golden"


def _sample(folder: Path) -> list[Path]:
    return [SAMPLE_LOG_PATH]


def _second_sample(folder: Path) -> list[Path]:
    path = folder / "seed7.jsonl"
    write_sample_log(path, target_events=1_500, seed=7, days=21)
    return [path]


def _real_payloads(folder: Path) -> list[Path]:
    return [fk.write_v1(folder / "real.jsonl", fk.real_calls())]


def _whole(span) -> Filters:
    return Filters()


def _last_week(span) -> Filters:
    return Filters(since=span[1] - timedelta(days=6), until=span[1])


def _one_campaign(span) -> Filters:
    return Filters(
        since=span[1] - timedelta(days=13),
        until=span[1],
        campaigns=("black_friday_retargeting", "(none)"),
        channels=("browser", "server"),
    )


CASES = {
    "sample_whole": (_sample, _whole),
    "sample_last_week": (_sample, _last_week),
    "sample_one_campaign": (_sample, _one_campaign),
    "seed7_whole": (_second_sample, _whole),
    "seed7_last_week": (_second_sample, _last_week),
    "real_payloads_whole": (_real_payloads, _whole),
}


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """One DuckDB store per log, imported once for the module."""
    made: dict[str, str] = {}

    def store(log) -> str:
        if log.__name__ not in made:
            folder = tmp_path_factory.mktemp(log.__name__.strip("_"))
            url = f"duckdb:///{folder / 'store.duckdb'}"
            engine = make_engine(url)
            ingest(log(folder), engine)
            engine.dispose()
            made[log.__name__] = url
        return made[log.__name__]

    return store


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_report_is_the_golden_one(case, stores, monkeypatch):
    log, slice_of = CASES[case]
    engine = make_engine(stores(log))
    try:
        span = data_range(engine)
        # The day after the log's last day, at noon: "today" and "now" fixed for every run.
        today = span[1] + timedelta(days=1)
        noon = datetime(today.year, today.month, today.day, 12, tzinfo=UTC).timestamp()
        monkeypatch.setattr("dashboard.core.clock.today", lambda: today)
        monkeypatch.setattr("dashboard.core.clock.now", lambda: noon)
        report = build_report(engine, slice_of(span), load_config())
    finally:
        engine.dispose()
    report.pop("generated_at")
    got = json.loads(json.dumps(report, ensure_ascii=False))
    path = GOLDEN / f"{case}.json"
    if os.environ.get("EQM_WRITE_GOLDEN"):
        path.write_text(json.dumps(got, indent=1, ensure_ascii=False, sort_keys=True) + "\n")
    expected = json.loads(path.read_text())
    assert got == expected
