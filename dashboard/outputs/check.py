"""Alerts: `python -m dashboard check`, a quality check a scheduler or CI can run.

Owns running the thresholds (their data and defaults live in outputs/thresholds.py,
re-exported here), the fixed list of checks (`CHECKS`), comparing the latest window (default: the last 24 h) with the 7 days
before it, the pipeline checks (an empty window, a silent server integration), Meta's
own EMQ against its previous snapshot and against our estimate, the
outcome of every check (passed, breached, or skipped with the reason), the JSON output
(`CheckResult.to_dict`, described by schemas/check.schema.json) and posting a
Slack-compatible message to a webhook. Exit codes live in cli/: 0 none breached, 1 any
breached, 2 usage or store error."""

from __future__ import annotations

import json
import math
import urllib.request
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from dashboard.core.config import Config
from dashboard.core.definitions import MIN_GROUP_EVENTS
from dashboard.core.filters import Filters
from dashboard.outputs.thresholds import TIER_ORDER, Thresholds  # Thresholds: re-exported
from dashboard.quality.blocks import block_dict, block_frames, overall_block
from dashboard.quality.meta_compare import compare, emq_drops, newest_per_event
from dashboard.store import dedup
from dashboard.store.handles import Engine
from dashboard.store.meta_snapshots import load_snapshots
from dashboard.store.queries.freshness import delivery_summary, pipeline_health

DAY_S = 86_400


# The checks, always all of them and in this order (pipeline first: when nothing arrives,
# the quality numbers after them say little). Each is reported passed, breached or
# skipped with its reason, so a CI log shows what was not judged and why.
CHECKS = (
    "no_events",
    "server_silence",
    "emq_estimate",
    "event_coverage",
    "likely_double_counted",
    "error_rate",
    "token_errors",
    "stale_events",
    "unhashed_pii",
    "server_volume_drop",
    "meta_emq_drop",
    "meta_estimate_gap",
)
PASSED, BREACHED, SKIPPED = "passed", "breached", "skipped"
# The `check --format json` contract: schemas/check.schema.json describes this version.
CHECK_SCHEMA_VERSION = "1.1"  # 1.1: the two Meta checks


@dataclass(frozen=True)
class Outcome:
    """One check on one subject (an event name, a dataset, or "all"): passed or breached
    with its message, or skipped (subject None) with the reason as its message."""

    check: str
    status: str  # passed | breached | skipped
    subject: str | None
    value: float | None  # None: nothing measured (skipped, or no server event ever)
    threshold: float
    message: str

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"check": self.check, "status": self.status}
        if self.subject is not None:
            out["subject"] = self.subject
        out["value"] = self.value
        out["threshold"] = self.threshold
        out["reason" if self.status == SKIPPED else "message"] = self.message
        return out

    def line(self) -> str:
        if self.status == BREACHED:  # as before the outcomes were listed: scripts grep it
            return f"BREACH {self.check} [{self.subject}]: {self.message}"
        if self.status == SKIPPED:
            return f"skipped {self.check}: {self.message}"
        return f"passed {self.check} [{self.subject}]: {self.message}"


@dataclass(frozen=True)
class Breach:
    """One threshold that does not hold (the JSON's `breaches`, kept for scripts written
    before `checks`)."""

    check: str
    subject: str
    value: float | None  # None: nothing to measure (e.g. no server event ever)
    threshold: float
    message: str


