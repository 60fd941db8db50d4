"""Writing a sample to disk: JSONL lines (plain or gzip), and where its truth file goes.

Owns the line encoding (compact JSON, orjson when installed, the same bytes either way),
the deterministic gzip framing, the writer thread that overlaps compression and file
writes with generating the next records, and the name of the ``.truth.json`` file that
sits beside a log.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

_LINES_PER_CHUNK = 4096


def truth_path(path: Path) -> Path:
    """<path minus .gz/.jsonl>.truth.json, e.g. demo.jsonl.gz -> demo.truth.json."""
    p = Path(path)
    name = p.name
    if name.endswith(".gz"):
        name = name[:-3]
    if name.endswith(".jsonl"):
        name = name[:-6]
    return p.with_name(name + ".truth.json")


def line_encoder() -> Callable[[dict], bytes]:
    """One record -> its line (bytes, no newline): json.dumps(rec, separators=(",", ":"))."""
    try:
        import orjson
    except ImportError:  # same bytes, ~3x slower
        encode = json.JSONEncoder(separators=(",", ":")).encode
        return lambda record: encode(record).encode("utf-8")
    # The same bytes as the json module's compact form for what the generator emits:
    # ASCII text, ints and short decimal floats (tests/test_sample.py checks the bytes).
    return orjson.dumps


def _pump(chunks: queue.Queue, sinks: list, errors: list) -> None:
    # Runs in a thread: zlib and file writes release the GIL, so compression overlaps
    # with generating the next records. Keeps draining after an error so put() never blocks.
    while True:
        buf = chunks.get()
        if buf is None:
            return
        if not errors:
            try:
                for sink in sinks:
                    sink.write(buf)
            except BaseException as exc:  # re-raised in the caller's thread
                errors.append(exc)


def _open_sinks(stack: contextlib.ExitStack, paths: list[Path], compresslevel: int) -> list:
    sinks = []
    for path in paths:
        raw = stack.enter_context(open(path, "wb"))
        if path.name.endswith(".gz"):
            # mtime=0 and no file name in the header keep the bytes deterministic.
            sinks.append(
                stack.enter_context(
                    gzip.GzipFile(
                        filename="",
                        mode="wb",
                        fileobj=raw,
                        compresslevel=compresslevel,
                        mtime=0,
                    )
                )
            )
        else:
            sinks.append(raw)
    return sinks


def write_records(
    paths: list[Path], records: Iterator[dict], encode: Callable, compresslevel: int
) -> None:
    """Write every record as one line to each path (gzip-compressed when it ends in .gz)."""
    with contextlib.ExitStack() as stack:
        sinks = _open_sinks(stack, paths, compresslevel)
        chunks: queue.Queue = queue.Queue(maxsize=8)
        errors: list = []
        writer = threading.Thread(target=_pump, args=(chunks, sinks, errors), daemon=True)
        writer.start()
        try:
            lines: list[bytes] = []
            for rec in records:
                lines.append(encode(rec))
                if len(lines) >= _LINES_PER_CHUNK:
                    lines.append(b"")
                    chunks.put(b"\n".join(lines))
                    lines = []
                    if errors:
                        break
            if lines and not errors:
                lines.append(b"")
                chunks.put(b"\n".join(lines))
        finally:
            chunks.put(None)
            writer.join()
        if errors:
            raise errors[0]
