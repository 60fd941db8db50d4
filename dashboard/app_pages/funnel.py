"""Funnel: stages per campaign as a funnel, quality per stage, stage-order gaps, readiness."""

import streamlit as st

from dashboard import charts, ui
from dashboard.indicators import conversion_from_stages

st.title("Funnel")
if ui.empty_store_notice():
    st.stop()
filters = ui.current_filters()
config = ui.get_config()
st.caption(ui.describe(filters))

stages = ui.query("funnel_stages", filters)
if stages.empty:
    st.info("No events in this selection.")
    st.stop()

campaigns = sorted(stages["campaign"].unique())
campaign = st.selectbox("Campaign", campaigns, key="funnel_campaign")
mine = stages[stages["campaign"] == campaign]
# A funnel is shown when the campaign has one of its steps before the last (Purchase
# closes both the web and the CRM funnel).
funnels = [
    name for name, order in config.funnels.items() if mine["funnel_stage"].isin(order[:-1]).any()
]
cols = st.columns(max(1, len(funnels)))
for col, name in zip(cols, funnels, strict=False):
    col.plotly_chart(
        charts.funnel_chart(
            mine, list(config.funnels[name]), f"{name.upper()} funnel · {campaign}"
        ),
        key=f"chart_funnel_{name}",
    )

st.subheader("Quality per stage")
ui.table(
    mine.drop(columns=["campaign"]),
    "stage_quality",
    f"funnel_{campaign}.csv",
    column_config={
        "emq_estimate": st.column_config.NumberColumn("EMQ estimate", format="%.1f"),
        "event_coverage": st.column_config.NumberColumn("Event coverage", format="percent"),
        "median_lag_s": st.column_config.NumberColumn("Median lag (s)", format="%.0f"),
    },
)

st.subheader("Stage-to-stage conversion")
conversion = conversion_from_stages(stages, config)  # from the stages above: no second query
ui.table(
    conversion[conversion["campaign"] == campaign],
    "conversion",
    f"conversion_{campaign}.csv",
    column_config={"conversion": st.column_config.NumberColumn("Conversion", format="percent")},
)

st.subheader("Stage-order gaps")
st.caption(
    "People with an event at a stage but none, anywhere in the store, at an earlier stage of its funnel."
)
ui.table(ui.query("stage_order_gaps", filters), "stage_gaps", "stage_order_gaps.csv")

st.subheader("Purchase-optimization readiness")
st.caption(
    f"Ready: at least {config.readiness['min_purchases_7d']} counted Purchases in the last 7 days of the "
    f"period; learning phase: about {config.readiness['learning_phase_per_week']} per week (Meta's guidance)."
)
ui.table(
    ui.query("purchases", filters),
    "purchases",
    "purchase_readiness.csv",
    column_config={
        "value_completeness": st.column_config.NumberColumn("Value + currency", format="percent")
    },
)
