"""Meta's error codes in plain words: what a rejected batch's code means and what to do.

Owns the catalogue of Conversions API / Graph API error codes and subcodes that
integrations meet, `explain(code, subcode)` (an `ErrorExplanation`: a short name for a
chart legend, the meaning, the fix, and whether it is a token/permission error), the
legend text of an error, and the per-error table the Freshness & delivery page shows.
Pure Python and pandas: no Streamlit, no database.

Only codes with a source are listed: Meta's Conversions API pages and the Meta
answers RudderStack recorded (tests/fixtures/real_payloads.py keeps them). Meta does
not publish the meaning of most 2804xxx subcodes; those, and any code not listed, get
a generic explanation that points at Meta's own message, which the log keeps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

# Access-token and permission errors: every batch fails until someone renews the token
# or grants access, so they are flagged and drawn in a warning colour (and counted
# apart by indicators.delivery_summary, which imports these).
TOKEN_ERROR_CODES = (190, 200)

_TOKEN_FIX = (
    "Generate a new system-user access token for the dataset in Events Manager, put it in "
    "the server integration, then re-send the lost events that are under 7 days old."
)
_RETRY_FIX = (
    "Retry the rejected batches later, with a growing pause between tries; events can "
    "still be sent up to 7 days after they happened."
)


@dataclass(frozen=True)
class ErrorExplanation:
    """What one error code (and subcode) means for the person who reads the log."""

    meaning: str
    fix: str
    is_token_error: bool
    short: str = ""  # a few words for a chart legend: "access token expired"
    known: bool = True  # False: not in the catalogue, the explanation is generic


# (code, subcode): (short, meaning, fix). Subcode None: the code whatever its subcode.
CATALOGUE: dict[tuple[int, int | None], tuple[str, str, str]] = {
    (190, None): (
        "access token invalid",
        "The access token is invalid or expired: Meta refused the whole batch.",
        _TOKEN_FIX,
    ),
    (190, 460): (
        "access token revoked (password changed)",
        "The access token stopped working because the password of the person who "
        "created it changed.",
        _TOKEN_FIX + " A system user's token does not depend on a person's password.",
    ),
    (190, 463): (
        "access token expired",
        "The access token has expired: Meta refuses every batch sent with it.",
        _TOKEN_FIX,
    ),
    (200, None): (
        "permission missing",
        "The access token lacks permission to send events to this dataset.",
        "In Business Settings, give the system user (or app) access to the dataset, "
        "then generate a new token with that access and put it in the integration.",
    ),
    (100, None): (
        "invalid parameter",
        "Meta refused a parameter in the batch; one bad event rejects the whole batch of "
        "up to 1,000. See Meta's message for which parameter.",
        "Read Meta's message for the parameter at fault, fix how the integration fills it, "
        "and re-send the batch.",
    ),
    (100, 33): (
        "dataset not found or not accessible",
        "The dataset (pixel) ID in the request does not exist, or the access token cannot "
        "reach it.",
        "Check the dataset ID in the integration against Events Manager, and that the "
        "token's system user has access to that dataset.",
    ),
    (100, 2804003): (
        "event_time too old",
        "An event in the batch happened more than 7 days before it was sent (62 days for "
        "physical_store events): Meta dropped the whole batch.",
        "Send events within an hour of when they happen. Look for a queue or retry loop "
        "that holds events back, and drop events older than 7 days before sending.",
    ),
    (100, 2804009): (
        "Purchase without a value",
        "A Purchase event has no value parameter.",
        "Send custom_data.value and custom_data.currency with every Purchase "
        "(for example 1.99 and EUR).",
    ),
    (100, 2804030): (
        "Limited Data Use choice required",
        "Meta wants a Limited Data Use choice sent with the events.",
        "Send data_processing_options with every event (for example [] when Limited Data "
        "Use does not apply); see Meta's message.",
    ),
    (100, 2804066): (
        "event name not allowed for business messaging",
        "A business_messaging event uses an event name Meta does not accept there "
        "(for example Lead or CompleteRegistration).",
        "Use the business-messaging names, for example LeadSubmitted instead of Lead.",
    ),
    (2, None): (
        "temporary Meta error",
        "A temporary problem on Meta's side.",
        _RETRY_FIX,
    ),
    (4, None): (
        "rate limit",
        "Too many calls in a short time: Meta is throttling the app.",
        "Send fewer, larger batches (up to 1,000 events each). " + _RETRY_FIX,
    ),
    (17, None): (
        "rate limit",
        "User request limit reached: Meta is throttling calls made with this token.",
        "Send fewer, larger batches (up to 1,000 events each). " + _RETRY_FIX,
    ),
    (80003, None): (
        "rate limit",
        "Too many calls in a short time: Meta is throttling them.",
        "Send fewer, larger batches (up to 1,000 events each). " + _RETRY_FIX,
    ),
    (21009, None): (
        "dataset temporarily not ready",
        "The dataset cannot take uploads at the moment.",
        _RETRY_FIX,
    ),
}

NO_CODE = ErrorExplanation(
    "Rejected without an error code (for example a server error with no body).",
    "Look at the HTTP status in the log; retry server errors (5xx) later.",
    False,
    "no error code",
    known=False,
)


def _number(value: Any) -> int | None:
    """An int from a code cell (None, NaN and pd.NA are no code)."""
    if value is None or value is pd.NA:
        return None
    try:
        if pd.isna(value):
            return None
        return int(value)
    except (TypeError, ValueError):
        return None


def explain(code: Any, subcode: Any = None) -> ErrorExplanation:
    """What a rejected batch's error code (and subcode) means and what to do about it."""
    code, subcode = _number(code), _number(subcode)
    if code is None:
        return NO_CODE
    is_token = code in TOKEN_ERROR_CODES
    entry = CATALOGUE.get((code, subcode)) or CATALOGUE.get((code, None))
    if entry is None:
        return ErrorExplanation(
            "Not a code this dashboard knows: see Meta's message.",
            "Read Meta's message (error_user_msg when the log has it) and search the code "
            "on developers.facebook.com.",
            is_token,
            "",
            known=False,
        )
    short, meaning, fix = entry
    return ErrorExplanation(meaning, fix, is_token, short)


