"""The Match quality page's section on Meta's own numbers (Dataset Quality API snapshots)
beside ours: EMQ with the difference and the calibration, history charts, match keys,
dedup keys, and Meta's diagnostics next to ours. Streamlit only; the tables come from
dashboard/quality/meta_tables.py and the charts from dashboard/outputs/meta_charts.py.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from dashboard.core.config import Config
from dashboard.core.filters import Filters
from dashboard.core.meta_quality import SAMPLE_AGENT
from dashboard.outputs import meta_charts
from dashboard.quality.meta_compare import newest_per_event
from dashboard.quality.meta_tables import (
    dedup_key_table,
    emq_table,
    history_frame,
    match_key_table,
    meta_diagnostics_table,
)
from dashboard.ui import shared as ui

HOW_TO_IMPORT = (
    "Import a saved answer with `python -m dashboard meta import FILE --dataset ID`, or "
    "fetch one with `python -m dashboard meta fetch --dataset ID` (token in "
    "META_ACCESS_TOKEN); the README's *Meta's numbers beside ours* says how."
)


def _calibration_caption(calibration) -> str:
    if not calibration.calibrated:
        return f"Our estimate is **uncalibrated**: {calibration.reason}."
    fitted = datetime.fromtimestamp(calibration.fitted_at, tz=UTC).strftime("%Y-%m-%d %H:%M")
    return (
        f"**Calibrated** on {len(calibration.points)} snapshots (fitted {fitted} UTC): "
        f"Meta ≈ {calibration.intercept:.2f} + {calibration.slope:.2f} × our estimate. "
        f"Mean distance from Meta's score: {calibration.mae_raw:.2f} points raw, "
        f"{calibration.mae_calibrated:.2f} calibrated."
    )


def _newest(comparisons: list) -> list:
    keep = {
        (s.dataset_id, s.event_name, s.fetched_at)
        for s in newest_per_event(c.snapshot for c in comparisons)
    }
    return [
        c
        for c in comparisons
        if (c.snapshot.dataset_id, c.snapshot.event_name, c.snapshot.fetched_at) in keep
    ]


def show_meta_numbers(filters: Filters, config: Config, diagnostics: list[dict]) -> None:
    """The section; `diagnostics` are ours for the same slice (the Overview's list)."""
    st.subheader("Meta's numbers beside ours")
    comparisons = ui.meta_query("meta_comparisons", filters)
    if not comparisons:
        st.info(f"No snapshot of Meta's Dataset Quality API in this period. {HOW_TO_IMPORT}")
        return
    if any(c.snapshot.agent == SAMPLE_AGENT for c in comparisons):
        st.warning(
            "These snapshots are the bundled sample's synthetic answers, not Meta's: "
            "they show how the comparison reads."
        )
    calibration = ui.meta_query("meta_calibration", filters)
    newest = _newest(comparisons)
    st.caption(
        "Meta's EMQ is its own score (last 48 h of server events); ours is estimated from the "
        "parameters sent, over the same 48 h before each snapshot. Coverage: Meta's 7-day "
        "average beside ours over the 7 days before. A gap of more than 2 points usually "
        "means a hashing or normalisation fault our counts cannot see. "
        + _calibration_caption(calibration)
    )
    ui.table(
        emq_table(newest, calibration),
        "meta_emq",
        "meta_vs_ours.csv",
        column_config={
            "emq_difference": st.column_config.NumberColumn(format="%+.2f"),
            "finding": st.column_config.TextColumn(width=300),
        },
    )
    history = history_frame(comparisons, calibration)
    left, right = st.columns(2)
    left.plotly_chart(meta_charts.emq_history(history), key="chart_meta_emq")
    right.plotly_chart(
        meta_charts.coverage_history(history, config.coverage_goal), key="chart_meta_coverage"
    )
    tab_keys, tab_dedup, tab_diag = st.tabs(["Match keys", "Dedup keys", "Diagnostics"])
    with tab_keys:
        ui.table(match_key_table(newest), "meta_keys", "meta_match_keys.csv")
    with tab_dedup:
        ui.table(dedup_key_table(newest), "meta_dedup", "meta_dedup_keys.csv")
    with tab_diag:
        left, right = st.columns(2)
        with left:
            st.markdown("**Meta's diagnostics** (newest snapshot per event)")
            ui.table(
                meta_diagnostics_table(newest),
                "meta_diagnostics",
                "meta_diagnostics.csv",
                column_config={"diagnostic": st.column_config.TextColumn(width=220)},
                empty="Meta lists no diagnostic.",
            )
        with right:
            st.markdown("**Ours** (this selection)")
            ours = pd.DataFrame(diagnostics, columns=["name", "affected", "total", "share"])
            ui.table(
                ours,
                "our_diagnostics",
                "diagnostics.csv",
                column_config={"name": st.column_config.TextColumn(width=220)},
                empty="No problems found.",
            )


def meta_upload_form(engine, config: Config, datasets: list[str]) -> None:
    """The Data page's form: store a saved Dataset Quality API answer (the CLI's
    `meta import`), then refit the calibration."""
    from dashboard.core.meta_quality import MetaAnswerError, parse_answer
    from dashboard.quality.meta_compare import calibrate
    from dashboard.store.meta_snapshots import load_snapshots, store_snapshots

    st.subheader("Import Meta's numbers")
    st.caption(
        "A saved answer of Meta's Dataset Quality API (GET /dataset_quality?dataset_id=…, "
        "JSON with a `web` list): its EMQ, coverage, dedup keys and diagnostics then sit "
        "beside ours on Match quality. The answer does not name its dataset: choose it."
    )
    answer = st.file_uploader("Dataset Quality API answer", type=["json"], key="upload_meta")
    left, middle, right = st.columns(3)
    dataset = left.selectbox(
        "Dataset",
        datasets,
        key="meta_dataset",
        accept_new_options=True,
        index=0 if datasets else None,
    )
    now = datetime.now(tz=UTC)
    day = middle.date_input("Fetched on (UTC)", value=now.date(), key="meta_day")
    moment = right.time_input(
        "at (UTC)", value=now.time().replace(second=0, microsecond=0), key="meta_time"
    )
    if st.button("Store the snapshot", key="btn_meta_import", disabled=not (answer and dataset)):
        at = datetime.combine(day, moment, tzinfo=UTC).timestamp()
        try:
            snapshots = parse_answer(answer.getvalue(), str(dataset), at)
        except MetaAnswerError as exc:
            st.error(f"{answer.name}: {exc}; nothing stored")
            return
        # The same answer uploaded twice is one snapshot, whatever time the form says.
        stored = {
            (s.event_name, s.raw_json()): s.fetched_at
            for s in load_snapshots(engine, [str(dataset)])
        }
        again = [stored.get((s.event_name, s.raw_json())) for s in snapshots]
        if all(at is not None for at in again):
            when = datetime.fromtimestamp(max(again), tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
            st.info(f"This answer is stored already for dataset {dataset} (at {when}).")
            return
        added = store_snapshots(engine, snapshots)
        fit = calibrate(engine, config) if added else None
        message = f"{added} event name(s) stored for dataset {dataset}"
        if added < len(snapshots):
            message += f", {len(snapshots) - added} already there"
        if fit is not None:
            message += (
                f". Calibrated on {len(fit.points)} snapshots."
                if fit.calibrated
                else f". Estimate uncalibrated: {fit.reason}."
            )
        st.success(message)
