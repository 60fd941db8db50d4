"""The registry of what the product measures: each indicator of a block, defined once.

A block (the JSON contract's block B: one slice, or one campaign, stage, event name or
dataset of it) is a list of `Measure`s. Each says where it sits in the JSON block
(`path`), its block-frame column, what people read (`label`, `help`), its unit
(`kind`), whether higher is better (`direction`), its definition for the JSON contract
(`doc`), and how it is computed (`aggregate`):

- `Count`: the events of one channel, accepted or not, with one flag, where some columns
  hold values: one SQL aggregate (see `store.queries.blocks.block_sums`);
- `Latest`: the newest event or send time of accepted events;
- `LagPercentile`: a lag percentile (its own query: percentiles cannot be rolled up);
- `Ratio`: one column over another, rounded;
- `Derived`: computed from the block's other values (the dedup rate).

From this one list come the block frame's columns (`quality.blocks`), the JSON block
(`quality.blocks.block_dict`), the Overview scorecards and the report's summary rows
(`SCORECARDS`, `SUMMARY`), the human column labels (`outputs.labels`) and the README's
indicator table (`markdown_table`, checked by tests/test_docs.py). Adding an indicator is
one entry here (and a README line regenerated from it); see docs/architecture.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dashboard.core.definitions import CHANNELS, DEDUP_STATUSES
from dashboard.core.params import INVALID, PARAMS, UNHASHED, VALID

HIGHER_IS_BETTER = 1
LOWER_IS_BETTER = -1
NEUTRAL = 0


@dataclass(frozen=True)
class Count:
    """The number of events with `flag` (a `store.queries.common.FLAGS` condition; "emq"
    sums their EMQ estimates instead) of `channel` (None: both), accepted or not (None:
    either), where each `(column, operator, value)` of `where` holds (operators "==" and
    ">=")."""

    channel: str | None = None
    accepted: bool | None = None
    flag: str = "n"
    where: tuple[tuple[str, str, Any], ...] = ()


@dataclass(frozen=True)
class Latest:
    """Newest `source` time ("event_time" or "sent_at") of accepted events of `channel`."""

    source: str
    channel: str | None = None


@dataclass(frozen=True)
class LagPercentile:
    """A percentile of server events' lag (sent_at - event_time), known lags only."""

    fraction: float


@dataclass(frozen=True)
class Ratio:
    """`numerator` / `denominator` (None when the denominator is 0), rounded."""

    numerator: str
    denominator: str
    decimals: int = 6
    in_frame: bool = True  # also a block-frame column (not only in the JSON block)


@dataclass(frozen=True)
class Derived:
    """Computed from the block's other values by `quality.blocks.DERIVED[name]`."""

    name: str


@dataclass(frozen=True)
class Measure:
    """One indicator of a block."""

    path: tuple[str, ...]  # where it sits in a JSON block
    label: str  # what people read: scorecards, table headers, summaries
    kind: str  # count | rate (0-1) | score (0-10) | duration (s) | time (ISO) | sum
    aggregate: Count | Latest | LagPercentile | Ratio | Derived
    doc: str = ""  # its definition in the JSON contract (README)
    direction: int = NEUTRAL
    help: str = ""  # the scorecard's tooltip; {fields} from `help_context`
    column: str = ""  # its block-frame column (default: the last part of the path)
    family: str = ""  # measures documented together in one README row
    doc_name: str = ""  # its name in the README table (default: the last part of the path)
    json: bool = True  # False: a frame column only (inputs of other measures)
    goal: str = ""  # the Config attribute holding its goal (a share), if it has one

    def __post_init__(self) -> None:
        if not self.column:
            object.__setattr__(self, "column", self.path[-1])

    @property
    def key(self) -> str:
        """Its JSON path as one dotted name: `dedup.likely_double_counted`."""
        return ".".join(self.path)

    def value(self, block: dict[str, Any]) -> Any:
        """Its value in a JSON block (None when the block is None)."""
        value: Any = block
        for part in self.path:
            if value is None:
                return None
            value = value[part]
        return value


