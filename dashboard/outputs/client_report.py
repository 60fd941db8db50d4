"""The client report's content: what it says, in which order, with which numbers.

Owns the structure every exported report shares (HTML, PDF, XLSX and zipped CSV): a
first page in plain language (the period, headline measures with an honest comparison,
what is good, the three fixes to make first), then sections in a fixed order: per
campaign, per funnel stage, the funnel with conversion and purchase-optimization
readiness, the match keys per event, delivery and freshness, every diagnostic, and an
optional appendix of event-level dedup gaps. It renders nothing: each table keeps raw
values (shares 0-1, lags in seconds) with typed columns, so each format shows units in
its own way (`report_html`, `report_files`, charts in `report_charts`). No Streamlit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from dashboard.core import formatting as fmt
from dashboard.core.config import Config
from dashboard.core.filters import Filters
from dashboard.core.measures import BY_KEY
from dashboard.core.params import HASHED_PARAMS, PARAM_NAMES, PARAMS
from dashboard.outputs import labels
from dashboard.outputs.report import build_report_and_frames
from dashboard.outputs.scorecards import scorecards
from dashboard.quality.emq import tier
from dashboard.quality.funnel import enters, funnel_steps
from dashboard.quality.match_quality import what_to_fix
from dashboard.store.handles import Engine
from dashboard.store.queries.freshness import delivery_errors, delivery_summary
from dashboard.store.queries.funnel import funnel_people, purchase_readiness
from dashboard.store.queries.match import gap_events

# Kinds of column: how a value is shown and, in a workbook, its number format.
TEXT, COUNT, SHARE, SCORE, DURATION, FLAG = "text", "count", "share", "score", "duration", "flag"
APPENDIX_CAP = 200  # gap rows in the appendix; the full list is a download
DOCUMENT_ROWS = 25  # rows of a long table on paper; the workbook and CSV hold every row
CHART_BARS = 15  # bars in a chart: the largest groups by volume
HEADLINE_KEYS = (
    "emq_estimate",
    "event_coverage",
    "dedup.rate",
    "dedup.likely_double_counted",
    "server_rejected_by_meta",
    "freshness.stale_over_7d",
    "freshness.median_lag_s",
    "unhashed_pii",
)
_KINDS = {"count": COUNT, "rate": SHARE, "score": SCORE, "duration": DURATION}


@dataclass(frozen=True)
class Column:
    """One column of a report table: its key in the frame, its header and its kind."""

    key: str
    header: str
    kind: str = TEXT


@dataclass
class Table:
    """A table with raw values; `paper_rows` caps it in HTML and PDF (never in XLSX/CSV)."""

    key: str  # file and sheet name
    title: str
    columns: tuple[Column, ...]
    frame: pd.DataFrame
    note: str = ""
    paper_rows: int | None = DOCUMENT_ROWS
    total_rows: int | None = None  # when the frame itself is a capped list

    @property
    def rows(self) -> int:
        return len(self.frame) if self.total_rows is None else self.total_rows


@dataclass(frozen=True)
class BarChart:
    """A horizontal bar chart: one bar per label, its value printed at the bar's end."""

    title: str
    labels: tuple[str, ...]
    values: tuple[float | None, ...]
    kind: str  # SHARE, SCORE or COUNT
    lines: tuple[tuple[float, str], ...] = ()  # goal or tier lines: (value, label)


@dataclass
class Section:
    key: str
    title: str
    intro: str
    charts: list[BarChart] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)


@dataclass(frozen=True)
class Headline:
    label: str
    shown: str
    verdict: str  # "good", "bad" or "" (no bar to pass)
    detail: str  # the goal or tier, and the change against the previous period
    value: Any = None  # raw: a 0-1 share, a score, seconds or a count
    kind: str = TEXT


@dataclass(frozen=True)
class Fix:
    title: str
    affected: str
    gain: str
    how: str


