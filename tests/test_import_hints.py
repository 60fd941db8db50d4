"""Files people import by hand that used to come out wrong (GitHub issue #16, part 6).

- A JSON array of our own records, pretty-printed or on one line, is read as records
  (each numbered by its place in the array), not line by line as "malformed JSON".
- A CSV separated by `;`, a tab or `|` is read with its delimiter, found on the header,
  and a grown file is read the same way.
- A binary file (an image, an archive, random bytes) is one quarantined pseudo-line
  "binary file, not text", not one "not UTF-8" per newline byte.
- An upload is complete: its last line is read without a final newline, while a file
  on disk keeps waiting for that newline (it may still be being written).

Every expectation below is counted by hand from the file the test writes.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
import struct
import zipfile
from pathlib import Path

import pytest
import sqlalchemy as sa
from logkit import T0, capi, event, pixel

from dashboard.cli import main
from dashboard.ingest import files as ingest_files
from dashboard.ingest import formats as ingest_formats
from dashboard.ingest import ingest
from dashboard.ingest.uploads import ingest_uploads
from dashboard.store.database import events, make_engine, quarantine

BINARY = "binary file, not text"


def _store(tmp_path: Path, name: str = "store"):
    return make_engine(f"duckdb:///{tmp_path / (name + '.duckdb')}")


def _events(engine) -> list[tuple]:
    """(line_no, idx, event_name) of every stored event, in file order."""
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(events.c.line_no, events.c.idx, events.c.event_name).order_by(
                events.c.line_no, events.c.idx
            )
        ).all()
    return [tuple(row) for row in rows]


def _quarantine(engine) -> list[tuple]:
    """(line_no, idx, reason, detail) of every quarantined line or event."""
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(
                quarantine.c.line_no, quarantine.c.idx, quarantine.c.reason, quarantine.c.detail
            ).order_by(quarantine.c.line_no)
        ).all()
    return [tuple(row) for row in rows]


# -- a JSON array of records ------------------------------------------------------------
THREE_RECORDS = [
    pixel(event("PageView", T0, "a"), dataset="11"),
    pixel(event("ViewContent", T0 + 10, "b"), dataset="11"),
    pixel(event("AddToCart", T0 + 20, "c"), dataset="11"),
]


@pytest.mark.parametrize("indent", [2, None], ids=["pretty", "one-line"])
def test_json_array_of_records_imports_each_record_once(tmp_path, indent):
    path = tmp_path / "export.json"
    path.write_text(json.dumps(THREE_RECORDS, indent=indent) + "\n")
    engine = _store(tmp_path)
    summary = ingest([path], engine)
    assert summary.formats[str(path)].startswith("eqm-v1 ")
    # 3 records, one event each, nothing quarantined or left waiting.
    assert (summary.lines_read, summary.events_imported, summary.lines_quarantined) == (3, 3, 0)
    assert summary.pending_lines == 0 and summary.accounted()
    # Each record's place in the array (from 1) is its line number.
    assert _events(engine) == [(1, 0, "PageView"), (2, 0, "ViewContent"), (3, 0, "AddToCart")]

    again = ingest([path], engine)
    assert (again.lines_read, again.events_imported, again.lines_already_imported) == (0, 0, 3)
    assert len(_events(engine)) == 3 and _quarantine(engine) == []
    engine.dispose()


def test_json_array_mixing_records_bodies_and_a_bad_element(tmp_path):
    """Element 1: a pixel record (1 event); 2: a CAPI request record of 2 events; 3: a raw
    request body of 1 event (read as in a JSON Lines v1 file); 4: an unknown kind."""
    records = [
        pixel(event("PageView", T0, "a")),
        capi([event("Lead", T0 + 5, "b"), event("Purchase", T0 + 6, "c")], T0 + 7),
        {"data": [event("Search", T0 + 8, "d")]},
        {"kind": "nope"},
    ]
    path = tmp_path / "mixed.json"
    path.write_text(json.dumps(records, indent=4))  # no final newline: a file as saved
    engine = _store(tmp_path)
    summary = ingest([path], engine)
    assert summary.formats[str(path)].startswith("eqm-v1 ")
    assert (summary.lines_read, summary.lines_with_events, summary.lines_quarantined) == (4, 3, 1)
    assert summary.events_imported == 4 and summary.accounted()
    assert _events(engine) == [
        (1, 0, "PageView"),
        (2, 0, "Lead"),
        (2, 1, "Purchase"),
        (3, 0, "Search"),
    ]
    assert [row[:3] for row in _quarantine(engine)] == [(4, -1, "unknown kind")]
    engine.dispose()


def test_json_array_of_request_bodies_is_still_capi_body_json(tmp_path):
    bodies = [{"data": [event("Lead", T0, "a")]}, {"data": [event("Lead", T0 + 1, "b")]}]
    path = tmp_path / "bodies.json"
    path.write_text(json.dumps(bodies, indent=2))
    engine = _store(tmp_path)
    summary = ingest([path], engine)
    assert summary.formats[str(path)].startswith("capi-body-json ")
    assert (summary.lines_read, summary.events_imported) == (2, 2)
    engine.dispose()


def test_gzipped_json_array_of_records(tmp_path):
    path = tmp_path / "export.json.gz"
    path.write_bytes(gzip.compress(json.dumps(THREE_RECORDS, indent=2).encode()))
    engine = _store(tmp_path)
    summary = ingest([path], engine)
    assert (summary.formats[str(path)][:7], summary.events_imported) == ("eqm-v1 ", 3)
    engine.dispose()


# -- CSV delimiters ---------------------------------------------------------------------
CSV_ROWS = [
    ["channel", "event_name", "event_time", "event_id", "dataset_id"],
    ["browser", "PageView", str(T0), "a", "11"],
    ["server", "PageView", str(T0 + 1), "a", "11"],
    ["browser", "Purchase", str(T0 + 2), "b", "11"],
    ["server", "Purchase", str(T0 + 3), "b", "11"],
]


def _write_csv(path: Path, rows: list[list[str]], delimiter: str) -> Path:
    with path.open("w", newline="") as fh:
        csv.writer(fh, delimiter=delimiter).writerows(rows)
    return path


@pytest.mark.parametrize(
    "delimiter", [";", "\t", "|", ","], ids=["semicolon", "tab", "pipe", "comma"]
)
def test_csv_delimiter_is_found_on_the_header_and_kept_as_the_file_grows(tmp_path, delimiter):
    path = _write_csv(tmp_path / "pixel.csv", CSV_ROWS, delimiter)
    engine = _store(tmp_path)
    summary = ingest([path], engine)
    assert summary.formats[str(path)].startswith("eqm-csv ")
    # The header and 4 rows: 4 events, the header a line without events.
    assert (summary.lines_read, summary.events_imported, summary.blank_lines) == (5, 4, 1)
    assert summary.lines_quarantined == summary.events_quarantined == 0

    with path.open("a", newline="") as fh:
        csv.writer(fh, delimiter=delimiter).writerow(["browser", "Lead", str(T0 + 4), "c", "11"])
    grown = ingest([path], engine)
    assert (grown.lines_read, grown.events_imported, grown.lines_already_imported) == (1, 1, 5)
    assert grown.reimported_files == []
    assert [name for _, _, name in _events(engine)] == ["PageView"] * 2 + ["Purchase"] * 2 + [
        "Lead"
    ]
    engine.dispose()


def test_semicolon_cell_inside_quotes_does_not_change_a_comma_csv(tmp_path):
    """A quoted `;` in a comma CSV's header is a character of a name, not a delimiter."""
    rows = [[*CSV_ROWS[0], "custom_data.note;x"], *(row + ["1;2"] for row in CSV_ROWS[1:])]
    path = _write_csv(tmp_path / "pixel.csv", rows, ",")
    engine = _store(tmp_path)
    summary = ingest([path], engine)
    assert (summary.events_imported, summary.lines_quarantined) == (4, 0)
    engine.dispose()


