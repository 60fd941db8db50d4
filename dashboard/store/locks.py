"""The store's one lock policy: how long and how often to try again while another process
holds the store.

Owns `is_lock_error` (what each backend says when a lock is held) and `LockPolicy`. Every
wait for a lock in the package goes through `LockPolicy.run` (`retry_on_lock`): opening
a DuckDB file (`database.make_engine`), opening a write transaction
(`database.write_transaction`) and the dashboard's reads (`dashboard.ui.shared`). DuckDB
lets one process at a time open a file read-write; the importer and the dashboard open
it per transaction or query, so the holder lets go within one of those, and whoever
finds it locked waits instead of failing.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

LOCK_WAIT_S = 60.0

# What each backend says when another process holds what we need: DuckDB's file lock,
# SQLite's database and table locks, PostgreSQL's deadlock and lock timeout.
LOCK_MESSAGES = (
    "could not set lock",
    "database is locked",
    "database table is locked",
    "deadlock detected",
    "lock timeout",
)


def is_lock_error(exc: BaseException) -> bool:
    """True when `exc` says another process holds a lock the store needs."""
    text = str(exc).lower()
    return any(message in text for message in LOCK_MESSAGES)


@dataclass(frozen=True)
class LockPolicy:
    """Try again after short, jittered, growing pauses until `wait_s` seconds after the
    first try, then let the lock error through. Any other error goes through at once.

    The budget is a deadline, not a count of tries, so waits nest without adding up: a
    unit of work retried under the policy whose connection already waited the whole
    budget when opening (DuckDB) is not tried again.
    """

    wait_s: float = LOCK_WAIT_S
    first_pause_s: float = 0.02
    # Short: the holder's transactions are short, and a waiter should take the store
    # soon after it is free.
    max_pause_s: float = 0.1

    def run(self, fn: Callable[[], T]) -> T:
        """`fn()`, tried again while it fails for a lock."""
        deadline = time.monotonic() + self.wait_s
        pause = self.first_pause_s
        while True:
            try:
                return fn()
            except Exception as exc:  # noqa: BLE001 - re-raised unless it is a lock
                if not is_lock_error(exc) or time.monotonic() + pause > deadline:
                    raise
            # Jittered: two waiting processes should not retry in lockstep.
            time.sleep(pause * random.uniform(0.5, 1.5))
            pause = min(pause * 2, self.max_pause_s)


LOCK_POLICY = LockPolicy()


def retry_on_lock(fn: Callable[[], T], policy: LockPolicy = LOCK_POLICY) -> T:
    """`fn()`, waiting under `policy` (by default the store's one policy) while a lock is
    held."""
    return policy.run(fn)