@dataclass
class ClientReport:
    """Everything an exported report shows, computed once for one slice."""

    title: str
    client: str
    logo: Path | None
    period: str
    through: str
    generated: str
    filters: str
    comparison: str
    headlines: list[Headline]
    good: list[str]
    fixes: list[Fix]
    sections: list[Section]
    appendix: Table | None
    report: dict[str, Any]  # the JSON report it was built from

    def tables(self) -> list[Table]:
        """Every table in report order (the summary first, the appendix last)."""
        out = [summary_table(self)]
        for section in self.sections:
            out.extend(section.tables)
        return out + ([self.appendix] if self.appendix is not None else [])


def _measure_column(key: str) -> Column:
    measure = BY_KEY[key]
    return Column(measure.column, labels.label(measure.column), _KINDS.get(measure.kind, COUNT))


def _col(key: str, header: str | None = None, kind: str = TEXT) -> Column:
    return Column(key, header or labels.label(key), kind)


# ---------------------------------------------------------------------------
# Page 1
def _verdict(key: str, value: Any, config: Config) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    if key == "emq_estimate":
        return "good" if tier(value, config) in ("Good", "Great") else "bad"
    if key == "event_coverage":  # judged as shown: 74.96% reads 75.0%
        return "good" if round(value, 3) >= config.coverage_goal else "bad"
    if key == "dedup.rate":
        return "good" if round(value, 3) >= 0.9 else "bad"
    if key == "freshness.median_lag_s":
        return "good" if value <= config.freshness["late_median_lag_s"] else "bad"
    return "good" if not value else "bad"


def headlines(report: dict[str, Any], config: Config) -> list[Headline]:
    """The headline measures with their bar and, when the comparison is honest, the change."""
    measures = [BY_KEY[k] for k in HEADLINE_KEYS]
    cards = scorecards(report["overall"], report.get("previous_overall"), config, measures)
    out = []
    for key, card in zip(HEADLINE_KEYS, cards, strict=True):
        shown = fmt.score(card.value) + " / 10" if key == "emq_estimate" else card.shown
        if card.measure.kind == "count" and card.value is not None:
            shown = f"{int(card.value):,}"  # 9,950 on a client's report, never "10k"
        detail = [card.goal] if card.goal else []
        if card.change is not None:
            detail.append(f"{card.change} vs previous period")
        verdict = _verdict(key, card.value, config)
        kind = _KINDS.get(card.measure.kind, COUNT)
        out.append(Headline(card.label, shown, verdict, " · ".join(detail), card.value, kind))
    return out


def what_is_good(report: dict[str, Any], config: Config) -> list[str]:
    """Plain sentences for each headline that passes its bar."""
    overall = report["overall"]
    good = []
    coverage = overall["event_coverage"]
    if coverage is not None and _verdict("event_coverage", coverage, config) == "good":
        good.append(
            f"Event coverage is {fmt.percent(coverage)}, above Meta's "
            f"{config.coverage_goal:.0%} goal: most Pixel events also arrive from your server."
        )
    emq = overall["emq_estimate"]
    if emq is not None and _verdict("emq_estimate", emq, config) == "good":
        good.append(f"Estimated match quality is {tier(emq, config)} ({fmt.score(emq)} of 10).")
    rate = overall["dedup"]["rate"]
    if rate is not None and rate >= 0.9:
        good.append(f"{fmt.percent(rate)} of the events that should deduplicate do.")
    checks = (
        (overall["dedup"]["likely_double_counted"], "No conversion looks counted twice."),
        (overall["server_rejected_by_meta"], "Meta accepted every server event sent."),
        (overall["freshness"]["stale_over_7d"], "No event was sent more than 7 days late."),
        (overall["unhashed_pii"], "No unhashed personal data was sent."),
    )
    good.extend(text for count, text in checks if overall["server_sent"] and not count)
    lag = overall["freshness"]["median_lag_s"]
    if lag is not None and lag <= config.freshness["late_median_lag_s"]:
        good.append(f"Events reach Meta quickly: half within {fmt.duration(lag)}.")
    return good


