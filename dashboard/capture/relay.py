"""The logging relay: forwards Conversions API calls to Meta and writes the log they lacked.

Owns `python -m dashboard relay`. An integration that keeps no log points its Graph API
base URL at the relay; the relay
- accepts only the events call, `POST /[<version>/]<dataset id>/events` (JSON or form
  body; the token in the query, the body or an Authorization header), and forwards it to
  the configured upstream unchanged: method, path, query, headers, body;
- returns the upstream's answer unchanged (status, body, content type and Meta's other
  headers), or a Graph-style error when the upstream cannot be reached (502) or does
  not answer in time (504);
- then, on its log thread while the answer goes back, appends one log format v1
  `capi_request` record per call (the body as `capture.scrub` keeps it, the dataset from the path, the time it
  arrived, Meta's answer, or null when there was none) to one JSON Lines file per UTC
  day in the log folder, and gzips a day's file once the day is over;
- also serves `/pixel-mirror.js` and `POST /collect`, where the script mirrors the
  page's fbq calls (CORS for the `--allow-origin` origins only), logged as
  `pixel_event` records;
- counts everything on `GET /health`: calls, upstream errors and timeouts, log records
  and log failures (a full disk or a permission error loses the log line, never the
  call), upstream latency.

It is no open proxy: nothing else is forwarded, only to the one upstream, bodies have a
size limit, and it listens on localhost unless told otherwise (and says so then).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import ipaddress
import queue
import re
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dashboard.capture.scrub import scrub_body, scrub_event
from dashboard.core.config import Config, load_config
from dashboard.ingest.formats.graph import form_body
from dashboard.ingest.rows import Rejected

DEFAULT_LISTEN = "127.0.0.1:8787"
DEFAULT_UPSTREAM = "https://graph.facebook.com"
DEFAULT_LOG_DIR = "data/capture"
MIRROR_SCRIPT = Path(__file__).with_name("pixel-mirror.js")
_COLLECT_MAX_BYTES = 64 * 1024
_VERSION = re.compile(r"v\d+(?:\.\d+)?")
# Not forwarded either way: hop-by-hop headers, and what the client library sets anew.
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}
# The upstream body reaches the caller decoded, so its encoding header goes too.
_NOT_RETURNED = _HOP_BY_HOP | {"content-encoding"}


@dataclass
class RelaySettings:
    listen_host: str = "127.0.0.1"
    listen_port: int = 8787
    upstream: str = DEFAULT_UPSTREAM
    log_dir: Path = Path(DEFAULT_LOG_DIR)
    allow_origins: tuple[str, ...] = ()
    max_body_bytes: int = 16 * 1024 * 1024
    timeout_s: float = 30.0
    mirror_dataset: str | None = None  # for mirrored events when the page names no pixel
    config: Config = field(default_factory=load_config)


def parse_listen(text: str) -> tuple[str, int]:
    """`HOST:PORT` (or `[v6]:PORT`) as (host, port)."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--listen wants HOST:PORT, not {text!r}")
    return host.strip("[]"), int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Stats:
    """What /health reports. Counters only grow; latencies are the last 10,000 calls."""

    def __init__(self) -> None:
        self.lock = threading.Lock()  # log counters move on the background-task threads
        self.started_at = time.time()
        self.calls = 0
        self.answered = 0
        self.upstream_errors = 0
        self.timeouts = 0
        self.refused = 0  # not the events call, too large: never forwarded
        self.unreadable_bodies = 0  # forwarded, but no record could be made of it
        self.log_records = 0
        self.log_failures = 0
        self.last_log_error: str | None = None
        self.mirrored = 0
        self.upstream_ms: deque[float] = deque(maxlen=10_000)

    def to_dict(self) -> dict[str, Any]:
        latencies = sorted(self.upstream_ms)

        def pct(q: float) -> float | None:
            if not latencies:
                return None
            return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 2)

        return {
            "status": "ok" if not self.log_failures else "log failing",
            "started_at": datetime.fromtimestamp(self.started_at, UTC).isoformat(),
            "calls": self.calls,
            "answered": self.answered,
            "upstream_errors": self.upstream_errors,
            "timeouts": self.timeouts,
            "refused": self.refused,
            "unreadable_bodies": self.unreadable_bodies,
            "log_records": self.log_records,
            "log_failures": self.log_failures,
            "last_log_error": self.last_log_error,
            "mirrored_pixel_events": self.mirrored,
            "upstream_latency_ms": {"p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99)},
        }


class DailyLog:
    """One JSON Lines file per UTC day (`events-YYYY-MM-DD.jsonl`); a finished day's file
    is gzipped (`.jsonl.gz`: the importer knows it as the same file)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        self._compressing = threading.Lock()
        self._day: date | None = None
        self._handle = None

    def path_for(self, day: date) -> Path:
        return self.folder / f"events-{day.isoformat()}.jsonl"

    def append(self, records: list[dict], now: datetime) -> None:
        """Append records (one line each, flushed). Raises OSError when the disk says no."""
        data = b"".join(orjson.dumps(record) + b"\n" for record in records)
        with self._lock:
            day = now.date()
            if day != self._day or self._handle is None:
                self._close()
                self.folder.mkdir(parents=True, exist_ok=True)
                self._handle = self.path_for(day).open("ab")
                finished = self._day is not None and day != self._day
                self._day = day
                if finished:
                    threading.Thread(
                        target=self.compress_finished, args=(day,), daemon=True
                    ).start()
            self._handle.write(data)
            self._handle.flush()

    def compress_finished(self, today: date) -> list[Path]:
        """Gzip every day's file older than `today` (idempotent; the plain file goes once
        its gzip copy is complete)."""
        done = []
        with self._compressing:
            for path in sorted(self.folder.glob("events-*.jsonl")):
                try:
                    day = date.fromisoformat(path.stem.removeprefix("events-"))
                except ValueError:
                    continue
                if day >= today:
                    continue
                packed = path.with_suffix(".jsonl.gz")
                partial = path.with_suffix(".jsonl.gz.part")
                try:
                    with path.open("rb") as source, gzip.open(partial, "wb") as target:
                        shutil.copyfileobj(source, target)
                    partial.replace(packed)
                    path.unlink()
                except FileNotFoundError:
                    continue  # another relay process packed it first
                done.append(packed)
        return done

    def _close(self) -> None:
        if self._handle is not None:
            try:
                self._handle.close()
            except OSError:
                pass
            self._handle = None

    def close(self) -> None:
        with self._lock:
            self._close()


class LogWriter:
    """One thread that turns captured calls into log records and appends them: the event
    loop only hands work over (a queue put) and answers the call at once."""

    def __init__(self, log: DailyLog, stats: Stats) -> None:
        self.log, self.stats = log, stats
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="eqm-relay-log", daemon=True)
        self.thread.start()

    def submit(self, make_records: Callable[[], list[dict]], received: datetime) -> None:
        self.queue.put((make_records, received))

    def close(self) -> None:
        """Write what is queued, then stop."""
        self.queue.put(None)
        self.thread.join(timeout=30)

    def _run(self) -> None:
        while (job := self.queue.get()) is not None:
            make_records, received = job
            records = make_records()
            if not records:
                continue
            try:
                self.log.append(records, received)
            except OSError as exc:  # disk full, permission: the call was answered anyway
                with self.stats.lock:
                    self.stats.log_failures += len(records)
                    self.stats.last_log_error = f"{type(exc).__name__}: {exc.strerror or exc}"[:200]
            else:
                with self.stats.lock:
                    self.stats.log_records += len(records)


def _graph_error(status: int, message: str, *, transient: bool = True) -> JSONResponse:
    """An answer shaped like the Graph API's errors, so the caller's SDK reads it."""
    return JSONResponse(
        {
            "error": {
                "message": message,
                "type": "EventQualityMonitorRelay",
                "code": 2 if transient else 100,
                "is_transient": transient,
                "fbtrace_id": None,
            }
        },
        status_code=status,
    )


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _read_request_body(content_type: str, body: bytes) -> dict | None:
    """The call's body as a CAPI body dict (JSON or form-encoded), or None."""
    if "application/x-www-form-urlencoded" in content_type or body[:5] == b"data=":
        try:
            return form_body(body.decode("utf-8"))
        except (Rejected, UnicodeDecodeError):
            return None
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _answer_body(content: bytes) -> Any:
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        return content.decode("utf-8", "replace")[:2000]


