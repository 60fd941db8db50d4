"""Simulated time: calendar helpers and the two time-ordered queues of the generator.

Owns the calendar arithmetic on Unix seconds (weekday, office hours, ISO text) and
:class:`Timeline`: the heap of work still to happen (server events waiting for their
sender, CRM and messaging stages not reached yet), the heap of finished records waiting
for their ``sent_at`` turn, and the records released in ``sent_at`` order. Both heaps
share one sequence number, so records of the same second keep their creation order.
"""

from __future__ import annotations

import heapq
from datetime import UTC, datetime

from .identities import SampleRng

# Kinds of pending items: a server event waiting for its batch, or the next stage of a
# CRM lead or of a WhatsApp conversation (drawn only when its time comes).
SERVER_EVENT, CRM_STAGE, MESSAGING_STAGE = range(3)

# Beyond any simulated time: flushes everything still pending.
END_OF_TIME = 1 << 62

_HMS = tuple(f"{h:02d}:{m:02d}:{s:02d}Z" for h in range(24) for m in range(60) for s in range(60))


def weekday(ts: int) -> int:
    """Day of the week of a Unix time, Monday = 0 (UTC)."""
    return (ts // 86400 + 3) % 7  # 1970-01-01 was a Thursday


def business_hours(rng: SampleRng, t: int) -> int:
    """`t` if it falls between 07:00 and 18:00, else a random 07:00-17:00 time that follows."""
    hour = t // 3600 % 24
    if 7 <= hour < 18:
        return t
    day = t // 86400 + (1 if hour >= 18 else 0)
    return day * 86400 + 7 * 3600 + rng.below(10 * 3600)


def iso_full(ts: int) -> str:
    """Unix time as ISO 8601 UTC text with a Z, to the second."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Timeline:
    """Pending items and finished records, each in a heap ordered by (time, sequence)."""

    __slots__ = ("items", "out", "ready", "seq", "_iso_days")

    def __init__(self) -> None:
        self.items: list = []  # (time, seq, item kind, a, b, c): server events, lazy stages
        self.out: list = []  # (sent_at, seq, record, meta): finished records
        self.ready: list = []  # records final in sent_at order, handed out after each slice
        self.seq = 0
        self._iso_days: dict[int, str] = {}

    def iso(self, ts: int) -> str:
        """ISO text of a Unix time (same as iso_full, much faster)."""
        # Cached day prefix + "HH:MM:SS" table: formatting a datetime per record is slow.
        day, sod = divmod(ts, 86400)
        prefix = self._iso_days.get(day)
        if prefix is None:
            prefix = self._iso_days[day] = iso_full(day * 86400)[:11]
        return prefix + _HMS[sod]

    def push_item(self, t: int, kind: int, a, b, c) -> None:
        """Schedule a pending item of `kind` at time `t`."""
        self.seq += 1
        heapq.heappush(self.items, (t, self.seq, kind, a, b, c))

    def push_out(self, sent: int, record: dict, meta) -> None:
        """Queue a finished record; meta is None for Pixel records, the request's otherwise."""
        self.seq += 1
        heapq.heappush(self.out, (sent, self.seq, record, meta))

    def release(self, watermark: int) -> None:
        """Move the records sent before `watermark` to the ready list."""
        # Nothing produced later can be sent before the watermark, so these are final.
        out, ready, pop = self.out, self.ready, heapq.heappop
        while out and out[0][0] < watermark:
            ready.append(pop(out))

    def take_ready(self) -> list:
        """The released (sent_at, seq, record, meta) tuples, in order; empties the list."""
        ready, self.ready = self.ready, []
        return ready
