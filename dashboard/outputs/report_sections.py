"""The exported report's sections after the first page, in report order.

Owns what each section holds: per campaign and per funnel stage (tables and a chart each),
the funnel with conversion and purchase-optimization readiness, the match keys per event,
delivery and freshness, every finding, and the optional appendix of event-level dedup
gaps. Each builder reads the JSON report and the queries the pages use, so the report and
the dashboard give the same numbers. No rendering, no Streamlit.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from dashboard.core import formatting as fmt
from dashboard.core.config import Config
from dashboard.core.filters import Filters
from dashboard.core.measures import BY_KEY
from dashboard.core.meta_errors import explained
from dashboard.core.params import PARAM_NAMES, PARAMS
from dashboard.outputs.report_model import (
    APPENDIX_CAP,
    CHART_BARS,
    COUNT,
    DOCUMENT_ROWS,
    FLAG,
    SCORE,
    SHARE,
    BarChart,
    Section,
    Table,
    column,
    measure_column,
)
from dashboard.quality.drilldown import FINDINGS
from dashboard.quality.funnel import enters, funnel_steps
from dashboard.store.handles import Engine
from dashboard.store.queries.freshness import delivery_errors, delivery_summary
from dashboard.store.queries.funnel import funnel_people, purchase_readiness
from dashboard.store.queries.match import gap_events


def minute(iso: str | None) -> str:
    """'2026-11-04T23:55:59Z' as '2026-11-04 23:55'."""
    return iso[:16].replace("T", " ") if iso else fmt.NO_DATA


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
    columns = [column(by), *(measure_column(k) for k in _GROUP_MEASURES)]
    columns.insert(5, column("emq_tier"))
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
        frame = frame.iloc[(-volume).argsort(kind="stable")]  # largest first, ties as given
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
            column("funnel_stage", "Stage"),
            column("people", "People", COUNT),
            column("conversion", "Conversion from the stage before (%)", SHARE),
        )
        if steps["note"].astype(bool).any():
            columns += (column("note"),)
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
        column("campaign"),
        column("purchases", kind=COUNT),
        column("purchases_last_7d", kind=COUNT),
        column("ready", f"Ready (≥ {config.readiness['min_purchases_7d']} in 7 days)", FLAG),
        column(
            "learning_phase_ok",
            f"Learning-phase volume (≥ {config.readiness['learning_phase_per_week']} a week)",
            FLAG,
        ),
        column("value_completeness", kind=SHARE),
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
        column("event_name"),
        measure_column("server_sent"),
        measure_column("emq_estimate"),
        *(column(p, PARAM_NAMES[p], SHARE) for p in sent_params),
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
        column("event_name"),
        column("parameter"),
        column("sent", "Events with a value", COUNT),
        column("invalid", "Not valid", COUNT),
        column("unhashed_plaintext", "Of which unhashed", COUNT),
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
                "last_server_event_at": minute(fresh["last_server_event_at"]),
            }
        )
    columns = (
        column("dataset_id"),
        *(
            measure_column(k)
            for k in (
                "server_sent",
                "server_rejected_by_meta",
                "test_events",
                "freshness.median_lag_s",
                "freshness.p90_lag_s",
            )
        ),
        column("upload_frequency"),
        measure_column("freshness.stale_over_7d"),
        column("last_server_event_at", "Last server event (UTC)"),
    )
    datasets = Table("datasets", "Freshness per dataset", columns, pd.DataFrame(rows))
    # Summed per error with its meaning and fix, as the Freshness & delivery page shows it.
    errors = explained(delivery_errors(engine, filters))
    for day in ("first_day", "last_day"):
        errors[day] = pd.to_datetime(errors[day]).dt.strftime("%Y-%m-%d")
    error_columns = (
        column("error_code"),
        column("error_subcode"),
        column("meaning"),
        column("fix"),
        column("batches", kind=COUNT),
        column("events", kind=COUNT),
        column("first_day"),
        column("last_day"),
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
                errors,
            ),
        ],
    )


# Findings of one kind with this many rows or more share one row on paper: 300 event
# names below the coverage goal made ten pages of a PDF. The workbook and CSV list each.
FINDINGS_GROUP_FROM = 4


def grouped_findings(frame: pd.DataFrame) -> pd.DataFrame:
    """The findings (most severe and widest first) with every kind (`key`) that has
    FINDINGS_GROUP_FROM rows or more folded into one row, where its first row was: its
    count and meaning, the worst of them, and the events of all of them."""
    counts = frame["key"].value_counts()
    many = set(counts[counts >= FINDINGS_GROUP_FROM].index)
    if not many:
        return frame
    rows, folded = [], set()
    for row in frame.to_dict("records"):
        key = row["key"]
        if key not in many:
            rows.append(row)
            continue
        if key in folded:
            continue
        folded.add(key)  # the first row of its kind stands for all of them
        same = frame[frame["key"] == key]
        affected, total = int(same["affected"].sum()), int(same["total"].sum())
        meaning = FINDINGS[key].meaning if key in FINDINGS else row["name"]
        fix = row["how_to_fix"]
        if same["how_to_fix"].nunique() > 1:
            fix += " (The advice differs between these findings: the Excel and CSV list each.)"
        rows.append(
            row
            | {
                "name": f"{len(same):,} findings of one kind: {meaning}. The worst: {row['name']}",
                "affected": affected,
                "total": total,
                "share": affected / total if total else None,
                "how_to_fix": fix,
            }
        )
    return pd.DataFrame(rows, columns=frame.columns)


def diagnostics_section(report: dict[str, Any]) -> Section:
    frame = pd.DataFrame(
        report["diagnostics"],
        columns=["key", "severity", "name", "affected", "total", "share", "how_to_fix"],
    )
    columns = (
        column("severity"),
        column("name"),
        column("affected", kind=COUNT),
        column("total", kind=COUNT),
        column("share", kind=SHARE),
        column("how_to_fix"),
    )
    paper = grouped_findings(frame)
    note = ""
    if len(paper) < len(frame):
        note = (
            f"Findings of one kind with {FINDINGS_GROUP_FROM} or more rows share one row here; "
            f"the Excel and CSV versions list each of the {len(frame):,} findings."
        )
    return Section(
        "diagnostics",
        "All findings",
        "Every check that found something, most severe first.",
        [],
        [
            Table(
                "diagnostics",
                "All findings",
                columns,
                frame.drop(columns="key"),
                paper_rows=None,
                paper_note=note,
                paper_frame=paper.drop(columns="key"),
            )
        ],
    )


def appendix_table(engine: Engine, filters: Filters, config: Config) -> Table:
    gaps, total = gap_events(engine, filters, limit=APPENDIX_CAP, config=config)
    keep = ["gap", "channel", "event_name", "event_id", "campaign", "event_time"]
    frame = gaps[keep].copy() if not gaps.empty else pd.DataFrame(columns=keep)
    if not frame.empty:
        frame["event_time"] = frame["event_time"].dt.strftime("%Y-%m-%d %H:%M")
    columns = tuple(column(k) for k in keep[:-1]) + (column("event_time", "Event time (UTC)"),)
    return Table(
        "dedup_gaps",
        "Appendix: dedup gaps, event by event",
        columns,
        frame,
        note=f"The first {len(frame):,} of {total:,} events. Every row: the gap list on the "
        "Coverage & dedup page (“Download all rows (CSV)”), or one gap type at a time with "
        "`python -m dashboard events --dedup browser_only --format csv`.",
        paper_rows=None,
        total_rows=total,
    )
