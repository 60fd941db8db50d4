"""Incremental dedup refresh gives exactly what a full recompute gives.

A log is imported in pieces (a growing file, then a second file, then a rewritten
file), each import refreshing incrementally; after each step the dedup columns, the
events' recoverable-parameter masks and the per-person first valid times must equal
those of a full recompute of the same store, on every backend.
"""

from __future__ import annotations

import sqlalchemy as sa
from conftest import write_jsonl

from dashboard.core.config import SAMPLE_LOG_PATH
from dashboard.ingest import ingest
from dashboard.sample.generator import iter_sample_records
from dashboard.store import dedup
from dashboard.store.database import events, get_meta, person_first_valid

_COLUMNS = (
    events.c.source_id,
    events.c.line_no,
    events.c.idx,
    events.c.dedup_status,
    events.c.id_twin_48h,
    events.c.covered_any_key,
    events.c.likely_double,
    events.c.recoverable_params,
)


def _dedup_columns(engine):
    with engine.connect() as connection:
        return connection.execute(sa.select(*_COLUMNS).order_by(*_COLUMNS[:3])).fetchall()


def _people(engine):
    with engine.connect() as connection:
        return connection.execute(
            sa.select(person_first_valid).order_by(
                person_first_valid.c.key_kind, person_first_valid.c.person
            )
        ).fetchall()


def _assert_equals_full(engine):
    incremental, incremental_people = _dedup_columns(engine), _people(engine)
    assert all(row.recoverable_params is not None for row in incremental)
    dedup.refresh(engine, full=True)
    full = _dedup_columns(engine)
    assert incremental == full
    assert incremental_people == _people(engine)
    return full


def test_incremental_refresh_equals_full_recompute(engine, tmp_path):
    import gzip

    records = gzip.decompress(SAMPLE_LOG_PATH.read_bytes()).splitlines()
    # A slice of the sample, so each backend finishes quickly: ~1,500 lines.
    records = records[:1500]
    log = tmp_path / "grow.jsonl"
    cut_points = (500, 1000, 1500)
    written = 0
    for cut in cut_points:
        with log.open("ab") as fh:
            fh.write(b"\n".join(records[written:cut]) + b"\n")
        written = cut
        ingest([log], engine)
        with engine.connect() as connection:
            assert get_meta(connection, "data_version") == get_meta(connection, "dedup_version")
        rows = _assert_equals_full(engine)
    statuses = {row.dedup_status for row in rows}
    assert {"deduplicated", "browser_only", "server_only"} <= statuses

    # A second file whose events pair with the first one's (same ids, later sends).
    second = tmp_path / "late.jsonl"
    second.write_bytes(b"\n".join(records[1100:1300]) + b"\n")
    ingest([second], engine)
    _assert_equals_full(engine)

    # Rewriting the first file deletes its rows: statuses that paired with them change.
    log.write_bytes(b"\n".join(records[:400]) + b"\n")
    ingest([log], engine)
    _assert_equals_full(engine)


def test_incremental_refresh_on_generated_twins(engine, tmp_path):
    """Generated records in two imports: later browser twins flip earlier server rows."""
    records = list(iter_sample_records(seed=7, target_events=600))
    servers = [r for r in records if r.get("kind") == "capi_request"]
    browsers = [r for r in records if r.get("kind") != "capi_request"]
    ingest([write_jsonl(tmp_path / "server.jsonl", servers)], engine)
    first = _dedup_columns(engine)
    ingest([write_jsonl(tmp_path / "browser.jsonl", browsers)], engine)
    after = _assert_equals_full(engine)
    assert "server_only" in {r.dedup_status for r in first}
    assert {"deduplicated", "fallback_deduplicated"} & {r.dedup_status for r in after}
    # The browser events carried values the server events' people lacked until then:
    # masks of rows imported before them changed (and equal a full recompute's).
    masks = {r[:3]: r.recoverable_params for r in after}
    assert any(masks[r[:3]] != r.recoverable_params for r in first)
