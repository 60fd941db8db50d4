"""Reading an orders export (CSV) for a reconciliation: one `Order` per good row, and
every other row with its line number and the reason.

Owns the export's columns (mapped through config `[reconcile.columns.<name>]`, so a
Shopify, WooCommerce or Stripe export is read as it comes), the parsing of each field,
and privacy: a plaintext e-mail or phone is normalised and SHA-256 hashed here, as Meta
wants it, and never leaves this module in plaintext (an `Order` holds only hashes).
Nothing here is stored.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path

from dashboard.core.definitions import MAX_TIMESTAMP_S, MIN_TIMESTAMP_S
from dashboard.core.orders import Order, hash_email, hash_phone

REQUIRED_FIELDS = ("order_id", "created_at", "value", "currency")
OPTIONAL_FIELDS = ("email", "phone")
_NUMBER = re.compile(r"-?[0-9]{1,3}(,?[0-9]{3})*(\.[0-9]+)?|-?[0-9]*\.[0-9]+|-?[0-9]+")
_UNIX = re.compile(r"[0-9]{9,10}(\.[0-9]+)?")
_CURRENCY = re.compile(r"[A-Za-z]{3}")


class OrdersError(ValueError):
    """An export that cannot be read at all (no file, not CSV, a required column missing)."""


@dataclass(frozen=True)
class OrdersRead:
    """What a file held: its orders, and each row that is not one, with the reason."""

    orders: list[Order]
    bad_rows: list[tuple[int, str]]
    rows: int  # data rows read (orders + bad rows)


def parse_time(text: str, zone: tzinfo = UTC) -> float | None:
    """ISO 8601 (in `zone` unless it has an offset; Shopify's "2026-11-01 10:00:00 -0500"
    too) or Unix seconds; None when it is neither or outside 2000-2100."""
    value = text.strip()
    if _UNIX.fullmatch(value):
        seconds = float(value)
    else:
        moment = None
        for candidate in (
            value.replace("Z", "+00:00"),
            value.replace(" -", "-").replace(" +", "+"),
        ):
            try:
                moment = datetime.fromisoformat(candidate)
                break
            except ValueError:
                continue
        if moment is None:
            return None
        seconds = (moment if moment.tzinfo else moment.replace(tzinfo=zone)).timestamp()
    return seconds if MIN_TIMESTAMP_S <= seconds < MAX_TIMESTAMP_S else None


def _order(
    line: int, cells: dict[str, str], seen: dict[str, int], zone: tzinfo
) -> Order | str | None:
    """The row's Order, or the reason it is not one. A reason never quotes a cell (a
    shifted row can put an e-mail in any column): the line number finds it. None for a
    further line item of an order (Shopify writes one row per item, the order's time and
    total on the first only)."""
    order_id = cells["order_id"].strip()
    item_row = not cells["created_at"].strip() and not cells["value"].strip()
    if item_row and (not order_id or order_id in seen):
        return None
    if not order_id:
        return "no order id"
    if order_id in seen:
        return f"order id repeats line {seen[order_id]}"
    created = parse_time(cells["created_at"], zone)
    if created is None:
        return "created_at is not an ISO 8601 time or Unix seconds"
    value_text = cells["value"].strip()
    if not _NUMBER.fullmatch(value_text):
        return "value is not a number"
    currency = cells["currency"].strip()
    if not _CURRENCY.fullmatch(currency):
        return "currency is not a 3-letter code"
    seen[order_id] = line
    return Order(
        line,
        order_id,
        created,
        float(value_text.replace(",", "")),
        currency.upper(),
        hash_email(cells.get("email", "")),
        hash_phone(cells.get("phone", "")),
    )


def bad_rows_json(bad_rows: list[tuple[int, str]]) -> list[dict[str, int | str]]:
    """The rows that are not orders or changes, as the JSON outputs list them."""
    return [{"line": line, "reason": reason} for line, reason in bad_rows]


def read_table(
    path: str | Path | bytes,
    columns: dict[str, str],
    required: tuple[str, ...],
    optional: tuple[str, ...],
) -> tuple[list[tuple[int, dict[str, str] | str]], int]:
    """The rows of a CSV export as (line, {field: cell}) through the `columns` mapping
    (field -> header name; an unmapped field is its own name), or (line, reason) for a row
    with the wrong number of fields; and how many data rows there were. `path` may be the
    file's bytes (an upload, never written to disk). OrdersError when the file cannot be
    read or a required column is missing."""
    name = "the upload" if isinstance(path, bytes) else str(path)
    try:
        data = path if isinstance(path, bytes) else Path(path).read_bytes()
        text = data.decode("utf-8-sig")
    except OSError as exc:
        raise OrdersError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise OrdersError(f"{name} is not UTF-8 text (export it as CSV, UTF-8)") from None
    try:
        dialect = csv.Sniffer().sniff(text[:8192], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    header = next(reader, None)
    if not header:
        raise OrdersError(f"{name} is empty: an export needs a header row")
    position = {name.strip(): i for i, name in enumerate(header)}
    missing = [f"{field} ({columns.get(field, field)!r})" for field in required
               if columns.get(field, field) not in position]  # fmt: skip
    if missing:
        raise OrdersError(
            f"{name}: no column for {', '.join(missing)}; its columns are "
            f"{', '.join(list(position)[:20])} (choose --columns, or map them in [reconcile])"
        )
    wanted = {
        field: position[columns.get(field, field)]
        for field in required + optional
        if columns.get(field, field) in position
    }
    out: list[tuple[int, dict[str, str] | str]] = []
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue  # a blank line is not a row
        if len(cells) != len(header):
            out.append((reader.line_num, f"{len(cells)} fields, the header has {len(header)}"))
        else:
            out.append((reader.line_num, {field: cells[i] for field, i in wanted.items()}))
    return out, len(out)


def read_orders(
    path: str | Path | bytes, columns: dict[str, str], zone: tzinfo = UTC
) -> OrdersRead:
    """The orders of a CSV export whose header names the mapped `columns`; times without
    an offset are in `zone`."""
    rows, count = read_table(path, columns, REQUIRED_FIELDS, OPTIONAL_FIELDS)
    orders: list[Order] = []
    bad: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    for line, cells in rows:
        found = cells if isinstance(cells, str) else _order(line, cells, seen, zone)
        if found is None:
            continue
        if isinstance(found, str):
            bad.append((line, found))
        else:
            orders.append(found)
    return OrdersRead(orders, bad, count)