class Relay:
    """The relay's handlers and the state they share (one per app)."""

    def __init__(self, settings: RelaySettings, stats: Stats) -> None:
        self.settings, self.stats = settings, stats
        self.log = DailyLog(settings.log_dir)
        self.writer = LogWriter(self.log, stats)
        self.upstream = settings.upstream.rstrip("/")
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.timeout_s),
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
            follow_redirects=False,
        )

    async def _read_limited(self, request: Request) -> bytes | None:
        """The body, or None when it is over the size limit (then not forwarded)."""
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.settings.max_body_bytes:
            return None
        body = b""
        async for piece in request.stream():
            body += piece
            if len(body) > self.settings.max_body_bytes:
                return None
        return body

    async def _forward(self, request: Request, body: bytes) -> tuple[Response, tuple | None]:
        """Meta's answer as the caller gets it, and (status, body) for the log (None when
        there was no answer)."""
        url = self.upstream + request.url.path
        if request.url.query:
            url += f"?{request.url.query}"
        headers = [(k, v) for k, v in request.headers.items() if k not in _HOP_BY_HOP]
        started = time.perf_counter()
        try:
            upstream = await self.client.request(request.method, url, content=body, headers=headers)
        except httpx.TimeoutException:
            self.stats.timeouts += 1
            return _graph_error(504, "Meta did not answer in time (relay timeout)"), None
        except httpx.HTTPError as exc:
            self.stats.upstream_errors += 1
            return _graph_error(502, f"Relay could not reach Meta: {type(exc).__name__}"), None
        self.stats.answered += 1
        self.stats.upstream_ms.append((time.perf_counter() - started) * 1000)
        returned = {k: v for k, v in upstream.headers.items() if k.lower() not in _NOT_RETURNED}
        response = Response(upstream.content, status_code=upstream.status_code, headers=returned)
        return response, (upstream.status_code, upstream.content)

    async def events_call(self, request: Request) -> Response:
        version = request.path_params.get("version")
        if version is not None and not _VERSION.fullmatch(version):
            return await self.not_forwarded(request)
        self.stats.calls += 1
        received = datetime.now(UTC)
        body = await self._read_limited(request)
        if body is None:
            self.stats.refused += 1
            return _graph_error(413, "Request body too large for the relay", transient=False)
        response, answer = await self._forward(request, body)
        content_type = request.headers.get("content-type", "")
        dataset_id = request.path_params["dataset_id"]
        settings, stats = self.settings, self.stats

        def records() -> list[dict]:
            parsed = _read_request_body(content_type, body)
            if parsed is None:
                stats.unreadable_bodies += 1
                return []
            return [
                {
                    "kind": "capi_request",
                    "sent_at": _iso(received),
                    "dataset_id": dataset_id,
                    "request": scrub_body(parsed, settings.config),
                    "response": None
                    if answer is None
                    else {"status": answer[0], "body": _answer_body(answer[1])},
                }
            ]

        # Reading, scrubbing and writing happen on the log thread: the call is answered
        # at once, and the log never delays or fails it.
        self.writer.submit(records, received)
        return response

    def _cors(self, origin: str | None) -> dict[str, str]:
        if origin and origin in self.settings.allow_origins:
            return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        return {}

    async def collect(self, request: Request) -> Response:
        cors = self._cors(request.headers.get("origin"))
        if request.method == "OPTIONS":
            if not cors:
                return Response(status_code=403)
            allow = {
                "Access-Control-Allow-Methods": "POST",
                "Access-Control-Allow-Headers": "Content-Type",
                "Access-Control-Max-Age": "86400",
            }
            return Response(status_code=204, headers={**cors, **allow})
        if not cors:
            self.stats.refused += 1
            return Response("origin not allowed (relay --allow-origin)", status_code=403)
        body = await request.body()
        if len(body) > _COLLECT_MAX_BYTES:
            self.stats.refused += 1
            return Response(status_code=413, headers=cors)
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return Response(status_code=400, headers=cors)
        if not isinstance(payload, dict):
            return Response(status_code=400, headers=cors)
        received = datetime.now(UTC)
        event = _mirrored_event(payload)
        pixels = [str(p)[:64] for p in payload.get("pixel_ids") or [] if p]
        if not pixels:
            pixels = [self.settings.mirror_dataset] if self.settings.mirror_dataset else [None]
        self.stats.mirrored += len(pixels)
        config = self.settings.config

        def records() -> list[dict]:
            scrubbed = scrub_event(event, config)
            return [
                {
                    "kind": "pixel_event",
                    "sent_at": _iso(received),
                    "dataset_id": p,
                    "event": scrubbed,
                }
                for p in pixels
            ]

        self.writer.submit(records, received)
        return Response(status_code=204, headers=cors)

    async def mirror_script(self, request: Request) -> Response:
        return Response(
            MIRROR_SCRIPT.read_text(encoding="utf-8"),
            media_type="application/javascript",
            headers={"Cache-Control": "max-age=300"},
        )

    async def health(self, request: Request) -> Response:
        return JSONResponse(
            {
                **self.stats.to_dict(),
                "upstream": self.upstream,
                "log_dir": str(self.settings.log_dir),
            }
        )

    async def not_forwarded(self, request: Request) -> Response:
        self.stats.refused += 1
        return _graph_error(
            404, "Only POST /<version>/<dataset id>/events is relayed", transient=False
        )

    @contextlib.asynccontextmanager
    async def lifespan(self, app):
        # Days finished while the relay was down are packed now.
        await asyncio.to_thread(_compress_quietly, self.log, datetime.now(UTC).date())
        yield
        await self.client.aclose()
        await asyncio.to_thread(self.writer.close)
        self.log.close()


