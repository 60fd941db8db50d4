"""Data: import a log (upload or path), import history, quarantined lines with reasons.

Uploads are imported under the names they were uploaded with (dashboard.ingest.uploads);
the history and the quarantine are read through ui.import_log (dashboard.store.import_log).
"""

import streamlit as st

from dashboard.capture.relay import fetch_health
from dashboard.ingest import IngestError
from dashboard.ingest.formats import FORMATS
from dashboard.ingest.uploads import ingest_uploads
from dashboard.store.database import StoreError
from dashboard.ui import shared as ui

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
