"""Meta's numbers beside ours: each snapshot with our figures over the same window, the
calibration of the EMQ estimate, and what `check` judges about them.

Owns which of our figures a snapshot is compared with: our EMQ estimate over the server
events of its dataset and event name sent in the 48 h before the snapshot (Meta scores
the last 48 h), and our event coverage over the 7 days before it (Meta's is a 7-day
average). Both come from the registry's blocks (`quality.blocks`), so they are the
numbers every page shows, only over Meta's windows.

The calibration maps our estimate onto Meta's score: Meta ≈ intercept + slope ×
estimate, by least squares over every snapshot with a score and at least
`MIN_GROUP_EVENTS` of our server events in its window, clipped to 0-10. Two numbers a
marketer can check by hand, reproducible from the stored points. The slope is never
negative (a higher estimate never maps lower); when the points do not allow a slope
(all estimates equal, or the best slope is negative) the fit is the mean offset alone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from dashboard.core import clock
from dashboard.core.config import Config
from dashboard.core.definitions import MIN_GROUP_EVENTS
from dashboard.core.filters import Filters, epoch
from dashboard.core.meta_quality import META_COVERAGE_WINDOW_S, META_EMQ_WINDOW_S, Snapshot
from dashboard.quality.blocks import block_dicts, block_frame
from dashboard.store.meta_snapshots import StoredFit, latest_fit, load_snapshots, save_fit

MIN_CALIBRATION_POINTS = 3
# Snapshot times compared in one call (two block queries each): a fetch every 6 h for
# a month is 120 times; older ones are not drawn or fitted.
MAX_COMPARED_TIMES = 120
DAY_S = 86_400


@dataclass(frozen=True)
class Comparison:
    """One snapshot and our blocks over its windows (None: no event of ours there)."""

    snapshot: Snapshot
    emq_block: dict[str, Any] | None  # server events sent in the 48 h before it
    coverage_block: dict[str, Any] | None  # events sent in the 7 days before it

    @property
    def our_emq(self) -> float | None:
        block = self.emq_block
        if not block or block["server_sent"] < MIN_GROUP_EVENTS:
            return None
        return block["emq_estimate"]

    @property
    def our_server_events(self) -> int:
        return int(self.emq_block["server_sent"]) if self.emq_block else 0

    @property
    def our_coverage(self) -> float | None:
        block = self.coverage_block
        return block["event_coverage"] if block else None

    @property
    def emq_difference(self) -> float | None:
        """Meta's score minus our estimate, in points."""
        meta, ours = self.snapshot.emq, self.our_emq
        return None if meta is None or ours is None else round(meta - ours, 2)


def _window_blocks(engine, config, dataset, names, end, length) -> dict[str, dict]:
    window = Filters(datasets=(dataset,), event_names=tuple(sorted(names)))
    window = replace(window, sent_start_ts=end - length, sent_end_ts=end)
    return block_dicts(block_frame(engine, window, config, "event_name"), "event_name")


def compare(engine, config: Config, snapshots: Sequence[Snapshot]) -> list[Comparison]:
    """Each snapshot (of the newest MAX_COMPARED_TIMES times) with our blocks, two block
    queries per dataset and time."""
    groups: dict[tuple[str, float], set[str]] = defaultdict(set)
    for snapshot in snapshots:
        groups[(snapshot.dataset_id, snapshot.fetched_at)].add(snapshot.event_name)
    kept = sorted(groups, key=lambda key: key[1])[-MAX_COMPARED_TIMES:]
    blocks = {}
    for dataset, at in kept:
        names = groups[(dataset, at)]
        emq = _window_blocks(engine, config, dataset, names, at, META_EMQ_WINDOW_S)
        cover = _window_blocks(engine, config, dataset, names, at, META_COVERAGE_WINDOW_S)
        blocks[(dataset, at)] = (emq, cover)
    out = []
    for snapshot in snapshots:
        found = blocks.get((snapshot.dataset_id, snapshot.fetched_at))
        if found is not None:
            emq, cover = found
            name = snapshot.event_name
            out.append(Comparison(snapshot, emq.get(name), cover.get(name)))
    return out


