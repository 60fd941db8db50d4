r"""Vectorised ingest: a block of JSONL lines turned into store rows by one DuckDB query.

Owns the columnar fast path of the importer. The per-record Python code in
`dashboard.ingest` (`build_row` and friends) stays the definition of every stored value;
this module computes the same values for the common, well-formed shape of a line in an
in-memory DuckDB, and hands every line it cannot decide *exactly* like the Python path
back to that path: lines that are not valid UTF-8 or hold an escape other than `\/`
and `\uXXXX` of a non-ASCII character (so every text DuckDB writes back is the
characters between its quotes), non-ASCII text wherever Python's and DuckDB's notions
of whitespace, digits or case could differ (user_data values, event_id, currency, test
codes, Meta's error texts; names, campaigns and stages may be any text), deep nesting,
invalid JSON, a container or field of an unexpected type, text with edge whitespace
where the Python path strips, numbers where a text is expected, values that would be
cut to length, bare-event records, the file's first line, and every event the Python
path would quarantine. JSON that orjson refuses but DuckDB reads (NaN, trailing commas,
huge exponents) is read alike by both paths
(see `formats.jsonline.lenient_loads`). `tests/test_fastpath.py` checks that both paths store
identical rows and quarantine on logs built to hit each case, and on random logs.

The query itself is built in `fastpath_plan` (one function per stage) from the SQL
expressions of `fastpath_sql`; this module owns choosing the lines, running the query on
them, and the Python functions the query calls.

One known difference is documented rather than handled: when a JSON object repeats a
key, DuckDB's reader keeps the first value and orjson the last (RFC 8259 leaves it
undefined). Either way nothing is lost and no plaintext is stored.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dashboard.core.config import Config, query_value
from dashboard.core.params import is_ip_address, value_reason
from dashboard.ingest.fastpath_plan import plan_query
from dashboard.ingest.fastpath_sql import (
    IP_OK_FUNCTION,
    PARAM_REASON_FUNCTION,
    QUERY_VALUE_FUNCTION,
)
from dashboard.ingest.rows import UNKNOWN_DATASET

_MAX_OPENERS = 900  # orjson stops at 1024 levels of nesting: leave deep lines to it
_BATCH_ROWS = 16_384  # rows per record batch handed to DuckDB
_MAX_RUNS = 256  # more runs of candidate lines than this: copy them out instead of slicing


def _ip_ok_batch(values: pa.Array) -> pa.Array:
    """`params.is_ip_address` for a column: RE2 has no pattern that reads IPs as it does."""
    return pa.array(
        [None if v is None else is_ip_address(v) for v in values.to_pylist()], pa.bool_()
    )


def _param_reason_batch(params: pa.Array, texts: pa.Array, lists: pa.Array) -> pa.Array:
    """`params.value_reason` for a column of values, each a text or a list of texts. The
    query calls it only for arrays that are not valid: a string value's reason is computed
    in SQL (`fastpath_sql.element_reason`), an array's rule for mixed elements is left to
    the one Python definition rather than copied."""
    out = []
    for param, text, elements in zip(
        params.to_pylist(), texts.to_pylist(), lists.to_pylist(), strict=True
    ):
        value = text if text is not None else elements
        out.append(None if param is None or value is None else value_reason(param, value))
    return pa.array(out, pa.int32())


def _query_value_batch(urls: pa.Array, names: pa.Array) -> pa.Array:
    out = []
    for url, name in zip(urls.to_pylist(), names.to_pylist(), strict=True):
        value = query_value(url, name) if url is not None and name is not None else None
        out.append(value[:256] if value else None)
    return pa.array(out, pa.string())


class BlockParser:
    """Turns blocks of raw JSONL lines into store rows; one in-memory DuckDB per import."""

    def __init__(
        self,
        config: Config,
        columns: tuple[str, ...],
        schema: pa.Schema,
        default_dataset: str = UNKNOWN_DATASET,
    ) -> None:
        self.plan = plan_query(config, columns)
        self.schema = schema
        self.config = config
        self.default_dataset = default_dataset
        self.connection = duckdb.connect()
        self.connection.execute("SET enable_progress_bar = false")
        self.connection.create_function(
            IP_OK_FUNCTION, _ip_ok_batch, ["VARCHAR"], "BOOLEAN", type="arrow"
        )
        self.connection.create_function(
            PARAM_REASON_FUNCTION,
            _param_reason_batch,
            ["VARCHAR", "VARCHAR", "VARCHAR[]"],
            "INTEGER",
            type="arrow",
            null_handling="special",  # one of text and list is always NULL
        )
        self.connection.create_function(
            QUERY_VALUE_FUNCTION,
            _query_value_batch,
            ["VARCHAR", "VARCHAR"],
            "VARCHAR",
            type="arrow",
        )
        self.connection.register("stage_map", self.plan.stage_map)

    def close(self) -> None:
        self.connection.close()

    def parse(
        self, data: bytes, ends: np.ndarray, first_line_no: int, source_id: int, max_bytes: int
    ) -> tuple[pa.Table, np.ndarray]:
        """Rows for the lines of `data` the fast path decides, and the indexes of the rest.

        `ends[i]` is the offset just after line i's newline. Line numbers are
        `first_line_no + i`. Lines left over go to the Python path, which also owns
        blank lines, the file's first line (a BOM), long lines and bad UTF-8.
        """
        count = len(ends)
        offsets = np.empty(count + 1, dtype=np.int64)
        offsets[0] = 0
        offsets[1:] = ends
        candidate, ascii_line = _candidate_lines(data, offsets, max_bytes)
        if first_line_no == 1 and count:
            candidate[0] = False  # a BOM is the Python path's business
        # A view of the block, no copy; only valid UTF-8 lines are handed to DuckDB.
        lines = pa.LargeStringArray.from_buffers(count, pa.py_buffer(offsets), pa.py_buffer(data))
        if not candidate.any():
            return self.schema.empty_table(), np.arange(count)
        table = pa.table({"line_no": pa.array(np.arange(count) + first_line_no), "line": lines})
        # Printable-ASCII lines (nearly all) and the others in separate runs of the query:
        # on the first, DuckDB folds away every check that non-ASCII text needs.
        results = [
            self._run(table, candidate & (ascii_line if plain else ~ascii_line), source_id, plain)
            for plain in (True, False)
        ]
        result = pa.concat_tables([r for r in results if r is not None])
        ok = result.column("ok")
        line_numbers = result.column("line_no")
        bad_lines = pc.unique(pc.filter(line_numbers, pc.invert(ok)))
        keep = pc.invert(pc.is_in(line_numbers, value_set=bad_lines))
        rows = result.filter(keep).drop_columns(["ok"]).cast(self.schema)
        handled = np.zeros(count, dtype=bool)
        done = pc.unique(rows.column("line_no")).to_numpy()
        handled[done - first_line_no] = True
        return rows, np.flatnonzero(~handled)

    def _run(
        self, table: pa.Table, chosen: np.ndarray, source_id: int, ascii_lines: bool
    ) -> pa.Table | None:
        """The query's result on the `chosen` lines of `table` (None when there is none)."""
        if not chosen.any():
            return None
        self.connection.register("lines", _candidate_batches(table, chosen))
        try:
            return self.connection.sql(
                self.plan.sql if ascii_lines else self.plan.sql_other,
                params={
                    "source_id": source_id,
                    "campaign_default": self.config.campaign_default[:256],
                    "stage_other": self.config.stage_other[:128],
                    "dataset_default": self.default_dataset,
                },
            ).to_arrow_table()
        finally:
            self.connection.unregister("lines")