def test_tab_separated_file_without_a_csv_name(tmp_path):
    """Detected by its header, as a comma CSV named .txt is."""
    path = _write_csv(tmp_path / "export.txt", CSV_ROWS, "\t")
    engine = _store(tmp_path)
    summary = ingest([path], engine)
    assert summary.formats[str(path)].startswith("eqm-csv ")
    assert (summary.events_imported, summary.lines_quarantined) == (4, 0)
    engine.dispose()


def test_sgtm_bigquery_csv_with_semicolons(tmp_path):
    """Stape's BigQuery rows as CSV: one Meta request row (1 event) and its answer row."""
    body = json.dumps({"data": [event("Purchase", T0, "p1")]})
    header = ["tag_name", "type", "trace_id", "event_name", "request_url", "request_body"]
    header += ["response_status_code", "response_body", "timestamp"]
    url = "https://graph.facebook.com/v24.0/555/events"
    rows = [
        header,
        ["Facebook", "Request", "t1", "Purchase", url, body, "", "", str(T0 * 1000)],
        ["Facebook", "Response", "t1", "Purchase", "", "", "200", '{"events_received":1}', ""],
    ]
    path = _write_csv(tmp_path / "bigquery.csv", rows, ";")
    engine = _store(tmp_path)
    summary = ingest([path], engine)
    assert summary.formats[str(path)].startswith("sgtm ")
    assert (summary.events_imported, summary.lines_quarantined) == (1, 0)
    assert sum(summary.lines_skipped.values()) == 1  # the answer row
    with engine.connect() as connection:
        delivery = connection.execute(sa.select(events.c.delivery)).scalar_one()
    assert delivery == "accepted"
    engine.dispose()


