"""Ranked diagnostics, like Events Manager's, with how to fix each.

Owns the rules that turn indicator results into findings (name, severity, affected and
total events, how to fix), as a registry: each rule is a small function computing its
numbers (`Finding`s) and one row of `RULES` holding its texts. Every defect the sample
generator plants has a rule here. The rules' thresholds are public names: the pandas
oracle (tests/oracle/reference.py) reads them instead of copying them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from dashboard.core.config import Config
from dashboard.core.definitions import MIN_GROUP_EVENTS, SEVERITY_RANK
from dashboard.core.filters import Filters
from dashboard.quality.blocks import block_dict, block_frame, block_frames
from dashboard.quality.freshness import lag_stats
from dashboard.store.handles import Engine
from dashboard.store.queries.blocks import parameter_presence_frame
from dashboard.store.queries.freshness import delivery_summary

# Over this share of the sent server events, rejections other than token errors are
# critical (a warning below it).
REJECTED_CRITICAL_SHARE = 0.05
# Parameters whose absence in one campaign, while present elsewhere, points at one
# broken integration rather than at the audience.
GAP_PARAMS = ("em", "ph", "external_id", "fbp")
# A campaign is compared with the other campaigns of the same dataset, action source
# and event name (the grouping's last column is the campaign).
GAP_GROUPING = ["dataset_id", "action_source", "event_name", "campaign"]
# A parameter is missing from a campaign when elsewhere sends it on at least
# GAP_PEER_MIN_RATE of events and the campaign on under GAP_RATE_FACTOR of that rate.
GAP_PEER_MIN_RATE = 0.5
GAP_RATE_FACTOR = 0.5
# The parameters whose malformed values each have a rule, with how to fix them.
INVALID_PARAM_FIXES = {
    "fbc": "Build fbc as fb.1.<creation time in ms, 13 digits>.<fbclid> and never "
    "change the fbclid's case.",
    "fbp": "Forward the _fbp cookie unchanged: fb.1.<ms>.<random>.",
    "client_ip_address": "Send the visitor's real IPv4/IPv6 address.",
}
INVALID_PARAMS = tuple(INVALID_PARAM_FIXES)
# The dedup statuses reported as info findings: (title, how to fix).
INFO_DEDUP_TEXTS = {
    "same_channel_repeat": (
        "Repeated server events (same event_id within 48 h, e.g. retries)",
        "Retries are fine: Meta keeps the first. Many repeats may mean a retry loop.",
    ),
    "outside_48h": (
        "Browser/server twins more than 48 h apart (not deduplicated)",
        "Send the server event soon after the browser event, within 48 hours.",
    ),
}
INFO_DEDUP_STATUSES = tuple(INFO_DEDUP_TEXTS)
# One missing parameter in a parameter_gap finding's title.
GAP_DETAIL = "{param} on {rate:.1%} (elsewhere {elsewhere:.1%})"


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


@dataclass(frozen=True)
class Finding:
    """A rule's numbers for one finding; `values` fill the rule's texts."""

    affected: int
    total: int
    values: Mapping[str, Any] = field(default_factory=dict)
    severity: str | None = None  # None: the rule's own severity
    event_name: str | None = None
    campaign: str | None = None
    funnel_stage: str | None = None
    parameter: str | None = None


@dataclass(frozen=True)
class Inputs:
    """What the rules read, computed once per `diagnose` call."""

    engine: Engine
    filters: Filters
    config: Config
    overall: dict[str, Any]
    delivery: dict[str, int]
    by_event: pd.DataFrame  # block frame by event name
    by_gap: pd.DataFrame  # parameter presence by GAP_GROUPING, the slice's campaigns
    everywhere: pd.DataFrame  # the same, without the campaign and stage filters
    lags: pd.DataFrame  # lag_stats by funnel stage

    @cached_property
    def near_misses(self) -> dict[str, Any]:
        """The transformed-id counts, which two rules read: one query for both."""
        from dashboard.quality.integrity import near_misses  # local: it imports us

        return near_misses(self.engine, self.filters)

    @property
    def sent(self) -> int:
        return self.overall["server_sent"]

    @property
    def accepted(self) -> int:
        return self.overall["server_events"]


def _one(affected: int, total: int, **values: Any) -> list[Finding]:
    """One finding when anything is affected, none otherwise."""
    return [Finding(affected, total, values)] if affected else []


# ---------------------------------------------------------------------------
# The rules' numbers: one small function each (Inputs -> findings).
def unhashed_pii(i: Inputs) -> list[Finding]:
    counts = i.overall["unhashed_parameters"].items()
    fields = ", ".join(f"{p} ({n:,})" for p, n in counts if n)
    return _one(i.overall["unhashed_pii"], i.sent, fields=fields)


def token_errors(i: Inputs) -> list[Finding]:
    batches = i.delivery["token_error_batches"]
    return _one(i.delivery["token_error_events"], i.sent, batches=batches)


def rejected_events(i: Inputs) -> list[Finding]:
    """Rejections other than token errors (those have their own rule)."""
    other = i.overall["server_rejected_by_meta"] - i.delivery["token_error_events"]
    if other <= 0:
        return []
    critical = i.sent and other / i.sent > REJECTED_CRITICAL_SHARE
    return [Finding(other, i.sent, severity="critical" if critical else "warning")]


def likely_double_counted(i: Inputs) -> list[Finding]:
    return _one(i.overall["dedup"]["likely_double_counted"], i.accepted)


def missing_event_id(i: Inputs) -> list[Finding]:
    return _one(i.overall["server_without_event_id"], i.accepted)


def stale_events(i: Inputs) -> list[Finding]:
    return _one(i.overall["freshness"]["stale_over_7d"], i.sent)


def future_events(i: Inputs) -> list[Finding]:
    return _one(i.overall["freshness"]["future"], i.sent)


def event_time_in_ms(i: Inputs) -> list[Finding]:
    return _one(i.overall["event_time_in_ms"], i.sent)


def production_test_events(i: Inputs) -> list[Finding]:
    return _one(i.overall["test_events"], i.sent)


def rejected_combination(i: Inputs) -> list[Finding]:
    return _one(i.overall["rejected_combination"], i.sent)


def events_received_shortfall(i: Inputs) -> list[Finding]:
    return _one(i.delivery["shortfall_events"], i.sent)


def invalid_parameter(param: str) -> Callable[[Inputs], list[Finding]]:
    """The rule counting malformed values of `param`."""

    def compute(i: Inputs) -> list[Finding]:
        invalid = i.overall["invalid_parameters"].get(param, 0)
        return [Finding(invalid, i.sent, parameter=param)] if invalid else []

    return compute


def low_event_coverage(i: Inputs) -> list[Finding]:
    """Coverage shortfalls, with advice that fits what the server really sent: "send it
    from the server too" only for Pixel events no server event answers even by a near-miss
    id (a transformed event_id or event_name casing: the transformed-id finding)."""
    shortfalls = coverage_shortfalls(i.by_event, i.config)
    if not shortfalls:
        return []
    near = i.near_misses["browser_events"]
    return [
        replace(
            found,
            values={
                **found.values,
                "advice": coverage_advice(found.affected, near.get(found.event_name, 0)),
            },
        )
        for found in shortfalls
    ]


# How to fix low coverage: (the server sent nothing | the server sent all under a
# near-miss id | some of each).
COVERAGE_ADVICE = {
    "none_sent": "Send this event from the server too, with the Pixel's eventID as event_id.",
    "all_near": "The server sends these events, but under a different event_id or event_name "
    "casing (see the transformed event_id finding): send the Pixel's eventID as event_id and "
    "the Pixel's event_name, character for character.",
    "some_near": "{near:,} of the {uncovered:,} uncovered Pixel events have a server event under "
    "a different event_id or event_name casing: send the Pixel's eventID and event_name "
    "exactly. Send the other {rest:,} from the server too, with the Pixel's eventID as event_id.",
}


def coverage_advice(uncovered: int, near: int) -> str:
    """The low-coverage advice for `uncovered` Pixel events, `near` of which a server event
    misses only by a near-miss id."""
    near = min(near, uncovered)
    if near == 0:
        return COVERAGE_ADVICE["none_sent"]
    if near == uncovered:
        return COVERAGE_ADVICE["all_near"]
    return COVERAGE_ADVICE["some_near"].format(
        near=near, uncovered=uncovered, rest=uncovered - near
    )


def coverage_shortfalls(frame: pd.DataFrame, config: Config) -> list[Finding]:
    """Event names (block rows) whose event coverage is below the goal."""
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
                Finding(
                    int(row["browser_events"] - row["covered"]),
                    int(row["browser_events"]),
                    {"name": row["event_name"], "coverage": coverage, "goal": config.coverage_goal},
                    event_name=row["event_name"],
                )
            )
    return out


def parameter_gap(i: Inputs) -> list[Finding]:
    return parameter_gaps(i.by_gap, i.everywhere)


def parameter_gaps(frame: pd.DataFrame, everywhere: pd.DataFrame) -> list[Finding]:
    """A campaign whose events lack a parameter that the same kind of event elsewhere has.

    Compared only within one dataset, event name and action source, so a WhatsApp
    Purchase is never held against a website Purchase. `frame` holds the slice's
    campaigns, `everywhere` the same period without the campaign and stage filters: the
    "elsewhere" a campaign is compared with, so filtering to one campaign keeps its gap.
    """
    keys = GAP_GROUPING[:-1]
    frame = frame[frame["server_sent"] >= MIN_GROUP_EVENTS]
    everywhere = everywhere[everywhere["server_sent"] >= MIN_GROUP_EVENTS]
    if frame.empty or everywhere.empty:
        return []
    # "Elsewhere" is every other campaign of the same key: the key's totals less the
    # campaign's own, for all campaigns at once (a diverse log has thousands of campaigns,
    # and a filter per campaign cost seconds). Counts are integers, so the difference is
    # exactly the other rows' sum; with no other row it is 0/0, NaN, and never a gap.
    counts = ["server_sent", *[f"valid__{p}" for p in GAP_PARAMS]]
    totals = everywhere.groupby(keys)[counts].sum().add_prefix("key__")
    own = everywhere.groupby(GAP_GROUPING)[counts].sum().add_prefix("own__")
    # In the slice's group order (sorted keys, then the frame's order within a key).
    ordered = frame.sort_values(keys, kind="stable")
    joined = ordered.join(totals, on=keys, how="inner").join(own, on=GAP_GROUPING, how="left")
    joined = joined.fillna({f"own__{c}": 0 for c in counts})
    rest_sent = joined["key__server_sent"] - joined["own__server_sent"]
    rates = {}
    for param in GAP_PARAMS:
        valid = f"valid__{param}"
        rest_rate = (joined[f"key__{valid}"] - joined[f"own__{valid}"]) / rest_sent
        rate = joined[valid] / joined["server_sent"]
        gap = (rest_rate >= GAP_PEER_MIN_RATE) & (rate < GAP_RATE_FACTOR * rest_rate)
        rates[param] = (rate.to_numpy(), rest_rate.to_numpy(), gap.to_numpy())
    out = []
    for i in np.flatnonzero(np.logical_or.reduce([gap for _, _, gap in rates.values()])):
        row = joined.iloc[i]
        lacking = [(p, r[i], o[i], row[f"valid__{p}"]) for p, (r, o, g) in rates.items() if g[i]]
        detail = "; ".join(
            GAP_DETAIL.format(param=p, rate=r, elsewhere=o) for p, r, o, _ in lacking
        )
        params = [p for p, *_ in lacking]
        values = {"name": row["event_name"], "campaign": row["campaign"]}
        sent = int(row["server_sent"])
        out.append(
            Finding(
                max(sent - int(valid) for *_, valid in lacking),
                sent,
                values | {"params": ", ".join(params), "detail": detail},
                event_name=str(row["event_name"]),
                campaign=str(row["campaign"]),
                parameter=",".join(params),
            )
        )
    return out


def late_stage(i: Inputs) -> list[Finding]:
    """Funnel stages whose median lag is over the configured limit."""
    limit = i.config.freshness["late_median_lag_s"]
    out = []
    for _, row in i.lags.iterrows():
        if pd.notna(row["p50_lag_s"]) and row["p50_lag_s"] > limit:
            values = {
                "stage": row["funnel_stage"],
                "lag_h": row["p50_lag_s"] / 3600,
                "frequency": row["upload_frequency"],
            }
            count = int(row["server_events"])
            out.append(Finding(count, count, values, funnel_stage=str(row["funnel_stage"])))
    return out


def dedup_status(status: str) -> Callable[[Inputs], list[Finding]]:
    """The rule counting accepted server events with dedup status `status`."""

    def compute(i: Inputs) -> list[Finding]:
        return _one(i.overall["dedup"]["server"][status], i.accepted)

    return compute


def unanswered_batches(i: Inputs) -> list[Finding]:
    unanswered = i.delivery["unanswered_batches"]
    return _one(unanswered, i.delivery["batches"], batches=unanswered)


def integrity(i: Inputs) -> list[Diagnostic]:
    """The integrity rules' findings; their texts live with them in quality/integrity.py."""
    from dashboard.quality.integrity import (
        integrity_findings,  # local: it imports Diagnostic from here
    )

    return integrity_findings(i.engine, i.filters, i.config, i.near_misses)


# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Rule:
    """One row of the registry: a rule's key, severity and texts (str.format templates
    filled with its findings' `values`), and the function computing its findings."""

    key: str
    severity: str  # critical | warning | info; a finding may override it
    title: str  # the finding's name: what is wrong
    how_to_fix: str
    compute: Callable[[Inputs], list[Finding]]

    def __call__(self, inputs: Inputs) -> list[Diagnostic]:
        return [self.diagnostic(found) for found in self.compute(inputs)]

    def diagnostic(self, found: Finding) -> Diagnostic:
        return Diagnostic(
            self.key,
            self.title.format(**found.values),
            found.severity or self.severity,
            found.affected,
            found.total,
            self.how_to_fix.format(**found.values),
            event_name=found.event_name,
            campaign=found.campaign,
            funnel_stage=found.funnel_stage,
            parameter=found.parameter,
        )


# Every rule, in the order its findings are listed before ranking (ties keep it).
RULES: tuple[Callable[[Inputs], list[Diagnostic]], ...] = (
    Rule(
        "unhashed_pii",
        "critical",
        "Plaintext personal data sent in fields Meta wants hashed: {fields}",
        "Normalise and SHA-256 hash em, ph, fn, ln, db, ge, ct, st, zp and country before "
        "sending (the official Business SDKs do it). Plaintext values are not stored here.",
        unhashed_pii,
    ),
    Rule(
        "token_errors",
        "critical",
        "Access token or permission errors (codes 190/200) rejected {batches:,} batches",
        "Generate a new system-user access token for the dataset in Events Manager, update "
        "it in the server integration, and re-send the lost events if they are under 7 days old.",
        token_errors,
    ),
    Rule(
        "rejected_events",
        "warning",
        "Server events in batches Meta rejected (other errors)",
        "Open Freshness & delivery for the error codes and Meta's messages; one invalid event "
        "rejects its whole batch of up to 1,000.",
        rejected_events,
    ),
    Rule(
        "likely_double_counted",
        "critical",
        "Server events that escape dedup although the same person's browser event "
        "happened within 5 minutes: Meta counts both",
        "Send the Pixel's eventID as event_id on the server event (same event_name), e.g. the "
        "order id, so Meta can deduplicate the pair.",
        likely_double_counted,
    ),
    Rule(
        "missing_event_id",
        "warning",
        "Server events without event_id (only Meta's weaker fbp/external_id fallback can "
        "deduplicate them)",
        "Send event_id on every server event, equal to the Pixel's eventID for the same action.",
        missing_event_id,
    ),
    Rule(
        "stale_events",
        "critical",
        "Events sent more than 7 days after they happened (Meta rejects the whole batch)",
        "Send events as they happen (ideally within an hour); drop events older than 7 days "
        "from retries instead of re-sending them.",
        stale_events,
    ),
    Rule(
        "future_events",
        "warning",
        "Events whose event_time is more than 60 s after they were sent",
        "Check the server clock and the unit of event_time (Unix seconds, UTC).",
        future_events,
    ),
    Rule(
        "event_time_in_ms",
        "warning",
        "event_time sent in milliseconds (Meta rejects it)",
        "Send event_time as Unix seconds: divide JavaScript Date.now() by 1000.",
        event_time_in_ms,
    ),
    Rule(
        "test_event_code",
        "warning",
        "Production events sent with test_event_code",
        "Remove test_event_code from the production integration; it is for the Test Events "
        "tool only.",
        production_test_events,
    ),
    Rule(
        "rejected_combination",
        "warning",
        "Events whose only customer parameters form a combination Meta rejects",
        "Add a strong identifier (hashed email or phone, external_id, fbp/fbc, IP with user "
        "agent) to these events.",
        rejected_combination,
    ),
    Rule(
        "events_received_shortfall",
        "warning",
        "Accepted batches where Meta reported fewer events_received than were sent",
        "Check the response messages of these batches; some events were dropped.",
        events_received_shortfall,
    ),
    *(
        Rule(f"invalid_{p}", "warning", f"Malformed {p} values", fix, invalid_parameter(p))
        for p, fix in INVALID_PARAM_FIXES.items()
    ),
    Rule(
        "low_event_coverage",
        "warning",
        "{name}: {coverage:.1%} of Pixel events covered by the Conversions API (goal {goal:.1%})",
        "{advice}",
        low_event_coverage,
    ),
    Rule(
        "parameter_gap",
        "warning",
        "{name} server events of campaign {campaign} lack {params}: {detail}",
        "Check the integration that sends {name} for this campaign: it drops "
        "{params} that other campaigns send.",
        parameter_gap,
    ),
    Rule(
        "late_stage",
        "warning",
        "Stage {stage} is sent late: median lag {lag_h:.1f} h ({frequency})",
        "Send the stage's event when it happens (real time), not in a daily batch; "
        "late events optimise worse and over 7 days are rejected.",
        late_stage,
    ),
    integrity,
    *(
        Rule(f"dedup_{status}", "info", title, fix, dedup_status(status))
        for status, (title, fix) in INFO_DEDUP_TEXTS.items()
    ),
    Rule(
        "unanswered_batches",
        "info",
        "Batches with no answer from Meta (timeouts): {batches:,}",
        "Retry with the same event_id; Meta deduplicates what it already received.",
        unanswered_batches,
    ),
)


