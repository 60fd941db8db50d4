"""Match quality: parameter coverage heatmaps, EMQ estimate by event/campaign/stage, what to fix."""

import pandas as pd
import streamlit as st

from dashboard.core import formatting as fmt
from dashboard.core.params import PARAMS
from dashboard.core.selection import Selection
from dashboard.outputs import charts, labels
from dashboard.outputs.exports import to_csv_bytes
from dashboard.quality.blocks import block_dict, largest_groups
from dashboard.quality.match_quality import applicable_by_group, coverage_table
from dashboard.ui import shared as ui
from dashboard.ui.meta_panel import show_meta_numbers

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
    "Recoverable events lack a valid value of the parameter, but the same person (same fbp "
    "or external_id) had already sent one on another event, in the Pixel or the server: "
    "your integration knew the value and can pass it on. Ranked by the rise of the EMQ "
    "estimate for the whole selection if those were fixed (Recoverable gain); Gain if all "
    "fixed assumes the value on every event, even where nobody has it (an anonymous visit "
    "has no e-mail)."
)
every_fix = ui.query("what_to_fix", filters, None)
shown_fixes = 15
if len(every_fix) > shown_fixes:
    st.caption(f"The {shown_fixes} first of {len(every_fix):,}; the download holds every one.")
ui.table(
    # The per-event gain stays in the API; the page ranks for the selection.
    every_fix.head(shown_fixes).drop(columns=["gain_event"]),
    "what_to_fix",
    "what_to_fix.csv",
    full_csv=lambda: to_csv_bytes(labels.for_people(every_fix.drop(columns=["gain_event"]))),
    column_config={
        # Rises of the estimate: signed, two decimals (they are small).
        "recoverable_gain": st.column_config.NumberColumn(format="+%.2f"),
        "gain_slice": st.column_config.NumberColumn(format="+%.2f"),
    },
)

# Charts of hundreds of events or campaigns label nothing: they keep the largest.
top_events = largest_groups(by_event, ui.CHART_GROUPS)
top_campaigns = largest_groups(by_campaign, ui.CHART_GROUPS)
if len(top_events) < len(by_event) or len(top_campaigns) < len(by_campaign):
    st.caption(
        f"The charts by event and by campaign show the {ui.CHART_GROUPS} with the most events "
        f"(of {len(by_event):,} event names and {len(by_campaign):,} campaigns); the report's "
        "Excel and CSV (Overview) list every one."
    )
left, right = st.columns(2)
left.plotly_chart(
    charts.emq_bars(top_events, "event_name", config, "EMQ by event"), key="chart_emq_event"
)
right.plotly_chart(
    charts.emq_bars(top_campaigns, "campaign", config, "EMQ by campaign"),
    key="chart_emq_campaign",
)
left, right = st.columns(2)
left.plotly_chart(
    charts.emq_bars(by_stage, "funnel_stage", config, "EMQ by funnel stage"), key="chart_emq_stage"
)
# Every day of the period up to today: a day without server events is a gap in the line.
last_day = min(filters.until, ui.today()) if filters.until else None
right.plotly_chart(
    charts.emq_trend(daily, config, first=filters.since, last=last_day, markers=ui.markers()),
    key="chart_emq_trend",
)

st.subheader("Parameter coverage")
st.caption(
    "Share of server events carrying a valid value (hashed fields: SHA-256; fbc/fbp: Meta's format)."
)
st.caption(
    "Every parameter an event's action source can carry is shown, at 0% when it was never "
    "sent; grey n/a: the parameter cannot apply (e.g. a WhatsApp click id on a website event)."
)


def cell_link(by: str, groups: list[str], chosen) -> None:
    """A link to the events of one heatmap cell: the clicked cell, or the one picked here."""
    points = (chosen or {}).get("selection", {}).get("points", []) if chosen else []
    if points and str(points[0].get("y")) in groups and points[0].get("x") in PARAMS:
        st.session_state[f"cell_group_{by}"] = str(points[0].get("y"))
        st.session_state[f"cell_param_{by}"] = str(points[0].get("x"))
    group_col, param_col, status_col, link_col = st.columns([3, 2, 2, 2])
    group = group_col.selectbox(
        "Event" if by == "event_name" else "Campaign", groups, key=f"cell_group_{by}"
    )
    param = param_col.selectbox("Parameter", PARAMS, key=f"cell_param_{by}")
    status = status_col.selectbox(
        "Status", ["absent", "invalid", "unhashed", "valid"], key=f"cell_status_{by}"
    )
    subject = {"event_name": group} if by == "event_name" else {"campaign": group}
    selection = Selection("parameter", parameter=param, status=status, **subject)
    link_col.page_link(
        "ui/pages/events.py",
        label="List these events",
        icon=":material/list_alt:",
        query_params={**ui.filter_query(filters), **selection.to_query()},
    )


# Which parameters can apply, per event and per campaign, from one scan.
sources = ui.query("action_sources_by", filters, ("event_name", "campaign"))
tab_event, tab_campaign = st.tabs(["By event", "By campaign"])
for tab, frame, by in (
    (tab_event, top_events, "event_name"),
    (tab_campaign, top_campaigns, "campaign"),
):
    applicable = applicable_by_group(sources, by)
    with tab:
        chosen = st.plotly_chart(
            charts.coverage_heatmap(coverage_table(frame, by, applicable), by),
            key=f"chart_heat_{by}",
            on_select="rerun",
            selection_mode="points",
        )
        cell_link(by, list(frame[by].astype(str)), chosen)

show_meta_numbers(
    filters, config, ui.query("overview", filters, ui.today().isoformat())["diagnostics"]
)

st.subheader("Invalid and unhashed values")
# Whatever any event of the slice can carry (the union over its events).
slice_applicable = set().union(*applicable_by_group(sources, "event_name").values())
rows = [
    {
        "parameter": p,
        "valid_share": overall["parameter_coverage"][p],
        "invalid": overall["invalid_parameters"][p],
        "unhashed_plaintext": overall["unhashed_parameters"][p],
    }
    for p in PARAMS
    # Every parameter the slice's action sources can carry, at 0% too: a filter must not
    # hide a parameter that is missing everywhere in it.
    if p in slice_applicable or overall["invalid_parameters"][p] or overall["parameter_coverage"][p]
]
validity = pd.DataFrame(rows)
# Each parameter links to its events per status (Events page, the selection in the URL).
# A link only where there is something to list: "Invalid values" counts plaintext too
# (the registry's invalid_parameters), the invalid link lists the malformed rest.
counts = {
    "absent": [1] * len(validity),
    "invalid": validity["invalid"] - validity["unhashed_plaintext"],
    "unhashed": validity["unhashed_plaintext"],
}
for status, present in counts.items():
    validity[f"list_{status}"] = [
        ui.events_link(Selection("parameter", parameter=p, status=status), filters) if n else None
        for p, n in zip(validity["parameter"], present, strict=True)
    ]
ui.table(
    validity,
    "invalid_params",
    "parameter_validity.csv",
    column_config={
        "valid_share": st.column_config.NumberColumn("Valid share", format="percent"),
        **{
            f"list_{status}": st.column_config.LinkColumn(display_text=f"List {status}")
            for status in ("absent", "invalid", "unhashed")
        },
    },
)
st.caption(
    f"{fmt.compact(overall['unhashed_pii'])} server events carried plaintext personal data; "
    f"{fmt.compact(overall['rejected_combination'])} had only a parameter combination Meta rejects."
)