def code_text(code: Any, subcode: Any = None) -> str:
    """190/463, 17, or "no code"."""
    code, subcode = _number(code), _number(subcode)
    if code is None:
        return "no code"
    return f"{code}/{subcode}" if subcode is not None else str(code)


def legend(code: Any, subcode: Any = None, message: Any = None) -> str:
    """An error as a chart legend reads it: "190/463 access token expired" (a code not in
    the catalogue: its code and the start of Meta's message)."""
    if _number(code) is None:
        return NO_CODE.short
    words = explain(code, subcode).short
    if not words:
        text = str(message or "").strip()
        words = text if len(text) <= 40 else text[:39].rstrip() + "…"
    return f"{code_text(code, subcode)} {words}".strip()


def explained(errors: pd.DataFrame) -> pd.DataFrame:
    """Rejected batches per error (delivery_errors' days summed): code, subcode, meaning,
    fix, Meta's message, batches, events, first and last day. Token and permission
    errors first, then the errors with the most events."""
    columns = [
        "error_code",
        "error_subcode",
        "meaning",
        "fix",
        "error_message",
        "batches",
        "events",
        "first_day",
        "last_day",
    ]
    if errors is None or errors.empty:
        return pd.DataFrame(columns=columns)
    keys = ["error_code", "error_subcode", "error_message"]
    totals = (
        errors.groupby(keys, dropna=False, sort=False)
        .agg(
            batches=("batches", "sum"),
            events=("events", "sum"),
            first_day=("event_day", "min"),
            last_day=("event_day", "max"),
        )
        .reset_index()
    )
    found = [
        explain(c, s) for c, s in zip(totals["error_code"], totals["error_subcode"], strict=True)
    ]
    totals["meaning"] = [f.meaning for f in found]
    totals["fix"] = [f.fix for f in found]
    totals["_token"] = [f.is_token_error for f in found]
    totals = totals.sort_values(["_token", "events"], ascending=[False, False], kind="stable")
    return totals[columns].reset_index(drop=True)
