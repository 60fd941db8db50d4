"""Integrity rules (dashboard.quality.integrity) on hand-built logs, counts worked out by hand,
on every backend; and the store migration that adds the fingerprint columns."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa
from conftest import write_jsonl
from logkit import T0, capi, event, pixel

from dashboard.core.config import REPO_ROOT
from dashboard.core.filters import Filters
from dashboard.ingest import ingest
from dashboard.ingest.rows import fingerprint
from dashboard.quality import integrity
from dashboard.quality.diagnostics import diagnose
from dashboard.store.database import create_schema, events

DAY = 86400
H = 3600


def load(engine, tmp_path, config, records, name="log.jsonl") -> None:
    ingest([write_jsonl(tmp_path / name, records)], engine, config=config)


def findings(engine, config, key):
    return [d for d in integrity.integrity_findings(engine, Filters(), config) if d.key == key]


def positions(engine, query) -> int:
    with engine.connect() as connection:
        return len(connection.execute(query).all())


def fbp(n: int) -> str:
    return f"fb.1.1763632800000.{1000 + n}"


def server(ev, delay=30, **kw):
    """A CAPI request carrying one event, sent `delay` s after its event_time."""
    return capi([ev], sent_at=ev["event_time"] + delay, **kw)


# ---------------------------------------------------------------------------
# 1. One event_id reused by many different events
def _reuse_log(filler: int) -> list:
    test = [event("Purchase", T0 + k, "test") for k in (0, 10, 20, 30)]
    return [
        # Server Purchase 'test': 4 different events (times), then a retry of the last
        # one (same event_time): 5 events, 4 instances. One more in a batch Meta
        # rejected: not counted.
        *[server(ev) for ev in test],
        server(test[3], delay=600),
        server(event("Purchase", T0 + 40, "test"), status=400, error={"code": 100}),
        # Browser Purchase 'test', 3 instances: the same id reused on the other channel
        # (a second key, the same id).
        *[pixel(event("Purchase", T0 + k, "test")) for k in (1, 11, 21)],
        # Near misses: 2 instances on the browser, a retry with the same time, two re-sends
        # with a regenerated time, and 3 instances split over two datasets.
        *[pixel(event("Lead", T0 + k, "test")) for k in (2, 12)],
        server(event("Purchase", T0 + 100, "o-1")),
        server(event("Purchase", T0 + 100, "o-1"), delay=900),
        server(event("Purchase", T0 + 200, "o-2")),
        server(event("Purchase", T0 + 201, "o-2")),
        pixel(event("Lead", T0 + 300, "L")),
        pixel(event("Lead", T0 + 301, "L")),
        pixel(event("Lead", T0 + 302, "L"), dataset="2"),
        *[server(event("PageView", T0 + 400 + i, f"pv-{i}")) for i in range(filler)],
    ]


@pytest.mark.parametrize(
    ("filler", "severity"),
    [
        (0, "critical"),  # 5 reused of 9 accepted server events
        (100, "warning"),  # 5 of 109: 4.6%, not over 5%
    ],
)
def test_reused_event_id(engine, tmp_path, config, filler, severity):
    load(engine, tmp_path, config, _reuse_log(filler))
    got = integrity.reused_ids(engine, Filters(), config)
    assert got == integrity.ReusedIds(
        ids=1,  # (dataset 1, Purchase, 'test')
        keys=2,  # ... on the server and on the browser
        events=8,  # 5 server + 3 browser
        server_events=5,
        slice_events_with_id=17 + filler,  # 5 + 3 + 2 + 2 + 2 + 3 + filler
        slice_server_events=9 + filler,  # 5 + 2 + 2 + filler
        example=("Purchase", "test", 5),
    )
    assert positions(engine, integrity.reused_id_events(Filters())) == 8
    (found,) = findings(engine, config, "reused_event_id")
    assert found.severity == severity
    assert (found.affected, found.total) == (8, 17 + filler)
    assert found.name == (
        "1 event_id is reused by many different events (8 events, e.g. 'test' on 5 "
        "Purchase events); Meta keeps one per id"
    )
    # A slice without the server's reuse: the browser key alone.
    browser = Filters(channels=("browser",))
    assert integrity.reused_ids(engine, browser, config).events == 3


def test_retries_and_two_resends_are_not_reuse(engine, tmp_path, config):
    records = [
        server(event("Purchase", T0, "o-1")),
        server(event("Purchase", T0, "o-1"), delay=600),  # retry, same event_time
        server(event("Purchase", T0, "o-1"), delay=1200),
        server(event("Purchase", T0 + 5, "o-2")),  # re-sent with a regenerated time, twice
        server(event("Purchase", T0 + 6, "o-2")),
    ]
    load(engine, tmp_path, config, records)
    assert integrity.reused_ids(engine, Filters(), config).events == 0
    assert findings(engine, config, "reused_event_id") == []


# ---------------------------------------------------------------------------
# 2. Browser/server twins whose fbp, client IP or user agent differ
UA = "Mozilla/5.0 (X11; Linux x86_64) Firefox/131.0"


def _pair(i: int, browser_ud: dict, server_ud: dict, gap: int = 60) -> list:
    t = T0 + i * 60
    return [
        pixel(event("Purchase", t, f"p{i}", **browser_ud)),
        capi([event("Purchase", t, f"p{i}", **server_ud)], sent_at=t + gap),
    ]


def _mismatch_log() -> list:
    records = []
    for i in range(20):
        browser = {"fbp": fbp(i), "client_ip_address": f"203.0.113.{i}", "client_user_agent": UA}
        server_ud = dict(browser)
        if i < 18:
            server_ud["client_ip_address"] = "10.0.0.1"  # the server's own address
        if i == 18:  # the same IPv6 written in another case: equal once normalised
            browser["client_ip_address"] = "2001:DB8::12"
            server_ud["client_ip_address"] = "2001:db8::12"
        if i < 12:
            server_ud["fbp"] = fbp(9000 + i)  # generated server-side
        elif i >= 17:
            del server_ud["fbp"]  # not compared
        if i == 0:
            server_ud["client_user_agent"] = f"  {UA} "  # equal once stripped
        if i == 1:
            del server_ud["client_user_agent"]  # not compared
        records += _pair(i, browser, server_ud)
    # Not pairs: a server retry (same_channel_repeat), twins 49 h apart (outside_48h),
    # and a key with two deduplicated browser events 50 h apart (which one is the twin?).
    records.append(
        capi([event("Purchase", T0, "p0", client_ip_address="10.0.0.2")], sent_at=T0 + 600)
    )
    records += _pair(30, {"client_ip_address": "1.1.1.1"}, {"client_ip_address": "2.2.2.2"}, 49 * H)
    for gap in (0, 50 * H):
        t = T0 + 2000 + gap
        records += [
            pixel(event("Purchase", t, "twice", client_ip_address="1.1.1.1")),
            capi([event("Purchase", t, "twice", client_ip_address="9.9.9.9")], sent_at=t + 60),
        ]
    return records


def test_mismatched_twins(engine, tmp_path, config):
    load(engine, tmp_path, config, _mismatch_log())
    got = {m.parameter: (m.compared, m.differing) for m in integrity.mismatched_twins(
        engine, Filters(), config
    )}  # fmt: skip
    assert got == {
        "fbp": (17, 12),  # 3 server events without fbp
        "client_ip_address": (20, 18),
        "client_user_agent": (19, 0),  # 1 server event without it
    }
    ip = integrity.mismatched_twin_events(Filters(), "client_ip_address")
    assert positions(engine, ip) == 18
    found = {d.parameter: d for d in findings(engine, config, "mismatched_twin_parameter")}
    assert set(found) == {"fbp", "client_ip_address"}
    assert found["client_ip_address"].name == (
        "Browser/server twins with different client IP: 18 of 20 pairs (90.0%)"
    )
    assert (found["fbp"].affected, found["fbp"].total) == (12, 17)
    assert "X-Forwarded-For" in found["client_ip_address"].how_to_fix
    assert "_fbp" in found["fbp"].how_to_fix
    # The slice picks the server events: another event name has no pairs.
    other = integrity.mismatched_twins(engine, Filters(event_names=("Lead",)), config)
    assert [m.compared for m in other] == [0, 0, 0]


@pytest.mark.parametrize(
    ("pairs", "differing", "fires"),
    [
        (100, 1, False),  # a dual-stack visitor: IPv4 on the Pixel, IPv6 on the server
        (9, 9, False),  # every pair differs, but only 9
        (101, 10, False),  # 10 pairs, 9.9%
        (100, 10, True),  # 10 pairs, 10%
    ],
)
def test_mismatch_thresholds(engine, tmp_path, config, pairs, differing, fires):
    records = []
    for i in range(pairs):
        ip = f"198.51.100.{i % 250}"
        server_ip = ip if i >= differing else ("2001:db8::7" if differing == 1 else "10.0.0.1")
        records += _pair(i, {"client_ip_address": ip}, {"client_ip_address": server_ip})
    load(engine, tmp_path, config, records)
    (ip,) = [
        m
        for m in integrity.mismatched_twins(engine, Filters(), config)
        if m.parameter == "client_ip_address"
    ]
    assert (ip.compared, ip.differing) == (pairs, differing)
    assert bool(findings(engine, config, "mismatched_twin_parameter")) is fires


def test_fingerprints_are_normalised_and_never_the_value(engine, tmp_path, config):
    records = [
        pixel(event("Lead", T0, "a", client_ip_address=" 2001:DB8::1 ", client_user_agent=UA)),
        pixel(event("Lead", T0, "b", client_ip_address=["bad", "2001:db8::1"])),
        pixel(event("Lead", T0, "c", client_ip_address="999.1.1.1", client_user_agent="null")),
    ]
    load(engine, tmp_path, config, records)
    with engine.connect() as connection:
        got = connection.execute(
            sa.select(events.c.event_id, events.c.ip_fp, events.c.ua_fp).order_by(events.c.line_no)
        ).all()
    ip = fingerprint("2001:db8::1", True)
    assert [tuple(r) for r in got] == [
        ("a", ip, fingerprint(UA, False)),
        ("b", ip, None),  # the first valid element
        ("c", None, None),  # invalid values have no fingerprint
    ]
    assert len(ip) == 16 and ip != "2001:db8::1"


# ---------------------------------------------------------------------------
# 3. A channel that stops while the other continues
def _days(name: str, channel: str, days: range, per_day: int, dataset: str = "1") -> list:
    out = []
    for d in days:
        for k in range(per_day):
            ev = event(name, T0 + d * DAY + k * 600, f"{name}-{channel}-{d}-{k}")
            out.append(
                pixel(ev, dataset=dataset) if channel == "browser" else server(ev, dataset=dataset)
            )
    return out


def _stop_log() -> list:
    return [
        # Purchase: the Pixel stops after day 4 (2025-11-24), the server goes on to day 9.
        *_days("Purchase", "browser", range(0, 5), 3),
        *_days("Purchase", "server", range(0, 10), 2),
        # AddToCart: the server stops after day 6 (2025-11-26).
        *_days("AddToCart", "browser", range(0, 10), 2),
        *_days("AddToCart", "server", range(0, 7), 2),
        # Not stops: a 1-day gap; both channels end before the slice does; a channel with
        # fewer than 10 events; the other dataset's Purchase runs on both to the end.
        *_days("Lead", "browser", range(0, 10), 2),
        *_days("Lead", "server", range(0, 9), 2),
        *_days("ViewContent", "browser", range(0, 6), 2),
        *_days("ViewContent", "server", range(0, 4), 3),
        *_days("Contact", "browser", range(0, 3), 3),
        *_days("Contact", "server", range(0, 10), 2),
        *_days("Purchase", "browser", range(0, 10), 1, dataset="2"),
        *_days("Purchase", "server", range(0, 10), 1, dataset="2"),
        # A sparse name: the browser is silent after day 4, but the server sent only 1
        # event since, where the browser would be expected to send about 1 (10 / 10 x 1).
        *_days("Search", "browser", range(0, 5), 2),
        *_days("Search", "server", range(0, 5), 2),
        *_days("Search", "server", range(9, 10), 1),
    ]


def test_channel_stops(engine, tmp_path, config):
    load(engine, tmp_path, config, _stop_log())
    got = integrity.channel_stops(engine, Filters(), config)
    assert got == [
        # At their ratio before the stop the silent channels would have sent
        # 6 x 14 / 14 = 6 and 10 x 15 / 10 = 15 events since (5 needed).
        integrity.ChannelStop("1", "AddToCart", "server", date(2025, 11, 26), date(2025, 11, 29), 20, 6, 14),
        integrity.ChannelStop("1", "Purchase", "browser", date(2025, 11, 24), date(2025, 11, 29), 20, 10, 15),
    ]  # fmt: skip
    assert (got[0].expected_since, got[1].expected_since) == (6, 15)
    assert positions(engine, integrity.channel_stop_events(Filters(), got[1])) == 10
    found = {d.event_name: d for d in findings(engine, config, "channel_stopped")}
    assert found["Purchase"].name == (
        "Purchase: browser (Pixel) events stopped after 2025-11-24 while server events "
        "continued (10 since)"
    )
    assert found["Purchase"].severity == "critical"
    assert (found["AddToCart"].affected, found["AddToCart"].total) == (6, 20)
    assert "server integration" in found["AddToCart"].how_to_fix
    # Up to day 5, Purchase's browser gap is 1 day and AddToCart's server has not
    # stopped; ViewContent's server, silent after day 3, now has (expected 4 x 12 / 8 = 6).
    got = integrity.channel_stops(engine, Filters(until=date(2025, 11, 25)), config)
    assert [(s.event_name, s.silent, s.last_day, s.events_since) for s in got] == [
        ("ViewContent", "server", date(2025, 11, 23), 4)
    ]


def test_a_one_day_gap_is_no_stop(engine, tmp_path, config):
    load(
        engine,
        tmp_path,
        config,
        [
            *_days("Purchase", "browser", range(0, 9), 2),
            *_days("Purchase", "server", range(0, 10), 2),
        ],
    )
    assert integrity.channel_stops(engine, Filters(), config) == []


def test_the_slice_ends_on_its_last_event_even_one_too_few_to_judge(engine, tmp_path, config):
    # Purchase's Pixel stops after day 4 and its server goes on to day 9: a stop when
    # the slice ends on day 9. One Lead on day 10 (too few events for Lead to be judged)
    # moves the slice's end to day 10, and a server that also went quiet on day 9 is
    # no longer "continuing to the end": no stop.
    purchase = [
        *_days("Purchase", "browser", range(0, 5), 3),
        *_days("Purchase", "server", range(0, 10), 2),
    ]
    load(engine, tmp_path, config, purchase)
    assert [s.event_name for s in integrity.channel_stops(engine, Filters(), config)] == [
        "Purchase"
    ]
    load(engine, tmp_path, config, _days("Lead", "server", range(10, 11), 1), name="lead.jsonl")
    assert integrity.channel_stops(engine, Filters(), config) == []


# ---------------------------------------------------------------------------
# 4. Twins that miss each other by a transformed event_id or event_name casing
def _twins(b_name, b_id, s_name, s_id, t, b_ud, s_ud=None, *, gap=60, s_dataset="1"):
    return [
        pixel(event(b_name, t, b_id, **b_ud)),
        capi([event(s_name, t + gap, s_id, **(b_ud if s_ud is None else s_ud))],
             sent_at=t + gap + 30, dataset=s_dataset),
    ]  # fmt: skip


def _transformed_log() -> list:
    t = [T0 + i * 3600 for i in range(20)]
    return [
        # Found (Purchase: 4 server events): a suffix on the server's id, shared fbp and
        # external_id (two matches, one event); a suffix; a prefix; a prefix matched by
        # external_id alone.
        *_twins("Purchase", "order-1", "Purchase", "order-1-s", t[0], {"fbp": fbp(1), "external_id": "u1"}),
        *_twins("Purchase", "order-2", "Purchase", "order-2-s", t[1], {"fbp": fbp(2)}),
        *_twins("Purchase", "order-3", "Purchase", "S-order-3", t[2], {"fbp": fbp(3)}),
        *_twins("Purchase", "abcd1234", "Purchase", "srv-abcd1234", t[3], {"external_id": "u4"}),
        # Not found: the shorter id has 3 characters; another person; 3 days apart; the
        # browser event already has its twin; a LIKE wildcard in an id; the id in the
        # middle; another dataset.
        *_twins("Purchase", "abc", "Purchase", "abcd", t[4], {"fbp": fbp(5)}),
        *_twins("Purchase", "order-7", "Purchase", "order-7-s", t[5], {"fbp": fbp(6)}, {"fbp": fbp(7)}),
        *_twins("Purchase", "order-8", "Purchase", "order-8-s", t[6], {"fbp": fbp(8)}, gap=3 * DAY),
        *_twins("Purchase", "order-5", "Purchase", "order-5", t[7], {"fbp": fbp(9)}),
        capi([event("Purchase", t[7] + 90, "order-5-s", fbp=fbp(9))], sent_at=t[7] + 120),
        *_twins("Purchase", "ord%", "Purchase", "order-20", t[8], {"fbp": fbp(10)}),
        *_twins("Purchase", "order-9", "Purchase", "x-order-9-y", t[9], {"fbp": fbp(11)}),
        *_twins("Purchase", "order-11", "Purchase", "order-11-s", t[10], {"fbp": fbp(12)}, s_dataset="2"),
        # Casing: found once, and not when 3 days apart.
        *_twins("Lead", "lead-9", "lead", "lead-9", t[11], {}),
        *_twins("Lead", "lead-10", "LEAD", "lead-10", t[12], {}, gap=3 * DAY),
    ]  # fmt: skip


def test_transformed_ids(engine, tmp_path, config):
    load(engine, tmp_path, config, _transformed_log())
    got = integrity.transformed_ids(engine, Filters(), config)
    assert got == [
        # Of 12 accepted server Purchases in the slice (one is dataset 2's).
        integrity.TransformedIds(
            "Purchase", 4, 12, ("affix",), ("Purchase", "order-1", "Purchase", "order-1-s")
        ),
        integrity.TransformedIds("lead", 1, 1, ("casing",), ("Lead", "lead-9", "lead", "lead-9")),
    ]
    assert positions(engine, integrity.transformed_id_events(Filters())) == 5
    found = {d.event_name: d for d in findings(engine, config, "transformed_event_id")}
    assert found["Purchase"].name == (
        "Purchase: 4 server events miss their Pixel twin by a transformed event_id "
        "(e.g. browser 'order-1', server 'order-1-s')"
    )
    assert found["lead"].name == (
        "lead: 1 server event misses its Pixel twin by event_name casing "
        "(e.g. browser 'Lead', server 'lead')"
    )
    assert "eventID" in found["Purchase"].how_to_fix


# ---------------------------------------------------------------------------
def test_diagnose_includes_the_integrity_findings(engine, tmp_path, config):
    load(engine, tmp_path, config, [*_reuse_log(0), *_transformed_log()])
    keys = {d.key for d in diagnose(engine, Filters(), config)}
    assert {"reused_event_id", "transformed_event_id"} <= keys


def test_every_integrity_key_is_documented():
    readme = (REPO_ROOT / "README.md").read_text()
    for key in integrity.DIAGNOSTIC_KEYS:
        assert f"`{key}`" in readme, key


def test_an_old_store_gets_the_new_columns(engine, tmp_path, config):
    record = pixel(event("Lead", T0, "a", client_ip_address="1.2.3.4"))
    load(engine, tmp_path, config, [record], name="old.jsonl")
    # A store written before the fingerprints existed: the same table without them.
    with engine.begin() as connection:
        for column in ("ip_fp", "ua_fp"):
            connection.execute(sa.text(f"ALTER TABLE events DROP COLUMN {column}"))
    create_schema(engine)
    create_schema(engine)  # idempotent
    load(engine, tmp_path, config, [pixel(event("Lead", T0, "b", client_ip_address="1.2.3.4"))])
    with engine.connect() as connection:
        got = connection.execute(
            sa.select(events.c.event_id, events.c.ip_fp).order_by(events.c.event_id)
        ).all()
    assert [tuple(r) for r in got] == [("a", None), ("b", fingerprint("1.2.3.4", True))]
    assert integrity.mismatched_twins(engine, Filters(), config)[1].compared == 0
