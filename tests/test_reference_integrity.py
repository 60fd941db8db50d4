"""The pandas reference reproduces the integrity findings (tests/oracle/integrity.py).

Each integrity rule of dashboard.quality.integrity gets a hand-built log that triggers
it next to its near misses - exactly at and just past REUSE_MIN_INSTANCES,
REUSE_CRITICAL_SHARE, MISMATCH_MIN_PAIRS, MISMATCH_MIN_SHARE, STOP_MIN_EVENTS,
STOP_MIN_GAP_DAYS, STOP_MIN_EXPECTED, AFFIX_MIN_CHARS and the 48 h window - on every
backend, plus a diverse-profile sample. Every test asserts that the report equals the
reference and that the integrity findings are there in both, with the numbers worked
out by hand: an oracle that found nothing could not pass.
"""

from __future__ import annotations

import pytest
from conftest import write_jsonl
from logkit import T0, capi, event, pixel

from dashboard.core.filters import Filters
from dashboard.ingest import ingest
from dashboard.outputs.report import build_report
from dashboard.quality.integrity import (
    AFFIX_MIN_CHARS,
    MISMATCH_MIN_PAIRS,
    MISMATCH_MIN_SHARE,
    REUSE_CRITICAL_SHARE,
    REUSE_MIN_INSTANCES,
    STOP_MIN_EVENTS,
    STOP_MIN_EXPECTED,
    STOP_MIN_GAP_DAYS,
)
from dashboard.sample.generator import write_sample_log
from tests.oracle.reference import compare_reports, reference_report

DAY = 86400
H48 = 48 * 3600
UA = "Mozilla/5.0 (X11; Linux x86_64) Firefox/131.0"
REJECTED = {"status": 400, "error": {"code": 100, "message": "bad"}}


def integrity_found(engine, tmp_path, config, records, key: str) -> list[tuple]:
    """Ingest `records`; assert report == reference and that both have `key` findings;
    return them as (severity, affected, total, named field) in the report's order."""
    ingest([write_jsonl(tmp_path / "log.jsonl", records)], engine, config=config)
    report = build_report(engine, Filters(), config)
    reference = reference_report(engine, config)
    problems = compare_reports(report, reference)
    assert not problems, "\n".join(problems[:20])
    found = {}
    for name, result in (("report", report), ("reference", reference)):
        found[name] = [
            (d["severity"], d["affected"], d["total"], d.get("parameter") or d.get("event_name"))
            for d in result["diagnostics"]
            if d["key"] == key
        ]
        assert found[name], f"no {key} finding in the {name}"
    assert found["report"] == found["reference"]
    return found["reference"]


def server(ev: dict, delay: int = 30, **kw) -> dict:
    """A CAPI request carrying one event, sent `delay` s after its event_time."""
    return capi([ev], ev["event_time"] + delay, **kw)


def fbp(n: int) -> str:
    return f"fb.1.1763632800000.{1000 + n}"


# ---------------------------------------------------------------------------
# 1. One event_id reused by many different events
@pytest.mark.parametrize(
    ("filler", "severity"),
    [
        (89, "warning"),  # 5 reused of 100 accepted server events: exactly 5%, not over
        (88, "critical"),  # 5 of 99
    ],
)
def test_reused_event_id(engine, tmp_path, config, filler, severity):
    assert REUSE_MIN_INSTANCES == 3 and REUSE_CRITICAL_SHARE == 0.05  # the numbers below
    records = [
        # Server Purchase 'test': exactly 3 distinct event_times, and two retries of the
        # last one: 5 events. One more in a batch Meta rejected: not counted.
        *[server(event("Purchase", T0 + k, "test")) for k in (0, 10, 20)],
        server(event("Purchase", T0 + 20, "test"), delay=600),
        server(event("Purchase", T0 + 20, "test"), delay=1200),
        server(event("Purchase", T0 + 30, "test"), **REJECTED),
        # Browser Purchase 'test', 3 times: the other channel's key, reused too.
        *[pixel(event("Purchase", T0 + k, "test")) for k in (1, 11, 21)],
        # Near misses: 2 times and a retry; 2 browser times; 3 times over two datasets.
        server(event("Purchase", T0 + 100, "o-2")),
        server(event("Purchase", T0 + 101, "o-2")),
        server(event("Purchase", T0 + 101, "o-2"), delay=900),
        *[pixel(event("Lead", T0 + k, "L")) for k in (300, 301)],
        server(event("Lead", T0 + 400, "M")),
        server(event("Lead", T0 + 401, "M")),
        server(event("Lead", T0 + 402, "M"), dataset="2"),
        *[server(event("PageView", T0 + 500 + i, f"pv-{i}")) for i in range(filler)],
    ]
    found = integrity_found(engine, tmp_path, config, records, "reused_event_id")
    # 5 server + 3 browser events, of 5 + 3 + 3 + 2 + 3 + filler accepted with an id (of
    # which 5 + 3 + 3 + filler on the server)
    assert found == [(severity, 8, 16 + filler, None)]


