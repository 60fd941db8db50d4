"""Streamlit entrypoint: page config, navigation and the shared sidebar. A router only.

Run from the repository root: `python -m streamlit run dashboard/app.py`
(or `python -m dashboard demo`, which imports the bundled sample first).
"""

import sys
from pathlib import Path

# `streamlit run dashboard/app.py` puts only dashboard/ on sys.path; the package lives
# one level up. Adding the repository root keeps one import root everywhere.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import streamlit as st  # noqa: E402

from dashboard.ui import shared as ui  # noqa: E402

st.set_page_config(page_title="Event Quality Monitor", page_icon="📈", layout="wide")
# With login configured ([auth] in the secrets) nothing below runs, and the store is not
# even opened, until an allowed user has logged in.
if not ui.access_granted():
    st.stop()

PAGES = [
    st.Page("ui/pages/overview.py", title="Overview", icon=":material/dashboard:", default=True),
    st.Page("ui/pages/match_quality.py", title="Match quality", icon=":material/fingerprint:"),
    st.Page("ui/pages/coverage_dedup.py", title="Coverage & dedup", icon=":material/join_inner:"),
    st.Page("ui/pages/funnel.py", title="Funnel", icon=":material/filter_alt:"),
    st.Page(
        "ui/pages/freshness_delivery.py", title="Freshness & delivery", icon=":material/schedule:"
    ),
    st.Page("ui/pages/events.py", title="Events", icon=":material/list_alt:", url_path="events"),
    st.Page("ui/pages/reconcile.py", title="Reconcile", icon=":material/fact_check:"),
    st.Page("ui/pages/data.py", title="Data", icon=":material/upload_file:"),
]

ui.remember_opened_url()  # before any page link can be clicked
navigation = st.navigation(PAGES)
try:
    # One read of the store version per run keys every cached query below.
    ui.begin_run()
    # Every page obeys the same filters: draw them once, here, before the page runs.
    st.session_state["current_filters"] = ui.sidebar_filters()
    ui.period_notice()
    st.sidebar.caption(
        "Event Quality Monitor · Meta Pixel + Conversions API. EMQ values are estimates "
        "from the parameters sent, not Meta's score."
    )
    navigation.run()
finally:
    ui.end_run()
