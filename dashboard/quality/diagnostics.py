"""Ranked diagnostics, like Events Manager's, with how to fix each.

Owns the rules that turn indicator results into findings (name, severity, affected and
total events, how to fix). Every defect the sample generator plants has a rule here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import pandas as pd
from sqlalchemy.engine import Engine

from dashboard.core.config import Config
from dashboard.quality.indicators import (
    Filters,
    block_frame,
    block_frames,
    delivery_summary,
    lag_stats,
    parameter_presence_frame,
)

SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}
# Parameters whose absence in one campaign, while present elsewhere, points at one
# broken integration rather than at the audience.
GAP_PARAMS = ("em", "ph", "external_id", "fbp")
MIN_GROUP_EVENTS = 10


@dataclass(frozen=True)
class Diagnostic:
    """One finding: what is wrong, how bad, how many events, how to fix it."""

    key: str
    name: str
    severity: str  # critical | warning | info
    affected: int
    total: int
    how_to_fix: str
    event_name: str | None = None
    campaign: str | None = None
    funnel_stage: str | None = None
    parameter: str | None = None

    @property
    def share(self) -> float | None:
        return self.affected / self.total if self.total else None

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if v is not None}
        out["share"] = None if self.share is None else round(self.share, 6)
        return out


def _pct(value: float) -> str:
    return f"{value:.1%}"


GAP_GROUPING = ["dataset_id", "action_source", "event_name", "campaign"]


def overview(engine: Engine, filters: Filters, config: Config) -> dict[str, Any]:
    """The Overview page's numbers for a slice: its block ("overall"), the block per day
    ("daily") and the findings ("diagnostics", as dicts), from one block scan shared by
    all three instead of one each."""
    from dashboard.quality.indicators import block_dict  # local: avoids a cycle in type checkers

    overall_frame, by_event, daily = block_frames(
        engine, filters, config, [(), ("event_name",), ("event_day",)], missing_days=True
    )
    overall = block_dict(overall_frame.iloc[0])
    found = diagnose(engine, filters, config, overall, by_event=by_event)
    return {"overall": overall, "daily": daily, "diagnostics": [d.to_dict() for d in found]}


def diagnose(
    engine: Engine,
    filters: Filters,
    config: Config,
    overall: dict[str, Any] | None = None,
    *,
    by_event: pd.DataFrame | None = None,
    by_gap: pd.DataFrame | None = None,
) -> list[Diagnostic]:
    """Every finding for the slice, most severe and widest first.

    `overall`, `by_event` and `by_gap` may be passed when the caller already has them
    (block frames by event name, and by dataset/action source/event/campaign).
    """
    from dashboard.quality.indicators import block_dict  # local: avoids a cycle in type checkers

    if overall is None and by_event is None:
        overall_frame, by_event = block_frames(engine, filters, config, [(), ("event_name",)])
        overall = block_dict(overall_frame.iloc[0])
    elif overall is None:
        overall = block_dict(block_frame(engine, filters, config).iloc[0])
    found: list[Diagnostic] = []
    sent = overall["server_sent"]
    accepted = overall["server_events"]

    if overall["unhashed_pii"]:
        fields = ", ".join(f"{p} ({n:,})" for p, n in overall["unhashed_parameters"].items() if n)
        found.append(
            Diagnostic(
                "unhashed_pii",
                f"Plaintext personal data sent in fields Meta wants hashed: {fields}",
                "critical",
                overall["unhashed_pii"],
                sent,
                "Normalise and SHA-256 hash em, ph, fn, ln, db, ge, ct, st, zp and country before "
                "sending (the official Business SDKs do it). Plaintext values are not stored here.",
            )
        )
    delivery = delivery_summary(engine, filters)
    if delivery["token_error_events"]:
        found.append(
            Diagnostic(
                "token_errors",
                f"Access token or permission errors (codes 190/200) rejected "
                f"{delivery['token_error_batches']:,} batches",
                "critical",
                delivery["token_error_events"],
                sent,
                "Generate a new system-user access token for the dataset in Events Manager, update "
                "it in the server integration, and re-send the lost events if they are under 7 days old.",
            )
        )
    other_rejected = overall["server_rejected_by_meta"] - delivery["token_error_events"]
    if other_rejected > 0:
        found.append(
            Diagnostic(
                "rejected_events",
                "Server events in batches Meta rejected (other errors)",
                "critical" if sent and other_rejected / sent > 0.05 else "warning",
                other_rejected,
                sent,
                "Open Freshness & delivery for the error codes and Meta's messages; one invalid event "
                "rejects its whole batch of up to 1,000.",
            )
        )
    if overall["dedup"]["likely_double_counted"]:
        found.append(
            Diagnostic(
                "likely_double_counted",
                "Server events that escape dedup although the same person's browser event "
                "happened within 5 minutes: Meta counts both",
                "critical",
                overall["dedup"]["likely_double_counted"],
                accepted,
                "Send the Pixel's eventID as event_id on the server event (same event_name), e.g. the "
                "order id, so Meta can deduplicate the pair.",
            )
        )
    missing = overall["server_without_event_id"]
    if missing:
        found.append(
            Diagnostic(
                "missing_event_id",
                "Server events without event_id (only Meta's weaker fbp/external_id fallback can "
                "deduplicate them)",
                "warning",
                missing,
                accepted,
                "Send event_id on every server event, equal to the Pixel's eventID for the same action.",
            )
        )
    if overall["freshness"]["stale_over_7d"]:
        found.append(
            Diagnostic(
                "stale_events",
                "Events sent more than 7 days after they happened (Meta rejects the whole batch)",
                "critical",
                overall["freshness"]["stale_over_7d"],
                sent,
                "Send events as they happen (ideally within an hour); drop events older than 7 days "
                "from retries instead of re-sending them.",
            )
        )
    if overall["freshness"]["future"]:
        found.append(
            Diagnostic(
                "future_events",
                "Events whose event_time is more than 60 s after they were sent",
                "warning",
                overall["freshness"]["future"],
                sent,
                "Check the server clock and the unit of event_time (Unix seconds, UTC).",
            )
        )
    if overall["event_time_in_ms"]:
        found.append(
            Diagnostic(
                "event_time_in_ms",
                "event_time sent in milliseconds (Meta rejects it)",
                "warning",
                overall["event_time_in_ms"],
                sent,
                "Send event_time as Unix seconds: divide JavaScript Date.now() by 1000.",
            )
        )
    if overall["test_events"]:
        found.append(
            Diagnostic(
                "test_event_code",
                "Production events sent with test_event_code",
                "warning",
                overall["test_events"],
                sent,
                "Remove test_event_code from the production integration; it is for the Test Events "
                "tool only.",
            )
        )
    if overall["rejected_combination"]:
        found.append(
            Diagnostic(
                "rejected_combination",
                "Events whose only customer parameters form a combination Meta rejects",
                "warning",
                overall["rejected_combination"],
                sent,
                "Add a strong identifier (hashed email or phone, external_id, fbp/fbc, IP with user "
                "agent) to these events.",
            )
        )
    if delivery["shortfall_events"]:
        found.append(
            Diagnostic(
                "events_received_shortfall",
                "Accepted batches where Meta reported fewer events_received than were sent",
                "warning",
                delivery["shortfall_events"],
                sent,
                "Check the response messages of these batches; some events were dropped.",
            )
        )
    for param in ("fbc", "fbp", "client_ip_address"):
        invalid = overall["invalid_parameters"].get(param, 0)
        if invalid:
            found.append(
                Diagnostic(
                    f"invalid_{param}",
                    f"Malformed {param} values",
                    "warning",
                    invalid,
                    sent,
                    {
                        "fbc": "Build fbc as fb.1.<creation time in ms, 13 digits>.<fbclid> and never "
                        "change the fbclid's case.",
                        "fbp": "Forward the _fbp cookie unchanged: fb.1.<ms>.<random>.",
                        "client_ip_address": "Send the visitor's real IPv4/IPv6 address.",
                    }[param],
                    parameter=param,
                )
            )
    if by_event is None:
        by_event = block_frame(engine, filters, config, "event_name")
    if by_gap is None:
        by_gap = parameter_presence_frame(engine, filters, GAP_PARAMS, GAP_GROUPING)
    # A campaign or stage filter must not hide a campaign's missing parameter: compare
    # the slice's campaigns with the same events of every campaign in the period.
    everywhere = by_gap
    if filters.campaigns or filters.stages:
        everywhere = parameter_presence_frame(
            engine, replace(filters, campaigns=(), stages=()), GAP_PARAMS, GAP_GROUPING
        )
    found.extend(_coverage_findings(by_event, config))
    found.extend(_parameter_gap_findings(by_gap, everywhere))
    found.extend(_late_stage_findings(engine, filters, config))
    from dashboard.quality.integrity import (
        integrity_findings,  # local: it imports Diagnostic from here
    )

    found.extend(integrity_findings(engine, filters, config))
    for status, text, fix in (
        (
            "same_channel_repeat",
            "Repeated server events (same event_id within 48 h, e.g. retries)",
            "Retries are fine: Meta keeps the first. Many repeats may mean a retry loop.",
        ),
        (
            "outside_48h",
            "Browser/server twins more than 48 h apart (not deduplicated)",
            "Send the server event soon after the browser event, within 48 hours.",
        ),
    ):
        count = overall["dedup"]["server"][status]
        if count:
            found.append(Diagnostic(f"dedup_{status}", text, "info", count, accepted, fix))
    if delivery["unanswered_batches"]:
        found.append(
            Diagnostic(
                "unanswered_batches",
                f"Batches with no answer from Meta (timeouts): {delivery['unanswered_batches']:,}",
                "info",
                delivery["unanswered_batches"],
                delivery["batches"],
                "Retry with the same event_id; Meta deduplicates what it already received.",
            )
        )
    return sorted(found, key=lambda d: (SEVERITY_RANK[d.severity], -(d.share or 0), -d.affected))


def _coverage_findings(frame: pd.DataFrame, config: Config) -> list[Diagnostic]:
    out = []
    for _, row in frame.iterrows():
        coverage = row["event_coverage"]
        if (
            row["browser_events"] >= MIN_GROUP_EVENTS
            and pd.notna(coverage)
            # As shown, one decimal of a percent: 74.96% reads 75.0%, which meets 75%.
            and (round(coverage, 3) < config.coverage_goal)
        ):
            out.append(
                Diagnostic(
                    "low_event_coverage",
                    f"{row['event_name']}: {_pct(coverage)} of Pixel events covered by the "
                    f"Conversions API (goal {_pct(config.coverage_goal)})",
                    "warning",
                    int(row["browser_events"] - row["covered"]),
                    int(row["browser_events"]),
                    "Send this event from the server too, with the Pixel's eventID as event_id.",
                    event_name=row["event_name"],
                )
            )
    return out


def _parameter_gap_findings(frame: pd.DataFrame, everywhere: pd.DataFrame) -> list[Diagnostic]:
    """A campaign whose events lack a parameter that the same kind of event elsewhere has.

    Compared only within one dataset, event name and action source, so a WhatsApp
    Purchase is never held against a website Purchase. `frame` holds the slice's
    campaigns, `everywhere` the same period without the campaign and stage filters: the
    "elsewhere" a campaign is compared with, so filtering to one campaign keeps its gap.
    """
    keys = GAP_GROUPING[:-1]
    frame = frame[frame["server_sent"] >= MIN_GROUP_EVENTS]
    everywhere = everywhere[everywhere["server_sent"] >= MIN_GROUP_EVENTS]
    others_by_key = dict(iter(everywhere.groupby(keys)))
    out = []
    for key, group in frame.groupby(keys):
        event_name = key[2]
        others = others_by_key.get(key)
        if others is None:
            continue
        for _, row in group.iterrows():
            rest = others[others["campaign"] != row["campaign"]]
            if rest.empty:
                continue
            missing = []
            for param in GAP_PARAMS:
                valid = f"valid__{param}"
                rest_rate = rest[valid].sum() / rest["server_sent"].sum()
                rate = row[valid] / row["server_sent"]
                if rest_rate >= 0.5 and rate < 0.5 * rest_rate:
                    missing.append((param, rate, rest_rate, int(row["server_sent"] - row[valid])))
            if not missing:
                continue
            worst = max(m[3] for m in missing)
            detail = "; ".join(f"{p} on {_pct(r)} (elsewhere {_pct(o)})" for p, r, o, _ in missing)
            out.append(
                Diagnostic(
                    "parameter_gap",
                    f"{event_name} server events of campaign {row['campaign']} lack "
                    f"{', '.join(m[0] for m in missing)}: {detail}",
                    "warning",
                    worst,
                    int(row["server_sent"]),
                    f"Check the integration that sends {event_name} for this campaign: it drops "
                    f"{', '.join(m[0] for m in missing)} that other campaigns send.",
                    event_name=str(event_name),
                    campaign=str(row["campaign"]),
                    parameter=",".join(m[0] for m in missing),
                )
            )
    return out


def _late_stage_findings(engine, filters, config) -> list[Diagnostic]:
    frame = lag_stats(engine, filters, config, "funnel_stage")
    out = []
    limit = config.freshness["late_median_lag_s"]
    for _, row in frame.iterrows():
        if pd.notna(row["p50_lag_s"]) and row["p50_lag_s"] > limit:
            out.append(
                Diagnostic(
                    "late_stage",
                    f"Stage {row['funnel_stage']} is sent late: median lag "
                    f"{row['p50_lag_s'] / 3600:.1f} h ({row['upload_frequency']})",
                    "warning",
                    int(row["server_events"]),
                    int(row["server_events"]),
                    "Send the stage's event when it happens (real time), not in a daily batch; "
                    "late events optimise worse and over 7 days are rejected.",
                    funnel_stage=str(row["funnel_stage"]),
                )
            )
    return out
