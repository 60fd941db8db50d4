"""The parameter-gap rule, computed for every campaign at once, against the plain
definition: each campaign compared with the other campaigns of its dataset, action
source and event name, one at a time.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dashboard.core.definitions import MIN_GROUP_EVENTS
from dashboard.quality.diagnostics import (
    GAP_GROUPING,
    GAP_PARAMS,
    GAP_PEER_MIN_RATE,
    GAP_RATE_FACTOR,
    parameter_gaps,
)


def _by_definition(frame: pd.DataFrame, everywhere: pd.DataFrame) -> list[tuple]:
    """(event_name, campaign, parameters, affected, total) per finding, one campaign at a
    time, in the slice's group order."""
    keys = GAP_GROUPING[:-1]
    frame = frame[frame["server_sent"] >= MIN_GROUP_EVENTS]
    everywhere = everywhere[everywhere["server_sent"] >= MIN_GROUP_EVENTS]
    out = []
    for key, group in frame.groupby(keys):
        others = everywhere.set_index(keys).sort_index()
        if key not in others.index:
            continue
        others = others.loc[[key]]
        for _, row in group.iterrows():
            rest = others[others["campaign"] != row["campaign"]]
            if rest.empty:
                continue
            missing = []
            for param in GAP_PARAMS:
                rest_rate = rest[f"valid__{param}"].sum() / rest["server_sent"].sum()
                rate = row[f"valid__{param}"] / row["server_sent"]
                if rest_rate >= GAP_PEER_MIN_RATE and rate < GAP_RATE_FACTOR * rest_rate:
                    missing.append((param, int(row["server_sent"] - row[f"valid__{param}"])))
            if missing:
                out.append(
                    (
                        key[2],
                        row["campaign"],
                        ",".join(p for p, _ in missing),
                        max(n for _, n in missing),
                        int(row["server_sent"]),
                    )
                )
    return out


def _frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(
        rows, columns=[*GAP_GROUPING, "server_sent"] + [f"valid__{p}" for p in GAP_PARAMS]
    )


def _row(campaign: str, sent: int, em: int, name: str = "Lead", **valid: int) -> dict:
    out = {
        "dataset_id": "d1",
        "action_source": "website",
        "event_name": name,
        "campaign": campaign,
        "server_sent": sent,
        "valid__em": em,
    }
    for param in GAP_PARAMS[1:]:
        out[f"valid__{param}"] = valid.get(param, sent)
    return out


def _found(frame, everywhere=None) -> list[tuple]:
    findings = parameter_gaps(frame, frame if everywhere is None else everywhere)
    return [(f.event_name, f.campaign, f.parameter, f.affected, f.total) for f in findings]


def test_a_campaign_without_email_where_the_others_send_it():
    # Campaign b: 10 of 100 with e-mail (10%); elsewhere a and c: 180 of 200 (90%).
    # 10% < 0.5 x 90%: a gap of 90 events. a and c compared with the rest are fine.
    frame = _frame([_row("a", 100, 90), _row("b", 100, 10), _row("c", 100, 90)])
    assert _found(frame) == [("Lead", "b", "em", 90, 100)]


def test_the_edges_of_the_two_rates():
    # Elsewhere exactly at the peer minimum (50 of 100) and the campaign exactly at half
    # of it (25 of 100): not under the factor, so no gap; one event fewer is a gap.
    at_edge = _frame([_row("a", 100, 50), _row("b", 100, 25)])
    assert ("Lead", "b", "em", 75, 100) not in _found(at_edge)
    below = _frame([_row("a", 100, 50), _row("b", 100, 24)])
    assert ("Lead", "b", "em", 76, 100) in _found(below)
    # Elsewhere just under the peer minimum: nothing to compare with.
    weak_peers = _frame([_row("a", 100, 49), _row("b", 100, 0)])
    assert _found(weak_peers) == []


def test_small_groups_alone_and_other_event_names_are_not_compared():
    small = MIN_GROUP_EVENTS - 1
    frame = _frame(
        [
            _row("a", 100, 100),
            _row("b", small, 0),  # too few events to judge
            _row("c", 100, 0, name="Purchase"),  # no other Purchase campaign
        ]
    )
    assert _found(frame) == []


def test_a_filtered_slice_keeps_its_gap_against_the_whole_period():
    everywhere = _frame([_row("a", 100, 90), _row("b", 100, 10)])
    assert _found(everywhere[everywhere["campaign"] == "b"], everywhere) == [
        ("Lead", "b", "em", 90, 100)
    ]
    assert _found(everywhere[everywhere["campaign"] == "a"], everywhere) == []


@pytest.mark.parametrize("seed", range(5))
def test_all_campaigns_at_once_equal_one_campaign_at_a_time(seed):
    rng = np.random.default_rng(seed)
    rows = []
    for name in ("Lead", "Purchase", "Contact"):
        for source in ("website", "crm"):
            for k in range(int(rng.integers(1, 30))):
                sent = int(rng.integers(1, 400))
                rows.append(
                    {
                        "dataset_id": str(rng.choice(["d1", "d2"])),
                        "action_source": source,
                        "event_name": name,
                        "campaign": f"c{k}",
                        "server_sent": sent,
                        **{
                            f"valid__{p}": int(rng.integers(0, sent + 1) * rng.choice([0, 1, 1]))
                            for p in GAP_PARAMS
                        },
                    }
                )
    everywhere = _frame(rows).drop_duplicates(GAP_GROUPING)
    sliced = everywhere.sample(frac=0.6, random_state=seed)
    for frame in (everywhere, sliced):
        expected = _by_definition(frame, everywhere)
        assert _found(frame, everywhere) == expected
    assert _by_definition(everywhere, everywhere)  # the random frames do have gaps
