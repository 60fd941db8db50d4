"""The machine-readable quality report (a contract others script against).

Owns the JSON report's shape, published as schemas/report.schema.json: period, overall
block, blocks per event name, campaign, funnel stage and dataset, diagnostics,
rejected_records (quarantined lines and events), plus the previous period's overall block
for period-over-period change, Meta's own numbers beside each event name's block
(`meta`, from the Dataset Quality API snapshots), the snapshots in the period
(`meta_snapshots`) and the EMQ estimate's calibration (`emq_calibration`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from dashboard.core.config import Config
from dashboard.core.filters import Filters
from dashboard.core.meta_quality import meta_view
from dashboard.quality.blocks import block_dict, block_dicts, block_frame, block_frames
from dashboard.quality.diagnostics import diagnose
from dashboard.quality.emq import tier
from dashboard.quality.freshness import upload_frequency
from dashboard.quality.meta_compare import (
    Calibration,
    Comparison,
    current_calibration,
    newest_by_event_name,
    snapshot_list,
)
from dashboard.quality.periods import comparison
from dashboard.store import dedup
from dashboard.store.handles import Engine
from dashboard.store.import_log import quarantine_count
from dashboard.store.queries.blocks import data_range

# The JSON contract's version: schemas/report.schema.json describes it. The minor part
# grows when keys are added, the major when one is removed or changes meaning.
# report_version, an integer from before schema_version, stays its major part.
REPORT_SCHEMA_VERSION = "1.1"  # 1.1: Meta's snapshots, emq_calibration
REPORT_VERSION = 1


REPORT_GROUPINGS = (
    (),
    ("event_name",),
    ("campaign",),
    ("funnel_stage",),
    # Per dataset (pixel): whether each integration still sends (freshness), which one
    # dataset's numbers alone can hide behind another's.
    ("dataset_id",),
)


def _blocks_from(frame, by: str, config: Config, calibration: Calibration) -> dict[str, dict]:
    return {
        key: _decorate(block, config, calibration) for key, block in block_dicts(frame, by).items()
    }


def _decorate(block: dict[str, Any], config: Config, calibration: Calibration) -> dict[str, Any]:
    block["emq_tier"] = tier(block["emq_estimate"], config)
    block["emq_estimate_calibrated"] = calibration.apply(block["emq_estimate"])
    block["upload_frequency"] = upload_frequency(block["freshness"]["median_lag_s"], config)
    return block


def _with_meta(blocks: dict[str, dict], found: dict[str, Comparison], calibration) -> dict:
    """Each event name's block with `meta`: Meta's newest snapshot in the period, and our
    figures over Meta's windows before it (None without a snapshot)."""
    for name, block in blocks.items():
        comparison = found.get(name)
        if comparison is None:
            block["meta"] = None
            continue
        ours = comparison.our_emq
        block["meta"] = meta_view(comparison.snapshot) | {
            "our_emq_estimate": ours,
            "our_emq_calibrated": calibration.apply(ours),
            "emq_difference": comparison.emq_difference,
            "our_event_coverage": comparison.our_coverage,
        }
    return blocks


def report_json(report: dict[str, Any]) -> str:
    """The report as indented JSON text (UTF-8, not ASCII-escaped).

    orjson, not the standard library: a diverse store's report holds a block per
    campaign (2,000 campaigns, ~300,000 values), which json.dumps took 2 s to write and
    orjson writes in a few tens of milliseconds. A NaN would be written as null, which
    is what the contract says a missing number is.
    """
    return orjson.dumps(report, option=orjson.OPT_INDENT_2).decode()


def build_report(engine: Engine, filters: Filters, config: Config) -> dict[str, Any]:
    """The full JSON report for a slice."""
    return build_report_and_frames(engine, filters, config)[0]


def build_report_and_frames(
    engine: Engine, filters: Filters, config: Config
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The report, and the block frames by event name and campaign it was built from."""
    dedup.refresh_if_stale(engine)  # e.g. after an import that was killed half-way
    overall_frame, by_event, by_campaign, by_stage, by_dataset = block_frames(
        engine, filters, config, REPORT_GROUPINGS, missing_days=True
    )
    calibration = current_calibration(engine)
    overall = _decorate(block_dict(overall_frame.iloc[0]), config, calibration)
    previous_filters = filters.previous()
    compared = comparison(engine, filters)
    previous = None
    # No previous block when the data does not cover the whole previous period: its
    # numbers would read as a change that never happened.
    if previous_filters is not None and compared is not None and compared.available:
        previous = _decorate(
            block_dict(block_frame(engine, compared.previous_filters(filters), config).iloc[0]),
            config,
            calibration,
        )
    rejected_records = quarantine_count(engine)
    span = data_range(engine)
    report = {
        "schema_version": REPORT_SCHEMA_VERSION,
        "report_version": REPORT_VERSION,
        "generated_at": datetime.now(tz=UTC).isoformat(timespec="seconds"),
        "period": {
            "since": filters.since.isoformat() if filters.since else None,
            "until": filters.until.isoformat() if filters.until else None,
            "data_first_day": span[0].isoformat() if span else None,
            "data_last_day": span[1].isoformat() if span else None,
            "previous_since": previous_filters.since.isoformat() if previous_filters else None,
            "previous_until": previous_filters.until.isoformat() if previous_filters else None,
            "comparison": compared.as_dict() if compared else None,
            "filters": filters.as_dict(),
        },
        "config": {
            "emq_tiers": config.emq_tiers,
            "emq_estimate_note": "Estimate from parameter presence and validity; not Meta's EMQ.",
            "coverage_goal": config.coverage_goal,
        },
        "overall": overall,
        "previous_overall": previous,
        "by_event_name": _with_meta(
            _blocks_from(by_event, "event_name", config, calibration),
            newest_by_event_name(engine, config, filters),
            calibration,
        ),
        "by_campaign": _blocks_from(by_campaign, "campaign", config, calibration),
        "by_funnel_stage": _blocks_from(by_stage, "funnel_stage", config, calibration),
        "by_dataset": _blocks_from(by_dataset, "dataset_id", config, calibration),
        "diagnostics": [
            d.to_dict() for d in diagnose(engine, filters, config, overall, by_event=by_event)
        ],
        "rejected_records": rejected_records,
        "meta_snapshots": snapshot_list(engine, filters),
        "emq_calibration": calibration.to_dict(),
    }
    return report, {"event_name": by_event, "campaign": by_campaign}
