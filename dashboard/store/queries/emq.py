"""The EMQ estimate (0-10) of each event, as one SQL expression: the product's only
definition of the score.

An event's estimate is the sum of the points its valid customer-information parameters
earn (config `[emq] points`, plus the IP + user agent pair), capped at `[emq] cap` and
scaled to 0-10 (min(points, cap) * 10 / cap),
and 0 when its valid parameters form one of Meta's rejected combinations. Every estimate
the product shows (a block's mean, what-to-fix's "if fixed") sums this expression in the
database, so no event's parameters ever cross into Python to be scored; the pandas
oracle in tests is the only other copy, and the tests hold the two equal.
"""

from __future__ import annotations

import sqlalchemy as sa

from dashboard.core.config import Config
from dashboard.core.params import PARAMS, REJECTED_COMBINATIONS, VALID
from dashboard.store.database import events
from dashboard.store.functions import least


def _valid(param: str, assume_valid: str | None, table) -> sa.ColumnElement[bool]:
    if param == assume_valid:
        return sa.true()
    return table.c[f"p_{param}"] == VALID


def emq_points(config: Config, assume_valid: str | None = None, table=events) -> sa.ColumnElement:
    """Each event's points before the cap, optionally as if `assume_valid` were valid too
    (added in PARAMS order, as the oracle adds them)."""
    points: sa.ColumnElement = sa.literal(0.0, sa.Double)
    for param in PARAMS:
        weight = config.emq_points.get(param, 0.0)
        if weight:
            points = points + sa.case((_valid(param, assume_valid, table), weight), else_=0.0)
    pair = sa.and_(
        _valid("client_ip_address", assume_valid, table),
        _valid("client_user_agent", assume_valid, table),
    )
    return points + sa.case((pair, config.emq_pair_points), else_=0.0)


def score_of(points: sa.ColumnElement, rejected: sa.ColumnElement[bool], config: Config):
    """The estimate from an event's points and whether its valid set is rejected:
    min(points, cap) / cap * 10, or 0."""
    # `points` written once: DuckDB evaluates a repeated subexpression again, and a CASE
    # testing `points >= cap` first ran 2.5x slower over a million events.
    scaled = least(points, config.emq_cap) * sa.literal(10.0 / config.emq_cap, sa.Double)
    return sa.case((rejected, 0.0), else_=scaled)


def emq_score(config: Config, assume_valid: str | None = None, table=events) -> sa.ColumnElement:
    """Each event's estimate, optionally as if `assume_valid` were valid too.

    The points are added in PARAMS order, capped and scaled by the same constant as the
    oracle, so the doubles are bit-for-bit those the pandas oracle computes.
    """
    return score_of(
        emq_points(config, assume_valid, table),
        rejected_combination(assume_valid, table),
        config,
    )


def points_gained(config: Config, param: str, table) -> sa.ColumnElement:
    """The points an event would gain if `param` were valid too: its weight, plus the
    IP + user agent pair's when it completes the pair; 0 when it is valid already."""
    pair_partner = {
        "client_ip_address": "client_user_agent",
        "client_user_agent": "client_ip_address",
    }
    gained: sa.ColumnElement = sa.literal(config.emq_points.get(param, 0.0), sa.Double)
    if param in pair_partner:
        completes = table.c[f"p_{pair_partner[param]}"] == VALID
        gained = gained + sa.case((completes, config.emq_pair_points), else_=0.0)
    return sa.case((table.c[f"p_{param}"] == VALID, 0.0), else_=gained)


def rejected_combination(assume_valid: str | None = None, table=events) -> sa.ColumnElement[bool]:
    """The event's valid parameters (plus `assume_valid`) are non-empty and a subset of
    one of Meta's rejected combinations (`combo_<k>`, stored at import, says the valid
    set is a subset of combination k)."""
    combos = [table.c[f"combo_{k}"] == sa.true() for k in range(len(REJECTED_COMBINATIONS))]
    if assume_valid is None:
        return sa.and_(table.c.n_valid_params > 0, sa.or_(*combos))
    # The set plus `assume_valid` is non-empty, and a subset of combination k only when
    # the set already was and k contains the parameter.
    wanted = [
        c for c, combo in zip(combos, REJECTED_COMBINATIONS, strict=True) if assume_valid in combo
    ]
    return sa.or_(sa.false(), *wanted)
