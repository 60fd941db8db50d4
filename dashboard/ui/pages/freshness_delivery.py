"""Freshness & delivery: lag per stage, upload frequency, stale/future events, and Meta's
errors over time with what each code means and how to fix it (dashboard.core.meta_errors)."""

import pandas as pd
import streamlit as st

from dashboard.core import formatting as fmt
from dashboard.core import meta_errors
from dashboard.core.measures import BY_KEY
from dashboard.core.selection import Selection
from dashboard.outputs import charts
from dashboard.outputs.scorecards import scorecards
from dashboard.ui import shared as ui

st.title("Freshness & delivery")
if ui.empty_store_notice():
    st.stop()
filters = ui.current_filters()
st.caption(ui.describe(filters))

overall = ui.query("overall", filters)
delivery = ui.query("delivery_summary", filters)
if overall["server_sent"] == 0:
    # This page is about what the server sent to Meta: browser events have no send lag.
    st.info(
        "No events in this selection were sent from the server (Conversions API): "
        "lags and Meta's answers exist only for server events."
    )
    st.stop()
# The freshness measures of the registry, labelled and formatted as everywhere else.
FRESHNESS = ("median_lag_s", "p90_lag_s", "stale_over_7d", "future")
for col, card in zip(
    st.columns(4),
    scorecards(overall, None, ui.get_config(), [BY_KEY[f"freshness.{k}"] for k in FRESHNESS]),
    strict=True,
):
    col.metric(card.label, card.shown, help=card.help)
cols = st.columns(4)
cols[0].metric("Batches sent", fmt.compact(delivery["batches"]))
cols[1].metric("Rejected batches", fmt.compact(delivery["rejected_batches"]))
cols[2].metric("Token / permission errors", fmt.compact(delivery["token_error_batches"]))
cols[3].metric("Unanswered batches", fmt.compact(delivery["unanswered_batches"]))

st.subheader("Lag per stage")
st.caption(
    "Lag: from when an event happened (event_time) to when the server sent it. Meta wants "
    "events within an hour, and refuses a whole batch holding one older than 7 days."
)
stats = ui.query("lag_stats", filters, "funnel_stage")
if stats.empty:
    st.info("No server events with a known send time in this selection.")
else:
    st.plotly_chart(charts.lag_box(ui.query("lag_sample", filters)), key="chart_lag_box")
    ui.table(stats, "lag_stats", "lag_per_stage.csv")

st.subheader("Errors over time")
errors = ui.query("delivery_errors", filters)
if errors.empty:
    st.info("No rejected batches in this selection.")
else:
    st.caption(
        "Token and permission errors (codes 190 and 200) are in red and orange: every batch "
        "fails until the token is renewed. Other errors are in greys."
    )
    last_day = min(filters.until, ui.today()) if filters.until else None
    st.plotly_chart(
        charts.errors_over_time(errors, first=filters.since, last=last_day, markers=ui.markers()),
        key="chart_errors",
    )
    explained = meta_errors.explained(errors)
    # Each error row links to its rejected events (Events page; -1 when Meta gave none).
    explained["list"] = [
        ui.events_link(
            Selection(
                "error",
                error_code=-1 if pd.isna(code) else int(code),
                error_subcode=-1 if pd.isna(sub) else int(sub),
            ),
            filters,
        )
        for code, sub in zip(explained["error_code"], explained["error_subcode"], strict=True)
    ]
    ui.table(
        explained,
        "errors",
        "delivery_errors.csv",
        empty="No rejected batches in this selection.",
        column_config={"list": st.column_config.LinkColumn(display_text="List events")},
    )
