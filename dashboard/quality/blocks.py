"""A block of indicators (the JSON contract's block B), computed from the registry.

`store.queries.blocks.block_sums` computes every `Count`, `Latest` and `LagPercentile`
measure of `core.measures.MEASURES` in the database, one row per group of each grouping
(GROUPING SETS of one scan where the store has them). Here those rows get their ratios
and, on request, the days without events; `block_dict` turns one row into the JSON
block, measure by measure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pandas as pd

from dashboard.core.config import Config
from dashboard.core.definitions import DEDUP_STATUSES, DEDUPLICATED_STATUSES
from dashboard.core.filters import Filters
from dashboard.core.measures import (
    MEASURES,
    Count,
    LagPercentile,
    Latest,
    Measure,
    Ratio,
)
from dashboard.store.queries import blocks as queries

COUNTS = [m for m in MEASURES if isinstance(m.aggregate, Count)]
LATEST = [m for m in MEASURES if isinstance(m.aggregate, Latest)]
LAGS = [m for m in MEASURES if isinstance(m.aggregate, LagPercentile)]
FRAME_RATIOS = [m for m in MEASURES if isinstance(m.aggregate, Ratio) and m.aggregate.in_frame]
# Columns that hold fractions or times, not whole counts.
FLOAT_KINDS = ("duration", "time", "sum")


def block_frame(
    engine, filters: Filters, config: Config, by: str | Sequence[str] | None = None
) -> pd.DataFrame:
    """One row of block columns per group (one row overall when `by` is None)."""
    dims = [by] if isinstance(by, str) else list(by or [])
    return block_frames(engine, filters, config, [dims])[0]


def block_frames(
    engine,
    filters: Filters,
    config: Config,
    groupings: Sequence[Sequence[str]],
    *,
    missing_days: bool = False,
) -> list[pd.DataFrame]:
    """`block_frame` for several groupings from one `block_sums` call.

    With `missing_days`, each row also gets `days_without_events`: the days of the
    period (see `store.queries.blocks.period_days`) on which the group has no event.
    """
    names = [m.column for m in COUNTS]
    latest = [m.column for m in LATEST]
    lags = [m.column for m in LAGS]
    sums = queries.block_sums(engine, filters, groupings, config)
    # Only groupings without days can miss one; each is scanned once.
    needs_days = list(dict.fromkeys(tuple(g) for g in groupings if "event_day" not in g))
    present = queries.days_present(engine, filters, needs_days) if missing_days else []
    period = queries.period_days(engine, filters) if missing_days else []
    out = []
    for grouping, part in zip(groupings, sums, strict=True):
        grouping = list(grouping)
        if grouping:
            part = part.sort_values(grouping, na_position="last", kind="stable")
        elif part.empty:
            # An empty slice still has its one row: zero counts, no times or lags.
            part = pd.DataFrame([dict.fromkeys(names, 0) | dict.fromkeys(latest + lags)])
        part = part[[*grouping, *names, *latest, *lags]]
        frame = _finish_block_frame(part.reset_index(drop=True), grouping)
        if missing_days:
            seen = None if "event_day" in grouping else present[needs_days.index(tuple(grouping))]
            frame["days_without_events"] = _missing_days(frame, grouping, seen, period)
        out.append(frame)
    return out


def _missing_days(
    frame: pd.DataFrame, grouping: list[str], present: pd.DataFrame | None, period: list[date]
) -> list[list[str]]:
    """Per row of `frame`, the days of `period` (ISO dates) on which its group has no event
    (`present`: the grouping's (group, day) pairs with events)."""
    if "event_day" in grouping or frame.empty:
        return [[] for _ in range(len(frame))]
    days = [d.isoformat() for d in period]
    if not grouping:
        seen = set(present["event_day"])
        return [[iso for d, iso in zip(period, days, strict=True) if d not in seen]] * len(frame)
    # A rows x days grid of "has events", filled from the present pairs in one step:
    # whole-array work, not a Python loop over groups times days.
    rows = frame[grouping].reset_index(drop=True).reset_index(names="_row")
    hits = present.merge(rows, on=grouping, how="inner")
    columns = hits["event_day"].map({day: i for i, day in enumerate(period)})
    inside = columns.notna().to_numpy()  # today's events are outside the period
    has_events = np.zeros((len(frame), len(period)), dtype=bool)
    has_events[hits["_row"].to_numpy()[inside], columns.to_numpy()[inside].astype(int)] = True
    row_of, day_of = np.nonzero(~has_events)
    per_row = np.split(
        np.array(days, dtype=object)[day_of],
        np.cumsum(np.bincount(row_of, minlength=len(frame)))[:-1],
    )
    return [list(missing) for missing in per_row]


def _finish_block_frame(frame: pd.DataFrame, dims: list[str]) -> pd.DataFrame:
    kinds = {m.column: m.kind for m in MEASURES}
    floats = [c for c in frame.columns if c not in dims and kinds.get(c) in FLOAT_KINDS]
    counts = [c for c in frame.columns if c not in dims and c not in floats]
    # Whole-frame conversions: one per kind of column, not one per column.
    as_float = _numeric(frame[floats]).astype(float)
    as_count = _numeric(frame[counts]).fillna(0).astype("int64")
    # copy(): one block per dtype, not one per column, so the columns added below (and
    # by callers) cost no reshuffle.
    out = pd.concat([frame[dims], as_count, as_float], axis=1)[list(frame.columns)].copy()
    if "event_day" in dims:
        out["event_day"] = pd.to_datetime(out["event_day"])
    out = out.assign(emq_sum=out["emq_sum"].fillna(0.0))
    ratios = {}
    for measure in FRAME_RATIOS:
        denominator = out[measure.aggregate.denominator]
        ratios[measure.column] = out[measure.aggregate.numerator] / denominator.where(
            denominator > 0
        )
    return out.assign(**ratios)


def _numeric(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with every column numeric (already so when it came from sums)."""
    if all(pd.api.types.is_numeric_dtype(kind) for kind in frame.dtypes):
        return frame
    return frame.apply(pd.to_numeric, errors="coerce")


def none_if_nan(value: Any) -> Any:
    """None for a missing value (None, NaN, NaT), else the value."""
    if value is None:
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        return value
    return value


def iso_utc(seconds: Any) -> str | None:
    """UTC Unix seconds as ISO 8601 ("2026-11-04T18:22:05Z"); None when missing."""
    seconds = none_if_nan(seconds)
    if seconds is None:
        return None
    moment = datetime.fromtimestamp(float(seconds), tz=UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def dedup_rate_of(counts: dict[str, Any] | pd.Series) -> float | None:
    """Share of the accepted server events that can have a browser twin which Meta
    deduplicates against one (by event_id, or the fbp/external_id fallback), from a
    block row's dedup columns. Server-only events by design are left out of both
    sides: they have no twin to find."""
    server = {s: int(counts[f"dedup__server__{s}"]) for s in DEDUP_STATUSES}
    by_design = {s: int(counts[f"by_design__{s}"]) for s in DEDUP_STATUSES}
    twinnable = sum(server.values()) - sum(by_design.values())
    deduped = sum(server[s] - by_design[s] for s in DEDUPLICATED_STATUSES)
    return round(deduped / twinnable, 6) if twinnable > 0 else None


def _ratios(numerators: list, denominators: list, decimals: int) -> list[float | None]:
    """numerator / denominator rounded to `decimals`, None where the denominator is 0.

    The division is numpy's (the same IEEE double as Python's); the rounding is Python's
    round(), which numpy's does not always equal.
    """
    above = np.asarray(numerators, dtype=float)
    below = np.asarray(denominators, dtype=float)
    zero = below == 0
    quotients = (above / np.where(zero, 1.0, below)).tolist()
    return [
        None if none else round(q, decimals)
        for q, none in zip(quotients, zero.tolist(), strict=True)
    ]


def _lag(value: Any) -> float | None:
    value = none_if_nan(value)
    return None if value is None else round(float(value), 6)


def _by_design(row: dict[str, Any]) -> int:
    return sum(int(row[f"by_design__{s}"]) for s in DEDUP_STATUSES)


def _days_without_events(row: dict[str, Any]) -> list | None:
    missing = row.get("days_without_events")
    return None if missing is None else list(missing)


# Each derived measure: the columns of its row it reads, and its value from them. The
# function sees only those columns, so one it reads without naming them fails at once.
_DERIVED: dict[str, tuple[list[str], Callable[[dict[str, Any]], Any]]] = {
    "by_design": ([f"by_design__{s}" for s in DEDUP_STATUSES], _by_design),
    "dedup_rate": (
        [f"{side}__{s}" for side in ("dedup__server", "by_design") for s in DEDUP_STATUSES],
        dedup_rate_of,
    ),
    # A frame without the column (a per-day scan) reads None.
    "days_without_events": (["days_without_events"], _days_without_events),
}


def _values_function(measure: Measure) -> Callable[[dict[str, list], int], list]:
    """How one measure's JSON values are read from the columns of a block frame (each a
    list of `rows` values; a missing `days_without_events` column reads None)."""
    aggregate = measure.aggregate
    column = measure.column
    if isinstance(aggregate, Count):
        return lambda columns, rows: [int(v) for v in columns[column]]
    if isinstance(aggregate, Ratio):
        numerator, denominator, decimals = (
            aggregate.numerator,
            aggregate.denominator,
            aggregate.decimals,
        )
        return lambda columns, rows: _ratios(columns[numerator], columns[denominator], decimals)
    if isinstance(aggregate, LagPercentile):
        return lambda columns, rows: [_lag(v) for v in columns[column]]
    if isinstance(aggregate, Latest):
        return lambda columns, rows: [iso_utc(v) for v in columns[column]]
    needed, value_of = _DERIVED[aggregate.name]

    def derived(columns, rows):
        present = [c for c in needed if c in columns]
        values = zip(*(columns[c] for c in present), strict=True) if present else [()] * rows
        return [value_of(dict(zip(present, row, strict=True))) for row in values]

    return derived


# Built once: a report reads ~150 values from each of thousands of rows.
_VALUES_FUNCTIONS = {measure.key: _values_function(measure) for measure in MEASURES}
_JSON_PLAN = [
    (measure.path[:-1], measure.path[-1], _VALUES_FUNCTIONS[measure.key])
    for measure in MEASURES
    if measure.json
]


def _as_columns(row: dict[str, Any] | pd.Series) -> dict[str, list]:
    return {name: [value] for name, value in row.items()}


def measure_values(measures: Iterable[Measure], row: dict[str, Any] | pd.Series) -> dict:
    """The JSON values of `measures` (by key) from one row of a block frame."""
    columns = _as_columns(row)
    return {m.key: _VALUES_FUNCTIONS[m.key](columns, 1)[0] for m in measures}


def measure_columns(measures: Iterable[Measure], frame: pd.DataFrame) -> dict[str, list]:
    """The JSON values of `measures` (by key) for every row of a block frame, in order."""
    columns = {name: frame[name].tolist() for name in frame.columns}
    return {m.key: _VALUES_FUNCTIONS[m.key](columns, len(frame)) for m in measures}


def _json_tree() -> list[tuple[tuple[str, ...], list[str], list[tuple[str, Any]]]]:
    """The JSON block's shape: per nested object (deepest first), its keys in order and
    where each key's values come from (a measure of `_JSON_PLAN`, or a nested object)."""
    children: dict[tuple[str, ...], dict[str, tuple[str, Any]]] = {(): {}}
    for index, (path, leaf, _values) in enumerate(_JSON_PLAN):
        for depth in range(len(path)):
            parent, child = path[:depth], path[: depth + 1]
            children.setdefault(child, {})
            children[parent].setdefault(path[depth], ("object", child))
        children[path][leaf] = ("measure", index)
    ordered = sorted(children, key=len, reverse=True)
    return [(path, list(children[path]), list(children[path].values())) for path in ordered]