def test_semicolon_csv_read_as_commas_before_is_read_again(tmp_path, monkeypatch):
    """A store that read a `;` file before delimiters were detected (every row
    quarantined) reads it again, whole, in its own delimiter."""
    path = _write_csv(tmp_path / "pixel.csv", CSV_ROWS, ";")
    engine = _store(tmp_path)
    with monkeypatch.context() as patch:
        for module in (ingest_files, ingest_formats):
            patch.setattr(module, "header_delimiter", lambda text: ",")
        before = ingest([path], engine)
    assert before.events_imported == 0
    assert before.quarantined_by_reason == {"channel must be browser or server": 4}

    after = ingest([path], engine)
    assert after.reimported_files == [str(path)]
    assert (after.lines_read, after.events_imported, after.lines_quarantined) == (5, 4, 0)
    assert len(_events(engine)) == 4 and _quarantine(engine) == []
    engine.dispose()


# -- binary files -----------------------------------------------------------------------
def _png(size: int = 3_000) -> bytes:
    noise = random.Random(16).randbytes(size)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + noise


def _random_bytes(size: int = 20_000) -> bytes:
    return random.Random(6).randbytes(size)


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("log.jsonl", json.dumps(THREE_RECORDS[0]) + "\n")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "name, data, detail",
    [
        ("picture.png", _png(), "a PNG image"),
        ("noise.jsonl", _random_bytes(), "not text"),
        ("noise.jsonl.gz", gzip.compress(_random_bytes()), "not text"),
        ("logs.zip", _zip(), "ZIP archive"),
        ("export.csv", _png(), "a PNG image"),
        ("windows.jsonl", (json.dumps(THREE_RECORDS[0]) + "\r\n").encode("utf-16"), "UTF-16"),
    ],
    ids=["png", "random", "random-gzip", "zip", "png-named-csv", "utf-16"],
)
def test_binary_file_is_one_quarantined_line(tmp_path, name, data, detail):
    path = tmp_path / name
    path.write_bytes(data)
    engine = _store(tmp_path)
    summary = ingest([path], engine)
    assert summary.formats[str(path)] == "(binary file, not text)"
    assert (summary.lines_read, summary.lines_quarantined, summary.events_imported) == (1, 1, 0)
    assert summary.quarantined_by_reason == {BINARY: 1} and summary.accounted()
    ((line_no, idx, reason, stored_detail),) = _quarantine(engine)
    assert (line_no, idx, reason) == (1, -1, BINARY) and detail in stored_detail

    again = ingest([path], engine)
    assert (again.lines_read, again.lines_quarantined, again.lines_already_imported) == (0, 0, 1)
    assert len(_quarantine(engine)) == 1 and _events(engine) == []
    engine.dispose()


