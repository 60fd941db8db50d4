"""Query results as pandas DataFrames, fetched in columns where the driver can.

Owns the one conversion every store read goes through: a SQLAlchemy result to a frame
whose dtypes are exactly those pandas infers from the rows' Python values (int64 counts,
float64 with NaN for a numeric column with NULLs, bool, object dates, strings; a column
of nothing but NULLs stays object None; an empty result has object columns). Callers
and the golden reports rely on those dtypes, whichever path fetched the rows.

DuckDB hands the whole result over as an Arrow table, converted column by column;
SQLite and PostgreSQL rows are fetched in one call and become plain tuples.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy.engine import CursorResult


def result_frame(result: CursorResult, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """The result's rows as a DataFrame (columns named by `columns`, else by the result);
    closes the result."""
    names = list(columns) if columns is not None else list(result.keys())
    with result:
        table = _arrow_table(result)
        if table is not None:
            return arrow_frame(table, names)
        # One fetchall rather than iterating: SQLAlchemy's per-row fetchone dominates
        # for many rows. Plain tuples, since pandas probes a Row for attributes.
        return pd.DataFrame([tuple(row) for row in result.fetchall()], columns=names)


def _arrow_table(result: CursorResult) -> pa.Table | None:
    """The rest of a DuckDB result as an Arrow table; None on any other driver.

    The statement already ran through SQLAlchemy (its compiled SQL, bound parameters,
    expanded IN lists); only the fetch bypasses its row objects. DuckDB has no result
    processors SQLAlchemy would apply to these values.
    """
    if result.dialect.name != "duckdb" or result.cursor is None:
        return None
    cursor = result.cursor
    # duckdb_engine's cursor wraps the connection that holds the pending result.
    fetch = getattr(cursor, "to_arrow_table", None) or getattr(cursor, "fetch_arrow_table", None)
    if fetch is None:
        return None
    with warnings.catch_warnings():
        # Newer DuckDB warns that Arrow output of an executed statement copies the rows
        # once; a copy of a few thousand aggregated rows costs nothing next to the
        # row-by-row fetch it replaces.
        warnings.filterwarnings("ignore", message="Arrow output on a DB-API result")
        return fetch()


def arrow_frame(table: pa.Table, names: Sequence[str]) -> pd.DataFrame:
    """An Arrow table as the frame pandas would build from its rows as Python tuples."""
    if table.num_rows == 0:
        return pd.DataFrame([], columns=list(names))
    # Keyed by position, named after: a name given twice stays twice.
    columns = [_column(column) for column in table.columns]
    frame = pd.DataFrame(dict(enumerate(columns)), copy=False)
    if len(columns) != len(names):
        raise ValueError(f"{len(names)} names for {len(columns)} columns")
    frame.columns = list(names)
    return frame


def _column(column: pa.ChunkedArray) -> np.ndarray | pd.Series:
    """One Arrow column as the array pandas infers from its Python values."""
    kind = column.type
    nulls = column.null_count
    if nulls == len(column):
        return np.full(len(column), None, dtype=object)
    integral = pa.types.is_integer(kind) or (pa.types.is_decimal(kind) and kind.scale == 0)
    if integral:
        # Python ints infer int64; with a None among them, float64 with NaN. Sums come
        # back from DuckDB as HUGEINT, which Arrow carries as decimal128(38, 0).
        target = pa.float64() if nulls else pa.int64()
        return pc.cast(column, target).to_numpy()
    if pa.types.is_floating(kind):
        return pc.cast(column, pa.float64()).to_numpy()
    if pa.types.is_boolean(kind) and not nulls:
        return column.to_numpy()
    if pa.types.is_date(kind):
        return column.to_pandas(date_as_object=True).to_numpy(dtype=object)
    # Strings, booleans with NULLs, anything else: inferred from the Python values,
    # exactly as from tuples.
    return pd.Series(column.to_pylist(), dtype=None)