_HEX_VALUE = np.full(256, -1, dtype=np.int64)
for _digit, _value in zip(b"0123456789abcdefABCDEF", [*range(16), *range(10, 16)], strict=True):
    _HEX_VALUE[_digit] = _value


def _kept_escapes(raw: np.ndarray, backslashes: np.ndarray) -> np.ndarray:
    """Which escapes a fast-path line may hold: `\\/`, and `\\uXXXX` of a character
    from U+0080 on, surrogates excluded. DuckDB reads both into the character itself, as
    Python does; other escapes (quotes, backslashes, controls, ASCII letters spelled as
    escapes, lone or paired surrogates) would stay escaped in the leaf DuckDB writes
    back, so their lines go to the Python path."""
    end = len(raw) - 1
    following = raw[np.minimum(backslashes + 1, end)]
    digits = np.stack([_HEX_VALUE[raw[np.minimum(backslashes + k, end)]] for k in range(2, 6)])
    code = (digits[0] << 12) | (digits[1] << 8) | (digits[2] << 4) | digits[3]
    unicode = (
        (following == 0x75)
        & (backslashes + 5 <= end)
        & (digits >= 0).all(axis=0)
        & (code >= 0x80)
        & ((code < 0xD800) | (code > 0xDFFF))
    )
    return (following == 0x2F) | unicode


