"""Which events a drill-down lists: a finding, a parameter status, a dedup status or an
error, and the subject it is about.

Owns the `Selection` value the Events page, the `events` command and the links from
every finding carry, its spelling in a URL or on a command line, and its validation. It
names no SQL: `dashboard.quality.drilldown` turns a selection into a query.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from dashboard.core.definitions import DEDUP_STATUSES
from dashboard.core.params import ABSENT, INVALID, PARAMS, UNHASHED, VALID

# A parameter status as people say it -> the code stored in p_<param>.
PARAMETER_STATUSES: dict[str, int] = {
    "absent": ABSENT,
    "valid": VALID,
    "invalid": INVALID,
    "unhashed": UNHASHED,
}
# Dedup statuses a list can show: the stored ones, and the likely double counts (a flag
# on top of a status, listed like one).
LISTABLE_DEDUP = (*DEDUP_STATUSES, "likely_double_counted")
KINDS = ("finding", "parameter", "dedup", "error")


class SelectionError(ValueError):
    """A selection that names no listable events (unknown key, parameter or status)."""


@dataclass(frozen=True)
class Selection:
    """What to list. `kind` says which of the other fields matter:

    - finding: `finding` is a diagnostic's key (see `dashboard.quality.drilldown.FINDINGS`);
    - parameter: server events whose `parameter` has `status` (absent|valid|invalid|unhashed);
    - dedup: events whose dedup status is `dedup` (or likely double counts);
    - error: server events of rejected batches with `error_code` (and `error_subcode`).

    `event_name`, `campaign`, `funnel_stage` and `on_parameter` narrow it to the subject of
    one finding (a diagnostic about one event name, campaign, stage or parameter).
    """

    kind: str
    finding: str | None = None
    parameter: str | None = None
    status: str | None = None
    dedup: str | None = None
    error_code: int | None = None
    error_subcode: int | None = None
    event_name: str | None = None
    campaign: str | None = None
    funnel_stage: str | None = None
    on_parameter: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise SelectionError(f"unknown selection {self.kind!r}; choose from {', '.join(KINDS)}")
        if self.kind == "parameter":
            if self.parameter not in PARAMS:
                raise SelectionError(
                    f"unknown parameter {self.parameter!r}; choose from {', '.join(PARAMS)}"
                )
            if self.status not in PARAMETER_STATUSES:
                raise SelectionError(
                    f"unknown status {self.status!r}; choose from {', '.join(PARAMETER_STATUSES)}"
                )
        if self.kind == "dedup" and self.dedup not in LISTABLE_DEDUP:
            raise SelectionError(
                f"unknown dedup status {self.dedup!r}; choose from {', '.join(LISTABLE_DEDUP)}"
            )
        if self.kind == "finding" and not self.finding:
            raise SelectionError("a finding selection needs a finding key")
        if self.kind == "error" and self.error_code is None:
            raise SelectionError("an error selection needs an error code")

    @property
    def status_code(self) -> int:
        """The stored p_<param> code of a parameter selection's status."""
        return PARAMETER_STATUSES[self.status or ""]

    def describe(self) -> str:
        """A one-line title: what is listed, and about what."""
        if self.kind == "parameter":
            text = f"{self.parameter}: {self.status}"
        elif self.kind == "dedup":
            text = f"Dedup status: {self.dedup}"
        elif self.kind == "error":
            sub = f"/{self.error_subcode}" if self.error_subcode is not None else ""
            text = f"Meta error {self.error_code}{sub}"
        else:
            text = f"Finding: {self.finding}"
        subject = [
            f"{label} {value}"
            for label, value in (
                ("event", self.event_name),
                ("campaign", self.campaign),
                ("stage", self.funnel_stage),
                ("parameter", self.on_parameter),
            )
            if value
        ]
        return text + (f" ({', '.join(subject)})" if subject else "")

    # -- URL --------------------------------------------------------------------------
    def to_query(self) -> dict[str, str]:
        """The selection as URL query parameters (only the fields that are set)."""
        out = {}
        for field in fields(self):
            value = getattr(self, field.name)
            if value is not None:
                out[URL_KEYS[field.name]] = str(value)
        return out

    @classmethod
    def from_query(cls, query: Mapping[str, Any]) -> Selection | None:
        """The selection a URL names, or None when it names none. Raises SelectionError
        for a URL that names one badly (an unknown key, a non-numeric code)."""
        values: dict[str, Any] = {}
        for name, key in URL_KEYS.items():
            raw = query.get(key)
            if isinstance(raw, list):
                raw = raw[0] if raw else None
            if raw in (None, ""):
                continue
            if name in ("error_code", "error_subcode"):
                try:
                    values[name] = int(raw)
                except ValueError as exc:
                    raise SelectionError(f"{key} must be a number, not {raw!r}") from exc
            else:
                values[name] = str(raw)
        if "kind" not in values:
            return None
        return cls(**values)

    def with_subject(self, **subject: str | None) -> Selection:
        return replace(self, **subject)


# Field -> URL key: short, and none clashes with the filter dimensions' keys (dataset,
# campaign, stage, event, ...), which stay the slice's.
URL_KEYS = {
    "kind": "list",
    "finding": "finding",
    "parameter": "parameter",
    "status": "status",
    "dedup": "dedup",
    "error_code": "code",
    "error_subcode": "subcode",
    "event_name": "about_event",
    "campaign": "about_campaign",
    "funnel_stage": "about_stage",
    "on_parameter": "about_parameter",
}
