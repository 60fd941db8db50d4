"""Overview: scorecards against their goals and tiers, and the ranked diagnostics."""

import streamlit as st

from dashboard import charts, ui
from dashboard import formatting as fmt
from dashboard.indicators import tier

st.title("Event quality overview")
if ui.empty_store_notice():
    st.stop()
filters = ui.current_filters()
config = ui.get_config()
st.caption(ui.describe(filters))

# The slice's block, its daily blocks and its diagnostics come from one shared scan.
page = ui.query("overview", filters)
now = page["overall"]
previous_filters = filters.previous()
before = ui.query("overall", previous_filters) if previous_filters else None


def prev(*path):
    if before is None:
        return None
    value = before
    for part in path:
        value = value[part]
    return value


def dedup_rate(block):
    server = block["server_events"]
    deduped = (
        block["dedup"]["server"]["deduplicated"] + block["dedup"]["server"]["fallback_deduplicated"]
    )
    return deduped / server if server else None


if now["browser_events"] + now["server_sent"] == 0:
    st.info("No events in this selection.")
    st.stop()

emq = now["emq_estimate"]
cols = st.columns(4)
cols[0].metric(
    "EMQ estimate",
    f"{fmt.score(emq)} · {tier(emq, config)}",
    fmt.delta(emq, prev("emq_estimate"), "score"),
    help="Estimated from the customer parameters sent (0-10); not Meta's score. Tiers "
    f"Poor < {config.emq_tiers['ok']:g} ≤ OK < {config.emq_tiers['good']:g} ≤ Good < "
    f"{config.emq_tiers['great']:g} ≤ Great are approximate, not Meta-published.",
)
coverage = now["event_coverage"]
cols[1].metric(
    "Event coverage",
    fmt.percent(coverage),
    fmt.delta(coverage, prev("event_coverage"), "rate"),
    help=f"Share of Pixel events with a Conversions API twin (same event_name and event_id within 48 h). "
    f"Meta's goal: {config.coverage_goal:.0%}.",
)
rate = dedup_rate(now)
cols[2].metric(
    "Dedup rate",
    fmt.percent(rate),
    fmt.delta(rate, dedup_rate(before) if before else None, "rate"),
    help="Share of accepted server events Meta deduplicates against a Pixel event (by event_id, or by the fbp/external_id fallback).",
)
cols[3].metric(
    "Likely double counts",
    fmt.compact(now["dedup"]["likely_double_counted"]),
    fmt.delta(now["dedup"]["likely_double_counted"], prev("dedup", "likely_double_counted")),
    delta_color="inverse",
    help="Server events that escape dedup although the same person's browser event of the same name happened within 5 minutes.",
)
cols = st.columns(4)
lag = now["freshness"]["median_lag_s"]
cols[0].metric(
    "Median lag",
    fmt.duration(lag),
    fmt.delta(lag, prev("freshness", "median_lag_s"), "duration"),
    delta_color="inverse",
    help="Median time from event_time to sending, server events. Meta: send in real time, at most within an hour.",
)
cols[1].metric(
    "Rejected events",
    fmt.compact(now["server_rejected_by_meta"]),
    fmt.delta(now["server_rejected_by_meta"], prev("server_rejected_by_meta")),
    delta_color="inverse",
    help="Server events in batches Meta rejected (the whole batch fails on one bad event).",
)
cols[2].metric(
    "Unhashed PII",
    fmt.compact(now["unhashed_pii"]),
    fmt.delta(now["unhashed_pii"], prev("unhashed_pii")),
    delta_color="inverse",
    help="Server events carrying plaintext personal data where Meta wants a SHA-256 hash. The values are never stored here.",
)
cols[3].metric(
    "Events (browser / server)",
    f"{fmt.compact(now['browser_events'])} / {fmt.compact(now['server_events'])}",
    help="Accepted browser (Pixel) and server (CAPI) events in the selection.",
)
if coverage is not None and coverage < config.coverage_goal:
    st.warning(
        f"Event coverage {fmt.percent(coverage)} is below Meta's {config.coverage_goal:.0%} goal."
    )

st.subheader("Diagnostics")
diagnostics = page["diagnostics"]
if not diagnostics:
    st.success("No problems found in this selection.")
else:
    import pandas as pd

    frame = pd.DataFrame(diagnostics)
    frame = frame[["severity", "name", "affected", "total", "share", "how_to_fix"]]
    # Plain words, not emoji: they render on every machine, headless Chromium included.
    frame["severity"] = frame["severity"].map(
        {"critical": "CRITICAL", "warning": "warning", "info": "info"}
    )
    ui.table(
        frame,
        "diagnostics",
        "diagnostics.csv",
        column_config={
            "severity": st.column_config.TextColumn("Severity", width="small"),
            "name": st.column_config.TextColumn("Finding", width="large"),
            "affected": st.column_config.NumberColumn("Affected", format="compact"),
            "total": st.column_config.NumberColumn("Of", format="compact"),
            "share": st.column_config.ProgressColumn(
                "Share", min_value=0.0, max_value=1.0, format="percent"
            ),
            "how_to_fix": st.column_config.TextColumn("How to fix", width="large"),
        },
    )

daily = page["daily"]
st.plotly_chart(charts.daily_volume(daily), key="chart_daily_volume")

ui.report_downloads(filters)
