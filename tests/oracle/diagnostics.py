"""The oracle's diagnostics: the report's findings recomputed in pandas.

Owns the pandas computation of every diagnostic's key, severity, affected, total, share
and the event/campaign/stage/parameter it names, in the report's order (the prose is
the report's, not compared); the integrity rules' findings come from
tests/oracle/integrity.py. The rules' thresholds are dashboard.quality.diagnostics'
public names and core/definitions': the oracle computes independently, but from the
same constants.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from dashboard.core.config import Config
from dashboard.core.definitions import MIN_GROUP_EVENTS, SEVERITY_RANK
from dashboard.core.meta_errors import TOKEN_ERROR_CODES
from dashboard.quality.diagnostics import (
    GAP_GROUPING,
    GAP_PARAMS,
    GAP_PEER_MIN_RATE,
    GAP_RATE_FACTOR,
    INFO_DEDUP_STATUSES,
    INVALID_PARAMS,
    REJECTED_CRITICAL_SHARE,
)
from tests.oracle.integrity import integrity_findings


class Findings(list):
    """The findings so far, as the report's dicts (without the prose)."""

    def add(self, key: str, severity: str, affected: int, total: int, **named: Any) -> None:
        entry = {"key": key, "severity": severity, "affected": int(affected), "total": int(total)}
        entry.update({k: v for k, v in named.items() if v is not None})
        entry["share"] = round(affected / total, 6) if total else None
        self.append(entry)


def diagnostics(
    frame: pd.DataFrame,
    values: pd.DataFrame,
    overall: dict[str, Any],
    by_event: pd.DataFrame,
    config: Config,
) -> list[dict[str, Any]]:
    """Every finding, ranked like the report's (most severe, widest share, most events)."""
    found = Findings()
    batches = batch_summary(frame)
    _overall_findings(found, overall, batches)
    _coverage_findings(found, by_event, config)
    _parameter_gap_findings(found, frame, values)
    # Stages sent late (median lag over the configured limit).
    lagged = values.loc[~np.isnan(values["lag"].to_numpy()), ["funnel_stage", "lag"]]
    for stage, lags in lagged.groupby("funnel_stage")["lag"]:
        if lags.quantile(0.5) > config.freshness["late_median_lag_s"]:
            found.add("late_stage", "warning", len(lags), len(lags), funnel_stage=str(stage))
    # Where the report's RULES run them: ties in the ranking keep this order.
    integrity_findings(found, frame, values)
    for status in INFO_DEDUP_STATUSES:
        count = overall["dedup"]["server"][status]
        if count:
            found.add(f"dedup_{status}", "info", count, overall["server_events"])
    if batches["unanswered"]:
        found.add("unanswered_batches", "info", batches["unanswered"], batches["batches"])
    return sorted(
        found,
        key=lambda d: (SEVERITY_RANK[d["severity"]], -(d["share"] or 0), -d["affected"]),
    )


def batch_summary(frame: pd.DataFrame) -> dict[str, int]:
    """Batches (one CAPI request line is one batch): how many, the events of those
    rejected for the token, the events Meta reported short, the unanswered batches."""
    server = frame["channel"] == "server"
    batch_columns = [
        "source_id",
        "line_no",
        "delivery",
        "error_code",
        "batch_size",
        "events_received",
    ]
    batches = (
        frame.loc[server, batch_columns]
        .groupby(["source_id", "line_no"])
        .agg(
            delivery=("delivery", "first"),  # one answer per batch
            error_code=("error_code", "min"),
            batch_size=("batch_size", "min"),
            events_received=("events_received", "min"),
            events=("delivery", "size"),
        )
    )
    rejected = batches["delivery"] == "rejected"
    token = rejected & batches["error_code"].isin(TOKEN_ERROR_CODES)
    shortfall = (
        (batches["delivery"] == "accepted")
        & batches["events_received"].notna()
        & (batches["events_received"] < batches["batch_size"])
    )
    return {
        "batches": len(batches),
        "token_events": int(batches.loc[token, "events"].sum()),
        "shortfall_events": int(
            (batches["batch_size"] - batches["events_received"])[shortfall].sum()
        ),
        "unanswered": int((batches["delivery"] == "unknown").sum()),
    }