_JSON_TREE = _json_tree()


def _blocks(columns: dict[str, list], rows: int) -> list[dict[str, Any]]:
    # Measure by measure over whole columns, then each nested object for every row at
    # once (dict(zip(...)) per object and row): a report reads ~150 values from each of
    # thousands of rows, and a Python step per value cost 0.4 s for the 2,340 rows of
    # the 1M diverse store's report.
    values = [measure(columns, rows) for _path, _leaf, measure in _JSON_PLAN]
    built: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for path, keys, sources in _JSON_TREE:
        parts = [values[at] if kind == "measure" else built[at] for kind, at in sources]
        built[path] = [dict(zip(keys, row, strict=True)) for row in zip(*parts, strict=True)]
    return built[()]


def block_dict(row: pd.Series | dict) -> dict[str, Any]:
    """The report contract's block B from one row of `block_frame`: every measure of the
    registry that belongs in JSON, at its path."""
    return _blocks(_as_columns(row), 1)[0]


def block_dicts(frame: pd.DataFrame, by: str) -> dict[str, dict[str, Any]]:
    """`block_dict` of every row of a block frame, keyed by the row's `by` value."""
    columns = {name: frame[name].tolist() for name in frame.columns}
    blocks = _blocks(columns, len(frame))
    return {str(key): block for key, block in zip(columns[by], blocks, strict=True)}


def overall_block(engine, filters: Filters, config: Config) -> dict[str, Any]:
    """Block B for the whole slice."""
    frame = block_frame(engine, filters, config)
    return block_dict(frame.iloc[0])


def blocks_by(engine, filters: Filters, config: Config, by: str) -> dict[str, dict]:
    """Block B per value of one dimension."""
    frame = block_frame(engine, filters, config, by)
    return block_dicts(frame, by)


def largest_groups(frame: pd.DataFrame, count: int) -> pd.DataFrame:
    """The `count` groups of a block frame with the most events (browser + server), in the
    frame's own order (ties keep the earlier group): what a chart of 300 bars would hide."""
    if len(frame) <= count:
        return frame
    volume = frame["browser_events"] + frame["server_events"]
    keep = np.sort((-volume.to_numpy()).argsort(kind="stable")[:count])
    return frame.iloc[keep].reset_index(drop=True)
