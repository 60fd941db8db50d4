"""Reconcile: an orders export or a CRM's stage changes against the server events that
reached Meta (the `reconcile` command's definitions, dashboard/quality/reconcile.py and
crm_reconcile.py): match rate per day and campaign, the missing and mismatched orders
with every row downloadable, and the stage table. Each run is stored for the Overview.

Exports are read by dashboard/ingest/orders.py and crm.py, which hash e-mails and phones
before anything else sees them: no plaintext reaches the store, the page or a download.
"""

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard.core import formatting as fmt
from dashboard.core.config import DATA_DIR
from dashboard.core.filters import epoch
from dashboard.ingest.crm import read_changes
from dashboard.ingest.orders import OrdersError, bad_rows_json, read_orders
from dashboard.outputs.charts import LAYOUT
from dashboard.quality.crm_reconcile import stages_against_store
from dashboard.quality.reconcile import findings_table, reconcile_against_store
from dashboard.store.reconciliations import latest_reconciliation, save_reconciliation
from dashboard.ui import shared as ui

st.title("Reconcile")
config = ui.get_config()
st.caption(
    "Your shop's orders, or your CRM's stage changes, against the server events that reached "
    "Meta: what both the Pixel and the Conversions API missed is invisible everywhere else. "
    "Orders and changes in the sidebar's period and datasets count; times without an offset "
    f"are read in {config.reconcile_timezone} ([reconcile] timezone in the config). "
    "E-mails and phones in an export are hashed as they are read and never stored or shown."
)
engine = ui.get_engine(ui.store_url())
filters = ui.current_filters()


def _source(kind: str, mappings: list[str]) -> tuple[str | None, bytes | Path | None, str]:
    """(name, content or path, column mapping) chosen on the page."""
    upload = st.file_uploader(f"Upload the {kind} export (CSV)", type=["csv"], key=f"up_{kind}")
    files = sorted(str(p.relative_to(DATA_DIR)) for p in DATA_DIR.rglob("*.csv"))
    left, right = st.columns(2)
    picked = left.selectbox(
        f"…or a CSV file in {DATA_DIR}", ["", *files], key=f"pick_{kind}", disabled=not files
    )
    columns = right.selectbox("Its columns", mappings, key=f"cols_{kind}")
    if upload is not None:
        return upload.name, upload.getvalue(), columns
    if picked:
        return picked, DATA_DIR / picked, columns
    return None, None, columns


def _read(reader, content: bytes | Path, name: str, columns: dict):
    # An upload is read from memory: its plaintext contact details never touch the disk.
    from zoneinfo import ZoneInfo

    return reader(content, columns, ZoneInfo(config.reconcile_timezone))


def _rate_chart(by_day: dict) -> go.Figure:
    days = list(by_day)
    fig = go.Figure(
        [
            go.Bar(
                x=days,
                y=[by_day[d]["matched"] for d in days],
                name="matched",
                marker_color="#1A7F37",
            ),
            go.Bar(
                x=days,
                y=[by_day[d]["orders"] - by_day[d]["matched"] for d in days],
                name="missing or rejected",
                marker_color="#D62728",
            ),
        ]
    )
    fig.update_layout(title="Orders per day: reached Meta or not", barmode="stack", **LAYOUT)
    return fig


def _groups(groups: dict, key: str) -> pd.DataFrame:
    return pd.DataFrame([{key: name, **values} for name, values in groups.items()])


def _orders_result(result: dict, rows: list | None) -> None:
    for text in result.get("warnings", []):
        st.warning(text)
    rate = result["match_rate"]
    cols = st.columns(5)
    cols[0].metric("Orders", fmt.compact(result["orders"]))
    cols[1].metric("Reached Meta", "–" if rate is None else f"{rate:.1%}")
    cols[2].metric("Missing", fmt.compact(result["missing"]))
    cols[3].metric("Rejected by Meta", fmt.compact(result["rejected"]))
    mismatched = result["value_mismatch"] + result["currency_mismatch"]
    cols[4].metric("Value or currency wrong", fmt.compact(mismatched))
    st.caption(
        f"Late (first send over {config.reconcile_late_after_s / 3600:g} h after the order): "
        f"{result['late']:,} · sent twice: {result['sent_twice']:,} · sent under another id "
        f"(same hashed e-mail, another event id): {result['sent_under_another_id']:,}"
    )
    left, right = st.columns(2)
    left.plotly_chart(_rate_chart(result["by_day"]), key="chart_reconcile_days")
    with right:
        st.markdown("**Per campaign** (an order that did not reach Meta has no campaign: unknown)")
        ui.table(
            _groups(result["by_campaign"], "campaign"),
            "reconcile_campaigns",
            "reconcile_campaigns.csv",
        )
    st.subheader("Orders that did not reach Meta, or arrived wrong")
    if rows is None:
        st.caption("Run the reconciliation again to list the orders (the stored run keeps counts).")
    else:
        ui.table(
            findings_table(rows),
            "reconcile_findings",
            "reconcile_findings.csv",
            empty="Every order reached Meta as sent.",
        )
    if result.get("bad_rows"):
        st.markdown("**Rows of the export that are not orders**")
        ui.table(pd.DataFrame(result["bad_rows"]), "reconcile_bad_rows", "reconcile_bad_rows.csv")