# ---------------------------------------------------------------------------
# 2. Browser/server twins whose fbp, client IP or user agent differ
def _mismatch_log(ip: tuple[int, int], ua: tuple[int, int]) -> list:
    """120 deduplicated twin pairs: fbp on both sides of the first 100 (the first 10
    differ), the IP (compared, differing) and user agent likewise; and a key with two
    deduplicated Pixel events, whose pairs are never compared."""
    records = []
    for i in range(120):
        t = T0 + 60 * i
        browser, sent = {}, {}
        if i < 100:
            browser["fbp"] = fbp(i)
            sent["fbp"] = fbp(500 + i) if i < 10 else fbp(i)
        else:
            sent["fbp"] = fbp(i)  # the Pixel's is missing: not compared
        if i < ip[0]:
            browser["client_ip_address"] = f"203.0.113.{i}"
            sent["client_ip_address"] = "198.51.100.1" if i < ip[1] else f"203.0.113.{i}"
        if i < ua[0]:
            browser["client_user_agent"] = UA
            sent["client_user_agent"] = "python-requests/2.32" if i < ua[1] else UA
        records += [
            pixel(event("Purchase", t, f"p{i}", **browser)),
            server(event("Purchase", t, f"p{i}", **sent)),
        ]
    # The same key twice, 3 days apart, each time with a twin: all four deduplicated,
    # but which Pixel event is whose twin is a guess, so neither pair counts.
    for k in (0, 3):
        t = T0 + k * DAY
        records += [
            pixel(event("Purchase", t, "amb", fbp=fbp(900), client_user_agent=UA)),
            server(event("Purchase", t, "amb", fbp=fbp(901 + k), client_user_agent="curl")),
        ]
    return records


@pytest.mark.parametrize(
    ("ip", "ua", "expected"),
    [
        # fbp: exactly MISMATCH_MIN_PAIRS differing, exactly MISMATCH_MIN_SHARE of pairs;
        # IP: one pair short; user agent: 11 of 111 is just under 10%.
        ((20, 9), (111, 11), [("warning", 10, 100, "fbp")]),
        # All three; ties (same share and count) in the report's parameter order.
        (
            (100, 10),
            (111, 12),
            [
                ("warning", 12, 111, "client_user_agent"),
                ("warning", 10, 100, "fbp"),
                ("warning", 10, 100, "client_ip_address"),
            ],
        ),
    ],
)
def test_mismatched_twin_parameter(engine, tmp_path, config, ip, ua, expected):
    assert MISMATCH_MIN_PAIRS == 10 and MISMATCH_MIN_SHARE == 0.10  # the numbers above
    records = _mismatch_log(ip, ua)
    assert integrity_found(engine, tmp_path, config, records, "mismatched_twin_parameter") == (
        expected
    )


# ---------------------------------------------------------------------------
# 3. A channel that stops while the other continues
def _days(name: str, channel: str, days: list[int], dataset: str = "1", **kw) -> list:
    """One event of `name` per entry of `days` (day 0: T0's UTC day), unique ids."""
    out = []
    for j, day in enumerate(days):
        t = T0 + day * DAY + 60 * j
        ev = event(name, t, f"{name}-{dataset}-{channel}-{j}")
        out.append(pixel(ev, dataset=dataset) if channel == "browser" else server(ev, **kw))
        if channel == "server":
            out[-1]["dataset_id"] = dataset
    return out


def test_channel_stopped(engine, tmp_path, config):
    assert (STOP_MIN_EVENTS, STOP_MIN_GAP_DAYS, STOP_MIN_EXPECTED) == (10, 2, 5.0)
    ten = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]  # 10 events on days 0-2
    records = [
        # Stop (dataset 1): the server's last day is exactly 2 days before the slice's
        # last (day 4); at 10 server per 10 browser events it would have sent exactly 5
        # since. A rejected server event on day 4 does not count.
        *_days("Stop", "browser", [*ten, 3, 3, 4, 4, 4]),
        *_days("Stop", "server", ten),
        *_days("Stop", "server", [4], **REJECTED),
        # Stop (dataset 2): the Pixel stops after day 1, the server goes on; one of its
        # events with a millisecond event_time, on day 4 all the same.
        *_days("Stop", "browser", [0] * 6 + [1] * 6, dataset="2"),
        *_days("Stop", "server", [0] * 5 + [1] * 5 + [2, 3, 3, 4, 4], dataset="2"),
        capi([event("Stop", (T0 + 4 * DAY + 7) * 1000, "Stop-ms")], T0 + 4 * DAY + 60, "2"),
        # Since: the Pixel only began after the server's last day (infinitely expected).
        *_days("Since", "browser", [3] * 5 + [4] * 5),
        *_days("Since", "server", ten),
        # Near misses: 4 expected since; a 1-day gap; 9 server events.
        *_days("Short", "browser", [*ten, 3, 3, 4, 4]),
        *_days("Short", "server", ten),
        *_days("Gap1", "browser", [*ten, 3, 3, 4, 4, 4]),
        *_days("Gap1", "server", [*ten[:-1], 3]),
        *_days("Few", "browser", [*ten, 3, 3, 4, 4, 4, 4, 4]),
        *_days("Few", "server", ten[:9]),
    ]
    found = integrity_found(engine, tmp_path, config, records, "channel_stopped")
    assert found == [
        ("critical", 10, 10, "Since"),
        ("critical", 6, 16, "Stop"),  # dataset 2: 6 of 16 server events since day 1
        ("critical", 5, 15, "Stop"),  # dataset 1
    ]


