"""Log ingestion on real files, on DuckDB, SQLite and PostgreSQL."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import pandas as pd
import pytest
import sqlalchemy as sa
from conftest import write_jsonl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from logkit import T0, capi, event, pixel, sha

from dashboard.core.params import UNHASHED, VALID
from dashboard.ingest import IngestError, ingest
from dashboard.ingest import files as ingest_files
from dashboard.ingest import importer as ingest_importer
from dashboard.ingest import readers as ingest_readers
from dashboard.store.database import events, imports, quarantine, sources

FBP = "fb.1.1700000000000.1234567890"
EMAIL = "anna.smith42@example.com"


def rows(engine, *columns, where=None, order=("source_id", "line_no", "idx")) -> pd.DataFrame:
    cols = [events.c[c] for c in columns] if columns else [events]
    query = sa.select(*cols).order_by(*[events.c[o] for o in order])
    if where is not None:
        query = query.where(where)
    with engine.connect() as connection:
        return pd.DataFrame(connection.execute(query).mappings().all())


def count(engine, table) -> int:
    with engine.connect() as connection:
        return int(connection.execute(sa.select(sa.func.count()).select_from(table)).scalar())


def mixed_log() -> list:
    """Every record kind: pixel, accepted/rejected/unanswered batches, bare event."""
    return [
        pixel(event("ViewContent", T0, "v1", fbp=FBP), dataset="1111"),
        capi(
            [
                event(
                    "ViewContent",
                    T0,
                    "v1",
                    fbp=FBP,
                    em=[sha(EMAIL)],
                    client_ip_address="1.2.3.4",
                    client_user_agent="UA",
                    extra={"event_source_url": "https://s.test/p?utm_campaign=bf"},
                ),
                event(
                    "Purchase",
                    T0 + 60,
                    "o1",
                    fbp=FBP,
                    custom_data={"value": 19.5, "currency": "eur", "campaign": "crm_x"},
                ),
            ],
            sent_at=T0 + 90,
            dataset="1111",
            test_event_code="TEST1",
        ),
        capi(
            [event("Lead", T0 + 120, "l1", em=sha(EMAIL))],
            sent_at=T0 + 130,
            dataset="1111",
            status=400,
            error={
                "message": "Error validating access token",
                "type": "OAuthException",
                "code": 190,
                "error_subcode": 463,
                "fbtrace_id": "F",
            },
        ),
        capi(
            [event("Schedule", T0 + 200, "s1", ph=sha("16505551212"))],
            sent_at=T0 + 210,
            status=None,
        ),
        # A bare CAPI event: no envelope, sent_at defaults to event_time.
        event("Contact", T0 + 300, "c1", external_id="crm-9"),
    ]


def test_imports_every_record_kind(engine, tmp_path, config):
    path = write_jsonl(tmp_path / "log.jsonl", mixed_log())
    summary = ingest([path], engine, config=config)
    assert summary.lines_read == 5
    assert summary.events_imported == 6
    assert summary.accounted()
    got = rows(engine)
    assert list(got["channel"]) == ["browser", "server", "server", "server", "server", "server"]
    assert list(got["event_name"]) == [
        "ViewContent",
        "ViewContent",
        "Purchase",
        "Lead",
        "Schedule",
        "Contact",
    ]
    assert list(got["dataset_id"]) == ["1111", "1111", "1111", "1111", "1", "(unknown)"]
    assert list(got["delivery"]) == [
        "unknown",
        "accepted",
        "accepted",
        "rejected",
        "unknown",
        "unknown",
    ]
    assert list(got["is_test"].astype(bool)) == [False, True, True, False, False, False]
    lead = got.iloc[3]
    assert (lead["error_code"], lead["error_subcode"]) == (190, 463)
    assert lead["error_message"] == "Error validating access token"
    assert list(got["batch_size"].fillna(0).astype(int)) == [0, 2, 2, 1, 1, 0]
    assert list(got["campaign"]) == ["(none)", "bf", "crm_x", "(none)", "(none)", "(none)"]
    assert list(got["funnel_stage"]) == [
        "ViewContent",
        "ViewContent",
        "Closed won",
        "Qualified",
        "Demo scheduled",
        "Contacted",
    ]
    purchase = got.iloc[2]
    assert (purchase["value"], purchase["currency"]) == (19.5, "EUR")
    assert got.iloc[1]["sent_at"] == T0 + 90
    bare = got.iloc[5]
    assert bare["sent_at"] == T0 + 300 and bool(bare["sent_at_defaulted"])
    assert got.iloc[1]["p_em"] == VALID and got.iloc[1]["em_hash"] == sha(EMAIL)
    assert got.iloc[1]["n_valid_params"] == 4  # em, fbp, ip, user agent
    assert got.iloc[5]["person_key"] == "crm-9"


def test_gzip_and_plain_copies_are_the_same_source(duck_engine, tmp_path, config):
    plain = write_jsonl(tmp_path / "a.jsonl", mixed_log())
    packed = tmp_path / "b.jsonl.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    first = ingest([packed], duck_engine, config=config)
    assert first.events_imported == 6
    second = ingest([plain], duck_engine, config=config)
    assert (second.events_imported, second.lines_already_imported) == (0, 5)
    assert count(duck_engine, events) == 6


def test_folder_and_glob(duck_engine, tmp_path, config):
    folder = tmp_path / "logs"
    (folder / "sub").mkdir(parents=True)
    write_jsonl(folder / "one.jsonl", mixed_log()[:2])
    write_jsonl(folder / "sub" / "two.jsonl", mixed_log()[2:])
    (folder / "notes.txt").write_text("not a log")
    summary = ingest([folder], duck_engine, config=config)
    assert (summary.files, summary.events_imported) == (2, 6)
    assert ingest([str(folder / "**" / "*.jsonl")], duck_engine, config=config).events_imported == 0
    with pytest.raises(IngestError, match="no such file"):
        ingest([tmp_path / "missing.jsonl"], duck_engine, config=config)
    with pytest.raises(IngestError, match="no file matches"):
        ingest([str(tmp_path / "*.nothing")], duck_engine, config=config)


def test_csv(engine, tmp_path, config):
    path = tmp_path / "events.csv"
    path.write_text(
        "channel,sent_at,dataset_id,event_name,event_time,event_id,event_source_url,em,fbp,custom_data.value,custom_data.currency,response_status,error_code\n"
        f"browser,{T0},7,Purchase,{T0},o1,https://s.test/?utm_campaign=csv_c,,{FBP},10,USD,,\n"
        f'server,2025-11-20T10:01:00Z,7,Purchase,{T0},o1,,"[""{sha(EMAIL)}""]",{FBP},10,USD,200,\n'
        f"server,{T0 + 70},7,Lead,{T0},l1,,{EMAIL},,,,400,190\n"
        f"phone,{T0},7,Lead,{T0},l2,,,,,,,\n"
        '"unterminated,quote\n',
        encoding="utf-8",
    )
    summary = ingest([path], engine, config=config)
    assert summary.events_imported == 3
    assert summary.quarantined_by_reason["channel must be browser or server"] == 1
    assert summary.accounted()
    got = rows(engine)
    assert list(got["channel"]) == ["browser", "server", "server"]
    assert list(got["delivery"]) == ["unknown", "accepted", "rejected"]
    assert got.iloc[0]["campaign"] == "csv_c"
    assert got.iloc[1]["sent_at"] == T0 + 60
    assert got.iloc[1]["p_em"] == VALID
    assert got.iloc[2]["p_em"] == UNHASHED and got.iloc[2]["error_code"] == 190
    assert got.iloc[0]["value"] == 10.0


def test_log_written_with_metas_python_sdk(engine, tmp_path, config):
    """Events built with facebook_business' serverside objects, as their normalize() sends them."""
    from facebook_business.adobjects.serverside.action_source import ActionSource
    from facebook_business.adobjects.serverside.custom_data import CustomData
    from facebook_business.adobjects.serverside.event import Event
    from facebook_business.adobjects.serverside.user_data import UserData

    user = UserData(
        email="Anna.Smith42@Example.com",
        phone="+1 (650) 555-1212",
        client_ip_address="203.0.113.9",
        client_user_agent="Mozilla/5.0",
        fbc="fb.1.1554763741205.AbCdEfGhIjKlMnOpQrStUvWxYz1234567890",
        fbp=FBP,
        external_id="crm-77",
        country_code="us",
    )
    sdk_event = Event(
        event_name="Purchase",
        event_time=T0,
        event_id="order-77",
        action_source=ActionSource.WEBSITE,
        event_source_url="https://s.test/checkout?utm_campaign=sdk",
        user_data=user,
        custom_data=CustomData(value=42.0, currency="usd"),
    ).normalize()
    assert isinstance(sdk_event["user_data"]["em"], list)  # the SDK sends lists of hashes
    path = write_jsonl(tmp_path / "sdk.jsonl", [capi([sdk_event], sent_at=T0 + 5)])
    assert ingest([path], engine, config=config).events_imported == 1
    row = rows(engine).iloc[0]
    assert row["p_em"] == VALID and row["em_hash"] == sha("anna.smith42@example.com")
    assert row["p_ph"] == VALID and row["p_country"] == VALID
    assert row["p_fbc"] == VALID and row["p_fbp"] == VALID
    assert row["p_client_ip_address"] == VALID and row["p_client_user_agent"] == VALID
    assert row["campaign"] == "sdk" and row["currency"] == "USD"
    assert not row["has_unhashed_pii"]


