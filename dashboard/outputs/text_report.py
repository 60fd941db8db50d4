"""`report --format text`: a one-screen summary for a person at a terminal.

Owns the summary's lines, built only from the JSON report dict (dashboard/outputs/report.py,
the contract): the period, whether data is still arriving (the newest event per channel
and how long ago), the headline numbers with their change vs the previous period, and
the top diagnostics. It computes nothing the JSON does not hold beyond simple ratios,
so the two cannot disagree. Plain text, at most 40 lines, no colours.

Reads keys added to the report after version 1's first release (freshness times,
days_without_events, dedup rate, period comparison) with .get(), so it
works on reports with and without them.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, date, datetime
from typing import Any

from dashboard.core.config import Config
from dashboard.core.formatting import NO_DATA, compact, duration, percent
from dashboard.outputs.scorecards import scorecards

MAX_LINES = 40
TOP_DIAGNOSTICS = 3
LABEL_WIDTH = 27
VALUE_WIDTH = 26


def render_text(report: dict[str, Any], config: Config, now: float | None = None) -> str:
    """The summary of one JSON report. "Ago" is relative to `now` (UTC Unix seconds),
    by default the report's generated_at, so a saved report reads the same later."""
    if now is None:
        now = _seconds(report.get("generated_at")) or datetime.now(tz=UTC).timestamp()
    period = report.get("period") or {}
    overall = report["overall"]
    previous = report.get("previous_overall")
    lines = [_title(period)]
    lines += _comparison_lines(period, previous)
    filters = _filters_text(period.get("filters") or {})
    if filters:
        lines.append(f"Filters: {filters}")
    lines.append("")
    lines += _pipeline_lines(report, config, now)
    lines.append("")
    lines += _headline_lines(overall, previous, report.get("config") or {}, config)
    lines.append("")
    lines += _diagnostic_lines(report.get("diagnostics") or [])
    return "\n".join(lines[:MAX_LINES])


# ---------------------------------------------------------------------------
def _title(period: dict[str, Any]) -> str:
    since, until = period.get("since"), period.get("until")
    if since and until:
        span = f"{since} to {until}"
    elif since:
        span = f"from {since}"
    elif until:
        span = f"up to {until}"
    else:
        span = "all data"
    first, last = period.get("data_first_day"), period.get("data_last_day")
    data = f"data {first} to {last}" if first and last else "no data"
    return f"Event quality report: {span} ({data})"


def _comparison_lines(period: dict[str, Any], previous: dict | None) -> list[str]:
    compared = period.get("comparison")
    if isinstance(compared, dict) and compared.get("note"):
        return [_clean(str(compared["note"]))]
    if previous is not None and period.get("previous_since"):
        return [f"Changes compare with {period['previous_since']} to {period['previous_until']}."]
    return []


def _filters_text(filters: dict[str, Any]) -> str:
    parts = []
    for key, value in filters.items():
        if key in ("since", "until") or value in (None, [], ""):
            continue
        shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        parts.append(f"{key.replace('_', ' ')} {_clean(shown)}")
    return "; ".join(parts)


# ---------------------------------------------------------------------------
def _pipeline_lines(report: dict[str, Any], config: Config, now: float) -> list[str]:
    freshness = report["overall"].get("freshness") or {}
    if "last_event_at" not in freshness:
        # A report from before the freshness times: the last day is all it says.
        last_day = (report.get("period") or {}).get("data_last_day")
        return [f"Pipeline: newest event on {last_day or NO_DATA} (no event times in this report)"]
    # Received = sent by the integration and taken by Meta (sent_at), as `check` judges
    # it; a report from before last_sent_at falls back on the event time.
    last = _seconds(freshness.get("last_sent_at") or freshness.get("last_event_at"))
    if last is None:
        lines = ["Pipeline: no accepted event in this period"]
    else:
        lines = [
            f"Pipeline: last event received {_ago(last, now)} ({_minute(last)}); newest "
            f"event times: browser {_ago(_seconds(freshness.get('last_browser_event_at')), now)}, "
            f"server {_ago(_seconds(freshness.get('last_server_event_at')), now)}"
        ]
    lines += _dataset_lines(report.get("by_dataset") or {}, now)
    warning = _silence_warning(report, freshness, config, now)
    if warning:
        lines.append(warning)
    missing = freshness.get("days_without_events") or []
    if missing:
        shown = ", ".join(missing[:5]) + (", …" if len(missing) > 5 else "")
        lines.append(f"  Days without events: {len(missing)} ({shown})")
    return lines


def _dataset_lines(by_dataset: dict[str, Any], now: float, most: int = 5) -> list[str]:
    """With several datasets, when each last sent a server event: one dead integration
    must not hide behind another that still sends."""
    if len(by_dataset) < 2:
        return []
    lines = []
    for name, block in list(by_dataset.items())[:most]:
        fresh = block.get("freshness") or {}
        lines.append(
            f"  dataset {_clean(str(name))}: last received "
            f"{_ago(_seconds(fresh.get('last_sent_at')), now)}, last server event sent "
            f"{_ago(_seconds(fresh.get('last_server_sent_at')), now)}"
        )
    if len(by_dataset) > most:
        lines.append(f"  … and {len(by_dataset) - most} more datasets")
    return lines