@dataclass(frozen=True)
class CheckResult:
    """The window checked and the outcome of every check."""

    window_start: float
    window_end: float
    baseline_start: float
    outcomes: list[Outcome]
    thresholds: Thresholds = Thresholds()
    filters: Filters = Filters()

    @property
    def breaches(self) -> list[Breach]:
        return [
            Breach(o.check, o.subject or "all", o.value, o.threshold, o.message)
            for o in self.outcomes
            if o.status == BREACHED
        ]

    @property
    def ok(self) -> bool:
        return not self.breaches

    @property
    def checks_run(self) -> list[str]:
        """The fixed list of checks (each passed, breached or skipped)."""
        return list(CHECKS)

    def statuses(self) -> dict[str, str]:
        """Each check's status over its subjects: breached if one breaches, passed if one
        was judged, else skipped."""
        out = {}
        for check in CHECKS:
            found = {o.status for o in self.outcomes if o.check == check}
            out[check] = next((s for s in (BREACHED, PASSED) if s in found), SKIPPED)
        return out

    def summary(self) -> dict[str, int]:
        counts = list(self.statuses().values())
        return {status: counts.count(status) for status in (PASSED, BREACHED, SKIPPED)}

    def verdict(self) -> str:
        """OK: 8 of 10 checks passed, 2 skipped / BREACH: 2 of 10 checks breached, ..."""
        n = self.summary()
        skipped = f", {n[SKIPPED]} skipped" if n[SKIPPED] else ""
        if self.ok:
            return f"OK: {n[PASSED]} of {len(CHECKS)} checks passed{skipped}"
        return (
            f"BREACH: {n[BREACHED]} of {len(CHECKS)} checks breached, {n[PASSED]} passed{skipped}"
        )

    def to_dict(self) -> dict[str, Any]:
        iso = lambda t: datetime.fromtimestamp(t, tz=UTC).isoformat(timespec="seconds")  # noqa: E731
        return {
            "schema_version": CHECK_SCHEMA_VERSION,
            "ok": self.ok,
            "window": {"start": iso(self.window_start), "end": iso(self.window_end)},
            "baseline": {"start": iso(self.baseline_start), "end": iso(self.window_start)},
            "filters": self.filters.as_dict(),
            "thresholds": asdict(self.thresholds),
            "checks_run": self.checks_run,
            "summary": self.summary(),
            "checks": [o.to_dict() for o in self.outcomes],
            "breaches": [asdict(b) for b in self.breaches],
        }

    def lines(self) -> list[str]:
        """One line per breach, or the verdict when none breached (the webhook's text)."""
        if self.ok:
            return [self.verdict()]
        return [o.line() for o in self.outcomes if o.status == BREACHED]

    def report_lines(self) -> list[str]:
        """The verdict, then every outcome: breaches first, then passed, then skipped."""
        order = (BREACHED, PASSED, SKIPPED)
        ranked = sorted(self.outcomes, key=lambda o: order.index(o.status))  # stable
        return [self.verdict(), *(o.line() for o in ranked)]


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
    outcomes = [
        *_pipeline_outcomes(engine, base, thresholds, now, start, window_end),
        *_event_outcomes(by_event, thresholds, cut),
        *_window_outcomes(now, delivery, thresholds),
        _volume_outcome(now, before, thresholds, window_s, baseline_days),
        *_meta_outcomes(engine, config, base, thresholds, window_end),
    ]
    return CheckResult(start, window_end, baseline_start, outcomes, thresholds, base)


def _judged(check: str, breached: bool, subject: str, value, threshold, message: str) -> Outcome:
    return Outcome(check, BREACHED if breached else PASSED, subject, value, threshold, message)


def _skipped(check: str, threshold: float, reason: str) -> Outcome:
    return Outcome(check, SKIPPED, None, None, threshold, reason)


def _event_outcomes(by_event: pd.DataFrame, thresholds: Thresholds, cut: float) -> list[Outcome]:
    """EMQ estimate and event coverage per event name with at least `min_events` events
    (server events sent for EMQ, browser events for coverage); skipped when none has."""
    emq: list[Outcome] = []
    coverage: list[Outcome] = []
    least = thresholds.min_events
    for _, row in by_event.iterrows():
        name = row["event_name"]
        if row["server_sent"] >= least:
            # As displayed (one decimal), like the tier labels: 3.96 shows as 4.0, OK.
            score = float(row["emq_estimate"])
            below = round(score, 1) < cut
            relation = "is below" if below else "is at least"
            emq.append(
                _judged(
                    "emq_estimate",
                    below,
                    name,
                    round(score, 2),
                    cut,
                    f"EMQ estimate {score:.1f} {relation} {thresholds.min_emq_tier} ({cut:g})",
                )
            )
        if row["browser_events"] >= least:
            # As displayed (74.96% reads 75.0%), like the EMQ tier above.
            share = float(row["event_coverage"])
            below = round(share, 3) < thresholds.min_coverage
            relation = "is below" if below else "is at least"
            coverage.append(
                _judged(
                    "event_coverage",
                    below,
                    name,
                    round(share, 4),
                    thresholds.min_coverage,
                    f"event coverage {share:.1%} {relation} {thresholds.min_coverage:.0%}",
                )
            )
    return [
        *(
            emq
            or [
                _skipped(
                    "emq_estimate", cut, f"no event name with ≥{least} server events in the window"
                )
            ]
        ),
        *(
            coverage
            or [
                _skipped(
                    "event_coverage",
                    thresholds.min_coverage,
                    f"no event name with ≥{least} browser events in the window",
                )
            ]
        ),
    ]


