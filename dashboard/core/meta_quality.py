"""Meta's Dataset Quality API answer: its shape, read into snapshots, and the view the
report and the pages show.

Owns what one answer of `GET /dataset_quality?dataset_id=…&fields=web{…}` means here:
`{"web": [one object per event name]}`, with the EMQ `composite_score` (0-10), match-key
coverage, Meta's diagnostics, event coverage, dedup key feedback, data freshness and ACR
(percentages 0-100 in the answer, shares 0-1 here). Every field of an event's object is
kept as sent (`Snapshot.raw`); the few the product compares are lifted out. The docs'
field table spells the dedup field `dedup_key_feedback`, the docs' examples and the SDK
`dedupe_key_feedback`: both are read. Pure functions; no I/O.
Source: developers.facebook.com/docs/marketing-api/conversions-api/dataset-quality-api
and the Business SDK's AdsPixelCAPIIntegrationQuality (see shared real-sources.md §3).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

# Meta computes EMQ over the last 48 hours of server events and event coverage as a
# 7-day average (capi-reference.md §1, §5): our figures beside them use the same windows
# before the snapshot's time.
META_EMQ_WINDOW_S = 48 * 3600
META_COVERAGE_WINDOW_S = 7 * 86400
# Meta's score and our estimate further apart than this usually means a hashing or
# normalisation fault our counts cannot see (check's default --max-meta-gap).
META_GAP_POINTS = 2.0
# Fields of an event's object that must be objects when present (read with .get).
_OBJECT_FIELDS = (
    "event_match_quality",
    "event_coverage",
    "data_freshness",
    "acr",
    "event_potential_aly_acr_increase",
)
DEDUP_KEY_FIELDS = ("dedupe_key_feedback", "dedup_key_feedback")

# The agent name of the bundled sample's synthetic answers (dashboard/sample/meta_answers.py):
# wherever they show, they are labelled as synthetic.
SAMPLE_AGENT = "eqm-sample"

# Meta's match-key identifiers -> our user_data parameter keys (core/params.py).
IDENTIFIER_PARAMS = {
    "email": "em",
    "phone": "ph",
    "first_name": "fn",
    "last_name": "ln",
    "date_of_birth": "db",
    "gender": "ge",
    "city": "ct",
    "state": "st",
    "zip": "zp",
    "zip_code": "zp",
    "country": "country",
    "external_id": "external_id",
    "ip_address": "client_ip_address",
    "client_ip_address": "client_ip_address",
    "user_agent": "client_user_agent",
    "client_user_agent": "client_user_agent",
    "fbc": "fbc",
    "click_id": "fbc",
    "fbp": "fbp",
    "browser_id": "fbp",
    "login_id": "fb_login_id",
    "fb_login_id": "fb_login_id",
    "lead_id": "lead_id",
}


class MetaAnswerError(ValueError):
    """An answer that is not a Dataset Quality API answer (nothing of it is stored)."""


@dataclass(frozen=True)
class Snapshot:
    """Meta's numbers for one dataset and event name at one time (UTC Unix seconds)."""

    dataset_id: str
    event_name: str
    fetched_at: float
    raw: dict[str, Any]  # the event's object as Meta sent it, every field
    agent: str | None = None

    @property
    def emq(self) -> float | None:
        return _number(self.raw.get("event_match_quality", {}), "composite_score")

    @property
    def event_coverage(self) -> float | None:
        return _share(self.raw.get("event_coverage"))

    @property
    def acr(self) -> float | None:
        return _share(self.raw.get("acr"))

    @property
    def upload_frequency(self) -> str | None:
        value = (self.raw.get("data_freshness") or {}).get("upload_frequency")
        return str(value) if value is not None else None

    def raw_json(self) -> str:
        return json.dumps(self.raw, sort_keys=True, ensure_ascii=False)