# Why a marketer should care when a diagnostic is fixed, per rule key.
_GAINS = {
    "unhashed_pii": "Their e-mail and phone become usable for matching, and personal data "
    "stops leaving your server unprotected.",
    "token_errors": "These events reach Meta instead of being lost with their batch.",
    "rejected_events": "These events reach Meta instead of being lost with their batch.",
    "likely_double_counted": "Conversions stop being counted twice in Ads Manager.",
    "missing_event_id": "Meta can match these events to their Pixel twins and count them once.",
    "low_event_coverage": "Up to {affected:,} more Pixel events get a server copy, which keeps "
    "them when browsers block the Pixel.",
    "late_stage": "Meta receives the stage within the hour, while it can still optimise on it.",
    "parameter_gap": "These events gain a match key the rest of your events already send.",
    "test_event_code": "Production traffic stops showing up as test events.",
    "stale_events": "These events stop being rejected for being more than 7 days old.",
}


def _diagnostic_fix(d: dict[str, Any]) -> Fix:
    share = f" ({fmt.percent(d['share'])})" if d.get("share") is not None else ""
    key = d["key"]
    gain = _GAINS.get(key)
    if gain is None and key.startswith("invalid_"):
        gain = "These values become usable for matching."
    return Fix(
        title=d["name"],
        affected=f"{d['affected']:,} of {d['total']:,} events{share}",
        gain=(gain or "{affected:,} events fixed.").format(affected=d["affected"]),
        how=d["how_to_fix"],
    )


# Where a key comes from, for the keys a website integration most often leaves out.
_PARAM_HOW = {
    "fbc": "Read the _fbc cookie (or build fb.1.<time in ms>.<fbclid> from the landing URL's "
    "fbclid) on your server and send it as fbc, unchanged.",
    "fbp": "Read the _fbp cookie on your server and send it as fbp, unchanged.",
    "client_ip_address": "Send the visitor's IP address from the request (not your server's).",
    "client_user_agent": "Send the visitor's browser user agent from the request.",
    "external_id": "Send your own stable customer or lead id as external_id, the same on the "
    "Pixel and the server.",
}


def _emq_fix(row: dict[str, Any]) -> Fix:
    name = PARAM_NAMES.get(row["parameter"], row["parameter"])
    how = _PARAM_HOW.get(
        row["parameter"],
        f"Pass {name} ({row['parameter']}) from your server integration on these events"
        + (", normalised and SHA-256 hashed." if row["parameter"] in HASHED_PARAMS else "."),
    )
    lacking = round(row["server_events"] * (1 - row["coverage"]))
    return Fix(
        title=f"Send a valid {name} with {row['event_name']} ({row['action_source']}) events",
        affected=f"{lacking:,} of {row['server_events']:,} {row['event_name']} events lack it",
        gain=f"Estimated match quality of {row['event_name']} from {row['emq_now']:.1f} to "
        f"{row['emq_if_fixed']:.1f}; of all events +{row['gain_slice']:.1f}.",
        how=how,
    )


def fixes_first(report: dict[str, Any], emq_fixes: pd.DataFrame, limit: int = 3) -> list[Fix]:
    """The first fixes to make: critical findings, then the match-key fix worth most (when it
    lifts the overall estimate by 0.1 or more), then warnings, then the rest."""
    ranked = {"critical": [], "emq": [], "warning": [], "info": []}
    for d in report["diagnostics"]:
        ranked.setdefault(d["severity"], []).append(_diagnostic_fix(d))
    # In what_to_fix's order (what the integration can recover first): an e-mail on an
    # anonymous page view would lift the estimate most, but nobody can send it.
    worth = emq_fixes[emq_fixes["gain_slice"] >= 0.1]
    if not worth.empty:
        ranked["emq"].append(_emq_fix(worth.iloc[0].to_dict()))
    order = [f for kind in ("critical", "emq", "warning", "info") for f in ranked[kind]]
    return order[:limit]