def _candidate_batches(table: pa.Table, candidate: np.ndarray) -> pa.Table:
    """The candidate rows of `table` in record batches of at most _BATCH_ROWS rows.

    Several batches let DuckDB scan the block on every core. Lines left out are few and
    usually bunched (the file's first line, a damaged stretch), so the batches are
    zero-copy slices over the runs of candidates; `take` would copy the whole block's
    text (about 100 MB) only to drop a line or two. Scattered leftovers fall back to it.
    """
    edges = np.flatnonzero(np.diff(np.concatenate(([0], candidate.view(np.int8), [0]))))
    starts, stops = edges[0::2], edges[1::2]
    if len(starts) > _MAX_RUNS:
        return pa.Table.from_batches(
            table.take(pa.array(np.flatnonzero(candidate))).to_batches(_BATCH_ROWS)
        )
    batches = []
    for start, stop in zip(starts.tolist(), stops.tolist(), strict=True):
        for first in range(start, stop, _BATCH_ROWS):
            batches.extend(table.slice(first, min(_BATCH_ROWS, stop - first)).to_batches())
    return pa.Table.from_batches(batches, table.schema)


def _candidate_lines(
    data: bytes, offsets: np.ndarray, max_bytes: int
) -> tuple[np.ndarray, np.ndarray]:
    """(candidate, ascii_line): which lines the fast path may take, and which of those
    are printable ASCII throughout.

    A candidate is valid UTF-8 without escapes but `\\/` and `\\uXXXX` of non-ASCII
    characters (`_kept_escapes`), not blank, not too long, and nested less deeply than
    orjson's limit. On a printable-ASCII line Python's and DuckDB's notions of
    whitespace, digits and case agree on every text; on the other lines the query checks
    each text it judges (`fastpath_sql.is_plain`, `unspaced`) and hands back the line
    where they could differ.
    """
    count = len(offsets) - 1
    lengths = np.diff(offsets)
    candidate = (lengths > 2) & (lengths <= max_bytes)
    ascii_line = np.ones(count, dtype=bool)
    raw = np.frombuffer(data, dtype=np.uint8)
    if not count:
        return candidate, ascii_line
    # Whole-block checks first: the common block is all ASCII with no escape at all.
    if not data.isascii() or b"\x7f" in data:
        high = np.flatnonzero(raw > 0x7E)
        ascii_line[np.unique(np.searchsorted(offsets, high, side="right") - 1)] = False
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:  # rare: find the lines DuckDB must not see
            for i in np.flatnonzero(~ascii_line):
                try:
                    data[offsets[i] : offsets[i + 1]].decode("utf-8")
                except UnicodeDecodeError:
                    candidate[i] = False
    if b"\\" in data:
        backslashes = np.flatnonzero(raw == 0x5C)
        kept = _kept_escapes(raw, backslashes)
        lines_of = np.searchsorted(offsets, backslashes, side="right") - 1
        candidate[lines_of[~kept]] = False
        # A \uXXXX escape of a non-ASCII character: DuckDB writes the character back raw,
        # so the line is read as raw UTF-8 is (the checks for non-ASCII text apply).
        ascii_line[lines_of[kept & (raw[np.minimum(backslashes + 1, len(raw) - 1)] == 0x75)]] = (
            False
        )
    for i in np.flatnonzero(candidate & (lengths > 2 * _MAX_OPENERS)):
        line = data[offsets[i] : offsets[i + 1]]
        if line.count(b"[") + line.count(b"{") > _MAX_OPENERS:
            candidate[i] = False
    return candidate, ascii_line
