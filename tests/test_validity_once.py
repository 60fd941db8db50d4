"""One definition of value validity, read alike by Python's `re` and DuckDB's RE2.

`dashboard.core.params` holds every pattern and status code; the per-record importer
compiles the patterns for `re`, the vectorised importer (`dashboard.ingest.fastpath_sql`)
hands the same strings to DuckDB. These tests check that both engines give the same
answer on a table of values, within the vectorised path's domain: printable ASCII (its
lines hold no other byte and no escape) without edge spaces (it hands those back).
"""

from __future__ import annotations

import random
import re

import duckdb
import pyarrow as pa
import pytest

from dashboard.core.definitions import MAX_TIMESTAMP_S, MIN_TIMESTAMP_S
from dashboard.core.params import (
    ABSENT,
    DIGITS_PATTERN,
    EMAIL_PATTERN,
    FBC_PATTERN,
    FBP_PATTERN,
    HEXISH_PATTERN,
    INVALID,
    LEAD_ID_PATTERN,
    PARAMS,
    PHONE_CHARS_PATTERN,
    PLAINTEXT_MARKER,
    SHA256_PATTERN,
    UNHASHED,
    VALID,
    is_ip_address,
    looks_like_email,
    looks_like_phone,
    value_reason,
    value_status,
)
from dashboard.ingest.fastpath_sql import (
    ASCII_LINE,
    IP_OK_FUNCTION,
    element_reason,
    element_status,
    full_match,
    is_email,
    is_phone,
    is_plain,
    unspaced,
)
from dashboard.ingest.rows import Rejected, to_unix_seconds

SHA = "0123456789abcdef" * 4
FBP = "fb.1.1763632800000.1234567890"
FBC = "fb.1.1763632800000.IwAR0abc_DEF-ghi"

TABLE = [
    # hashes and hex of other shapes
    SHA,
    SHA.upper(),
    SHA[:-1],
    SHA + "0",
    SHA[:32],
    SHA[:31],
    SHA[:63] + "g",
    "0cc175b9c0f1b6a831c399e269772661",
    # e-mails and near misses
    "a@b.c",
    "anna@example.com",
    "A@EXAMPLE.COM",
    "a@b",
    "@b.c",
    "a@.c",
    "a@b.",
    "a@@b.c",
    "a@b@c.d",
    "a b@c.d",
    "a@b c.d",
    "a@b..c",
    "a@" + "." * 50 + "@",
    "x@example.com.",
    # phones and digits
    "+15550100",
    "+1 (555) 010-0199",
    "+49 151 2345678",
    "+123456",
    "1234567",
    "123456",
    "555/010.0199",
    "+1-555-010-0199x",
    "12a",
    "7",
    "0",
    "1234567890123456",
    "12345678901234",
    "123456789012345",
    "12345678901234567",
    "123456789012345678",
    # click ids and browser ids
    FBP,
    FBC,
    FBP + ".AQQCAQAA",
    FBC + ".Bg",
    FBC + ".B",
    FBC + ".ABCDEFGHI",
    "fb.3.1763632800000.x",
    "fb.1.176363.1",
    "fb.1.1763632800000.",
    "fb.1.1763632800000.abc",
    "fb.1.1763632800000.12.x_",
    "FB.1.1763632800000.1",
    # IP addresses
    "1.2.3.4",
    "999.1.1.1",
    "2001:db8::1",
    "2001:DB8::1",
    "fe80::1%eth0",
    "::1",
    "1.2.3",
    # placeholders and plain texts
    "",
    "null",
    "NULL",
    "None",
    "undefined",
    "NaN",
    "n/a",
    "N/A",
    "na",
    "-",
    "00",
    "Mozilla/5.0 (X11; Linux x86_64)",
    "crm-12345",
    "it's",
    "a'b@c.d",
    "us",
    "anna",
    PLAINTEXT_MARKER + "em",
    PLAINTEXT_MARKER,
]

_FRAGMENTS = [
    "a",
    "Z",
    "f",
    "0",
    "7",
    "12345",
    "@",
    ".",
    " ",
    "+",
    "-",
    "(",
    ")",
    "/",
    "_",
    "'",
    "%",
    ":",
    "fb.",
    "1.",
    "1763632800000",
    "abcdef0123456789",
    "ABCDEF",
    "example.com",
]


def _generated(count: int = 3000) -> list[str]:
    rng = random.Random(20240601)
    values = {"".join(rng.choices(_FRAGMENTS, k=rng.randint(1, 8))) for _ in range(count)}
    for length in (31, 32, 33, 63, 64, 65):
        hex_text = "".join(rng.choices("0123456789abcdef", k=length))
        values.update({hex_text, hex_text.upper()})
    return sorted(values)


VALUES = sorted(
    v
    for v in set(TABLE) | set(_generated())
    if all(" " <= c <= "~" for c in v) and v == v.strip(" ")
)


