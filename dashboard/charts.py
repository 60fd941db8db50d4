"""Plotly figure builders: indicator frames in, figures out. No Streamlit, no database.

Owns the look of every chart (colours per channel, tier and dedup status, goal lines),
so the dashboard and the HTML report draw the same pictures.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from dashboard.config import Config
from dashboard.params import PARAMS
from dashboard.store import DEDUP_STATUSES

CHANNEL_COLORS = {"browser": "#4C78A8", "server": "#F58518"}
TIER_COLORS = {
    "Poor": "#D62728",
    "OK": "#FF9F1C",
    "Good": "#7FBF3F",
    "Great": "#1A7F37",
    "No data": "#9E9E9E",
}
STATUS_COLORS = {
    "deduplicated": "#1A7F37",
    "fallback_deduplicated": "#7FBF3F",
    "same_channel_repeat": "#9E9E9E",
    "server_only": "#F58518",
    "browser_only": "#4C78A8",
    "outside_48h": "#B279A2",
    "missing_event_id": "#D62728",
}
GOAL_COLOR = "#333333"
LAYOUT = {
    "margin": {"l": 10, "r": 10, "t": 50, "b": 40},
    "height": 400,
    "legend": {"orientation": "h", "yanchor": "top", "y": -0.2, "x": 0},
    "font": {"size": 13},
}


def _empty(title: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text="No events in this selection", showarrow=False, font={"size": 16})
    fig.update_layout(title=title, xaxis={"visible": False}, yaxis={"visible": False}, **LAYOUT)
    return fig


def volume_bars(frame: pd.DataFrame, by: str, title: str = "Browser vs server events") -> go.Figure:
    """Grouped bars of accepted browser and server events per group."""
    if frame.empty:
        return _empty(title)
    fig = go.Figure(
        [
            go.Bar(
                name="browser (Pixel)",
                x=frame[by].astype(str),
                y=frame["browser_events"],
                marker_color=CHANNEL_COLORS["browser"],
            ),
            go.Bar(
                name="server (CAPI)",
                x=frame[by].astype(str),
                y=frame["server_events"],
                marker_color=CHANNEL_COLORS["server"],
            ),
        ]
    )
    fig.update_layout(title=title, barmode="group", yaxis_title="events", **LAYOUT)
    return fig


def coverage_bars(
    frame: pd.DataFrame, by: str, goal: float, title: str = "Event coverage"
) -> go.Figure:
    """Event coverage per group (0-100%) against Meta's goal line."""
    data = frame[frame["browser_events"] > 0]
    if data.empty:
        return _empty(title)
    colors = ["#1A7F37" if v >= goal else "#D62728" for v in data["event_coverage"].fillna(0)]
    fig = go.Figure(
        [
            go.Bar(
                name="by event_id",
                x=data[by].astype(str),
                y=data["event_coverage"],
                marker_color=colors,
                hovertemplate="%{x}: %{y:.1%}<extra>event_id</extra>",
            ),
            go.Scatter(
                name="any dedup key",
                x=data[by].astype(str),
                y=data["event_coverage_any_key"],
                mode="markers",
                marker={"symbol": "diamond", "size": 10, "color": GOAL_COLOR},
                hovertemplate="%{x}: %{y:.1%}<extra>any key</extra>",
            ),
        ]
    )
    fig.add_hline(
        y=goal, line_dash="dash", line_color=GOAL_COLOR, annotation_text=f"goal {goal:.0%}"
    )
    fig.update_layout(title=title, yaxis={"tickformat": ".0%", "range": [0, 1.05]}, **LAYOUT)
    return fig


def dedup_stacked(
    frame: pd.DataFrame, by: str, channel: str = "server", title: str | None = None
) -> go.Figure:
    """Stacked bars of dedup statuses per group for one channel."""
    title = title or f"Dedup status of {channel} events"
    columns = [f"dedup__{channel}__{s}" for s in DEDUP_STATUSES]
    if frame.empty or frame[columns].to_numpy().sum() == 0:
        return _empty(title)
    fig = go.Figure(
        [
            go.Bar(
                name=status,
                x=frame[by].astype(str),
                y=frame[f"dedup__{channel}__{status}"],
                marker_color=STATUS_COLORS[status],
            )
            for status in DEDUP_STATUSES
            if frame[f"dedup__{channel}__{status}"].sum() > 0
        ]
    )
    fig.update_layout(title=title, barmode="stack", yaxis_title="events", **LAYOUT)
    return fig


def coverage_heatmap(frame: pd.DataFrame, by: str, title: str = "Parameter coverage") -> go.Figure:
    """Heatmap of valid-parameter share (0-1): groups x parameters seen at least once."""
    params = [p for p in PARAMS if p in frame.columns and frame[p].fillna(0).sum() > 0]
    if frame.empty or not params:
        return _empty(title)
    z = frame[params].to_numpy(dtype=float)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=params,
            y=frame[by].astype(str),
            zmin=0,
            zmax=1,
            colorscale="RdYlGn",
            text=[[f"{v:.0%}" for v in row] for row in z],
            texttemplate="%{text}",
            hovertemplate="%{y} · %{x}: %{z:.1%}<extra></extra>",
            colorbar={"tickformat": ".0%"},
        )
    )
    fig.update_layout(title=title, **{**LAYOUT, "height": max(300, 60 + 32 * len(frame))})
    return fig


