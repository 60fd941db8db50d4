"""The vectorised importer stores exactly what the per-record Python path stores.

Each log is imported twice into fresh DuckDB stores, once with `vectorised=False` (every
line through `build_row`, the definition of every stored value) and once with the
vectorised path (lines it cannot decide exactly fall back to `build_row`). Events and
quarantine must be identical row for row. The logs are built to hit every case the fast
path judges itself and every case it must hand back.
"""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from pathlib import Path

import duckdb
import numpy as np
import sqlalchemy as sa
from conftest import write_jsonl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashboard.core.config import SAMPLE_LOG_PATH, load_config
from dashboard.core.params import PLAINTEXT_MARKER, REASON_TEXT, is_ip_address, parse_reasons
from dashboard.ingest import ingest
from dashboard.ingest.fastpath import BlockParser
from dashboard.ingest.fastpath_sql import IPV4_PATTERN, IPV6_FULL_PATTERN
from dashboard.store.database import EVENT_INSERT_COLUMNS, events_arrow_schema, make_engine
from tests.logkit import T0, capi, event, iso, pixel, sha

_DERIVED = ("dedup_status", "id_twin_48h", "covered_any_key", "likely_double")


def _import_both(tmp_path, log_path):
    """(events, quarantine, summary) per path, rows sorted by position."""
    out = {}
    for vectorised in (True, False):
        engine = make_engine(f"duckdb:///{tmp_path / f'v{vectorised}.duckdb'}")
        summary = ingest([log_path], engine, vectorised=vectorised)
        assert summary.accounted()
        with engine.connect() as connection:
            columns = list(EVENT_INSERT_COLUMNS + _DERIVED)
            rows = connection.execute(
                sa.text(f"SELECT {', '.join(columns)} FROM events ORDER BY source_id, line_no, idx")
            ).fetchall()
            quarantined = connection.execute(
                sa.text("SELECT line_no, idx, reason, detail FROM quarantine ORDER BY 1, 2")
            ).fetchall()
        engine.dispose()
        out[vectorised] = (rows, quarantined, summary)
    return out


def _assert_same(tmp_path, log_path):
    both = _import_both(tmp_path, log_path)
    (fast_rows, fast_q, fast_s), (slow_rows, slow_q, slow_s) = both[True], both[False]
    for fast, slow in zip(fast_rows, slow_rows, strict=False):
        assert fast == slow, _first_difference(fast, slow)
    assert len(fast_rows) == len(slow_rows)
    assert fast_q == slow_q
    for counter in (
        "lines_read",
        "blank_lines",
        "lines_with_events",
        "lines_quarantined",
        "events_imported",
        "events_quarantined",
        "pending_lines",
    ):
        assert getattr(fast_s, counter) == getattr(slow_s, counter), counter
    return both[True]


def _first_difference(fast, slow):
    columns = list(EVENT_INSERT_COLUMNS + _DERIVED)
    return {
        columns[i]: (a, b) for i, (a, b) in enumerate(zip(fast, slow, strict=True)) if a != b
    } | {"position": fast[:3]}


def _leftover_lines(log_path) -> int:
    """How many lines of a log the fast path hands back (line 1 always goes back)."""
    data = log_path.read_bytes()
    if log_path.suffix == ".gz":
        data = gzip.decompress(data)
    ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10) + 1
    parser = BlockParser(load_config(), EVENT_INSERT_COLUMNS, events_arrow_schema())
    try:
        _, leftover = parser.parse(data, ends, 1, 1, 4 << 20)
    finally:
        parser.close()
    return len(leftover)


def test_sample_log_is_identical_and_taken_by_the_fast_path(tmp_path):
    rows, _, summary = _assert_same(tmp_path, SAMPLE_LOG_PATH)
    assert summary.events_imported == len(rows) > 19_000
    # Only line 1 (where a BOM could be) goes to the Python path on the sample.
    assert _leftover_lines(SAMPLE_LOG_PATH) == 1