# ---------------------------------------------------------------------------
def overview(engine: Engine, filters: Filters, config: Config) -> dict[str, Any]:
    """The Overview page's numbers for a slice: its block ("overall"), the block per day
    ("daily") and the findings ("diagnostics", as dicts), from one block scan shared by
    all three instead of one each."""

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
    inputs = gather_inputs(engine, filters, config, overall, by_event=by_event, by_gap=by_gap)
    found = [finding for rule in RULES for finding in rule(inputs)]
    return sorted(found, key=lambda d: (SEVERITY_RANK[d.severity], -(d.share or 0), -d.affected))


def gather_inputs(
    engine: Engine,
    filters: Filters,
    config: Config,
    overall: dict[str, Any] | None = None,
    *,
    by_event: pd.DataFrame | None = None,
    by_gap: pd.DataFrame | None = None,
) -> Inputs:
    """What the rules read: the frames not passed in are computed here, once."""

    if overall is None and by_event is None:
        overall_frame, by_event = block_frames(engine, filters, config, [(), ("event_name",)])
        overall = block_dict(overall_frame.iloc[0])
    elif overall is None:
        overall = block_dict(block_frame(engine, filters, config).iloc[0])
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
    return Inputs(
        engine,
        filters,
        config,
        overall,
        delivery_summary(engine, filters),
        by_event,
        by_gap,
        everywhere,
        lag_stats(engine, filters, config, "funnel_stage"),
    )
