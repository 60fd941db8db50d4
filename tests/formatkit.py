"""One set of Conversions API calls, written as each integration's log writes it (tests only).

Each writer follows the integration's own logging code, read from its source:
- log format v1: our README;
- raw bodies: what every SDK POSTs; form-encoded as RudderStack sends it; the Python
  Business SDK's debug output (`curlify.to_curl` of the request, facebook_business/api.py);
- server-side GTM (Stape): stape-io/facebook-tag template.js `log()`, `logConsole`,
  `logToBigQuery` (console lines, the same wrapped by Cloud Logging, BigQuery rows);
- facebook-for-woocommerce: `log_api_request` + `Plugin::get_api_log_message` under
  WooCommerce's `<ISO time> <LEVEL> ` prefix;
- facebook-nodejs-business-sdk: src/api.js `call()` with debug on.

`Call.answer` is Meta's answer (`{"status", "body"}`) or None for a call that got none
(a timeout). Every writer plants the access token (and an appsecret_proof) where that
integration puts it, so the privacy tests can look for them everywhere.
"""

from __future__ import annotations

import csv
import gzip
import json
import shlex
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urlencode

from tests.fixtures.real_payloads import (
    META_ANSWERS,
    META_GTM_TAG_BODY,
    SEGMENT_BODIES,
    STAPE_API_VERSION,
    STAPE_BODIES,
    WOOCOMMERCE_BODY,
)

# Planted secrets: a Meta-style access token and an appsecret_proof. Neither may reach
# the store, an export, the CLI's output or a page.
TOKEN = "EAAGm0PX4ZCpsBAPLANTEDsecretTOKENq7ZBx9ZCZAvZB2kR"
APPSECRET_PROOF = "c0ffee5ecretpr00f0123456789abcdef0123456789abcdef"
GRAPH = "https://graph.facebook.com"


@dataclass(frozen=True)
class Call:
    """One events call: the body sent, to which dataset, when, and Meta's answer."""

    body: dict
    dataset_id: str
    sent_at: int  # Unix seconds (whole: the WooCommerce log has no finer time)
    answer: dict | None
    trace_id: str

    @property
    def event_name(self) -> str:
        return str(self.body["data"][0].get("event_name"))

    def url(self, version: str = "v21.0") -> str:
        return (
            f"{GRAPH}/{version}/{self.dataset_id}/events"
            f"?access_token={TOKEN}&appsecret_proof={APPSECRET_PROOF}"
        )


def real_calls(dataset_id: str = "1234567890123") -> list[Call]:
    """The published payloads of real integrations as calls, with a mix of Meta's answers
    (accepted, token error 190, timestamp too old, rate limit 17, no answer)."""
    bodies = [*SEGMENT_BODIES, META_GTM_TAG_BODY, *STAPE_BODIES, WOOCOMMERCE_BODY]
    answers = [
        META_ANSWERS["success"],
        META_ANSWERS["token_190"],
        META_ANSWERS["success"],
        META_ANSWERS["timestamp_too_old_2804003"],
        META_ANSWERS["success"],
        None,
        META_ANSWERS["rate_limit_17"],
    ]
    calls = []
    for i, body in enumerate(bodies):
        first = body["data"][0].get("event_time")
        try:
            sent_at = int(float(first)) + 30 + i
        except (TypeError, ValueError):
            sent_at = 0
        if not 1_500_000_000 < sent_at < 2_000_000_000:
            # An ISO or a 1973 event_time (the GTM tag's test): the call itself was sent
            # in our time; the event is quarantined for its event_time in every format.
            sent_at = 1_747_945_900 + i
        calls.append(Call(body, dataset_id, sent_at, answers[i % len(answers)], f"trace-{i}"))
    return calls


@dataclass(frozen=True)
class Carried:
    """What a format can say about a call beyond its body: the v1 log written with the
    same losses must give the same report."""

    dataset: bool = True
    sent_at: bool = True
    answer: str = "full"  # full | no_error_body | none


def _open(path: Path, mode: str = "wt"):
    if path.name.endswith(".gz"):
        return gzip.open(path, mode, encoding="utf-8", newline="")
    return path.open(mode, encoding="utf-8", newline="")


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat()


def _answer_as_carried(answer: dict | None, carried: Carried) -> dict | None:
    if answer is None or carried.answer == "none":
        return None
    if carried.answer == "no_error_body" and answer["status"] >= 300:
        return {"status": answer["status"], "body": None}
    return answer


def write_v1(path: Path, calls: list[Call], carried: Carried = Carried()) -> Path:
    with _open(path) as out:
        for call in calls:
            record = {"kind": "capi_request", "request": call.body}
            if carried.dataset:
                record["dataset_id"] = call.dataset_id
            if carried.sent_at:
                record["sent_at"] = _iso(call.sent_at)
            answer = _answer_as_carried(call.answer, carried)
            if answer is not None:
                record["response"] = answer
            out.write(json.dumps(record) + "\n")
    return path


