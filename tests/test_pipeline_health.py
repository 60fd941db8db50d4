"""indicators.pipeline_health: the newest accepted event and send time per dataset."""

from __future__ import annotations

import math

from conftest import write_jsonl
from logkit import T0, capi, event, pixel

from dashboard.core.filters import Filters
from dashboard.ingest import ingest
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
