"""The thresholds of `python -m dashboard check`: what must hold in the latest window,
with their defaults, and the EMQ tier names a threshold may name.

Owns the data only, with no heavy import (no pandas, no SQLAlchemy): the command line
builds `check --help` and its defaults from here without loading what runs the checks
(dashboard/outputs/check.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from dashboard.core.meta_quality import META_GAP_POINTS

# The EMQ estimate's tiers, lowest first (--min-emq-tier names one).
TIER_ORDER = ("Poor", "OK", "Good", "Great")


@dataclass(frozen=True)
class Thresholds:
    """What must hold in the latest window. Rates are 0-1."""

    min_emq_tier: str = "OK"  # per event name with at least min_events server events
    min_coverage: float = 0.75  # per event name with at least min_events browser events
    max_likely_double: int = 0
    max_error_rate: float = 0.02  # rejected / sent server events
    max_token_errors: int = 0  # events rejected with code 190 or 200
    max_stale: int = 0  # events older than 7 days when sent
    max_unhashed_pii: int = 0  # server events with plaintext PII in a field to hash
    max_volume_drop: float = 0.5  # fall of server events vs the baseline's daily average
    min_events: int = 20
    max_silence_hours: float = 6.0  # age of the newest accepted server event, by sent_at
    max_meta_emq_drop: float = 1.0  # fall of Meta's EMQ between an event's two newest snapshots
    max_meta_gap: float = (
        META_GAP_POINTS  # |Meta's EMQ - our estimate| in the 48 h before a snapshot
    )