def _mirrored_event(payload: dict) -> dict:
    """A /collect payload as a CAPI-shaped browser event."""
    return {
        "event_name": payload.get("event_name"),
        "event_time": payload.get("event_time"),
        "event_id": payload.get("event_id"),
        "action_source": "website",
        "event_source_url": payload.get("event_source_url"),
        "user_data": {
            key: payload[key]
            for key in ("fbp", "fbc", "client_user_agent")
            if isinstance(payload.get(key), str)
        },
        "custom_data": payload.get("custom_data"),
    }


def create_app(settings: RelaySettings, *, stats: Stats | None = None) -> Starlette:
    """The relay as an ASGI app (run by uvicorn; tests run it on a free local port)."""
    relay = Relay(settings, stats or Stats())
    methods = ["GET", "POST", "PUT", "DELETE", "PATCH"]
    routes = [
        Route("/{version:str}/{dataset_id:str}/events", relay.events_call, methods=["POST"]),
        Route("/{dataset_id:str}/events", relay.events_call, methods=["POST"]),
        Route("/collect", relay.collect, methods=["POST", "OPTIONS"]),
        Route("/pixel-mirror.js", relay.mirror_script, methods=["GET"]),
        Route("/health", relay.health, methods=["GET"]),
        Route("/{path:path}", relay.not_forwarded, methods=methods),
    ]
    app = Starlette(routes=routes, lifespan=relay.lifespan)
    app.state.stats = relay.stats
    app.state.log = relay.log
    return app


