"""Command line: `python -m dashboard ingest|relay|report|check|sample|demo`.

Owns argument parsing, exit codes (0 ok, 1 strict-mode quarantine, 2 usage or store
error) and one-line error messages without tracebacks. The store URL comes from --db,
else $EQM_DB_URL, else the embedded DuckDB file; it is never printed (it may hold a
password).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path

from dashboard.core.config import ConfigError, default_db_url, load_config
from dashboard.core.filters import FILTER_DIMENSIONS, Filters
from dashboard.ingest import IngestError, ingest
from dashboard.ingest.formats import format_names
from dashboard.outputs.check import Thresholds
from dashboard.store.database import StoreError, make_engine
from dashboard.store.handles import DatabaseError


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text}") from None


def _share(text: str) -> float:
    """A 0-1 share: 75 for 75% would otherwise be reported as "below 7500%"."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be a share from 0 to 1 (0.75 for 75%), not {text}")
    return value


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text}") from None
    if not value > 0:  # also rejects nan
        raise argparse.ArgumentTypeError(f"must be above 0, not {text}")
    return value


def _days(text: str) -> int:
    value = _count(text)
    if value == 0:  # the baseline's daily average divides by it
        raise argparse.ArgumentTypeError("must be 1 or more, not 0")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


def _add_store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", help="store URL (default: $EQM_DB_URL or data/events.duckdb)")
    parser.add_argument("--config", help="config file (default: $EQM_CONFIG or data/config.toml)")


def add_filter_options(parser: argparse.ArgumentParser) -> None:
    """The slice options shared by report and check."""
    parser.add_argument("--since", type=_date, help="first day (UTC, inclusive)")
    parser.add_argument("--until", type=_date, help="last day (UTC, inclusive)")
    for dimension in FILTER_DIMENSIONS:
        parser.add_argument(
            dimension.flag,
            dest=dimension.field,
            action="append",
            default=[],
            help=f"{dimension.help} (repeatable)",
        )


