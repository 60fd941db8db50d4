"""`ingest --follow`: keep importing a growing log file or folder until interrupted.

Owns the loop. Each round is an ordinary import (the same checkpoints, so nothing is
read twice, and new files in a folder are picked up); between rounds the store is left
free for the dashboard. A round that finds no file yet, or nothing new, waits for the
next one. Ctrl-C ends the loop after the round in progress.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterable

from dashboard.ingest.importer import ingest
from dashboard.ingest.summary import ImportSummary, IngestError
from dashboard.store.database import StoreEngine, release_connections


def add_up(total: ImportSummary, part: ImportSummary) -> None:
    """Add one round's counts to the running total (formats: the latest word on each file)."""
    for name in (
        "lines_read",
        "blank_lines",
        "lines_with_events",
        "lines_quarantined",
        "events_imported",
        "events_quarantined",
    ):
        setattr(total, name, getattr(total, name) + getattr(part, name))
    total.quarantined_by_reason.update(part.quarantined_by_reason)
    total.lines_skipped.update(part.lines_skipped)
    total.formats.update(part.formats)
    total.files = len(total.formats)
    total.pending_lines = part.pending_lines
    total.reimported_files += part.reimported_files


def follow(
    paths: Iterable[str],
    engine: StoreEngine,
    *,
    interval_s: float = 5.0,
    on_round: Callable[[ImportSummary], None] = lambda summary: None,
    rounds: int | None = None,
    **ingest_options,
) -> ImportSummary:
    """Import `paths` every `interval_s` seconds until Ctrl-C (or `rounds` done); returns
    the total. `on_round` sees each round that read something.

    The first Ctrl-C lets the round in progress finish (so the total is what was
    committed) and then stops; a second one stops at once, which is safe too: an
    interrupted import resumes from its last commit."""
    paths = list(paths)
    total = ImportSummary()
    stop = threading.Event()
    previous = None
    if threading.current_thread() is threading.main_thread():

        def on_interrupt(signum, frame) -> None:
            if stop.is_set():
                raise KeyboardInterrupt
            stop.set()

        previous = signal.signal(signal.SIGINT, on_interrupt)
    done = 0
    try:
        while not stop.is_set() and (rounds is None or done < rounds):
            started = time.monotonic()
            try:
                summary = ingest(paths, engine, **ingest_options)
            except IngestError as exc:
                if "no " not in str(exc):  # "no such file", "no log files found": wait
                    raise
            else:
                add_up(total, summary)
                if summary.lines_read or summary.reimported_files:
                    on_round(summary)
            release_connections(engine)  # leave the store free between rounds (DuckDB's file lock)
            done += 1
            if rounds is None or done < rounds:
                stop.wait(max(0.0, interval_s - (time.monotonic() - started)))
    except KeyboardInterrupt:
        pass  # the second Ctrl-C: what was committed stays, and the total is reported
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    return total