RELAY_URL_ENV = "EQM_RELAY_URL"


def fetch_health(base_url: str | None = None, timeout_s: float = 0.5) -> dict | None:
    """The /health of a running relay ($EQM_RELAY_URL, else the default address), or None
    when none answers. Asked over HTTP, so it works when the relay's disk is full."""
    import os

    base = (base_url or os.environ.get(RELAY_URL_ENV) or f"http://{DEFAULT_LISTEN}").rstrip("/")
    try:
        answer = httpx.get(f"{base}/health", timeout=timeout_s)
        return answer.json() if answer.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None


def _compress_quietly(log: DailyLog, today: date) -> None:
    try:
        log.compress_finished(today)
    except OSError:
        pass  # tried again at the next day change or start


def serve(settings: RelaySettings) -> None:
    """Run the relay until interrupted (uvicorn, no access log: URLs carry tokens)."""
    import sys

    import uvicorn

    # The log thread and the event loop share the GIL: hand it back every 0.5 ms instead
    # of 5 ms, or a call can wait that long behind a log write (p99 latency).
    sys.setswitchinterval(0.0005)
    uvicorn.run(
        create_app(settings),
        host=settings.listen_host,
        port=settings.listen_port,
        log_level="warning",
        access_log=False,
        server_header=False,
    )
