"""Coverage-guided fuzzing of the importer with atheris (issue #7). Not run in CI: the
hypothesis tests in tests/test_fuzz.py check the same invariants there.

    python3 -m pip install atheris          # a manylinux wheel; no compiler needed
    python3 fuzz/fuzz_ingest.py --seed-corpus /tmp/eqm-corpus
    python3 fuzz/fuzz_ingest.py /tmp/eqm-corpus -dict=fuzz/ingest.dict -max_total_time=300 \\
        -timeout=20 -rss_limit_mb=4096 -max_len=65536 -print_final_stats=1

The first input byte picks the file kind (mod 5): 0 JSONL, 1 JSONL gzip-compressed,
2 CSV, 3 CSV gzip-compressed, 4 the raw bytes as a .jsonl.gz (damaged gzip). The rest is
the file; it is imported with `ingest` into an in-memory SQLite store (`--duckdb` for an
in-memory DuckDB one), emptied before every input, and must:
- not raise (IngestError aside),
- account for every line (`summary.accounted()`), agree with the store (events rows ==
  events_imported, quarantine rows == lines + events quarantined, positions unique),
- import nothing and change nothing when the same file is imported again,
- keep nothing e-mail-shaped in the identifier columns or the quarantine detail.
A violation raises, and atheris saves the input as crash-<sha1> in the working folder.
"""

from __future__ import annotations

import gzip
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

import atheris

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # logkit: the store snapshot the tests compare too

with atheris.instrument_imports(include=["dashboard"]):
    import sqlalchemy as sa

    from dashboard.core.config import SAMPLE_LOG_PATH, load_config
    from dashboard.core.params import looks_like_email
    from dashboard.ingest import IngestError, ingest
    from dashboard.store.database import (
        create_schema,
        events,
        imports,
        make_engine,
        quarantine,
        sources,
        store_meta,
    )
from logkit import stored_positions  # noqa: E402 - after the path set-up, not instrumented

DUCKDB = "--duckdb" in sys.argv
KINDS = ((".jsonl", False), (".jsonl", True), (".csv", False), (".csv", True), (".jsonl.gz", None))
CONFIG = load_config()
FOLDER = Path(tempfile.mkdtemp(prefix="eqm-atheris-"))
ENGINE = (
    make_engine("duckdb:///:memory:", hold_connection=True)
    if DUCKDB
    else make_engine("sqlite:///:memory:")
)
create_schema(ENGINE)
IDENTIFIER_COLUMNS = ("event_id", "external_id", "fbp", "person_key", "em_hash")


def _reset() -> None:
    with ENGINE.begin() as connection:
        for table in (events, quarantine, sources, imports, store_meta):
            connection.execute(sa.delete(table))


def _file(data: bytes) -> Path:
    suffix, compress = KINDS[data[0] % len(KINDS)] if data else KINDS[0]
    body = data[1:]
    if compress:
        body = gzip.compress(body, mtime=0)
        suffix += ".gz"
    path = FOLDER / f"input{suffix}"
    for old in FOLDER.iterdir():
        old.unlink()
    path.write_bytes(body)
    return path


def check(data: bytes) -> None:
    path = _file(data)
    _reset()
    try:
        summary = ingest([path], ENGINE, config=CONFIG, update_dedup=False)
    except IngestError:
        return
    assert summary.accounted(), summary
    with ENGINE.connect() as connection:
        ev, qu = stored_positions(connection)
        identifiers = connection.execute(
            sa.select(*[events.c[name] for name in IDENTIFIER_COLUMNS])
        ).all()
        details = connection.execute(
            sa.select(quarantine.c.reason, quarantine.c.detail).where(
                quarantine.c.detail.is_not(None)
            )
        ).all()
    assert len(ev) == summary.events_imported, (len(ev), summary)
    assert len(qu) == summary.lines_quarantined + summary.events_quarantined, (len(qu), summary)
    positions = [row[:3] for row in ev + qu]
    assert len(positions) == len(set(positions)), "one position stored twice"
    assert Counter(row[3] for row in qu) == summary.quarantined_by_reason
    for row in identifiers:
        for name, value in zip(IDENTIFIER_COLUMNS, row, strict=True):
            assert value is None or not looks_like_email(value), (name, value[:100])
    for reason, detail in details:
        assert not looks_like_email(detail), (reason, detail[:100])
    again = ingest([path], ENGINE, config=CONFIG, update_dedup=False)
    assert again.events_imported == 0 and again.accounted(), again
    assert again.lines_read <= summary.quarantined_by_reason["truncated or corrupt gzip"], again
    with ENGINE.connect() as connection:
        assert stored_positions(connection) == (ev, qu), "a second import changed the store"


def TestOneInput(data: bytes) -> None:  # noqa: N802 - atheris' entry point name
    check(data)


def seed_corpus(folder: Path) -> None:
    """Seeds: first lines of the bundled sample as JSONL, gzip and CSV, plus odd shapes."""
    folder.mkdir(parents=True, exist_ok=True)
    with gzip.open(SAMPLE_LOG_PATH, "rb") as fh:
        lines = [fh.readline() for _ in range(40)]
    seeds = {
        "one": b"\x00" + lines[0],
        "request": b"\x00" + lines[1],
        "five": b"\x00" + b"".join(lines[:5]),
        "crlf": b"\x00" + b"".join(line.replace(b"\n", b"\r\n") for line in lines[:3]),
        "no_newline": b"\x00" + b"".join(lines[:2]).rstrip(b"\n"),
        "bom": b"\x00\xef\xbb\xbf" + lines[0],
        "gzip": b"\x01" + b"".join(lines[:10]),
        "damaged_gzip": b"\x04" + gzip.compress(b"".join(lines[:10]), mtime=0)[:-30],
        "csv": b"\x02channel,sent_at,dataset_id,event_name,event_time,event_id,em,fbp,"
        b"custom_data.value,custom_data.currency,response_status,error_code\n"
        b"server,2026-11-20T10:15:02Z,7,Purchase,1763632800,o1,"
        b'"[""' + b"a" * 64 + b'""]",fb.1.1700000000000.123,10,EUR,400,190\n'
        b'browser,1763632800,7,Lead,1763632800,"l,1",,,,,,\n',
        "csv_gzip": b"\x03channel,event_name,event_time\nserver,Lead,1763632800\n",
    }
    for name, seed in seeds.items():
        (folder / name).write_bytes(seed)
    print(f"{len(seeds)} seeds in {folder}")


def main() -> None:
    if "--seed-corpus" in sys.argv:
        seed_corpus(Path(sys.argv[sys.argv.index("--seed-corpus") + 1]))
        return
    args = [a for a in sys.argv if a not in ("--strict", "--duckdb")]
    try:
        atheris.Setup(args, TestOneInput)
        atheris.Fuzz()  # exits the process when done (libFuzzer)
    finally:
        shutil.rmtree(FOLDER, ignore_errors=True)


if __name__ == "__main__":
    main()