# ---------------------------------------------------------------------------
# 4. Twins that miss each other by a transformed event_id or event_name casing
def test_transformed_event_id(engine, tmp_path, config):
    assert AFFIX_MIN_CHARS == 4  # the ids below
    f1, f2, f3, f4, f5 = (fbp(n) for n in range(1, 6))
    records = [
        # Casing: within seconds, and exactly 48 h apart; not at 48 h + 1 s.
        pixel(event("Purchase", T0, "o1")),
        server(event("purchase", T0, "o1")),
        pixel(event("Purchase", T0, "o2")),
        server(event("purchase", T0, "o2"), delay=H48),
        pixel(event("Purchase", T0, "o3")),
        server(event("purchase", T0, "o3"), delay=H48 + 1),
        # A server event with a real twin is no near miss, whatever else is around.
        pixel(event("Purchase", T0, "o4")),
        pixel(event("purchase", T0, "o4")),
        server(event("purchase", T0, "o4")),
        # A server event Meta rejected is not counted, nor in the total.
        pixel(event("Purchase", T0, "o5")),
        server(event("purchase", T0, "o5"), **REJECTED),
        # Affix by fbp: a 4-character id with a prefix added; not a 3-character one.
        pixel(event("Lead", T0, "abcd", fbp=f1)),
        server(event("Lead", T0, "lead-abcd", fbp=f1)),
        pixel(event("Lead", T0, "xyz", fbp=f2)),
        server(event("Lead", T0, "xyz-1", fbp=f2)),
        # ... not for another person, nor in another dataset.
        pixel(event("Lead", T0, "qwerty", fbp=f3)),
        server(event("Lead", T0, "qwerty-2", fbp=f4)),
        pixel(event("Lead", T0, "zxcvb", fbp=f5), dataset="2"),
        server(event("Lead", T0, "zxcvb-2", fbp=f5)),
        # Affix by external_id, the server's id the shorter, its name another case.
        pixel(event("Lead", T0 + 5, "order-778899", external_id="u7")),
        server(event("lead", T0 + 5, "order-77", external_id="u7")),
        # One server event missing two Pixel events (casing, and affix by fbp): once.
        pixel(event("Purchase", T0 + 50, "ord9")),
        pixel(event("purchase", T0 + 51, "ord9-b", fbp=f5)),
        server(event("purchase", T0 + 50, "ord9", fbp=f5)),
        # No event_id: never a near miss.
        pixel(event("Purchase", T0 + 60, None, fbp=f5)),
        server(event("purchase", T0 + 60, None, fbp=f5)),
    ]
    found = integrity_found(engine, tmp_path, config, records, "transformed_event_id")
    assert found == [
        ("warning", 1, 1, "lead"),  # order-77
        ("warning", 3, 6, "purchase"),  # o1, o2, ord9 of o1-o4, ord9 and the one without id
        ("warning", 1, 4, "Lead"),  # lead-abcd
    ]


def test_non_ascii_event_name_casing(engine, tmp_path, config, request):
    # A report bug, not the oracle's: the casing rule compares SQL lower(event_name),
    # which folds only ASCII on SQLite and on PostgreSQL under the C locale, so there
    # 'Änderung'/'änderung' is no near miss while DuckDB (and the oracle) find it.
    if engine.dialect.name != "duckdb":
        request.applymarker(
            pytest.mark.xfail(strict=True, reason="SQL lower() folds ASCII only here")
        )
    records = [pixel(event("Änderung", T0, "o1")), server(event("änderung", T0, "o1"))]
    found = integrity_found(engine, tmp_path, config, records, "transformed_event_id")
    assert found == [("warning", 1, 1, "änderung")]


# ---------------------------------------------------------------------------
# A diverse-profile sample: twins whose fbp differ (the benchmark's finding)
def test_diverse_sample(engine, tmp_path, config):
    log = tmp_path / "diverse.jsonl.gz"
    write_sample_log(log, seed=7, target_events=3000, profile="diverse")
    ingest([log], engine, config=config)
    report = build_report(engine, Filters(), config)
    reference = reference_report(engine, config)
    problems = compare_reports(report, reference)
    assert not problems, "\n".join(problems[:20])
    for result in (report, reference):
        parameters = {
            d.get("parameter")
            for d in result["diagnostics"]
            if d["key"] == "mismatched_twin_parameter"
        }
        assert "fbp" in parameters
