"""indicators.pipeline_health: the newest accepted event and send time per dataset."""

from __future__ import annotations

import math

import pandas as pd
from conftest import write_jsonl
from logkit import T0, capi, event, pixel

from dashboard.core.filters import Filters
from dashboard.ingest import ingest
from dashboard.outputs.pipeline_notices import pipeline_notices
from dashboard.store.queries.freshness import PIPELINE_HEALTH_COLUMNS, pipeline_health

REJECTED = {"status": 400, "error": {"code": 100, "message": "Invalid parameter"}}


def health_log() -> list:
    return [
        # Dataset 1: two Pixel events, one accepted and one rejected server event.
        pixel(event("PageView", T0, "a"), sent_at=T0 + 2),
        pixel(event("Purchase", T0 + 300, "b"), sent_at=T0 + 320),
        capi([event("Purchase", T0 + 100, "c")], sent_at=T0 + 160),
        capi([event("Purchase", T0 + 500, "d")], sent_at=T0 + 600, **REJECTED),
        # Dataset 2: only a rejected batch.
        capi([event("Lead", T0 + 900, "e")], sent_at=T0 + 950, dataset="2", **REJECTED),
        # Dataset 3: one server event, sent two hours late.
        capi([event("Lead", T0 + 50, "f")], sent_at=T0 + 7200, dataset="3"),
    ]


def rows(frame) -> dict[str, dict]:
    return {r["dataset_id"]: r for r in frame.to_dict("records")}


def nan_or(value):
    return None if math.isnan(value) else value - T0


def test_pipeline_health_per_dataset(engine, tmp_path, config):
    ingest([write_jsonl(tmp_path / "health.jsonl", health_log())], engine, config=config)
    frame = pipeline_health(engine, Filters())
    assert tuple(frame.columns) == PIPELINE_HEALTH_COLUMNS
    got = {
        name: (
            nan_or(r["last_event_at"]),
            nan_or(r["last_browser_event_at"]),
            nan_or(r["last_server_event_at"]),
            nan_or(r["last_sent_at"]),
            nan_or(r["last_server_sent_at"]),
            r["browser_events"],
            r["server_events"],
        )
        for name, r in rows(frame).items()
    }
    assert got == {
        # Newest accepted event: the Pixel one at +300 (the rejected server event at +500
        # and its send time +600 do not count); newest send: that Pixel event's +320,
        # newest server send: the accepted server event's +160.
        "1": (300, 300, 100, 320, 160, 2, 1),
        # Every event rejected: a row, with nothing received.
        "2": (None, None, None, None, None, 0, 0),
        # Sent two hours after it happened: the pipeline was alive at +7200.
        "3": (50, None, 50, 7200, 7200, 0, 1),
    }
    assert frame["last_event_at"].dtype == float


def test_pipeline_health_follows_the_slice(engine, tmp_path, config):
    ingest([write_jsonl(tmp_path / "health.jsonl", health_log())], engine, config=config)
    server = rows(pipeline_health(engine, Filters(channels=("server",))))
    assert sorted(server) == ["1", "2", "3"]
    # Without the Pixel events, dataset 1's newest is its server event: +100, sent +160.
    assert (server["1"]["last_event_at"] - T0, server["1"]["last_sent_at"] - T0) == (100, 160)
    one = pipeline_health(engine, Filters(datasets=("1",), sent_end_ts=T0 + 200))
    # Sent before +200: the PageView (sent +2) and the server event (sent +160).
    assert list(one["dataset_id"]) == ["1"]
    assert one.loc[0, "last_sent_at"] - T0 == 160
    assert (one.loc[0, "browser_events"], one.loc[0, "server_events"]) == (1, 1)
    empty = pipeline_health(engine, Filters(datasets=("nope",)))
    assert empty.empty and tuple(empty.columns) == PIPELINE_HEALTH_COLUMNS


def _health(*datasets: tuple[str, float | None, float | None]) -> pd.DataFrame:
    """pipeline_health's frame from (dataset, last_sent_at, last_server_sent_at)."""
    return pd.DataFrame(
        [
            {"dataset_id": d, "last_sent_at": sent, "last_server_sent_at": server}
            for d, sent, server in datasets
        ],
        dtype=object,
    ).astype({"last_sent_at": float, "last_server_sent_at": float})


NOW = 1_764_000_000.0  # 24 Nov 2025 16:00 UTC
HOUR = 3600.0


def test_up_to_three_datasets_in_a_state_get_a_notice_each():
    health = _health(
        ("1", NOW - HOUR, NOW - HOUR),  # fine
        ("2", NOW - 30 * HOUR, NOW - 30 * HOUR),  # silent 30 h > 6 h
        ("3", None, None),  # Meta accepted nothing
        ("4", NOW - 2 * HOUR, None),  # Pixel only
    )
    notices = pipeline_notices(health, NOW, 6)
    assert [(n.level, n.text.split(":")[0]) for n in notices] == [
        ("error", "Dataset 3"),
        ("error", "Dataset 2"),
        ("warning", "Dataset 4"),
        ("caption", "Dataset 1"),
    ]
    assert "no server event sent for 30.0 h (last at 23 Nov 2025 10:00 UTC)" in notices[1].text
    assert "longer than the 6 h limit" in notices[1].text


def test_four_or_more_datasets_in_a_state_share_one_notice():
    """30 silent datasets are one alarm naming three and the latest send, not 30 alarms;
    the silence it states is the shortest of theirs."""
    silent = [(f"d{i:02}", NOW - (50 + i) * HOUR, NOW - (50 + i) * HOUR) for i in range(30)]
    fine = [(f"ok{i}", NOW - (i + 1) * HOUR, NOW - (i + 1) * HOUR) for i in range(4)]
    notices = pipeline_notices(_health(*silent, *fine), NOW, 6)
    assert [n.level for n in notices] == ["error", "caption"]
    error, caption = (n.text for n in notices)
    assert error.startswith("30 datasets: no server event sent for 2 days or longer")
    assert "(the latest at 22 Nov 2025 14:00 UTC)" in error  # d00, 50 h before NOW
    assert "d00, d01, d02 and 27 more" in error
    # The quietest of the four fine ones last received 4 h ago.
    assert caption == (
        "4 datasets received events recently; the quietest last received one 4.0 h ago "
        "(24 Nov 2025 12:00 UTC)."
    )


def test_exactly_at_the_limit_is_not_silent():
    notices = pipeline_notices(_health(("1", NOW - 6 * HOUR, NOW - 6 * HOUR)), NOW, 6)
    assert [n.level for n in notices] == ["caption"]