# -- raw request bodies ------------------------------------------------------------------
def write_bodies(path: Path, calls: list[Call]) -> Path:
    """One JSON body per line, exactly as POSTed."""
    with _open(path) as out:
        for call in calls:
            out.write(json.dumps(call.body) + "\n")
    return path


def write_form_bodies(path: Path, calls: list[Call]) -> Path:
    """`data=<url-encoded JSON array>&access_token=...`, one call per line."""
    with _open(path) as out:
        for call in calls:
            fields = {"data": json.dumps(call.body["data"]), "access_token": TOKEN}
            for key in ("test_event_code", "partner_agent"):
                if key in call.body:
                    fields[key] = call.body[key]
            out.write(urlencode(fields, quote_via=quote) + "\n")
    return path


def write_python_sdk_debug(path: Path, calls: list[Call]) -> Path:
    """`FacebookAdsApi.init(..., debug=True)` prints curlify's command for each call."""
    with _open(path) as out:
        for call in calls:
            fields = {"data": json.dumps(call.body["data"])}
            if "test_event_code" in call.body:
                fields["test_event_code"] = call.body["test_event_code"]
            body = urlencode(fields)
            headers = [
                "User-Agent: fbbizsdk-python-v26.0.3",
                "Accept-Encoding: gzip, deflate",
                "Accept: */*",
                "Connection: keep-alive",
                f"Content-Length: {len(body)}",
                "Content-Type: application/x-www-form-urlencoded",
            ]
            url = f"{GRAPH}/v26.0/{call.dataset_id}/events?access_token={TOKEN}"
            parts = ["curl", "-X", "POST"]
            for header in headers:
                parts += ["-H", header]
            parts += ["-d", body, url]
            out.write(" ".join(shlex.quote(p) for p in parts) + "\n")
            out.write("order 1001 synced\n")  # the application's own output in between
    return path


def write_body_array(path: Path, calls: list[Call], *, pretty: bool = True) -> Path:
    """The bodies as one JSON array (or one body, pretty-printed, for a single call)."""
    document = calls[0].body if len(calls) == 1 else [call.body for call in calls]
    with _open(path) as out:
        out.write(json.dumps(document, indent=2 if pretty else None) + "\n")
    return path


# -- server-side GTM (Stape) -------------------------------------------------------------
def _stape_request(call: Call) -> dict:
    # Key order as the tag builds the object; TraceId is added last by log().
    return {
        "Name": "Facebook",
        "Type": "Request",
        "EventName": call.event_name,
        "RequestMethod": "POST",
        "RequestUrl": call.url("v" + STAPE_API_VERSION),
        "RequestBody": call.body,
        "TraceId": call.trace_id,
    }


def _stape_response(call: Call) -> dict:
    if call.answer is None:
        return {
            "Name": "Facebook",
            "Type": "Response",
            "EventName": call.event_name,
            "Message": f"Request failed or timed out. Pixel ID: {call.dataset_id}",
            "Reason": json.dumps({"reason": "timeout"}),
            "TraceId": call.trace_id,
        }
    return {
        "Name": "Facebook",
        "Type": "Response",
        "EventName": call.event_name,
        "ResponseStatusCode": call.answer["status"],
        "ResponseHeaders": {"content-type": "application/json; charset=UTF-8"},
        "ResponseBody": json.dumps(call.answer["body"]),
        "Message": f"Pixel ID: {call.dataset_id}",
        "TraceId": call.trace_id,
    }


def _other_tag_line(call: Call) -> dict:
    """A TikTok tag's request in the same container: not a Meta request."""
    return {
        "Name": "TikTok",
        "Type": "Request",
        "EventName": call.event_name,
        "RequestMethod": "POST",
        "RequestUrl": "https://business-api.tiktok.com/open_api/v1.3/event/track/",
        "RequestBody": {"event": call.event_name},
        "TraceId": call.trace_id,
    }


def stape_objects(calls: list[Call]) -> list[tuple[dict, int]]:
    """The tag's log objects in the order a container writes them, with their times:
    each request, another tag's line, and the answers of two calls later (answers arrive
    after other requests: they are paired by trace and event, not by position)."""
    out: list[tuple[dict, int]] = []
    waiting: list[Call] = []
    for call in calls:
        out.append((_stape_request(call), call.sent_at))
        out.append((_other_tag_line(call), call.sent_at))
        waiting.append(call)
        if len(waiting) > 2:
            answered = waiting.pop(0)
            out.append((_stape_response(answered), answered.sent_at + 1))
    out.extend((_stape_response(call), call.sent_at + 1) for call in waiting)
    return out


def write_stape_console(path: Path, calls: list[Call]) -> Path:
    with _open(path) as out:
        for entry, _ in stape_objects(calls):
            out.write(json.dumps(entry, separators=(",", ":")) + "\n")
    return path


