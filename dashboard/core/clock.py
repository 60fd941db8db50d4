"""The one clock of periods, comparisons and silence checks.

Everything that asks "what time is it" calls `clock.now()` or `clock.today()` through this
module, so a test (or a replayed report) can fix the time in one place.
"""

from __future__ import annotations

from datetime import UTC, date, datetime


def now() -> float:
    """The time (UTC Unix seconds): the one clock of periods and comparisons, so a test
    can move it."""
    return datetime.now(tz=UTC).timestamp()


def today() -> date:
    """Today's UTC date: the dashboard's periods end today, and today is not over."""
    return datetime.fromtimestamp(now(), tz=UTC).date()