BAD_LINES = [
    # (raw line, quarantine reason)
    (b"{not json", "malformed JSON"),
    (b'{"kind": "pixel_event", "event": {"event_name": "\xff\xfe"}}', "not UTF-8"),
    (b"[1, 2]", "not a JSON object"),
    (b'"just a string"', "not a JSON object"),
    (b'{"kind": "server_batch"}', "unknown kind"),
    (b'{"foo": 1}', "unknown kind"),
    (b'{"kind": "pixel_event", "event": 5}', "pixel_event without an event object"),
    (b'{"kind": "capi_request", "request": {"data": {}}}', "request.data missing or not a list"),
    (b'{"kind": "capi_request", "request": {"data": []}}', "request.data is empty"),
    (b'{"kind": "capi_request"}', "capi_request without a request object"),
    (
        b'{"kind": "pixel_event", "sent_at": "yesterday", "event": {}}',
        "sent_at not ISO 8601 or Unix seconds",
    ),
    (b'{"kind": "pixel_event", "sent_at": 1e30, "event": {}}', "sent_at out of range"),
]
BAD_EVENTS = [
    # (event inside a capi_request, quarantine reason)
    ({"event_time": T0}, "missing event_name"),
    ({"event_name": "", "event_time": T0}, "missing event_name"),
    ({"event_name": 7, "event_time": T0}, "event_name not a string"),
    ({"event_name": "Lead"}, "missing event_time"),
    ({"event_name": "Lead", "event_time": "soon"}, "event_time not a number"),
    ({"event_name": "Lead", "event_time": True}, "event_time not a number"),
    ({"event_name": "Lead", "event_time": 0}, "event_time out of range"),
    ({"event_name": "Lead", "event_time": -5}, "event_time out of range"),
    ({"event_name": "Lead", "event_time": 99_999_999_999_999}, "event_time out of range"),
    ({"event_name": "Lead", "event_time": T0, "user_data": "x"}, "user_data not an object"),
    ({"event_name": "Lead", "event_time": T0, "custom_data": [1]}, "custom_data not an object"),
    ({"event_name": "Lead", "event_time": T0, "event_id": {"a": 1}}, "event_id not a string"),
    ("not an event", "event not an object"),
]


