"""Match quality: parameter coverage heatmaps, EMQ estimate by event/campaign/stage, what to fix."""

import pandas as pd
import streamlit as st

from dashboard import charts, ui
from dashboard import formatting as fmt
from dashboard.indicators import block_dict, coverage_table
from dashboard.params import PARAMS

st.title("Match quality")
if ui.empty_store_notice():
    st.stop()
filters = ui.current_filters()
config = ui.get_config()
st.caption(ui.describe(filters) + " · EMQ values are estimates, not Meta's score.")

# Every block of the page (the whole slice, by event, campaign, stage and day) in one scan.
overall_frame, by_event, by_campaign, by_stage, daily = ui.query(
    "blocks", filters, ((), ("event_name",), ("campaign",), ("funnel_stage",), ("event_day",))
)
overall = block_dict(overall_frame.iloc[0])
if overall["server_sent"] == 0:
    st.info("No events in this selection.")
    st.stop()

st.subheader("What to fix next")
st.caption(
    "Expected rise of the EMQ estimate if the parameter were valid on every event of that name; "
    "ranked by the rise for the whole selection."
)
fixes = ui.query("what_to_fix", filters, 15)
ui.table(
    fixes,
    "what_to_fix",
    "what_to_fix.csv",
    column_config={
        "coverage": st.column_config.NumberColumn("Coverage now", format="percent"),
        "emq_now": st.column_config.NumberColumn("EMQ now", format="%.1f"),
        "emq_if_fixed": st.column_config.NumberColumn("EMQ if fixed", format="%.1f"),
        "gain_event": st.column_config.NumberColumn("Gain (event)", format="+%.2f"),
        "gain_slice": st.column_config.NumberColumn("Gain (selection)", format="+%.2f"),
    },
)

left, right = st.columns(2)
left.plotly_chart(
    charts.emq_bars(by_event, "event_name", config, "EMQ by event"), key="chart_emq_event"
)
right.plotly_chart(
    charts.emq_bars(by_campaign, "campaign", config, "EMQ by campaign"), key="chart_emq_campaign"
)
left, right = st.columns(2)
left.plotly_chart(
    charts.emq_bars(by_stage, "funnel_stage", config, "EMQ by funnel stage"), key="chart_emq_stage"
)
right.plotly_chart(charts.emq_trend(daily, config), key="chart_emq_trend")

st.subheader("Parameter coverage")
st.caption(
    "Share of server events carrying a valid value (hashed fields: SHA-256; fbc/fbp: Meta's format)."
)
tab_event, tab_campaign = st.tabs(["By event", "By campaign"])
with tab_event:
    st.plotly_chart(
        charts.coverage_heatmap(coverage_table(by_event, "event_name"), "event_name"),
        key="chart_heat_event",
    )
with tab_campaign:
    st.plotly_chart(
        charts.coverage_heatmap(coverage_table(by_campaign, "campaign"), "campaign"),
        key="chart_heat_campaign",
    )

st.subheader("Invalid and unhashed values")
rows = [
    {
        "parameter": p,
        "valid_share": overall["parameter_coverage"][p],
        "invalid": overall["invalid_parameters"][p],
        "unhashed_plaintext": overall["unhashed_parameters"][p],
    }
    for p in PARAMS
    if overall["invalid_parameters"][p] or overall["parameter_coverage"][p]
]
ui.table(
    pd.DataFrame(rows),
    "invalid_params",
    "parameter_validity.csv",
    column_config={"valid_share": st.column_config.NumberColumn("Valid share", format="percent")},
)
st.caption(
    f"{fmt.compact(overall['unhashed_pii'])} server events carried plaintext personal data; "
    f"{fmt.compact(overall['rejected_combination'])} had only a parameter combination Meta rejects."
)