def summary_table(content: ClientReport) -> Table:
    """Page 1 as a table (the workbook's first sheet and summary.csv)."""
    rows = [("Period", content.period, ""), ("Data through", content.through, "")]
    rows += [(h.label, h.shown, h.detail) for h in content.headlines]
    rows += [("What is good", text, "") for text in content.good]
    rows += [
        (f"Fix {i}", f.title, f"{f.affected}. {f.gain} How: {f.how}")
        for i, f in enumerate(content.fixes, 1)
    ]
    frame = pd.DataFrame(rows, columns=["item", "value", "detail"])
    columns = (_col("item", "Item"), _col("value", "Value"), _col("detail", "Detail"))
    return Table("summary", "Summary", columns, frame, paper_rows=None)


# ---------------------------------------------------------------------------
# Sections
_GROUP_MEASURES = (
    "server_events",
    "browser_events",
    "event_coverage",
    "emq_estimate",
    "dedup.rate",
    "dedup.likely_double_counted",
    "server_rejected_by_meta",
)


def _group_table(key: str, title: str, blocks: dict[str, dict], by: str, order=None) -> Table:
    """One row per group with the headline volumes and indicators."""
    columns = [_col(by), *(_measure_column(k) for k in _GROUP_MEASURES)]
    columns.insert(5, _col("emq_tier"))
    rows = []
    for name, block in blocks.items():
        row = {by: name, "emq_tier": block["emq_tier"]}
        for k in _GROUP_MEASURES:
            row[BY_KEY[k].column] = BY_KEY[k].value(block)
        rows.append(row)
    frame = pd.DataFrame(rows, columns=[c.key for c in columns])
    if order:
        rank = {s: i for i, s in enumerate(order)}
        frame = frame.iloc[frame[by].map(lambda s: rank.get(s, len(rank))).argsort(kind="stable")]
    else:
        volume = frame["server_events"] + frame["browser_events"]
        frame = frame.iloc[volume.argsort(kind="stable")[::-1]]
    return Table(key, title, tuple(columns), frame.reset_index(drop=True))


def _bars(title: str, table: Table, by: str, value: str, kind: str, lines=()) -> BarChart:
    head = table.frame.dropna(subset=[value]).head(CHART_BARS)
    return BarChart(
        title, tuple(map(str, head[by])), tuple(map(float, head[value])), kind, tuple(lines)
    )


def _tier_lines(config: Config) -> tuple[tuple[float, str], ...]:
    names = {"ok": "OK"}
    return tuple((v, f"{names.get(k, k.title())} {v:g}") for k, v in config.emq_tiers.items())


def group_sections(report: dict[str, Any], config: Config) -> list[Section]:
    campaigns = _group_table("campaigns", "Per campaign", report["by_campaign"], "campaign")
    stages = _group_table(
        "stages",
        "Per funnel stage",
        report["by_funnel_stage"],
        "funnel_stage",
        order=[*config.stage_order(), config.stage_other],
    )
    campaign_chart = _bars(
        f"Estimated EMQ, {min(CHART_BARS, campaigns.rows)} largest campaigns",
        campaigns, "campaign", "emq_estimate", SCORE, _tier_lines(config),
    )  # fmt: skip
    stage_chart = _bars(
        "Event coverage per stage (stages with Pixel events)",
        stages, "funnel_stage", "event_coverage", SHARE,
        [(config.coverage_goal, f"goal {config.coverage_goal:.0%}")],
    )  # fmt: skip
    paper = "" if campaigns.rows <= DOCUMENT_ROWS else (
        f" The {DOCUMENT_ROWS} largest of {campaigns.rows:,} campaigns are shown here; the "
        "Excel and CSV versions hold all of them."
    )  # fmt: skip
    return [
        Section(
            "campaigns",
            "Per campaign",
            "Volume and quality per campaign, largest first. Coverage is – for a campaign "
            "without Pixel events; dedup rate leaves out events that are server-only by design."
            + paper,
            [campaign_chart],
            [campaigns],
        ),
        Section(
            "stages",
            "Per funnel stage",
            "Web steps and CRM stages in funnel order.",
            [stage_chart] if stage_chart.labels else [],
            [stages],
        ),
    ]


