"""`python -m dashboard reconcile ORDERS.csv`: real orders against the server Purchases
that reached Meta.

Owns the command: reading the export (dashboard/ingest/orders.py, columns from config
`[reconcile.columns.<name>]`), fetching the server Purchases around the orders' times
(dashboard/store/queries/reconcile.py), the reconciliation (dashboard/quality/
reconcile.py), and its text and JSON output. Exit codes: 0 done; 1 with --strict when an
order is missing, rejected or mismatched; 2 a usage, file or store error. Rows of the
export that are not orders are listed with their line number and never stop the run.
"""

from __future__ import annotations

import argparse
import json
import sys

from dashboard.core.filters import FILTER_DIMENSIONS
from dashboard.outputs.options import add_store_options, iso_date

DAY_S = 86_400
# Meta accepts an event up to 7 days after it happened: a send can come that late.
SEND_SLACK_S = 8 * DAY_S


def add_reconcile_parser(commands) -> None:
    p = commands.add_parser(
        "reconcile", help="match an orders export against the server Purchases sent to Meta"
    )
    p.add_argument("orders", help="orders export, CSV with a header row")
    p.add_argument(
        "--columns",
        default="generic",
        help="whose column names the export has: generic (order_id, created_at, value, "
        "currency, email, phone), shopify, woocommerce, stripe, or a [reconcile.columns.NAME] "
        "of your config (default %(default)s)",
    )
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 when an order is missing, rejected, or sent with another value or currency",
    )
    p.add_argument("--since", type=iso_date, help="first day of orders (UTC, inclusive)")
    p.add_argument("--until", type=iso_date, help="last day of orders (UTC, inclusive)")
    p.add_argument(
        "--dataset", dest="datasets", action="append", default=[], help="dataset id (repeatable)"
    )
    # The other slice dimensions do not apply (a missing order has no campaign), but the
    # shared period check (cli main) reads them all.
    p.set_defaults(**{d.field: [] for d in FILTER_DIMENSIONS if d.field != "datasets"})
    add_store_options(p)


def _in_period(orders, since, until):
    from dashboard.core.filters import epoch

    start = epoch(since) if since else float("-inf")
    end = epoch(until) + DAY_S if until else float("inf")
    return [o for o in orders if start <= o.created_at < end]


def _text(summary: dict, read, source: str, columns: str) -> list[str]:
    rate = summary["match_rate"]
    lines = [
        f"{source} ({columns} columns): {summary['orders']:,} orders"
        + (f", {len(read.bad_rows):,} rows skipped (below)" if read.bad_rows else ""),
        f"matched {summary['matched']:,}"
        + (f" ({rate:.1%})" if rate is not None else "")
        + f" · missing {summary['missing']:,} · rejected by Meta {summary['rejected']:,}",
        f"value mismatch {summary['value_mismatch']:,} · currency mismatch "
        f"{summary['currency_mismatch']:,} · late {summary['late']:,} · sent twice "
        f"{summary['sent_twice']:,} · sent under another id {summary['sent_under_another_id']:,}",
    ]
    missing = summary["missing_orders"]
    if missing["count"]:
        more = (
            f" … and {missing['count'] - len(missing['ids']):,} more" if missing["capped"] else ""
        )
        lines.append("missing orders: " + ", ".join(missing["ids"]) + more)
    lines += [f"  line {line}: {reason}" for line, reason in read.bad_rows]
    return lines


def run_reconcile(args: argparse.Namespace, url: str, config) -> int:
    from dashboard.ingest.orders import OrdersError, read_orders
    from dashboard.outputs.options import open_existing_store
    from dashboard.quality.reconcile import Settings, reconcile_orders
    from dashboard.store.queries.reconcile import purchase_sends

    columns = config.reconcile_columns.get(args.columns)
    if columns is None:
        known = ", ".join(sorted(config.reconcile_columns))
        print(f"error: no column mapping {args.columns!r} (known: {known})", file=sys.stderr)
        return 2
    try:
        read = read_orders(args.orders, columns)
    except OrdersError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    orders = _in_period(read.orders, args.since, args.until)
    engine = open_existing_store(url)
    try:
        times = [o.created_at for o in orders] or [0.0]
        sends = purchase_sends(
            engine,
            match_on=config.reconcile_match_on,
            event_name=config.reconcile_purchase_event,
            sent_from=min(times) - DAY_S,
            sent_to=max(times) + SEND_SLACK_S,
            datasets=args.datasets,
        )
    finally:
        engine.dispose()
    settings = Settings(config.reconcile_late_after_s, config.reconcile_list_cap)
    summary, _ = reconcile_orders(orders, sends, settings)
    if args.format == "json":
        out = {
            "source": args.orders,
            "columns": args.columns,
            "match_on": config.reconcile_match_on,
            "period": {
                "since": args.since.isoformat() if args.since else None,
                "until": args.until.isoformat() if args.until else None,
            },
            **summary,
            "rows_read": read.rows,
            "bad_rows": [{"line": line, "reason": reason} for line, reason in read.bad_rows],
        }
        print(json.dumps(out, indent=2, ensure_ascii=False))
    else:
        print("\n".join(_text(summary, read, args.orders, args.columns)))
    problems = summary["missing"] + summary["rejected"]
    problems += summary["value_mismatch"] + summary["currency_mismatch"]
    return 1 if args.strict and problems else 0