EM = sha("a@example.com")
PH = sha("+15550100")
FBP = "fb.1.1763632800000.1234567890"
FBC = "fb.1.1763632800000.IwAR0abc_DEF-ghi"
MD5 = "5d41402abc4b2a76b9719d911017c592"
USER_ERROR = {
    "message": "Invalid parameter",
    "code": 100,
    "error_subcode": 2804003,
    "error_user_title": "Event Timestamp Too Old",
    "error_user_msg": "Sent by x.y@example.com, call +1 (555) 010-0199, token=EAA" + "b" * 30,
    "fbtrace_id": "A6UyEgg_HdoiRX9duxcBOjb",
}


def _edge_lines():
    """One record per case; a comment says which path each should take."""
    ev = event

    def px(record):
        return pixel(record, sent_at=T0 + 100)

    lines: list = [
        px(ev("PageView", T0, "first")),  # line 1: always the Python path
        # Plain cases the fast path owns.
        px(ev("PageView", T0, "a1", em=EM, fbp=FBP, fbc=FBC, client_ip_address="1.2.3.4")),
        px(ev("ViewContent", T0 + 1, "a2", em=[EM, "a@example.com"], ph=[PH])),
        # Raw UTF-8 (as Node's JSON.stringify writes it) in texts taken as they are.
        _raw(px(ev("Contato ✓", T0 + 2, "u1", em=EM, custom_data={"nota": "ação 日本"}))),
        _raw(
            pixel(
                ev(
                    "Lead",
                    T0 + 3,
                    "u2",
                    fbp=FBP,
                    custom_data={"campaign": "Campaña de otoño", "funnel_stage": "Negociação"},
                    extra={"action_source": "sítio", "messaging_channel": "ватсап"},
                ),
                dataset="datasét",
            )
        ),
        _raw(px(ev("Purchase", T0 + 4, "u3", custom_data={"value": 5, "title": "e\u0301 ́"}))),
        _raw(px(ev("L" * 100 + "é" * 20, T0 + 5, "u4"))),  # 120 characters, 140 bytes
        # The same as \uXXXX escapes (as Python's json.dumps writes them).
        px(ev("Contato ✓", T0 + 6, "w1", em=EM, custom_data={"nota": "ação 日本 \u0085"})),
        px(ev("Lead", T0 + 6, "w2", custom_data={"campaign": "Campaña", "funnel_stage": "Ω"})),
        px(ev("L" * 100 + "é" * 20, T0 + 6, "w3")),
        '{"kind": "pixel_event", "event": {"event_name": "Caf\\u00e9 \\/ \\uFFFF", "event_time": '
        + str(T0 + 6)
        + "}}",
        px(ev("Lead", T0 + 2, "a3", em=["not a hash", "B@Example.com"], ph=[])),
        px(ev("Lead", T0 + 3, "a4", em="A@EXAMPLE.COM", ph="+1 (555) 010-0199")),
        px(ev("Lead", T0 + 4, "a5", em=EM.upper(), fn="5d41402abc4b2a76b9719d911017c592")),
        px(ev("Lead", T0 + 5, "a6", em="null", ph="0", external_id="N/A")),
        px(ev("Contact", T0 + 6, "a7", external_id="+15550100123", fbp="fb.1.176363.1")),
        px(ev("Contact", T0 + 7, "a8", external_id="me@example.com", fbp="x@example.com")),
        px(ev("Contact", T0 + 8, "a9", external_id="12345", fbc="fb.4.1763632800000.x")),
        px(ev("Contact", T0 + 9, "b1", client_ip_address="2001:db8::1", ctwa_clid="c1")),
        px(ev("Contact", T0 + 10, "b2", client_ip_address="999.1.1.1", madid=EM)),
        px(ev("Contact", T0 + 11, "b3", client_ip_address="fe80::1%eth0", page_id="12a")),
        px(ev("Contact", T0 + 12, "b4", lead_id="1234567890123456", page_scoped_user_id="7")),
        px(ev("Contact", T0 + 13, "b5", lead_id="123", client_user_agent="Mozilla/5.0 x")),
        px(ev("Contact", T0 + 14, "b6", fn=EM, ln=EM, ge=EM, client_user_agent="ua")),
        px(ev("Contact", T0 + 15, "b7", db=EM, client_user_agent="Mozilla")),
        # IP and user-agent fingerprints: case-folded IPv6, the first valid list element.
        px(ev("Contact", T0 + 15, "b7a", client_ip_address="2001:DB8::1", client_user_agent="UA")),
        px(ev("Contact", T0 + 15, "b7b", client_ip_address=["x", "1.2.3.4"], client_user_agent=[])),
        px(ev("Contact", T0 + 15, "b7c", client_ip_address=[], client_user_agent=["null", "u"])),
        px(ev("Contact", T0 + 15, "b7d", client_user_agent=EM, client_ip_address="null")),
        px(ev("Contact", T0 + 16, "me@example.com", em=EM)),  # e-mail as event_id
        px(ev("Contact", T0 + 17, "", em=EM)),  # empty event_id
        px(ev("Purchase", (T0 + 18) * 1000, "b8", em=EM)),  # milliseconds
        pixel(
            ev(
                "Purchase",
                T0 + 19,
                "b9",
                em=EM,
                custom_data={"value": 12.5, "currency": "eur", "campaign": "Spring"},
            )
        ),
        px(ev("Purchase", T0 + 20, "c1", custom_data={"value": "49.90", "currency": ""})),
        px(ev("Purchase", T0 + 21, "c2", custom_data={"value": 1e16, "campaign": True})),
        px(ev("Purchase", T0 + 22, "c3", custom_data={"value": None, "funnel_stage": "VIP"})),
        pixel(
            ev(
                "ViewContent",
                T0 + 23,
                "c4",
                extra={"event_source_url": "https://x.example/p?utm_campaign=a+b%20c&x=1"},
            )
        ),
        pixel(
            ev(
                "ViewContent",
                T0 + 24,
                "c5",
                extra={"event_source_url": "https://x.example/p?utm_campaign=&utm_campaign=z"},
            )
        ),
        px(ev("CustomThing", T0 + 25, "c6", extra={"action_source": "chat"})),
        px(ev("Lead", T0 + 26, "c7", extra={"messaging_channel": "whatsapp"})),
        {**px(ev("Lead", T0 + 27, "c8")), "sent_at": "2025-11-20T10:00:30.123+02:00"},
        {**px(ev("Lead", T0 + 28, "c9")), "sent_at": "2025-11-20T10:00:30"},
        {**px(ev("Lead", T0 + 29, "d1")), "sent_at": T0 + 40},
        {**px(ev("Lead", T0 + 30, "d2")), "sent_at": (T0 + 40) * 1000},
        {**px(ev("Lead", T0 + 31, "d3")), "sent_at": None},
        {**px(ev("Lead", T0 + 32, "d4")), "dataset_id": 12345},
        {**px(ev("Lead", T0 + 33, "d5")), "dataset_id": 1.5},
        {**px(ev("Lead", T0 + 34, "d6")), "dataset_id": ""},
        capi([ev("Lead", T0 + 35, "d7", em=EM), ev("Lead", T0 + 36, "d8")], T0 + 60),
        capi([ev("Lead", T0 + 37, "d9")], T0 + 60, status=400, error={"code": 190, "message": "x"}),
        capi([ev("Lead", T0 + 38, "e1")], T0 + 60, test_event_code="TEST1"),
        capi([ev("Lead", T0 + 39, "e2")], T0 + 60, test_event_code="  "),
        capi([ev("Lead", T0 + 40, "e3")], T0 + 60, status=None),
        capi([ev("Lead", T0 + 41, "e4")], T0 + 60, events_received=0),
        {
            **capi([ev("Lead", T0 + 42, "e5")], T0 + 60),
            "response": {"status": 200, "body": {"error": "not an object"}},
        },
        {**capi([ev("Lead", T0 + 43, "e6")], T0 + 60), "response": {"status": 503}},
        {**capi([ev("Lead", T0 + 44, "e7")], T0 + 60), "response": "timeout"},
        capi(
            [ev("Lead", T0 + 45, "e8")],
            T0 + 60,
            status=400,
            error={"code": 100, "message": "bad em x.y@example.com, ph +1 (555) 010-0199."},
        ),
        px(ev("Contact", T0 + 46, "+15550100123")),  # a phone as event_id
        # Odd but decided alike: json.dumps(-0) is 0; NaN, 1e999 and trailing commas
        # (both paths read them as DuckDB does); 500 levels of nesting; an escaped slash.
        {**px(ev("Lead", T0 + 63, "h1")), "dataset_id": -0},
        '{"kind": "pixel_event", "sent_at": "' + iso(T0) + '", "event": {"event_name": '
        '"Lead", "event_time": ' + str(T0 + 70) + ', "custom_data": {"x": NaN}}}',
        '{"kind": "pixel_event", "event": {"event_name": "Lead", "event_time": '
        + str(T0 + 71)
        + ', "custom_data": {"value": 1e999, "x": [1,]},}}',
        '{"kind": "pixel_event", "event": {"event_name": "Lead", "event_time": '
        + str(T0 + 73)
        + ', "custom_data": {"deep": '
        + "[" * 500
        + "]" * 500
        + "}}}",
        '{"kind": "pixel_event", "event": {"event_name": "Lead", "event_time": '
        + str(T0 + 75)
        + ', "event_source_url": "https:\\/\\/x.example\\/?utm_campaign=slash"}}',
        # Reasons (params.value_reason, through the query's Python function) and the rest
        # of Meta's error object.
        px(ev("Lead", T0 + 76, "r1", fbc="fb.1.1763632800.x", fbp="fb.1.1763632800000.ab")),
        px(ev("Lead", T0 + 77, "r2", fbc="IwAR0abc", em=[MD5.upper(), EM.upper()])),
        px(ev("Lead", T0 + 78, "r3", ph=PLAINTEXT_MARKER + "ph", em=["null", "x"])),
        px(ev("Lead", T0 + 79, "r4", lead_id="123456789012345678", external_id="+15550100123")),
        capi([ev("Lead", T0 + 80, "r5", em="x")], T0 + 90, status=400, error=USER_ERROR),
        capi(
            [ev("Lead", T0 + 81, "r6")],
            T0 + 90,
            status=400,
            error={"code": 1, "error_user_title": 5, "error_user_msg": None, "fbtrace_id": ""},
        ),
        # Cases the fast path hands back (or that are quarantined).
        "HAND BACK FROM HERE",
        capi(
            [ev("Lead", T0 + 82, "r7")],
            T0 + 90,
            status=400,
            error={**USER_ERROR, "error_user_msg": "m" * 480 + " x.y@example.com"},
        ),
        px(ev("Lead", T0 + 45, "f1", em=[EM, 5])),  # non-text list element
        px(ev("Lead", T0 + 46, "f2", em=5)),  # number
        px(ev("Lead", T0 + 47, "f3", em={"x": 1})),
        px(ev("Lead", T0 + 48, "f4", em=" " + EM)),  # edge space
        px(ev("Lead", T0 + 49, "f5", fn="José")),  # non-ASCII
        px(ev("Lead", T0 + 50, "f6", client_user_agent='say "hi"')),  # escapes
        px(ev("Lead", T0 + 50, "f6a", client_user_agent="Mozilla é")),  # non-ASCII
        px(ev("Lead", T0 + 50, "f6b", client_ip_address=" 1.2.3.4")),  # edge space
        # Raw UTF-8 where Python and DuckDB could read a text apart: user_data values
        # (patterns, case), event_id, currency, test codes, error texts, Unicode spaces.
        px(ev("Lead", T0 + 50, "w4", em="ＡＢ@example.com")),  # escaped, in user_data
        px(ev("\u00a0Lead", T0 + 50, "w5")),  # an escaped Unicode space at the edge
        px(ev("Lead 😀", T0 + 50, "w6")),  # a surrogate pair
        '{"kind": "pixel_event", "event": {"event_name": "Le\\u0061d", "event_time": '
        + str(T0 + 50)
        + "}}",  # an ASCII letter as an escape
        _raw(px(ev("Lead", T0 + 50, "v1", fn="José", em=EM))),
        _raw(px(ev("Lead", T0 + 50, "v2", em="ＡＢ@example.com"))),
        _raw(px(ev("Lead", T0 + 50, "v3", ph="٥٥٥٠١٠٠١٢٣"))),
        _raw(px(ev("Lead", T0 + 50, "v4", external_id="İSTANBUL@example.com"))),
        _raw(px(ev("Lead", T0 + 50, "v5", client_ip_address=["1.2.3.4", "ß"]))),
        _raw(px(ev("Lead", T0 + 50, "josé@example.com"))),
        _raw(px(ev("Lead", T0 + 50, "v6", custom_data={"value": 1, "currency": "straße"}))),
        _raw(px(ev("\u00a0Lead", T0 + 50, "v7"))),
        _raw(px(ev("Lead\u3000", T0 + 50, "v8"))),
        _raw(px(ev("Lead", T0 + 50, "v9", custom_data={"campaign": "Otoño\u2003"}))),
        _raw(px(ev("Lead", T0 + 50, "v10", custom_data={"funnel_stage": "\u0085Won"}))),
        _raw(pixel(ev("Lead", T0 + 50, "v11"), dataset="\u00a0ds")),
        _raw(px(ev("L" * 120 + "é" * 10, T0 + 50, "v12"))),  # 130 characters: cut by both
        _raw(capi([ev("Lead", T0 + 50, "v13")], T0 + 60, test_event_code="\u00a0")),
        _raw(
            capi(
                [ev("Lead", T0 + 50, "v14")],
                T0 + 60,
                status=400,
                error={**USER_ERROR, "error_user_msg": "Tel. ٥٥٥٠١٠٠١٢٣ ou a\u00a0b@x.com"},
            )
        ),
        '{"kind": "pixel_event", "event": {"event_name": "Lead", "event_time": '
        + str(T0 + 50)
        + ', "user_data": {"client_user_agent": "a\\ud800b"}}}',  # a lone surrogate
        px(ev(" Lead", T0 + 51, "f7")),
        px(ev("", T0 + 52, "f8")),
        px(ev("Lead", T0 + 53.5, "f9")),
        px(ev("Lead", str(T0 + 54), "g1")),
        px(ev("Lead", 5, "g2")),
        px(ev("Lead", T0 + 55, 12345)),
        px(ev("Lead", T0 + 56, "g3", extra={"action_source": 7})),
        px(ev("Lead", T0 + 57, "g4", extra={"user_data": "x"})),
        px(ev("Lead", T0 + 58, "g5", extra={"custom_data": [1]})),
        px(ev("Lead", T0 + 59, "g6", custom_data={"campaign": 42})),
        px(ev("Lead", T0 + 60, "g7", custom_data={"value": "1_000"})),
        {**px(ev("Lead", T0 + 61, "g8")), "sent_at": "2025-02-30T10:00:00Z"},
        {**px(ev("Lead", T0 + 62, "g9")), "sent_at": "soon"},
        {**px(ev("Lead", T0 + 64, "h2")), "kind": "other"},
        {**px(ev("Lead", T0 + 65, "h3")), "event": None},
        {"event_name": "Lead", "event_time": T0 + 66, "user_data": {"em": EM}},  # bare
        capi([], T0 + 60),
        capi([ev("Lead", T0 + 67, "h4"), "not an event"], T0 + 60),
        capi([ev("Lead", T0 + 68, "h5"), ev("Lead", 0, "h6")], T0 + 60),
        {**capi([ev("Lead", T0 + 69, "h7")], T0 + 60), "response": {"status": "200"}},
        '{"kind": "pixel_event", "event": {"event_name": "Lead", "event_time": '
        + str(T0 + 72)
        + ', "custom_data": {"deep": '
        + "[" * 1100
        + "]" * 1100
        + "}}}",
        '{"kind": "pixel_event", "event": {"event_name": "Lead\\u0041", "event_time": '
        + str(T0 + 74)
        + "}}",
        b'{"kind": "pixel_event", "event": {"event_name": "L\xe9ad"}}',
        "{not json",
        "",
        "   ",
        "[1, 2]",
        '"text"',
    ]
    split = lines.index("HAND BACK FROM HERE")
    return lines[:split] + lines[split + 1 :], split