def funnel_section(engine: Engine, filters: Filters, config: Config) -> Section:
    """Distinct people per stage of each funnel the slice enters, and readiness."""
    people = funnel_people(engine, filters, config)
    tables, charts = [], []
    for name, order in config.funnels.items():
        mine = people[people["funnel"] == name]
        if not enters(set(mine["funnel_stage"]), order):
            continue
        steps = funnel_steps(dict(zip(mine["funnel_stage"], mine["people"], strict=True)), order)
        columns = (
            _col("funnel_stage", "Stage"),
            _col("people", "People", COUNT),
            _col("conversion", "Conversion from the stage before (%)", SHARE),
        )
        if steps["note"].astype(bool).any():
            columns += (_col("note"),)
        tables.append(Table(f"funnel_{name}", f"{name.upper()} funnel", columns, steps))
        sent = steps.dropna(subset=["people"])
        charts.append(
            BarChart(
                f"{name.upper()} funnel: people per stage",
                tuple(sent["funnel_stage"]),
                tuple(map(float, sent["people"])),
                COUNT,
            )
        )
    ready = purchase_readiness(engine, filters, config)
    ready = ready[ready["purchase_events_sent"] > 0]
    columns = (
        _col("campaign"),
        _col("purchases", kind=COUNT),
        _col("purchases_last_7d", kind=COUNT),
        _col("ready", f"Ready (≥ {config.readiness['min_purchases_7d']} in 7 days)", FLAG),
        _col(
            "learning_phase_ok",
            f"Learning-phase volume (≥ {config.readiness['learning_phase_per_week']} a week)",
            FLAG,
        ),
        _col("value_completeness", kind=SHARE),
    )
    tables.append(
        Table(
            "readiness",
            "Purchase-optimization readiness",
            columns,
            ready.sort_values("purchases_last_7d", ascending=False).reset_index(drop=True),
            note="Counted purchases of the period's last 7 days, per campaign.",
        )
    )
    return Section(
        "funnel",
        "Funnel and readiness",
        "Distinct people per stage; conversion from the previous stage that was sent. Campaigns "
        "can enter a funnel at a later stage (a WhatsApp campaign at Qualified), so a stage can "
        "hold more people than the one before it. A campaign is ready to optimise for purchases "
        "when it has enough counted purchases in a week.",
        charts,
        tables,
    )


def parameter_section(by_event: pd.DataFrame) -> Section:
    """Per event: the share of server events with a valid value of each key sent anywhere,
    and where values were sent but invalid or unhashed."""
    frame = by_event[by_event["server_sent"] > 0].sort_values("server_sent", ascending=False)
    sent_params = [p for p in PARAMS if (frame[f"valid__{p}"] + frame[f"invalid__{p}"]).sum() > 0]
    matrix = pd.DataFrame({"event_name": frame["event_name"], "server_sent": frame["server_sent"]})
    matrix["emq_estimate"] = frame["emq_estimate"]
    for p in sent_params:
        matrix[p] = frame[f"valid__{p}"] / frame["server_sent"]
    columns = (
        _col("event_name"),
        _measure_column("server_sent"),
        _measure_column("emq_estimate"),
        *(_col(p, PARAM_NAMES[p], SHARE) for p in sent_params),
    )
    problems = [
        {
            "event_name": row["event_name"],
            "parameter": PARAM_NAMES[p],
            "sent": int(row[f"valid__{p}"] + row[f"invalid__{p}"]),
            "invalid": int(row[f"invalid__{p}"]),
            "unhashed_plaintext": int(row[f"unhashed__{p}"]),
        }
        for row in frame.to_dict("records")
        for p in sent_params
        if row[f"invalid__{p}"]
    ]
    problem_columns = (
        _col("event_name"),
        _col("parameter"),
        _col("sent", "Events with a value", COUNT),
        _col("invalid", "Not valid", COUNT),
        _col("unhashed_plaintext", "Of which unhashed", COUNT),
    )
    return Section(
        "parameters",
        "Match keys per event",
        "Share of each event's server events carrying a valid value of each key (hashed where "
        "Meta requires it). Keys never sent are left out. The second table lists keys sent "
        "with values Meta cannot use.",
        [],
        [
            Table("match_keys", "Valid match keys (%)", columns, matrix.reset_index(drop=True)),
            Table(
                "key_problems",
                "Keys sent but not usable",
                problem_columns,
                pd.DataFrame(problems, columns=[c.key for c in problem_columns]),
            ),
        ],
    )


