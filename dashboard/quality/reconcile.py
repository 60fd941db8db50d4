"""Reconciliation against the source of truth: which real orders reached Meta as server
Purchases, which did not, and which arrived wrong.

Owns the definitions (each order counts once, in this order of precedence for its
status): an order is **matched** when a server Purchase Meta accepted carries its id
(the event_id, or custom_data.order_id: config [reconcile] match_on); **rejected** when
every server Purchase carrying it was in a batch Meta rejected; **missing** when none
carries it. Among matched orders, compared with the first accepted send:
**value_mismatch** (same currency, values more than 0.01 apart, or no value sent),
**currency_mismatch** (another or no currency), **late** (the first send of the order,
accepted or not, more than `late_after_s` after it was created), and **sent_twice**
(several accepted sends Meta would not deduplicate: different event_ids, or the same one
more than 48 h apart). A missing order whose e-mail hash matches a server Purchase
accepted within 7 days after it, on a Purchase whose id is no order of the export, is
also counted as **sent_under_another_id**: the purchase reached Meta under an id that is
not the order's, or none (a dedup and attribution fault).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from dashboard.core.config import Config
from dashboard.core.definitions import DEDUP_WINDOW_S
from dashboard.core.orders import Order
from dashboard.store.queries.reconcile import keyless_events, purchase_sends

DAY_S = 86_400
VALUE_TOLERANCE = 0.01
EMAIL_WINDOW_S = 7 * 86_400
UNKNOWN_CAMPAIGN = "unknown"


@dataclass(frozen=True)
class Settings:
    """How orders are matched (config [reconcile])."""

    late_after_s: float = 3600.0
    list_cap: int = 100


def _day(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).date().isoformat()


def _sends_by_key(sends: pd.DataFrame) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = defaultdict(list)
    for send in sends.to_dict("records"):
        if send["match_key"] is not None and not pd.isna(send["match_key"]):
            grouped[str(send["match_key"])].append(send)
    return grouped


def _twice(accepted: list[dict]) -> bool:
    if len({s["event_id"] for s in accepted}) > 1:
        return True
    times = sorted(s["sent_at"] for s in accepted)
    return len(times) > 1 and times[-1] - times[0] > DEDUP_WINDOW_S


def _mismatches(order: Order, first: dict) -> list[str]:
    found = []
    currency = first["currency"]
    if currency is None or pd.isna(currency) or str(currency).upper() != order.currency:
        found.append("currency_mismatch")
    else:
        value = first["value"]
        # Rounded: 20.01 - 20.00 is 0.0100000000000016 in binary floating point.
        apart = (
            None if value is None or pd.isna(value) else round(abs(float(value) - order.value), 6)
        )
        if apart is None or apart > VALUE_TOLERANCE:
            found.append("value_mismatch")
    return found


def classify(order: Order, sends: list[dict], settings: Settings) -> dict[str, Any]:
    """One order's status, findings and campaign (from its first accepted send)."""
    accepted = [s for s in sends if s["accepted"]]
    out: dict[str, Any] = {
        "order_id": order.order_id,
        "line": order.line,
        "created_at": order.created_at,
        "status": "matched" if accepted else "rejected" if sends else "missing",
        "findings": [],
        "campaign": accepted[0]["campaign"] if accepted else UNKNOWN_CAMPAIGN,
        "first_sent_at": min(s["sent_at"] for s in sends) if sends else None,
    }
    if accepted:
        first = accepted[0]
        out["findings"] += _mismatches(order, first)
        out["sent_value"] = first["value"]
        out["sent_currency"] = first["currency"]
        if out["first_sent_at"] - order.created_at > settings.late_after_s:
            out["findings"].append("late")
        if _twice(accepted):
            out["findings"].append("sent_twice")
    return out


def _by_email(sends: pd.DataFrame, order_ids: set[str]) -> dict[str, list[float]]:
    """Send times per e-mail hash of the accepted sends that carry no order of the export
    (a send already matched to another order is that order's, not a stray)."""
    found: dict[str, list[float]] = defaultdict(list)
    for em_hash, key, accepted, sent_at in zip(
        sends["em_hash"], sends["match_key"], sends["accepted"], sends["sent_at"], strict=True
    ):
        if em_hash is None or pd.isna(em_hash) or not accepted:
            continue
        if key is not None and not pd.isna(key) and str(key) in order_ids:
            continue
        found[str(em_hash)].append(float(sent_at))
    return found


def _rate(matched: int, orders: int) -> float | None:
    return round(matched / orders, 6) if orders else None