def test_binary_file_beside_a_log_and_the_exit_code(tmp_path):
    """`ingest` imports the log, quarantines the picture once, and exits 0 (1 with
    --strict, as for any quarantine)."""
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "a.jsonl").write_text(
        "".join(json.dumps(record) + "\n" for record in THREE_RECORDS)
    )
    (tmp_path / "logs" / "b.log").write_bytes(_png())
    db = f"duckdb:///{tmp_path / 'cli.duckdb'}"
    assert main(["ingest", str(tmp_path / "logs"), "--db", db]) == 0
    engine = make_engine(db)
    assert len(_events(engine)) == 3
    assert [row[2] for row in _quarantine(engine)] == [BINARY]
    engine.dispose()
    assert main(["ingest", str(tmp_path / "logs" / "b.log"), "--db", db, "--strict"]) == 0
    fresh = f"duckdb:///{tmp_path / 'strict.duckdb'}"
    assert main(["ingest", str(tmp_path / "logs" / "b.log"), "--db", fresh, "--strict"]) == 1


def test_text_log_with_a_damaged_line_is_not_binary(tmp_path):
    """8 good lines (well over the 512 bytes the binary check needs) and one with a NUL
    and bytes that are no UTF-8: 8 events, that one line quarantined."""
    lines = [json.dumps(pixel(event("PageView", T0 + i, f"e{i}"))).encode() for i in range(8)]
    lines.insert(3, b'{"kind": "pixel_event"\x00\xff\xfe\xfd}')
    path = tmp_path / "damaged.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    engine = _store(tmp_path)
    summary = ingest([path], engine)
    assert summary.formats[str(path)].startswith("eqm-v1 ")
    assert (summary.lines_read, summary.events_imported, summary.lines_quarantined) == (9, 8, 1)
    assert [row[0] for row in _quarantine(engine)] == [4]
    engine.dispose()


# -- uploads are complete -----------------------------------------------------------------
# A header and 2 rows, no newline after the last row.
TWO_ROWS = "\n".join(",".join(row) for row in CSV_ROWS[:3]).encode()


def test_upload_is_read_to_its_last_row(tmp_path):
    engine = _store(tmp_path)
    summary = ingest_uploads([("pixel.csv", TWO_ROWS)], engine)
    assert (summary.lines_read, summary.events_imported, summary.pending_lines) == (3, 2, 0)
    assert [row[:2] for row in _events(engine)] == [(2, 0), (3, 0)]  # header = record 1

    again = ingest_uploads([("pixel.csv", TWO_ROWS)], engine)
    assert (again.lines_read, again.events_imported, again.lines_already_imported) == (0, 0, 3)
    engine.dispose()


def test_same_bytes_on_disk_wait_for_the_last_newline(tmp_path):
    """On disk the last row may still be being written: it waits for its newline."""
    path = tmp_path / "pixel.csv"
    path.write_bytes(TWO_ROWS)
    engine = _store(tmp_path)
    first = ingest([path], engine)
    assert (first.lines_read, first.events_imported, first.pending_lines) == (2, 1, 1)
    with path.open("ab") as fh:
        fh.write(b"\n")
    second = ingest([path], engine)
    assert (second.lines_read, second.events_imported, second.pending_lines) == (1, 1, 0)
    assert [row[:2] for row in _events(engine)] == [(2, 0), (3, 0)]
    engine.dispose()


def test_upload_of_a_cut_json_line_is_read_not_left_waiting(tmp_path):
    """A last JSON line with no newline that does not parse: on disk a writer may be
    mid-line, so it waits; an upload is complete, so it is read (and quarantined)."""
    first_line = json.dumps(pixel(event("PageView", T0, "a"))).encode()
    data = first_line + b"\n" + json.dumps(pixel(event("Lead", T0 + 1, "b"))).encode()[:-5]
    path = tmp_path / "events.jsonl"
    path.write_bytes(data)
    on_disk = _store(tmp_path, "disk")
    waiting = ingest([path], on_disk)
    assert (waiting.lines_read, waiting.events_imported, waiting.pending_lines) == (1, 1, 1)
    on_disk.dispose()

    uploaded = _store(tmp_path, "upload")
    summary = ingest_uploads([("events.jsonl", data)], uploaded)
    assert (summary.lines_read, summary.events_imported, summary.pending_lines) == (2, 1, 0)
    assert summary.quarantined_by_reason == {"malformed JSON": 1}
    uploaded.dispose()