def _window_outcomes(
    now: dict[str, Any], delivery: dict[str, int], thresholds: Thresholds
) -> list[Outcome]:
    """Double counts, error rate, token errors, stale events and plaintext PII in the
    window's block; each skipped when the window holds none of the events it is about."""
    sent = now["server_sent"]
    any_event = now["browser_events"] + sent
    no_server = "no server event sent in the window"
    out: list[Outcome] = []
    double, most = now["dedup"]["likely_double_counted"], thresholds.max_likely_double
    out.append(
        _judged(
            "likely_double_counted",
            double > most,
            "all",
            double,
            most,
            f"{double} server events are likely counted twice (limit {most})",
        )
        if now["server_events"]
        else _skipped("likely_double_counted", most, "no server event accepted in the window")
    )
    limit = thresholds.max_error_rate
    if sent:
        rate = now["server_rejected_by_meta"] / sent
        out.append(
            _judged(
                "error_rate",
                rate > limit,
                "all",
                round(rate, 4),
                limit,
                f"{rate:.1%} of server events were rejected by Meta (limit {limit:.1%})",
            )
        )
    else:
        out.append(_skipped("error_rate", limit, no_server))
    tokens, most = delivery["token_error_events"], thresholds.max_token_errors
    out.append(
        _judged(
            "token_errors",
            tokens > most,
            "all",
            tokens,
            most,
            f"{tokens} events rejected for the access token or permissions (190/200)"
            f" (limit {most})",
        )
        if sent
        else _skipped("token_errors", most, no_server)
    )
    stale, most = now["freshness"]["stale_over_7d"], thresholds.max_stale
    out.append(
        _judged(
            "stale_events",
            stale > most,
            "all",
            stale,
            most,
            f"{stale} events were sent more than 7 days after they happened (limit {most})",
        )
        if any_event
        else _skipped("stale_events", most, "no event sent in the window")
    )
    pii, most = now["unhashed_pii"], thresholds.max_unhashed_pii
    out.append(
        _judged(
            "unhashed_pii",
            pii > most,
            "all",
            pii,
            most,
            f"{pii} server events carried plaintext personal data in a field Meta wants "
            f"SHA-256 hashed (limit {most})",
        )
        if sent
        else _skipped("unhashed_pii", most, no_server)
    )
    return out


def _volume_outcome(
    now: dict[str, Any],
    before: dict[str, Any],
    thresholds: Thresholds,
    window_s: float,
    baseline_days: int,
) -> Outcome:
    """Server events in the window against the baseline's daily average, scaled to the
    window; skipped without a server event in the baseline."""
    limit = thresholds.max_volume_drop
    daily_before = before["server_events"] / baseline_days
    if daily_before <= 0:
        return _skipped(
            "server_volume_drop",
            limit,
            f"no server event in the {baseline_days} days before the window to compare with",
        )
    expected = daily_before * window_s / DAY_S
    drop = 1 - now["server_events"] / expected
    change = f"fell {drop:.0%}" if drop > 0 else f"rose {-drop:.0%}" if drop < 0 else "held"
    return _judged(
        "server_volume_drop",
        drop > limit,
        "all",
        round(drop, 4),
        limit,
        f"server events {change} ({now['server_events']} vs {expected:.0f} expected)",
    )


