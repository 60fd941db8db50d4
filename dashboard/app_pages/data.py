"""Data: import a log (upload or path), import history, quarantined lines with reasons."""

import tempfile
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
import streamlit as st

from dashboard import ui
from dashboard.capture.relay import fetch_health
from dashboard.ingest import IngestError, ingest
from dashboard.ingest.formats import FORMATS
from dashboard.store import StoreError, imports, quarantine

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
        with tempfile.TemporaryDirectory() as folder:
            paths = []
            for upload in uploads or []:
                target = Path(folder) / Path(upload.name).name
                target.write_bytes(upload.getvalue())
                paths.append(str(target))
            if path_text.strip():
                paths.append(path_text.strip())
            with st.spinner("Importing…"):
                summary = ingest(paths, engine, config=ui.get_config())
            # Uploads are named as the person named them, not by the temporary folder.
            text = summary.to_text().replace(str(Path(folder).resolve()) + "/", "upload: ")
        st.session_state["last_import"] = text
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
with engine.connect() as connection:
    history = pd.DataFrame(
        connection.execute(sa.select(imports).order_by(imports.c.import_id.desc()).limit(200))
        .mappings()
        .all()
    )
if not history.empty:
    for column in ("started_at", "finished_at"):
        history[column] = pd.to_datetime(history[column], unit="s", utc=True)
ui.table(history, "imports", "import_history.csv")

st.subheader("Quarantined lines")
st.caption(
    "Lines (idx -1) or single events that could not be imported, with the reason. The raw line is not kept: it may hold personal data."
)
with engine.connect() as connection:
    reasons = pd.DataFrame(
        connection.execute(
            sa.select(quarantine.c.reason, sa.func.count().label("count"))
            .group_by(quarantine.c.reason)
            .order_by(sa.func.count().desc())
        )
        .mappings()
        .all()
    )
    lines = pd.DataFrame(
        connection.execute(
            sa.select(
                quarantine.c.path,
                quarantine.c.line_no,
                quarantine.c.idx,
                quarantine.c.reason,
                quarantine.c.detail,
            )
            .order_by(quarantine.c.path, quarantine.c.line_no, quarantine.c.idx)
            .limit(5000)
        )
        .mappings()
        .all()
    )
left, right = st.columns([1, 2])
with left:
    ui.table(reasons, "quarantine_reasons", "quarantine_reasons.csv")
with right:
    ui.table(lines, "quarantine_lines", "quarantine.csv")
