"""Data: import a log (upload or path), import history, quarantined lines with reasons,
and the markers (what changed, and when: dashboard.store.markers) with their form.

Uploads are imported under the names they were uploaded with (dashboard.ingest.uploads);
the history and the quarantine are read through ui.import_log (dashboard.store.import_log).
"""

from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from dashboard.capture.relay import fetch_health
from dashboard.core import clock
from dashboard.ingest import IngestError
from dashboard.ingest.formats import FORMATS
from dashboard.ingest.uploads import ingest_uploads
from dashboard.store.database import StoreError
from dashboard.store.locks import retry_on_lock
from dashboard.store.markers import MAX_LABEL_CHARS, add_marker, delete_marker, list_markers
from dashboard.ui import shared as ui
from dashboard.ui.meta_panel import meta_upload_form

st.title("Data")
engine = ui.get_engine(ui.store_url())
st.caption(f"Store: {engine.dialect.name} · config: {ui.get_config().source_path}")

st.subheader("Import a log")
st.caption(
    "The format of each file is recognised from its first lines: "
    + "; ".join(fmt.title for fmt in FORMATS)
    + ". Importing the same lines twice adds nothing."
)
uploads = st.file_uploader(
    "Upload log files",
    type=["jsonl", "gz", "csv", "ndjson", "json", "log", "txt"],
    accept_multiple_files=True,
    key="upload_files",
)
path_text = st.text_input("…or a file, folder or glob on this machine", key="import_path")
left, right = st.columns(2)
if left.button(
    "Import", type="primary", key="btn_import", disabled=not (uploads or path_text.strip())
):
    try:
        with st.spinner("Importing…"):
            summary = ingest_uploads(
                [(upload.name, upload.getvalue()) for upload in uploads or []],
                engine,
                paths=[path_text.strip()] if path_text.strip() else [],
                config=ui.get_config(),
            )
        st.session_state["last_import"] = summary.to_text()
        st.cache_data.clear()
        ui.begin_run()
    except (IngestError, StoreError) as exc:
        st.error(str(exc))
if right.button("Import the bundled sample", key="btn_sample"):
    ui.import_sample()
if st.session_state.get("last_import"):
    st.code(st.session_state["last_import"], language=None)

meta_upload_form(engine, ui.get_config(), ui.distinct("dataset_id"))

st.subheader("Capture relay")
health = fetch_health()
if health is None:
    st.caption(
        "No capture relay answers at $EQM_RELAY_URL or 127.0.0.1:8787. Integrations that keep "
        'no log can send through one: see the README, "No log yet? Capture one".'
    )
else:
    if health["log_failures"]:
        st.error(
            f"The relay could not write {health['log_failures']:,} log records "
            f"({health['last_log_error']}). Every call was still forwarded to Meta and "
            "answered; the log lacks those calls until the folder is writable again."
        )
    cols = st.columns(4)
    cols[0].metric("Calls relayed", f"{health['calls']:,}")
    cols[1].metric("Log records written", f"{health['log_records']:,}")
    cols[2].metric(
        "Meta errors / timeouts", f"{health['upstream_errors']:,} / {health['timeouts']:,}"
    )
    p99 = health["upstream_latency_ms"]["p99"]
    cols[3].metric("Meta's answer, p99", "–" if p99 is None else f"{p99:,.0f} ms")
    st.caption(
        f"Logging to {health['log_dir']} since {health['started_at'][:16].replace('T', ' ')} UTC; "
        f"{health['mirrored_pixel_events']:,} Pixel events mirrored. Import the folder above "
        "(or keep `python -m dashboard ingest FOLDER --follow` running)."
    )

st.subheader("Import history")
ui.table(ui.import_log("import_history"), "imports", "import_history.csv", empty="No imports yet.")

st.subheader("Quarantined lines")
st.caption(
    "Lines, or single events of a line, that could not be imported, with the reason. "
    "“Event in line” is empty when the whole line was refused. The raw line is not kept: "
    "it may hold personal data."
)
reasons = ui.import_log("quarantine_reasons")
if reasons.empty:
    st.info("Nothing quarantined: every line read was imported.")
else:
    left, right = st.columns([1, 2])
    with left:
        ui.table(reasons, "quarantine_reasons", "quarantine_reasons.csv")
    with right:
        ui.table(ui.import_log("quarantined_lines"), "quarantine_lines", "quarantine.csv")

st.subheader("Markers")
st.caption(
    "What you changed, and when (a deploy, a fix): a dashed line on every time chart, and "
    "the days before and after it compared on the Overview. Also "
    '`python3 -m dashboard mark "what changed" --at 2026-12-01T10:00Z`.'
)
# The form's default time is fixed once per session: a default that moved every minute
# would make a new widget, and lose what was typed.
if "marker_default" not in st.session_state:
    st.session_state["marker_default"] = datetime.fromtimestamp(clock.now(), tz=UTC).replace(
        second=0, microsecond=0, tzinfo=None
    )
default_moment = st.session_state["marker_default"]
with st.form("marker_form", clear_on_submit=True):
    marker_label = st.text_input(
        "What changed",
        max_chars=MAX_LABEL_CHARS,
        placeholder="Hashed em on checkout",
        key="marker_label",
    )
    day_column, time_column = st.columns(2)
    marker_day = day_column.date_input("Date (UTC)", value=default_moment.date(), key="marker_day")
    marker_time = time_column.time_input(
        "Time (UTC)", value=default_moment.time(), key="marker_time"
    )
    add_clicked = st.form_submit_button("Add marker", key="btn_add_marker")
if add_clicked:
    try:
        added = add_marker(
            engine, marker_label, datetime.combine(marker_day, marker_time, UTC).timestamp()
        )
        st.success(f"Marker {added.id} added: {added.label} ({added.at_iso}).")
    except StoreError as exc:  # a MarkerError says what is wrong with the label or time
        st.error(str(exc))
markers = retry_on_lock(lambda: list_markers(engine))
if not markers:
    st.info("No markers yet.")
else:
    ui.table(
        pd.DataFrame(
            [{"marker": m.id, "time": m.at_iso, "label": m.label} for m in markers],
            columns=["marker", "time", "label"],
        ),
        "markers",
        "markers.csv",
    )
    by_id = {m.id: m for m in markers}
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    doomed = left.selectbox(
        "Marker to delete",
        list(by_id),
        format_func=lambda i: f"{i} · {by_id[i].label} · {by_id[i].at_iso}",
        key="marker_to_delete",
    )
    if right.button("Delete marker", key="btn_delete_marker"):
        retry_on_lock(lambda: delete_marker(engine, doomed))
        st.rerun()