def test_bad_input_is_quarantined_with_a_reason_and_counts_add_up(engine, tmp_path, config):
    good = capi([event("Lead", T0, "ok1")], sent_at=T0)
    mixed = capi([event("Lead", T0, "ok2"), *[e for e, _ in BAD_EVENTS]], sent_at=T0)
    lines = [
        json.dumps(good).encode(),
        *[raw for raw, _ in BAD_LINES],
        b"",
        b"   ",
        json.dumps(mixed).encode(),
    ]
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    summary = ingest([path], engine, config=config)
    assert summary.lines_read == len(lines)
    assert summary.blank_lines == 2
    assert summary.lines_quarantined == len(BAD_LINES)
    assert summary.events_quarantined == len(BAD_EVENTS)
    assert summary.events_imported == 2
    assert summary.accounted()
    with engine.connect() as connection:
        stored = connection.execute(
            sa.select(quarantine.c.line_no, quarantine.c.idx, quarantine.c.reason).order_by(
                quarantine.c.line_no, quarantine.c.idx
            )
        ).all()
    expected_lines = [(i + 2, -1, reason) for i, (_, reason) in enumerate(BAD_LINES)]
    mixed_line = len(lines)
    expected_events = [(mixed_line, i + 1, reason) for i, (_, reason) in enumerate(BAD_EVENTS)]
    assert [tuple(r) for r in stored] == expected_lines + expected_events
    # The import history records the same counts.
    with engine.connect() as connection:
        history = connection.execute(sa.select(imports)).mappings().one()
    assert history["status"] == "done"
    assert (
        history["events_imported"],
        history["lines_quarantined"],
        history["events_quarantined"],
    ) == (2, len(BAD_LINES), len(BAD_EVENTS))