def _overall_findings(found: Findings, overall: dict[str, Any], batches: dict[str, int]) -> None:
    """The findings read off the overall block and the batch summary."""
    sent, accepted = overall["server_sent"], overall["server_events"]
    token_events = batches["token_events"]
    if overall["unhashed_pii"]:
        found.add("unhashed_pii", "critical", overall["unhashed_pii"], sent)
    if token_events:
        found.add("token_errors", "critical", token_events, sent)
    other = overall["server_rejected_by_meta"] - token_events
    if other > 0:
        severe = sent and other / sent > REJECTED_CRITICAL_SHARE
        found.add("rejected_events", "critical" if severe else "warning", other, sent)
    double = overall["dedup"]["likely_double_counted"]
    if double:
        found.add("likely_double_counted", "critical", double, accepted)
    if overall["server_without_event_id"]:
        found.add("missing_event_id", "warning", overall["server_without_event_id"], accepted)
    if overall["freshness"]["stale_over_7d"]:
        found.add("stale_events", "critical", overall["freshness"]["stale_over_7d"], sent)
    if overall["freshness"]["future"]:
        found.add("future_events", "warning", overall["freshness"]["future"], sent)
    if overall["event_time_in_ms"]:
        found.add("event_time_in_ms", "warning", overall["event_time_in_ms"], sent)
    if overall["test_events"]:
        found.add("test_event_code", "warning", overall["test_events"], sent)
    if overall["rejected_combination"]:
        found.add("rejected_combination", "warning", overall["rejected_combination"], sent)
    if batches["shortfall_events"]:
        found.add("events_received_shortfall", "warning", batches["shortfall_events"], sent)
    for param in INVALID_PARAMS:
        invalid = overall["invalid_parameters"][param]
        if invalid:
            found.add(f"invalid_{param}", "warning", invalid, sent, parameter=param)


def _coverage_findings(found: Findings, by_event: pd.DataFrame, config: Config) -> None:
    """Low event coverage per event name."""
    for name, row in by_event.iterrows():
        browser = int(row["browser_events"])
        shown = round(int(row["covered"]) / browser, 3) if browser else 0.0  # as displayed
        if browser >= MIN_GROUP_EVENTS and shown < config.coverage_goal:
            found.add(
                "low_event_coverage",
                "warning",
                browser - int(row["covered"]),
                browser,
                event_name=str(name),
            )


def _parameter_gap_findings(found: Findings, frame: pd.DataFrame, values: pd.DataFrame) -> None:
    """A campaign missing a parameter its peers (same dataset, action source, event) send."""
    server = frame["channel"] == "server"
    srv = frame.loc[server, GAP_GROUPING]
    presence = (
        values.loc[server.to_numpy(), [f"valid__{p}" for p in GAP_PARAMS]]
        .astype("int64")
        .assign(
            dataset_id=srv["dataset_id"].cat.codes.to_numpy(),
            action_source=srv["action_source"].cat.codes.to_numpy(),  # -1: none
            event_name=srv["event_name"].cat.codes.to_numpy(),
            campaign=srv["campaign"].cat.codes.to_numpy(),
            server_sent=1,
        )
        .groupby(GAP_GROUPING)
        .sum()
        .reset_index()
    )
    for key in GAP_GROUPING:
        labels = np.array([*srv[key].cat.categories, "(none)"], dtype=object)
        presence[key] = labels[presence[key].to_numpy()]  # code -1 -> "(none)"
    presence = presence[presence["server_sent"] >= MIN_GROUP_EVENTS]
    for (_, _, event_name), group in presence.groupby(GAP_GROUPING[:-1]):
        if len(group) < 2:
            continue
        for _, row in group.iterrows():
            rest = group[group["campaign"] != row["campaign"]]
            missing = []
            for param in GAP_PARAMS:
                rest_rate = rest[f"valid__{param}"].sum() / rest["server_sent"].sum()
                rate = row[f"valid__{param}"] / row["server_sent"]
                if rest_rate >= GAP_PEER_MIN_RATE and rate < GAP_RATE_FACTOR * rest_rate:
                    missing.append((param, int(row["server_sent"] - row[f"valid__{param}"])))
            if missing:
                found.add(
                    "parameter_gap",
                    "warning",
                    max(m[1] for m in missing),
                    int(row["server_sent"]),
                    event_name=str(event_name),
                    campaign=str(row["campaign"]),
                    parameter=",".join(m[0] for m in missing),
                )
