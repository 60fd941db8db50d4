"""Portable SQL functions: one SQLAlchemy element each, compiled per dialect.

Owns the spelling of what DuckDB, SQLite and PostgreSQL say differently: a continuous
percentile, the smaller of two values, and a conditional count (each store's fastest
form), plus the SQLite aggregate that stands in for percentile_cont there.
"""

from __future__ import annotations

import math
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, FunctionElement


class percentile_cont(FunctionElement):  # noqa: N801 - reads like the SQL function
    """Continuous percentile of a column (0 <= fraction <= 1), portable across dialects."""

    type = sa.Double()
    inherit_cache = True
    name = "percentile_cont"


@compiles(percentile_cont)
def _percentile_default(element, compiler, **kw):
    column, fraction = list(element.clauses)
    fraction_sql = compiler.process(fraction, **kw)
    return (
        f"percentile_cont({fraction_sql}) WITHIN GROUP (ORDER BY {compiler.process(column, **kw)})"
    )


@compiles(percentile_cont, "duckdb")
def _percentile_duckdb(element, compiler, **kw):
    column, fraction = list(element.clauses)
    return f"quantile_cont({compiler.process(column, **kw)}, {compiler.process(fraction, **kw)})"


@compiles(percentile_cont, "sqlite")
def _percentile_sqlite(element, compiler, **kw):
    column, fraction = list(element.clauses)
    return f"eqm_percentile({compiler.process(column, **kw)}, {compiler.process(fraction, **kw)})"


class least(FunctionElement):  # noqa: N801 - reads like the SQL function
    """The smaller of two values (NULL if either is NULL)."""

    type = sa.Double()
    inherit_cache = True
    name = "least"


@compiles(least)
def _least_default(element, compiler, **kw):
    return f"least({compiler.process(element.clauses, **kw)})"


@compiles(least, "sqlite")
def _least_sqlite(element, compiler, **kw):
    # SQLite's scalar min() of several arguments is LEAST.
    return f"min({compiler.process(element.clauses, **kw)})"


class count_where(FunctionElement):  # noqa: N801 - reads like the SQL function
    """The number of rows of a group where a condition holds (NULL counts as false;
    0 for an empty group), in each dialect's fastest spelling."""

    type = sa.BigInteger()
    inherit_cache = True
    name = "count_where"


@compiles(count_where)
def _count_where_default(element, compiler, **kw):
    (condition,) = list(element.clauses)
    return f"count(*) FILTER (WHERE {compiler.process(condition, **kw)})"


@compiles(count_where, "duckdb")
def _count_where_duckdb(element, compiler, **kw):
    # count_if runs about 7x faster than FILTER and 1.5x faster than sum(CAST(...)) on
    # DuckDB 1.x, with 75 of them in one GROUPING SETS scan.
    # count_if is a sum in DuckDB: NULL when no row's condition is true or false.
    (condition,) = list(element.clauses)
    return f"coalesce(count_if({compiler.process(condition, **kw)}), 0)"


@compiles(count_where, "sqlite")
def _count_where_sqlite(element, compiler, **kw):
    (condition,) = list(element.clauses)
    return f"coalesce(sum(CASE WHEN {compiler.process(condition, **kw)} THEN 1 ELSE 0 END), 0)"


class _SqlitePercentile:
    """SQLite has no percentile aggregate; this one matches percentile_cont."""

    def __init__(self) -> None:
        self.values: list[float] = []
        self.fraction = 0.5

    def step(self, value: Any, fraction: float) -> None:
        if value is not None:
            self.values.append(float(value))
        self.fraction = float(fraction)

    def finalize(self) -> float | None:
        if not self.values:
            return None
        self.values.sort()
        position = (len(self.values) - 1) * self.fraction
        low = math.floor(position)
        high = math.ceil(position)
        return self.values[low] + (self.values[high] - self.values[low]) * (position - low)


def register_sqlite_functions(dbapi_connection, _record) -> None:
    dbapi_connection.create_aggregate("eqm_percentile", 2, _SqlitePercentile)


def percentile(column: ColumnElement, fraction: float) -> ColumnElement:
    """percentile_cont(fraction) of `column` on any supported dialect."""
    return percentile_cont(column, sa.literal(fraction, sa.Double))
