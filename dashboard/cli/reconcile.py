"""`python -m dashboard reconcile [ORDERS.csv] [--crm STAGES.csv]`: real orders and CRM
stage changes against the server events that reached Meta.

Owns the command: reading the exports (dashboard/ingest/orders.py and crm.py, columns
from config `[reconcile.columns.<name>]` and `[reconcile.crm.columns.<name>]`), fetching
the server events around their times (dashboard/store/queries/reconcile.py), the
reconciliations (dashboard/quality/reconcile.py and crm_reconcile.py), and the text and
JSON output. Exit codes: 0 done; 1 with --strict when an order or stage change is
missing or rejected, or an order mismatched; 2 a usage, file or store error. Rows of an
export that are not orders or changes are listed with their line number and never stop
the run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dashboard.core.filters import FILTER_DIMENSIONS
from dashboard.outputs.options import add_store_options, iso_date

DAY_S = 86_400


def add_reconcile_parser(commands) -> None:
    p = commands.add_parser(
        "reconcile", help="match an orders export against the server Purchases sent to Meta"
    )
    p.add_argument("orders", nargs="?", help="orders export, CSV with a header row")
    p.add_argument(
        "--crm",
        metavar="STAGES.csv",
        help="a CRM export of stage changes (lead_id, stage, changed_at)",
    )
    p.add_argument(
        "--crm-columns",
        default="generic",
        help="whose column names the CRM export has: generic, kommo, or a "
        "[reconcile.crm.columns.NAME] of your config (default %(default)s)",
    )
    p.add_argument(
        "--columns",
        default="generic",
        help="whose column names the export has: generic (order_id, created_at, value, "
        "currency, email, phone), shopify, woocommerce, stripe, or a [reconcile.columns.NAME] "
        "of your config (default %(default)s)",
    )
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.add_argument(
        "--timezone",
        help="time zone of export times without an offset, e.g. Europe/Madrid (default: "
        "[reconcile] timezone in the config, UTC)",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 when an order or stage change is missing or rejected, or an order was "
        "sent with another value or currency",
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


def _in_period(rows, since, until, when):
    from dashboard.core.filters import epoch

    start = epoch(since) if since else float("-inf")
    end = epoch(until) + DAY_S if until else float("inf")
    return [row for row in rows if start <= when(row) < end]


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
    lines += [f"warning: {text}" for text in summary.get("warnings", [])]
    missing = summary["missing_orders"]
    if missing["count"]:
        more = (
            f" … and {missing['count'] - len(missing['ids']):,} more" if missing["capped"] else ""
        )
        lines.append("missing orders: " + ", ".join(missing["ids"]) + more)
    lines += [f"  line {line}: {reason}" for line, reason in read.bad_rows]
    return lines


def _crm_text(summary: dict, read, source: str) -> list[str]:
    lines = [
        f"{source}: {summary['changes']:,} stage changes"
        + (f", {len(read.bad_rows):,} rows skipped (below)" if read.bad_rows else ""),
        f"{'stage':<20} {'event':<14} {'changes':>8} {'sent':>6} {'missing':>8} "
        f"{'rejected':>9} {'late':>5} {'median delay':>13}",
    ]
    for stage, row in summary["by_stage"].items():
        delay = "-" if row["median_delay_s"] is None else _duration(row["median_delay_s"])
        lines.append(
            f"{stage[:20]:<20} {(row['event_name'] or '(not mapped)')[:14]:<14} "
            f"{row['changes']:>8,} {row['sent']:>6,} {row['missing']:>8,} "
            f"{row['rejected']:>9,} {row['late']:>5,} {delay:>13}"
        )
    lines += [f"warning: {text}" for text in summary.get("warnings", [])]
    lines += [f"  line {line}: {reason}" for line, reason in read.bad_rows]
    return lines


def _zone(args, config):
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from dashboard.ingest.orders import OrdersError

    name = args.timezone or config.reconcile_timezone
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise OrdersError(
            f"unknown time zone {name!r} (an IANA name, e.g. Europe/Madrid)"
        ) from None


def _duration(seconds: float) -> str:
    if abs(seconds) < 3600:
        return f"{seconds / 60:.0f} min"
    if abs(seconds) < 2 * DAY_S:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / DAY_S:.1f} days"


def _mapping(mappings: dict, name: str, what: str) -> dict[str, str]:
    from dashboard.ingest.orders import OrdersError

    if name not in mappings:
        known = ", ".join(sorted(mappings))
        raise OrdersError(f"no {what}column mapping {name!r} (known: {known})")
    return mappings[name]


def _stored(engine, kind: str, source: str, columns: str, summary: dict, read, **extra) -> dict:
    """The JSON part of one export, stored for the Overview and the Reconcile page."""
    from dashboard.ingest.orders import bad_rows_json
    from dashboard.store.reconciliations import save_reconciliation

    part = {
        "source": source,
        "columns": columns,
        **extra,
        **summary,
        "rows_read": read.rows,
        "bad_rows": bad_rows_json(read.bad_rows),
    }
    save_reconciliation(engine, kind, Path(source).name, part)
    return part


def _orders_part(args, engine, config) -> tuple[dict, list[str], int]:
    """(JSON part, text lines, problems) of the orders export."""
    from dashboard.ingest.orders import read_orders
    from dashboard.quality.reconcile import reconcile_against_store

    columns = _mapping(config.reconcile_columns, args.columns, "")
    read = read_orders(args.orders, columns, _zone(args, config))
    orders = _in_period(read.orders, args.since, args.until, lambda o: o.created_at)
    summary, _ = reconcile_against_store(engine, orders, config, args.datasets)
    match_on = config.reconcile_match_on
    part = _stored(engine, "orders", args.orders, args.columns, summary, read, match_on=match_on)
    problems = summary["missing"] + summary["rejected"]
    problems += summary["value_mismatch"] + summary["currency_mismatch"]
    return part, _text(summary, read, args.orders, args.columns), problems


def _crm_part(args, engine, config) -> tuple[dict, list[str], int]:
    """(JSON part, text lines, problems) of the CRM stage changes."""
    from dashboard.ingest.crm import read_changes
    from dashboard.quality.crm_reconcile import stages_against_store

    columns = _mapping(config.crm_columns, args.crm_columns, "CRM ")
    read = read_changes(args.crm, columns, _zone(args, config))
    changes = _in_period(read.changes, args.since, args.until, lambda c: c.changed_at)
    summary, _ = stages_against_store(engine, changes, config, args.datasets)
    part = _stored(engine, "crm", args.crm, args.crm_columns, summary, read)
    return part, _crm_text(summary, read, args.crm), summary["missing"] + summary["rejected"]


def run_reconcile(args: argparse.Namespace, url: str, config) -> int:
    """Reconcile the orders export, the CRM stage changes, or both."""
    from dashboard.ingest.orders import OrdersError
    from dashboard.outputs.options import open_existing_store

    if not args.orders and not args.crm:
        print("error: give an orders export, --crm STAGES.csv, or both", file=sys.stderr)
        return 2
    engine = open_existing_store(url)
    try:
        out: dict = {
            "period": {
                "since": args.since.isoformat() if args.since else None,
                "until": args.until.isoformat() if args.until else None,
            }
        }
        lines: list[str] = []
        problems = 0
        if args.orders:
            part, text, found = _orders_part(args, engine, config)
            out, lines, problems = out | part, lines + text, problems + found
        if args.crm:
            part, text, found = _crm_part(args, engine, config)
            out["crm"] = part
            lines, problems = [*lines, *([""] if lines else []), *text], problems + found
    except OrdersError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    if args.format == "json":
        print(json.dumps(out, indent=2, ensure_ascii=False))
    else:
        print("\n".join(lines))
    return 1 if args.strict and problems else 0