def _crm_result(result: dict) -> None:
    for text in result.get("warnings", []):
        st.warning(text)
    table = pd.DataFrame(
        [{"stage": stage, **values} for stage, values in result["by_stage"].items()]
    )
    cols = st.columns(4)
    cols[0].metric("Stage changes", fmt.compact(result["changes"]))
    cols[1].metric("Sent to Meta", fmt.compact(result["sent"]))
    cols[2].metric("Missing", fmt.compact(result["missing"]))
    cols[3].metric("Late", fmt.compact(result["late"]))
    ui.table(
        table,
        "reconcile_stages",
        "reconcile_stages.csv",
    )
    missing = pd.DataFrame(result["missing_changes"]["changes"], columns=["lead_id", "stage"])
    st.markdown(f"**Stage changes never sent** ({result['missing_changes']['count']:,})")
    ui.table(missing, "reconcile_missing_changes", "reconcile_missing_changes.csv", empty="None.")
    if result.get("bad_rows"):
        ui.table(pd.DataFrame(result["bad_rows"]), "crm_bad_rows", "crm_bad_rows.csv")


def _in_period(rows: list, when) -> list:
    """The rows inside the sidebar's period (all of them without one)."""
    start = epoch(filters.since) if filters.since else float("-inf")
    end = epoch(filters.until) + 86_400 if filters.until else float("inf")
    kept = [row for row in rows if start <= when(row) < end]
    if rows and not kept:
        st.warning(
            f"The export holds {len(rows):,} rows, none in this period "
            f"({ui.describe(filters)}): choose another period in the sidebar, e.g. All data."
        )
    return kept


def _stored_note(stored: dict) -> None:
    ran = datetime.fromtimestamp(stored["ran_at"], tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
    st.caption(f"Latest run: {stored['source_name']}, {ran}.")


def _run(kind: str, reader, content, name: str, columns: dict, when, against) -> None:
    """Read the chosen export, reconcile the rows in the period, store and keep the result."""
    try:
        read = _read(reader, content, name, columns)
    except OrdersError as exc:
        st.error(str(exc))
        return
    rows = read.orders if kind == "orders" else read.changes
    summary, found = against(engine, _in_period(rows, when), config, filters.datasets)
    result = {**summary, "bad_rows": bad_rows_json(read.bad_rows)}
    save_reconciliation(engine, kind, name, result)
    st.session_state[f"reconcile_{kind}"] = (result, found)


tab_orders, tab_crm = st.tabs(["Orders", "CRM stages"])
with tab_orders:
    name, content, mapping = _source("orders", sorted(config.reconcile_columns))
    if st.button("Reconcile the orders", key="btn_reconcile_orders", disabled=content is None):
        columns = config.reconcile_columns[mapping]
        when = lambda order: order.created_at  # noqa: E731
        _run("orders", read_orders, content, name, columns, when, reconcile_against_store)
    if "reconcile_orders" in st.session_state:
        _orders_result(*st.session_state["reconcile_orders"])
    elif stored := latest_reconciliation(engine, "orders"):
        _stored_note(stored)
        _orders_result(stored, None)

with tab_crm:
    name, content, mapping = _source("crm", sorted(config.crm_columns))
    st.caption(
        "Stage → event name: "
        + ", ".join(f"{stage} → {event}" for stage, event in config.crm_stage_events.items())
        + " ([reconcile.crm.stages] in the config)."
    )
    if st.button("Reconcile the stage changes", key="btn_reconcile_crm", disabled=content is None):
        columns = config.crm_columns[mapping]
        when = lambda change: change.changed_at  # noqa: E731
        _run("crm", read_changes, content, name, columns, when, stages_against_store)
    if "reconcile_crm" in st.session_state:
        _crm_result(st.session_state["reconcile_crm"][0])
    elif stored := latest_reconciliation(engine, "crm"):
        _stored_note(stored)
        _crm_result(stored)