BROWSER_SERVER_DOC = (
    "accepted events (2xx or unknown answer); Pixel events have no answer and count as unknown"
)
_SERVER = "server"
_BROWSER = "browser"


def _parameter_measures() -> list[Measure]:
    # Kinds outer, parameters inner: the JSON block lists parameter_coverage first, then
    # invalid_parameters, then unhashed_parameters, each over every parameter.
    valid = [
        Measure(
            ("valid", p),
            f"Valid {p}",
            "count",
            Count(_SERVER, where=((f"p_{p}", "==", VALID),)),
            column=f"valid__{p}",
            family="parameter_coverage",
            json=False,
        )
        for p in PARAMS
    ]
    coverage = [
        Measure(
            ("parameter_coverage", p),
            f"{p} coverage",
            "rate",
            Ratio(f"valid__{p}", "server_sent", in_frame=False),
            direction=HIGHER_IS_BETTER,
            column=f"coverage__{p}",
            family="parameter_coverage",
        )
        for p in PARAMS
    ]
    invalid = [
        Measure(
            ("invalid_parameters", p),
            f"Invalid {p}",
            "count",
            Count(_SERVER, where=((f"p_{p}", ">=", INVALID),)),
            direction=LOWER_IS_BETTER,
            column=f"invalid__{p}",
            family="invalid_parameters",
        )
        for p in PARAMS
    ]
    unhashed = [
        Measure(
            ("unhashed_parameters", p),
            f"Plaintext {p}",
            "count",
            Count(_SERVER, where=((f"p_{p}", "==", UNHASHED),)),
            direction=LOWER_IS_BETTER,
            column=f"unhashed__{p}",
            family="invalid_parameters",
        )
        for p in PARAMS
    ]
    return [*valid, *coverage, *invalid, *unhashed]


def _dedup_measures() -> list[Measure]:
    out = []
    for channel in CHANNELS:
        for status in DEDUP_STATUSES:
            out.append(
                Measure(
                    ("dedup", channel, status),
                    f"{channel} {status}",
                    "count",
                    Count(channel, where=(("_dedup_status", "==", status),)),
                    column=f"dedup__{channel}__{status}",
                    family="dedup",
                )
            )
    for status in DEDUP_STATUSES:
        out.append(
            Measure(
                ("dedup", "server_by_design_statuses", status),
                f"by design {status}",
                "count",
                Count(
                    where=(("_by_design", "==", True), ("_dedup_status", "==", status)),
                ),
                column=f"by_design__{status}",
                family="dedup",
                json=False,
            )
        )
    return out