def delivery_section(engine: Engine, filters: Filters, report: dict[str, Any]) -> Section:
    """Per dataset freshness and delivery, and Meta's errors grouped by error."""
    rows = []
    for dataset, block in report["by_dataset"].items():
        fresh = block["freshness"]
        rows.append(
            {
                "dataset_id": dataset,
                "server_sent": block["server_sent"],
                "server_rejected_by_meta": block["server_rejected_by_meta"],
                "test_events": block["test_events"],
                "median_lag_s": fresh["median_lag_s"],
                "p90_lag_s": fresh["p90_lag_s"],
                "upload_frequency": block["upload_frequency"],
                "stale_over_7d": fresh["stale_over_7d"],
                "last_server_event_at": _minute(fresh["last_server_event_at"]),
            }
        )
    columns = (
        _col("dataset_id"),
        *(
            _measure_column(k)
            for k in (
                "server_sent",
                "server_rejected_by_meta",
                "test_events",
                "freshness.median_lag_s",
                "freshness.p90_lag_s",
            )
        ),
        _col("upload_frequency"),
        _measure_column("freshness.stale_over_7d"),
        _col("last_server_event_at", "Last server event (UTC)"),
    )
    datasets = Table("datasets", "Freshness per dataset", columns, pd.DataFrame(rows))
    errors = delivery_errors(engine, filters)
    if not errors.empty:
        errors = (
            errors.groupby(["error_code", "error_subcode", "error_message"], dropna=False)
            .agg(
                batches=("batches", "sum"),
                events=("events", "sum"),
                first_day=("event_day", "min"),
                last_day=("event_day", "max"),
            )
            .reset_index()
            .sort_values("events", ascending=False)
        )
        for column in ("first_day", "last_day"):
            errors[column] = pd.to_datetime(errors[column]).dt.strftime("%Y-%m-%d")
    error_columns = (
        _col("error_code"),
        _col("error_subcode"),
        _col("error_message"),
        _col("batches", kind=COUNT),
        _col("events", kind=COUNT),
        _col("first_day"),
        _col("last_day"),
    )
    summary = delivery_summary(engine, filters)
    intro = (
        f"{summary['batches']:,} batches sent to Meta: {summary['rejected_batches']:,} rejected, "
        f"{summary['unanswered_batches']:,} without an answer. Lag is the time from the event "
        "to its sending; Meta rejects events more than 7 days old."
    )
    return Section(
        "delivery",
        "Delivery and freshness",
        intro,
        [],
        [
            datasets,
            Table(
                "errors",
                "Meta's errors",
                error_columns,
                errors.reset_index(drop=True).reindex(columns=[c.key for c in error_columns]),
            ),
        ],
    )