def _raw(record: dict) -> str:
    """A record as a line of raw UTF-8, not ASCII with escapes as json.dumps writes."""
    return json.dumps(record, ensure_ascii=False)


def test_edge_cases_are_identical(tmp_path):
    lines, handed_back_from = _edge_lines()
    log = write_jsonl(tmp_path / "edge.jsonl", lines)
    rows, quarantined, summary = _assert_same(tmp_path, log)
    assert summary.events_imported > 50 and summary.lines_quarantined > 5
    # Every reason is stored at least once, alike on both paths.
    at = list(EVENT_INSERT_COLUMNS).index("param_reasons")
    codes = {code for row in rows for code in parse_reasons(row[at]).values()}
    assert codes == set(REASON_TEXT)
    # The fast path really takes the plain cases (all but the first line before the split).
    data = log.read_bytes()
    ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10) + 1
    parser = BlockParser(load_config(), EVENT_INSERT_COLUMNS, events_arrow_schema())
    _, leftover = parser.parse(data, ends, 1, 1, 4 << 20)
    parser.close()
    assert set(leftover.tolist()) & set(range(handed_back_from)) == {0}
    assert len(leftover) >= len(lines) - handed_back_from - 3


def test_crlf_gzip_and_a_pending_last_line(tmp_path):
    body = b"".join(
        json.dumps(pixel(event("Lead", T0 + i, f"id{i}", em=EM))).encode() + b"\r\n"
        for i in range(50)
    )
    plain = tmp_path / "crlf.jsonl"
    plain.write_bytes(body + b'{"kind": "pixel_event", "event": {"event_na')
    _assert_same(tmp_path, plain)
    packed = tmp_path / "crlf.jsonl.gz"
    packed.write_bytes(gzip.compress(body))
    _assert_same(tmp_path, packed)


