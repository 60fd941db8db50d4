"""Funnel steps and conversion from stage counts (no query)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import pandas as pd

from dashboard.core.config import Config
from dashboard.core.filters import Filters
from dashboard.quality.blocks import block_frames
from dashboard.store.queries import funnel as funnel_queries

NOT_SENT = "not sent"


STEP_COLUMNS = ["funnel_stage", "people", "from_stage", "conversion", "note"]


def enters(sent: Collection[str], order: Sequence[str]) -> bool:
    """Whether a campaign (or slice) with events at the `sent` stages is in a funnel: it
    has events at one of the funnel's stages before the last (Purchase, "Closed won",
    closes both the web and the CRM funnel, so a purchase alone enters neither)."""
    return any(stage in sent for stage in order[:-1])


def funnel_steps(people: Mapping[str, int], order: Sequence[str]) -> pd.DataFrame:
    """One funnel's stages in order, for its chart and conversion table (no query).

    `people` maps each stage that was sent (had events) to its distinct people; a stage
    missing from it was not sent and shows as such (people missing, note "not sent"), not
    as 0 people, which would read as everybody dropping out. Conversion runs from the
    previous stage that was sent, across those that were not (Qualified -> Closed won when
    Demo scheduled was not sent, with a note saying so); the first stage sent has none,
    and none runs out of a stage with 0 people.
    """
    return _steps_frame(_step_records(people, order), STEP_COLUMNS)


def _step_records(people: Mapping[str, int], order: Sequence[str]) -> list[tuple]:
    """`funnel_steps` as plain tuples, in STEP_COLUMNS order (built into frames once)."""
    records = []
    previous: str | None = None  # the last stage sent so far
    skipped: list[str] = []  # stages not sent since `previous`
    for stage in order:
        if stage not in people:
            records.append((stage, None, None, None, NOT_SENT))
            if previous is not None:
                skipped.append(stage)
            continue
        count = int(people[stage])
        conversion = None
        notes = []
        if previous is not None:
            before = int(people[previous])
            conversion = count / before if before else None
            if skipped:
                verb = "was" if len(skipped) == 1 else "were"
                notes.append(f"{', '.join(skipped)} {verb} not sent: from {previous}")
            if not before:
                notes.append(f"no people at {previous}")
        records.append((stage, count, previous, conversion, "; ".join(notes)))
        previous, skipped = stage, []
    return records


def _steps_frame(records: list[tuple], columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(records, columns=columns)
    frame["people"] = frame["people"].astype("Int64")
    frame["conversion"] = frame["conversion"].astype(float)
    return frame


def conversion_from_stages(stages: pd.DataFrame, config: Config) -> pd.DataFrame:
    """Per funnel and campaign (of a `funnel_stages` frame, no query): `funnel_steps`, for
    every campaign that enters the funnel."""
    columns = ["funnel", "campaign", *STEP_COLUMNS]
    # One frame at the end: a frame per campaign cost 3 s over 2,000 campaigns.
    people_by_campaign = {
        campaign: dict(zip(group["funnel_stage"], group["people"], strict=True))
        for campaign, group in stages.groupby("campaign", sort=True)
    }
    records = []
    for funnel, order in config.funnels.items():
        for campaign, people in people_by_campaign.items():
            if not enters(people, order):
                continue
            steps = _step_records({s: n for s, n in people.items() if s in order}, order)
            records.extend((funnel, campaign, *step) for step in steps)
    if not records:
        return pd.DataFrame(columns=columns)
    frame = _steps_frame(records, columns)
    # As the per-campaign frames concatenated to: texts and None, not pandas' NaN.
    frame["from_stage"] = pd.Series(
        [None if pd.isna(v) else v for v in frame["from_stage"]], dtype=object
    )
    return frame


FUNNEL_STAGE_COLUMNS = [
    "campaign",
    "funnel_stage",
    "events",
    "people",
    "emq_estimate",
    "event_coverage",
    "median_lag_s",
    "server_sent",
    "browser_events",
]


def funnel_stages(engine, filters: Filters, config: Config) -> pd.DataFrame:
    """Per campaign and stage: counted events, distinct people, EMQ estimate, coverage, lag.

    The EMQ estimate and coverage are those of the block of each (campaign, stage), so
    they are the Overview's numbers for that slice.
    """
    counts = funnel_queries.stage_counts(engine, filters)
    if counts.empty:
        return pd.DataFrame(columns=FUNNEL_STAGE_COLUMNS)
    (quality,) = block_frames(engine, filters, config, [["campaign", "funnel_stage"]])
    quality = quality[
        [
            "campaign",
            "funnel_stage",
            "emq_estimate",
            "event_coverage",
            "server_sent",
            "browser_events",
        ]
    ]
    frame = counts.merge(quality, on=["campaign", "funnel_stage"], how="left")
    for column in ("server_sent", "browser_events"):
        frame[column] = frame[column].fillna(0).astype("int64")
    order = {stage: i for i, stage in enumerate(config.stage_order())}
    frame["_order"] = frame["funnel_stage"].map(order).fillna(len(order))
    frame = frame.sort_values(["campaign", "_order", "funnel_stage"]).reset_index(drop=True)
    return frame[FUNNEL_STAGE_COLUMNS]
