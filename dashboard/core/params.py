"""Customer-information (user_data) parameters: the catalogue and value validation.

Owns which user_data keys exist, which Meta wants hashed, what a valid value of each
looks like, and Meta's rejected parameter combinations. Pure functions only; the
importer stores the resulting status codes, never a plaintext value.
Source: developers.facebook.com/documentation/ads-commerce/conversions-api/parameters/
customer-information-parameters and .../best-practices (see shared capi-reference.md).
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from typing import Any

# Status codes stored per event and parameter (SMALLINT columns p_<param>); the
# vectorised importer's SQL is built from these names too.
ABSENT = 0
VALID = 1
INVALID = 2
UNHASHED = 3  # plaintext in a field Meta wants hashed: PII, value never kept

# What the capture relay writes instead of a plaintext value (dashboard.capture.scrub):
# counted as UNHASHED for any parameter, the plaintext itself never on disk.
PLAINTEXT_MARKER = "eqm-plaintext:"

# Meta: hashing required.
HASHED_PARAMS = ("em", "ph", "fn", "ln", "db", "ge", "ct", "st", "zp", "country")
# Meta: hashing recommended, not required; any stable string is valid.
OPTIONAL_HASH_PARAMS = ("external_id",)
# Meta: must not be hashed.
PLAIN_PARAMS = (
    "client_ip_address",
    "client_user_agent",
    "fbc",
    "fbp",
    "subscription_id",
    "fb_login_id",
    "lead_id",
    "ctwa_clid",
    "page_id",
    "page_scoped_user_id",
    "ig_account_id",
    "ig_sid",
    "madid",
    "anon_id",
)
PARAMS: tuple[str, ...] = HASHED_PARAMS + OPTIONAL_HASH_PARAMS + PLAIN_PARAMS

# Which parameters an integration can send, by action_source: "what to fix next"
# only suggests these (a website cannot send a lead_id, a CRM has no fbp cookie).
_CONTACT = HASHED_PARAMS + OPTIONAL_HASH_PARAMS
APPLICABLE_PARAMS: dict[str, tuple[str, ...]] = {
    "website": _CONTACT + ("client_ip_address", "client_user_agent", "fbc", "fbp"),
    "system_generated": _CONTACT + ("lead_id", "fbc"),
    "business_messaging": _CONTACT
    + ("ctwa_clid", "page_id", "page_scoped_user_id", "ig_account_id", "ig_sid"),
    "app": _CONTACT + ("client_ip_address", "client_user_agent", "madid", "anon_id", "fb_login_id"),
    "physical_store": _CONTACT,
    "phone_call": _CONTACT + ("lead_id",),
    "chat": _CONTACT + ("page_scoped_user_id",),
    "email": _CONTACT + ("subscription_id",),
}


def applicable_params(action_source: str | None) -> tuple[str, ...]:
    """Parameters an event with this action_source can carry (all when unknown)."""
    return APPLICABLE_PARAMS.get(action_source or "", PARAMS)


# Meta rejects an event whose only customer parameters are one of these sets or a
# subset of one (Graph API v13.0+, best-practices "Baseline requirements").
REJECTED_COMBINATIONS: tuple[frozenset[str], ...] = (
    frozenset({"ct", "country", "st", "zp", "ge", "client_user_agent"}),
    frozenset({"db", "client_user_agent"}),
    frozenset({"fn", "ge"}),
    frozenset({"ln", "ge"}),
)

# -- what a valid value looks like ------------------------------------------------------
# One definition for both importers: the per-record path compiles these for Python's
# `re`, the vectorised path (dashboard.ingest.fastpath_sql) hands the same strings to
# DuckDB's regexp_full_match (RE2). Each is a full-match body without anchors, written in
# the syntax both engines share; on the printable ASCII the vectorised path is limited to,
# `\d` and `\s` mean the same in both (tests/test_validity_once.py checks they agree).
SHA256_HEX_DIGITS = 64
MIN_HEXISH_DIGITS = 32  # a hex digest of another kind (MD5 and longer): no PII
SHA256_PATTERN = rf"[0-9a-f]{{{SHA256_HEX_DIGITS}}}"
HEXISH_PATTERN = rf"[0-9a-fA-F]{{{MIN_HEXISH_DIGITS},}}"
# fb.<subdomain index 0-2>.<creation time, 13-digit ms>.<fbclid | random>, with the
# optional Parameter Builder appendix (8 chars, or 2 for legacy) as a 5th segment.
FBC_PATTERN = r"fb\.[0-2]\.\d{13}\.[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]{2,8})?"
FBP_PATTERN = r"fb\.[0-2]\.\d{13}\.\d+(?:\.[A-Za-z0-9_-]{2,8})?"
DIGITS_PATTERN = r"\d+"
LEAD_ID_PATTERN = r"\d{15,17}"
PHONE_CHARS_PATTERN = r"[\d\s()+.\-/]+"
MIN_PHONE_DIGITS = 7
_EMAIL_PART = r"[^@\s]+"
EMAIL_PATTERN = rf"{_EMAIL_PART}@{_EMAIL_PART}\.{_EMAIL_PART}"
PLACEHOLDERS = frozenset({"", "null", "none", "undefined", "nan", "n/a", "na", "-", "0"})
# Plain parameters whose value must have a shape (the others are valid unless a
# placeholder, an invalid IP address, or a hash where Meta wants the raw value).
NUMERIC_ID_PARAMS = ("page_id", "page_scoped_user_id", "fb_login_id", "ig_account_id")
PLAIN_PATTERNS: dict[str, str] = {
    "fbc": FBC_PATTERN,
    "fbp": FBP_PATTERN,
    "lead_id": LEAD_ID_PATTERN,
    **dict.fromkeys(NUMERIC_ID_PARAMS, DIGITS_PATTERN),
}


def _full(pattern: str) -> re.Pattern[str]:
    """A shared full-match body compiled for `re.match`."""
    return re.compile(f"^{pattern}$")


_SHA256 = _full(SHA256_PATTERN)
_HEXISH = _full(HEXISH_PATTERN)
_PLAIN_SHAPES = {param: _full(pattern) for param, pattern in PLAIN_PATTERNS.items()}
_PHONE_CHARS = _full(PHONE_CHARS_PATTERN)
# The one pattern Python needs in another form. EMAIL_PATTERN backtracks in O(n²) under
# `re` on "a@" + "." * n + "@" (a fuzzer found 60 kB taking 45 s); the lookahead keeps
# it linear and matches the same strings. RE2 never backtracks and has no lookahead, so
# DuckDB takes EMAIL_PATTERN as it is.
_EMAIL = re.compile(rf"^{_EMAIL_PART}@(?={_EMAIL_PART}$){_EMAIL_PART}\.{_EMAIL_PART}$")


def looks_like_email(text: str) -> bool:
    """True for something shaped like an e-mail address."""
    return bool(_EMAIL.match(text.strip()))


# Meta's error messages can quote what was sent: e-mails and +country phones in them are
# replaced before a message is stored (the vectorised importer uses the same patterns).
EMAIL_IN_TEXT = r"[^\s@\"'<>()\[\],;:]+@[^\s@\"'<>()\[\],;:]+\.[A-Za-z]{2,}"
PHONE_IN_TEXT = r"\+[0-9][0-9\s().-]{5,}[0-9]"
# Secrets a message can quote: a token or proof in a URL or form, a Meta access token
# (they begin with EAA), a bearer token.
SECRET_IN_TEXT = (
    r"(?:access_token|appsecret_proof|client_secret)=[^&\s\"']+"
    r"|EAA[A-Za-z0-9]{20,}|Bearer [A-Za-z0-9._~+/=-]{8,}"
)
_EMAIL_IN_TEXT = re.compile(EMAIL_IN_TEXT)
_PHONE_IN_TEXT = re.compile(PHONE_IN_TEXT)
_SECRET_IN_TEXT = re.compile(SECRET_IN_TEXT)


def redact_pii(text: str) -> str:
    """`text` with secrets, e-mail addresses and +country phone numbers replaced by
    placeholders."""
    text = _SECRET_IN_TEXT.sub("[secret]", text)
    return _PHONE_IN_TEXT.sub("[phone]", _EMAIL_IN_TEXT.sub("[e-mail]", text))


def looks_like_phone(text: str) -> bool:
    """True for a plaintext phone number (7+ digits, only phone punctuation)."""
    stripped = text.strip()
    return (
        bool(_PHONE_CHARS.match(stripped))
        and sum(c.isdigit() for c in stripped) >= MIN_PHONE_DIGITS
    )


@lru_cache(maxsize=262_144)
def is_ip_address(text: str) -> bool:
    """True for an IPv4 or IPv6 address as `ipaddress` reads it (the vectorised importer
    calls this too: no RE2 pattern says the same)."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _hashed_status(value: str) -> int:
    if _SHA256.match(value):
        return VALID
    if value.strip().lower() in PLACEHOLDERS or _HEXISH.match(value):
        # Placeholders and wrong-shape hashes (MD5, upper-case hex) carry no PII.
        return INVALID
    return UNHASHED


