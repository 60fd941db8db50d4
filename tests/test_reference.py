"""The pandas reference (tests.oracle.reference) gives the report's numbers, on every backend.

The reference is what the benchmark times the SQL report against, so it must agree with
`build_report` on every numeric field it covers: on the bundled sample (DuckDB), a
generated sample on every backend, and hand-built logs full of edge cases (exactly 48 h,
5 min, fallback order, rejected batches, timeouts, bare events without sent_at, ms
timestamps, plaintext PII, rejected combinations, stale/future events, shortfalls,
diagnostics' thresholds).
"""

from __future__ import annotations

from conftest import write_jsonl
from logkit import T0, capi, event, pixel, sha

from dashboard.core.config import SAMPLE_LOG_PATH
from dashboard.core.filters import Filters
from dashboard.ingest import ingest
from dashboard.outputs.report import build_report
from dashboard.sample.generator import write_sample_log
from dashboard.store.database import make_engine
from tests.oracle.reference import compare_reports, count_numbers, reference_report

H48 = 48 * 3600
F1 = "fb.1.1700000000000.1111111111"
F2 = "fb.1.1700000000000.2222222222"
E1 = sha("one@example.com")
E2 = sha("two@example.com")


def check(engine, config) -> dict:
    """Assert reference == report; return the reference."""
    report = build_report(engine, Filters(), config)
    reference = reference_report(engine, config)
    problems = compare_reports(report, reference)
    assert not problems, "\n".join(problems[:20])
    return reference


# Each scenario runs in its own dataset, so ids can repeat between scenarios.
def dedup_scenarios():
    return [
        # pair within seconds; server first pairs too
        [
            pixel(event("Purchase", T0, "o1"), sent_at=T0),
            capi([event("Purchase", T0, "o1")], T0 + 30),
        ],
        [capi([event("Lead", T0, "l1")], T0), pixel(event("Lead", T0, "l1"), sent_at=T0 + 100)],
        # exactly 48 h is within; 48 h + 1 s is outside
        [pixel(event("Lead", T0, "l1"), sent_at=T0), capi([event("Lead", T0, "l1")], T0 + H48)],
        [pixel(event("Lead", T0, "l1"), sent_at=T0), capi([event("Lead", T0, "l1")], T0 + H48 + 1)],
        # another event name never pairs
        [pixel(event("Lead", T0, "x1"), sent_at=T0), capi([event("Purchase", T0, "x1")], T0 + 5)],
        # retries: a timeout, its retry (repeat), one after more than 48 h
        [
            capi([event("Lead", T0, "r1")], T0, status=None),
            capi([event("Lead", T0, "r1")], T0 + 600),
            capi([event("Lead", T0, "r1")], T0 + 600 + H48 + 1),
        ],
        # repeat beats twin; twins at the same second
        [
            pixel(event("Lead", T0, "r2"), sent_at=T0),
            capi([event("Lead", T0, "r2")], T0 + 10),
            capi([event("Lead", T0, "r2")], T0 + 20),
            pixel(event("Lead", T0, "r3"), sent_at=T0),
            capi([event("Lead", T0, "r3"), event("Lead", T0, "r3")], T0),
        ],
        # fallback: by fbp when the browser came first; by external_id exactly 48 h later;
        # not when the server came first or at the very same second; never for browsers
        [
            pixel(event("Purchase", T0, "b1", fbp=F1), sent_at=T0),
            capi([event("Purchase", T0, None, fbp=F1)], T0 + 60),
        ],
        [
            pixel(event("Purchase", T0, "b1", external_id="u1"), sent_at=T0),
            capi([event("Purchase", T0, "s1", external_id="u1")], T0 + H48),
        ],
        [
            pixel(event("Purchase", T0, "b1", external_id="u1"), sent_at=T0),
            capi([event("Purchase", T0, "s1", external_id="u1")], T0 + H48 + 1),
        ],
        [
            capi([event("Purchase", T0, None, fbp=F1)], T0),
            pixel(event("Purchase", T0, "b1", fbp=F1), sent_at=T0 + 60),
        ],
        [
            pixel(event("Purchase", T0, "b2", fbp=F2), sent_at=T0),
            capi([event("Purchase", T0, None, fbp=F2)], T0),
        ],
        [
            pixel(event("Purchase", T0, None, fbp=F1), sent_at=T0),
            pixel(event("Purchase", T0, None, fbp=F1), sent_at=T0 + 5),
        ],
        # a rejected twin does not count
        [
            pixel(event("Lead", T0, "j1"), sent_at=T0),
            capi(
                [event("Lead", T0, "j1")], T0 + 5, status=400, error={"code": 100, "message": "bad"}
            ),
        ],
        # no sent_at: defaults to event_time
        [
            {"kind": "pixel_event", "dataset_id": "?", "event": event("Lead", T0, "m1")},
            capi([event("Lead", T0 + H48, "m1")], T0 + H48 + 1),
        ],
    ]