def write_stape_cloud_logging(path: Path, calls: list[Call], *, json_payload: bool = False):
    """Cloud Logging export entries; the entry's timestamp is the time of the line."""
    with _open(path) as out:
        for i, (entry, seconds) in enumerate(stape_objects(calls)):
            wrapped = {
                "insertId": f"ins{i:06d}",
                "resource": {"type": "cloud_run_revision", "labels": {"service_name": "sgtm"}},
                "timestamp": _iso(seconds).replace("+00:00", ".000000Z"),
                "severity": "INFO",
                "logName": "projects/shop/logs/run.googleapis.com%2Fstdout",
            }
            if json_payload:
                wrapped["jsonPayload"] = entry
            else:
                wrapped["textPayload"] = json.dumps(entry, separators=(",", ":"))
            out.write(json.dumps(wrapped) + "\n")
    return path


def _bigquery_rows(calls: list[Call]) -> list[dict]:
    keys = {
        "Name": "tag_name",
        "Type": "type",
        "TraceId": "trace_id",
        "EventName": "event_name",
        "RequestMethod": "request_method",
        "RequestUrl": "request_url",
        "RequestBody": "request_body",
        "ResponseStatusCode": "response_status_code",
        "ResponseHeaders": "response_headers",
        "ResponseBody": "response_body",
    }
    rows = []
    for entry, seconds in stape_objects(calls):
        row = {keys[k]: v for k, v in entry.items() if k in keys}  # Message is not a column
        row["timestamp"] = seconds * 1000
        for column in ("request_body", "response_headers", "response_body"):
            if column in row:
                row[column] = json.dumps(row[column])  # logToBigQuery stringifies these
        rows.append(row)
    return rows


def write_stape_bigquery_jsonl(path: Path, calls: list[Call]) -> Path:
    with _open(path) as out:
        for row in _bigquery_rows(calls):
            out.write(json.dumps(row) + "\n")
    return path


def write_stape_bigquery_csv(path: Path, calls: list[Call]) -> Path:
    columns = [
        "tag_name",
        "type",
        "trace_id",
        "event_name",
        "request_method",
        "request_url",
        "request_body",
        "response_status_code",
        "response_headers",
        "response_body",
        "timestamp",
    ]
    with _open(path) as out:
        writer = csv.DictWriter(out, fieldnames=columns)
        writer.writeheader()
        for row in _bigquery_rows(calls):
            writer.writerow(row)
    return path


# -- facebook-for-woocommerce ------------------------------------------------------------
def write_woocommerce(path: Path, calls: list[Call], *, headers: bool = True) -> Path:
    """The plugin's debug log. With `headers`, the headers blocks the plugin logs when
    asked to (print_r of an array), the Authorization header planted unmasked."""
    plugin = "Facebook-for-WooCommerce/3.4.1 (WooCommerce/9.6.0; WordPress/6.7.2)"
    with _open(path) as out:
        out.write(f"{_iso(calls[0].sent_at - 60)} NOTICE Product sync: 3 products updated.\n")
        for call in calls:
            stamp = _iso(call.sent_at)
            url = f"{GRAPH}/v21.0/{call.dataset_id}/events"
            out.write(f"{stamp} NOTICE Request\nmethod: POST\nuri: {url}\nuser-agent: {plugin}\n")
            if headers:
                out.write(
                    "headers: Array\n(\n    [content-type] => application/json\n"
                    f"    [Authorization] => Bearer {TOKEN}\n)\n\n"
                )
            out.write(f"body: {json.dumps(call.body, separators=(',', ':'))}\n")
            out.write("duration: 0.31416s\n\n")
            if call.answer is None:
                # A timeout: WordPress gives no response, so the logged fields are empty
                # (get_api_log_message trims "code: " to "code:").
                out.write(f"{stamp} NOTICE Response\ncode:\nmessage:\nbody:\n\n")
                continue
            answer = call.answer
            reason = "OK" if answer["status"] < 300 else "Bad Request"
            out.write(f"{stamp} NOTICE Response\ncode: {answer['status']}\nmessage: {reason}\n")
            out.write(f"body: {json.dumps(answer['body'], separators=(',', ':'))}\n\n")
    return path


# -- facebook-nodejs-business-sdk --------------------------------------------------------
def write_node_sdk(path: Path, calls: list[Call], *, stamped: bool = False) -> Path:
    """`console.log` lines of api.js `call()` with debug on; other application output
    between them. With `stamped`, a logger's ISO time before each line."""
    with _open(path) as out:
        out.write("Server listening on :3000\n")
        for call in calls:
            prefix = _iso(call.sent_at).replace("+00:00", "Z") + " " if stamped else ""
            url = f"{GRAPH}/v18.0/{call.dataset_id}/events?access_token={TOKEN}"
            data = json.dumps(call.body, separators=(",", ":"))
            status = call.answer["status"] if call.answer else None
            if status is not None and status < 300:
                out.write(f"{prefix}{status} POST {url} {data}\n")
                out.write(f"Response: {json.dumps(call.answer['body'])}\n")
            elif status is not None:
                out.write(f"{prefix}{status} POST {url}\n            {data}\n")
            # No answer at all: the SDK prints nothing (`response.response` is undefined).
            out.write("GET /health 200 1.2 ms\n")
    return path


def node_sdk_calls(calls: list[Call]) -> list[Call]:
    """The calls the Node SDK's output shows (it prints nothing for a call with no answer)."""
    return [call for call in calls if call.answer is not None]