def _silence_warning(
    report: dict[str, Any], freshness: dict[str, Any], config: Config, now: float
) -> str | None:
    limit_h = config.max_silence_hours
    period = report.get("period") or {}
    until = period.get("until")
    # A period that ended before the limit cannot hold a recent event: no warning there.
    if until and _day_end(until) <= now - limit_h * 3600:
        return None
    channels = ((period.get("filters") or {}).get("channels")) or []
    if channels and "server" not in channels:
        return None  # a browser-only slice has no server integration to watch
    server = _seconds(freshness.get("last_server_sent_at") or freshness.get("last_server_event_at"))
    if server is None:
        return "  Warning: no server event in this period: is the Conversions API sending?"
    if now - server > limit_h * 3600:
        return (
            f"  Warning: the newest server event was sent {duration(now - server)} ago "
            f"(limit {limit_h:g} h): is the Conversions API still sending?"
        )
    return None


# ---------------------------------------------------------------------------
def _headline_lines(
    overall: dict[str, Any], previous: dict | None, report_config: dict, config: Config
) -> list[str]:
    goal = report_config.get("coverage_goal", config.coverage_goal)
    sent = overall.get("server_sent") or 0
    frequency = overall.get("upload_frequency")
    # What each headline adds to its value on a terminal, by measure.
    details = {
        "emq_estimate": lambda card: f" ({overall.get('emq_tier', NO_DATA)})",
        "event_coverage": lambda card: f" (goal {percent(goal, 0)})",
        "server_rejected_by_meta": lambda card: (
            f" of {compact(sent)} sent" + (f" ({percent(card.value / sent)})" if sent else "")
        ),
        "unhashed_pii": lambda card: " server events",
        "freshness.median_lag_s": lambda card: f" ({frequency})" if frequency else "",
    }
    header = f"{'':<{LABEL_WIDTH}}{'this period':<{VALUE_WIDTH}}"
    lines = [(header + "vs previous") if previous is not None else header.rstrip()]
    for card in scorecards(_with_rate(overall), _with_rate(previous), config):
        shown = card.shown
        if card.value is not None and card.measure.key in details:
            shown += details[card.measure.key](card)
        line = f"{card.label:<{LABEL_WIDTH}}{shown:<{VALUE_WIDTH}}"
        if previous is not None:
            line += card.change or NO_DATA
        lines.append(line.rstrip())
    return lines


def _with_rate(block: dict[str, Any] | None) -> dict[str, Any] | None:
    """The block with its dedup rate, computed as the JSON defines it for older reports
    without one."""
    if block is None or "rate" in (block.get("dedup") or {}):
        return block
    dedup = dict(block.get("dedup") or {})
    dedup["rate"] = _dedup_rate(block)
    return {**block, "dedup": dedup}


def _dedup_rate(block: dict[str, Any]) -> float | None:
    """The block's dedup rate; computed as the JSON defines it for reports without one."""
    dedup = block.get("dedup") or {}
    if "rate" in dedup:
        return dedup["rate"]
    server_events = block.get("server_events") or 0
    if not server_events:
        return None
    server = dedup.get("server") or {}
    return (server.get("deduplicated", 0) + server.get("fallback_deduplicated", 0)) / server_events


def _diagnostic_lines(diagnostics: list[dict[str, Any]]) -> list[str]:
    lines = ["What to fix first"]
    if not diagnostics:
        return [*lines, "  nothing found"]
    for rank, found in enumerate(diagnostics[:TOP_DIAGNOSTICS], start=1):
        total = found.get("total")
        count = compact(found.get("affected"))
        if total is not None:
            count += f"/{compact(total)}"
        lines.append(
            f"  {rank}. [{found.get('severity', '?')}] {_clean(str(found.get('name', '')))}"
            f" ({count} events)"
        )
    if len(diagnostics) > TOP_DIAGNOSTICS:
        lines.append(f"  … {len(diagnostics) - TOP_DIAGNOSTICS} more in --format json or html")
    return lines


# ---------------------------------------------------------------------------
def _seconds(text: Any) -> float | None:
    """ISO 8601 (with Z or an offset; UTC when none) as Unix seconds; None when missing."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(str(text))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _day_end(day: str) -> float:
    parsed = date.fromisoformat(day)
    return datetime(parsed.year, parsed.month, parsed.day, tzinfo=UTC).timestamp() + 86_400


def _ago(seconds: float | None, now: float) -> str:
    return NO_DATA if seconds is None else f"{duration(now - seconds)} ago"


def _minute(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def _clean(text: str) -> str:
    """Text from the log without control characters: a campaign name holding a terminal
    escape sequence must not drive the reader's terminal."""
    return "".join(ch for ch in text if unicodedata.category(ch)[0] != "C")