def _meta_outcomes(
    engine: Engine, config: Config, base: Filters, thresholds: Thresholds, window_end: float
) -> list[Outcome]:
    """Meta's own EMQ (Dataset Quality API snapshots up to the window's end): a fall
    between an event's two newest snapshots (`meta_emq_drop`), and a gap between Meta's
    newest score and our estimate over the 48 h before it (`meta_estimate_gap`), which
    usually means a hashing or normalisation fault no count of ours can see."""
    found = load_snapshots(engine, base.datasets, until_ts=math.nextafter(window_end, math.inf))
    if base.event_names:
        found = [s for s in found if s.event_name in base.event_names]
    drop_limit, gap_limit = thresholds.max_meta_emq_drop, thresholds.max_meta_gap
    out = []
    for change in emq_drops(found, math.inf):
        before, after = change.before, change.after
        out.append(
            _judged(
                "meta_emq_drop",
                change.drop > drop_limit,
                f"{change.event_name} (dataset {change.dataset_id})",
                change.drop,
                drop_limit,
                f"Meta's EMQ went from {before.emq:g} ({_utc_minute(before.fetched_at)}) to "
                f"{after.emq:g} ({_utc_minute(after.fetched_at)}); limit a fall of "
                f"{drop_limit:.1f} points",
            )
        )
    if not out:
        reason = "no event name has two Meta snapshots with a score (meta import / meta fetch)"
        out.append(_skipped("meta_emq_drop", drop_limit, reason))
    gaps = [c for c in compare(engine, config, newest_per_event(found)) if c.our_emq is not None]
    for c in gaps:
        meta, ours = c.snapshot.emq, c.our_emq
        apart = abs(c.emq_difference)
        out.append(
            _judged(
                "meta_estimate_gap",
                apart > gap_limit,
                f"{c.snapshot.event_name} (dataset {c.snapshot.dataset_id})",
                round(apart, 2),
                gap_limit,
                f"Meta's EMQ {meta:g} and our estimate {ours:.2f} (its "
                f"{c.our_server_events} server events in the 48 h before the "
                f"{_utc_minute(c.snapshot.fetched_at)} snapshot) are {apart:.2f} points apart"
                + (": check hashing and normalisation" if apart > gap_limit else ""),
            )
        )
    if not gaps:
        reason = (
            f"no Meta snapshot with a score and ≥{MIN_GROUP_EVENTS} of our server events of "
            "its event name in the 48 h before it"
        )
        out.append(_skipped("meta_estimate_gap", gap_limit, reason))
    return out


def _pipeline_outcomes(
    engine: Engine,
    base: Filters,
    thresholds: Thresholds,
    window_block: dict[str, Any],
    start: float,
    window_end: float,
) -> list[Outcome]:
    """Checks that the integration still sends: the window holds no event at all (`no_events`), and
    the newest accepted server event, by sent_at, at or before the window's end, is older
    than `max_silence_hours` or missing (`server_silence`). Without them a store whose
    last event is weeks old passes every other check: an empty window and an empty
    baseline breach no rate and no volume drop."""
    sent = window_block["browser_events"] + window_block["server_sent"]
    hours = f"{(window_end - start) / 3600:g} h before {_utc_minute(window_end)}"
    out = [
        _judged(
            "no_events",
            sent == 0,
            "all",
            sent,
            1,
            f"no events were sent in the {hours}"
            if sent == 0
            else f"{sent} events sent in the {hours}",
        )
    ]
    limit = thresholds.max_silence_hours
    if base.channels and "server" not in base.channels:
        # A browser-only slice has no server integration to fall silent.
        return [
            *out,
            _skipped("server_silence", limit, "the slice has no server events (--channel)"),
        ]
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
    if health.empty:
        out.append(
            _judged(
                "server_silence",
                True,
                "all",
                None,
                limit,
                f"no accepted server event sent up to {_utc_minute(window_end)}; limit {limit:g} h",
            )
        )
    for dataset, last in zip(health["dataset_id"], health["last_server_sent_at"], strict=True):
        subject = f"dataset {dataset}"
        if math.isnan(last):
            out.append(
                _judged(
                    "server_silence",
                    True,
                    subject,
                    None,
                    limit,
                    f"Meta accepted no server event of this dataset up to "
                    f"{_utc_minute(window_end)}; limit {limit:g} h",
                )
            )
            continue
        silent = window_end - last
        out.append(
            _judged(
                "server_silence",
                silent > limit * 3600,
                subject,
                round(silent / 3600, 1),
                limit,
                f"last server event sent {_how_long(silent)} ago, at {_utc_minute(last)}; "
                f"limit {limit:g} h",
            )
        )
    return out


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