_TEXT = st.sampled_from(
    [EM, EM.upper(), "a@example.com", "+15550100123", "5550100", "null", "", " x", "x ",
     "fb.1.1763632800000.123", FBC, "1.2.3.4", "::1", "2001:DB8::1", "1234567890123456",
     "12", "Jose", MD5, PLAINTEXT_MARKER + "x", "fb.1.1763632800.1", "IwAR0abc",
     "José", 'q"q', "a\\b", "\t", "é", "0", "-", "\u00a0x", "x\u3000", "٥٥٥٠١٠٠١٢٣",
     "İ@example.com", "a\u00a0b@example.com", "ß", "\u212a", "ＡＢＣ"]
)  # fmt: skip
_VALUE = st.one_of(
    _TEXT,
    st.lists(_TEXT, max_size=3),
    st.sampled_from([None, 0, 1.5, True, {"a": 1}, [1], [None], [EM, 7]]),
)


@st.composite
def _random_event(draw):
    user_data = draw(
        st.dictionaries(
            st.sampled_from(["em", "ph", "fn", "external_id", "client_ip_address", "fbp",
                             "fbc", "lead_id", "ctwa_clid", "page_scoped_user_id",
                             "client_user_agent", "unknown_key"]),
            _VALUE,
            max_size=6,
        )
    )  # fmt: skip
    out = {
        "event_name": draw(
            st.sampled_from(
                ["Lead", "Purchase", " Lead", "", "Contact", 7, "Contato ✓", "Lead\u00a0"]
            )
        ),
        "event_time": draw(
            st.sampled_from([T0, T0 * 1000, T0 + 0.5, str(T0), 0, -5, 10**17, None])
        ),
        "user_data": user_data,
    }
    if draw(st.booleans()):
        out["event_id"] = draw(st.one_of(_TEXT, st.sampled_from([None, 5])))
    if draw(st.booleans()):
        out["custom_data"] = {
            "value": draw(st.sampled_from([None, 1, 2.5, "3.5", "x", 10**16, True])),
            "currency": draw(st.sampled_from([None, "usd", "", " EUR", 5, "straße"])),
            "campaign": draw(st.sampled_from([None, "Spring", "", " x", 3, "é", "x\u2003"])),
        }
    if draw(st.booleans()):
        out["action_source"] = draw(st.sampled_from(["website", "chat", "", 5, None]))
    return out


