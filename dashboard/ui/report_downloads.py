"""The Overview's "Export the report" section: the client report for the current filters,
in each format, built only when its button is clicked."""

from __future__ import annotations

import streamlit as st

from dashboard.core.filters import Filters
from dashboard.ui.shared import get_config, get_engine, store_url, with_retry


def report_bytes(filters: Filters, form: str, appendix: bool = False) -> bytes:
    """The full report for the current filters in one format (built when clicked)."""
    from dashboard.outputs import documents as reports

    engine = get_engine(store_url())
    config = get_config()
    return with_retry(
        lambda: reports.render(reports.collect(engine, filters, config, appendix=appendix), form)
    )


def report_downloads(filters: Filters) -> None:
    """Download buttons for the report to send: HTML, PDF (needs Chromium), Excel, CSV zip."""
    from dashboard.outputs import documents as reports

    st.subheader("Export the report")
    st.caption(
        "A report to send to a client or a colleague, for the current filters: a first page "
        "in plain words (headline numbers, what is good, what to fix first), then campaigns, "
        "stages, the funnel, match keys per event, delivery and every finding. The HTML works "
        "offline from an e-mail attachment; the Excel and CSV versions hold every row. Title, "
        "client name and logo come from [report] in the config."
    )
    appendix = st.checkbox(
        "Add the event-level dedup gap list (first 200 rows)",
        key="report_appendix",
        help="For the developer who fixes tracking; the whole list is the gap-list download "
        "on Coverage & dedup.",
    )
    labels_ = {"html": "HTML", "pdf": "PDF", "xlsx": "Excel", "csv": "CSV (zip)"}
    for col, form in zip(st.columns(4), reports.FORMATS, strict=True):
        unavailable = form == "pdf" and reports.find_chromium() is None
        col.download_button(
            f"Report ({labels_[form]})",
            data=(lambda form=form: report_bytes(filters, form, appendix)),
            file_name=reports.default_file_name(form),
            mime=reports.MIME_TYPES[form],
            key=f"dl_report_{form}",
            disabled=unavailable,
            help="PDF needs Chromium (apt-get install chromium)" if unavailable else None,
        )
