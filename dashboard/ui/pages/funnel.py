"""Funnel: the slice's funnels, quality and conversion per campaign and stage, stage-order
gaps, Purchase revenue per currency and purchase-optimization readiness.

Follows the sidebar filters (and so the URL) only: a slice of one campaign is that
campaign's funnel, a slice of several is their funnel together (distinct people per
stage). Stages not sent show as "not sent", and conversion runs across them.
"""

import streamlit as st

from dashboard.outputs import charts
from dashboard.quality.funnel import NOT_SENT, conversion_from_stages, enters, funnel_steps
from dashboard.ui import shared as ui

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
if len(campaigns) == 1:
    subject = campaigns[0]
else:
    subject = f"{len(campaigns)} campaigns"
    st.caption(
        f"The funnel of all {len(campaigns)} campaigns in this selection: distinct people per "
        "stage across them (a person in two campaigns counts once), among the campaigns "
        "that enter each funnel. Campaigns enter at different stages (a WhatsApp campaign "
        "at Qualified), so a stage can hold more people than the one before it. To look at "
        "one campaign, pick it under **Campaign** in the sidebar; the tables below are per "
        "campaign."
    )
if filters.stages or filters.event_names:
    st.caption(
        "The funnel stage or event filter leaves some stages out of this selection: "
        "they show as not sent."
    )

slice_people = ui.query("funnel_people", filters)
funnels = [
    name
    for name, order in config.funnels.items()
    if enters(set(slice_people.loc[slice_people["funnel"] == name, "funnel_stage"]), order)
]
if not funnels:
    orders = "; ".join(f"{name}: {' → '.join(order)}" for name, order in config.funnels.items())
    st.info(f"No funnel in this selection: no events at a stage before a funnel's last ({orders}).")
for col, name in zip(st.columns(max(1, len(funnels))), funnels, strict=False):
    mine = slice_people[slice_people["funnel"] == name]
    steps = funnel_steps(
        dict(zip(mine["funnel_stage"], mine["people"], strict=True)), config.funnels[name]
    )
    col.plotly_chart(
        charts.funnel_chart(steps, f"{name.upper()} funnel · {subject}"),
        key=f"chart_funnel_{name}",
    )
    not_sent = list(steps.loc[steps["note"] == NOT_SENT, "funnel_stage"])
    if not_sent:
        sent = list(steps.loc[steps["note"] != NOT_SENT, "funnel_stage"])
        col.caption(
            f"Not sent in this selection: {', '.join(not_sent)}. Conversion runs between the "
            f"stages that were sent ({' → '.join(sent)})."
        )

st.subheader("Quality per stage")
st.caption(
    "Event coverage is – where a stage has no browser (Pixel) events: server only, nothing "
    "to cover. Median lag is from the event to its sending, server events."
)
ui.table(stages, "stage_quality", "funnel_stages.csv")

st.subheader("Stage-to-stage conversion")
st.caption(
    "Distinct people per stage and campaign; conversion from the previous stage that was "
    "sent. A stage not sent has no people (–) and no conversion."
)
conversion = conversion_from_stages(stages, config)  # from the stages above: no second query
ui.table(conversion, "conversion", "funnel_conversion.csv")

st.subheader("Stage-order gaps")
st.caption(
    "People with an event at a stage but none, anywhere in the store, at an earlier stage of its funnel."
)
ui.table(
    ui.query("stage_order_gaps", filters),
    "stage_gaps",
    "stage_order_gaps.csv",
    empty="No stage-order gaps: everybody at a stage was seen at an earlier one.",
)

st.subheader("Purchase-optimization readiness")
ready_7d = config.readiness["min_purchases_7d"]
learning_phase = config.readiness["learning_phase_per_week"]
st.caption(
    f"Ready: at least {ready_7d} counted Purchases in the last 7 days of the period, per "
    f"campaign; learning phase: about {learning_phase} per week (Meta's guidance, per ad set). "
    "Paler weeks are only partly in the period."
)
left, right = st.columns(2)
with left:
    ui.table(
        ui.query("purchase_readiness", filters),
        "purchase_readiness",
        "purchase_readiness.csv",
        empty="No Purchase events in this selection.",
    )
with right:
    st.plotly_chart(
        charts.weekly_purchases_chart(
            ui.query("weekly_purchases", filters),
            learning_phase,
            ready_7d,
            "Counted Purchases per ISO week (UTC), this selection",
        ),
        key="chart_weekly_purchases",
    )

st.subheader("Revenue per currency")
st.caption(
    "Sum of the value of counted Purchases, per campaign and currency: amounts in different "
    "currencies are never added up."
)
ui.table(
    ui.query("purchases", filters),
    "purchases",
    "purchase_revenue.csv",
    empty="No counted Purchases in this selection.",
)