def filters_from_args(args: argparse.Namespace) -> Filters:
    """Filters from parsed CLI options."""
    return Filters(
        since=args.since,
        until=args.until,
        **{d.field: tuple(getattr(args, d.field)) for d in FILTER_DIMENSIONS},
    )


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
        "check", help="check the latest window against thresholds (exit 0 ok, 1 breach, 2 error)"
    )
    _add_store_options(p_check)
    add_filter_options(p_check)
    defaults = Thresholds()
    p_check.add_argument(
        "--at",
        default="now",
        metavar="WHEN",
        help="end of the window: now (default), latest (the newest send time in the store) "
        "or an ISO time (UTC unless it has an offset)",
    )
    p_check.add_argument(
        "--window-hours",
        type=_positive,
        metavar="HOURS",
        default=24.0,
        help="length of the window checked, in hours of send time (default %(default)g)",
    )
    p_check.add_argument(
        "--baseline-days",
        type=_days,
        metavar="DAYS",
        default=7,
        help="days before the window that server volume is compared with (default %(default)s)",
    )
    p_check.add_argument(
        "--min-emq-tier",
        default=defaults.min_emq_tier,
        choices=["Poor", "OK", "Good", "Great"],
        help="lowest EMQ estimate tier per event name (default %(default)s)",
    )
    p_check.add_argument(
        "--min-coverage",
        type=_share,
        metavar="SHARE",
        default=defaults.min_coverage,
        help="smallest event coverage per event name, a 0-1 share (default %(default)s)",
    )
    p_check.add_argument(
        "--max-likely-double",
        type=_count,
        metavar="N",
        default=defaults.max_likely_double,
        help="most server events likely counted twice, a count (default %(default)s)",
    )
    p_check.add_argument(
        "--max-error-rate",
        type=_share,
        metavar="SHARE",
        default=defaults.max_error_rate,
        help="largest share of sent server events Meta rejected, 0-1 (default %(default)s)",
    )
    p_check.add_argument(
        "--max-token-errors",
        type=_count,
        metavar="N",
        default=defaults.max_token_errors,
        help="most events rejected for the token or permissions (codes 190/200), a count "
        "(default %(default)s)",
    )
    p_check.add_argument(
        "--max-stale",
        type=_count,
        metavar="N",
        default=defaults.max_stale,
        help="most events sent more than 7 days after they happened, a count (default %(default)s)",
    )
    p_check.add_argument(
        "--max-volume-drop",
        type=_share,
        metavar="SHARE",
        default=defaults.max_volume_drop,
        help="largest fall of server events vs the baseline's daily average, a 0-1 share "
        "(default %(default)s)",
    )
    p_check.add_argument(
        "--max-silence-hours",
        type=_positive,
        metavar="HOURS",
        default=None,
        help="largest age of the newest accepted server event, in hours of send time "
        f"before the window's end (default {defaults.max_silence_hours:g}, or "
        "max_silence_hours under [health] in the config file)",
    )
    p_check.add_argument(
        "--min-events",
        type=_count,
        metavar="N",
        default=defaults.min_events,
        help="smallest event group judged on EMQ and coverage, in events (default %(default)s)",
    )
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
        choices=format_names(),
        help="read every file in this format instead of detecting it",
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
    _add_store_options(p_ingest)

    _add_relay_parser(commands)

    p_report = commands.add_parser("report", help="print the quality report")
    p_report.add_argument(
        "--format",
        choices=["json", "text", "html", "pdf", "xlsx", "csv"],
        help="text: a one-screen summary; json: the report contract (default: text at a "
        "terminal, json when piped, scripted or with --out)",
    )
    p_report.add_argument(
        "--out", help="write to this file (required for pdf and xlsx; else stdout)"
    )
    _add_store_options(p_report)
    add_filter_options(p_report)

    _add_check_parser(commands)

    p_demo = commands.add_parser(
        "demo", help="import the bundled sample into the store (once) and open the dashboard"
    )
    _add_store_options(p_demo)
    p_demo.add_argument("--port", type=int, default=8501)
    p_demo.add_argument("--no-browser", action="store_true", help="do not open a browser window")

    p_sample = commands.add_parser("sample", help="write the seeded synthetic sample log")
    p_sample.add_argument("out", help="output file (.jsonl or .jsonl.gz)")
    p_sample.add_argument("--events", type=int, default=20_000, help="approximate event count")
    p_sample.add_argument("--seed", type=int, default=42)
    return parser


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _report(args: argparse.Namespace, engine, config) -> int:
    from dashboard.outputs.report import build_report
    from dashboard.store.database import create_schema

    create_schema(engine)
    filters = filters_from_args(args)
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
        text = json.dumps(build_report(engine, filters, config), indent=2, ensure_ascii=False)
        if args.out:
            Path(args.out).write_text(text + "\n", encoding="utf-8")
        else:
            print(text)
        return 0
    from dashboard.outputs import documents as reports

    if args.format in ("pdf", "xlsx") and not args.out:
        return _fail(f"--format {args.format} needs --out FILE")
    try:
        data = reports.render(reports.collect(engine, filters, config), args.format)
    except reports.PdfUnavailable as exc:
        return _fail(str(exc))
    if args.out:
        Path(args.out).write_bytes(data)
        print(f"wrote {args.out} ({len(data):,} bytes)")
    else:
        sys.stdout.write(data.decode("utf-8"))
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
    from dashboard.store.database import create_schema

    create_schema(engine)
    thresholds = Thresholds(
        min_emq_tier=args.min_emq_tier,
        min_coverage=args.min_coverage,
        max_likely_double=args.max_likely_double,
        max_error_rate=args.max_error_rate,
        max_token_errors=args.max_token_errors,
        max_stale=args.max_stale,
        max_volume_drop=args.max_volume_drop,
        min_events=args.min_events,
        max_silence_hours=(
            args.max_silence_hours
            if args.max_silence_hours is not None
            else getattr(config, "max_silence_hours", Thresholds.max_silence_hours)
        ),
    )
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
        print("\n".join(result.lines()))
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

    summary = ingest([SAMPLE_LOG_PATH], engine, config=config)
    print(
        f"sample: {summary.events_imported:,} events imported ({summary.lines_already_imported:,} lines already there)"
    )
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
    try:
        if args.command == "sample":
            from dashboard.sample.generator import write_sample_log

            truth = write_sample_log(args.out, seed=args.seed, target_events=args.events)
            print(f"wrote {args.out}: {truth.to_dict().get('records', '?')} records")
            return 0
        config = load_config(args.config)
        if args.command == "relay":
            return _relay(args, config)
        # report and check are short-lived: keep one connection for all their queries.
        engine = make_engine(
            args.db or default_db_url(), hold_connection=args.command in ("report", "check")
        )
        try:
            if args.command == "ingest":
                return _ingest(args, engine, config)
            if args.command == "demo":
                return _demo(args, engine, config)
            if args.command == "report":
                return _report(args, engine, config)
            if args.command == "check":
                return _check(args, engine, config)
        finally:
            engine.dispose()  # a held DuckDB connection would keep the file locked
    except (IngestError, ConfigError, StoreError) as exc:
        return _fail(str(exc))
    except DatabaseError as exc:
        return _fail(f"store error: {str(exc).splitlines()[0][:300]}")
    except OSError as exc:
        return _fail(f"{exc.strerror or exc}: {exc.filename or ''}".strip(": "))
    return _fail(f"unknown command {args.command}")