MEASURES: tuple[Measure, ...] = (
    Measure(
        ("browser_events",),
        "Browser events",
        "count",
        Count(_BROWSER, accepted=True),
        help="Accepted browser (Pixel) events in the selection.",
        family="browser_events",
    ),
    Measure(
        ("server_events",),
        "Server events",
        "count",
        Count(_SERVER, accepted=True),
        help="Accepted server (Conversions API) events in the selection.",
        family="browser_events",
    ),
    Measure(
        ("server_rejected_by_meta",),
        "Rejected by Meta",
        "count",
        Count(_SERVER, accepted=False),
        doc="server events in batches Meta rejected (they count under delivery only)",
        direction=LOWER_IS_BETTER,
        help="Server events in batches Meta rejected (the whole batch fails on one bad event).",
    ),
    Measure(
        ("server_sent",),
        "Server events sent",
        "count",
        Count(_SERVER),
        doc="every server event sent, accepted or not (base of parameter coverage, EMQ and "
        "freshness)",
    ),
    Measure(
        ("test_events",),
        "Test events",
        "count",
        Count(_SERVER, flag="n_test"),
        doc="server events sent with `test_event_code` (they also count normally)",
    ),
    Measure(
        ("server_without_event_id",),
        "Server events without event_id",
        "count",
        Count(_SERVER, accepted=True, flag="n_no_event_id"),
        doc="accepted server events with no `event_id`",
        direction=LOWER_IS_BETTER,
    ),
    Measure(
        ("covered",),
        "Covered browser events",
        "count",
        Count(_BROWSER, accepted=True, flag="n_id_twin"),
        family="internal",
        json=False,
    ),
    Measure(
        ("covered_any_key",),
        "Covered browser events, any key",
        "count",
        Count(_BROWSER, accepted=True, flag="n_any_key"),
        family="internal",
        json=False,
    ),
    Measure(
        ("emq_sum",),
        "Sum of EMQ estimates",
        "sum",
        Count(_SERVER, flag="emq"),
        family="internal",
        json=False,
    ),
    Measure(
        ("event_coverage",),
        "Event coverage",
        "rate",
        Ratio("covered", "browser_events"),
        goal="coverage_goal",
        doc="share of accepted browser events with an accepted server twin (same dataset, "
        "event_name, event_id) within 48 h; goal 75%",
        direction=HIGHER_IS_BETTER,
        help="Share of Pixel events with a Conversions API twin (same event_name and event_id "
        "within 48 h). Meta's goal: {coverage_goal:.0%}.",
    ),
    Measure(
        ("event_coverage_any_key",),
        "Coverage, any dedup key",
        "rate",
        Ratio("covered_any_key", "browser_events"),
        doc="the same, also counting a server event with the same event_name and fbp or "
        "external_id within 48 h",
        direction=HIGHER_IS_BETTER,
    ),
    Measure(
        ("emq_estimate",),
        "EMQ estimate",
        "score",
        Ratio("emq_sum", "server_sent", decimals=4),
        doc="mean per-event **estimate** (not Meta's EMQ): points per valid parameter (em 3, "
        "fbc 2.5, ph 1.5, external_id 1.5, fbp 1, …; IP + user agent together 1.5) capped "
        "at 10; 0 for a rejected combination. Monotone. Tiers Poor < 4 ≤ OK < 6 ≤ Good < 8 "
        "≤ Great, approximate, configurable",
        direction=HIGHER_IS_BETTER,
        help="Estimated from the customer parameters sent (0-10); not Meta's score. Tiers "
        "Poor < {tier_ok:g} ≤ OK < {tier_good:g} ≤ Good < {tier_great:g} ≤ Great are "
        "approximate, not Meta-published.",
    ),
    *_parameter_measures(),
    Measure(
        ("unhashed_pii",),
        "Events with plaintext PII",
        "count",
        Count(_SERVER, flag="n_pii"),
        doc="server events with plaintext in at least one field Meta wants hashed",
        direction=LOWER_IS_BETTER,
        help="Server events carrying plaintext personal data where Meta wants a SHA-256 hash. "
        "The values are never stored here.",
    ),
    Measure(
        ("rejected_combination",),
        "Rejected combinations",
        "count",
        Count(_SERVER, where=(("_rejected_combo", "==", True),)),
        doc="server events whose valid parameters form (a subset of) one of Meta's rejected "
        "combinations",
        direction=LOWER_IS_BETTER,
    ),
    Measure(
        ("event_time_in_ms",),
        "event_time in milliseconds",
        "count",
        Count(_SERVER, flag="n_in_ms"),
        doc="server events whose event_time was sent in milliseconds (kept, flagged: Meta "
        "rejects it)",
        direction=LOWER_IS_BETTER,
    ),
    *_dedup_measures(),
    Measure(
        ("dedup", "server", "by_design"),
        "Server-only by design",
        "count",
        Derived("by_design"),
        help="Server events with no browser counterpart by design: CRM, messaging and offline "
        "action sources, and stages configured as server-only ([dedup] in the config). "
        "Neutral: not a gap, and left out of the dedup rate.",
        family="dedup",
    ),
    Measure(
        ("dedup", "likely_double_counted"),
        "Likely double counts",
        "count",
        Count(_SERVER, accepted=True, flag="n_double"),
        doc="server events with status server_only, missing_event_id or outside_48h while a "
        "browser event of the same name for the same person (shared fbp, external_id or "
        "hashed email) has an event_time within 5 minutes",
        direction=LOWER_IS_BETTER,
        help="Server events that escape dedup although the same person's browser event of "
        "the same name happened within 5 minutes.",
        column="likely_double_counted",
    ),
    Measure(
        ("dedup", "rate"),
        "Dedup rate",
        "rate",
        Derived("dedup_rate"),
        doc_name="dedup.rate",
        doc=(
            "dedup rate: of the accepted server events that can have a browser twin, the "
            "share Meta deduplicates against one (`deduplicated` + `fallback_deduplicated`); "
            "`null` when no server event can have a twin"
        ),
        direction=HIGHER_IS_BETTER,
        help="Share of accepted server events that can have a Pixel twin which Meta "
        "deduplicates against one (by event_id, or the fbp/external_id fallback). "
        "{by_design} server-only events by design (CRM, messaging, offline) are left out: "
        "they have no browser counterpart.",
        column="dedup_rate",
    ),
    Measure(
        ("freshness", "median_lag_s"),
        "Median lag",
        "duration",
        LagPercentile(0.5),
        direction=LOWER_IS_BETTER,
        help="Median time from event_time to sending, server events. Meta: send in real "
        "time, at most within an hour.",
        family="freshness",
    ),
    Measure(
        ("freshness", "p90_lag_s"),
        "90th percentile lag",
        "duration",
        LagPercentile(0.9),
        direction=LOWER_IS_BETTER,
        family="freshness",
    ),
    Measure(
        ("freshness", "stale_over_7d"),
        "Sent over 7 days late",
        "count",
        Count(flag="n_stale"),
        direction=LOWER_IS_BETTER,
        help="Server events whose sent_at in the log is more than 7 days after event_time: "
        "Meta rejects their batch. Meta judges by when the batch reached it, so its own "
        '"event_time too old" errors (error subcode 2804003, in the list of Meta\'s errors) can '
        "count events this card does not, such as ones held in a queue after the log "
        "line was written.",
        family="freshness",
    ),
    Measure(
        ("freshness", "future"),
        "Stamped in the future",
        "count",
        Count(flag="n_future"),
        direction=LOWER_IS_BETTER,
        family="freshness",
    ),
    Measure(
        ("freshness", "last_event_at"),
        "Last event",
        "time",
        Latest("event_time"),
        family="freshness",
    ),
    Measure(
        ("freshness", "last_browser_event_at"),
        "Last browser event",
        "time",
        Latest("event_time", _BROWSER),
        family="freshness",
    ),
    Measure(
        ("freshness", "last_server_event_at"),
        "Last server event",
        "time",
        Latest("event_time", _SERVER),
        family="freshness",
    ),
    Measure(
        ("freshness", "last_sent_at"),
        "Last sent",
        "time",
        Latest("sent_at"),
        family="freshness",
    ),
    Measure(
        ("freshness", "last_server_sent_at"),
        "Last server event sent",
        "time",
        Latest("sent_at", _SERVER),
        family="freshness",
    ),
    Measure(
        ("freshness", "days_without_events"),
        "Days without events",
        "days",
        Derived("days_without_events"),
        family="freshness",
    ),
)