def test_millisecond_event_time_is_kept_and_flagged(duck_engine, tmp_path, config):
    path = write_jsonl(
        tmp_path / "ms.jsonl", [capi([event("Lead", T0 * 1000, "m1")], sent_at=T0 + 3)]
    )
    ingest([path], duck_engine, config=config)
    row = rows(duck_engine).iloc[0]
    assert row["event_time_raw"] == T0 * 1000
    assert row["event_time"] == T0 and bool(row["event_time_in_ms"])


def test_plaintext_pii_is_never_stored(engine, tmp_path, config, store_url):
    phone = "+49 151 55501234"
    log = [
        capi(
            [
                event(
                    "Lead", T0, "p1", em=EMAIL, ph=phone, fn="Annabelle", external_id=EMAIL, fbp=FBP
                )
            ],
            sent_at=T0,
        ),
        pixel(event("Lead", T0, EMAIL, em=EMAIL)),  # even an e-mail used as event_id
    ]
    path = write_jsonl(tmp_path / "pii.jsonl", log)
    ingest([path], engine, config=config)
    got = rows(engine)
    assert list(got["p_em"]) == [UNHASHED, UNHASHED]
    assert got.iloc[0]["p_ph"] == UNHASHED and got.iloc[0]["p_fn"] == UNHASHED
    assert bool(got.iloc[0]["has_unhashed_pii"])
    assert got.iloc[0]["external_id"] == sha(EMAIL)  # kept only as its hash, for matching
    assert got.iloc[1]["event_id"] == sha(EMAIL)
    everything = json.dumps(got.astype(str).to_dict("records"))
    for secret in (EMAIL, "55501234", "annabelle", "Annabelle"):
        assert secret not in everything
    engine.dispose()
    if store_url.startswith(("duckdb", "sqlite")):
        store_file = store_url.split(":///", 1)[1]
        data = open(store_file, "rb").read()
        for secret in (EMAIL, "Annabelle", "151 55501234"):
            assert secret.encode() not in data


def test_idempotent_and_incremental(engine, tmp_path, config):
    log = [capi([event("Lead", T0 + i, f"id{i}")], sent_at=T0 + i) for i in range(10)]
    path = write_jsonl(tmp_path / "grow.jsonl", log[:6])
    assert ingest([path], engine, config=config).events_imported == 6
    again = ingest([path], engine, config=config)
    assert (again.lines_read, again.events_imported, again.lines_already_imported) == (0, 0, 6)
    with path.open("ab") as fh:  # the log grows
        for record in log[6:]:
            fh.write(json.dumps(record).encode() + b"\n")
    grown = ingest([path], engine, config=config)
    assert (grown.lines_read, grown.events_imported, grown.lines_already_imported) == (4, 4, 6)
    got = rows(engine, "event_id", "line_no")
    assert list(got["event_id"]) == [f"id{i}" for i in range(10)]
    assert list(got["line_no"]) == list(range(1, 11))


