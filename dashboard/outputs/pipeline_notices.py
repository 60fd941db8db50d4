"""What the Overview says first: per dataset, is data still arriving?

From `store.queries.freshness.pipeline_health` (one row per dataset: when its last event
and its last server event were sent), one notice per dataset and state: Meta accepted
nothing, the server went silent longer than the limit `check` judges, no server event
at all, or fine. Four or more datasets in one state share one notice naming the first
three, so a store of 30 silent datasets shows one alarm above the numbers, not 30.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from dashboard.core import formatting as fmt

# From this many datasets in one state on, they share one notice.
GROUP_FROM = 4
NAMED = 3  # datasets a shared notice names before "and N more"


@dataclass(frozen=True)
class Notice:
    """One line of the pipeline's state: `level` is error, warning or caption."""

    level: str
    text: str


def _moment(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%-d %b %Y %H:%M UTC")


def _names(datasets: list[str]) -> str:
    shown = ", ".join(datasets[:NAMED])
    rest = len(datasets) - NAMED
    return f"{shown} and {rest} more" if rest > 0 else shown


def _missing(value: Any) -> bool:
    return value is None or value != value  # None or NaN


def _state(row: Any, now_s: float, limit_s: float) -> str:
    if _missing(row.last_sent_at):
        return "rejected"  # every batch of this dataset was rejected
    # When the integration last sent a server event (as `check` judges silence), not
    # when the event happened: a back-filled old event still proves the pipeline runs.
    if _missing(row.last_server_sent_at):
        return "no_server"
    return "silent" if now_s - row.last_server_sent_at > limit_s else "ok"


def _one(state: str, row: Any, now_s: float, hours: float) -> Notice:
    dataset = row.dataset_id
    if state == "rejected":
        return Notice(
            "error", f"Dataset {dataset}: Meta accepted no event at all. See Freshness & delivery."
        )
    received = (
        f"last event received {fmt.ago(now_s - row.last_sent_at)} ({_moment(row.last_sent_at)})"
    )
    if state == "no_server":
        return Notice(
            "warning", f"Dataset {dataset}: {received}; no server (Conversions API) event at all."
        )
    if state == "silent":
        server = row.last_server_sent_at
        return Notice(
            "error",
            f"Dataset {dataset}: no server event sent for "
            f"{fmt.ago(now_s - server).removesuffix(' ago')} (last at {_moment(server)}), longer "
            f"than the {hours:g} h limit. Check the server integration; "
            "`python -m dashboard check` fails until events arrive.",
        )
    return Notice("caption", f"Dataset {dataset}: {received}.")


def _shared(state: str, rows: list[Any], now_s: float, hours: float) -> Notice:
    count = len(rows)
    names = _names([str(row.dataset_id) for row in rows])
    if state == "rejected":
        return Notice(
            "error",
            f"{count} datasets: Meta accepted no event at all ({names}). See Freshness & delivery.",
        )
    if state == "no_server":
        return Notice(
            "warning",
            f"{count} datasets receive events but no server (Conversions API) event at all: "
            f"{names}.",
        )
    if state == "silent":
        latest = max(row.last_server_sent_at for row in rows)
        return Notice(
            "error",
            f"{count} datasets: no server event sent for "
            f"{fmt.ago(now_s - latest).removesuffix(' ago')} or longer (the latest at "
            f"{_moment(latest)}), longer than the {hours:g} h limit: {names}. Check the "
            "server integrations; `python -m dashboard check` fails until events arrive. "
            "Each dataset's times are on Freshness & delivery.",
        )
    oldest = min(row.last_sent_at for row in rows)
    return Notice(
        "caption",
        f"{count} datasets received events recently; the quietest last received one "
        f"{fmt.ago(now_s - oldest)} ({_moment(oldest)}).",
    )


def pipeline_notices(health: pd.DataFrame, now_s: float, max_silence_hours: float) -> list[Notice]:
    """The notices for `health` (pipeline_health's frame) at `now_s`: the errors first,
    then the warnings, then the datasets that are fine, each state's datasets in the
    frame's order."""
    limit_s = max_silence_hours * 3600
    by_state: dict[str, list[Any]] = {"rejected": [], "silent": [], "no_server": [], "ok": []}
    for row in health.itertuples(index=False):
        by_state[_state(row, now_s, limit_s)].append(row)
    notices = []
    for state, rows in by_state.items():
        if len(rows) >= GROUP_FROM:
            notices.append(_shared(state, rows, now_s, max_silence_hours))
        else:
            notices.extend(_one(state, row, now_s, max_silence_hours) for row in rows)
    return notices
