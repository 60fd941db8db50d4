"""Reconciliation results in the store: the latest orders and CRM reconciliation, for
the Overview and the Reconcile page.

Owns the writes and reads of `reconciliations` (dashboard.store.database): each run's
summary (counts, rates, order and lead ids, bad rows with their reasons), never an
export's plaintext e-mail or phone (the readers hash them before anything is computed).
SQLAlchemy Core, no Streamlit.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dashboard.core import clock
from dashboard.store.database import next_id, reconciliations, write_transaction
from dashboard.store.locks import retry_on_lock


def save_reconciliation(engine: Engine, kind: str, source: str, summary: dict[str, Any]) -> None:
    """Store one run's summary (`kind`: "orders" or "crm"; `source`: the file's name)."""
    total = summary.get("orders", summary.get("changes", 0))
    matched = summary.get("matched", summary.get("sent", 0))

    def write() -> None:
        with write_transaction(engine) as connection:
            connection.execute(
                sa.insert(reconciliations).values(
                    id=next_id(connection, reconciliations.c.id),
                    ran_at=clock.now(),
                    kind=kind,
                    source=source[:256],
                    total=int(total),
                    matched=int(matched),
                    summary=json.dumps(summary, ensure_ascii=False),
                )
            )

    retry_on_lock(write)


def latest_reconciliation(engine: Engine, kind: str) -> dict[str, Any] | None:
    """The newest run of `kind`: its summary plus `ran_at` and `source`, or None."""
    table = reconciliations
    query = sa.select(table).where(table.c.kind == kind).order_by(table.c.id.desc()).limit(1)
    with engine.connect() as connection:
        row = connection.execute(query).first()
    if row is None:
        return None
    return {**json.loads(row.summary), "ran_at": float(row.ran_at), "source_name": row.source}