def test_partial_last_line_then_completed(duck_engine, tmp_path, config):
    path = tmp_path / "live.jsonl"
    first = json.dumps(capi([event("Lead", T0, "a")], sent_at=T0)).encode()
    second = json.dumps(capi([event("Lead", T0, "b")], sent_at=T0)).encode()
    path.write_bytes(first + b"\n" + second)  # the writer has not added the newline yet
    assert ingest([path], duck_engine, config=config).events_imported == 2
    with path.open("ab") as fh:
        fh.write(b"\n" + json.dumps(capi([event("Lead", T0, "c")], sent_at=T0)).encode() + b"\n")
    summary = ingest([path], duck_engine, config=config)
    assert (summary.events_imported, summary.blank_lines, summary.lines_quarantined) == (1, 0, 0)
    assert list(rows(duck_engine, "event_id")["event_id"]) == ["a", "b", "c"]


def test_rewritten_file_is_reimported_not_duplicated(duck_engine, tmp_path, config):
    path = write_jsonl(
        tmp_path / "log.jsonl", [capi([event("Lead", T0, f"x{i}")], sent_at=T0) for i in range(5)]
    )
    ingest([path], duck_engine, config=config)
    # Same first line, different middle: the file was rewritten.
    records = [
        capi([event("Lead", T0, f"x{i}" if i == 0 else f"y{i}")], sent_at=T0) for i in range(4)
    ]
    write_jsonl(path, records)
    summary = ingest([path], duck_engine, config=config)
    assert summary.reimported_files == [str(path)]
    assert list(rows(duck_engine, "event_id")["event_id"]) == ["x0", "y1", "y2", "y3"]


