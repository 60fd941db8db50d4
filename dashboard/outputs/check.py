"""Alerts: `python -m dashboard check`, a quality check a scheduler can run.

Owns the thresholds (data with defaults, overridable per option), comparing the latest
window (default: the last 24 h) with the 7 days before it, the pipeline checks (an empty
window, a silent server integration), the breach list, and posting a Slack-compatible
message to a webhook. Exit codes live in cli.py: 0 all hold, 1 any
breached, 2 usage or store error.
"""

from __future__ import annotations

import json
import math
import urllib.request
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from dashboard.core.config import Config
from dashboard.core.filters import Filters
from dashboard.quality.blocks import block_dict, block_frames, overall_block
from dashboard.store import dedup
from dashboard.store.handles import Engine
from dashboard.store.queries.freshness import delivery_summary, pipeline_health

DAY_S = 86_400
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
    max_volume_drop: float = 0.5  # fall of server events vs the baseline's daily average
    min_events: int = 20
    max_silence_hours: float = 6.0  # age of the newest accepted server event, by sent_at


@dataclass(frozen=True)
class Breach:
    """One threshold that does not hold."""

    check: str
    subject: str
    value: float | None  # None: nothing to measure (e.g. no server event ever)
    threshold: float
    message: str


@dataclass(frozen=True)
class CheckResult:
    """The window checked and what breached."""

    window_start: float
    window_end: float
    baseline_start: float
    checks_run: int
    breaches: list[Breach]

    @property
    def ok(self) -> bool:
        return not self.breaches

    def to_dict(self) -> dict[str, Any]:
        iso = lambda t: datetime.fromtimestamp(t, tz=UTC).isoformat(timespec="seconds")  # noqa: E731
        return {
            "ok": self.ok,
            "window": {"start": iso(self.window_start), "end": iso(self.window_end)},
            "baseline": {"start": iso(self.baseline_start), "end": iso(self.window_start)},
            "checks_run": self.checks_run,
            "breaches": [asdict(b) for b in self.breaches],
        }

    def lines(self) -> list[str]:
        """One line per breach, or one line saying all hold."""
        if self.ok:
            return [f"OK: all {self.checks_run} checks hold"]
        return [f"BREACH {b.check} [{b.subject}]: {b.message}" for b in self.breaches]


def run_check(
    engine: Engine,
    config: Config,
    thresholds: Thresholds,
    window_end: float,
    window_s: float = DAY_S,
    baseline_days: int = 7,
    filters: Filters | None = None,
) -> CheckResult:
    """Compare the window ending at `window_end` with the `baseline_days` before it."""
    base = filters or Filters()
    start = window_end - window_s
    baseline_start = start - baseline_days * DAY_S
    # Windows are on sent_at: the check is about what the integration sent lately
    # (a stale or back-filled event happened long before, but was sent now).
    dedup.refresh_if_stale(engine)
    window = replace(base, sent_start_ts=start, sent_end_ts=window_end)
    baseline = replace(base, sent_start_ts=baseline_start, sent_end_ts=start)

    cut = _tier_cut(thresholds.min_emq_tier, config)  # a bad tier name fails before any query
    overall_frame, by_event = block_frames(engine, window, config, [(), ("event_name",)])
    now = block_dict(overall_frame.iloc[0])
    delivery = delivery_summary(engine, window)
    before = overall_block(engine, baseline, config)
    steps = (
        _event_breaches(by_event, thresholds, cut),
        _window_breaches(now, delivery, thresholds),
        _volume_breaches(now, before, thresholds, window_s, baseline_days),
    )
    checks = sum(n for n, _ in steps)
    breaches = [breach for _, found in steps for breach in found]
    # Pipeline breaches first: when nothing arrives, the quality numbers above say little.
    pipeline_checks, pipeline = _pipeline_breaches(engine, base, thresholds, now, start, window_end)
    return CheckResult(
        start, window_end, baseline_start, checks + pipeline_checks, pipeline + breaches
    )


def _event_breaches(
    by_event: pd.DataFrame, thresholds: Thresholds, cut: float
) -> tuple[int, list[Breach]]:
    """EMQ estimate and event coverage per event name with enough events.
    Returns (checks run, breaches)."""
    breaches: list[Breach] = []
    checks = 0
    for _, row in by_event.iterrows():
        if row["server_sent"] >= thresholds.min_events:
            checks += 1
            # As displayed (one decimal), like the tier labels: 3.96 shows as 4.0, OK.
            if round(float(row["emq_estimate"]), 1) < cut:
                breaches.append(
                    Breach(
                        "emq_estimate",
                        row["event_name"],
                        round(float(row["emq_estimate"]), 2),
                        cut,
                        f"EMQ estimate {row['emq_estimate']:.1f} is below {thresholds.min_emq_tier} ({cut:g})",
                    )
                )
        if row["browser_events"] >= thresholds.min_events:
            checks += 1
            # As displayed (74.96% reads 75.0%), like the EMQ tier above.
            if round(float(row["event_coverage"]), 3) < thresholds.min_coverage:
                breaches.append(
                    Breach(
                        "event_coverage",
                        row["event_name"],
                        round(float(row["event_coverage"]), 4),
                        thresholds.min_coverage,
                        f"event coverage {row['event_coverage']:.1%} is below {thresholds.min_coverage:.0%}",
                    )
                )
    return checks, breaches