def _plain_status(param: str, value: str) -> int:
    text = value.strip()
    if text.lower() in PLACEHOLDERS:
        return INVALID
    if param == "client_ip_address":
        return VALID if is_ip_address(text) else INVALID
    shape = _PLAIN_SHAPES.get(param)
    if shape is not None:
        return VALID if shape.match(text) else INVALID
    if _SHA256.match(text):
        # A hash where Meta wants the raw value (ip, user agent, click ids...).
        return INVALID
    return VALID


@lru_cache(maxsize=262_144)
def _scalar_status(param: str, value: str) -> int:
    if value.startswith(PLAINTEXT_MARKER):
        return UNHASHED
    if param in HASHED_PARAMS:
        return _hashed_status(value)
    if param == "external_id":
        text = value.strip()
        if text.lower() in PLACEHOLDERS:
            return INVALID
        # Numeric customer ids are common and fine; only a +country phone is PII here.
        if looks_like_email(text) or (text.startswith("+") and looks_like_phone(text)):
            return UNHASHED
        return VALID
    return _plain_status(param, value)


def value_status(param: str, value: Any) -> tuple[int, bool]:
    """Status of one user_data value (str or list of str) and whether any element is PII.

    Status: VALID when any element is valid; else UNHASHED when any element is plaintext
    PII; else INVALID; ABSENT for None or an empty list.
    """
    if value is None:
        return ABSENT, False
    if isinstance(value, str):  # the common case, kept short: this runs per parameter per event
        status = _scalar_status(param, value)
        return status, status == UNHASHED
    elements = value if isinstance(value, list) else [value]
    if not elements:
        return ABSENT, False
    best = INVALID
    has_pii = False
    for element in elements:
        if isinstance(element, bool) or not isinstance(element, str | int | float):
            continue  # objects, nested lists, booleans: invalid, never valid
        status = _scalar_status(param, str(element))
        if status == UNHASHED:
            has_pii = True
        elif status == VALID:
            best = VALID
    if best == VALID:
        return VALID, has_pii
    return (UNHASHED if has_pii else INVALID), has_pii


def first_valid(param: str, value: Any) -> str | None:
    """The first valid element of a user_data value, as sent (hashes stay hashes)."""
    elements = value if isinstance(value, list) else [value]
    for element in elements:
        if isinstance(element, str | int) and not isinstance(element, bool):
            text = str(element).strip()
            if _scalar_status(param, text) == VALID:
                return text
    return None


def rejected_combination_flags(valid_params: set[str]) -> tuple[bool, ...]:
    """Per Meta rejected combination: is the set of valid parameters a subset of it."""
    return tuple(valid_params <= combo for combo in REJECTED_COMBINATIONS)