# Rows of the README's indicator table that document a family of measures at once:
# family -> (the names in the row's first cell, the definition).
FAMILY_DOCS: dict[str, tuple[tuple[str, ...], str]] = {
    "browser_events": (("browser_events", "server_events"), BROWSER_SERVER_DOC),
    "parameter_coverage": (
        ("parameter_coverage",),
        (
            "per parameter, share of server events sent with a **valid** value: hashed fields"
            " are 64-char lowercase hex SHA-256 (any element of a list); IP parses as "
            "IPv4/IPv6; fbc `fb.<0-2>.<13-digit ms>.<fbclid>` and fbp `fb.<0-2>.<13-digit "
            "ms>.<digits>` (optional appendix segment); lead_id 15–17 digits"
        ),
    ),
    "invalid_parameters": (
        ("invalid_parameters", "unhashed_parameters"),
        (
            "per parameter, server events with a present but invalid value / with plaintext "
            "PII in it"
        ),
    ),
    "dedup": (
        ("dedup",),
        (
            "every accepted event gets one status, in this order: `same_channel_repeat` (an "
            "earlier event of the same channel and key within 48 h), `deduplicated` (a twin "
            "of the other channel within 48 h), `outside_48h`, `fallback_deduplicated` "
            "(server only: a browser event with the same event_name and fbp or external_id "
            "arrived *earlier*, within 48 h), `server_only` / `browser_only`, "
            '`missing_event_id`. "Within" is inclusive; arrival order is `sent_at`. The '
            "statuses say what Meta will do with each event and are kept as they are; "
            "`dedup.server.by_design` counts the accepted server events among them that "
            "cannot have a browser twin **by design**: an `action_source` the Pixel does not "
            "send (anything but `website`, e.g. `system_generated` for a CRM, "
            "`business_messaging`, `app`, `physical_store`; events without one count as "
            "website) or a stage listed in `[dedup] server_only_stages`. They are shown as a "
            'neutral "server-only by design" category on every page and chart, are never a '
            "gap, and are left out of the dedup rate"
        ),
    ),
    "freshness": (
        ("freshness",),
        (
            "server events: lag = sent_at − event_time, `median_lag_s`, `p90_lag_s`; "
            "`stale_over_7d` (lag > 604,800 s: Meta rejects the batch); `future` (event_time "
            "more than 60 s after sent_at); upload frequency class from the median lag: real "
            "time ≤ 10 min, hourly ≤ 2 h, daily ≤ 2 d, else weekly. Pipeline health, in every"
            " block: `last_event_at`, `last_browser_event_at`, `last_server_event_at` (newest"
            " `event_time` of the block's accepted events, ISO 8601 UTC, `null` when none), "
            "`last_sent_at` and `last_server_sent_at` (newest `sent_at` of the block's "
            "accepted events, and of its accepted server events: when the integration last "
            "sent something Meta took, what the silence rule of `check` and the Overview "
            "judge), and `days_without_events`: the whole UTC days of the period "
            "(`--since`..`--until`, else the store's first to last day, never today or later)"
            " on which the block has no event at all"
        ),
    ),
}