def _number(obj: Any, key: str) -> float | None:
    value = obj.get(key) if isinstance(obj, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _share(obj: Any) -> float | None:
    """A `{percentage: 34.1}` object as a 0-1 share (0.341), rounded to 6 places."""
    percentage = _number(obj, "percentage")
    return None if percentage is None else round(percentage / 100, 6)


def parse_answer(
    answer: str | bytes | dict[str, Any],
    dataset_id: str,
    fetched_at: float,
    agent: str | None = None,
) -> list[Snapshot]:
    """One Snapshot per event name of an answer, or MetaAnswerError saying what is wrong
    (the whole answer is refused: a half-read answer would store a partial snapshot)."""
    if not str(dataset_id or "").strip():
        raise MetaAnswerError("a snapshot needs its dataset id (--dataset): Meta's answer omits it")
    if isinstance(answer, str | bytes):
        try:
            answer = json.loads(answer)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MetaAnswerError(f"not JSON: {exc}") from None
    if not isinstance(answer, dict):
        raise MetaAnswerError("expected a JSON object with a `web` list, not a list or value")
    if "error" in answer:
        error = answer["error"] if isinstance(answer["error"], dict) else {}
        raise MetaAnswerError(
            f"the file holds a Graph API error (code {error.get('code')}): "
            f"{str(error.get('message', ''))[:200]}"
        )
    web = answer.get("web")
    if not isinstance(web, list):
        raise MetaAnswerError("no `web` list: not a Dataset Quality API answer")
    snapshots: list[Snapshot] = []
    seen: set[str] = set()
    for position, item in enumerate(web, start=1):
        where = f"web[{position}]"
        if not isinstance(item, dict):
            raise MetaAnswerError(f"{where} is not an object")
        name = item.get("event_name")
        if not isinstance(name, str) or not name.strip():
            raise MetaAnswerError(f"{where} has no event_name")
        if name in seen:
            raise MetaAnswerError(f"{where}: event_name {name!r} appears twice")
        seen.add(name)
        for field in _OBJECT_FIELDS:
            if item.get(field) is not None and not isinstance(item[field], dict):
                raise MetaAnswerError(f"{where} ({name}): {field} is not an object")
        quality = item.get("event_match_quality") or {}
        lists = [(f, item.get(f)) for f in DEDUP_KEY_FIELDS]
        lists += [(f, quality.get(f)) for f in ("match_key_feedback", "diagnostics")]
        for field, value in lists:
            if value is not None and not isinstance(value, list):
                raise MetaAnswerError(f"{where} ({name}): {field} is not a list")
        score = (item.get("event_match_quality") or {}).get("composite_score")
        if score is not None and not (
            isinstance(score, int | float) and not isinstance(score, bool) and 0 <= score <= 10
        ):
            raise MetaAnswerError(f"{where} ({name}): composite_score {score!r} is not 0-10")
        snapshots.append(Snapshot(str(dataset_id).strip(), name, float(fetched_at), item, agent))
    return snapshots


def dedup_feedback(raw: dict[str, Any]) -> list[dict[str, Any]]:
    """The dedup key feedback list under either spelling of its field."""
    for field in DEDUP_KEY_FIELDS:
        value = raw.get(field)
        if isinstance(value, list):
            return [item for item in value if isinstance(item, dict)]
    return []


def match_keys(raw: dict[str, Any]) -> dict[str, float | None]:
    """Identifier -> Meta's coverage share (0-1)."""
    feedback = (raw.get("event_match_quality") or {}).get("match_key_feedback") or []
    return {
        str(item.get("identifier")): _share(item.get("coverage"))
        for item in feedback
        if isinstance(item, dict) and item.get("identifier")
    }


def dedup_keys(raw: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """Dedup key -> browser, server and overall shares (0-1)."""
    out = {}
    for item in dedup_feedback(raw):
        key = item.get("dedupe_key") or item.get("dedup_key")
        if key:
            out[str(key)] = {
                "browser": _share(item.get("browser_events_with_dedupe_key")),
                "server": _share(item.get("server_events_with_dedupe_key")),
                "overall": _share(item.get("overall_browser_coverage_from_dedupe_key")),
            }
    return out


def diagnostics(raw: dict[str, Any]) -> list[dict[str, Any]]:
    """Meta's EMQ diagnostics as sent (name, description, solution, percentage,
    affected_event_count, total_event_count)."""
    found = (raw.get("event_match_quality") or {}).get("diagnostics") or []
    return [item for item in found if isinstance(item, dict)]


def meta_view(snapshot: Snapshot) -> dict[str, Any]:
    """The report's `by_event_name.<name>.meta`: Meta's numbers, shares 0-1."""
    from datetime import UTC, datetime

    fetched = datetime.fromtimestamp(snapshot.fetched_at, tz=UTC)
    return {
        "dataset_id": snapshot.dataset_id,
        "fetched_at": fetched.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "emq": snapshot.emq,
        "event_coverage": snapshot.event_coverage,
        "match_keys": match_keys(snapshot.raw),
        "dedup": dedup_keys(snapshot.raw),
        "acr": snapshot.acr,
        "upload_frequency": snapshot.upload_frequency,
        "diagnostics": diagnostics(snapshot.raw),
    }
