"""Events: the events behind a finding, a parameter status, a dedup status or a Meta error.

Reached from each diagnostic (Overview), each parameter cell (Match quality) and each
error row (Freshness & delivery) with the selection in the URL, or chosen here. Lists
where each event sits in the log (file and line), the failing field and why, paged and
sorted in the database; the download holds every row, built when clicked.
"""

import streamlit as st

from dashboard.core import formatting as fmt
from dashboard.core import meta_errors
from dashboard.core.definitions import DEDUP_STATUSES
from dashboard.core.params import PARAMS
from dashboard.core.selection import (
    LISTABLE_DEDUP,
    PARAMETER_STATUSES,
    Selection,
    SelectionError,
)
from dashboard.outputs import event_list, labels
from dashboard.quality import drilldown
from dashboard.store.queries.events import SORTS
from dashboard.ui import shared as ui

st.title("Events")
if ui.empty_store_notice():
    st.stop()
filters = ui.current_filters()
config = ui.get_config()
st.caption(ui.describe(filters))

try:
    selection = Selection.from_query(st.query_params.to_dict())
except SelectionError as error:
    st.error(f"This link names no list of events: {error}.")
    selection = None

KIND_LABELS = {
    "finding": "A finding",
    "parameter": "A parameter status",
    "dedup": "A dedup status",
}


def choose() -> Selection | None:
    """The chooser shown without a selection in the URL; writes its choice to the URL."""
    st.write("Choose what to list, or open a finding from the Overview's diagnostics.")
    kind = st.radio(
        "List", list(KIND_LABELS), format_func=KIND_LABELS.get, horizontal=True, key="ev_kind"
    )
    if kind == "finding":
        key = st.selectbox(
            "Finding",
            list(drilldown.FINDINGS),
            format_func=lambda k: f"{k}: {drilldown.FINDINGS[k].meaning}",
            key="ev_finding",
        )
        chosen = Selection("finding", finding=key)
    elif kind == "parameter":
        left, right = st.columns(2)
        param = left.selectbox("Parameter", PARAMS, key="ev_param")
        status = right.selectbox("Status", list(PARAMETER_STATUSES), index=2, key="ev_status")
        chosen = Selection("parameter", parameter=param, status=status)
    else:
        status = st.selectbox("Dedup status", LISTABLE_DEDUP, key="ev_dedup")
        chosen = Selection("dedup", dedup=status)
    if st.button("List these events", type="primary", key="ev_go"):
        st.query_params.update(chosen.to_query())
        return chosen
    return None


if selection is None:
    selection = choose()
    if selection is None:
        st.stop()

if selection.kind == "finding" and selection.finding in drilldown.FINDINGS:
    meaning = drilldown.FINDINGS[selection.finding].meaning
    st.subheader(meaning[:1].upper() + meaning[1:])
    st.caption(selection.describe())
elif selection.kind == "finding":
    st.error(f"Unknown finding {selection.finding!r}. Known: {', '.join(drilldown.FINDINGS)}.")
    st.stop()
else:
    st.subheader(selection.describe())
    if selection.kind == "error":
        # -1 stands for "Meta gave none" in an error row's link.
        code, sub = (
            None if c == -1 else c for c in (selection.error_code, selection.error_subcode)
        )
        explained = meta_errors.explain(code, sub)
        st.caption(f"Server events of batches Meta rejected: {explained.meaning} {explained.fix}")
    if selection.kind == "dedup" and selection.dedup in DEDUP_STATUSES:
        st.caption(f"Accepted events with dedup status {selection.dedup}.")

# Sort, order, page size and page live in the URL too, so a shared link opens this view.
params = st.query_params
if "ev_sort" not in st.session_state:
    st.session_state["ev_sort"] = params.get("sort") if params.get("sort") in SORTS else "sent_at"
    st.session_state["ev_desc"] = params.get("order") != "asc"
    size_text = params.get("size", "")
    st.session_state["ev_size"] = (
        int(size_text) if size_text.isdigit() and int(size_text) in drilldown.PAGE_SIZES else 50
    )
    page_text = params.get("page", "")
    st.session_state["ev_page"] = int(page_text) if page_text.isdigit() else 1
left, middle, right = st.columns([2, 1, 1])
sort = left.selectbox(
    "Sort by",
    list(SORTS),
    format_func=lambda s: "Position in the log" if s == "line" else labels.label(s),
    key="ev_sort",
)
descending = middle.toggle("Newest / largest first", key="ev_desc")
size = right.selectbox("Rows per page", drilldown.PAGE_SIZES, key="ev_size")
page_number = int(st.session_state.get("ev_page", 1))
selection_key = tuple(sorted(selection.to_query().items()))
rows, total = ui.query(
    "event_page", filters, selection_key, sort, descending, (page_number - 1) * size, size
)
pages = max(1, -(-total // size))
if total == 0:
    st.success("No events of this kind in this selection.")
    st.stop()
if page_number > pages:
    st.session_state["ev_page"] = pages
    st.rerun()
st.write(
    f"**{total:,}** events; page {page_number:,} of {pages:,} "
    f"(rows {(page_number - 1) * size + 1:,}–{min(page_number * size, total):,})."
)
# Columns with nothing in them on this page (errors on a parameter list, twins off the
# near-miss list) only take room.
shown = rows.dropna(axis="columns", how="all")
st.dataframe(
    labels.for_people(shown),
    hide_index=True,
    width="stretch",
    key="df_events",
    # Every row of the page visible (a header and 35 px a row, up to 20 rows).
    height=min(len(shown), 20) * 35 + 38,
    column_config={labels.label("why"): st.column_config.TextColumn(width="large")},
)
st.number_input("Page", min_value=1, max_value=pages, step=1, key="ev_page")
st.query_params.update(
    {
        "sort": sort,
        "order": "desc" if descending else "asc",
        "size": str(size),
        "page": str(page_number),
    }
)


def whole_list() -> bytes:
    """Every event of the list (not only this page), as CSV: built when clicked."""
    engine = ui.get_engine(ui.store_url())
    chunks = drilldown.iter_events(
        engine, filters, config, selection, sort=sort, descending=descending
    )
    return event_list.csv_bytes(chunks)


st.download_button(
    f"Download all {fmt.compact(total)} events (CSV)",
    data=whole_list,
    file_name=f"events_{selection.finding or selection.parameter or selection.dedup or 'list'}.csv",
    mime="text/csv",
    key="dl_events",
    on_click="ignore",
)
