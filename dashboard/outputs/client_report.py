"""The client report's content: the first page, the order of the sections, and `build`.

Owns what the exported report (HTML, PDF, XLSX and zipped CSV) says first, in plain
language: the period and the day the data runs through, headline measures with their bar
and an honest comparison, what is good, and the three fixes to make first with the events
affected and what fixing them gains. Then the sections in a fixed order
(`report_sections`: campaigns, stages, funnel and readiness, match keys per event,
delivery and freshness, findings) and the optional appendix. It renders nothing: the
shapes are `report_model`, the formats `report_html` and `report_files`. No Streamlit.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from dashboard.core import formatting as fmt
from dashboard.core.config import Config
from dashboard.core.filters import Filters
from dashboard.core.measures import BY_KEY
from dashboard.core.params import HASHED_PARAMS, PARAM_NAMES
from dashboard.outputs import labels
from dashboard.outputs.report import build_report_and_frames
from dashboard.outputs.report_model import (
    COUNT,
    HEADLINE_KEYS,
    KINDS,
    ClientReport,
    Fix,
    Headline,
)
from dashboard.outputs.report_sections import (
    appendix_table,
    delivery_section,
    diagnostics_section,
    funnel_section,
    group_sections,
    minute,
    parameter_section,
)
from dashboard.outputs.scorecards import scorecards
from dashboard.quality.emq import tier
from dashboard.quality.match_quality import what_to_fix
from dashboard.store.handles import Engine


# Page 1
def _verdict(key: str, value: Any, config: Config) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    if key == "emq_estimate":
        return "good" if tier(value, config) in ("Good", "Great") else "bad"
    if key == "event_coverage":  # judged as shown: 74.96% reads 75.0%
        return "good" if round(value, 3) >= config.coverage_goal else "bad"
    if key == "dedup.rate":
        return "good" if round(value, 3) >= 0.9 else "bad"
    if key == "freshness.median_lag_s":
        return "good" if value <= config.freshness["late_median_lag_s"] else "bad"
    return "good" if not value else "bad"


def headlines(report: dict[str, Any], config: Config) -> list[Headline]:
    """The headline measures with their bar and, when the comparison is honest, the change."""
    measures = [BY_KEY[k] for k in HEADLINE_KEYS]
    cards = scorecards(report["overall"], report.get("previous_overall"), config, measures)
    out = []
    for key, card in zip(HEADLINE_KEYS, cards, strict=True):
        shown = fmt.score(card.value) + " / 10" if key == "emq_estimate" else card.shown
        if card.measure.kind == "count" and card.value is not None:
            shown = f"{int(card.value):,}"  # 9,950 on a client's report, never "10k"
        detail = [card.goal] if card.goal else []
        if card.change is not None:
            detail.append(f"{card.change} vs previous period")
        verdict = _verdict(key, card.value, config)
        kind = KINDS.get(card.measure.kind, COUNT)
        out.append(Headline(card.label, shown, verdict, " · ".join(detail), card.value, kind))
    return out


def what_is_good(report: dict[str, Any], config: Config) -> list[str]:
    """Plain sentences for each headline that passes its bar."""
    overall = report["overall"]
    good = []
    coverage = overall["event_coverage"]
    if coverage is not None and _verdict("event_coverage", coverage, config) == "good":
        good.append(
            f"Event coverage is {fmt.percent(coverage)}, above Meta's "
            f"{config.coverage_goal:.0%} goal: most Pixel events also arrive from your server."
        )
    emq = overall["emq_estimate"]
    if emq is not None and _verdict("emq_estimate", emq, config) == "good":
        good.append(f"Estimated match quality is {tier(emq, config)} ({fmt.score(emq)} of 10).")
    rate = overall["dedup"]["rate"]
    if rate is not None and rate >= 0.9:
        good.append(f"{fmt.percent(rate)} of the events that should deduplicate do.")
    checks = (
        (overall["dedup"]["likely_double_counted"], "No conversion looks counted twice."),
        (overall["server_rejected_by_meta"], "Meta accepted every server event sent."),
        (overall["freshness"]["stale_over_7d"], "No event was sent more than 7 days late."),
        (overall["unhashed_pii"], "No unhashed personal data was sent."),
    )
    good.extend(text for count, text in checks if overall["server_sent"] and not count)
    lag = overall["freshness"]["median_lag_s"]
    if lag is not None and lag <= config.freshness["late_median_lag_s"]:
        good.append(f"Events reach Meta quickly: half within {fmt.duration(lag)}.")
    return good


# Why a marketer should care when a diagnostic is fixed, per rule key.
_GAINS = {
    "unhashed_pii": "Their e-mail and phone become usable for matching, and personal data "
    "stops leaving your server unprotected.",
    "token_errors": "These events reach Meta instead of being lost with their batch.",
    "rejected_events": "These events reach Meta instead of being lost with their batch.",
    "likely_double_counted": "Conversions stop being counted twice in Ads Manager.",
    "missing_event_id": "Meta can match these events to their Pixel twins and count them once.",
    "low_event_coverage": "Up to {affected:,} more Pixel events get a server copy, which keeps "
    "them when browsers block the Pixel.",
    "late_stage": "Meta receives the stage within the hour, while it can still optimise on it.",
    "parameter_gap": "These events gain a match key the rest of your events already send.",
    "test_event_code": "Production traffic stops showing up as test events.",
    "stale_events": "These events stop being rejected for being more than 7 days old.",
}


def _diagnostic_fix(d: dict[str, Any]) -> Fix:
    share = f" ({fmt.percent(d['share'])})" if d.get("share") is not None else ""
    key = d["key"]
    gain = _GAINS.get(key)
    if gain is None and key.startswith("invalid_"):
        gain = "These values become usable for matching."
    return Fix(
        title=d["name"],
        affected=f"{d['affected']:,} of {d['total']:,} events{share}",
        gain=(gain or "{affected:,} events fixed.").format(affected=d["affected"]),
        how=d["how_to_fix"],
    )


# Where a key comes from, for the keys a website integration most often leaves out.
_PARAM_HOW = {
    "fbc": "Read the _fbc cookie (or build fb.1.<time in ms>.<fbclid> from the landing URL's "
    "fbclid) on your server and send it as fbc, unchanged.",
    "fbp": "Read the _fbp cookie on your server and send it as fbp, unchanged.",
    "client_ip_address": "Send the visitor's IP address from the request (not your server's).",
    "client_user_agent": "Send the visitor's browser user agent from the request.",
    "external_id": "Send your own stable customer or lead id as external_id, the same on the "
    "Pixel and the server.",
}


def _emq_fix(row: dict[str, Any]) -> Fix:
    name = PARAM_NAMES.get(row["parameter"], row["parameter"])
    how = _PARAM_HOW.get(
        row["parameter"],
        f"Pass {name} ({row['parameter']}) from your server integration on these events"
        + (", normalised and SHA-256 hashed." if row["parameter"] in HASHED_PARAMS else "."),
    )
    lacking = round(row["server_events"] * (1 - row["coverage"]))
    return Fix(
        title=f"Send a valid {name} with {row['event_name']} ({row['action_source']}) events",
        affected=f"{lacking:,} of {row['server_events']:,} {row['event_name']} events lack it",
        gain=f"Estimated match quality of {row['event_name']} from {row['emq_now']:.1f} to "
        f"{row['emq_if_fixed']:.1f}; of all events +{row['gain_slice']:.1f}.",
        how=how,
    )


def fixes_first(report: dict[str, Any], emq_fixes: pd.DataFrame, limit: int = 3) -> list[Fix]:
    """The first fixes to make: critical findings, then the match-key fix worth most (when it
    lifts the overall estimate by 0.1 or more), then warnings, then the rest."""
    ranked = {"critical": [], "emq": [], "warning": [], "info": []}
    for d in report["diagnostics"]:
        ranked.setdefault(d["severity"], []).append(_diagnostic_fix(d))
    # In what_to_fix's order (what the integration can recover first): an e-mail on an
    # anonymous page view would lift the estimate most, but nobody can send it.
    worth = emq_fixes[emq_fixes["gain_slice"] >= 0.1]
    if not worth.empty:
        ranked["emq"].append(_emq_fix(worth.iloc[0].to_dict()))
    order = [f for kind in ("critical", "emq", "warning", "info") for f in ranked[kind]]
    return order[:limit]


# ---------------------------------------------------------------------------
def _period_text(period: dict[str, Any]) -> str:
    if period["since"]:
        return f"{fmt.day(_date(period['since']))} – {fmt.day(_date(period['until']))}"
    if period["data_first_day"]:
        first, last = _date(period["data_first_day"]), _date(period["data_last_day"])
        return f"All data: {fmt.day(first)} – {fmt.day(last)}"
    return "No data"


def _date(text: str):
    return datetime.fromisoformat(text).date()


def _filters_text(period: dict[str, Any]) -> str:
    return (
        "; ".join(
            f"{labels.label(k.rstrip('s'))}: {', '.join(v) if isinstance(v, list) else v}"
            for k, v in period["filters"].items()
            if k not in ("since", "until")
        )
        or "none"
    )


def build(
    engine: Engine, filters: Filters, config: Config, *, appendix: bool = False
) -> ClientReport:
    """The report's content for a slice: the JSON report, plus the funnel, the match-key
    breakdown, delivery and (with `appendix`) the capped gap list."""
    report, frames = build_report_and_frames(engine, filters, config)
    period = report["period"]
    through = report["overall"]["freshness"]["last_event_at"]
    logo = Path(config.report_logo) if config.report_logo else None
    compared = period.get("comparison")
    content = ClientReport(
        title=config.report_title,
        client=config.report_client,
        logo=logo if logo is not None and logo.is_file() else None,
        period=_period_text(period),
        through=f"{minute(through)} UTC" if through else fmt.NO_DATA,
        generated=f"{datetime.now(tz=UTC):%Y-%m-%d %H:%M} UTC",
        filters=_filters_text(period),
        comparison=(
            compared["note"]
            if compared
            else "No comparison: pick a period (since and until) to compare with the one before."
        ),
        headlines=headlines(report, config),
        good=what_is_good(report, config),
        fixes=fixes_first(report, what_to_fix(engine, filters, config, limit=20)),
        sections=[
            *group_sections(report, config),
            funnel_section(engine, filters, config),
            parameter_section(frames["event_name"]),
            delivery_section(engine, filters, report),
            diagnostics_section(report),
        ],
        appendix=appendix_table(engine, filters, config) if appendix else None,
        report=report,
    )
    return content
