"""Plotly figure builders: indicator frames in, figures out. No Streamlit, no database.

Owns the look of every chart (colours per channel, tier and dedup status, goal lines),
so the dashboard and the HTML report draw the same pictures.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime

import pandas as pd
import plotly.graph_objects as go

from dashboard.core import meta_errors
from dashboard.core.config import Config
from dashboard.core.definitions import DEDUP_STATUSES
from dashboard.core.measures import LOWER_IS_BETTER, Measure
from dashboard.core.params import PARAMS
from dashboard.store.markers import Marker

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
# Rejected batches: token/permission errors stop every batch until someone acts, so
# they stand out in warm colours; other errors stay in greys.
ERROR_WARNING_COLORS = ["#D62728", "#F58518", "#A4161A", "#FF9F1C"]
ERROR_NEUTRAL_COLORS = ["#5B6770", "#9AA5B1", "#3E4A56", "#C3CBD3", "#7B8794"]
LAYOUT = {
    # The title at the very top, the legend between it and the plot (two rows fit the
    # margin): below the plot, a legend covered rotated group names.
    "margin": {"l": 10, "r": 10, "t": 110, "b": 40},
    **{"title_y": 0.97, "title_yanchor": "top", "height": 400},
    "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
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


BY_DESIGN = "server-only by design"
BY_DESIGN_COLOR = "#CFCFCF"


def dedup_stacked(
    frame: pd.DataFrame, by: str, channel: str = "server", title: str | None = None
) -> go.Figure:
    """Stacked bars of dedup statuses per group for one channel.

    Server events that cannot have a browser twin (CRM, messaging, offline, configured
    stages) are one neutral grey segment, "server-only by design", not an orange gap.
    """
    title = title or f"Dedup status of {channel} events"
    columns = [f"dedup__{channel}__{s}" for s in DEDUP_STATUSES]
    if frame.empty or frame[columns].to_numpy().sum() == 0:
        return _empty(title)
    x = frame[by].astype(str)
    by_design = pd.Series(0, index=frame.index)
    if channel == "server" and f"by_design__{DEDUP_STATUSES[0]}" in frame:
        by_design = sum(frame[f"by_design__{s}"] for s in DEDUP_STATUSES)
    bars = []
    for status in DEDUP_STATUSES:
        counts = frame[f"dedup__{channel}__{status}"]
        if channel == "server" and f"by_design__{status}" in frame:
            counts = counts - frame[f"by_design__{status}"]
        if counts.sum() > 0:
            bars.append(
                go.Bar(
                    name=status.replace("_", " "),
                    x=x,
                    y=counts,
                    marker_color=STATUS_COLORS[status],
                )
            )
    if by_design.sum() > 0:
        bars.append(go.Bar(name=BY_DESIGN, x=x, y=by_design, marker_color=BY_DESIGN_COLOR))
    fig = go.Figure(bars)
    # Up to seven statuses: a legend of three or four rows needs a taller top margin.
    layout = dict(LAYOUT, margin=dict(LAYOUT["margin"], t=60 + 22 * ((len(bars) + 1) // 2)))
    fig.update_layout(title=title, barmode="stack", yaxis_title="events", **layout)
    return fig


def coverage_heatmap(frame: pd.DataFrame, by: str, title: str = "Parameter coverage") -> go.Figure:
    """Heatmap of valid-parameter share (0-1): groups x parameters.

    Every parameter that can apply to some group is a column, at 0% where it was never
    sent (a filter never hides a missing parameter); a cell whose group cannot carry
    the parameter is NaN and shows as a grey "n/a", never as a red 0%.
    """
    params = [p for p in PARAMS if p in frame.columns and frame[p].notna().any()]
    if frame.empty or not params:
        return _empty(title)
    z = frame[params].to_numpy(dtype=float)
    text = [["n/a" if v != v else f"{v:.0%}" for v in row] for row in z]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=params,
            y=frame[by].astype(str),
            zmin=0,
            zmax=1,
            colorscale="RdYlGn",
            text=text,
            texttemplate="%{text}",
            hovertemplate="%{y} · %{x}: %{text}<extra></extra>",
            colorbar={"tickformat": ".0%"},
            hoverongaps=False,
        )
    )
    layout = {**LAYOUT, "height": max(300, 60 + 32 * len(frame))}
    fig.update_layout(title=title, plot_bgcolor=NOT_APPLICABLE_COLOR, **layout)
    fig.update_xaxes(showgrid=False, tickangle=-45)
    fig.update_yaxes(showgrid=False)
    return fig


NOT_APPLICABLE_COLOR = "#E0E0E0"


def emq_bars(
    frame: pd.DataFrame, by: str, config: Config, title: str = "EMQ estimate"
) -> go.Figure:
    """EMQ estimate per group as horizontal bars (names read level, however long or many),
    coloured by tier and labelled with it, with the tier cut-offs labelled above the plot."""
    from dashboard.quality.emq import tier

    data = frame[frame["server_sent"] > 0]
    if data.empty:
        return _empty(title)
    tiers = [tier(v, config) for v in data["emq_estimate"]]
    fig = go.Figure(
        go.Bar(
            y=data[by].astype(str),
            x=data["emq_estimate"],
            orientation="h",
            marker_color=[TIER_COLORS[t] for t in tiers],
            text=[f"{v:.1f} {t}" for v, t in zip(data["emq_estimate"], tiers, strict=True)],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{y}: %{x:.1f}<extra></extra>",
        )
    )
    _tier_lines(fig, config, vertical=True)
    layout = dict(LAYOUT, height=max(260, 110 + 24 * len(data)))
    layout["margin"] = dict(LAYOUT["margin"], r=70)
    fig.update_layout(
        title=title + " (estimate, 0-10)",
        xaxis={"range": [0, 10.2]},
        yaxis={"autorange": "reversed", "automargin": True},
        **layout,
    )
    return fig


def _tier_lines(fig: go.Figure, config: Config, *, vertical: bool = False) -> None:
    """The tier cut-offs as dotted lines labelled outside the plot: no bar hides a label.
    Above a plot, each label a step higher: long group names leave a narrow plot."""
    for step, name in enumerate(("OK", "Good", "Great")):
        cut = config.emq_tiers[name.lower()]
        line = {"line_dash": "dot", "line_color": TIER_COLORS[name]}
        label = {"text": f"{name} ≥ {cut:g}", "showarrow": False, "font": {"size": 11}}
        if vertical:
            fig.add_vline(x=cut, layer="below", **line)
            fig.add_annotation(
                x=cut, y=1, yref="paper", yanchor="bottom", yshift=14 * step, **label
            )
        else:
            fig.add_hline(y=cut, layer="below", **line)
            fig.add_annotation(x=1, xref="paper", xanchor="left", y=cut, **label)


def every_day(
    daily: pd.DataFrame, first: date | None = None, last: date | None = None
) -> pd.DataFrame:
    """The daily frame with one row per day from `first` (else its first day) to `last`
    (else its last day): days without events get 0 counts and no EMQ estimate, so a
    line never bridges an outage as if it were a gentle decline."""
    if daily.empty and (first is None or last is None):
        return daily
    days = pd.to_datetime(daily["event_day"])
    start = pd.Timestamp(first) if first else days.min()
    end = pd.Timestamp(last) if last else days.max()
    if not daily.empty:
        start, end = min(start, days.min()), max(end, days.max())
    index = pd.date_range(start, end, freq="D", name="event_day")
    filled = daily.assign(event_day=days).set_index("event_day").reindex(index)
    counts = [c for c in filled.columns if pd.api.types.is_integer_dtype(daily[c])]
    # One concat, not a column-by-column assignment: block frames have ~200 columns.
    zeros = filled[counts].fillna(0).astype("int64")
    filled = pd.concat([filled.drop(columns=counts), zeros], axis=1)[list(filled.columns)]
    return filled.reset_index()


MARKER_COLOR = "#6A3D9A"
MARKER_TEXT_CHARS = 40  # on the chart; the whole label shows on hover


def with_markers(fig: go.Figure, markers: Sequence[Marker]) -> go.Figure:
    """The figure with each marker (dashboard.store.markers) that falls within its date
    axis's days drawn as a dashed vertical line at its UTC time, labelled. Every time
    chart ends with this, so a fix shows where it happened. A marker outside those days
    is left out: its line would stretch the axis to days the chart does not show."""
    xs = [
        pd.to_datetime(pd.Series(list(t.x))) for t in fig.data if getattr(t, "x", None) is not None
    ]
    xs = [x for x in xs if len(x) and pd.api.types.is_datetime64_any_dtype(x)]
    if not xs:
        return fig
    # A day's point or bar stands for the whole day: its end is the next midnight.
    low = min(x.min() for x in xs)
    high = max(x.max() for x in xs) + pd.Timedelta(days=1)
    for marker in markers:
        x = datetime.fromtimestamp(marker.at, tz=UTC).replace(tzinfo=None)
        if not low <= x <= high:
            continue
        text = marker.label
        if len(text) > MARKER_TEXT_CHARS:
            text = text[: MARKER_TEXT_CHARS - 1] + "…"
        # Epoch milliseconds: what a date axis reads as UTC (a datetime would need a
        # time zone plotly ignores, and add_vline cannot place text at one).
        fig.add_vline(
            x=marker.at * 1000,
            line={"dash": "dash", "color": MARKER_COLOR, "width": 1.5},
            annotation={"text": text, "hovertext": f"{marker.label} ({x:%d %b %H:%M} UTC)"},
            annotation_position="top",
            annotation_font={"size": 11, "color": MARKER_COLOR},
        )
    return fig


# Date axes show dates, one tick per day at most (never "23:59:59.9996").
DAY_MS = 86_400_000
DATE_AXIS = {"type": "date", "tickformat": "%d %b", "dtick": DAY_MS, "tickangle": -45}


def _date_axis(frame: pd.DataFrame) -> dict:
    span = len(frame)
    # Longer periods: a tick a week, the labels stay legible.
    return DATE_AXIS if span <= 21 else {**DATE_AXIS, "dtick": 7 * DAY_MS}


def emq_trend(
    daily: pd.DataFrame,
    config: Config,
    title: str = "EMQ estimate per day",
    first: date | None = None,
    last: date | None = None,
    markers: Sequence[Marker] = (),
) -> go.Figure:
    """Daily EMQ estimate (lines per group if a 'group' column exists); a day without
    server events is a gap in the line, not a 0. `markers` as `with_markers`."""
    if daily[daily["server_sent"] > 0].empty:
        return _empty(title)
    fig = go.Figure()
    groups = daily.groupby("group") if "group" in daily.columns else [("all events", daily)]
    for name, part in groups:
        part = every_day(part, first, last)
        fig.add_trace(
            go.Scatter(
                x=part["event_day"],
                y=part["emq_estimate"].where(part["server_sent"] > 0),
                mode="lines+markers",
                name=str(name),
                connectgaps=False,
            )
        )
    _tier_lines(fig, config)
    fig.update_layout(
        title=title,
        yaxis={"range": [0, 10.2]},
        xaxis=_date_axis(every_day(daily, first, last)),
        **dict(LAYOUT, margin=dict(LAYOUT["margin"], r=80)),  # room for the tier labels
    )
    return with_markers(fig, markers)


def daily_volume(
    daily: pd.DataFrame,
    title: str = "Events per day",
    first: date | None = None,
    last: date | None = None,
    partial: date | None = None,
    markers: Sequence[Marker] = (),
) -> go.Figure:
    """Browser and server events per day, every day of the period (0 when none); the
    `partial` day (today, not over) is marked "so far", so its low count reads as such.
    `markers` as `with_markers`."""
    if daily.empty:
        return _empty(title)
    daily = every_day(daily, first, last)
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
    if partial is not None:
        fig.add_vline(
            x=pd.Timestamp(partial).timestamp() * 1000 - DAY_MS / 2,
            line_dash="dot",
            line_color=GOAL_COLOR,
            annotation_text="today, so far",
            annotation_position="top right",
        )
    fig.update_layout(title=title, yaxis_title="events", xaxis=_date_axis(daily), **LAYOUT)
    return with_markers(fig, markers)


NOT_SENT_COLOR = "#BDBDBD"


def funnel_chart(steps: pd.DataFrame, title: str) -> go.Figure:
    """Funnel of distinct people per stage, from an `indicators.funnel_steps` frame.

    A stage that was not sent keeps its place as a grey "not sent" bar of no width, not
    a 0 (which would read as everybody dropping out); each stage sent says its conversion
    from the previous stage sent, and no connector joins bars across a stage not sent.
    """
    if steps.empty or steps["people"].isna().all():
        return _empty(title)
    widest = steps["people"].max()
    texts, colors, positions = [], [], []
    for row in steps.itertuples(index=False):
        if pd.isna(row.people):
            texts.append("not sent")
            colors.append(NOT_SENT_COLOR)
            positions.append("outside")
            continue
        text = f"{int(row.people):,}"
        if not pd.isna(row.conversion):
            text += f" · {row.conversion:.1%} of {row.from_stage}"
        texts.append(text)
        colors.append("#4C78A8")
        # Outside a wide bar the text runs off the plot; inside a narrow one it is cut.
        positions.append("inside" if row.people >= widest / 2 else "outside")
    fig = go.Figure(
        go.Funnel(
            y=list(steps["funnel_stage"]),
            x=steps["people"].fillna(0).astype(int).tolist(),
            text=texts,
            textinfo="text",
            textposition=positions,
            marker={"color": colors},
            connector={"visible": False},
            hovertemplate="%{y}: %{text}<extra></extra>",
        )
    )
    fig.update_layout(title=title, **LAYOUT)
    return fig


def weekly_purchases_chart(
    weekly: pd.DataFrame,
    learning_phase: int,
    ready_7d: int,
    title: str = "Counted Purchases per week",
) -> go.Figure:
    """Counted Purchases per ISO week (an `indicators.weekly_purchases` frame) against
    Meta's learning-phase level (dashed) and the 7-day readiness minimum (dotted). Weeks
    the period only partly holds are paler, and say how many of their days it holds."""
    if weekly.empty:
        return _empty(title)
    whole = weekly["days_in_period"] >= 7
    fig = go.Figure(
        go.Bar(
            x=weekly["week"],
            y=weekly["purchases"],
            marker_color="#4C78A8",
            marker_opacity=[1.0 if w else 0.45 for w in whole],
            customdata=[
                "" if w else f" ({d} of 7 days in the period)"
                for w, d in zip(whole, weekly["days_in_period"], strict=True)
            ],
            hovertemplate="%{x}: %{y} Purchases%{customdata}<extra></extra>",
        )
    )
    fig.add_hline(
        y=learning_phase,
        line_dash="dash",
        line_color=GOAL_COLOR,
        annotation_text=f"learning phase ~{learning_phase}/week",
        annotation_position="top left",
    )
    fig.add_hline(
        y=ready_7d,
        line_dash="dot",
        line_color=TIER_COLORS["OK"],
        annotation_text=f"ready: ≥ {ready_7d} in 7 days",
        annotation_position="bottom left",
    )
    top = max(float(weekly["purchases"].max()), float(learning_phase)) * 1.15
    fig.update_layout(
        title=title,
        yaxis={"title": "counted Purchases", "range": [0, top]},
        xaxis={"type": "category"},
        showlegend=False,
        **LAYOUT,
    )
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


def errors_over_time(
    errors: pd.DataFrame,
    title: str = "Rejected events by error",
    first: date | None = None,
    last: date | None = None,
    markers: Sequence[Marker] = (),
) -> go.Figure:
    """Stacked daily bars of rejected events per error ("190/463 access token expired"):
    token and permission errors in warning colours at the bottom, the others in greys.
    The date axis spans the period (`first`..`last` when given), one bar a day.
    `markers` as `with_markers`."""
    if errors.empty:
        return _empty(title)
    rows = errors[["error_code", "error_subcode", "error_message"]].itertuples(index=False)
    keys = [
        (meta_errors.explain(c, s).is_token_error, meta_errors.legend(c, s, m)) for c, s, m in rows
    ]
    data = errors.assign(token=[k[0] for k in keys], error=[k[1] for k in keys])
    per_day = data.groupby(["token", "error", "event_day"], as_index=False)["events"].sum()
    totals = per_day.groupby(["token", "error"], as_index=False)["events"].sum()
    totals = totals.sort_values(["token", "events"], ascending=[False, False], kind="stable")
    bars, warm, grey = [], 0, 0
    for is_token, name in zip(totals["token"], totals["error"], strict=True):
        part = per_day[(per_day["token"] == is_token) & (per_day["error"] == name)]
        if is_token:
            colour, warm = ERROR_WARNING_COLORS[warm % len(ERROR_WARNING_COLORS)], warm + 1
        else:
            colour, grey = ERROR_NEUTRAL_COLORS[grey % len(ERROR_NEUTRAL_COLORS)], grey + 1
        bars.append(
            go.Bar(
                name=name,
                x=part["event_day"],
                y=part["events"],
                marker_color=colour,
                width=DAY_MS * 0.8,  # a day wide, even when one day is all there is
            )
        )
    fig = go.Figure(bars)
    days = pd.to_datetime(errors["event_day"])
    start = min(days.min(), pd.Timestamp(first)) if first else days.min()
    end = max(days.max(), pd.Timestamp(last)) if last else days.max()
    # Half a day either side: a single day's bar is a day wide, not the whole plot.
    span = pd.date_range(start, end, freq="D")
    axis = {
        **_date_axis(span),
        "range": [start - pd.Timedelta(hours=12), end + pd.Timedelta(hours=12)],
    }
    fig.update_layout(title=title, barmode="stack", yaxis_title="events", xaxis=axis, **LAYOUT)
    return with_markers(fig, markers)


def daily_measure(
    series: pd.DataFrame,
    measure: Measure,
    markers: Sequence[Marker] = (),
    goal: float | None = None,
) -> go.Figure:
    """One measure of a per-day series (dashboard.quality.daily): a count as bars (0 on a
    day without events), a share or score as a line that breaks on a day with nothing to
    divide (never bridged); `goal` as a dashed line; `markers` as `with_markers`."""
    if series.empty:
        return _empty(measure.label)
    values = series[measure.key]
    hover = {"rate": "%{y:.1%}", "score": "%{y:.1f}"}.get(measure.kind, "%{y:,}")
    common = {
        "x": series["day"],
        "y": values,
        "hovertemplate": f"%{{x|%d %b}}: {hover}<extra></extra>",
    }
    if measure.kind == "count":
        colour = "#D62728" if measure.direction == LOWER_IS_BETTER else CHANNEL_COLORS["server"]
        trace = go.Bar(**common, marker_color=colour)
    else:
        trace = go.Scatter(**common, mode="lines+markers", connectgaps=False)
    fig = go.Figure(trace)
    axis = {
        "rate": {"tickformat": ".0%", "range": [0, 1.05]},
        "score": {"range": [0, 10.2]},
        # Counts: whole ticks only (an all-zero series would show 0.2, 0.4, ...).
    }.get(measure.kind, {"rangemode": "tozero", "tickformat": ",d"})
    if measure.kind == "count" and not (values.fillna(0) > 4).any():
        axis = {**axis, "dtick": 1, "range": [0, 5]}
    if goal is not None:
        fig.add_hline(
            y=goal, line_dash="dash", line_color=GOAL_COLOR, annotation_text=f"goal {goal:.0%}"
        )
    layout = {**LAYOUT, "height": 280, "margin": {"l": 10, "r": 10, "t": 60, "b": 30}}
    fig.update_layout(
        title=measure.label, yaxis=axis, xaxis=_date_axis(series), showlegend=False, **layout
    )
    return with_markers(fig, markers)
