"""Fetching Meta's Dataset Quality API answer over HTTP.

Owns the call `GET {graph}/{version}/dataset_quality?dataset_id=…&fields=web{…}`, the
access token's source (the environment's META_ACCESS_TOKEN, else Streamlit's secrets
file), and what Meta's errors mean here: 190 (the token), 100 (an unknown dataset or one
the token may not read), and the rate limits 4, 17, 32, 613 and 80004, which are retried
with a doubling wait, as are 5xx answers and network errors.

The token travels in the Authorization header, never in the URL, so no URL this module
builds, prints or raises holds it; any text from Meta that quotes it has it replaced.
Plain HTTP with a timeout rather than the facebook-business SDK: one GET, and the SDK's
global session cannot take a test server's base URL. EQM_GRAPH_URL overrides the base.
"""

from __future__ import annotations

import json
import os
import time
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

DEFAULT_GRAPH_URL = "https://graph.facebook.com"
GRAPH_VERSION = "v24.0"
TOKEN_VARIABLE = "META_ACCESS_TOKEN"
FIELDS = (
    "web{event_name,event_match_quality,event_coverage,dedupe_key_feedback,"
    "data_freshness,acr,event_potential_aly_acr_increase}"
)
RATE_LIMIT_CODES = frozenset({4, 17, 32, 613, 80004})


class FetchError(RuntimeError):
    """A fetch that failed, in words a marketer can act on (never holding the token).
    `retry` says whether waiting and trying again may help."""

    def __init__(self, message: str, *, code: int | None = None, retry: bool = False):
        super().__init__(message)
        self.code = code
        self.retry = retry


def graph_url() -> str:
    """The Graph API's base URL: EQM_GRAPH_URL, https only (plain http only to this
    machine, as the tests' local server), else graph.facebook.com."""
    url = (os.environ.get("EQM_GRAPH_URL") or DEFAULT_GRAPH_URL).rstrip("/")
    parts = urllib.parse.urlsplit(url)
    local = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme != "https" and not (parts.scheme == "http" and local):
        raise FetchError(f"EQM_GRAPH_URL must be an https URL (http only to this machine): {url}")
    return url


def find_token(secrets_paths: list[Path] | None = None) -> str | None:
    """META_ACCESS_TOKEN from the environment, else from Streamlit's secrets file
    (`META_ACCESS_TOKEN`, or `access_token` in a `[meta]` section), else None."""
    token = os.environ.get(TOKEN_VARIABLE, "").strip()
    if token:
        return token
    paths = secrets_paths or [
        Path.cwd() / ".streamlit" / "secrets.toml",
        Path.home() / ".streamlit" / "secrets.toml",
    ]
    for path in paths:
        try:
            secrets = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError):
            continue
        found = secrets.get(TOKEN_VARIABLE) or (secrets.get("meta") or {}).get("access_token")
        if found and str(found).strip():
            return str(found).strip()
    return None


def _request(dataset_id: str, agent: str | None) -> str:
    query = {"dataset_id": dataset_id, "fields": FIELDS}
    if agent:
        query["agent_name"] = agent.lower()  # Meta wants the partner agent in lower case
    return f"{graph_url()}/{GRAPH_VERSION}/dataset_quality?{urllib.parse.urlencode(query)}"


def _hidden(text: str, token: str) -> str:
    return text.replace(token, "***") if token else text


def _graph_error(status: int, body: bytes, token: str, dataset_id: str) -> FetchError:
    try:
        error = json.loads(body).get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    code = error.get("code")
    message = _hidden(str(error.get("message") or f"HTTP {status}"), token)[:300]
    if code == 190:
        return FetchError(
            f"Meta refused the access token (code 190: {message}). Create a new token with "
            "access to the dataset and set META_ACCESS_TOKEN.",
            code=190,
        )
    if code == 100:
        return FetchError(
            f"Meta does not know dataset {dataset_id}, or the token may not read it "
            f"(code 100: {message})",
            code=100,
        )
    if code in RATE_LIMIT_CODES:
        return FetchError(f"Meta's rate limit (code {code}): {message}", code=code, retry=True)
    return FetchError(
        f"Meta answered HTTP {status}" + (f" (code {code})" if code else "") + f": {message}",
        code=code,
        retry=status >= 500,
    )


def fetch_once(dataset_id: str, token: str, agent: str | None, timeout_s: float) -> bytes:
    """One GET; the answer's body, or FetchError."""
    request = urllib.request.Request(
        _request(dataset_id, agent), headers={"Accept": "application/json"}
    )
    # Unredirected: urllib would pass an ordinary header on to whatever host a redirect
    # names; the token goes to the Graph URL only.
    request.add_unredirected_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as answer:  # noqa: S310 - Graph URL
            return answer.read()
    except urllib.error.HTTPError as exc:
        raise _graph_error(exc.code, exc.read(), token, dataset_id) from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise FetchError(
            f"cannot reach {graph_url()}: {_hidden(str(reason), token)}", retry=True
        ) from None


def fetch_answer(
    dataset_id: str,
    token: str,
    *,
    agent: str | None = None,
    timeout_s: float = 30.0,
    attempts: int = 4,
    first_wait_s: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[FetchError, float], None] | None = None,
) -> bytes:
    """The answer's body, retrying rate limits, 5xx and network errors up to `attempts`
    times with a doubling wait; the last FetchError when none succeeds."""
    if not token:
        raise FetchError(
            f"no access token: set {TOKEN_VARIABLE}, or put it in .streamlit/secrets.toml"
        )
    # Meta's own retry advice for rate limits: wait, doubling. (Not a store lock: the
    # store's one lock policy lives in store/locks.py.)
    wait, tries = first_wait_s, 1
    while True:
        try:
            return fetch_once(dataset_id, token, agent, timeout_s)
        except FetchError as exc:
            if not exc.retry or tries >= attempts:
                raise
            if on_retry:
                on_retry(exc, wait)
        sleep(wait)
        wait, tries = wait * 2, tries + 1


def parse_every(text: str) -> float:
    """'6h', '30m', '90s', '1d' (or plain seconds) as seconds; ValueError otherwise."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    raw = text.strip().lower()
    unit = units.get(raw[-1:], None)
    number = raw[:-1] if unit else raw
    try:
        seconds = float(number) * (unit or 1)
    except ValueError:
        raise ValueError(f"--every takes a duration such as 6h, 30m or 1d, not {text!r}") from None
    if seconds < 1:
        raise ValueError("--every must be at least 1 s")
    return seconds
