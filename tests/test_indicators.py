"""Indicator definitions on hand-built logs, numbers worked out by hand, on every backend."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa
from conftest import write_jsonl
from hypothesis import given, settings
from hypothesis import strategies as st
from logkit import T0, capi, event, pixel, sha

from dashboard.core.definitions import DEDUP_STATUSES
from dashboard.core.filters import Filters
from dashboard.core.params import PARAMS, REJECTED_COMBINATIONS, VALID
from dashboard.ingest import ingest
from dashboard.outputs.report import build_report
from dashboard.quality.blocks import block_frame, blocks_by, overall_block
from dashboard.quality.diagnostics import diagnose
from dashboard.quality.emq import tier
from dashboard.quality.freshness import lag_stats
from dashboard.quality.funnel import funnel_stages
from dashboard.quality.match_quality import what_to_fix
from dashboard.store.database import events
from dashboard.store.queries.emq import emq_score
from dashboard.store.queries.freshness import delivery_summary
from dashboard.store.queries.funnel import purchase_readiness, purchases, stage_order_gaps
from dashboard.store.queries.match import gap_events

H48 = 48 * 3600
F1 = "fb.1.1700000000000.1111111111"
F2 = "fb.1.1700000000000.2222222222"
E1 = sha("one@example.com")


def load(engine, tmp_path, config, records) -> None:
    ingest([write_jsonl(tmp_path / "log.jsonl", records)], engine, config=config)


def statuses(engine) -> dict[str, str]:
    """label -> dedup status, where label is '<channel>:<event_id or line>'."""
    with engine.connect() as connection:
        got = connection.execute(
            sa.select(
                events.c.channel,
                events.c.event_id,
                events.c.line_no,
                events.c.idx,
                events.c.dedup_status,
            ).order_by(events.c.line_no, events.c.idx)
        ).all()
    return {f"{c[0]}:{c[1] or c[2]}:{c[3]}": c[4] for c in got}


# Each scenario: records, then the expected status of every event by label
# (<channel>:<event_id or line number>:<index in batch>).
DEDUP_SCENARIOS = {
    "pair within seconds": (
        [
            pixel(event("Purchase", T0, "o1"), sent_at=T0),
            capi([event("Purchase", T0, "o1")], sent_at=T0 + 30),
        ],
        {"browser:o1:0": "deduplicated", "server:o1:0": "deduplicated"},
    ),
    "exactly 48 h apart is within": (
        [
            pixel(event("Lead", T0, "l1"), sent_at=T0),
            capi([event("Lead", T0, "l1")], sent_at=T0 + H48),
        ],
        {"browser:l1:0": "deduplicated", "server:l1:0": "deduplicated"},
    ),
    "48 h and 1 s apart is outside": (
        [
            pixel(event("Lead", T0, "l1"), sent_at=T0),
            capi([event("Lead", T0, "l1")], sent_at=T0 + H48 + 1),
        ],
        {"browser:l1:0": "outside_48h", "server:l1:0": "outside_48h"},
    ),
    "server first, browser later still pairs": (
        [
            capi([event("Lead", T0, "l1")], sent_at=T0),
            pixel(event("Lead", T0, "l1"), sent_at=T0 + 100),
        ],
        {"server:l1:0": "deduplicated", "browser:l1:0": "deduplicated"},
    ),
    "different event_name never pairs": (
        [
            pixel(event("Lead", T0, "x1"), sent_at=T0),
            capi([event("Purchase", T0, "x1")], sent_at=T0 + 5),
        ],
        {"browser:x1:0": "browser_only", "server:x1:0": "server_only"},
    ),
    "different dataset never pairs": (
        [
            pixel(event("Lead", T0, "x1"), sent_at=T0, dataset="A"),
            capi([event("Lead", T0, "x1")], sent_at=T0 + 5, dataset="B"),
        ],
        {"browser:x1:0": "browser_only", "server:x1:0": "server_only"},
    ),
    "retry within 48 h is a same-channel repeat": (
        [
            capi([event("Lead", T0, "r1")], sent_at=T0, status=None),
            capi([event("Lead", T0, "r1")], sent_at=T0 + 600),
            capi([event("Lead", T0, "r1")], sent_at=T0 + 600 + H48 + 1),
        ],
        # the third is more than 48 h after the second (the nearest earlier one)
        {"server:r1:0": "server_only"},
    ),
    "repeat beats twin": (
        [
            pixel(event("Lead", T0, "r2"), sent_at=T0),
            capi([event("Lead", T0, "r2")], sent_at=T0 + 10),
            capi([event("Lead", T0, "r2")], sent_at=T0 + 20),
        ],
        {"browser:r2:0": "deduplicated", "server:r2:0": "same_channel_repeat"},
    ),
    "fallback by fbp when the browser came first": (
        [
            pixel(event("Purchase", T0, "b1", fbp=F1), sent_at=T0),
            capi([event("Purchase", T0, None, fbp=F1)], sent_at=T0 + 60),
        ],
        {"browser:b1:0": "browser_only", "server:2:0": "fallback_deduplicated"},
    ),
    "fallback by external_id exactly 48 h later": (
        [
            pixel(event("Purchase", T0, "b1", external_id="u1"), sent_at=T0),
            capi([event("Purchase", T0, "s1", external_id="u1")], sent_at=T0 + H48),
        ],
        {"browser:b1:0": "browser_only", "server:s1:0": "fallback_deduplicated"},
    ),
    "no fallback when the server came first": (
        [
            capi([event("Purchase", T0, None, fbp=F1)], sent_at=T0),
            pixel(event("Purchase", T0, "b1", fbp=F1), sent_at=T0 + 60),
        ],
        {"server:1:0": "missing_event_id", "browser:b1:0": "browser_only"},
    ),
    "no fallback for browser events": (
        [
            pixel(event("Purchase", T0, None, fbp=F1), sent_at=T0),
            pixel(event("Purchase", T0, None, fbp=F1), sent_at=T0 + 5),
        ],
        {"browser:1:0": "missing_event_id", "browser:2:0": "missing_event_id"},
    ),
    "rejected batch does not count for dedup": (
        [
            pixel(event("Lead", T0, "j1"), sent_at=T0),
            capi(
                [event("Lead", T0, "j1")],
                sent_at=T0 + 5,
                status=400,
                error={"code": 100, "message": "bad"},
            ),
        ],
        {"browser:j1:0": "browser_only", "server:j1:0": None},
    ),
    "missing sent_at defaults to event_time": (
        [
            {"kind": "pixel_event", "dataset_id": "1", "event": event("Lead", T0, "m1")},
            capi([event("Lead", T0 + H48, "m1")], sent_at=T0 + H48 + 1),
        ],
        # browser sent_at = T0, server sent at T0 + 48 h + 1 s: outside
        {"browser:m1:0": "outside_48h", "server:m1:0": "outside_48h"},
    ),
}


@pytest.mark.parametrize("scenario", list(DEDUP_SCENARIOS))
def test_dedup_status(engine, tmp_path, config, scenario):
    records, expected = DEDUP_SCENARIOS[scenario]
    load(engine, tmp_path, config, records)
    got = statuses(engine)
    for label, status in expected.items():
        assert got[label] == status, (label, got)


def test_every_event_has_exactly_one_status_and_counts_match(engine, tmp_path, config):
    records = [r for recs, _ in DEDUP_SCENARIOS.values() for r in recs]
    # Scenarios reuse ids; give each its own dataset so they stay independent.
    for i, record in enumerate(records):
        record = dict(record)
        records[i] = record
    load(engine, tmp_path, config, records)
    block = overall_block(engine, Filters(), config)
    with engine.connect() as connection:
        accepted = connection.execute(
            sa.select(events.c.channel, sa.func.count())
            .where(events.c.delivery != "rejected")
            .group_by(events.c.channel)
        ).all()
    per_channel = dict(accepted)
    assert sum(block["dedup"]["browser"].values()) == per_channel["browser"]
    statuses = {k: v for k, v in block["dedup"]["server"].items() if k != "by_design"}
    assert sum(statuses.values()) == per_channel["server"]
    assert set(statuses) == set(DEDUP_STATUSES)
    # Website events only here: none is server-only by design.
    assert block["dedup"]["server"]["by_design"] == 0


LIKELY_DOUBLE = [
    # (browser user_data, server user_data, seconds between event_times, expected)
    ({"em": E1}, {"em": E1}, 300, True),  # exactly 5 minutes is within
    ({"em": E1}, {"em": E1}, 301, False),
    ({"em": E1}, {"em": sha("two@example.com")}, 0, False),  # another person
    ({"external_id": "u9"}, {"external_id": "u9"}, -120, True),  # server event_time earlier
]


@pytest.mark.parametrize(("browser_ud", "server_ud", "gap", "expected"), LIKELY_DOUBLE)
def test_likely_double_counted(engine, tmp_path, config, browser_ud, server_ud, gap, expected):
    # The server event arrives first so Meta's fallback cannot remove it: it stays missing_event_id.
    records = [
        capi([event("Purchase", T0 + gap, None, **server_ud)], sent_at=T0 - 10),
        pixel(event("Purchase", T0, "o5", **browser_ud), sent_at=T0),
    ]
    load(engine, tmp_path, config, records)
    block = overall_block(engine, Filters(), config)
    assert block["dedup"]["server"]["missing_event_id"] == 1
    assert block["dedup"]["likely_double_counted"] == (1 if expected else 0)
    frame, total = gap_events(engine, Filters(), ["likely_double_counted"])
    assert total == (1 if expected else 0)


def test_event_coverage_and_dedup_key_feedback(engine, tmp_path, config):
    records = [
        # 4 browser events: b1 has a server twin; b2 twin is rejected; b3 covered only by fbp;
        # b4 alone. Coverage by event_id = 1/4, with any key = 2/4.
        pixel(event("Lead", T0, "b1", fbp=F1), sent_at=T0),
        capi([event("Lead", T0, "b1", fbp=F1)], sent_at=T0 + 10),
        pixel(event("Lead", T0, "b2"), sent_at=T0),
        capi(
            [event("Lead", T0, "b2")],
            sent_at=T0 + 10,
            status=500,
            error={"code": 2, "message": "temporary"},
        ),
        pixel(event("Lead", T0, "b3", fbp=F2), sent_at=T0),
        capi([event("Lead", T0, "s3", fbp=F2, external_id="u3")], sent_at=T0 - 100),
        pixel(event("Lead", T0, "b4", external_id="u4"), sent_at=T0),
    ]
    load(engine, tmp_path, config, records)
    block = overall_block(engine, Filters(), config)
    assert block["browser_events"] == 4
    assert block["server_events"] == 2 and block["server_rejected_by_meta"] == 1
    assert block["event_coverage"] == 0.25
    assert block["event_coverage_any_key"] == 0.5
    from dashboard.store.queries.match import dedup_key_feedback

    feedback = dedup_key_feedback(engine, Filters()).set_index("dedup_key")
    assert feedback.loc["event_id", "browser_events_with_key"] == 1.0
    assert feedback.loc["fbp", "browser_events_with_key"] == 0.5
    assert feedback.loc["external_id", "browser_events_with_key"] == 0.25
    assert feedback.loc["external_id", "server_events_with_key"] == 0.5  # 1 of 2 accepted


def test_parameter_coverage_validity_and_pii(engine, tmp_path, config):
    records = [
        capi(
            [
                event("Lead", T0, "p1", em=[E1], ph="+1 650 555 1212", fbc="fb.1.1700000000.AbC"),
                event("Lead", T0, "p2", em=["not-a-hash", E1], fbc="fb.1.1700000000000.AbC"),
                event("Lead", T0, "p3", em="x@example.com", client_ip_address="10.0.0.300"),
            ],
            sent_at=T0 + 5,
            status=400,
            error={"code": 100, "message": "bad"},  # rejected: still counts for what was sent
        ),
        capi([event("Lead", T0, "p4", fn="Zed")], sent_at=T0 + 5),
    ]
    load(engine, tmp_path, config, records)
    block = overall_block(engine, Filters(), config)
    assert block["server_sent"] == 4
    assert block["parameter_coverage"]["em"] == 0.5  # p1, p2 (a valid element in a list)
    assert block["parameter_coverage"]["fbc"] == 0.25
    assert block["parameter_coverage"]["ph"] == 0.0
    assert block["invalid_parameters"]["em"] == 1  # p3
    assert block["invalid_parameters"]["ph"] == 1
    assert block["invalid_parameters"]["fbc"] == 1  # 10-digit seconds
    assert block["invalid_parameters"]["client_ip_address"] == 1
    assert block["unhashed_parameters"] == {
        p: (1 if p in ("em", "ph", "fn") else 0) for p in PARAMS
    }
    assert block["unhashed_pii"] == 4  # p1 ph, p2 list element, p3 em, p4 fn
    assert block["server_rejected_by_meta"] == 3


EMQ_CASES = [
    # (valid parameters, estimate worked out from data/config.toml's points; cap 10)
    (set(), 0.0),
    ({"em"}, 3.0),
    ({"em", "fbp", "client_ip_address", "client_user_agent"}, 5.5),  # 3 + 1 + pair 1.5
    ({"client_ip_address"}, 0.0),  # alone it earns nothing
    ({"fn", "ge"}, 0.0),  # Meta rejects fn+ge
    ({"ge"}, 0.0),  # subset of a rejected combination
    ({"db", "client_user_agent"}, 0.0),
    ({"fn", "ln", "ge"}, 0.75),  # not a subset of any rejected combination
    (
        {"em", "ph", "external_id", "fbc", "fbp", "client_ip_address", "client_user_agent"},
        10.0,
    ),  # 11 capped
]


@pytest.fixture(scope="module")
def scorer():
    """The product's EMQ expression evaluated on one event's statuses, in DuckDB."""
    engine = sa.create_engine("duckdb:///:memory:")
    yield engine
    engine.dispose()


def estimate_emq(valid: frozenset[str], config, engine) -> float:
    """`emq_score` of one event whose valid parameters are `valid` (statuses and the
    rejected-combination flags as the import stores them)."""
    names = [*[f"p_{p}" for p in PARAMS], "n_valid_params"]
    names += [f"combo_{k}" for k in range(len(REJECTED_COMBINATIONS))]
    row = (
        *[VALID if p in valid else 0 for p in PARAMS],
        len(valid),
        *[valid <= combo for combo in REJECTED_COMBINATIONS],
    )
    types = [sa.Integer] * (len(PARAMS) + 1) + [sa.Boolean] * len(REJECTED_COMBINATIONS)
    one_event = sa.values(
        *[sa.column(n, t) for n, t in zip(names, types, strict=True)], name="e"
    ).data([row])
    with engine.connect() as connection:
        return connection.execute(sa.select(emq_score(config, table=one_event))).scalar_one()


@pytest.mark.parametrize(("valid", "expected"), EMQ_CASES)
def test_estimate_emq_reference(config, scorer, valid, expected):
    assert estimate_emq(frozenset(valid), config, scorer) == pytest.approx(expected, abs=1e-12)


VALUES = {
    "em": E1,
    "ph": sha("16505551212"),
    "fn": sha("anna"),
    "ln": sha("smith"),
    "ge": sha("f"),
    "db": sha("19900101"),
    "ct": sha("berlin"),
    "st": sha("be"),
    "zp": sha("10115"),
    "country": sha("de"),
    "external_id": "u1",
    "client_ip_address": "203.0.113.1",
    "client_user_agent": "UA",
    "fbc": "fb.1.1700000000000.AbC",
    "fbp": F1,
    "lead_id": "123456789012345",
    "ctwa_clid": "ARAkL",
}


def test_emq_of_stored_events_matches_reference_and_mean_and_tier(engine, tmp_path, config):
    batch = [
        event(f"E{i}", T0, f"q{i}", **{p: VALUES[p] for p in valid})
        for i, (valid, _) in enumerate(EMQ_CASES)
    ]
    load(engine, tmp_path, config, [capi(batch, sent_at=T0)])
    # One event per event name: each name's block holds that event's estimate, computed
    # from the statuses the import stored.
    per_event = blocks_by(engine, Filters(), config, "event_name")
    scores = [per_event[f"E{i}"]["emq_estimate"] for i in range(len(EMQ_CASES))]
    assert scores == pytest.approx([expected for _, expected in EMQ_CASES])
    block = overall_block(engine, Filters(), config)
    mean = sum(expected for _, expected in EMQ_CASES) / len(EMQ_CASES)  # 19.25 / 9
    assert block["emq_estimate"] == pytest.approx(mean, abs=1e-4)
    assert block["rejected_combination"] == 3
    assert tier(block["emq_estimate"], config) == "Poor"  # 2.14


@settings(max_examples=200, deadline=None)
@given(st.sets(st.sampled_from(sorted(VALUES))), st.sampled_from(sorted(VALUES)))
def test_estimate_is_monotone(config_for_property, scorer, valid, extra):
    more = estimate_emq(frozenset(valid | {extra}), config_for_property, scorer)
    assert more >= estimate_emq(frozenset(valid), config_for_property, scorer)


@pytest.fixture(scope="module")
def config_for_property():
    from dashboard.core.config import load_config

    return load_config()


def test_what_to_fix_ranks_expected_gain(engine, tmp_path, config):
    records = [
        capi(
            [
                event(
                    "Purchase",
                    T0,
                    f"a{i}",
                    em=E1,
                    fbp=F1,
                    client_ip_address="1.2.3.4",
                    client_user_agent="UA",
                )
                for i in range(3)
            ],
            sent_at=T0,
        ),  # 5.5 each
        capi([event("Lead", T0, "l1", fn=sha("a"), ge=sha("f"))], sent_at=T0),  # rejected combo: 0
    ]
    load(engine, tmp_path, config, records)
    fixes = what_to_fix(engine, Filters(), config)
    top = fixes.iloc[0]
    # Purchase + fbc: 5.5 -> 8.0 on 3 of 4 events: slice gain 3 * 2.5 / 4 = 1.875
    assert (top["event_name"], top["parameter"]) == ("Purchase", "fbc")
    assert top["gain_event"] == pytest.approx(2.5) and top["gain_slice"] == pytest.approx(1.875)
    lead_em = fixes[(fixes.event_name == "Lead") & (fixes.parameter == "em")].iloc[0]
    # {fn, ge, em} is no longer a rejected combination: 3 + 0.25 + 0.25 = 3.5
    assert lead_em["gain_event"] == pytest.approx(3.5) and lead_em["gain_slice"] == pytest.approx(
        0.875
    )
    lead_ln = fixes[(fixes.event_name == "Lead") & (fixes.parameter == "ln")].iloc[0]
    # {fn, ge, ln} is a subset of neither fn+ge nor ln+ge: 0.25 * 3 = 0.75
    assert lead_ln["gain_event"] == pytest.approx(0.75)
    assert not fixes[(fixes.event_name == "Purchase") & (fixes.parameter == "em")].shape[
        0
    ]  # already valid


def test_freshness(engine, tmp_path, config):
    lags = [10, 20, 30, 40, 8 * 86400]  # the last one is stale (over 7 days)
    records = [capi([event("Lead", T0, f"f{i}")], sent_at=T0 + lag) for i, lag in enumerate(lags)]
    records.append(
        capi([event("Lead", T0 + 61, "future")], sent_at=T0)
    )  # event_time 61 s after sending
    records.append(capi([event("Lead", T0 + 60, "edge")], sent_at=T0))  # 60 s is tolerated
    load(engine, tmp_path, config, records)
    fresh = overall_block(engine, Filters(), config)["freshness"]
    # lags sorted: -61, -60, 10, 20, 30, 40, 691200 -> median 20; p90 = 40 + 0.4 * (691200 - 40)
    assert fresh["median_lag_s"] == pytest.approx(20)
    assert fresh["p90_lag_s"] == pytest.approx(40 + 0.4 * (691200 - 40))
    assert fresh["stale_over_7d"] == 1 and fresh["future"] == 1
    stats = lag_stats(engine, Filters(), config, "funnel_stage").iloc[0]
    assert stats["upload_frequency"] == "real time" and stats["server_events"] == 7


def test_delivery_summary(engine, tmp_path, config):
    records = [
        capi(
            [event("Lead", T0, "d1"), event("Lead", T0, "d2")],
            sent_at=T0,
            status=400,
            error={"code": 190, "error_subcode": 463, "message": "Session has expired"},
        ),
        capi(
            [event("Lead", T0, "d3")],
            sent_at=T0,
            status=403,
            error={"code": 200, "message": "Permissions"},
        ),
        capi(
            [event("Lead", T0, "d4")],
            sent_at=T0,
            status=400,
            error={"code": 100, "error_subcode": 2804003, "message": "Event Timestamp Too Old"},
        ),
        capi(
            [event("Lead", T0, "d5"), event("Lead", T0, "d6"), event("Lead", T0, "d7")],
            sent_at=T0,
            events_received=2,
        ),
        capi([event("Lead", T0, "d8")], sent_at=T0, status=None),
    ]
    load(engine, tmp_path, config, records)
    summary = delivery_summary(engine, Filters())
    assert summary == {
        "batches": 5,
        "rejected_batches": 3,
        "rejected_events": 4,
        "unanswered_batches": 1,
        "token_error_batches": 2,
        "token_error_events": 3,
        "shortfall_batches": 1,
        "shortfall_events": 1,
    }
    block = overall_block(engine, Filters(), config)
    assert (block["server_events"], block["server_rejected_by_meta"]) == (4, 4)
    keys = {d.key for d in diagnose(engine, Filters(), config)}
    assert {
        "token_errors",
        "rejected_events",
        "events_received_shortfall",
        "unanswered_batches",
    } <= keys


def test_test_events_count_normally_and_as_diagnostic(engine, tmp_path, config):
    load(
        engine,
        tmp_path,
        config,
        [
            capi(
                [event("Lead", T0, "t1"), event("Lead", T0, "t2")],
                sent_at=T0,
                test_event_code="TEST1",
            ),
            capi([event("Lead", T0, "t3")], sent_at=T0),
        ],
    )
    block = overall_block(engine, Filters(), config)
    assert (block["server_events"], block["test_events"]) == (3, 2)
    found = {d.key: d for d in diagnose(engine, Filters(), config)}
    assert (found["test_event_code"].affected, found["test_event_code"].total) == (2, 3)


def funnel_log():
    crm = {"custom_data": {"campaign": "crm"}}
    return [
        # person u1: Contact -> Lead -> Schedule -> Purchase (complete)
        capi(
            [
                event("Contact", T0, "c1", external_id="u1", **crm),
                event("Lead", T0 + 10, "l1", external_id="u1", **crm),
                event("Schedule", T0 + 20, "s1", external_id="u1", **crm),
                event(
                    "Purchase",
                    T0 + 30,
                    "o1",
                    external_id="u1",
                    custom_data={"campaign": "crm", "value": 100.0, "currency": "EUR"},
                ),
            ],
            sent_at=T0 + 40,
        ),
        # person u2: Lead without Contact (a stage-order gap at Qualified), then Purchase without value
        capi(
            [
                event("Lead", T0, "l2", external_id="u2", **crm),
                event("Purchase", T0 + 30, "o2", external_id="u2", **crm),
            ],
            sent_at=T0 + 40,
        ),
        # person u3: Schedule only: a gap at Demo scheduled
        capi([event("Schedule", T0, "s3", external_id="u3", **crm)], sent_at=T0 + 40),
        # a web buyer: ViewContent -> Purchase, not a CRM gap
        pixel(
            event(
                "ViewContent",
                T0,
                "v4",
                external_id="u4",
                extra={"event_source_url": "https://s.test/?utm_campaign=web"},
            )
        ),
        pixel(
            event(
                "Purchase",
                T0 + 50,
                "o4",
                external_id="u4",
                custom_data={"value": 50.0, "currency": "EUR"},
                extra={"event_source_url": "https://s.test/?utm_campaign=web"},
            )
        ),
        capi(
            [
                event(
                    "Purchase",
                    T0 + 50,
                    "o4",
                    external_id="u4",
                    custom_data={"value": 50.0, "currency": "EUR"},
                    extra={"event_source_url": "https://s.test/?utm_campaign=web"},
                )
            ],
            sent_at=T0 + 60,
        ),
    ]


def test_funnel_people_gaps_and_purchases(engine, tmp_path, config):
    load(engine, tmp_path, config, funnel_log())
    stages = funnel_stages(engine, Filters(), config).set_index(["campaign", "funnel_stage"])
    assert stages.loc[("crm", "Qualified"), "people"] == 2
    assert stages.loc[("crm", "Closed won"), "people"] == 2
    assert stages.loc[("web", "Closed won"), "events"] == 1  # the browser/server pair counts once
    gaps = stage_order_gaps(engine, Filters(), config).set_index(["campaign", "funnel_stage"])
    assert gaps.loc[("crm", "Qualified"), "people_without_earlier_stage"] == 1  # u2
    assert gaps.loc[("crm", "Demo scheduled"), "people_without_earlier_stage"] == 1  # u3
    assert ("web", "Closed won") not in gaps.index  # u4 viewed content first
    assert ("crm", "Closed won") not in gaps.index  # u1, u2 both had earlier stages
    bought = purchase_readiness(engine, Filters(), config).set_index("campaign")
    assert bought.loc["crm", "purchases"] == 2
    assert bought.loc["crm", "value_completeness"] == 0.5
    assert bought.loc["web", "purchase_events_sent"] == 2 and bought.loc["web", "purchases"] == 1
    assert not bought.loc["crm", "ready"]  # 2 < 10 in the last 7 days
    revenue = purchases(engine, Filters(), config).set_index(["campaign", "currency"])
    assert revenue.loc[("crm", "EUR"), "revenue"] == 100.0


def test_stage_order_gaps_over_eleven_thousand_campaigns(engine, tmp_path, config):
    """One query whatever the number of campaigns (it once sent a literal per campaign
    and stage: past SQLite's 32,766 parameters, and out of memory on DuckDB)."""
    campaigns = 11_000
    records = []
    for i in range(campaigns):
        data = {"campaign": f"c{i:05d}"}
        records += [
            pixel(event("Contact", T0 + i, f"a{i}c", external_id=f"a{i}", custom_data=data)),
            pixel(event("Lead", T0 + i, f"a{i}l", external_id=f"a{i}", custom_data=data)),
            pixel(event("Lead", T0 + i, f"b{i}l", external_id=f"b{i}", custom_data=data)),
        ]
    # Its people start at Qualified: its entry stage, so no gap.
    records.append(pixel(event("Lead", T0, "w", external_id="w", custom_data={"campaign": "w"})))
    load(engine, tmp_path, config, records)
    gaps = stage_order_gaps(engine, Filters(), config)
    # Each campaign: b{i} reached Qualified without Contacted; a{i} went through both.
    assert len(gaps) == campaigns
    assert set(gaps["funnel_stage"]) == {"Qualified"}
    assert (gaps["people_without_earlier_stage"] == 1).all()
    assert "w" not in set(gaps["campaign"])


def test_readiness_counts_last_seven_days(engine, tmp_path, config):
    day = 86400
    records = [
        capi(
            [
                event(
                    "Purchase",
                    T0 - k * day,
                    f"o{k}",
                    custom_data={"campaign": "c", "value": 1, "currency": "EUR"},
                )
            ],
            sent_at=T0 - k * day + 5,
        )
        for k in range(12)
    ]  # one a day for 12 days
    load(engine, tmp_path, config, records)
    until = date(2025, 11, 20)
    bought = purchase_readiness(engine, Filters(until=until), config).set_index("campaign")
    # window: event_time > end of 2025-11-20 minus 7 days -> days 0..6 = 7 purchases
    assert bought.loc["c", "purchases_last_7d"] == 7 and not bought.loc["c", "ready"]
    config10 = config.__class__(
        **{**config.__dict__, "readiness": {"min_purchases_7d": 7, "learning_phase_per_week": 50}}
    )
    assert (
        purchase_readiness(engine, Filters(until=until), config10)
        .set_index("campaign")
        .loc["c", "ready"]
    )


def test_filters_slice_and_group(engine, tmp_path, config):
    load(engine, tmp_path, config, funnel_log())
    crm_only = overall_block(engine, Filters(campaigns=("crm",)), config)
    by_campaign = blocks_by(engine, Filters(), config, "campaign")
    assert crm_only == by_campaign["crm"]
    assert crm_only["server_events"] == 7 and crm_only["browser_events"] == 0
    web_browser = overall_block(engine, Filters(campaigns=("web",), channels=("browser",)), config)
    assert (web_browser["browser_events"], web_browser["server_events"]) == (2, 0)
    empty = overall_block(engine, Filters(campaigns=("nope",)), config)
    assert (
        empty["server_events"] == 0
        and empty["emq_estimate"] is None
        and empty["event_coverage"] is None
    )
    assert overall_block(engine, Filters(since=date(2025, 11, 21)), config)["server_sent"] == 0
    assert (
        overall_block(engine, Filters(since=date(2025, 11, 20), until=date(2025, 11, 20)), config)[
            "server_sent"
        ]
        == 8
    )
    daily = block_frame(engine, Filters(), config, ["event_day", "channel"])
    assert list(daily["channel"]) == ["browser", "server"]


def test_sql_metacharacters_in_filters_are_data(engine, tmp_path, config):
    nasty = "x'); DROP TABLE events; --"
    load(
        engine,
        tmp_path,
        config,
        [capi([event("Lead", T0, "n1", custom_data={"campaign": nasty})], sent_at=T0)],
    )
    assert overall_block(engine, Filters(campaigns=(nasty,)), config)["server_events"] == 1
    assert overall_block(engine, Filters(campaigns=("x' OR '1'='1",)), config)["server_events"] == 0


def test_report_contract(engine, tmp_path, config):
    load(engine, tmp_path, config, [*funnel_log(), "{broken"])
    report = build_report(
        engine, Filters(since=date(2025, 11, 20), until=date(2025, 11, 20)), config
    )
    assert set(report) >= {
        "period",
        "overall",
        "by_event_name",
        "by_campaign",
        "by_funnel_stage",
        "diagnostics",
        "rejected_records",
    }
    assert report["rejected_records"] == 1
    assert report["period"]["previous_since"] == "2025-11-19"
    block_keys = {
        "browser_events",
        "server_events",
        "server_rejected_by_meta",
        "test_events",
        "event_coverage",
        "event_coverage_any_key",
        "emq_estimate",
        "parameter_coverage",
        "invalid_parameters",
        "unhashed_pii",
        "dedup",
        "freshness",
    }
    for block in [
        report["overall"],
        *report["by_event_name"].values(),
        *report["by_campaign"].values(),
        *report["by_funnel_stage"].values(),
    ]:
        assert block_keys <= set(block)
        assert set(block["freshness"]) >= {"median_lag_s", "p90_lag_s", "stale_over_7d", "future"}
        assert set(block["dedup"]["browser"]) == set(DEDUP_STATUSES)
        assert set(block["dedup"]["server"]) == {*DEDUP_STATUSES, "by_design"}
        assert set(block["freshness"]) >= {
            "last_event_at",
            "last_browser_event_at",
            "last_server_event_at",
            "last_sent_at",
            "days_without_events",
        }
    assert set(report["by_campaign"]) == {"crm", "web"}
    assert (
        sum(b["server_events"] for b in report["by_campaign"].values())
        == report["overall"]["server_events"]
    )


def test_freshness_ignores_events_without_sent_at(engine, tmp_path, config):
    # Bare events: sent_at defaults to event_time, which says nothing about lag.
    load(
        engine,
        tmp_path,
        config,
        [event("Lead", T0 - 9 * 86400, "b1"), capi([event("Lead", T0, "s1")], sent_at=T0 + 30)],
    )
    fresh = overall_block(engine, Filters(), config)["freshness"]
    assert fresh["median_lag_s"] == 30 and fresh["stale_over_7d"] == 0


def test_readiness_window_includes_its_first_second(engine, tmp_path, config):
    first_second = (
        T0 - 10 * 3600 - 6 * 86400
    )  # 2025-11-14 00:00:00, first second of the 7 days to 11-20
    custom = {"campaign": "c", "value": 1, "currency": "EUR"}
    records = [
        capi([event("Purchase", first_second, "edge", custom_data=custom)], sent_at=first_second),
        capi(
            [event("Purchase", first_second - 1, "before", custom_data=custom)],
            sent_at=first_second,
        ),
    ]
    load(engine, tmp_path, config, records)
    ending_20th = purchase_readiness(engine, Filters(until=date(2025, 11, 20)), config).set_index(
        "campaign"
    )
    assert ending_20th.loc["c", "purchases_last_7d"] == 1
    # Without --until the 7 days end with the latest event's day (11-14): both count.
    latest = purchase_readiness(engine, Filters(), config).set_index("campaign")
    assert latest.loc["c", "purchases_last_7d"] == 2


def test_stage_gaps_start_at_the_campaigns_entry_stage(engine, tmp_path, config):
    wa = {"campaign": "wa"}
    records = [
        # WhatsApp leads start at Qualified: no Contacted is expected, so no gap there...
        capi(
            [
                event("LeadSubmitted", T0, "w1", external_id="p1", custom_data=wa),
                event("LeadSubmitted", T0, "w2", external_id="p2", custom_data=wa),
                event("Purchase", T0 + 9, "w3", external_id="p1", custom_data=wa),
                # ...but a purchase by someone who never became a lead is one.
                event("Purchase", T0 + 9, "w4", external_id="p3", custom_data=wa),
            ],
            sent_at=T0 + 10,
        ),
    ]
    load(engine, tmp_path, config, records)
    gaps = stage_order_gaps(engine, Filters(), config)
    assert gaps.to_dict("records") == [
        {"campaign": "wa", "funnel_stage": "Closed won", "people_without_earlier_stage": 1}
    ]