def _grouped(rows: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    groups: dict[str, dict[str, int]] = defaultdict(
        lambda: {"orders": 0, "matched": 0, "missing": 0, "rejected": 0}
    )
    for row in rows:
        group = groups[row[key]]
        group["orders"] += 1
        group[row["status"]] += 1
    return {
        name: {**counts, "match_rate": _rate(counts["matched"], counts["orders"])}
        for name, counts in sorted(groups.items())
    }


def reconcile_orders(
    orders: list[Order], sends: pd.DataFrame, settings: Settings
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The reconciliation's summary (the JSON contract) and one row per order."""
    by_key = _sends_by_key(sends)
    by_email = _by_email(sends, {o.order_id for o in orders})
    rows = []
    for order in orders:
        row = classify(order, by_key.get(order.order_id, []), settings)
        row["day"] = _day(order.created_at)
        if row["status"] == "missing" and order.em_hash:
            times = by_email.get(order.em_hash, [])
            if any(0 <= t - order.created_at <= EMAIL_WINDOW_S for t in times):
                row["findings"].append("sent_under_another_id")
        rows.append(row)
    count = lambda status: sum(r["status"] == status for r in rows)  # noqa: E731
    flagged = lambda finding: sum(finding in r["findings"] for r in rows)  # noqa: E731
    missing_ids = [r["order_id"] for r in rows if r["status"] == "missing"]
    summary = {
        "orders": len(rows),
        "matched": count("matched"),
        "missing": count("missing"),
        "rejected": count("rejected"),
        "value_mismatch": flagged("value_mismatch"),
        "currency_mismatch": flagged("currency_mismatch"),
        "late": flagged("late"),
        "sent_twice": flagged("sent_twice"),
        "sent_under_another_id": flagged("sent_under_another_id"),
        "match_rate": _rate(count("matched"), len(rows)),
        "missing_orders": {
            "count": len(missing_ids),
            "ids": missing_ids[: settings.list_cap],
            "capped": len(missing_ids) > settings.list_cap,
        },
        "by_day": _grouped(rows, "day"),
        "by_campaign": _grouped(rows, "campaign"),
    }
    return summary, rows


def reconcile_against_store(
    engine, orders: list[Order], config: Config, datasets: Sequence[str] = ()
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """`reconcile_orders` against the server Purchases sent from a day before the first
    order to 8 days after the last (Meta takes events up to 7 days old)."""
    times = [o.created_at for o in orders] or [0.0]
    sends = purchase_sends(
        engine,
        match_on=config.reconcile_match_on,
        event_name=config.reconcile_purchase_event,
        sent_from=min(times) - DAY_S,
        sent_to=max(times) + 8 * DAY_S,
        datasets=datasets,
    )
    settings = Settings(config.reconcile_late_after_s, config.reconcile_list_cap)
    summary, rows = reconcile_orders(orders, sends, settings)
    summary["warnings"] = []
    if config.reconcile_match_on == "order_id":
        total, keyless = keyless_events(
            engine,
            column="order_id",
            event_names=[config.reconcile_purchase_event],
            sent_from=min(times) - DAY_S,
            sent_to=max(times) + 8 * DAY_S,
        )
        if total and keyless == total:
            summary["warnings"].append(
                f"None of the {total:,} server {config.reconcile_purchase_event} events of the "
                "period carries custom_data.order_id: either your integration does not send "
                'it (use match_on = "event_id"), or the log was imported by an older '
                "version, which did not keep it (import it again into a new store)."
            )
    return summary, rows


def findings_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Every order that is not simply matched, with what is wrong: the list to download."""
    out = []
    for row in rows:
        problems = ([] if row["status"] == "matched" else [row["status"]]) + row["findings"]
        problems = [problem.replace("_", " ") for problem in problems]  # words, for people
        if problems:
            out.append(
                {
                    "order_id": row["order_id"],
                    "line": row["line"],
                    "created_at": _iso(row["created_at"]),
                    "status": row["status"],
                    "findings": ", ".join(problems),
                    "first_sent_at": _iso(row["first_sent_at"]),
                    "sent_value": row.get("sent_value"),
                    "sent_currency": row.get("sent_currency"),
                    "campaign": row["campaign"],
                }
            )
    return pd.DataFrame(out, columns=list(FINDING_COLUMNS))


FINDING_COLUMNS = (
    "order_id",
    "line",
    "created_at",
    "status",
    "findings",
    "first_sent_at",
    "sent_value",
    "sent_currency",
    "campaign",
)


def _iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return (
        datetime.fromtimestamp(seconds, tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )
