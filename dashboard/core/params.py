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

# Status codes stored per event and parameter (SMALLINT columns p_<param>).
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

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_HEXISH = re.compile(r"^[0-9a-fA-F]{32,}$")
# fb.<subdomain index 0-2>.<creation time, 13-digit ms>.<fbclid | random>, with the
# optional Parameter Builder appendix (8 chars, or 2 for legacy) as a 5th segment.
_FBC = re.compile(r"^fb\.[0-2]\.\d{13}\.[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]{2,8})?$")
_FBP = re.compile(r"^fb\.[0-2]\.\d{13}\.\d+(?:\.[A-Za-z0-9_-]{2,8})?$")
_DIGITS = re.compile(r"^\d+$")
_LEAD_ID = re.compile(r"^\d{15,17}$")
# The lookahead keeps the match linear: without it "a@" + "." * n + "@" takes O(n²)
# backtracking (a fuzzer found 60 kB taking 45 s). Same matches as the plain pattern.
_EMAIL = re.compile(r"^[^@\s]+@(?=[^@\s]+$)[^@\s]+\.[^@\s]+$")
_PHONE_CHARS = re.compile(r"^[\d\s()+.\-/]+$")
_PLACEHOLDERS = frozenset({"", "null", "none", "undefined", "nan", "n/a", "na", "-", "0"})


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
    return bool(_PHONE_CHARS.match(stripped)) and sum(c.isdigit() for c in stripped) >= 7


def _hashed_status(value: str) -> int:
    if _SHA256.match(value):
        return VALID
    if value.strip().lower() in _PLACEHOLDERS or _HEXISH.match(value):
        # Placeholders and wrong-shape hashes (MD5, upper-case hex) carry no PII.
        return INVALID
    return UNHASHED


def _plain_status(param: str, value: str) -> int:
    text = value.strip()
    if text.lower() in _PLACEHOLDERS:
        return INVALID
    if param == "client_ip_address":
        try:
            ipaddress.ip_address(text)
        except ValueError:
            return INVALID
        return VALID
    if param == "fbc":
        return VALID if _FBC.match(text) else INVALID
    if param == "fbp":
        return VALID if _FBP.match(text) else INVALID
    if param == "lead_id":
        return VALID if _LEAD_ID.match(text) else INVALID
    if param in ("page_id", "page_scoped_user_id", "fb_login_id", "ig_account_id"):
        return VALID if _DIGITS.match(text) else INVALID
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
        if text.lower() in _PLACEHOLDERS:
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
