"""What the command line's read commands share: option types, the store and slice
options, the `check` thresholds as options, and opening a store that must already exist.

Owns the rules that make a command safe to run in CI: a read command never creates a
store (`open_existing_store`: a mistyped --db is an error, not an empty report), a
reversed period (--since after --until) is a usage error, a share given as a percentage
(75 for 0.75) is refused, and a filter value the store does not hold is warned about with
the closest values it does hold (`unknown_value_warnings`). cli/ maps `UsageError` and
`MissingStore` to exit code 2.

Light on purpose: `python -m dashboard --help` builds every parser from here, so this
module imports neither pandas nor SQLAlchemy at its top; what opens or reads a store
imports it inside the function.
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Callable, Iterable, Iterator
from datetime import date
from typing import TYPE_CHECKING

from dashboard.core.filters import FILTER_DIMENSIONS, Filters
from dashboard.outputs.thresholds import TIER_ORDER, Thresholds
from dashboard.store.errors import StoreError

if TYPE_CHECKING:
    from dashboard.store.database import StoreEngine


class UsageError(ValueError):
    """Options that parse one by one but cannot be right together (exit 2)."""


class MissingStore(StoreError):
    """A read command was pointed at a store that does not exist (exit 2)."""


# ---------------------------------------------------------------------------
# Option types: argparse turns their ArgumentTypeError into "argument --x: ..." and exit 2.
def iso_date(text: str) -> date:
    """A YYYY-MM-DD day."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text}") from None


def share(text: str) -> float:
    """A 0-1 share. 75 meant as 75% would otherwise be compared as 7500%: refused, with
    the value that was meant."""
    value = _number(text)
    if not 0 <= value <= 1:
        hint = f": use {value / 100:g} for {value:g}%" if 1 < value <= 100 else ""
        raise argparse.ArgumentTypeError(f"must be a share from 0 to 1, not {text}{hint}")
    return value


def positive(text: str) -> float:
    """A number above 0."""
    value = _number(text)
    if not value > 0:  # also rejects nan
        raise argparse.ArgumentTypeError(f"must be above 0, not {text}")
    return value