def test_truncated_gzip_keeps_what_was_readable(duck_engine, tmp_path, config):
    data = b"".join(
        json.dumps(capi([event("Lead", T0, f"g{i}")], sent_at=T0)).encode() + b"\n"
        for i in range(200)
    )
    packed = gzip.compress(data)
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(packed[: len(packed) * 2 // 3])
    summary = ingest([path], duck_engine, config=config)
    assert summary.quarantined_by_reason["truncated or corrupt gzip"] == 1
    assert summary.accounted()
    imported = summary.events_imported
    assert 0 < imported < 200
    assert list(rows(duck_engine, "event_id")["event_id"]) == [f"g{i}" for i in range(imported)]
    # Re-running on the same damaged file neither duplicates nor loses anything.
    again = ingest([path], duck_engine, config=config)
    assert again.events_imported == 0
    assert count(duck_engine, events) == imported and count(duck_engine, quarantine) == 1


def _fail_on_call(monkeypatch, method: str, nth: int, error: BaseException) -> dict:
    """Make `_Importer.<method>` raise `error` on its nth call (the calls before run as
    usual). Returns the call counter."""
    real = getattr(ingest_importer.Importer, method)
    calls = {"n": 0}

    def failing(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == nth:
            raise error
        return real(self, *args, **kwargs)

    monkeypatch.setattr(ingest_importer.Importer, method, failing)
    return calls


def test_crash_midway_then_rerun_equals_clean_import(engine, tmp_path, config, monkeypatch):
    log = [
        capi([event("Lead", T0 + i, f"k{i}"), event("Contact", T0 + i, f"c{i}")], sent_at=T0 + i)
        for i in range(50)
    ]
    log.insert(17, "broken line")
    path = write_jsonl(tmp_path / "crash.jsonl", log)
    monkeypatch.setattr(ingest_readers, "CHUNK_LINES", 7)
    # Dies before the 4th chunk commits.
    calls = _fail_on_call(monkeypatch, "commit", 4, KeyboardInterrupt("killed"))
    with pytest.raises(KeyboardInterrupt):
        ingest([path], engine, config=config)
    assert calls["n"] == 4
    assert count(engine, events) == 3 * 7 * 2 - 2  # three chunks committed, one broken line
    monkeypatch.undo()  # the real method again; blocks stay at 7 lines
    monkeypatch.setattr(ingest_readers, "CHUNK_LINES", 7)
    ingest([path], engine, config=config)
    got = rows(engine, "event_id")
    assert sorted(got["event_id"]) == sorted(
        [f"k{i}" for i in range(50)] + [f"c{i}" for i in range(50)]
    )
    assert count(engine, quarantine) == 1
    with engine.connect() as connection:
        statuses = (
            connection.execute(sa.select(imports.c.status).order_by(imports.c.import_id))
            .scalars()
            .all()
        )
        checkpoint = connection.execute(sa.select(sources.c.lines_done)).scalar()
    assert statuses == ["failed", "done"] and checkpoint == 51


def test_a_failed_background_write_fails_the_import_and_keeps_the_blocks_before_it(
    engine, tmp_path, config, monkeypatch
):
    # Blocks of 7 lines; a block's write runs on the writer thread while the next block is
    # parsed. The 2nd write fails: the import must fail with that error (not lose it on
    # the thread), keep block 1 and its checkpoint, and write nothing after it.
    log = [capi([event("Lead", T0 + i, f"k{i}")], sent_at=T0 + i) for i in range(30)]
    path = write_jsonl(tmp_path / "writes.jsonl", log)
    monkeypatch.setattr(ingest_readers, "CHUNK_LINES", 7)
    calls = _fail_on_call(monkeypatch, "_write", 2, OSError("disk full"))
    with pytest.raises(OSError, match="disk full"):
        ingest([path], engine, config=config, vectorised=True)
    assert calls["n"] == 2  # nothing written after the failed block
    with engine.connect() as connection:
        checkpoint = connection.execute(sa.select(sources.c.lines_done)).scalar()
        status = connection.execute(sa.select(imports.c.status)).scalar()
    assert sorted(rows(engine, "event_id")["event_id"]) == sorted(f"k{i}" for i in range(7))
    assert checkpoint == 7 and status == "failed"
    monkeypatch.undo()  # the real method again; blocks stay at 7 lines
    monkeypatch.setattr(ingest_readers, "CHUNK_LINES", 7)
    again = ingest([path], engine, config=config)
    assert again.events_imported == 23
    assert sorted(rows(engine, "event_id")["event_id"]) == sorted(f"k{i}" for i in range(30))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.one_of(st.binary(max_size=80), st.text(max_size=80).map(str.encode)),
        min_size=1,
        max_size=30,
    )
)
def test_random_garbage_never_crashes_and_is_accounted_for(tmp_path_factory, config, lines):
    from dashboard.ingest.detect import binary_detail
    from dashboard.ingest.readers import BINARY_REASON
    from dashboard.store.database import make_engine

    folder = tmp_path_factory.mktemp("fuzz")
    path = folder / "garbage.jsonl"
    cleaned = [line.replace(b"\n", b" ").replace(b"\r", b" ") for line in lines]
    path.write_bytes(b"\n".join(cleaned) + b"\n")
    engine = make_engine(f"sqlite:///{folder / 's.sqlite'}")
    summary = ingest([path], engine, config=config)
    if cleaned[0].startswith(b"\x1f\x8b"):
        # Gzip magic: the file is read as a (damaged) gzip stream, not as these lines.
        assert summary.quarantined_by_reason["truncated or corrupt gzip"] <= 1
    elif binary_detail(path) is not None:
        # Known binary first bytes ("PK\x03\x04"...), or mostly bytes no text holds:
        # one quarantined pseudo-line for the whole file, not one per newline byte.
        assert summary.lines_read == summary.lines_quarantined == 1
        assert summary.quarantined_by_reason[BINARY_REASON] == 1
    else:
        assert summary.lines_read == len(cleaned)
    assert summary.accounted()
    assert count(engine, quarantine) == summary.lines_quarantined + summary.events_quarantined
    assert count(engine, events) == summary.events_imported


def run_cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "dashboard", *args], capture_output=True, text=True, env=env
    )


