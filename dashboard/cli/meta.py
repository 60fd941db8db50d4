"""`python -m dashboard meta import|fetch|calibrate|list`: Meta's own numbers.

Owns the `meta` command: storing a saved Dataset Quality API answer (`import`) or a live
one (`fetch`, once or `--every 6h`), refitting the EMQ estimate's calibration after each,
and listing what is stored. Exit codes as the other commands: 0 done, 2 a usage, file,
answer or fetch error (nothing of a refused answer is stored). The access token is read
by dashboard/capture/graph_quality.py and never printed. Light at import, like cli/:
each handler imports what it runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from dashboard.outputs.options import add_store_options


def _moment(text: str) -> float:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def add_meta_parser(commands) -> None:
    p_meta = commands.add_parser(
        "meta", help="Meta's own EMQ, coverage and dedup feedback (Dataset Quality API)"
    )
    actions = p_meta.add_subparsers(dest="meta_command", required=True)
    p_import = actions.add_parser("import", help="store a saved Dataset Quality API answer")
    p_import.add_argument("file", help='the answer, as JSON ({"web": [...]})')
    p_import.add_argument("--dataset", required=True, help="the dataset (pixel) id it is for")
    p_import.add_argument(
        "--at",
        type=_moment,
        help="when it was fetched, ISO 8601, UTC unless it has an offset "
        "(default: the file's modification time)",
    )
    p_import.add_argument("--agent", help="the partner agent it was fetched for, if any")
    add_store_options(p_import)
    p_fetch = actions.add_parser(
        "fetch", help="fetch the answer from the Graph API (token: $META_ACCESS_TOKEN)"
    )
    p_fetch.add_argument(
        "--dataset", required=True, action="append", help="dataset id (repeatable)"
    )
    p_fetch.add_argument("--agent", help="partner agent name (agent_name), e.g. a platform's")
    p_fetch.add_argument("--every", help="keep fetching on this schedule, e.g. 6h, 30m, 1d")
    p_fetch.add_argument(
        "--times", type=int, help="with --every: stop after this many fetches (default: never)"
    )
    p_fetch.add_argument(
        "--retries", type=int, default=4, help="attempts per fetch on a rate limit (default 4)"
    )
    p_fetch.add_argument(
        "--retry-wait",
        type=float,
        default=30.0,
        help="seconds before the first retry, doubling after each (default 30)",
    )
    p_fetch.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    add_store_options(p_fetch)
    p_calibrate = actions.add_parser(
        "calibrate", help="refit the EMQ estimate to Meta's scores (import and fetch do it)"
    )
    add_store_options(p_calibrate)
    p_list = actions.add_parser("list", help="list the stored snapshots")
    add_store_options(p_list)


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def _calibration_line(calibration) -> str:
    if not calibration.calibrated:
        return f"EMQ estimate uncalibrated: {calibration.reason}"
    return (
        f"EMQ estimate calibrated on {len(calibration.points)} snapshots: Meta ≈ "
        f"{calibration.intercept:.2f} + {calibration.slope:.2f} × estimate; mean error "
        f"{calibration.mae_raw:.2f} points raw, {calibration.mae_calibrated:.2f} calibrated"
    )


def _store(engine, config, snapshots, dataset: str, at: float) -> list[str]:
    from dashboard.quality.meta_compare import calibrate
    from dashboard.store.meta_snapshots import store_snapshots

    added = store_snapshots(engine, snapshots)
    again = len(snapshots) - added
    lines = [
        f"dataset {dataset} at {_when(at)}: {added} event name(s) stored"
        + (f", {again} already there" if again else "")
    ]
    if not added:  # nothing new: the calibration in use stands
        return lines
    return [*lines, _calibration_line(calibrate(engine, config))]


def _import(args, engine, config) -> int:
    from dashboard.core.meta_quality import MetaAnswerError, parse_answer

    path = Path(args.file)
    at = args.at if args.at is not None else path.stat().st_mtime
    try:
        snapshots = parse_answer(path.read_bytes(), args.dataset, at, args.agent)
    except MetaAnswerError as exc:
        print(f"error: {path}: {exc}; nothing stored", file=sys.stderr)
        return 2
    print("\n".join(_store(engine, config, snapshots, args.dataset, at)))
    return 0


def _fetch_round(args, engine, config, token: str) -> None:
    from dashboard.capture.graph_quality import fetch_answer
    from dashboard.core import clock
    from dashboard.core.meta_quality import MetaAnswerError, parse_answer

    def tell(error, wait):
        print(f"{error}; retrying in {wait:g} s", file=sys.stderr, flush=True)

    for dataset in args.dataset:
        body = fetch_answer(
            dataset,
            token,
            agent=args.agent,
            timeout_s=args.timeout,
            attempts=max(1, args.retries),
            first_wait_s=args.retry_wait,
            on_retry=tell,
        )
        at = clock.now()
        try:
            snapshots = parse_answer(body, dataset, at, args.agent)
        except MetaAnswerError as exc:  # it may quote Meta's message, and so the token
            raise MetaAnswerError(str(exc).replace(token, "***")) from None
        print("\n".join(_store(engine, config, snapshots, dataset, at)), flush=True)


def _fetch(args, engine, config) -> int:
    from dashboard.capture.graph_quality import FetchError, find_token, parse_every
    from dashboard.core.meta_quality import MetaAnswerError

    try:
        every = parse_every(args.every) if args.every else None
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    token = find_token()
    rounds = 0
    while True:
        rounds += 1
        try:
            _fetch_round(args, engine, config, token)
        except (FetchError, MetaAnswerError) as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            # On a schedule, a passing fault (a rate limit past its retries, a network
            # error) waits for the next round; a refused token or dataset never heals.
            if every is None or not getattr(exc, "retry", False):
                return 2
        if every is None or (args.times and rounds >= args.times):
            return 0
        time.sleep(every)


def _list(engine) -> int:
    from dashboard.store.meta_snapshots import load_snapshots

    snapshots = load_snapshots(engine)
    if not snapshots:
        print("no snapshots: `meta import FILE --dataset ID` or `meta fetch --dataset ID`")
    for s in snapshots:
        emq = "-" if s.emq is None else f"{s.emq:.1f}"
        cover = "-" if s.event_coverage is None else f"{s.event_coverage:.1%}"
        print(f"{_when(s.fetched_at)}  {s.dataset_id}  {s.event_name}: EMQ {emq}, coverage {cover}")
    return 0


def import_sample_snapshots(engine, config) -> str:
    """Store the bundled sample's Meta answers (a no-op once stored): the demo's."""
    from dashboard.core.config import SAMPLE_META_DIR
    from dashboard.core.meta_quality import SAMPLE_AGENT, parse_answer
    from dashboard.quality.meta_compare import calibrate
    from dashboard.sample.meta_answers import SAMPLE_DATASET
    from dashboard.store.meta_snapshots import store_snapshots

    added = 0
    for path in sorted(SAMPLE_META_DIR.glob("dataset_quality_*.json")):
        day = path.stem.removeprefix("dataset_quality_")
        at = datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()
        snapshots = parse_answer(path.read_bytes(), SAMPLE_DATASET, at, SAMPLE_AGENT)
        added += store_snapshots(engine, snapshots)
    if added:
        calibrate(engine, config)
    return f"sample Meta snapshots (synthetic): {added} stored"


def run_meta(args: argparse.Namespace, url: str, config) -> int:
    """Run `meta <action>` on the store at `url` (created when missing)."""
    from dashboard.quality.meta_compare import calibrate
    from dashboard.store.database import create_schema, make_engine

    engine = make_engine(url)
    try:
        create_schema(engine)
        if args.meta_command == "import":
            return _import(args, engine, config)
        if args.meta_command == "fetch":
            return _fetch(args, engine, config)
        if args.meta_command == "calibrate":
            print(_calibration_line(calibrate(engine, config)))
            return 0
        return _list(engine)
    finally:
        engine.dispose()
