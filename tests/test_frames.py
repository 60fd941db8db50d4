"""Query results as frames: the Arrow fetch on DuckDB builds exactly the frame the rows'
Python values would (values and dtypes), and `read_frame` returns the same frame on every
store for a query with an IN list, NULLs, booleans, dates and a bound parameter."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import duckdb
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from conftest import write_jsonl
from logkit import T0, capi, event, pixel

from dashboard.ingest import ingest
from dashboard.store.database import events
from dashboard.store.frames import _arrow_table, arrow_frame
from dashboard.store.queries.common import count_if, read_frame

# Each column: DuckDB literals for three rows. The frame from Arrow must equal the frame
# pandas builds from the same rows as tuples, the way every store read worked before.
COLUMNS = {
    "int_": ("1", "2", "3"),
    "int_null": ("1", "NULL", "3"),
    "hugeint": ("2::HUGEINT", "5::HUGEINT", "0::HUGEINT"),
    "hugeint_null": ("2::HUGEINT", "NULL::HUGEINT", "0::HUGEINT"),
    "smallint": ("0::SMALLINT", "1::SMALLINT", "3::SMALLINT"),
    "double": ("1.5::DOUBLE", "2.0::DOUBLE", "-1::DOUBLE"),
    "double_null": ("1.5::DOUBLE", "NULL::DOUBLE", "3::DOUBLE"),
    "all_null_double": ("NULL::DOUBLE", "NULL::DOUBLE", "NULL::DOUBLE"),
    "all_null_int": ("NULL::INTEGER", "NULL::INTEGER", "NULL::INTEGER"),
    "bool": ("true", "false", "true"),
    "bool_null": ("true", "NULL", "false"),
    "text": ("'a'", "'b'", "'a'"),
    "text_null": ("'a'", "NULL", "'c'"),
    "all_null_text": ("NULL::VARCHAR", "NULL::VARCHAR", "NULL::VARCHAR"),
    "day": ("DATE '2025-11-20'", "DATE '2025-11-21'", "DATE '2025-11-20'"),
    "day_null": ("DATE '2025-11-20'", "NULL::DATE", "DATE '2025-11-22'"),
    "decimal": ("1.25::DECIMAL(6, 2)", "2.5::DECIMAL(6, 2)", "NULL::DECIMAL(6, 2)"),
}


def _duck_query() -> str:
    columns = list(COLUMNS.values())
    tuples = ", ".join("(" + ", ".join(column[i] for column in columns) + ")" for i in range(3))
    names = ", ".join(f'"{name}"' for name in COLUMNS)
    return f"SELECT * FROM (VALUES {tuples}) t({names})"


@pytest.mark.parametrize("where", ["", " WHERE int_ > 100"], ids=["rows", "empty"])
def test_arrow_frame_equals_the_frame_from_tuples(where):
    connection = duckdb.connect()
    sql = _duck_query() + where
    rows = connection.execute(sql).fetchall()
    table = connection.sql(sql).to_arrow_table()
    expected = pd.DataFrame(rows, columns=list(COLUMNS))
    got = arrow_frame(table, list(COLUMNS))
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert list(got.dtypes) == list(expected.dtypes)
    if not where:
        assert got["hugeint"].dtype == np.int64
        assert got["int_null"].dtype == np.float64
        assert got["bool"].dtype == np.bool_
        assert got["bool_null"].tolist() == [True, None, False]
        assert got["all_null_double"].tolist() == [None, None, None]
        assert got["day_null"].tolist() == [date(2025, 11, 20), None, date(2025, 11, 22)]
        assert got["decimal"].tolist()[:2] == [Decimal("1.25"), Decimal("2.50")]


def test_arrow_frame_keeps_a_name_given_twice():
    table = duckdb.connect().sql("SELECT 1 AS a, 'x' AS b").to_arrow_table()
    got = arrow_frame(table, ["n", "n"])
    assert list(got.columns) == ["n", "n"]
    assert got.iloc[0].tolist() == [1, "x"]


def _load(engine, tmp_path, config) -> None:
    records = [
        pixel(event("Purchase", T0, "o1", em="x")),
        capi([event("Purchase", T0, "o1")], sent_at=T0 + 5),
        pixel(event("Lead", T0 + 86_400)),  # no event_id
        capi([event("Lead", T0 + 86_400 + 60, "l1")], sent_at=T0 + 86_400 + 90),
        pixel(event("ViewContent", T0 + 2 * 86_400, "v1")),
        pixel(event("PageView", T0, "p1")),  # left out by the IN list
    ]
    ingest([write_jsonl(tmp_path / "log.jsonl", records)], engine, config=config)


def test_read_frame_is_the_same_on_every_store(engine, tmp_path, config):
    _load(engine, tmp_path, config)
    names = ["Purchase", "Lead", "ViewContent"]
    query = (
        sa.select(
            events.c.event_name,
            events.c.event_day,
            events.c.channel,
            (events.c.channel == "server").label("is_server"),
            events.c.event_id,
            count_if(events.c.event_id.is_(None)).label("n_no_id"),
            sa.func.count().label("n"),
            sa.func.max(events.c.event_time).label("last_time"),
            sa.func.max(sa.case((events.c.channel == "server", events.c.sent_at))).label(
                "server_sent_at"
            ),
        )
        .where(events.c.event_name.in_(names), events.c.event_time >= T0 - 1.0)
        .group_by(events.c.event_name, events.c.event_day, events.c.channel, events.c.event_id)
        .order_by(events.c.event_day, events.c.event_name, events.c.channel)
    )
    with engine.connect() as connection:
        got = read_frame(connection, query)
        empty = read_frame(connection, query.where(events.c.event_time < 0), ["a"] * 9)
    day0, day1, day2 = date(2025, 11, 20), date(2025, 11, 21), date(2025, 11, 22)
    expected = pd.DataFrame(
        {
            "event_name": ["Purchase", "Purchase", "Lead", "Lead", "ViewContent"],
            "event_day": [day0, day0, day1, day1, day2],
            "channel": ["browser", "server", "browser", "server", "browser"],
            "is_server": [False, True, False, True, False],
            "event_id": ["o1", "o1", None, "l1", "v1"],
            "n_no_id": [0, 0, 1, 0, 0],
            "n": [1, 1, 1, 1, 1],
            "last_time": [T0, T0, T0 + 86_400, T0 + 86_460, T0 + 2 * 86_400],
            "server_sent_at": [np.nan, T0 + 5, np.nan, T0 + 86_490, np.nan],
        }
    )
    expected["last_time"] = expected["last_time"].astype("float64")
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert got["event_day"].dtype == object and got["is_server"].dtype == np.bool_
    assert got["n"].dtype == np.int64 and got["n_no_id"].dtype == np.int64
    assert got["event_id"].isna().tolist() == [False, False, True, False, False]
    assert empty.empty and list(empty.columns) == ["a"] * 9
    assert all(str(dtype) == "object" for dtype in empty.dtypes)


def test_duckdb_reads_arrow(duck_engine, tmp_path, config):
    """The columnar fetch is what DuckDB reads take (not a silent fallback to rows)."""
    _load(duck_engine, tmp_path, config)
    with duck_engine.connect() as connection:
        result = connection.execute(
            sa.select(events.c.event_name).where(events.c.event_name.in_(["Lead", "Purchase"]))
        )
        table = _arrow_table(result)
        result.close()
    assert table is not None
    assert sorted(table.column(0).to_pylist()) == ["Lead", "Lead", "Purchase", "Purchase"]