def newest_per_event(snapshots: Iterable[Snapshot], upto: float | None = None) -> list[Snapshot]:
    """The newest snapshot of each (dataset, event name), fetched before `upto`."""
    newest: dict[tuple[str, str], Snapshot] = {}
    for snapshot in snapshots:
        if upto is not None and snapshot.fetched_at >= upto:
            continue
        key = (snapshot.dataset_id, snapshot.event_name)
        if key not in newest or snapshot.fetched_at > newest[key].fetched_at:
            newest[key] = snapshot
    return sorted(newest.values(), key=lambda s: (s.event_name, s.dataset_id))


def period_snapshots(engine, filters: Filters) -> list[Snapshot]:
    """The snapshots of the slice's datasets fetched within its period (whole days, UTC)."""
    since = epoch(filters.since) if filters.since else None
    until = epoch(filters.until) + DAY_S if filters.until else None
    found = load_snapshots(engine, filters.datasets, since, until)
    if filters.event_names:
        found = [s for s in found if s.event_name in filters.event_names]
    return found


def snapshot_list(engine, filters: Filters) -> list[dict[str, str]]:
    """The (dataset, fetched_at) of every snapshot in the period, oldest first: the
    report's `meta_snapshots`."""
    from datetime import UTC, datetime

    seen = sorted({(s.fetched_at, s.dataset_id) for s in period_snapshots(engine, filters)})
    return [
        {
            "dataset_id": dataset,
            "fetched_at": datetime.fromtimestamp(at, tz=UTC)
            .isoformat(timespec="seconds")
            .replace("+00:00", "Z"),
        }
        for at, dataset in seen
    ]


def newest_by_event_name(engine, config: Config, filters: Filters) -> dict[str, Comparison]:
    """Per event name, the newest snapshot within the period (over the slice's datasets)
    with our figures beside it: the report's `by_event_name.<name>.meta`."""
    chosen: dict[str, Snapshot] = {}
    for snapshot in newest_per_event(period_snapshots(engine, filters)):
        held = chosen.get(snapshot.event_name)
        if held is None or snapshot.fetched_at > held.fetched_at:
            chosen[snapshot.event_name] = snapshot
    return {c.snapshot.event_name: c for c in compare(engine, config, list(chosen.values()))}


# -- calibration ---------------------------------------------------------------------


@dataclass(frozen=True)
class Calibration:
    """The estimate's mapping onto Meta's score, or "uncalibrated" with the reason."""

    status: str  # calibrated | uncalibrated
    reason: str = ""
    intercept: float = 0.0
    slope: float = 1.0
    mae_raw: float | None = None  # mean |Meta - estimate| on the points, in points
    mae_calibrated: float | None = None
    fitted_at: float | None = None
    points: list[dict] = field(default_factory=list)

    @property
    def calibrated(self) -> bool:
        return self.status == "calibrated"

    def apply(self, estimate: float | None) -> float | None:
        """The calibrated estimate (0-10, 2 decimals), or None when uncalibrated."""
        if estimate is None or not self.calibrated:
            return None
        return round(min(10.0, max(0.0, self.intercept + self.slope * estimate)), 2)

    def to_dict(self) -> dict[str, Any]:
        from datetime import UTC, datetime

        def iso(t):
            return datetime.fromtimestamp(t, tz=UTC).isoformat(timespec="seconds")

        return {
            "status": self.status,
            "reason": self.reason or None,
            "method": "Meta ≈ intercept + slope × estimate, least squares, clipped to 0-10",
            "intercept": round(self.intercept, 4) if self.calibrated else None,
            "slope": round(self.slope, 4) if self.calibrated else None,
            "mae_raw": self.mae_raw,
            "mae_calibrated": self.mae_calibrated,
            "fitted_at": iso(self.fitted_at) if self.fitted_at else None,
            "points": [
                {**p, "fetched_at": iso(p["fetched_at"])} for p in self.points
            ],  # the snapshots it used
        }


