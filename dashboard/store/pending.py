"""The stored queue of open requests: requests still waiting for Meta's answer.

Owns every statement on the `open_requests` table. The queue itself (which answer takes
which request) is `dashboard.ingest.pairing`; this module only reads a source's queue
when its import starts and writes the queue's changes in the transaction of the
checkpoint they belong to, so an answer read by a later import still finds its request.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dashboard.store.database import open_requests


def load_open_requests(connection: Connection, source_id: int) -> list[tuple[int, str, str | None]]:
    """The source's open requests as (line_no, queue_key, dataset_id), in no set order."""
    rows = connection.execute(
        sa.select(
            open_requests.c.line_no, open_requests.c.queue_key, open_requests.c.dataset_id
        ).where(open_requests.c.source_id == source_id)
    ).all()
    return [tuple(row) for row in rows]


def write_open_request_changes(
    connection: Connection, source_id: int, added: list[dict], taken: list[int]
) -> None:
    """Store the queue's changes: `taken` lines answered, `added` rows (source_id,
    line_no, queue_key, dataset_id) new. Called inside the checkpoint's transaction."""
    if taken:
        connection.execute(
            sa.delete(open_requests).where(
                open_requests.c.source_id == source_id, open_requests.c.line_no.in_(taken)
            )
        )
    if added:
        connection.execute(sa.insert(open_requests), added)


def forget_open_requests(connection: Connection, source_id: int) -> None:
    """Drop the source's whole queue (the source is read again from its start)."""
    connection.execute(sa.delete(open_requests).where(open_requests.c.source_id == source_id))