@pytest.fixture(scope="module")
def duck():
    connection = duckdb.connect()

    def ip_ok(values: pa.Array) -> pa.Array:
        return pa.array([None if v is None else is_ip_address(v) for v in values.to_pylist()])

    connection.create_function(IP_OK_FUNCTION, ip_ok, ["VARCHAR"], "BOOLEAN", type="arrow")
    connection.register("vals", pa.table({"v": pa.array(VALUES, pa.string())}))
    yield connection
    connection.close()


def _sql_results(duck, expression: str) -> dict[str, object]:
    """`expression` (over the column `v`) for every value, in DuckDB."""
    return dict(duck.sql(f"SELECT v, {expression} FROM vals").fetchall())


def test_status_codes_keep_their_stored_integers():
    assert (ABSENT, VALID, INVALID, UNHASHED) == (0, 1, 2, 3)


@pytest.mark.parametrize(
    "pattern",
    [
        SHA256_PATTERN,
        HEXISH_PATTERN,
        FBC_PATTERN,
        FBP_PATTERN,
        DIGITS_PATTERN,
        LEAD_ID_PATTERN,
        PHONE_CHARS_PATTERN,
        EMAIL_PATTERN,
    ],
)
def test_each_shared_pattern_matches_alike(duck, pattern):
    python = re.compile(f"^{pattern}$")
    in_sql = _sql_results(duck, full_match("v", pattern))
    differ = [v for v in VALUES if bool(python.match(v)) != in_sql[v]]
    assert not differ, differ[:10]


def test_email_python_form_matches_the_shared_pattern(duck):
    """The lookahead form Python uses matches what RE2 matches with EMAIL_PATTERN."""
    in_sql = _sql_results(duck, is_email("v"))
    differ = [v for v in VALUES if looks_like_email(v) != in_sql[v]]
    assert not differ, differ[:10]
    assert sum(in_sql.values()) > 10  # the table holds e-mails, not only misses


def test_phone_shape_alike(duck):
    in_sql = _sql_results(duck, is_phone("v"))
    differ = [v for v in VALUES if looks_like_phone(v) != in_sql[v]]
    assert not differ, differ[:10]
    assert sum(in_sql.values()) > 5


@pytest.mark.parametrize("param", PARAMS)
def test_value_status_alike(duck, param):
    in_sql = _sql_results(duck, element_status(param, "v"))
    differ = {v: (value_status(param, v)[0], in_sql[v]) for v in VALUES}
    differ = {v: pair for v, pair in differ.items() if pair[0] != pair[1]}
    assert not differ, list(differ.items())[:10]
    assert {VALID, INVALID} <= set(in_sql.values())


@pytest.mark.parametrize("param", PARAMS)
def test_value_reason_alike(duck, param):
    """The SQL reason of a text is `params.value_reason`'s, code for code (NULL: valid)."""
    in_sql = _sql_results(duck, element_reason(param, "v"))
    differ = {v: (value_reason(param, v), in_sql[v]) for v in VALUES}
    differ = {v: pair for v, pair in differ.items() if pair[0] != pair[1]}
    assert not differ, list(differ.items())[:10]
    assert None in in_sql.values()
    assert len({r for r in in_sql.values() if r is not None}) >= 2


def test_edge_whitespace_is_what_python_strips():
    """On a non-ASCII line, `unspaced` holds exactly when str.strip() changes nothing, for
    every character JSON can hold raw (controls must be escaped, and go back)."""
    on_other_lines = unspaced("v").replace(ASCII_LINE, "false")
    characters = [chr(c) for c in range(0x20, 0x3100)]
    texts = [t for c in characters for t in (c + "x", "x" + c, "x" + c + "x")]
    connection = duckdb.connect()
    connection.register("vals", pa.table({"v": pa.array(texts, pa.string())}))
    in_sql = dict(connection.sql(f"SELECT v, {on_other_lines} FROM vals").fetchall())
    connection.close()
    differ = [t for t in texts if in_sql[t] != (t == t.strip())]
    assert not differ, [hex(ord(c)) for t in differ[:10] for c in t if c != "x"]


def test_plain_means_printable_ascii():
    on_other_lines = is_plain("v").replace(ASCII_LINE, "false")
    texts = ["abc ~!", "", "é", "a\x7f", "\u00a0", "日本", "a\tb"]
    # A connection of its own: the module-level default one is shared with other tests.
    connection = duckdb.connect()
    query = f"SELECT v, {on_other_lines} FROM (SELECT unnest($t) AS v)"
    got = dict(connection.execute(query, {"t": texts}).fetchall())
    connection.close()
    assert got == {t: all(" " <= c <= "~" for c in t) for t in texts}


def test_timestamp_range_is_the_definitions_one():
    assert to_unix_seconds(MIN_TIMESTAMP_S, "t") == MIN_TIMESTAMP_S
    assert to_unix_seconds(MAX_TIMESTAMP_S, "t") == MAX_TIMESTAMP_S
    for outside in (MIN_TIMESTAMP_S - 1, MAX_TIMESTAMP_S + 1):
        with pytest.raises(Rejected):
            to_unix_seconds(outside, "t")