def fit_line(points: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """(intercept, slope) of Meta ≈ intercept + slope × estimate by least squares, the
    slope kept ≥ 0; the mean offset alone when the estimates do not vary."""
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if spread > 1e-12:
        slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / spread
        if slope > 0:
            return mean_y - slope * mean_x, slope
    return mean_y - mean_x, 1.0


def _mae(values: Sequence[tuple[float, float]]) -> float:
    return round(sum(abs(a - b) for a, b in values) / len(values), 3)


def fit_calibration(comparisons: Iterable[Comparison], fitted_at: float) -> Calibration:
    """The calibration from the comparisons that have both scores, or "uncalibrated"."""
    usable = [c for c in comparisons if c.snapshot.emq is not None and c.our_emq is not None]
    if len(usable) < MIN_CALIBRATION_POINTS:
        return Calibration(
            "uncalibrated",
            reason=f"{len(usable)} snapshot(s) with Meta's EMQ and ≥{MIN_GROUP_EVENTS} of our "
            f"server events in the 48 h before them; {MIN_CALIBRATION_POINTS} needed",
        )
    pairs = [(float(c.our_emq), float(c.snapshot.emq)) for c in usable]
    intercept, slope = fit_line(pairs)
    fitted = Calibration("calibrated", intercept=intercept, slope=slope)
    points = [
        {
            "dataset_id": c.snapshot.dataset_id,
            "event_name": c.snapshot.event_name,
            "fetched_at": c.snapshot.fetched_at,
            "meta": c.snapshot.emq,
            "estimate": c.our_emq,
        }
        for c in usable
    ]
    return replace(
        fitted,
        mae_raw=_mae(pairs),
        mae_calibrated=_mae([(fitted.apply(x), y) for x, y in pairs]),
        fitted_at=fitted_at,
        points=points,
    )


def calibrate(engine, config: Config) -> Calibration:
    """Fit on every stored snapshot and store the fit when there is one."""
    result = fit_calibration(compare(engine, config, load_snapshots(engine)), clock.now())
    if result.calibrated:
        save_fit(
            engine,
            StoredFit(
                result.fitted_at,
                result.intercept,
                result.slope,
                result.mae_raw,
                result.mae_calibrated,
                result.points,
            ),
        )
    return result


def current_calibration(engine) -> Calibration:
    """The stored calibration in use, or "uncalibrated"."""
    stored = latest_fit(engine)
    if stored is None:
        return Calibration("uncalibrated", reason="no calibration: import Meta's snapshots")
    return Calibration(
        "calibrated",
        intercept=stored.intercept,
        slope=stored.slope,
        mae_raw=stored.mae_raw,
        mae_calibrated=stored.mae_calibrated,
        fitted_at=stored.fitted_at,
        points=stored.points,
    )


# -- what check judges ---------------------------------------------------------------


@dataclass(frozen=True)
class EmqDrop:
    """Meta's EMQ of one dataset and event name between its two newest snapshots."""

    dataset_id: str
    event_name: str
    before: Snapshot
    after: Snapshot

    @property
    def drop(self) -> float:
        return round(self.before.emq - self.after.emq, 2)


def emq_drops(snapshots: Iterable[Snapshot], upto: float) -> list[EmqDrop]:
    """For each (dataset, event name) with two scored snapshots before `upto`, the two
    newest."""
    history: dict[tuple[str, str], list[Snapshot]] = defaultdict(list)
    for snapshot in snapshots:
        if snapshot.fetched_at < upto and snapshot.emq is not None:
            history[(snapshot.dataset_id, snapshot.event_name)].append(snapshot)
    out = []
    for (dataset, name), found in sorted(history.items()):
        if len(found) >= 2:
            before, after = sorted(found, key=lambda s: s.fetched_at)[-2:]
            out.append(EmqDrop(dataset, name, before, after))
    return out
