"""Why a user_data value is not valid, and the rest of Meta's error object, as stored.

`params.value_reason` explains each INVALID/UNHASHED status of `params.value_status`;
the importer stores the reasons of an event as `param_reasons` ("em:4;fbc:11") and Meta's
error_user_title, error_user_msg (redacted) and fbtrace_id, alike on both import paths.
Every expectation below is worked out by hand from the rules in `dashboard/core/params.py`.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from conftest import write_jsonl
from formatkit import (
    real_calls,
    write_stape_bigquery_csv,
    write_stape_console,
    write_v1,
    write_woocommerce,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from logkit import T0, capi, event, pixel, sha

from dashboard.core.config import load_config
from dashboard.core.params import (
    ABSENT,
    PARAMS,
    PLAINTEXT_MARKER,
    REASON_FB_ID,
    REASON_FB_PREFIX,
    REASON_FB_TIME,
    REASON_HASHED_RAW,
    REASON_HEX_NOT_SHA256,
    REASON_LEAD_ID_LENGTH,
    REASON_LIST_NO_VALID,
    REASON_NOT_DIGITS,
    REASON_NOT_IP,
    REASON_NOT_TEXT,
    REASON_PLACEHOLDER,
    REASON_PLAINTEXT_EMAIL,
    REASON_PLAINTEXT_MARKED,
    REASON_PLAINTEXT_PHONE,
    REASON_PLAINTEXT_VALUE,
    REASON_TEXT,
    REASON_UPPERCASE_HEX,
    UNHASHED,
    VALID,
    format_reasons,
    parse_reasons,
    reason_status,
    reason_text,
    value_reason,
    value_status,
)
from dashboard.ingest import ingest
from dashboard.ingest.fastpath import BlockParser
from dashboard.store.database import (
    EVENT_INSERT_COLUMNS,
    create_schema,
    events,
    events_arrow_schema,
    make_engine,
)

H = "0123456789abcdef" * 4  # a well-formed SHA-256 hex digest
MD5 = "0cc175b9c0f1b6a831c399e269772661"  # 32 hex digits
EMAIL = "Anna.Doe@Example.com"

# (param, value, reason): every reason code at least once.
CASES = [
    # hashed parameters
    ("em", H, None),
    ("em", "null", REASON_PLACEHOLDER),
    ("em", "", REASON_PLACEHOLDER),
    ("em", " N/A ", REASON_PLACEHOLDER),  # stripped and lower-cased first
    ("zp", "0", REASON_PLACEHOLDER),
    ("em", H.upper(), REASON_UPPERCASE_HEX),
    ("em", H[:10] + H[10:].upper(), REASON_UPPERCASE_HEX),  # any upper-case digit
    ("em", MD5, REASON_HEX_NOT_SHA256),
    ("em", MD5.upper(), REASON_HEX_NOT_SHA256),  # the length is the first problem
    ("em", H + "0", REASON_HEX_NOT_SHA256),  # 65 hex digits
    ("em", EMAIL, REASON_PLAINTEXT_EMAIL),
    ("fn", "anna@example.com", REASON_PLAINTEXT_EMAIL),  # an e-mail in any hashed field
    ("ph", "+49 151 2345678", REASON_PLAINTEXT_PHONE),
    ("ph", "(555) 010-0199", REASON_PLAINTEXT_PHONE),  # 10 digits, phone punctuation
    ("ph", "12345", REASON_PLAINTEXT_VALUE),  # 5 digits: too short for a phone
    ("db", "19900101", REASON_PLAINTEXT_VALUE),  # 8 digits, but db is no phone field
    ("fn", "anna", REASON_PLAINTEXT_VALUE),
    ("country", "us", REASON_PLAINTEXT_VALUE),
    ("em", H[:31], REASON_PLAINTEXT_VALUE),  # 31 hex digits: not even a digest
    ("em", PLAINTEXT_MARKER + "em", REASON_PLAINTEXT_MARKED),
    ("client_ip_address", PLAINTEXT_MARKER + "x", REASON_PLAINTEXT_MARKED),  # any param
    # external_id: hashing recommended, any stable id valid, PII unhashed
    ("external_id", "crm-12345", None),
    ("external_id", "12345678", None),
    ("external_id", "undefined", REASON_PLACEHOLDER),
    ("external_id", EMAIL, REASON_PLAINTEXT_EMAIL),
    ("external_id", "+49 151 2345678", REASON_PLAINTEXT_PHONE),
    # raw parameters
    ("client_ip_address", "203.0.113.7", None),
    ("client_ip_address", "999.1.1.1", REASON_NOT_IP),
    ("client_ip_address", "localhost", REASON_NOT_IP),
    ("client_ip_address", H, REASON_HASHED_RAW),
    ("client_ip_address", "-", REASON_PLACEHOLDER),
    ("client_user_agent", "Mozilla/5.0", None),
    ("client_user_agent", H, REASON_HASHED_RAW),
    ("madid", H, REASON_HASHED_RAW),
    ("fbc", "fb.1.1554763741205.AbCdEf", None),
    ("fbc", "IwAR2F4-dbP0l7Mn1IawQQ", REASON_FB_PREFIX),  # a bare fbclid
    ("fbc", "fb.3.1554763741205.AbCdEf", REASON_FB_PREFIX),  # subdomain index 0-2 only
    ("fbc", "fb.1.1554763741.AbCdEf", REASON_FB_TIME),  # 10-digit seconds
    ("fbc", "fb.1.15547637412050.AbCdEf", REASON_FB_TIME),  # 14 digits
    ("fbc", "fb.1.1554763741205", REASON_FB_ID),  # no click id
    ("fbc", "fb.1.1554763741205.Ab Cd", REASON_FB_ID),  # a space in the click id
    ("fbc", H, REASON_HASHED_RAW),
    ("fbp", "fb.1.1596403881668.1116446470", None),
    ("fbp", "fb.1.1596403881668.abc", REASON_FB_ID),  # the random part is digits
    ("fbp", "fb.1.1596403881.1116446470", REASON_FB_TIME),
    ("lead_id", "123456789012345", None),  # 15 digits
    ("lead_id", "12345", REASON_LEAD_ID_LENGTH),
    ("lead_id", "123456789012345678", REASON_LEAD_ID_LENGTH),  # 18 digits
    ("lead_id", "lead-1", REASON_NOT_DIGITS),
    ("page_id", "12a", REASON_NOT_DIGITS),
    ("page_id", 1.5, REASON_NOT_DIGITS),  # read as "1.5"
    ("page_id", 123, None),  # a JSON number is read as its digits
    # lists and values that are not text
    ("em", [H, EMAIL], None),  # one valid element makes the value valid
    ("em", [MD5, EMAIL], REASON_PLAINTEXT_EMAIL),  # the plaintext comes first
    ("em", [PLAINTEXT_MARKER + "em", "null"], REASON_PLAINTEXT_MARKED),
    ("em", ["null", "fn"], REASON_PLAINTEXT_VALUE),  # "fn" is plaintext, "null" is not
    ("em", [MD5, H.upper()], REASON_LIST_NO_VALID),  # two different invalid reasons
    ("em", [MD5, MD5[:-1] + "1"], REASON_HEX_NOT_SHA256),  # one shared reason
    ("em", [{"x": 1}], REASON_NOT_TEXT),
    ("em", [["nested"]], REASON_NOT_TEXT),
    ("em", {"x": 1}, REASON_NOT_TEXT),
    ("em", True, REASON_NOT_TEXT),
    ("em", [True, "null"], REASON_LIST_NO_VALID),
    ("em", None, None),
    ("em", [], None),
]


@pytest.mark.parametrize(("param", "value", "reason"), CASES)
def test_value_reason(param, value, reason):
    assert value_reason(param, value) == reason


@pytest.mark.parametrize(("param", "value", "reason"), CASES)
def test_the_reason_explains_the_status(param, value, reason):
    status, _ = value_status(param, value)
    if reason is None:
        assert status in (ABSENT, VALID)
    else:
        assert status == reason_status(reason)


_ELEMENT = st.one_of(
    st.sampled_from([H, H.upper(), MD5, EMAIL, "+49 151 2345678", "null", "anna", "12345",
                     PLAINTEXT_MARKER + "x", "203.0.113.7", "fb.1.1554763741.AbCdEf",
                     "fb.1.1554763741205.1", "123456789012345", 7, 1.5, True, None, {}]),
    st.text(max_size=12),
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    param=st.sampled_from(PARAMS),
    value=st.one_of(_ELEMENT, st.lists(_ELEMENT, max_size=4)),
)
def test_the_reason_always_matches_the_status(param, value):
    """On any value: a reason exactly when the status is invalid or unhashed, and the
    reason's status is that status."""
    status, _ = value_status(param, value)
    reason = value_reason(param, value)
    if status in (ABSENT, VALID):
        assert reason is None
    else:
        assert reason in REASON_TEXT and reason_status(reason) == status


