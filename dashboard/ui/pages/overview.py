"""Overview: is data arriving, scorecards against their goals and tiers (with an honest
comparison), the ranked diagnostics, the measures per day with the markers, and the days
before and after a marker."""

from datetime import UTC, datetime

import streamlit as st

from dashboard.core import formatting as fmt
from dashboard.core.clock import now
from dashboard.core.filters import Filters
from dashboard.core.selection import Selection
from dashboard.outputs import charts
from dashboard.outputs.daily import before_after_table
from dashboard.outputs.pipeline_notices import pipeline_notices
from dashboard.outputs.scorecards import Scorecard, scorecards
from dashboard.quality.daily import DAILY_MEASURES, series_from_frame
from dashboard.quality.emq import tier
from dashboard.store.reconciliations import latest_reconciliation
from dashboard.ui import shared as ui
from dashboard.ui.report_downloads import report_downloads

st.title("Event quality overview")
if ui.empty_store_notice():
    st.stop()
filters = ui.current_filters()
config = ui.get_config()
st.caption(ui.describe(filters))


# ---------------------------------------------------------------------------
# Pipeline health first: whatever the period shows, is data still arriving?
health = ui.query("pipeline_health", Filters(datasets=filters.datasets))
now_s = now()  # the clock the periods use
for notice in pipeline_notices(health, now_s, config.max_silence_hours):
    {"error": st.error, "warning": st.warning, "caption": st.caption}[notice.level](notice.text)

# The latest reconciliation against the shop's orders (Reconcile page, or the command).
reconciled = latest_reconciliation(ui.get_engine(ui.store_url()), "orders")
if reconciled and reconciled["match_rate"] is not None:
    ran = datetime.fromtimestamp(reconciled["ran_at"], tz=UTC).strftime("%d %b %Y %H:%M UTC")
    line = (
        f"Orders reconciled ({reconciled['source_name']}, {ran}): "
        f"{reconciled['match_rate']:.1%} of {reconciled['orders']:,} orders reached Meta as "
        f"server Purchases; {reconciled['missing']:,} missing, {reconciled['rejected']:,} "
        "rejected. Details on the Reconcile page."
    )
    (st.warning if reconciled["missing"] + reconciled["rejected"] else st.caption)(line)

# The slice's block, its daily blocks and its diagnostics come from one shared scan.
page = ui.query("overview", filters, ui.today().isoformat())
now = page["overall"]
if now["browser_events"] + now["server_sent"] == 0:
    st.info(f"No events in this selection ({ui.describe(filters)}).")
    st.stop()
missing = now["freshness"]["days_without_events"] or []
if missing:
    shown = fmt.day_ranges([datetime.fromisoformat(d).date() for d in missing])
    where = (
        "this selection"
        if filters != Filters(since=filters.since, until=filters.until)
        else "the store"
    )
    st.warning(
        f"No events at all on {len(missing)} day{'s' if len(missing) != 1 else ''} of this "
        f"period in {where}: {shown}. The daily chart below shows them as 0."
    )

# Deltas only against a period the data fully covers.
# (today's date in the key: whether today is over changes the comparison)
compared = ui.query("comparison", filters, ui.today().isoformat())
available = compared is not None and compared.available
before = ui.query("overall", compared.previous_filters(filters)) if available else None
vs = f"vs {fmt.day(compared.since)} – {fmt.day(compared.until)}" if before else None


def card(col, scorecard: Scorecard) -> None:
    """A scorecard whose change is computed from the values as shown; none is neutral."""
    shown = scorecard.shown
    if scorecard.measure.kind == "score":
        shown = f"{shown} · {tier(scorecard.value, config)}"
    if scorecard.change == fmt.NO_CHANGE:
        col.metric(
            scorecard.label,
            shown,
            scorecard.change,
            delta_color="off",
            delta_arrow="off",
            delta_description=vs,
            help=scorecard.help,
        )
        return
    col.metric(
        scorecard.label,
        shown,
        scorecard.change,
        delta_color="inverse" if scorecard.lower_is_better else "normal",
        delta_description=vs if scorecard.change else None,
        help=scorecard.help,
    )


# The headline measures of the registry (core.measures.SCORECARDS), four to a row; the
# last card shows the volumes.
cards = scorecards(now, before, config)
columns = [*st.columns(4), *st.columns(4)]
for column, scorecard in zip(columns, cards, strict=False):
    card(column, scorecard)
columns[len(cards)].metric(
    "Events (browser / server)",
    f"{fmt.compact(now['browser_events'])} / {fmt.compact(now['server_events'])}",
    help="Accepted browser (Pixel) and server (CAPI) events in the selection.",
)
coverage = now["event_coverage"]
if compared is not None:
    st.caption(compared.note)
