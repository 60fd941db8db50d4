"""What to fix next: the EMQ gain of each missing parameter, ranked by what the
integration can actually recover; parameter coverage tables.
"""

from __future__ import annotations

import pandas as pd

from dashboard.core.config import Config
from dashboard.core.filters import Filters
from dashboard.core.params import PARAMS, applicable_params
from dashboard.store.handles import Engine
from dashboard.store.queries import match as match_queries

WHAT_TO_FIX_COLUMNS = (
    "event_name",
    "action_source",
    "parameter",
    "server_events",
    "coverage",
    "recoverable_events",
    "recoverable_share",
    "emq_now",
    "emq_if_fixed",
    "recoverable_gain",
    "gain_slice",
    "gain_event",
)


def what_to_fix(
    engine: Engine, filters: Filters, config: Config, limit: int | None = 50
) -> pd.DataFrame:
    """Expected EMQ gain per (event name, action source, parameter) if the parameter were valid
    on every such event. Only parameters that this action source can send are suggested.

    gain_event: rise of that event's mean estimate; gain_slice: rise of the slice's mean.
    recoverable_events: events lacking a valid value whose person had already sent one
    on another event (see `recoverable_counts`); recoverable_share: of those lacking it.
    recoverable_gain: rise of the slice's mean if only those were fixed, taken as
    gain_slice * recoverable_events / events lacking, i.e. assuming the recoverable
    events gain like the average lacking event. Ranked by recoverable_gain, then
    gain_slice: advice nobody can act on (a value the integration never sees, such as
    an e-mail on an anonymous page view) sinks, but is still listed.
    """
    candidates = [p for p in PARAMS if config.emq_points.get(p, 0.0) > 0] + [
        "client_ip_address",
        "client_user_agent",
    ]
    rows = match_queries.fix_gains(engine, filters, config, candidates).to_dict("records")
    total = sum(int(r["server_events"]) for r in rows)
    recoverable = {
        (r["event_name"], r["action_source"]): r
        for r in match_queries.recoverable_counts(engine, filters, candidates).to_dict("records")
    }
    records = []
    for row in rows:
        n = int(row["server_events"])
        known = recoverable.get((row["event_name"], row["action_source"]), {})
        allowed = applicable_params(
            None if row["action_source"] == "(none)" else row["action_source"]
        )
        for param in candidates:
            gain = float(row[f"gain__{param}"] or 0.0)
            if gain <= 1e-9 or param not in allowed:
                continue
            # A positive gain means some events lack a valid value.
            lacking = n - int(row[f"valid__{param}"])
            recoverable_events = int(known.get(f"recoverable__{param}", 0))
            records.append(
                {
                    "event_name": row["event_name"],
                    "action_source": row["action_source"],
                    "parameter": param,
                    "server_events": n,
                    "coverage": int(row[f"valid__{param}"]) / n,
                    "recoverable_events": recoverable_events,
                    "recoverable_share": recoverable_events / lacking,
                    "emq_now": float(row["score_sum"]) / n,
                    "emq_if_fixed": (float(row["score_sum"]) + gain) / n,
                    "recoverable_gain": gain / total * recoverable_events / lacking,
                    "gain_slice": gain / total,
                    "gain_event": gain / n,
                }
            )
    frame = pd.DataFrame(records, columns=list(WHAT_TO_FIX_COLUMNS))
    ranked = frame.sort_values(["recoverable_gain", "gain_slice", "gain_event"], ascending=False)
    return (ranked if limit is None else ranked.head(limit)).reset_index(drop=True)


def coverage_table(
    frame: pd.DataFrame, by: str, applicable: dict[str, set[str]] | None = None
) -> pd.DataFrame:
    """Parameter coverage (0-1) per group from a `block_frame` already computed.

    With `applicable` (group -> parameters its action sources can carry, from
    `applicable_by_group`), a parameter that cannot apply to a group is NaN ("n/a"),
    while one that can and was never sent stays a real 0: a slice never hides a gap.
    """
    out = frame[[by, "server_sent"]].copy()
    for param in PARAMS:
        out[param] = frame[f"valid__{param}"] / frame["server_sent"].where(frame["server_sent"] > 0)
        if applicable is not None:
            allowed = frame[by].astype(str).map(lambda g, p=param: p in applicable.get(g, PARAMS))
            out[param] = out[param].where(allowed)
    return out[out["server_sent"] > 0].reset_index(drop=True)


def applicable_by_group(pairs: pd.DataFrame, by: str) -> dict[str, set[str]]:
    """Group -> the parameters any of its action sources can carry (params.APPLICABLE_PARAMS)."""
    out: dict[str, set[str]] = {}
    for group, source in pairs[[by, "action_source"]].itertuples(index=False, name=None):
        params = applicable_params(None if source == "(none)" else source)
        out.setdefault(str(group), set()).update(params)
    return out