def diagnostics_section(report: dict[str, Any]) -> Section:
    frame = pd.DataFrame(
        report["diagnostics"],
        columns=["severity", "name", "affected", "total", "share", "how_to_fix"],
    )
    columns = (
        _col("severity"),
        _col("name"),
        _col("affected", kind=COUNT),
        _col("total", kind=COUNT),
        _col("share", kind=SHARE),
        _col("how_to_fix"),
    )
    return Section(
        "diagnostics",
        "All findings",
        "Every check that found something, most severe first.",
        [],
        [Table("diagnostics", "All findings", columns, frame, paper_rows=None)],
    )


def appendix_table(engine: Engine, filters: Filters, config: Config) -> Table:
    gaps, total = gap_events(engine, filters, limit=APPENDIX_CAP, config=config)
    keep = ["gap", "channel", "event_name", "event_id", "campaign", "event_time"]
    frame = gaps[keep].copy() if not gaps.empty else pd.DataFrame(columns=keep)
    if not frame.empty:
        frame["event_time"] = frame["event_time"].dt.strftime("%Y-%m-%d %H:%M")
    columns = tuple(_col(k) for k in keep[:-1]) + (_col("event_time", "Event time (UTC)"),)
    return Table(
        "dedup_gaps",
        "Appendix: dedup gaps, event by event",
        columns,
        frame,
        note=f"The first {len(frame):,} of {total:,} events. Every row: the Coverage & dedup page's "
        "gap list, “Download all rows (CSV)”, or `python -m dashboard events --finding gaps`.",
        paper_rows=None,
        total_rows=total,
    )


# ---------------------------------------------------------------------------
def _period_text(period: dict[str, Any]) -> str:
    if period["since"]:
        return f"{fmt.day(_date(period['since']))} – {fmt.day(_date(period['until']))}"
    if period["data_first_day"]:
        first, last = _date(period["data_first_day"]), _date(period["data_last_day"])
        return f"All data: {fmt.day(first)} – {fmt.day(last)}"
    return "No data"


def _minute(iso: str | None) -> str:
    """'2026-11-04T23:55:59Z' as '2026-11-04 23:55'."""
    return iso[:16].replace("T", " ") if iso else fmt.NO_DATA


def _date(text: str):
    return datetime.fromisoformat(text).date()


def _filters_text(period: dict[str, Any]) -> str:
    return (
        "; ".join(
            f"{labels.label(k.rstrip('s'))}: {', '.join(v) if isinstance(v, list) else v}"
            for k, v in period["filters"].items()
            if k not in ("since", "until")
        )
        or "none"
    )


def build(
    engine: Engine, filters: Filters, config: Config, *, appendix: bool = False
) -> ClientReport:
    """The report's content for a slice: the JSON report, plus the funnel, the match-key
    breakdown, delivery and (with `appendix`) the capped gap list."""
    report, frames = build_report_and_frames(engine, filters, config)
    period = report["period"]
    through = report["overall"]["freshness"]["last_event_at"]
    logo = Path(config.report_logo) if config.report_logo else None
    compared = period.get("comparison")
    content = ClientReport(
        title=config.report_title,
        client=config.report_client,
        logo=logo if logo is not None and logo.is_file() else None,
        period=_period_text(period),
        through=f"{_minute(through)} UTC" if through else fmt.NO_DATA,
        generated=f"{datetime.now(tz=UTC):%Y-%m-%d %H:%M} UTC",
        filters=_filters_text(period),
        comparison=(
            compared["note"]
            if compared
            else "No comparison: pick a period (since and until) to compare with the one before."
        ),
        headlines=headlines(report, config),
        good=what_is_good(report, config),
        fixes=fixes_first(report, what_to_fix(engine, filters, config, limit=20)),
        sections=[
            *group_sections(report, config),
            funnel_section(engine, filters, config),
            parameter_section(frames["event_name"]),
            delivery_section(engine, filters, report),
            diagnostics_section(report),
        ],
        appendix=appendix_table(engine, filters, config) if appendix else None,
        report=report,
    )
    return content
