"""Requests waiting for Meta's answer on a later line of the same log.

Owns the queue of open requests of one source (server-side GTM and WooCommerce logs
write the answer after the request, other lines in between). A request joins its queue
when read; an answer takes the oldest request of its queue (and of its dataset, when the
answer names one). The queue is kept in the store with the checkpoint
(`dashboard.store.pending`: `drain` gives the changes the importer writes there in the
checkpoint's transaction), so an answer read by a later import still finds its request.
"""

from __future__ import annotations

from collections import defaultdict

from dashboard.ingest.formats.base import Pending
from dashboard.store.database import StoreConnection
from dashboard.store.pending import load_open_requests


class OpenRequests:
    """The open requests of one source, with the changes not yet written."""

    def __init__(self, source_id: int, rows: list[tuple[int, str, str | None]] = ()) -> None:
        self.source_id = source_id
        # queue key -> [(line_no, dataset_id)], oldest first
        self._queues: dict[str, list[tuple[int, str | None]]] = defaultdict(list)
        for line_no, key, dataset_id in sorted(rows):
            self._queues[key].append((line_no, dataset_id))
        self._stored = {line_no for line_no, _, _ in rows}
        self._added: dict[int, tuple[str, str | None]] = {}
        self._taken: set[int] = set()

    @classmethod
    def load(cls, connection: StoreConnection, source_id: int) -> OpenRequests:
        """The source's queue as stored (read in the transaction that opens the file)."""
        return cls(source_id, load_open_requests(connection, source_id))

    def add(self, pending: Pending, line_no: int) -> None:
        key = pending.key[:512]
        self._queues[key].append((line_no, pending.dataset_id))
        self._added[line_no] = (key, pending.dataset_id)

    def take(self, key: str, dataset_id: str | None) -> int | None:
        """The line of the oldest open request of `key` (and `dataset_id`, when given and
        the request names one), now answered; None when none waits."""
        queue = self._queues.get(key[:512])
        if not queue:
            return None
        for i, (line_no, wanted) in enumerate(queue):
            if dataset_id is None or wanted is None or wanted == dataset_id:
                del queue[i]
                if line_no in self._added:
                    del self._added[line_no]
                else:
                    self._taken.add(line_no)
                return line_no
        return None

    def drain(self) -> tuple[list[dict], list[int]]:
        """(rows to insert, stored lines to delete) since the last drain."""
        added = [
            {"source_id": self.source_id, "line_no": line_no, "queue_key": key, "dataset_id": ds}
            for line_no, (key, ds) in sorted(self._added.items())
        ]
        taken = sorted(self._taken)
        self._stored.update(self._added)
        self._stored.difference_update(taken)
        self._added, self._taken = {}, set()
        return added, taken