# Judged on the value as shown: 74.96% reads "75.0%", which is not below 75%.
if coverage is not None and round(coverage, 3) < config.coverage_goal:
    st.warning(
        f"Event coverage {fmt.percent(coverage)} is below Meta's {config.coverage_goal:.0%} goal."
    )

DIAGNOSTIC_TEXT_PX = 290  # the finding and how to fix it, side by side on a laptop
DIAGNOSTIC_ROW_PX = 84

st.subheader("Diagnostics")
diagnostics = page["diagnostics"]
if not diagnostics:
    st.success("No problems found in this selection.")
else:
    import pandas as pd

    frame = pd.DataFrame(diagnostics)
    # Each finding links to its events (the Events page, the finding in the URL).
    frame["events"] = [
        ui.events_link(
            Selection(
                "finding",
                finding=d["key"],
                event_name=d.get("event_name"),
                campaign=d.get("campaign"),
                funnel_stage=d.get("funnel_stage"),
                on_parameter=d.get("parameter"),
            ),
            filters,
        )
        for d in diagnostics
    ]
    frame = frame[["severity", "name", "events", "affected", "share", "how_to_fix", "total"]]
    # Plain words, not emoji: they render on every machine, headless Chromium included.
    frame["severity"] = frame["severity"].map(
        {"critical": "CRITICAL", "warning": "warning", "info": "info"}
    )
    ui.table(
        frame,
        "diagnostics",
        "diagnostics.csv",
        column_config={
            "severity": st.column_config.TextColumn(width="small"),
            "name": st.column_config.TextColumn(width=DIAGNOSTIC_TEXT_PX),
            "affected": st.column_config.NumberColumn(format="localized", width=110),
            "total": st.column_config.NumberColumn(format="localized", width=80),
            "share": st.column_config.ProgressColumn(
                min_value=0.0, max_value=100.0, format="%.1f%%", width=90
            ),
            "how_to_fix": st.column_config.TextColumn(width=DIAGNOSTIC_TEXT_PX),
            "events": st.column_config.LinkColumn(display_text="List events", width=90),
        },
        # Rows tall enough for a finding and its fix to wrap onto four lines: cut to one
        # line, neither could be read without widening the column.
        row_height=DIAGNOSTIC_ROW_PX,
    )

# Markers (dashboard.store.markers) on every time chart. Read each run, not cached:
# adding one (Data page, or `mark` in another process) bumps no store version.
markers = ui.markers()

# Every day of the period, up to today: a day without events is a 0, not a bridged line.
first_day = filters.since
last_day = min(filters.until, ui.today()) if filters.until else None
if first_day and last_day and last_day < first_day:
    last_day = None
st.plotly_chart(
    charts.daily_volume(
        page["daily"],
        first=first_day,
        last=last_day,
        partial=ui.today() if last_day == ui.today() else None,
        markers=markers,
    ),
    key="chart_daily_volume",
)

# ---------------------------------------------------------------------------
# Proving a fix (dashboard.quality.daily): the headline measures per day from the same
# scan, with the markers, then the days before and after one marker. Here rather than
# on the Data page: it reads the slice the sidebar selects, as every number above does.
st.subheader("Per day")
st.caption(
    "Each measure day by day; dashed lines are markers (what changed, and when: add them "
    "on the Data page or with `python3 -m dashboard mark`). A day without events shows "
    "0 events and no share."
)
series = series_from_frame(page["daily"], first_day, last_day)
goals = {"event_coverage": config.coverage_goal}
# Browser and server volumes: the chart above.
per_day = [m for m in DAILY_MEASURES if m.key not in ("browser_events", "server_events")]
for start in range(0, len(per_day), 2):
    for column, measure in zip(st.columns(2), per_day[start : start + 2], strict=False):
        column.plotly_chart(
            charts.daily_measure(series, measure, markers, goals.get(measure.key)),
            key=f"chart_day_{measure.column}",
        )

st.subheader("Before / after a marker")
if not markers:
    st.info(
        "No markers yet. Add one on the Data page (what changed, and when), or run "
        '`python3 -m dashboard mark "Hashed em on checkout" --at 2026-12-01T10:00Z`.'
    )
else:
    by_id = {m.id: m for m in markers}
    left, right = st.columns([3, 1])
    chosen = by_id[
        left.selectbox(
            "Marker",
            list(by_id),
            index=len(by_id) - 1,
            format_func=lambda i: f"{by_id[i].label} · {by_id[i].at_iso}",
            key="ba_marker",
        )
    ]
    days = int(right.number_input("Days on each side", 1, 90, 7, step=1, key="ba_days"))
    over = now_s >= chosen.at + days * 86_400
    result = ui.query("before_after", filters, chosen.at, days, over)
    st.caption(f"{result.note} The sidebar's filters apply, all but its period.")
    ui.table(before_after_table(result), "before_after", "before_after.csv")

report_downloads(filters)