def test_every_reason_is_used_and_worded():
    assert {reason for _, _, reason in CASES} - {None} == set(REASON_TEXT)
    assert sorted(REASON_TEXT) == list(range(1, len(REASON_TEXT) + 1))
    assert reason_status(REASON_PLAINTEXT_PHONE) == 3 and reason_status(REASON_FB_TIME) == 2
    assert reason_text(REASON_FB_TIME) == "creation time not 13 digits (Unix milliseconds)"
    assert reason_text(99) == "unknown reason (code 99)"
    for words in REASON_TEXT.values():
        assert "@" not in words and words.strip() == words and words


def test_stored_form_of_the_reasons():
    # PARAMS order, whatever order the event had its keys in; only present invalid ones.
    reasons = {"fbc": REASON_FB_TIME, "em": REASON_PLAINTEXT_EMAIL, "ph": None}
    assert format_reasons(reasons) == "em:4;fbc:11"
    assert format_reasons({}) is None
    assert format_reasons({"not_a_param": 1}) is None
    assert parse_reasons("em:4;fbc:11") == {"em": 4, "fbc": 11}
    assert parse_reasons(None) == {} and parse_reasons("") == {}
    assert parse_reasons("em:4;zz:1;ph:x;fn") == {"em": 4}  # unreadable parts left out
    every = dict(zip(PARAMS, range(1, 26), strict=True))
    assert parse_reasons(format_reasons(every)) == every


