"""The bundled sample's orders export and CRM stage changes: the source of truth the
Reconcile page and `reconcile` check the sample log against.

Derived from the sample log itself (data/sample/sent_events.jsonl.gz), so the two always
agree, with seeded faults planted on top and counted in the file names' neighbour
`exports.truth.json`:
- the web shop (dataset 1111111111): one order per distinct Purchase event_id, at its
  event time, with the value and currency it was sent with and its hashed e-mail when an
  event carried one (never a plaintext one); plus `MISSING_ORDERS` orders
  neither stream ever sent, and `VALUE_CHANGED` orders whose real total differs from the
  value sent (a discount applied after the event);
- the CRM (dataset 2222222222, Kommo): one stage change per lead and stage the log sent,
  at its event time; plus `UNSENT_DEMOS` "Demo scheduled" changes that were never sent.
Standard library only.
"""

from __future__ import annotations

import csv
import gzip
import json
import random
import re
from pathlib import Path

_HEX64 = re.compile(r"[0-9a-f]{64}")
WEB_DATASET = "1111111111"
CRM_DATASET = "2222222222"
MISSING_ORDERS = 12
VALUE_CHANGED = 3
UNSENT_DEMOS = 5
# The CRM's stage names for the events it sends (data/config.toml [reconcile.crm.stages]).
STAGE_OF_EVENT = {
    "Contact": "Contacted",
    "Lead": "Qualified",
    "Schedule": "Demo scheduled",
    "Purchase": "Closed won",
}


def _events(log: Path):
    with gzip.open(log, "rt", encoding="utf-8") as fh:
        for line in fh:
            record = json.loads(line)
            if record.get("kind") == "pixel_event":
                yield record["dataset_id"], record["event"]
            elif record.get("kind") == "capi_request":
                for event in (record.get("request") or {}).get("data") or []:
                    yield record["dataset_id"], event


def _iso(seconds: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_sample_exports(log: str | Path, folder: str | Path, seed: int = 42) -> dict:
    """Write `orders.csv` and `crm_stages.csv` into `folder`; returns the planted counts."""
    rng = random.Random(seed)
    orders: dict[str, tuple] = {}
    stages: dict[tuple[str, str], float] = {}
    for dataset, event in _events(Path(log)):
        name, event_id = event.get("event_name"), event.get("event_id")
        custom = event.get("custom_data") or {}
        if dataset == WEB_DATASET and name == "Purchase" and event_id:
            em = (event.get("user_data") or {}).get("em")
            # Only a hashed e-mail is copied: a planted plaintext one stays out of the export.
            hashed = em if isinstance(em, str) and _HEX64.fullmatch(em) else ""
            held = orders.get(event_id)
            if held is None or (hashed and not held[3]):
                orders[event_id] = (
                    event["event_time"],
                    custom.get("value"),
                    custom.get("currency"),
                    hashed,
                )
        lead = (event.get("user_data") or {}).get("lead_id")
        if dataset == CRM_DATASET and name in STAGE_OF_EVENT and isinstance(lead, str):
            key = (lead, STAGE_OF_EVENT[name])
            stages[key] = min(stages.get(key, event["event_time"]), event["event_time"])
    rows = [
        [order_id, _iso(t), f"{value:.2f}", currency, email]
        for order_id, (t, value, currency, email) in sorted(orders.items())
        if isinstance(value, int | float) and currency
    ]
    changed = rng.sample(range(len(rows)), VALUE_CHANGED)
    for index in changed:
        rows[index][2] = f"{float(rows[index][2]) - 5:.2f}"  # the discount Meta never saw
    times = sorted(t for t, _, _, _ in orders.values())
    for n in range(MISSING_ORDERS):
        t = times[0] + rng.random() * (times[-1] - times[0])
        rows.append([f"ORD-9{n:05d}", _iso(t), f"{rng.randrange(20, 300)}.00", "EUR", ""])
    rows.sort(key=lambda row: (row[1], row[0]))
    folder = Path(folder)
    with (folder / "orders.csv").open("w", newline="") as fh:
        header = ["order_id", "created_at", "value", "currency", "email"]
        csv.writer(fh).writerows([header, *rows])
    changes = [[lead, stage, _iso(t)] for (lead, stage), t in stages.items()]
    qualified = sorted(lead for lead, stage in stages if stage == "Qualified")
    demoed = {lead for lead, stage in stages if stage == "Demo scheduled"}
    candidates = [lead for lead in qualified if lead not in demoed]
    for lead in rng.sample(candidates, UNSENT_DEMOS):
        t = stages[(lead, "Qualified")] + 86_400
        changes.append([lead, "Demo scheduled", _iso(t)])
    changes.sort(key=lambda row: (row[2], row[0], row[1]))
    with (folder / "crm_stages.csv").open("w", newline="") as fh:
        csv.writer(fh).writerows([["lead_id", "stage", "changed_at"], *changes])
    truth = {
        "orders": len(rows),
        "missing_orders": MISSING_ORDERS,
        "value_changed": VALUE_CHANGED,
        "stage_changes": len(changes),
        "unsent_demos": UNSENT_DEMOS,
    }
    (folder / "exports.truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    return truth
