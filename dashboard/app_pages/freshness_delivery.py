"""Freshness & delivery: lag per stage, upload frequency, stale/future events, errors over time."""

import streamlit as st

from dashboard import charts, ui
from dashboard import formatting as fmt

st.title("Freshness & delivery")
if ui.empty_store_notice():
    st.stop()
filters = ui.current_filters()
st.caption(ui.describe(filters))

overall = ui.query("overall", filters)
delivery = ui.query("delivery_summary", filters)
if overall["server_sent"] == 0:
    st.info("No events in this selection.")
    st.stop()
fresh = overall["freshness"]
cols = st.columns(4)
cols[0].metric("Median lag", fmt.duration(fresh["median_lag_s"]))
cols[1].metric("90th percentile lag", fmt.duration(fresh["p90_lag_s"]))
cols[2].metric("Older than 7 days when sent", fmt.compact(fresh["stale_over_7d"]))
cols[3].metric("Stamped in the future", fmt.compact(fresh["future"]))
cols = st.columns(4)
cols[0].metric("Batches sent", fmt.compact(delivery["batches"]))
cols[1].metric("Rejected batches", fmt.compact(delivery["rejected_batches"]))
cols[2].metric("Token / permission errors", fmt.compact(delivery["token_error_batches"]))
cols[3].metric("Unanswered batches", fmt.compact(delivery["unanswered_batches"]))

st.subheader("Lag per stage")
stats = ui.query("lag_stats", filters, "funnel_stage")
st.plotly_chart(charts.lag_box(ui.query("lag_sample", filters)), key="chart_lag_box")
ui.table(
    stats,
    "lag_stats",
    "lag_per_stage.csv",
    column_config={
        c: st.column_config.NumberColumn(c, format="%.0f")
        for c in ("p50_lag_s", "p90_lag_s", "p99_lag_s", "max_lag_s")
    },
)

st.subheader("Errors over time")
errors = ui.query("delivery_errors", filters)
st.plotly_chart(charts.errors_over_time(errors), key="chart_errors")
ui.table(errors, "errors", "delivery_errors.csv")
