"""Number formatting for people: 12.3k, 74.8%, 1.5 h. Pure functions, no Streamlit."""

from __future__ import annotations

import math
from typing import Any

NO_DATA = "–"


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def compact(value: Any) -> str:
    """12, 1,234, 12.3k, 4.5M."""
    if _missing(value):
        return NO_DATA
    number = float(value)
    sign = "-" if number < 0 else ""
    number = abs(number)
    if number < 10_000:
        return f"{sign}{number:,.0f}" if number == int(number) else f"{sign}{number:,.1f}"
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if number >= limit:
            return f"{sign}{number / limit:.1f}{suffix}"
    return f"{sign}{number:,.0f}"


def percent(value: Any, digits: int = 1) -> str:
    """A 0-1 rate as 74.8%."""
    if _missing(value):
        return NO_DATA
    return f"{float(value) * 100:.{digits}f}%"


def score(value: Any) -> str:
    """An EMQ estimate as 6.4 (of 10)."""
    if _missing(value):
        return NO_DATA
    return f"{float(value):.1f}"


def duration(seconds: Any) -> str:
    """Seconds as 45 s, 12 min, 3.5 h, 2.1 d (negative for events stamped in the future)."""
    if _missing(seconds):
        return NO_DATA
    value = float(seconds)
    sign = "-" if value < 0 else ""
    value = abs(value)
    if value < 90:
        return f"{sign}{value:.0f} s"
    if value < 5400:
        return f"{sign}{value / 60:.0f} min"
    if value < 172_800:
        return f"{sign}{value / 3600:.1f} h"
    return f"{sign}{value / 86400:.1f} d"


def delta(current: Any, previous: Any, kind: str = "count") -> str | None:
    """Change vs the previous period, formatted like the value ('+3.1 pp', '-12', '+0.4')."""
    if _missing(current) or _missing(previous):
        return None
    change = float(current) - float(previous)
    if kind == "rate":
        return f"{change * 100:+.1f} pp"
    if kind == "score":
        return f"{change:+.1f}"
    if kind == "duration":
        return ("+" if change >= 0 else "-") + duration(abs(change))
    return ("+" if change >= 0 else "-") + compact(abs(change))