def test_dedup_edge_cases(engine, tmp_path, config):
    records = []
    for i, scenario in enumerate(dedup_scenarios()):
        for record in scenario:
            records.append({**record, "dataset_id": f"d{i}"})
    ingest([write_jsonl(tmp_path / "log.jsonl", records)], engine, config=config)
    reference = check(engine, config)
    dedup = reference["overall"]["dedup"]
    assert dedup["browser"]["deduplicated"] and dedup["server"]["same_channel_repeat"]
    assert dedup["server"]["fallback_deduplicated"] == 2
    assert dedup["browser"]["outside_48h"] and dedup["browser"]["missing_event_id"] == 2


def test_coverage_double_counts_parameters_and_delivery(engine, tmp_path, config):
    web = {"extra": {"event_source_url": "https://s.test/p?utm_campaign=web"}}
    records = [
        # coverage: b1 id twin; b2's twin rejected; b3 covered by fbp only (server earlier);
        # b4 by external_id only, server 48 h later; b5 alone
        pixel(event("Lead", T0, "b1", fbp=F1, **web), sent_at=T0),
        capi([event("Lead", T0, "b1", fbp=F1, **web)], T0 + 10),
        pixel(event("Lead", T0, "b2"), sent_at=T0),
        capi([event("Lead", T0, "b2")], T0 + 10, status=500, error={"code": 2, "message": "x"}),
        pixel(event("Lead", T0, "b3", fbp=F2), sent_at=T0),
        capi([event("Lead", T0, "s3", fbp=F2, external_id="u3")], T0 - 100),
        pixel(event("Lead", T0, "b4", external_id="u4"), sent_at=T0),
        capi([event("Lead", T0, "s4", external_id="u4")], T0 + H48),
        pixel(event("Lead", T0, "b5", external_id="u5"), sent_at=T0),
        # likely double counts: exactly 5 min, 301 s, another person, server earlier
        capi([event("Purchase", T0 + 300, None, em=E1)], T0 - 10),
        pixel(event("Purchase", T0, "o5", em=E1), sent_at=T0),
        capi([event("Purchase", T0 + 301, None, em=E2)], T0 - 10),
        pixel(event("Purchase", T0, "o6", em=E2), sent_at=T0),
        capi([event("Contact", T0 - 120, None, external_id="u9")], T0 - 200),
        pixel(event("Contact", T0, "o7", external_id="u9"), sent_at=T0),
        # parameters: valid, invalid, plaintext, lists, rejected combinations, ms timestamps
        capi(
            [
                event("Lead", T0, "p1", em=[E1], ph="+1 650 555 1212", fbc="fb.1.1700000000.AbC"),
                event("Lead", T0, "p2", em=["not-a-hash", E1], fbc="fb.1.1700000000000.AbC"),
                event("Lead", T0, "p3", em="x@example.com", client_ip_address="10.0.0.300"),
                event("Lead", T0, "p4", fn=sha("anna"), ge=sha("f")),
                event("Lead", T0 * 1000, "p5", em=E1, client_ip_address="203.0.113.1"),
            ],
            T0 + 5,
        ),
        capi(
            [event("Lead", T0, "p6", fn="Zed", client_user_agent="UA", client_ip_address="::1")],
            T0 + 5,
            status=400,
            error={"code": 100, "message": "bad"},
        ),
        # delivery: token errors, shortfall, timeout, test events
        capi(
            [event("Lead", T0, "d1"), event("Lead", T0, "d2")],
            T0,
            status=400,
            error={"code": 190, "error_subcode": 463, "message": "Session has expired"},
        ),
        capi([event("Lead", T0, "d3")], T0, status=403, error={"code": 200, "message": "Perm"}),
        capi([event("Lead", T0, f"d{i}") for i in (5, 6, 7)], T0, events_received=2),
        capi([event("Lead", T0, "d8")], T0, status=None),
        capi([event("Lead", T0, "t1"), event("Lead", T0, "t2")], T0, test_event_code="TEST1"),
        # freshness: stale, future, 60 s tolerated, a bare event without sent_at
        capi([event("Schedule", T0, "f1")], T0 + 8 * 86400),
        capi([event("Schedule", T0 + 61, "f2")], T0),
        capi([event("Schedule", T0 + 60, "f3")], T0),
        event("Schedule", T0 - 9 * 86400, "bare"),
        "{broken",
    ]
    ingest([write_jsonl(tmp_path / "log.jsonl", records)], engine, config=config)
    reference = check(engine, config)
    overall = reference["overall"]
    # exactly 5 min (em), server event_time earlier (external_id), and s3 (b3's fbp)
    assert overall["dedup"]["likely_double_counted"] == 3
    assert overall["rejected_combination"] >= 1 and overall["event_time_in_ms"] == 1
    assert overall["freshness"]["stale_over_7d"] == 1 and overall["freshness"]["future"] == 5
    assert reference["rejected_records"] == 1
    keys = {d["key"] for d in reference["diagnostics"]}
    assert {"token_errors", "events_received_shortfall", "unanswered_batches"} <= keys


