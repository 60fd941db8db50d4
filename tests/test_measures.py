"""The registry of measures (dashboard.core.measures) is whole and consistent, and the
scorecards render from it with hand-computed values."""

from __future__ import annotations

import pytest

from dashboard.core.measures import (
    BY_COLUMN,
    MEASURES,
    SCORECARDS,
    SUMMARY,
    Count,
    Derived,
    Ratio,
)
from dashboard.outputs.scorecards import scorecards
from dashboard.quality.blocks import block_dict
from dashboard.store.queries.common import FLAGS


def test_keys_and_columns_are_unique():
    assert len({m.key for m in MEASURES}) == len(MEASURES)
    assert len(BY_COLUMN) == len(MEASURES)


def test_every_count_reads_a_flag_the_store_defines():
    for measure in MEASURES:
        if isinstance(measure.aggregate, Count):
            assert measure.aggregate.flag in {*FLAGS, "emq"}, measure.key


def test_every_ratio_divides_columns_of_the_registry():
    for measure in MEASURES:
        if isinstance(measure.aggregate, Ratio):
            assert measure.aggregate.numerator in BY_COLUMN, measure.key
            assert measure.aggregate.denominator in BY_COLUMN, measure.key


def test_scorecards_are_measures_people_read():
    for measure in SUMMARY:
        assert measure.json and measure.kind in ("count", "rate", "score", "duration")
        assert measure.label
    assert all(m.help for m in SCORECARDS)


def _row(**values) -> dict:
    row = {m.column: 0 for m in MEASURES if not isinstance(m.aggregate, Derived)}
    row |= {m.column: None for m in MEASURES if m.kind in ("time", "duration")}
    row["days_without_events"] = []
    return row | values


def test_a_block_and_its_scorecards_by_hand(config):
    # 8 browser events, 6 of them with a server twin: coverage 6 / 8 = 75%. 10 server
    # events sent (9 accepted) whose estimates add up to 65: EMQ 65 / 10 = 6.5.
    now = block_dict(
        _row(
            browser_events=8,
            covered=6,
            server_sent=10,
            server_events=9,
            server_rejected_by_meta=1,
            emq_sum=65.0,
            median_lag_s=120.0,
            dedup__server__deduplicated=6,
            dedup__server__server_only=3,
            by_design__server_only=1,
        )
    )
    assert now["event_coverage"] == 0.75
    assert now["emq_estimate"] == 6.5
    # Dedup rate: 6 deduplicated of 9 server events, less the 1 server-only by design.
    assert now["dedup"]["rate"] == 0.75
    assert now["dedup"]["server"]["by_design"] == 1
    before = block_dict(_row(browser_events=4, covered=4, server_sent=4, emq_sum=28.0))
    cards = {c.measure.key: c for c in scorecards(now, before, config)}
    assert list(cards) == [m.key for m in SCORECARDS]
    assert (cards["emq_estimate"].shown, cards["emq_estimate"].change) == ("6.5", "-0.5")
    assert cards["emq_estimate"].goal == "tier Good"
    assert (cards["event_coverage"].shown, cards["event_coverage"].change) == ("75.0%", "-25.0 pp")
    assert cards["event_coverage"].goal == f"goal {config.coverage_goal:.0%}"
    assert cards["freshness.median_lag_s"].shown == "2 min"
    assert cards["server_rejected_by_meta"].lower_is_better
    assert "1 server-only events by design" in cards["dedup.rate"].help


@pytest.mark.parametrize("measure", SCORECARDS, ids=lambda m: m.key)
def test_a_scorecard_without_a_previous_period_has_no_change(measure, config):
    (card,) = scorecards(block_dict(_row()), None, config, [measure])
    assert card.change is None


def test_many_blocks_equal_one_block_at_a_time():
    """`block_dicts` (a report's per-campaign, per-stage blocks) gives each row exactly what
    `block_dict` makes of it, with the values worked out by hand: zero denominators,
    missing lags and times, and ratios that need rounding."""
    import pandas as pd

    from dashboard.quality.blocks import block_dicts

    rows = [
        _row(event_name="Purchase", browser_events=3, covered=2, server_sent=3, emq_sum=20.0)
        | {"median_lag_s": 12.25, "p90_lag_s": 40.0, "last_event_at": 1_793_836_559.0},
        _row(event_name="Lead"),  # nothing sent: every ratio is None, every time None
        _row(event_name="Contact", browser_events=7, covered=7, server_sent=1, emq_sum=6.5)
        | {"median_lag_s": float("nan"), "last_sent_at": float("nan")},
    ]
    frame = pd.DataFrame(rows)
    blocks = block_dicts(frame, "event_name")
    assert list(blocks) == ["Purchase", "Lead", "Contact"]
    for row in frame.to_dict("records"):
        assert blocks[row["event_name"]] == block_dict(row)
    # By hand: 2 of 3 Pixel events covered (6 decimals); 20 points over 3 server events
    # (4 decimals).
    assert blocks["Purchase"]["event_coverage"] == 0.666667
    assert blocks["Purchase"]["emq_estimate"] == 6.6667
    assert blocks["Purchase"]["freshness"]["median_lag_s"] == 12.25
    assert blocks["Purchase"]["freshness"]["last_event_at"] == "2026-11-04T23:55:59Z"
    assert blocks["Lead"]["event_coverage"] is None and blocks["Lead"]["emq_estimate"] is None
    assert blocks["Contact"]["freshness"]["median_lag_s"] is None
    assert blocks["Contact"]["freshness"]["last_sent_at"] is None