def test_cli_exit_codes_and_summary(tmp_path):
    db = f"duckdb:///{tmp_path / 'cli.duckdb'}"
    path = write_jsonl(tmp_path / "log.jsonl", [*mixed_log(), "{broken"])
    done = run_cli("ingest", str(path), "--db", db)
    assert done.returncode == 0, done.stderr
    assert "events imported: 6" in done.stdout and "malformed JSON" in done.stdout
    strict = run_cli(
        "ingest", str(write_jsonl(tmp_path / "more.jsonl", ["{bad"])), "--db", db, "--strict"
    )
    assert strict.returncode == 1
    missing = run_cli("ingest", str(tmp_path / "nope.jsonl"), "--db", db)
    assert (
        missing.returncode == 2
        and "no such file" in missing.stderr
        and "Traceback" not in missing.stderr
    )
    bad_url = run_cli("ingest", str(path), "--db", "nosuchdb://x")
    assert bad_url.returncode == 2 and "Traceback" not in bad_url.stderr
    assert run_cli("ingest").returncode == 2  # argparse usage error


def test_store_url_from_environment(tmp_path):
    import os

    env = dict(os.environ, EQM_DB_URL=f"sqlite:///{tmp_path / 'env.sqlite'}")
    path = write_jsonl(tmp_path / "log.jsonl", mixed_log())
    assert run_cli("ingest", str(path), env=env).returncode == 0
    assert (tmp_path / "env.sqlite").exists()


def test_duckdb_memory_limit_from_environment(tmp_path, monkeypatch):
    from dashboard.store.database import StoreError, make_engine

    def limit() -> str:
        engine = make_engine(f"duckdb:///{tmp_path / 'limit.duckdb'}")
        try:
            with engine.connect() as connection:
                return connection.execute(
                    sa.text("SELECT current_setting('memory_limit')")
                ).scalar()
        finally:
            engine.dispose()

    monkeypatch.delenv("EQM_DUCKDB_MEMORY_LIMIT", raising=False)
    assert limit() == "953.6 MiB"  # 1 GB, not DuckDB's 80% of the machine
    monkeypatch.setenv("EQM_DUCKDB_MEMORY_LIMIT", "512MB")
    assert limit() == "488.2 MiB"
    monkeypatch.setenv("EQM_DUCKDB_MEMORY_LIMIT", "1GB'; DROP TABLE events; --")
    with pytest.raises(StoreError, match="EQM_DUCKDB_MEMORY_LIMIT"):
        limit()


def test_csv_bad_byte_quarantines_only_its_row_and_reimport_is_clean(engine, tmp_path, config):
    lines = [b"channel,event_name,event_time,event_id"]
    for i in range(1, 1500):
        name = b"Le\xffad" if i == 700 else b"Lead"
        lines.append(b"server," + name + b"," + str(T0 + i).encode() + b",e" + str(i).encode())
    path = tmp_path / "bad_byte.csv"
    path.write_bytes(b"\n".join(lines) + b"\n")
    summary = ingest([path], engine, config=config)
    assert (summary.events_imported, summary.lines_quarantined) == (1498, 1)
    assert summary.quarantined_by_reason["not UTF-8"] == 1 and summary.accounted()
    again = ingest([path], engine, config=config)  # used to fail with a duplicate quarantine row
    assert (again.events_imported, again.lines_read) == (0, 0)
    assert count(engine, events) == 1498 and count(engine, quarantine) == 1


def test_csv_with_byte_order_mark(duck_engine, tmp_path, config):
    path = tmp_path / "excel.csv"
    path.write_bytes(
        b"\xef\xbb\xbfchannel,event_name,event_time\nserver,Lead," + str(T0).encode() + b"\n"
    )
    assert ingest([path], duck_engine, config=config).events_imported == 1


def test_jsonl_with_byte_order_mark(duck_engine, tmp_path, config):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(
        b"\xef\xbb\xbf" + json.dumps(capi([event("Lead", T0, "a")], sent_at=T0)).encode() + b"\n"
    )
    assert ingest([path], duck_engine, config=config).events_imported == 1


