"""Customer-information (user_data) parameters: the catalogue and value validation.

Owns which user_data keys exist, which Meta wants hashed, what a valid value of each
looks like, why a value is not valid (the reason codes and their texts, and the stored
form of an event's reasons), and Meta's rejected parameter combinations. Pure functions
only; the importer stores the resulting status and reason codes, never a plaintext value.
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

# Each key as a marketer reads it (the report's headers); Meta's key is kept in brackets
# where the developer needs it to find the field.
PARAM_NAMES: dict[str, str] = {
    "em": "E-mail",
    "ph": "Phone",
    "fn": "First name",
    "ln": "Last name",
    "db": "Date of birth",
    "ge": "Gender",
    "ct": "City",
    "st": "State",
    "zp": "ZIP code",
    "country": "Country",
    "external_id": "External ID",
    "client_ip_address": "IP address",
    "client_user_agent": "User agent",
    "fbc": "Click ID (fbc)",
    "fbp": "Browser ID (fbp)",
    "subscription_id": "Subscription ID",
    "fb_login_id": "Facebook Login ID",
    "lead_id": "Lead ID",
    "ctwa_clid": "Click-to-WhatsApp ID",
    "page_id": "Page ID",
    "page_scoped_user_id": "Page-scoped user ID",
    "ig_account_id": "Instagram account ID",
    "ig_sid": "Instagram user ID",
    "madid": "Mobile advertiser ID",
    "anon_id": "App install ID",
}

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


# -- why a value is not valid ---------------------------------------------------------
# Stored per event as `param_reasons` ("em:4;fbc:11", see `format_reasons`) for the
# present parameters that are not valid; the codes are part of the store, so a code keeps
# its meaning forever (add new ones at the end). Every reason belongs to one status: the
# status of a value is derived from its reason (`_scalar_status`), so the two never
# disagree. A text names what is wrong, never the value.
REASON_PLACEHOLDER = 1
REASON_UPPERCASE_HEX = 2
REASON_HEX_NOT_SHA256 = 3
REASON_PLAINTEXT_EMAIL = 4
REASON_PLAINTEXT_PHONE = 5
REASON_PLAINTEXT_VALUE = 6
REASON_PLAINTEXT_MARKED = 7
REASON_HASHED_RAW = 8
REASON_NOT_IP = 9
REASON_FB_PREFIX = 10
REASON_FB_TIME = 11
REASON_FB_ID = 12
REASON_LEAD_ID_LENGTH = 13
REASON_NOT_DIGITS = 14
REASON_NOT_TEXT = 15
REASON_LIST_NO_VALID = 16

REASON_TEXT: dict[int, str] = {
    REASON_PLACEHOLDER: "placeholder value (empty, null, undefined, n/a, 0...)",
    REASON_UPPERCASE_HEX: "upper-case hex: SHA-256 must be lower-case hex",
    REASON_HEX_NOT_SHA256: "not 64 hex characters: an MD5 or other hex digest, not SHA-256",
    REASON_PLAINTEXT_EMAIL: "plaintext e-mail address, not hashed",
    REASON_PLAINTEXT_PHONE: "plaintext phone number, not hashed",
    REASON_PLAINTEXT_VALUE: "plaintext value, not a SHA-256 hash",
    REASON_PLAINTEXT_MARKED: "plaintext value (removed by the capture relay), not hashed",
    REASON_HASHED_RAW: "SHA-256 hash where Meta wants the raw value",
    REASON_NOT_IP: "not an IP address (IPv4 or IPv6)",
    REASON_FB_PREFIX: "without the fb.1. prefix (fb.0. and fb.2. also accepted)",
    REASON_FB_TIME: "creation time not 13 digits (Unix milliseconds)",
    REASON_FB_ID: "click id or random number after the creation time missing or malformed",
    REASON_LEAD_ID_LENGTH: "lead_id not 15-17 digits",
    REASON_NOT_DIGITS: "not digits (Meta wants a numeric id)",
    REASON_NOT_TEXT: "object, nested list or true/false, not text",
    REASON_LIST_NO_VALID: "list with no valid element (its elements fail for different reasons)",
}
PLAINTEXT_REASONS = frozenset(
    {
        REASON_PLAINTEXT_EMAIL,
        REASON_PLAINTEXT_PHONE,
        REASON_PLAINTEXT_VALUE,
        REASON_PLAINTEXT_MARKED,
    }
)
# How far an fbc/fbp value gets: the prefix, then the 13-digit creation time (patterns
# matched at the start of the value; the vectorised importer's SQL reads them too).
FB_PREFIX_PATTERN = r"fb\.[0-2]\."
FB_TIME_PATTERN = r"fb\.[0-2]\.\d{13}(?:\.|$)"
_FB_PREFIX = re.compile(FB_PREFIX_PATTERN)
_FB_TIME = re.compile(FB_TIME_PATTERN)
_DIGITS = _full(DIGITS_PATTERN)


def reason_status(reason: int | None) -> int:
    """The status a reason gives a present value: VALID for None, UNHASHED for plaintext
    reasons, else INVALID."""
    if reason is None:
        return VALID
    return UNHASHED if reason in PLAINTEXT_REASONS else INVALID


def reason_text(code: int) -> str:
    """The words for a reason code (a stored code this version does not know, too)."""
    return REASON_TEXT.get(code, f"unknown reason (code {code})")


def _hashed_reason(param: str, value: str) -> int | None:
    if _SHA256.match(value):
        return None
    if value.strip().lower() in PLACEHOLDERS:
        return REASON_PLACEHOLDER
    if _HEXISH.match(value):
        # Wrong-shape hashes carry no PII: invalid, not unhashed.
        return REASON_UPPERCASE_HEX if _SHA256.match(value.lower()) else REASON_HEX_NOT_SHA256
    if looks_like_email(value):
        return REASON_PLAINTEXT_EMAIL
    # Only in ph: a date of birth or zip code of 7+ digits is no phone number.
    if param == "ph" and looks_like_phone(value):
        return REASON_PLAINTEXT_PHONE
    return REASON_PLAINTEXT_VALUE


def _fb_cookie_reason(text: str) -> int:
    """Why an fbc/fbp value does not match its pattern."""
    if not _FB_PREFIX.match(text):
        return REASON_FB_PREFIX
    if not _FB_TIME.match(text):
        return REASON_FB_TIME
    return REASON_FB_ID


def _plain_reason(param: str, value: str) -> int | None:
    text = value.strip()
    if text.lower() in PLACEHOLDERS:
        return REASON_PLACEHOLDER
    if param == "client_ip_address":
        valid = is_ip_address(text)
    else:
        shape = _PLAIN_SHAPES.get(param)
        # Without a shape any raw value is valid, but not a hash (ip, user agent...).
        valid = shape.match(text) is not None if shape is not None else not _SHA256.match(text)
    if valid:
        return None
    if _SHA256.match(text):
        return REASON_HASHED_RAW
    if param == "client_ip_address":
        return REASON_NOT_IP
    if param in ("fbc", "fbp"):
        return _fb_cookie_reason(text)
    if param == "lead_id" and _DIGITS.match(text):
        return REASON_LEAD_ID_LENGTH
    return REASON_NOT_DIGITS


@lru_cache(maxsize=262_144)
def _scalar_reason(param: str, value: str) -> int | None:
    """None for a valid text, else why it is not (the one definition of validity)."""
    if value.startswith(PLAINTEXT_MARKER):
        return REASON_PLAINTEXT_MARKED
    if param in HASHED_PARAMS:
        return _hashed_reason(param, value)
    if param == "external_id":
        text = value.strip()
        if text.lower() in PLACEHOLDERS:
            return REASON_PLACEHOLDER
        # Numeric customer ids are common and fine; only a +country phone is PII here.
        if looks_like_email(text):
            return REASON_PLAINTEXT_EMAIL
        if text.startswith("+") and looks_like_phone(text):
            return REASON_PLAINTEXT_PHONE
        return None
    return _plain_reason(param, value)


@lru_cache(maxsize=262_144)
def _scalar_status(param: str, value: str) -> int:
    return reason_status(_scalar_reason(param, value))


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


def value_reason(param: str, value: Any) -> int | None:
    """Why `value_status` finds a user_data value INVALID or UNHASHED; None when it is
    absent or valid.

    For a list without a valid element: the reason of its first plaintext element when
    there is one (the status is then UNHASHED), else the reason its elements share, else
    REASON_LIST_NO_VALID.
    """
    if value is None:
        return None
    if isinstance(value, str):
        return _scalar_reason(param, value)
    elements = value if isinstance(value, list) else [value]
    reasons = []
    for element in elements:
        if isinstance(element, bool) or not isinstance(element, str | int | float):
            reasons.append(REASON_NOT_TEXT)
            continue
        reason = _scalar_reason(param, str(element))
        if reason is None:
            return None  # one valid element makes the value valid
        reasons.append(reason)
    if not reasons:
        return None  # an empty list is absent
    plaintext = [r for r in reasons if r in PLAINTEXT_REASONS]
    if plaintext:
        return plaintext[0]
    return reasons[0] if len(set(reasons)) == 1 else REASON_LIST_NO_VALID


def format_reasons(reasons: dict[str, int]) -> str | None:
    """The stored form of the reasons of an event's parameters: "em:4;fbc:11" in PARAMS
    order, None when there is none."""
    parts = [f"{param}:{reasons[param]}" for param in PARAMS if reasons.get(param) is not None]
    return ";".join(parts) or None


def parse_reasons(text: str | None) -> dict[str, int]:
    """The reasons of a stored `format_reasons` text, by parameter (a part this version
    cannot read is left out)."""
    reasons: dict[str, int] = {}
    for part in (text or "").split(";"):
        param, _, code = part.partition(":")
        if param in _PARAM_SET and code.isascii() and code.isdigit():
            reasons[param] = int(code)
    return reasons


_PARAM_SET = frozenset(PARAMS)


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