def count(text: str) -> int:
    """A whole number, 0 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


def days(text: str) -> int:
    """A whole number of days, 1 or more."""
    value = count(text)
    if value == 0:  # the baseline's daily average divides by it
        raise argparse.ArgumentTypeError("must be 1 or more, not 0")
    return value


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text}") from None


class LazyChoices:
    """Choices that `load()` gives only when argparse checks a value or shows the help
    listing them, for choices whose registry is heavy to import. Give the option a
    metavar (argparse otherwise lists the choices as the option is added) and put
    %(choices)s in its help."""

    def __init__(self, load: Callable[[], Iterable[str]]) -> None:
        self._load = load

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __contains__(self, value: object) -> bool:
        return value in list(self._load())


# ---------------------------------------------------------------------------
# Store and slice.
def add_store_options(parser: argparse.ArgumentParser) -> None:
    """--db and --config."""
    parser.add_argument("--db", help="store URL (default: $EQM_DB_URL or data/events.duckdb)")
    parser.add_argument("--config", help="config file (default: $EQM_CONFIG or data/config.toml)")


def add_filter_options(parser: argparse.ArgumentParser) -> None:
    """The slice options shared by the read commands: a period and every filter dimension."""
    parser.add_argument("--since", type=iso_date, help="first day (UTC, inclusive)")
    parser.add_argument("--until", type=iso_date, help="last day (UTC, inclusive)")
    for dimension in FILTER_DIMENSIONS:
        parser.add_argument(
            dimension.flag,
            dest=dimension.field,
            action="append",
            default=[],
            help=f"{dimension.help} (repeatable)",
        )


def filters_from_args(args: argparse.Namespace) -> Filters:
    """Filters from parsed CLI options; a period that ends before it starts is a
    `UsageError` (it would select nothing and report zeros as if they were data)."""
    if args.since and args.until and args.since > args.until:
        raise UsageError(
            f"--since {args.since.isoformat()} is after --until {args.until.isoformat()}"
        )
    return Filters(
        since=args.since,
        until=args.until,
        **{d.field: tuple(getattr(args, d.field)) for d in FILTER_DIMENSIONS},
    )


def open_existing_store(url: str, *, hold_connection: bool = False) -> StoreEngine:
    """An engine on a store that already holds events, for a command that only reads.
    Raises `MissingStore` ("no store at <where>; import a log first") instead of creating
    an empty one. An existing store made by an older version gets its missing tables and
    columns, as every command gives it."""
    # Imported here: the parser is built from this module, and --help must start without
    # SQLAlchemy.
    from dashboard.store.database import create_schema, make_engine, store_exists, store_location

    engine = make_engine(url, hold_connection=hold_connection)
    try:
        if not store_exists(engine):
            raise MissingStore(f"no store at {store_location(engine)}; import a log first")
        create_schema(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


def unknown_value_warnings(engine: StoreEngine, filters: Filters) -> list[str]:
    """One warning per filter value no event in the store has, naming the closest values
    it does have: a mistyped --campaign would otherwise report zeros as if it were data."""
    from dashboard.store.queries.blocks import distinct_values  # as above: not for --help

    warnings = []
    for dimension in FILTER_DIMENSIONS:
        wanted = getattr(filters, dimension.field)
        if not wanted:
            continue
        known = distinct_values(engine, dimension.column)
        for value in wanted:
            if value in known:
                continue
            close = difflib.get_close_matches(value, known, n=3, cutoff=0.5)
            if close:
                hint = "closest: " + ", ".join(close)
            elif known:
                hint = "known: " + ", ".join(known[:8]) + (", ..." if len(known) > 8 else "")
            else:
                hint = "the store has none"
            warnings.append(
                f"warning: no event has {dimension.flag} {value!r} in the store; {hint}"
            )
    return warnings


# ---------------------------------------------------------------------------
# `check` thresholds. Their words are what a developer reading `check --help` in a CI
# config needs: what is measured, in which unit, and the default.
CHECK_EPILOG = (
    "Every check is reported as passed, breached or skipped (with the reason, e.g. no "
    "event name with enough events in the window). Exit codes: 0 no check breached, "
    "1 at least one breached, 2 usage or store error (e.g. no store at --db). "
    "--format json follows schemas/check.schema.json."
)


def add_check_thresholds(parser: argparse.ArgumentParser) -> None:
    """The window and every threshold of `check`, each with its meaning, unit and default."""
    _add_check_window(parser)
    defaults = Thresholds()
    add = parser.add_argument
    add(
        "--min-emq-tier",
        default=defaults.min_emq_tier,
        choices=TIER_ORDER,
        help="lowest EMQ estimate tier per event name (default %(default)s)",
    )
    add(
        "--min-coverage",
        type=share,
        metavar="SHARE",
        default=defaults.min_coverage,
        help="smallest event coverage per event name, a 0-1 share (default %(default)s): "
        "the share of its browser events that have their server twin",
    )
    add(
        "--max-likely-double",
        type=count,
        metavar="N",
        default=defaults.max_likely_double,
        help="most server events likely counted twice, a count (default %(default)s): "
        "server events that escape dedup although the same person's browser event of the "
        "same name happened within 5 minutes",
    )
    add(
        "--max-error-rate",
        type=share,
        metavar="SHARE",
        default=defaults.max_error_rate,
        help="largest share of sent server events Meta rejected, 0-1 (default %(default)s)",
    )
    add(
        "--max-token-errors",
        type=count,
        metavar="N",
        default=defaults.max_token_errors,
        help="most events rejected for the token or permissions (codes 190/200), a count "
        "(default %(default)s)",
    )
    add(
        "--max-stale",
        type=count,
        metavar="N",
        default=defaults.max_stale,
        help="most events sent more than 7 days after they happened, a count (default %(default)s)",
    )
    add(
        "--max-unhashed-pii",
        type=count,
        metavar="N",
        default=defaults.max_unhashed_pii,
        help="most server events with plaintext personal data (e-mail, phone, name, ...) "
        "in a field Meta wants SHA-256 hashed, a count (default %(default)s)",
    )
    add(
        "--max-volume-drop",
        type=share,
        metavar="SHARE",
        default=defaults.max_volume_drop,
        help="largest fall of server events vs the baseline's daily average, a 0-1 share "
        "(default %(default)s)",
    )
    add(
        "--max-silence-hours",
        type=positive,
        metavar="HOURS",
        default=None,
        help="largest age of the newest accepted server event, in hours of send time "
        f"before the window's end (default {defaults.max_silence_hours:g}, or "
        "max_silence_hours under [health] in the config file)",
    )
    add(
        "--min-events",
        type=count,
        metavar="N",
        default=defaults.min_events,
        help="smallest event group judged on EMQ and coverage, in events (default "
        "%(default)s): an event name with fewer server (EMQ) or browser (coverage) events "
        "in the window is not judged",
    )
    _add_meta_thresholds(parser, defaults)


def _add_meta_thresholds(parser: argparse.ArgumentParser, defaults: Thresholds) -> None:
    """The thresholds on Meta's own EMQ (Dataset Quality API snapshots)."""
    add = parser.add_argument
    add(
        "--max-meta-emq-drop",
        type=positive,
        metavar="POINTS",
        default=defaults.max_meta_emq_drop,
        help="largest fall of Meta's own EMQ between an event's two newest snapshots "
        "(meta import / meta fetch), in points of 0-10 (default %(default)g)",
    )
    add(
        "--max-meta-gap",
        type=positive,
        metavar="POINTS",
        default=defaults.max_meta_gap,
        help="largest difference between Meta's newest EMQ and our estimate over the 48 h "
        "before it, in points (default %(default)g): a larger one usually means a hashing "
        "or normalisation fault",
    )


def _add_check_window(parser: argparse.ArgumentParser) -> None:
    """--at, --window-hours and --baseline-days: which window is checked."""
    add = parser.add_argument
    add(
        "--at",
        default="now",
        metavar="WHEN",
        help="end of the window: now (default), latest (the newest send time in the store) "
        "or an ISO time (UTC unless it has an offset)",
    )
    add(
        "--window-hours",
        type=positive,
        metavar="HOURS",
        default=24.0,
        help="length of the window checked, in hours of send time (default %(default)g)",
    )
    add(
        "--baseline-days",
        type=days,
        metavar="DAYS",
        default=7,
        help="days before the window that server volume is compared with (default %(default)s)",
    )


def thresholds_from_args(args: argparse.Namespace, config_silence_hours: float) -> Thresholds:
    """The thresholds of a parsed `check`; --max-silence-hours falls back on the config."""
    silence = args.max_silence_hours
    return Thresholds(
        min_emq_tier=args.min_emq_tier,
        min_coverage=args.min_coverage,
        max_likely_double=args.max_likely_double,
        max_error_rate=args.max_error_rate,
        max_token_errors=args.max_token_errors,
        max_stale=args.max_stale,
        max_unhashed_pii=args.max_unhashed_pii,
        max_volume_drop=args.max_volume_drop,
        min_events=args.min_events,
        max_silence_hours=silence if silence is not None else config_silence_hours,
        max_meta_emq_drop=args.max_meta_emq_drop,
        max_meta_gap=args.max_meta_gap,
    )
