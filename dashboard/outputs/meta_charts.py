"""Charts of Meta's own numbers beside ours: EMQ and event coverage per event over the
Dataset Quality API snapshots (`quality.meta_tables.history_frame`).

Owns their look: one colour per event name, Meta's figure a solid line with dots, ours
(over the same window before each snapshot) a dashed line of the same colour, on the
same axis, so the gap between them reads at a glance. No Streamlit, no database.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

from dashboard.outputs.charts import GOAL_COLOR, LAYOUT

PALETTE = qualitative.D3


def _empty(title: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text="No Meta snapshot in this selection", showarrow=False)
    fig.update_layout(title=title, xaxis={"visible": False}, yaxis={"visible": False}, **LAYOUT)
    return fig


def _history(
    history: pd.DataFrame, meta: str, ours: str, title: str, axis: dict, goal: float | None
) -> go.Figure:
    if history.empty or history[meta].isna().all():
        return _empty(title)
    fig = go.Figure()
    for index, (name, part) in enumerate(history.groupby("event_name", sort=True)):
        color = PALETTE[index % len(PALETTE)]
        fig.add_trace(
            go.Scatter(
                x=part["snapshot_time"],
                y=part[meta],
                name=str(name),
                legendgroup=name,
                mode="lines+markers",
                line={"color": color, "width": 2.5},
            )
        )
        fig.add_trace(
            go.Scatter(
                x=part["snapshot_time"],
                y=part[ours],
                name=f"{name} (ours)",
                legendgroup=name,
                showlegend=False,  # one legend entry per event toggles both lines
                mode="lines+markers",
                line={"color": color, "width": 1.5, "dash": "dash"},
                marker={"symbol": "circle-open"},
            )
        )
    if goal is not None:
        fig.add_hline(y=goal, line_dash="dot", line_color=GOAL_COLOR, annotation_text="goal")
    # The legend on the right: one entry per event, as many as the slice has, never over
    # the title.
    layout = {
        **LAYOUT,
        "height": 440,
        "margin": {"l": 10, "r": 10, "t": 60, "b": 40},
        "legend": {"orientation": "v", "x": 1.02, "y": 1, "yanchor": "top"},
    }
    fig.update_layout(title=title, yaxis=axis, hovermode="x unified", **layout)
    return fig


def emq_history(history: pd.DataFrame) -> go.Figure:
    """Meta's EMQ per event over the snapshots, and our estimate over the 48 h before each."""
    return _history(
        history,
        "meta_emq",
        "our_emq_estimate",
        "EMQ: Meta (solid) and our estimate (dashed)",
        {"range": [0, 10.2], "title": "score (0-10)"},
        None,
    )


def coverage_history(history: pd.DataFrame, goal: float) -> go.Figure:
    """Meta's event coverage per event over the snapshots, and ours over the 7 days before."""
    return _history(
        history,
        "meta_event_coverage",
        "our_event_coverage_7d",
        "Event coverage: Meta (solid) and ours (dashed)",
        {"range": [0, 1.02], "tickformat": ".0%", "title": "coverage"},
        goal,
    )
