"""Number formatting for people: 12.3k, 74.8%, 1.5 h. Pure functions, no Streamlit."""

from __future__ import annotations

import math
from typing import Any

NO_DATA = "–"


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


_UNITS = ((1e3, "k"), (1e6, "M"), (1e9, "B"))


def compact(value: Any) -> str:
    """12, 1,234, 12.3k, 313k, 4.5M: at most one decimal, and none from 100 of a unit on
    (a card holding "313.3k / 675.9k" was cut at its edge)."""
    if _missing(value):
        return NO_DATA
    number = float(value)
    sign = "-" if number < 0 else ""
    number = abs(number)
    if number < 10_000:
        return f"{sign}{number:,.0f}" if number == int(number) else f"{sign}{number:,.1f}"
    unit = max(i for i, (limit, _) in enumerate(_UNITS) if number >= limit)
    scaled = number / _UNITS[unit][0]
    if round(scaled) >= 1000 and unit + 1 < len(_UNITS):  # 999,960 is 1.0M, not 1000k
        unit, scaled = unit + 1, scaled / 1000
    suffix = _UNITS[unit][1]
    if round(scaled, 1) >= 100:
        return f"{sign}{scaled:,.0f}{suffix}"
    return f"{sign}{scaled:.1f}{suffix}"


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


NO_CHANGE = "no change"


def day(value: Any) -> str:
    """A date as '4 Nov 2026'."""
    if _missing(value):
        return NO_DATA
    return f"{value.day} {value:%b %Y}"


def day_ranges(days: list, limit: int = 6) -> str:
    """Dates as runs: '31 Oct 2026, 5 Nov 2026 – 30 Nov 2026' (at most `limit` runs)."""
    runs: list[list] = []
    for value in sorted(days):
        if runs and (value - runs[-1][1]).days == 1:
            runs[-1][1] = value
        else:
            runs.append([value, value])
    parts = [day(a) if a == b else f"{day(a)} – {day(b)}" for a, b in runs[:limit]]
    if len(runs) > limit:
        parts.append(f"and {len(runs) - limit} more")
    return ", ".join(parts)


def ago(seconds: Any) -> str:
    """A time span in the past in words: '27 days ago', '3.5 h ago', 'just now'."""
    if _missing(seconds):
        return NO_DATA
    value = max(0.0, float(seconds))
    if value < 60:
        return "just now"
    if value >= 2 * 86400:
        return f"{value / 86400:.0f} days ago"
    return f"{duration(value)} ago"


def delta(current: Any, previous: Any, kind: str = "count") -> str | None:
    """Change vs the comparison period, formatted like the value ('+3.1 pp', '-12', '+0.4').

    Computed from the two values as they are displayed (6.6 vs 6.5 is "+0.1", never
    "+0.2"), and a change that rounds to nothing is "no change", never "-0.0".
    """
    if _missing(current) or _missing(previous):
        return None
    if kind == "rate":
        change = round(round(float(current) * 100, 1) - round(float(previous) * 100, 1), 1)
        return NO_CHANGE if change == 0 else f"{change:+.1f} pp"
    if kind == "score":
        change = round(round(float(current), 1) - round(float(previous), 1), 1)
        return NO_CHANGE if change == 0 else f"{change:+.1f}"
    change = float(current) - float(previous)
    if kind == "duration":
        if duration(abs(change)) in ("0 s", "-0 s"):
            return NO_CHANGE
        return ("+" if change > 0 else "-") + duration(abs(change))
    if compact(abs(change)) == "0":
        return NO_CHANGE
    return ("+" if change > 0 else "-") + compact(abs(change))
