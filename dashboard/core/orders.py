"""The rows of the exports a reconciliation reads, as it holds them: an order of a shop
(its id, time, value and currency, and its contact details only as SHA-256 hashes
normalised as Meta wants them; the plaintext never leaves the reader,
dashboard/ingest/orders.py), and a CRM stage change (dashboard/ingest/crm.py). Pure.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Order:
    """One order of the export; contact details only as SHA-256 hashes."""

    line: int
    order_id: str
    created_at: float  # UTC Unix seconds
    value: float
    currency: str
    em_hash: str | None = None
    ph_hash: str | None = None


@dataclass(frozen=True)
class StageChange:
    """A lead that reached a stage at a time (UTC Unix seconds)."""

    line: int
    lead_id: str
    stage: str
    changed_at: float


def hash_email(text: str) -> str | None:
    """SHA-256 of the trimmed, lower-cased e-mail; a hash already is kept (lower case)."""
    value = text.strip().lower()
    if not value:
        return None
    if _HEX64.fullmatch(value):
        return value
    if "@" not in value:
        return None
    return hashlib.sha256(value.encode()).hexdigest()


def hash_phone(text: str) -> str | None:
    """SHA-256 of the digits without leading zeros (Meta: digits only, with the country
    code); a hash already is kept."""
    value = text.strip().lower()
    if _HEX64.fullmatch(value):
        return value
    digits = re.sub(r"[^0-9]", "", value).lstrip("0")
    return hashlib.sha256(digits.encode()).hexdigest() if len(digits) >= 7 else None
