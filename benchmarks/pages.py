"""What each dashboard page computes, for the benchmark to time without Streamlit.

Owns the default and filtered views a page is measured with and each page's list of
computations (its queries and the indicators built on them).
"""

from __future__ import annotations


def page_filters(engine, config, view: str):
    """The filters of a default or filtered view. Default: the last 28 days. Filtered: the
    same days, one campaign and one stage (the largest of each). Chosen before the clock
    starts: in the dashboard they come from the sidebar's (cached) lists."""
    from datetime import timedelta

    from dashboard.core.filters import Filters
    from dashboard.quality.blocks import block_frame
    from dashboard.store.queries.blocks import data_range

    first, last = data_range(engine)
    filters = Filters(since=last - timedelta(days=27), until=last)
    if view == "filtered":
        by_campaign = block_frame(engine, filters, config, "campaign")
        by_stage = block_frame(engine, filters, config, "funnel_stage")

        def top(frame, column: str) -> str:
            sizes = frame.assign(n=frame["browser_events"] + frame["server_sent"])
            return str(sizes.sort_values("n").iloc[-1][column])

        filters = Filters(
            since=filters.since,
            until=filters.until,
            campaigns=(top(by_campaign, "campaign"),),
            stages=(top(by_stage, "funnel_stage"),),
        )
    return filters


def page_computations(engine, config, page: str, filters) -> int:
    """Run the computations one dashboard page makes for `filters`, uncached (what a page
    change costs before the per-filter cache helps). Returns the number of steps run."""
    from dashboard.quality.blocks import block_frames, overall_block
    from dashboard.quality.diagnostics import overview
    from dashboard.quality.freshness import lag_stats
    from dashboard.quality.funnel import conversion_from_stages, funnel_stages
    from dashboard.quality.match_quality import what_to_fix
    from dashboard.store.queries.freshness import delivery_errors, delivery_summary, lag_sample
    from dashboard.store.queries.funnel import purchases, stage_order_gaps
    from dashboard.store.queries.match import dedup_key_feedback, gap_events

    plans = {
        "overview": [
            lambda: overview(engine, filters, config),
            lambda: overall_block(engine, filters.previous(), config),
        ],
        "match_quality": [
            lambda: block_frames(
                engine,
                filters,
                config,
                [[], ["event_name"], ["campaign"], ["funnel_stage"], ["event_day"]],
            ),
            lambda: what_to_fix(engine, filters, config, 15),
        ],
        "coverage_dedup": [
            lambda: block_frames(engine, filters, config, [[], ["event_name"]]),
            lambda: dedup_key_feedback(engine, filters),
            lambda: gap_events(engine, filters),
        ],
        "funnel": [
            lambda: conversion_from_stages(funnel_stages(engine, filters, config), config),
            lambda: stage_order_gaps(engine, filters, config),
            lambda: purchases(engine, filters, config),
        ],
        "freshness_delivery": [
            lambda: overall_block(engine, filters, config),
            lambda: delivery_summary(engine, filters),
            lambda: lag_stats(engine, filters, config, "funnel_stage"),
            lambda: lag_sample(engine, filters),
            lambda: delivery_errors(engine, filters),
        ],
    }
    for step in plans[page]:
        step()
    return len(plans[page])
