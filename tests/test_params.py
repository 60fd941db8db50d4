"""Validation of customer-information parameters, row by row."""

import pytest

from dashboard.core.params import (
    ABSENT,
    INVALID,
    UNHASHED,
    VALID,
    first_valid,
    rejected_combination_flags,
    value_status,
)

H = "a" * 64  # a well-formed SHA-256 hex digest
H2 = "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("param", "value", "expected"),
    [
        ("em", H, (VALID, False)),
        ("em", [H], (VALID, False)),  # SDKs send lists
        ("em", [H, "anna@example.com"], (VALID, True)),  # valid wins, PII still flagged
        ("em", ["anna@example.com"], (UNHASHED, True)),
        ("em", "anna@example.com", (UNHASHED, True)),
        ("em", H.upper(), (INVALID, False)),  # upper-case hex is not Meta's format
        ("em", "0cc175b9c0f1b6a831c399e269772661", (INVALID, False)),  # MD5
        ("em", "", (INVALID, False)),
        ("em", "null", (INVALID, False)),
        ("em", [], (ABSENT, False)),
        ("em", None, (ABSENT, False)),
        ("em", [{"x": 1}], (INVALID, False)),  # objects inside lists are never valid
        ("em", True, (INVALID, False)),
        ("ph", "+49 151 2345678", (UNHASHED, True)),
        ("ph", H2, (VALID, False)),
        ("fn", "anna", (UNHASHED, True)),
        ("country", "us", (UNHASHED, True)),
        ("external_id", "crm-12345", (VALID, False)),  # hashing only recommended
        ("external_id", "12345678", (VALID, False)),  # numeric customer ids are not phones
        ("external_id", "anna@example.com", (UNHASHED, True)),
        ("external_id", "+49 151 2345678", (UNHASHED, True)),
        ("client_ip_address", "203.0.113.7", (VALID, False)),
        ("client_ip_address", "2001:db8::1", (VALID, False)),
        ("client_ip_address", "999.1.1.1", (INVALID, False)),
        ("client_ip_address", H, (INVALID, False)),
        ("client_user_agent", "Mozilla/5.0", (VALID, False)),
        ("client_user_agent", H, (INVALID, False)),  # must not be hashed
        ("fbc", "fb.1.1554763741205.AbCdEfGhIjKlMnOpQrStUvWxYz1234567890", (VALID, False)),
        (
            "fbc",
            "fb.1.1554763741205.IwAR2F4-dbP0l7Mn1IawQQGCINEz7PYXQvwjNwB_qa2ofrHyiLjcbCRxTDMgk.AQ",
            (VALID, False),
        ),  # legacy appendix
        ("fbc", "fb.1.1554763741205.AbCdEf.ABcDEFGh", (VALID, False)),  # parameter-builder appendix
        ("fbc", "fb.1.1554763741.AbCdEf", (INVALID, False)),  # 10-digit seconds
        ("fbc", "fb.3.1554763741205.AbCdEf", (INVALID, False)),  # subdomain index 0-2 only
        ("fbc", "AbCdEf", (INVALID, False)),
        ("fbp", "fb.1.1596403881668.1116446470", (VALID, False)),
        ("fbp", "fb.2.1596403881668.1116446470.ABcDEFGh", (VALID, False)),
        ("fbp", "fb.1.1596403881.1116446470", (INVALID, False)),
        ("fbp", "fb.1.1596403881668.abc", (INVALID, False)),  # random part is digits
        ("lead_id", "123456789012345", (VALID, False)),  # 15 digits
        ("lead_id", "12345678901234567", (VALID, False)),  # 17 digits
        ("lead_id", "12345678901234", (INVALID, False)),  # 14 digits
        ("lead_id", 123456789012345, (VALID, False)),  # numbers are read as their digits
        ("page_id", "1234", (VALID, False)),
        ("page_id", "abc", (INVALID, False)),
        ("ctwa_clid", "ARAkLkA8rmlFeiCktEJQ", (VALID, False)),
    ],
)
def test_value_status(param, value, expected):
    assert value_status(param, value) == expected


@pytest.mark.parametrize(
    ("param", "value", "expected"),
    [
        ("em", ["anna@example.com", H], H),  # the hash, never the plaintext
        ("em", "anna@example.com", None),
        ("fbp", "fb.1.1596403881668.1116446470", "fb.1.1596403881668.1116446470"),
        ("lead_id", ["x", "123456789012345"], "123456789012345"),
    ],
)
def test_first_valid(param, value, expected):
    assert first_valid(param, value) == expected


@pytest.mark.parametrize(
    ("valid", "expected"),
    [
        ({"fn", "ge"}, (False, False, True, False)),
        ({"ge"}, (True, False, True, True)),  # a subset of three combinations
        ({"db", "client_user_agent"}, (False, True, False, False)),
        ({"ct", "country", "st", "zp", "ge", "client_user_agent"}, (True, False, False, False)),
        ({"em", "ge"}, (False, False, False, False)),
        (set(), (True, True, True, True)),  # empty set: callers also require n_valid > 0
    ],
)
def test_rejected_combination_flags(valid, expected):
    assert rejected_combination_flags(valid) == expected