def _window_breaches(
    now: dict[str, Any], delivery: dict[str, int], thresholds: Thresholds
) -> tuple[int, list[Breach]]:
    """Double counts, error rate, token errors and stale events in the window's block.
    Returns (checks run, breaches)."""
    breaches: list[Breach] = []
    double = now["dedup"]["likely_double_counted"]
    if double > thresholds.max_likely_double:
        breaches.append(
            Breach(
                "likely_double_counted",
                "all",
                double,
                thresholds.max_likely_double,
                f"{double} server events are likely counted twice",
            )
        )
    if now["server_sent"]:
        rate = now["server_rejected_by_meta"] / now["server_sent"]
        if rate > thresholds.max_error_rate:
            breaches.append(
                Breach(
                    "error_rate",
                    "all",
                    round(rate, 4),
                    thresholds.max_error_rate,
                    f"{rate:.1%} of server events were rejected by Meta",
                )
            )
    if delivery["token_error_events"] > thresholds.max_token_errors:
        breaches.append(
            Breach(
                "token_errors",
                "all",
                delivery["token_error_events"],
                thresholds.max_token_errors,
                f"{delivery['token_error_events']} events rejected for the access token or permissions (190/200)",
            )
        )
    stale = now["freshness"]["stale_over_7d"]
    if stale > thresholds.max_stale:
        breaches.append(
            Breach(
                "stale_events",
                "all",
                stale,
                thresholds.max_stale,
                f"{stale} events were sent more than 7 days after they happened",
            )
        )
    return 4, breaches


def _volume_breaches(
    now: dict[str, Any],
    before: dict[str, Any],
    thresholds: Thresholds,
    window_s: float,
    baseline_days: int,
) -> tuple[int, list[Breach]]:
    """Server events in the window against the baseline's daily average, scaled to the
    window. Returns (checks run, breaches)."""
    daily_before = before["server_events"] / baseline_days
    if daily_before <= 0:
        return 1, []
    expected = daily_before * window_s / DAY_S
    drop = 1 - now["server_events"] / expected
    if drop <= thresholds.max_volume_drop:
        return 1, []
    return 1, [
        Breach(
            "server_volume_drop",
            "all",
            round(drop, 4),
            thresholds.max_volume_drop,
            f"server events fell {drop:.0%} ({now['server_events']} vs {expected:.0f} expected)",
        )
    ]


def _pipeline_breaches(
    engine: Engine,
    base: Filters,
    thresholds: Thresholds,
    window_block: dict[str, Any],
    start: float,
    window_end: float,
) -> tuple[int, list[Breach]]:
    """Checks that the integration still sends: the window holds no event at all (`no_events`), and
    the newest accepted server event, by sent_at, at or before the window's end, is older
    than `max_silence_hours` or missing (`server_silence`). Without them a store whose
    last event is weeks old passes every other check: an empty window and an empty
    baseline breach no rate and no volume drop. Returns (checks run, breaches)."""
    breaches: list[Breach] = []
    checks = 1
    if window_block["browser_events"] + window_block["server_sent"] == 0:
        breaches.append(
            Breach(
                "no_events",
                "all",
                0,
                1,
                f"no events were sent in the {(window_end - start) / 3600:g} h "
                f"before {_utc_minute(window_end)}",
            )
        )
    if base.channels and "server" not in base.channels:
        return checks, breaches  # a browser-only slice has no server integration to fall silent
    checks += 1
    # Not only the window: the last server event may be weeks old. sent_end_ts is
    # exclusive; its next float up makes it "at or before" the window's end.
    upto = replace(
        base,
        channels=("server",),
        sent_start_ts=None,
        sent_end_ts=math.nextafter(window_end, math.inf),
    )
    # Per dataset: one dead integration must not hide behind another that still sends.
    health = pipeline_health(engine, upto)
    limit = thresholds.max_silence_hours
    if health.empty:
        breaches.append(
            Breach(
                "server_silence",
                "all",
                None,
                limit,
                f"no accepted server event sent up to {_utc_minute(window_end)}; limit {limit:g} h",
            )
        )
    for dataset, last in zip(health["dataset_id"], health["last_server_sent_at"], strict=True):
        subject = f"dataset {dataset}"
        if math.isnan(last):
            breaches.append(
                Breach(
                    "server_silence",
                    subject,
                    None,
                    limit,
                    f"Meta accepted no server event of this dataset up to "
                    f"{_utc_minute(window_end)}; limit {limit:g} h",
                )
            )
        elif window_end - last > limit * 3600:
            silent = window_end - last
            breaches.append(
                Breach(
                    "server_silence",
                    subject,
                    round(silent / 3600, 1),
                    limit,
                    f"last server event sent {_how_long(silent)} ago, at {_utc_minute(last)}; "
                    f"limit {limit:g} h",
                )
            )
    return checks, breaches


def _utc_minute(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def _how_long(seconds: float) -> str:
    """45 min, 19.2 h, 27.0 days: in words someone reading a cron alert takes in at once."""
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * DAY_S:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / DAY_S:.1f} days"


def _tier_cut(name: str, config: Config) -> float:
    if name not in TIER_ORDER:
        raise ValueError(f"tier must be one of {', '.join(TIER_ORDER)}")
    return 0.0 if name == "Poor" else config.emq_tiers[name.lower()]


def slack_message(result: CheckResult) -> dict[str, Any]:
    """A Slack-compatible incoming-webhook payload."""
    header = (
        "Event quality check: all checks hold"
        if result.ok
        else (f"Event quality check: {len(result.breaches)} breach(es)")
    )
    return {"text": "\n".join([header, *(f"• {line}" for line in result.lines())])}


def post_webhook(url: str, result: CheckResult, timeout_s: float = 10) -> int:
    """POST the Slack-compatible message; returns the HTTP status."""
    if not url.startswith(("http://", "https://")):
        raise ValueError("webhook URL must start with http:// or https://")
    request = urllib.request.Request(
        url,
        data=json.dumps(slack_message(result)).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout_s) as answer:  # noqa: S310 - user's own URL
        return answer.status