BY_KEY = {m.key: m for m in MEASURES}
BY_COLUMN = {m.column: m for m in MEASURES}

# The Overview's scorecards, in order (a last card shows browser / server events), and
# the rows of the report's summary table: the scorecards and a few volumes.
SCORECARDS = tuple(
    BY_KEY[k]
    for k in (
        "emq_estimate",
        "event_coverage",
        "dedup.rate",
        "dedup.likely_double_counted",
        "freshness.median_lag_s",
        "server_rejected_by_meta",
        "unhashed_pii",
    )
)
SUMMARY = (
    *SCORECARDS,
    *(
        BY_KEY[k]
        for k in (
            "event_coverage_any_key",
            "server_without_event_id",
            "browser_events",
            "server_events",
        )
    ),
)


@dataclass(frozen=True)
class HelpContext:
    """The values a scorecard's help text may name."""

    coverage_goal: float
    tier_ok: float
    tier_good: float
    tier_great: float
    by_design: str = ""


def help_text(measure: Measure, context: HelpContext) -> str | None:
    """The measure's tooltip with the config's goal and tiers filled in."""
    if not measure.help:
        return None
    return measure.help.format(**context.__dict__)


def markdown_rows() -> list[str]:
    """The README's indicator-table rows, generated from the registry in its order: one
    per documented measure, one per documented family."""
    rows, seen = [], set()
    for m in MEASURES:
        if m.family in FAMILY_DOCS:
            if m.family not in seen:
                seen.add(m.family)
                names, doc = FAMILY_DOCS[m.family]
                rows.append(f"| {', '.join(f'`{n}`' for n in names)} | {doc} |")
        elif m.doc:
            rows.append(f"| `{m.doc_name or m.path[-1]}` | {m.doc} |")
    return rows