# -- both import paths -------------------------------------------------------------------
# One event with a reason for each of seven parameters (PARAMS order: em, ph, fn, ...,
# external_id, client_ip_address, client_user_agent, fbc, fbp, ..., lead_id).
BAD_EVENT = {
    "em": EMAIL,
    "ph": "+49 151 2345678",
    "fn": MD5,
    "external_id": EMAIL.lower(),
    "client_ip_address": "999.1.1.1",
    "fbc": "fb.1.1554763741.AbCdEf",
    "fbp": "fb.1.1596403881668.1116446470",
    "lead_id": "12345",
}
BAD_REASONS = "em:4;ph:5;fn:3;external_id:4;client_ip_address:9;fbc:11;lead_id:13"
ERROR = {
    "message": f"Invalid parameter: {EMAIL}",
    "type": "OAuthException",
    "code": 100,
    "error_subcode": 2804003,
    "error_user_title": "Event Timestamp Too Old",
    "error_user_msg": f"The e-mail {EMAIL} is not accepted. Call +49 151 2345678.",
    "fbtrace_id": "A6UyEgg_HdoiRX9duxcBOjb",
}
STORED_ERROR = (
    "Invalid parameter: [e-mail]",
    "Event Timestamp Too Old",
    "The e-mail [e-mail] is not accepted. Call [phone].",
    "A6UyEgg_HdoiRX9duxcBOjb",
)


def _log(tmp_path):
    return write_jsonl(
        tmp_path / "log.jsonl",
        [
            pixel(event("PageView", T0, "first")),  # line 1: always the per-record path
            capi([event("Lead", T0 + 1, "l1", **BAD_EVENT)], sent_at=T0 + 10),
            pixel(event("Lead", T0 + 2, "l1", em=[sha("a@b.co"), "x"], fbp="null")),
            capi(
                [
                    event("Purchase", T0 + 3, "p1", client_user_agent=H),
                    event("Purchase", T0 + 4, "p2", em=[PLAINTEXT_MARKER + "em", "null"]),
                ],
                sent_at=T0 + 20,
                status=400,
                error=ERROR,
            ),
        ],
    )


COLUMNS = ("param_reasons", "error_message", "error_user_title", "error_user_msg", "fbtrace_id")


def _stored(engine, *columns):
    with engine.connect() as connection:
        return [
            tuple(row)
            for row in connection.execute(
                sa.select(*[events.c[c] for c in columns]).order_by(events.c.line_no, events.c.idx)
            )
        ]


@pytest.mark.parametrize("vectorised", [False, True], ids=["per_record", "vectorised"])
def test_reasons_and_error_details_are_stored(tmp_path, vectorised):
    path = _log(tmp_path)
    engine = make_engine(f"duckdb:///{tmp_path / 'store.duckdb'}")
    ingest([path], engine, vectorised=vectorised)
    assert _stored(engine, *COLUMNS) == [
        (None, None, None, None, None),
        (BAD_REASONS, None, None, None, None),
        ("fbp:1", None, None, None, None),  # em valid (one hashed element)
        ("client_user_agent:8", *STORED_ERROR),
        ("em:7", *STORED_ERROR),
    ]
    # No plaintext in any stored text, the reasons included.
    with engine.connect() as connection:
        for row in connection.execute(sa.select(events)):
            for value in row:
                if isinstance(value, str):
                    assert EMAIL.lower() not in value.lower()
                    assert "2345678" not in value and PLAINTEXT_MARKER not in value
    engine.dispose()