def emq_bars(
    frame: pd.DataFrame, by: str, config: Config, title: str = "EMQ estimate"
) -> go.Figure:
    """EMQ estimate per group, coloured by tier, with the tier cut-offs."""
    from dashboard.indicators import tier

    data = frame[frame["server_sent"] > 0]
    if data.empty:
        return _empty(title)
    tiers = [tier(v, config) for v in data["emq_estimate"]]
    fig = go.Figure(
        go.Bar(
            x=data[by].astype(str),
            y=data["emq_estimate"],
            marker_color=[TIER_COLORS[t] for t in tiers],
            text=tiers,
            hovertemplate="%{x}: %{y:.1f} (%{text})<extra></extra>",
        )
    )
    _tier_lines(fig, config)
    fig.update_layout(title=title + " (estimate, 0-10)", yaxis={"range": [0, 10.2]}, **LAYOUT)
    return fig


def _tier_lines(fig: go.Figure, config: Config) -> None:
    for name, cut in (
        ("OK", config.emq_tiers["ok"]),
        ("Good", config.emq_tiers["good"]),
        ("Great", config.emq_tiers["great"]),
    ):
        fig.add_hline(
            y=cut,
            line_dash="dot",
            line_color=TIER_COLORS[name],
            annotation_text=f"{name} ≥ {cut:g}",
            annotation_position="top left",
        )


def emq_trend(
    daily: pd.DataFrame, config: Config, title: str = "EMQ estimate per day"
) -> go.Figure:
    """Daily EMQ estimate (lines per group if a 'group' column exists)."""
    data = daily[daily["server_sent"] > 0]
    if data.empty:
        return _empty(title)
    fig = go.Figure()
    groups = data.groupby("group") if "group" in data.columns else [("all events", data)]
    for name, part in groups:
        fig.add_trace(
            go.Scatter(
                x=part["event_day"], y=part["emq_estimate"], mode="lines+markers", name=str(name)
            )
        )
    _tier_lines(fig, config)
    fig.update_layout(title=title, yaxis={"range": [0, 10.2]}, **LAYOUT)
    return fig


def daily_volume(daily: pd.DataFrame, title: str = "Events per day") -> go.Figure:
    """Browser and server events per day."""
    if daily.empty:
        return _empty(title)
    fig = go.Figure(
        [
            go.Scatter(
                x=daily["event_day"],
                y=daily["browser_events"],
                name="browser (Pixel)",
                line_color=CHANNEL_COLORS["browser"],
            ),
            go.Scatter(
                x=daily["event_day"],
                y=daily["server_events"],
                name="server (CAPI)",
                line_color=CHANNEL_COLORS["server"],
            ),
            go.Bar(
                x=daily["event_day"],
                y=daily["server_rejected_by_meta"],
                name="server rejected",
                marker_color="#D62728",
                opacity=0.6,
            ),
        ]
    )
    fig.update_layout(title=title, yaxis_title="events", **LAYOUT)
    return fig


def funnel_chart(stages: pd.DataFrame, order: list[str], title: str) -> go.Figure:
    """Funnel of distinct people per stage, in the funnel's order."""
    data = stages.set_index("funnel_stage").reindex(order).dropna(subset=["people"])
    if data.empty:
        return _empty(title)
    fig = go.Figure(
        go.Funnel(
            y=list(data.index),
            x=data["people"],
            textinfo="value+percent initial",
            marker={"color": "#4C78A8"},
        )
    )
    fig.update_layout(title=title, **LAYOUT)
    return fig


def lag_box(sample: pd.DataFrame, title: str = "Lag from event to sending, per stage") -> go.Figure:
    """Box plot of lags (hours) per stage from a bounded sample."""
    if sample.empty:
        return _empty(title)
    fig = go.Figure()
    for stage, part in sample.groupby("funnel_stage"):
        fig.add_trace(go.Box(y=part["lag_s"] / 3600, name=str(stage), boxpoints=False))
    fig.add_hline(y=1, line_dash="dash", line_color=GOAL_COLOR, annotation_text="1 h")
    fig.update_layout(title=title, yaxis_title="hours", showlegend=False, **LAYOUT)
    return fig


def errors_over_time(errors: pd.DataFrame, title: str = "Rejected events by error") -> go.Figure:
    """Stacked daily bars of rejected events per error code."""
    if errors.empty:
        return _empty(title)
    data = errors.assign(
        error=errors["error_code"].astype("string").fillna("?")
        + " / "
        + errors["error_subcode"].astype("string").fillna("-")
        + " "
        + errors["error_message"].str.slice(0, 40)
    )
    fig = go.Figure(
        [
            go.Bar(name=name, x=part["event_day"], y=part["events"])
            for name, part in data.groupby("error")
        ]
    )
    fig.update_layout(title=title, barmode="stack", yaxis_title="events", **LAYOUT)
    return fig