def test_diagnostics_thresholds(engine, tmp_path, config):
    records = []
    for i in range(12):  # low coverage: 12 Pixel AddToCart, 3 with a server twin
        records.append(pixel(event("AddToCart", T0 + i, f"a{i}"), sent_at=T0 + i))
        if i < 3:
            records.append(capi([event("AddToCart", T0 + i, f"a{i}")], T0 + i + 5))
    for i in range(12):  # parameter gap: campaign "b" drops em that "a" sends
        for campaign, ud in (("a", {"em": E1, "fbp": F1}), ("b", {"fbp": F1})):
            records.append(
                capi(
                    [
                        event(
                            "Lead",
                            T0 + i,
                            f"{campaign}{i}",
                            custom_data={"campaign": campaign},
                            **ud,
                        )
                    ],
                    T0 + i + (7200 if campaign == "b" else 5),  # and "b"'s stage is late
                )
            )
    ingest([write_jsonl(tmp_path / "log.jsonl", records)], engine, config=config)
    reference = check(engine, config)
    keys = {d["key"] for d in reference["diagnostics"]}
    assert {"low_event_coverage", "parameter_gap"} <= keys


def test_empty_store(engine, config):
    from dashboard.store.database import create_schema

    create_schema(engine)
    reference = check(engine, config)
    assert reference["overall"]["server_sent"] == 0


def test_bundled_sample(tmp_path, config):
    engine = make_engine(f"duckdb:///{tmp_path / 'sample.duckdb'}")
    ingest([SAMPLE_LOG_PATH], engine)
    reference = check(engine, config)
    engine.dispose()
    # Every block, diagnostic and number was compared: thousands of them.
    assert count_numbers(reference) > 3000
    assert len(reference["by_campaign"]) >= 11 and reference["diagnostics"]


def test_generated_sample_on_every_backend(engine, tmp_path, config):
    # A smaller log from the same generator: the row stores' import is slower.
    log = tmp_path / "sample.jsonl.gz"
    write_sample_log(log, seed=7, target_events=3000)
    ingest([log], engine)
    reference = check(engine, config)
    assert reference["overall"]["server_sent"] and reference["diagnostics"]
