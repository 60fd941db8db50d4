"""Scorecards: the headline measures of a block, as people read them, with their change.

One renderer of `core.measures.SCORECARDS` (and `SUMMARY`) for every surface: the
Overview draws each as a metric, the HTML/PDF/XLSX report lists them as summary rows and
the terminal summary prints them as lines. Each gets the measure's label, its value
formatted by its kind, the change against the previous period computed from the values
as shown, whether lower is better, its goal or tier, and its help text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dashboard.core import formatting as fmt
from dashboard.core.config import Config
from dashboard.core.measures import (
    LOWER_IS_BETTER,
    SCORECARDS,
    HelpContext,
    Measure,
    help_text,
)
from dashboard.quality.emq import tier

FORMATS = {
    "count": fmt.compact,
    "rate": fmt.percent,
    "score": fmt.score,
    "duration": fmt.duration,
}


@dataclass(frozen=True)
class Scorecard:
    """One measure of a block, ready to show."""

    measure: Measure
    value: Any
    previous: Any
    shown: str  # the value as people read it ("6.6", "85.9%", "12 min")
    change: str | None  # vs the previous period ("+0.3", "no change"), None without one
    goal: str  # "goal 75%", "tier Good", or ""
    help: str | None

    @property
    def label(self) -> str:
        return self.measure.label

    @property
    def lower_is_better(self) -> bool:
        return self.measure.direction == LOWER_IS_BETTER


def help_context(config: Config, block: dict[str, Any]) -> HelpContext:
    """The values scorecard help texts name: goals, tiers, server-only by design."""
    by_design = block.get("dedup", {}).get("server", {}).get("by_design")
    return HelpContext(
        coverage_goal=config.coverage_goal,
        tier_ok=config.emq_tiers["ok"],
        tier_good=config.emq_tiers["good"],
        tier_great=config.emq_tiers["great"],
        by_design=fmt.compact(by_design) if by_design is not None else "The",
    )


def _goal(measure: Measure, value: Any, config: Config) -> str:
    if measure.goal:
        return f"goal {getattr(config, measure.goal):.0%}"
    if measure.kind == "score":
        return f"tier {tier(value, config)}"
    return ""


def scorecards(
    block: dict[str, Any],
    previous: dict[str, Any] | None,
    config: Config,
    measures: Sequence[Measure] = SCORECARDS,
) -> list[Scorecard]:
    """The scorecards of `measures` for a block and its previous period's block."""
    context = help_context(config, block)
    cards = []
    for measure in measures:
        value = measure.value(block)
        before = measure.value(previous) if previous is not None else None
        change = fmt.delta(value, before, measure.kind) if previous is not None else None
        cards.append(
            Scorecard(
                measure=measure,
                value=value,
                previous=before,
                shown=FORMATS[measure.kind](value),
                change=change,
                goal=_goal(measure, value, config),
                help=help_text(measure, context),
            )
        )
    return cards