def test_the_vectorised_path_decides_these_lines_itself(tmp_path):
    """Only line 1 goes back to the per-record path: the reasons above are the fast path's."""
    data = _log(tmp_path).read_bytes()
    ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10) + 1
    parser = BlockParser(load_config(), EVENT_INSERT_COLUMNS, events_arrow_schema())
    try:
        rows, leftover = parser.parse(data, ends, 1, 1, 4 << 20)
    finally:
        parser.close()
    assert list(leftover) == [0]
    assert rows.column("param_reasons").to_pylist() == [
        BAD_REASONS,
        "fbp:1",
        "client_user_agent:8",
        "em:7",
    ]
    assert rows.column("error_user_msg").to_pylist()[2:] == [STORED_ERROR[2]] * 2


def test_csv_rows_carry_the_error_details(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text(
        "channel,event_name,event_time,em,response_status,error_code,error_subcode,"
        "error_message,error_user_title,error_user_msg,fbtrace_id\n"
        f"server,Lead,{T0},{EMAIL},400,100,2804003,Invalid parameter,Too Old,"
        f"Sent by {EMAIL},AbC1\n"
        f"server,Lead,{T0},{H},200,,,,,,\n",
        encoding="utf-8",
    )
    engine = make_engine(f"duckdb:///{tmp_path / 'store.duckdb'}")
    ingest([path], engine)
    assert _stored(engine, *COLUMNS) == [
        ("em:4", "Invalid parameter", "Too Old", "Sent by [e-mail]", "AbC1"),
        (None, None, None, None, None),
    ]
    engine.dispose()


# Meta's answers of tests/fixtures/real_payloads.py, as formatkit.real_calls gives them:
# two events each with the token error 190, the timestamp error 2804003, the limit 17.
TIMESTAMP_MSG = (
    "The timestamp for this event is too far in the past. Events need to be sent from your"
    " server within 7 days of when they occurred. Enter a timestamp that has occurred within"
    " the last 7 days."
)
REAL_ERRORS = Counter(
    {
        (190, None, "The access token could not be decrypted", "fbpixel_trace_id"): 2,
        (100, "Event Timestamp Too Old", TIMESTAMP_MSG, "A6UyEgg_HdoiRX9duxcBOjb"): 2,
        (17, None, None, "facebook_px_trace_id_4"): 2,
    }
)


@pytest.mark.parametrize(
    ("name", "write"),
    [
        ("log.jsonl", write_v1),
        ("sgtm.jsonl", write_stape_console),  # the answer on a later line
        ("sgtm-bq.csv", write_stape_bigquery_csv),
        ("facebook_for_woocommerce.log", write_woocommerce),
    ],
)
def test_every_format_with_an_answer_stores_the_error_details(tmp_path, name, write):
    path = write(tmp_path / name, real_calls())
    engine = make_engine(f"duckdb:///{tmp_path / 'store.duckdb'}")
    ingest([path], engine)
    stored = _stored(
        engine, "delivery", "error_code", "error_user_title", "error_user_msg", "fbtrace_id"
    )
    assert Counter(row[1:] for row in stored if row[0] == "rejected") == REAL_ERRORS
    engine.dispose()


# -- older stores ------------------------------------------------------------------------
NEW_COLUMNS = ("param_reasons", "error_user_title", "error_user_msg", "fbtrace_id")


@pytest.mark.parametrize("backend", ["duckdb", "sqlite"])
def test_an_older_store_gains_the_new_columns(tmp_path, backend):
    engine = make_engine(f"{backend}:///{tmp_path / 'old.db'}")
    old = sa.MetaData()
    kept = [
        sa.Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
        for c in events.columns
        if c.name not in NEW_COLUMNS
    ]
    sa.Table("events", old, *kept).create(engine)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO events (source_id, line_no, idx, channel, dataset_id, event_name,"
                " event_time_raw, event_time, event_time_in_ms, event_day, sent_at,"
                " sent_at_defaulted, is_test, delivery, campaign, funnel_stage,"
                " has_unhashed_pii, n_valid_params, "
                + ", ".join(f"p_{p}" for p in PARAMS)
                + ", "
                + ", ".join(f"combo_{k}" for k in range(4))
                + f") VALUES (1, 1, 0, 'server', '1', 'Lead', {T0}, {T0}, false, '2025-11-20',"
                f" {T0}, false, false, 'unknown', '(none)', '(none)', false, 0, "
                + ", ".join("0" for _ in PARAMS)
                + ", false, false, false, false)"
            )
        )
    create_schema(engine)
    create_schema(engine)  # idempotent
    assert _stored(engine, *NEW_COLUMNS) == [(None, None, None, None)]
    engine.dispose()


def test_the_readme_lists_every_reason():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("### Parameter statuses and reasons", 1)[1].split("\n## ", 1)[0]
    for code, words in REASON_TEXT.items():
        status = "unhashed" if reason_status(code) == UNHASHED else "invalid"
        assert f"\n| {code} | {status} | {words} |" in section, code
