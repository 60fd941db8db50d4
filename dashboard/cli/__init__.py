"""Command line: `python -m dashboard ingest|relay|report|check|events|findings|mark|meta|reconcile|sample|demo`.

Owns argument parsing, exit codes (0 ok, 1 strict-mode quarantine or a check breached,
2 usage or store error, e.g. a read command pointed at a store that does not exist) and
one-line error messages without tracebacks. The read commands' shared options and rules
live in dashboard/outputs/options.py. The store URL comes from --db,
else $EQM_DB_URL, else the embedded DuckDB file; it is never printed (it may hold a
password).

Starts light: building the parser (and so `--help`) imports no pandas, SQLAlchemy,
DuckDB, Plotly or Streamlit. Each command imports what it runs inside its handler; the
parser takes its defaults and choices from light modules (outputs/options.py,
outputs/thresholds.py, core/). tests/test_startup.py keeps this true.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dashboard.cli.meta import import_sample_snapshots
from dashboard.cli.sources import SOURCE_COMMANDS, add_source_parsers
from dashboard.core.config import ConfigError, default_db_url, load_config
from dashboard.ingest.summary import IngestError
from dashboard.outputs.options import (
    CHECK_EPILOG,
    LazyChoices,
    UsageError,
    add_check_thresholds,
    add_filter_options,
    add_store_options,
    filters_from_args,
    open_existing_store,
    thresholds_from_args,
    unknown_value_warnings,
)
from dashboard.store.errors import StoreError

# Commands that only read a store: they never create one (a missing store exits 2), and
# warn about filter values the store does not hold. A new read command joins here.
READ_COMMANDS = ("report", "check", "events", "findings")


def _format_names() -> list[str]:
    # Imported here: the registry loads every adapter (pandas, SQLAlchemy); only
    # `ingest --format X` and `ingest --help` need the names.
    from dashboard.ingest.formats import format_names

    return format_names()


def _add_relay_parser(commands) -> None:
    p_relay = commands.add_parser(
        "relay",
        help="forward Conversions API calls to Meta and log them (and mirrored Pixel events)",
    )
    p_relay.add_argument("--listen", default="127.0.0.1:8787", help="HOST:PORT to listen on")
    p_relay.add_argument(
        "--upstream", default="https://graph.facebook.com", help="where calls are forwarded"
    )
    p_relay.add_argument("--log", default="data/capture", help="folder of the daily log files")
    p_relay.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        help="a site origin whose pages may mirror Pixel events to /collect (repeatable)",
    )
    p_relay.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for Meta")
    p_relay.add_argument(
        "--max-body-mb", type=float, default=16.0, help="largest request body forwarded"
    )
    p_relay.add_argument("--dataset", help="pixel id for mirrored events when the page names none")
    p_relay.add_argument("--config", help="config file (default: $EQM_CONFIG or data/config.toml)")


def _add_check_parser(commands) -> None:
    p_check = commands.add_parser(
        "check",
        help="check the latest window against thresholds (exit 0 ok, 1 breach, 2 error)",
        description="Check the latest window of send time against thresholds.",
        epilog=CHECK_EPILOG,
    )
    add_store_options(p_check)
    add_filter_options(p_check)
    add_check_thresholds(p_check)
    p_check.add_argument(
        "--format", choices=["text", "json"], default="text", help="output (default text)"
    )
    p_check.add_argument(
        "--webhook", help="POST a Slack-compatible message here when a check breaches"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dashboard", description="Event Quality Monitor for Meta Pixel + CAPI logs."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    p_ingest = commands.add_parser("ingest", help="import sent-events logs into the store")
    p_ingest.add_argument(
        "paths", nargs="+", help="files, folders or globs (.jsonl, .json, .csv, .log, .gz)"
    )
    p_ingest.add_argument(
        "--strict", action="store_true", help="exit 1 if anything was quarantined"
    )
    p_ingest.add_argument(
        "--format",
        dest="log_format",
        choices=LazyChoices(_format_names),
        # A metavar: without one argparse lists the choices, loading the registry, as
        # soon as the option is added. %(choices)s lists them only when help is shown.
        metavar="FORMAT",
        help="read every file in this format instead of detecting it: %(choices)s",
    )
    p_ingest.add_argument(
        "--dataset", help="dataset (pixel) id for records that name none (raw request bodies)"
    )
    p_ingest.add_argument(
        "--follow",
        action="store_true",
        help="keep importing new lines and files until interrupted (Ctrl-C)",
    )
    p_ingest.add_argument(
        "--interval", type=float, default=5.0, help="seconds between rounds with --follow"
    )
    add_store_options(p_ingest)

    _add_relay_parser(commands)

    p_report = commands.add_parser("report", help="print the quality report")
    p_report.add_argument(
        "--format",
        choices=["json", "text", "html", "pdf", "xlsx", "csv"],
        help="text: a one-screen summary; json: the report contract (default: text at a "
        "terminal, json when piped, scripted or with --out); html, pdf, xlsx: the report to "
        "send; csv: one CSV per table, zipped (with --by day: one CSV)",
    )
    p_report.add_argument(
        "--out", help="write to this file (required for pdf, xlsx and csv; else stdout)"
    )
    p_report.add_argument(
        "--appendix",
        action="store_true",
        help="html, pdf, xlsx, csv: add the event-level dedup gap list (first 200 rows)",
    )
    p_report.add_argument(
        "--by", choices=["day"], help="the headline measures per day (--format json or csv)"
    )
    p_report.add_argument(
        "--before-after",
        type=int,
        metavar="MARKER_ID",
        help="the days before and after a marker (see mark --list; --format json or text)",
    )
    p_report.add_argument(
        "--days", type=int, default=7, help="days on each side of --before-after (default 7)"
    )
    add_store_options(p_report)
    add_filter_options(p_report)

    _add_check_parser(commands)
    _add_mark_parser(commands)
    _add_drilldown_parsers(commands)
    add_source_parsers(commands)

    p_demo = commands.add_parser(
        "demo", help="import the bundled sample into the store (once) and open the dashboard"
    )
    add_store_options(p_demo)
    p_demo.add_argument("--port", type=int, default=8501)
    p_demo.add_argument("--no-browser", action="store_true", help="do not open a browser window")

    p_sample = commands.add_parser("sample", help="write the seeded synthetic sample log")
    p_sample.add_argument("out", help="output file (.jsonl or .jsonl.gz)")
    p_sample.add_argument("--events", type=int, default=20_000, help="approximate event count")
    p_sample.add_argument("--seed", type=int, default=42)
    p_sample.add_argument(
        "--profile",
        choices=("standard", "diverse"),
        default="standard",
        help="standard: the small world of the tests; diverse: 2,000 campaigns, 300 event "
        "names, 30 datasets, independent parameter statuses",
    )
    return parser


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _report(args: argparse.Namespace, engine, config) -> int:
    from dashboard.outputs.report import build_report, report_json

    filters = filters_from_args(args)
    if args.by or args.before_after is not None:
        return _daily_report(args, engine, config, filters)
    if args.format is None:
        # A person at a terminal gets the summary; a pipe, a script or --out gets the contract.
        args.format = "text" if not args.out and _stdout_is_terminal() else "json"
    if args.format == "text":
        from dashboard.outputs.text_report import render_text

        text = render_text(build_report(engine, filters, config), config)
        if args.out:
            Path(args.out).write_text(text + "\n", encoding="utf-8")
        else:
            print(text)
        return 0
    if args.format == "json":
        text = report_json(build_report(engine, filters, config))
        if args.out:
            Path(args.out).write_text(text + "\n", encoding="utf-8")
        else:
            print(text)
        return 0
    from dashboard.outputs import documents as reports

    if args.format in ("pdf", "xlsx", "csv") and not args.out:
        return _fail(f"--format {args.format} needs --out FILE")
    try:
        content = reports.collect(engine, filters, config, appendix=args.appendix)
        data = reports.render(content, args.format)
    except reports.PdfUnavailable as exc:
        return _fail(str(exc))
    if args.out:
        Path(args.out).write_bytes(data)
        print(f"wrote {args.out} ({len(data):,} bytes)")
    else:
        sys.stdout.write(data.decode("utf-8"))
    return 0


def _daily_report(args: argparse.Namespace, engine, config, filters) -> int:
    from dashboard.outputs.daily import render_daily

    try:
        text = render_daily(
            engine,
            filters,
            config,
            by=args.by,
            marker_id=args.before_after,
            days=args.days,
            form=args.format,
        )
    except ValueError as exc:
        return _fail(str(exc))
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    else:
        print(text)
    return 0


def _add_mark_parser(commands) -> None:
    p_mark = commands.add_parser(
        "mark", help="mark a change (a deploy, a fix) on every time chart; --list, --delete ID"
    )
    p_mark.add_argument("label", nargs="?", help="what changed (at most 200 characters)")
    p_mark.add_argument(
        "--at", type=_moment, help="when: an ISO time, UTC unless it has an offset (default now)"
    )
    p_mark.add_argument("--list", action="store_true", help="list the markers")
    p_mark.add_argument("--delete", type=int, metavar="ID", help="delete a marker")
    add_store_options(p_mark)


def _moment(text: str) -> float:
    from dashboard.outputs.daily import parse_moment

    try:
        return parse_moment(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _mark(args: argparse.Namespace, url: str) -> int:
    from dashboard.outputs.daily import mark_lines

    # Not created when missing: a marker on a store that does not exist is a wrong --db.
    engine = open_existing_store(url)
    try:
        print(
            "\n".join(
                mark_lines(engine, args.label, args.at, listing=args.list, delete=args.delete)
            )
        )
    except ValueError as exc:
        return _fail(str(exc))
    finally:
        engine.dispose()
    return 0


def _add_drilldown_parsers(commands) -> None:
    from dashboard.core.definitions import DEDUP_STATUSES
    from dashboard.core.params import PARAMS
    from dashboard.core.selection import PARAMETER_STATUSES

    p_events = commands.add_parser(
        "events",
        help="list the events behind a finding, a parameter status or a dedup status",
        description="List events, newest first: where each sits in the log (file, line) and "
        "why it is listed. Plaintext values are never printed: a plaintext e-mail shows as "
        "'plaintext e-mail address'. See `python -m dashboard findings` for the keys.",
    )
    chosen = p_events.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--finding", metavar="KEY", help="a finding key (see findings)")
    chosen.add_argument("--parameter", choices=PARAMS, metavar="NAME", help="a user_data key")
    chosen.add_argument(
        "--dedup",
        choices=[*DEDUP_STATUSES, "likely_double_counted"],
        metavar="STATUS",
        help="a dedup status: " + ", ".join([*DEDUP_STATUSES, "likely_double_counted"]),
    )
    p_events.add_argument(
        "--status", choices=list(PARAMETER_STATUSES), help="with --parameter: the status listed"
    )
    p_events.add_argument("--format", choices=["table", "csv", "jsonl"], default="table")
    p_events.add_argument("--limit", type=int, help="at most this many events (default: all)")
    p_events.add_argument(
        "--sort",
        choices=["sent_at", "event_time", "event_name", "campaign", "funnel_stage", "line"],
        default="sent_at",
        help="order (default: sent_at, newest first)",
    )
    p_events.add_argument("--oldest-first", action="store_true", help="ascending order")
    add_store_options(p_events)
    add_filter_options(p_events)

    p_findings = commands.add_parser(
        "findings", help="list the finding keys, their meaning and what each affects now"
    )
    add_store_options(p_findings)
    add_filter_options(p_findings)


def _events(args: argparse.Namespace, engine, config) -> int:
    from dashboard.core.selection import Selection, SelectionError
    from dashboard.outputs.event_list import write_events
    from dashboard.quality.drilldown import FINDINGS

    try:
        if args.finding:
            if args.finding not in FINDINGS:
                return _fail(f"unknown finding {args.finding!r}; see python -m dashboard findings")
            selection = Selection("finding", finding=args.finding)
        elif args.parameter:
            if args.status is None:
                return _fail("--parameter needs --status absent|valid|invalid|unhashed")
            selection = Selection("parameter", parameter=args.parameter, status=args.status)
        else:
            selection = Selection("dedup", dedup=args.dedup)
    except SelectionError as exc:
        return _fail(str(exc))
    if args.limit is not None and args.limit < 1:
        return _fail("--limit must be 1 or more")
    write_events(
        engine,
        filters_from_args(args),
        config,
        selection,
        sys.stdout,
        form=args.format,
        limit=args.limit,
        sort=args.sort,
        descending=not args.oldest_first,
    )
    return 0


def _findings(args: argparse.Namespace, engine, config) -> int:
    from dashboard.outputs.event_list import findings_lines

    print("\n".join(findings_lines(engine, filters_from_args(args), config)))
    return 0


def _stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def _window_end(text: str, engine) -> float:
    from datetime import UTC, datetime

    from dashboard.store.queries.blocks import latest_sent_at

    if text == "now":
        return datetime.now(tz=UTC).timestamp()
    if text == "latest":
        # The window is on sent_at: ending it at the newest event_time would leave out a
        # batch uploaded after its events, and the silence check would see a gap.
        latest = latest_sent_at(engine)
        if latest is None:
            raise IngestError("the store is empty: nothing to check")
        return latest + 1  # the window's end is exclusive
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise IngestError(f"--at must be now, latest or an ISO time, not {text!r}") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _check(args: argparse.Namespace, engine, config) -> int:
    from dashboard.outputs.check import post_webhook, run_check

    thresholds = thresholds_from_args(args, config.max_silence_hours)
    result = run_check(
        engine,
        config,
        thresholds,
        _window_end(args.at, engine),
        args.window_hours * 3600,
        args.baseline_days,
        filters_from_args(args),
    )
    if args.format == "json":
        print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    else:
        print("\n".join(result.report_lines()))
    if args.webhook and not result.ok:
        try:
            post_webhook(args.webhook, result)
        except (OSError, ValueError) as exc:
            # The breach is still reported through the exit code and stdout.
            print(f"error: webhook not delivered: {exc}", file=sys.stderr)
    return 0 if result.ok else 1


def _ingest(args: argparse.Namespace, engine, config) -> int:
    options = {"config": config, "log_format": args.log_format, "default_dataset": args.dataset}
    if args.follow:
        from datetime import UTC, datetime

        from dashboard.ingest.follow import follow

        def report_round(summary) -> None:
            stamp = datetime.now(UTC).strftime("%H:%M:%S")
            print(
                f"{stamp}  +{summary.events_imported:,} events, "
                f"{summary.lines_quarantined + summary.events_quarantined:,} quarantined "
                f"({summary.lines_read:,} lines read)",
                flush=True,
            )

        print(f"following {', '.join(args.paths)} every {args.interval:g} s; Ctrl-C to stop")
        summary = follow(
            args.paths, engine, interval_s=args.interval, on_round=report_round, **options
        )
        print("total:\n" + summary.to_text())
    else:
        from dashboard.ingest.importer import ingest

        summary = ingest(args.paths, engine, **options)
        print(summary.to_text())
    quarantined = summary.lines_quarantined + summary.events_quarantined
    return 1 if args.strict and quarantined else 0


def _relay(args: argparse.Namespace, config) -> int:
    from dashboard.capture.relay import RelaySettings, is_loopback, parse_listen, serve

    try:
        host, port = parse_listen(args.listen)
    except ValueError as exc:
        return _fail(str(exc))
    settings = RelaySettings(
        listen_host=host,
        listen_port=port,
        upstream=args.upstream,
        log_dir=Path(args.log),
        allow_origins=tuple(args.allow_origin),
        max_body_bytes=int(args.max_body_mb * 1024 * 1024),
        timeout_s=args.timeout,
        mirror_dataset=args.dataset,
        config=config,
    )
    print(f"relay on http://{args.listen} -> {settings.upstream}; log in {settings.log_dir}/")
    print(f"point your integration's Graph API base URL at http://{args.listen}")
    if not is_loopback(host):
        print(
            f"warning: listening on {host}, not only this machine: anyone who reaches it "
            "can send events through it to your dataset",
            file=sys.stderr,
        )
    if settings.allow_origins:
        print("Pixel mirror: /pixel-mirror.js, accepting " + ", ".join(settings.allow_origins))
    else:
        print("Pixel mirror off (no --allow-origin)")
    try:
        serve(settings)
    except KeyboardInterrupt:
        pass
    return 0


def _demo(args: argparse.Namespace, engine, config) -> int:
    """Import the bundled sample (a no-op when already imported), then run Streamlit."""
    import os
    import subprocess

    from dashboard.core.config import REPO_ROOT, SAMPLE_LOG_PATH
    from dashboard.ingest.importer import ingest

    summary = ingest([SAMPLE_LOG_PATH], engine, config=config)
    print(
        f"sample: {summary.events_imported:,} events imported, {summary.lines_already_imported:,} lines already there"
    )
    print(import_sample_snapshots(engine, config))
    engine.dispose()  # DuckDB: release the file before the dashboard opens it
    env = dict(os.environ)
    if args.db:
        env["EQM_DB_URL"] = args.db
    if args.config:
        env["EQM_CONFIG"] = args.config
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(REPO_ROOT / "dashboard" / "app.py"),
        f"--server.port={args.port}",
        "--server.address=localhost",  # no login configured: local only
        "--browser.gatherUsageStats=false",
        "--server.showEmailPrompt=false",
        "--client.toolbarMode=viewer",  # no Deploy button: as .streamlit/config.toml
    ]
    if args.no_browser:
        command.append("--server.headless=true")
    try:
        return subprocess.call(command, env=env, cwd=REPO_ROOT)
    except KeyboardInterrupt:
        return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Imported once the arguments parse: --help must start without SQLAlchemy.
    from dashboard.store.database import make_engine
    from dashboard.store.handles import DatabaseError

    try:
        if hasattr(args, "since"):
            filters_from_args(args)  # a reversed period fails before any store is opened
        if args.command == "sample":
            from dashboard.sample.generator import write_sample_log

            truth = write_sample_log(
                args.out, seed=args.seed, target_events=args.events, profile=args.profile
            )
            print(f"wrote {args.out}: {truth.to_dict().get('records', '?')} records")
            return 0
        config = load_config(args.config)
        if args.command == "relay":
            return _relay(args, config)
        url = args.db or default_db_url()
        if args.command == "mark":
            return _mark(args, url)
        if args.command in SOURCE_COMMANDS:
            return SOURCE_COMMANDS[args.command](args, url, config)
        if args.command in READ_COMMANDS:  # short-lived: one connection for all their queries
            engine = open_existing_store(url, hold_connection=True)
        else:
            engine = make_engine(url)  # ingest and demo create the store
        try:
            if args.command in READ_COMMANDS:
                for warning in unknown_value_warnings(engine, filters_from_args(args)):
                    print(warning, file=sys.stderr)
            if args.command == "ingest":
                return _ingest(args, engine, config)
            if args.command == "demo":
                return _demo(args, engine, config)
            if args.command == "report":
                return _report(args, engine, config)
            if args.command == "check":
                return _check(args, engine, config)
            if args.command == "events":
                return _events(args, engine, config)
            if args.command == "findings":
                return _findings(args, engine, config)
        finally:
            engine.dispose()  # a held DuckDB connection would keep the file locked
    except (IngestError, ConfigError, StoreError, UsageError) as exc:
        return _fail(str(exc))
    except DatabaseError as exc:
        return _fail(f"store error: {str(exc).splitlines()[0][:300]}")
    except BrokenPipeError:
        # `... | head`: the reader has what it wanted. Python's documented way out: point
        # stdout at devnull so the exit's flush does not raise again.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        return _fail(f"{exc.strerror or exc}: {exc.filename or ''}".strip(": "))
    return _fail(f"unknown command {args.command}")
