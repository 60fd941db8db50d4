"""Meta's numbers in the store: Dataset Quality API snapshots and the EMQ calibration.

Owns the writes and reads of `meta_snapshots` and `meta_calibrations`
(dashboard.store.database). A snapshot is keyed by dataset, event name and time, so
importing the same answer again adds nothing; an answer is stored in one transaction, so
a failure stores none of it. Snapshots belong to the store, not to the slice of events:
the queries here take a dataset list and a time range, nothing else. SQLAlchemy Core,
no Streamlit.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dashboard.core import clock
from dashboard.core.meta_quality import Snapshot
from dashboard.store.database import (
    meta_calibrations,
    meta_snapshots,
    next_id,
    write_transaction,
)
from dashboard.store.locks import retry_on_lock


def store_snapshots(engine: Engine, snapshots: Sequence[Snapshot]) -> int:
    """Store the snapshots not stored yet, all in one transaction; returns how many were
    added (0 for a re-import)."""
    table = meta_snapshots
    now = clock.now()

    def write() -> int:
        with write_transaction(engine) as connection:
            added = 0
            for snapshot in snapshots:
                key = sa.and_(
                    table.c.dataset_id == snapshot.dataset_id,
                    table.c.event_name == snapshot.event_name,
                    table.c.fetched_at == snapshot.fetched_at,
                )
                if connection.execute(sa.select(sa.func.count()).where(key)).scalar():
                    continue
                connection.execute(
                    sa.insert(table).values(
                        dataset_id=snapshot.dataset_id,
                        event_name=snapshot.event_name,
                        fetched_at=snapshot.fetched_at,
                        agent=snapshot.agent,
                        emq=snapshot.emq,
                        event_coverage=snapshot.event_coverage,
                        acr=snapshot.acr,
                        upload_frequency=snapshot.upload_frequency,
                        raw=snapshot.raw_json(),
                        imported_at=now,
                    )
                )
                added += 1
            return added

    return retry_on_lock(write)


def load_snapshots(
    engine: Engine,
    datasets: Sequence[str] = (),
    since_ts: float | None = None,
    until_ts: float | None = None,
) -> list[Snapshot]:
    """Snapshots of `datasets` (all when empty) fetched in [since_ts, until_ts), oldest
    first."""
    table = meta_snapshots
    query = sa.select(
        table.c.dataset_id, table.c.event_name, table.c.fetched_at, table.c.raw, table.c.agent
    )
    if datasets:
        query = query.where(table.c.dataset_id.in_(list(datasets)))
    if since_ts is not None:
        query = query.where(table.c.fetched_at >= since_ts)
    if until_ts is not None:
        query = query.where(table.c.fetched_at < until_ts)
    query = query.order_by(table.c.fetched_at, table.c.dataset_id, table.c.event_name)
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return [
        Snapshot(
            str(r.dataset_id), str(r.event_name), float(r.fetched_at), json.loads(r.raw), r.agent
        )
        for r in rows
    ]


@dataclass(frozen=True)
class StoredFit:
    """One stored calibration: Meta ≈ intercept + slope × estimate, clipped to 0-10."""

    fitted_at: float
    intercept: float
    slope: float
    mae_raw: float
    mae_calibrated: float
    points: list[dict]  # {"dataset_id", "event_name", "fetched_at", "meta", "estimate"}


def save_fit(engine: Engine, fit: StoredFit) -> None:
    """Store a calibration; the newest is the one in use."""

    def write() -> None:
        with write_transaction(engine) as connection:
            connection.execute(
                sa.insert(meta_calibrations).values(
                    id=next_id(connection, meta_calibrations.c.id),
                    fitted_at=fit.fitted_at,
                    intercept=fit.intercept,
                    slope=fit.slope,
                    mae_raw=fit.mae_raw,
                    mae_calibrated=fit.mae_calibrated,
                    points=json.dumps(fit.points),
                )
            )

    retry_on_lock(write)


def latest_fit(engine: Engine) -> StoredFit | None:
    """The calibration in use (the newest stored), or None."""
    table = meta_calibrations
    query = sa.select(table).order_by(table.c.id.desc()).limit(1)
    with engine.connect() as connection:
        row = connection.execute(query).first()
    if row is None:
        return None
    return StoredFit(
        float(row.fitted_at),
        float(row.intercept),
        float(row.slope),
        float(row.mae_raw),
        float(row.mae_calibrated),
        json.loads(row.points),
    )


def meta_version(engine: Engine) -> tuple[int, float, int]:
    """(snapshots, newest import time, newest calibration id): changes with every
    snapshot import and every fit, so a cache keyed on it never shows stale Meta numbers
    (the events' data_version does not move when only snapshots arrive)."""
    snaps, cals = meta_snapshots, meta_calibrations
    with engine.connect() as connection:
        count, newest = connection.execute(
            sa.select(sa.func.count(), sa.func.max(snaps.c.imported_at))
        ).one()
        fit = connection.execute(sa.select(sa.func.max(cals.c.id))).scalar()
    return int(count), float(newest or 0.0), int(fit or 0)
