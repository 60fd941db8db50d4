"""Reconciliation of a CRM's stage changes against the server events sent to Meta.

Owns the definitions. Each stage change (a lead reaching a stage at a time) is looked up
among the server events with the same `user_data.lead_id` and the stage's event name
(config `[reconcile.crm.stages]`), sent from `early_s` before the change (a CRM's clock
may run ahead) to `window_s` after it (Meta takes events up to 7 days old). A change is
**sent** when Meta accepted such an event, **rejected** when only rejected batches held
one, **missing** when none did, **unmapped** when its stage has no event name. A sent
change is **late** when its first accepted send came more than `late_after_s` after the
change; the delay is that send's time minus the change's. Per stage: changes, sent,
missing, rejected, late and the median delay. Meta optimises on these events: a stage
never or late sent is what a CRM marketer most needs to know.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import median
from typing import Any

import pandas as pd

from dashboard.core.config import Config
from dashboard.core.orders import StageChange
from dashboard.store.queries.reconcile import keyless_events, stage_sends


@dataclass(frozen=True)
class StageSettings:
    """Which event name each stage is sent as, and the windows (seconds)."""

    stage_events: dict[str, str] = field(default_factory=dict)
    window_s: float = 7 * 86_400
    early_s: float = 3600.0
    late_after_s: float = 3600.0
    list_cap: int = 100


def _sends(sends: pd.DataFrame) -> dict[tuple[str, str], list[tuple[float, bool]]]:
    found: dict[tuple[str, str], list[tuple[float, bool]]] = defaultdict(list)
    for lead, name, at, accepted in zip(
        sends["lead_id"], sends["event_name"], sends["sent_at"], sends["accepted"], strict=True
    ):
        found[(str(lead), str(name))].append((float(at), bool(accepted)))
    return found


def classify_change(change: StageChange, candidates, settings: StageSettings) -> dict[str, Any]:
    event = settings.stage_events.get(change.stage)
    row: dict[str, Any] = {
        "lead_id": change.lead_id,
        "stage": change.stage,
        "line": change.line,
        "event_name": event,
        "delay_s": None,
        "late": False,
    }
    if event is None:
        return row | {"status": "unmapped"}
    start, end = change.changed_at - settings.early_s, change.changed_at + settings.window_s
    inside = [
        (at, ok) for at, ok in candidates.get((change.lead_id, event), []) if start <= at <= end
    ]
    accepted = sorted(at for at, ok in inside if ok)
    if not accepted:
        return row | {"status": "rejected" if inside else "missing"}
    delay = accepted[0] - change.changed_at
    return row | {"status": "sent", "delay_s": delay, "late": delay > settings.late_after_s}


def reconcile_stages(
    changes: list[StageChange], sends: pd.DataFrame, settings: StageSettings
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The per-stage summary (the JSON contract) and one row per change."""
    candidates = _sends(sends)
    rows = [classify_change(change, candidates, settings) for change in changes]
    order = [s for s in settings.stage_events if any(r["stage"] == s for r in rows)]
    order += sorted({r["stage"] for r in rows} - set(order))
    by_stage = {}
    for stage in order:
        mine = [r for r in rows if r["stage"] == stage]
        delays = [r["delay_s"] for r in mine if r["delay_s"] is not None]
        by_stage[stage] = {
            "event_name": settings.stage_events.get(stage),
            "changes": len(mine),
            **{status: sum(r["status"] == status for r in mine) for status in STATUSES},
            "late": sum(r["late"] for r in mine),
            "median_delay_s": round(median(delays), 1) if delays else None,
        }
    missing = [
        {"lead_id": r["lead_id"], "stage": r["stage"]} for r in rows if r["status"] == "missing"
    ]
    summary = {
        "changes": len(rows),
        **{status: sum(r["status"] == status for r in rows) for status in STATUSES},
        "late": sum(r["late"] for r in rows),
        "by_stage": by_stage,
        "missing_changes": {
            "count": len(missing),
            "changes": missing[: settings.list_cap],
            "capped": len(missing) > settings.list_cap,
        },
    }
    return summary, rows


STATUSES = ("sent", "missing", "rejected", "unmapped")


def stages_against_store(
    engine, changes: list[StageChange], config: Config, datasets: Sequence[str] = ()
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """`reconcile_stages` with the settings of config [reconcile.crm], against the server
    events sent around the changes."""
    settings = StageSettings(
        config.crm_stage_events,
        config.crm_window_s,
        config.crm_early_s,
        config.crm_late_after_s,
        config.reconcile_list_cap,
    )
    times = [c.changed_at for c in changes] or [0.0]
    sends = stage_sends(
        engine,
        event_names=sorted(set(config.crm_stage_events.values())),
        sent_from=min(times) - settings.early_s,
        sent_to=max(times) + settings.window_s + 1,
        datasets=datasets,
    )
    summary, rows = reconcile_stages(changes, sends, settings)
    summary["warnings"] = []
    total, keyless = keyless_events(
        engine,
        column="lead_id",
        event_names=sorted(set(config.crm_stage_events.values())),
        sent_from=min(times) - settings.early_s,
        sent_to=max(times) + settings.window_s + 1,
    )
    if keyless:
        summary["warnings"].append(
            f"{keyless:,} of {total:,} server events of these stages carry a valid lead_id the "
            "store did not keep: they were imported by an older version. Import the log again "
            "into a new store to reconcile them."
        )
    return summary, rows