def test_different_files_with_the_same_first_line_are_both_kept(engine, tmp_path, config):
    head = capi([event("Lead", T0, "same-head")], sent_at=T0)
    write_jsonl(
        tmp_path / "a.jsonl",
        [head, *[capi([event("Lead", T0, f"a{i}")], sent_at=T0) for i in range(4)]],
    )
    write_jsonl(
        tmp_path / "b.jsonl",
        [head, *[capi([event("Lead", T0, f"b{i}")], sent_at=T0) for i in range(4)]],
    )
    first = ingest([tmp_path], engine, config=config)
    assert first.events_imported == 10 and not first.reimported_files
    again = ingest([tmp_path], engine, config=config)
    assert again.events_imported == 0 and not again.reimported_files
    assert count(engine, events) == 10


def test_half_written_last_record_waits_for_the_next_import(duck_engine, tmp_path, config):
    a = json.dumps(capi([event("Lead", T0, "a")], sent_at=T0)).encode()
    b = json.dumps(capi([event("Lead", T0, "b")], sent_at=T0)).encode()
    path = tmp_path / "live.jsonl"
    path.write_bytes(a + b"\n" + b[:40])
    first = ingest([path], duck_engine, config=config)
    assert (
        first.events_imported,
        first.lines_read,
        first.pending_lines,
        first.lines_quarantined,
    ) == (1, 1, 1, 0)
    with path.open("ab") as fh:
        fh.write(b[40:] + b"\n")
    second = ingest([path], duck_engine, config=config)
    assert (second.events_imported, second.lines_quarantined) == (1, 0)
    assert list(rows(duck_engine, "event_id")["event_id"]) == ["a", "b"]


def test_half_written_last_csv_row_waits_too(duck_engine, tmp_path, config):
    path = tmp_path / "live.csv"
    path.write_bytes(
        b"channel,event_name,event_time,event_id\nserver,Lead,"
        + str(T0).encode()
        + b",a\nserver,Le"
    )
    first = ingest([path], duck_engine, config=config)
    assert (first.events_imported, first.pending_lines, first.lines_quarantined) == (1, 1, 0)
    with path.open("ab") as fh:
        fh.write(b"ad," + str(T0).encode() + b",b\n")
    assert ingest([path], duck_engine, config=config).events_imported == 1
    assert list(rows(duck_engine, "event_id")["event_id"]) == ["a", "b"]


def test_reports_finish_dedup_after_an_interrupted_import(duck_engine, tmp_path, config):
    from dashboard.core.filters import Filters
    from dashboard.outputs.report import build_report

    log = [pixel(event("Lead", T0, "x")), capi([event("Lead", T0, "x")], sent_at=T0 + 5)]
    ingest([write_jsonl(tmp_path / "l.jsonl", log)], duck_engine, config=config, update_dedup=False)
    report = build_report(duck_engine, Filters(), config)
    assert report["overall"]["event_coverage"] == 1.0
    assert report["overall"]["dedup"]["server"]["deduplicated"] == 1


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".csv"])
def test_checkpoint_window_hash_matches_the_file(
    duck_engine, tmp_path, config, monkeypatch, suffix
):
    """The window hash kept from the bytes read equals the one read back from the file."""
    monkeypatch.setattr(ingest_readers, "CHUNK_LINES", 7)
    if suffix == ".csv":
        body = "channel,event_name,event_time,event_id\n" + "".join(
            f"server,Lead,{T0 + i},c{i}\n" for i in range(30)
        )
        data = body.encode() + b"server,Le"  # a pending last row
    else:
        data = b"".join(
            json.dumps(capi([event("Lead", T0 + i, f"j{i}")], sent_at=T0)).encode() + b"\n"
            for i in range(30)
        )
    path = tmp_path / f"log{suffix}"
    path.write_bytes(gzip.compress(data) if suffix.endswith(".gz") else data)
    ingest([path], duck_engine, config=config)
    with duck_engine.connect() as connection:
        row = connection.execute(sa.select(sources)).mappings().one()
    assert row["last_line_hash"] == ingest_files.window_hash(path, row["bytes_done"])
    assert ingest([path], duck_engine, config=config).events_imported == 0
