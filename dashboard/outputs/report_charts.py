"""Static SVG charts for the exported report (matplotlib, no plotly.js, no browser).

Owns how a `client_report.BarChart` is drawn: horizontal bars sized to the page, labels
that fit (long names shortened with an ellipsis, the full name kept in the tables), the
value printed at each bar's end and goal or tier lines dashed and labelled, so the chart
reads in black and white and nothing depends on colour alone. Text stays text in the SVG
(small files, selectable, crisp in print). matplotlib's object API only: no pyplot state,
so two reports built at once in the dashboard's threads do not share a figure.
"""

from __future__ import annotations

import io
import re

from dashboard.core import formatting as fmt
from dashboard.outputs.report_model import SCORE, SHARE, BarChart

LABEL_CHARS = 34  # longer group names are shortened on the axis
WIDTH_IN = 9.0  # fits A4 landscape's text width; the HTML scales it down on screens
BAR_IN = 0.27
BAR_COLOUR = "#3b6ea8"
_RC = {
    "svg.fonttype": "none",  # text as text: a few kB per chart instead of glyph paths
    "svg.hashsalt": "eqm",  # stable ids: the same data gives the same file
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def _short(text: str) -> str:
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


def _value_text(value: float, kind: str) -> str:
    if kind == SHARE:
        return fmt.percent(value)
    if kind == SCORE:
        return fmt.score(value)
    return f"{value:,.0f}"


def bar_svg(chart: BarChart) -> str:
    """The chart as an inline SVG element (no XML prolog, scales to its container)."""
    from matplotlib import rc_context
    from matplotlib.figure import Figure

    with rc_context(_RC):
        count = max(1, len(chart.labels))
        figure = Figure(figsize=(WIDTH_IN, max(1.8, 0.9 + BAR_IN * count)))
        axes = figure.add_subplot()
        values = [v or 0.0 for v in chart.values]
        positions = range(len(values))
        axes.barh(positions, values, color=BAR_COLOUR, height=0.62)
        axes.set_yticks(list(positions), [_short(label) for label in chart.labels])
        axes.invert_yaxis()  # the first (largest) group on top, as in the table
        limit = {SHARE: 1.0, SCORE: 10.0}.get(chart.kind, max(values, default=1.0) or 1.0)
        axes.set_xlim(0, limit * 1.12)  # room for the value printed after the longest bar
        if chart.kind == SHARE:
            axes.xaxis.set_major_formatter(lambda x, _pos: f"{x:.0%}")
        for y, value in zip(positions, values, strict=True):
            axes.text(value + limit * 0.01, y, _value_text(value, chart.kind), va="center")
        for x, text in chart.lines:
            axes.axvline(x, color="#222222", linestyle=(0, (4, 3)), linewidth=0.9)
            # x in data units, y just above the axes whatever the number of bars.
            axes.text(
                x, 1.01, text, ha="center", va="bottom", fontsize=8,
                transform=axes.get_xaxis_transform(),
            )  # fmt: skip
        axes.set_title(chart.title, loc="left", fontsize=10, pad=16 if chart.lines else 6)
        axes.tick_params(axis="y", length=0)
        figure.tight_layout()
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg") :]
    # Drop the fixed size: the viewBox keeps the proportions, CSS sets the width.
    return re.sub(r'<svg([^>]*?) width="[^"]+" height="[^"]+"', r"<svg\1", svg, count=1)
