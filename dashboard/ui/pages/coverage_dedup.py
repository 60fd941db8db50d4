"""Coverage & dedup: browser vs server volume, coverage vs 75%, dedup statuses, gap drill-down."""

import streamlit as st

from dashboard.core.definitions import GAP_STATUSES
from dashboard.core.measures import BY_KEY
from dashboard.outputs import charts, labels
from dashboard.outputs.exports import to_csv_bytes
from dashboard.outputs.scorecards import scorecards
from dashboard.quality.blocks import block_dict, largest_groups
from dashboard.ui import shared as ui

st.title("Coverage & dedup")
if ui.empty_store_notice():
    st.stop()
filters = ui.current_filters()
config = ui.get_config()
st.caption(ui.describe(filters))

# The slice's block and the breakdown's from one scan. The breakdown control is drawn
# further down; its value is already in the session state when the run starts.
BREAKDOWNS = ["event_name", "campaign", "funnel_stage"]
NOUNS = {"event_name": "event names", "campaign": "campaigns", "funnel_stage": "stages"}
dimension = st.session_state.get("cov_dimension") or "event_name"
overall_frame, frame = ui.query("blocks", filters, ((), (dimension,)))
overall = block_dict(overall_frame.iloc[0])
if overall["browser_events"] + overall["server_sent"] == 0:
    st.info(f"No events in this selection ({ui.describe(filters)}).")
    st.stop()
# The coverage and dedup measures of the registry, labelled as on every other page.
CARDS = (
    "event_coverage",
    "event_coverage_any_key",
    "dedup.rate",
    "dedup.likely_double_counted",
    "server_without_event_id",
    "dedup.server.by_design",
)
cards = scorecards(overall, None, config, [BY_KEY[k] for k in CARDS])
for col, card in zip([*st.columns(3), *st.columns(3)], cards, strict=True):
    col.metric(card.label, card.shown, help=card.help)

st.segmented_control(
    "Break down by",
    BREAKDOWNS,
    default="event_name",
    format_func=lambda d: {
        "event_name": "Event",
        "campaign": "Campaign",
        "funnel_stage": "Stage",
    }[d],
    key="cov_dimension",
)
charted = largest_groups(frame, ui.CHART_GROUPS)
if len(charted) < len(frame):
    st.caption(
        f"The charts show the {ui.CHART_GROUPS} of {len(frame):,} {NOUNS[dimension]} with the "
        "most events; the report's Excel and CSV (Overview) list every one."
    )
left, right = st.columns(2)
left.plotly_chart(charts.volume_bars(charted, dimension), key="chart_volume")
right.plotly_chart(
    charts.coverage_bars(charted, dimension, config.coverage_goal), key="chart_coverage"
)
left, right = st.columns(2)
left.plotly_chart(charts.dedup_stacked(charted, dimension, "server"), key="chart_dedup_server")
right.plotly_chart(charts.dedup_stacked(charted, dimension, "browser"), key="chart_dedup_browser")

st.subheader("Dedup key feedback")
st.caption("As Events Manager shows it: share of browser and of server events carrying each key.")
ui.table(
    ui.query("dedup_key_feedback", filters),
    "dedup_keys",
    "dedup_key_feedback.csv",
    column_config={
        "browser_events_with_key": st.column_config.NumberColumn(format="%.1f"),
        "server_events_with_key": st.column_config.NumberColumn(format="%.1f"),
    },
)

st.subheader("Gaps, event by event")
st.caption(
    "What a developer needs to fix tracking: event, event_id, campaign, stage and times. "
    "Hashed fields are never shown; fbp and external_id appear as they were sent."
)
choices = [*GAP_STATUSES, "likely_double_counted"]
picked = st.multiselect("Gap types", choices, default=choices, key="gap_statuses")
gaps, total = ui.query("gap_events", filters, tuple(picked), 1000)
st.write(
    f"{total:,} events; showing the latest {min(total, 1000):,}. The download holds all "
    f"{total:,}; the Events page lists each gap type with file and line."
)


def all_gaps() -> bytes:
    """Every gap of the picked types (not only the rows shown), built when clicked."""
    every, _ = ui.query("gap_events", filters, tuple(picked), None)
    return to_csv_bytes(labels.for_people(every))


ui.table(
    gaps,
    "gaps",
    "dedup_gaps.csv",
    empty="No dedup gaps of these types in this selection.",
    full_csv=all_gaps if total > len(gaps) else None,
)