@st.composite
def _random_record(draw):
    kind = draw(st.sampled_from(["pixel", "capi", "capi", "bare"]))
    if kind == "pixel":
        record = {"kind": "pixel_event", "event": draw(_random_event())}
    elif kind == "capi":
        record = {
            "kind": "capi_request",
            "request": {"data": draw(st.lists(_random_event(), min_size=1, max_size=3))},
            "response": draw(
                st.sampled_from(
                    [
                        None,
                        {"status": 200, "body": {"events_received": 1}},
                        {"status": 400, "body": {"error": {"code": 100, "message": "bad"}}},
                        {"status": 400, "body": {"error": USER_ERROR}},
                        {"status": 500},
                    ]
                )
            ),
        }
    else:
        record = draw(_random_event())
    record["sent_at"] = draw(st.sampled_from([iso(T0 + 30), T0 + 30, None, "bad"]))
    record["dataset_id"] = draw(st.sampled_from(["1", 2, None, "", "ñ", "\u00a0"]))
    return record


@settings(
    max_examples=int(os.environ.get("EQM_FASTPATH_EXAMPLES", "15")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(records=st.lists(_random_record(), min_size=1, max_size=15), raw_utf8=st.booleans())
def test_random_logs_are_identical(tmp_path, records, raw_utf8):
    """Random records, written with escapes (as Python's json.dumps) or as raw UTF-8."""
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    lines = [_raw(r) for r in records] if raw_utf8 else records
    log = write_jsonl(folder / "random.jsonl", [pixel(event("PageView", T0, "x")), *lines])
    _assert_same(folder, log)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.lists(
            st.sampled_from(
                ["0", "00", "1", "01", "9", "10", "99", "100", "255", "256", "1000", ""]
            ),
            min_size=3,
            max_size=5,
        ).map(".".join),
        st.lists(st.text("0123456789abcdefABCDEFg", max_size=5), min_size=7, max_size=9).map(
            ":".join
        ),
    )
)
def test_ip_shapes_judged_in_sql_are_addresses(text):
    """The dotted-quad and full IPv6 patterns the query judges in SQL match only texts
    `ipaddress` reads as an address (anything else goes to the Python UDF)."""
    # fetchall: a result left open on DuckDB's shared default connection breaks the
    # next test that uses it.
    ((matched,),) = duckdb.execute(
        "SELECT regexp_full_match($t, $v4) OR regexp_full_match($t, $v6)",
        {"t": text, "v4": IPV4_PATTERN, "v6": IPV6_FULL_PATTERN},
    ).fetchall()
    assert not matched or is_ip_address(text)
    if text in ("1.2.3.4", "255.255.255.255", "0.0.0.0"):
        assert matched
