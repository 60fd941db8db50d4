"""The oracle's integrity rules: dashboard.quality.integrity's four rules in pandas.

Owns the pandas computation of the integrity findings - reused_event_id,
mismatched_twin_parameter, channel_stopped and transformed_event_id - as the report's
dicts (key, severity, affected, total, share, and the parameter or event_name named),
in the order `integrity_findings` emits them. It reads the rules from that module's
docstrings and thresholds (imported, as diagnostics.py imports diagnostics'), and
computes from the oracle's loaded events and its own dedup statuses: the store's
integrity queries, dedup_status and id_twin_48h columns are never read.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from dashboard.core.definitions import DEDUP_WINDOW_S
from dashboard.quality.integrity import (
    AFFIX_MIN_CHARS,
    MISMATCH_MIN_PAIRS,
    MISMATCH_MIN_SHARE,
    REUSE_CRITICAL_SHARE,
    REUSE_MIN_INSTANCES,
    STOP_MIN_EVENTS,
    STOP_MIN_EXPECTED,
    STOP_MIN_GAP_DAYS,
    TWIN_PARAMETERS,
)

# The importer's per-event columns the rules need beyond the other blocks': the raw
# event_time (a retry keeps it; a reused id gets new ones) and the IP and user agent
# as the importer's fingerprints (twins compare them, never the plain values).
INTEGRITY_COLUMNS = ("event_time_raw", "ip_fp", "ua_fp")
# Parameter -> the loaded column twins compare.
TWIN_COLUMNS = {"fbp": "fbp", "client_ip_address": "ip_fp", "client_user_agent": "ua_fp"}
_ID_KEY = ["dataset_id", "event_name", "event_id"]


def integrity_findings(found: Any, frame: pd.DataFrame, values: pd.DataFrame) -> None:
    """Add the four rules' findings to `found` (tests.oracle.diagnostics.Findings), in
    the report's order: reuse, twin mismatches, channel stops, transformed ids."""
    accepted = frame["delivery"].ne("rejected").to_numpy()
    server = frame["channel"].eq("server").to_numpy()
    keys = _id_keys(frame)
    _reused_ids(found, frame, keys, accepted, server)
    _mismatched_twins(found, frame, values, accepted)
    _channel_stops(found, frame, accepted)
    _transformed_ids(found, frame, keys, accepted, server)


def _id_keys(frame: pd.DataFrame) -> np.ndarray:
    """One integer per (dataset, event_name, event_id) by row, -1 without an event_id."""
    dataset = frame["dataset_id"].cat.codes.to_numpy().astype(np.int64)
    event_name = frame["event_name"].cat.codes.to_numpy().astype(np.int64)
    name = dataset * len(frame["event_name"].cat.categories) + event_name
    event_id, ids = pd.factorize(frame["event_id"])
    return np.where(event_id >= 0, name * (len(ids) + 1) + event_id, -1)


def _plain(frame: pd.DataFrame, mask: np.ndarray, columns: list[str]) -> pd.DataFrame:
    """The rows of `mask`, categories as plain strings (merges and groups on values)."""
    out = frame.loc[mask, columns].copy()
    for column in columns:
        if isinstance(out[column].dtype, pd.CategoricalDtype):
            out[column] = out[column].astype(object)
    return out


# ---------------------------------------------------------------------------
# 1. One event_id reused by many different events
def _reused_ids(
    found: Any, frame: pd.DataFrame, keys: np.ndarray, accepted: np.ndarray, server: np.ndarray
) -> None:
    """Per channel, a (dataset, event_name, event_id) of accepted events with at least
    REUSE_MIN_INSTANCES distinct raw event_times is reused; affected: its events, of the
    accepted events with an id. Critical when the reused server events are over
    REUSE_CRITICAL_SHARE of the accepted server events."""
    with_id = accepted & (keys >= 0)
    # Only a key seen REUSE_MIN_INSTANCES times on both channels together can be reused
    # on one: the distinct count runs on those few.
    codes = pd.factorize(keys[with_id])[0]
    rows = np.flatnonzero(with_id)[np.bincount(codes)[codes] >= REUSE_MIN_INSTANCES]
    per_key = (
        pd.DataFrame(
            {"key": keys[rows] * 2 + server[rows], "raw": frame["event_time_raw"].to_numpy()[rows]}
        )
        .groupby("key")["raw"]
        .agg(["size", "nunique"])
    )
    reused = per_key[per_key["nunique"] >= REUSE_MIN_INSTANCES]
    if reused.empty:
        return
    on_server = reused.index.to_numpy() % 2 == 1  # key * 2 + 1: the server's
    server_events = int(reused.loc[on_server, "size"].sum())
    slice_server = int((accepted & server).sum())
    share = server_events / slice_server if slice_server else 0
    severity = "critical" if share > REUSE_CRITICAL_SHARE else "warning"
    found.add("reused_event_id", severity, int(reused["size"].sum()), int(with_id.sum()))


# ---------------------------------------------------------------------------
# 2. Browser/server twins whose fbp, client IP or user agent differ
def _mismatched_twins(
    found: Any, frame: pd.DataFrame, values: pd.DataFrame, accepted: np.ndarray
) -> None:
    """Pairs: a deduplicated server event and the one deduplicated browser event of its
    (dataset, event_name, event_id) - keys with several are left out, no guessing - sent
    within 48 h. Per parameter: pairs where both carry it, and where they differ; a
    finding from MISMATCH_MIN_PAIRS differing pairs and MISMATCH_MIN_SHARE of those."""
    columns = [*_ID_KEY, "sent_at", *TWIN_COLUMNS.values()]
    deduplicated = "dedup__{}__deduplicated"
    browsers = _plain(frame, values[deduplicated.format("browser")].to_numpy() & accepted, columns)
    browsers = browsers[~browsers.duplicated(_ID_KEY, keep=False)]
    servers = _plain(frame, values[deduplicated.format("server")].to_numpy() & accepted, columns)
    pairs = servers.merge(browsers, on=_ID_KEY, suffixes=("_s", "_b"))
    pairs = pairs[(pairs["sent_at_s"] - pairs["sent_at_b"]).abs() <= DEDUP_WINDOW_S]
    for parameter in TWIN_PARAMETERS:
        mine, theirs = pairs[f"{TWIN_COLUMNS[parameter]}_s"], pairs[f"{TWIN_COLUMNS[parameter]}_b"]
        both = mine.notna() & theirs.notna()
        compared, differing = int(both.sum()), int((both & (mine != theirs)).sum())
        if differing >= MISMATCH_MIN_PAIRS and differing >= MISMATCH_MIN_SHARE * compared:
            found.add(
                "mismatched_twin_parameter", "warning", differing, compared, parameter=parameter
            )


# ---------------------------------------------------------------------------
# 3. A channel that stops while the other continues
def _channel_stops(found: Any, frame: pd.DataFrame, accepted: np.ndarray) -> None:
    """Per (dataset, event_name) with STOP_MIN_EVENTS accepted events on each channel:
    one channel's last UTC day is STOP_MIN_GAP_DAYS or more before the other's, which is
    the slice's last day, and at its ratio to the other channel before then it would have
    sent STOP_MIN_EXPECTED events since. Affected: the other channel's events after the
    silent one's last day, of the other's events. Browser-silent first, then by
    (dataset, event_name)."""
    rows = _plain(frame, accepted, ["dataset_id", "event_name", "channel"])
    rows["day"] = np.floor(frame.loc[accepted, "event_time"].to_numpy() / 86400).astype(np.int64)
    if rows.empty:
        return
    per = rows.groupby(["dataset_id", "event_name", "channel"])["day"].agg(["size", "max"])
    slice_end = int(per["max"].max())
    channels: dict[tuple[str, str], dict[str, tuple[int, int]]] = {}
    for (dataset_id, event_name, channel), (events, last) in per.iterrows():
        channels.setdefault((dataset_id, event_name), {})[channel] = (int(events), int(last))
    for (dataset_id, event_name), seen in sorted(channels.items()):
        if len(seen) < 2 or min(events for events, _ in seen.values()) < STOP_MIN_EVENTS:
            continue
        for silent, other in (("browser", "server"), ("server", "browser")):
            (silent_events, silent_last), (other_events, other_last) = seen[silent], seen[other]
            if other_last != slice_end or silent_last > other_last - STOP_MIN_GAP_DAYS:
                continue
            since = int(
                (
                    (rows["dataset_id"] == dataset_id)
                    & (rows["event_name"] == event_name)
                    & (rows["channel"] == other)
                    & (rows["day"] > silent_last)
                ).sum()
            )
            before = other_events - since
            expected = since * silent_events / before if before > 0 else np.inf
            if expected >= STOP_MIN_EXPECTED:
                found.add("channel_stopped", "critical", since, other_events, event_name=event_name)


# ---------------------------------------------------------------------------
# 4. Twins that miss each other by a transformed event_id or event_name casing
def _transformed_ids(
    found: Any, frame: pd.DataFrame, keys: np.ndarray, accepted: np.ndarray, server: np.ndarray
) -> None:
    """Accepted events with an event_id and no event_id twin (other channel, same
    dataset, event_name and event_id, within 48 h) on both sides. A server event is
    affected when such a browser event of its dataset, sent within 48 h, has either the
    same event_id and an event_name differing only by case, or the same lower-cased
    event_name and fbp or external_id and an event_id one of the two ids starts or ends
    with (the shorter AFFIX_MIN_CHARS or more). Per server event_name, of its accepted
    server events; most affected first."""
    with_id = accepted & (keys >= 0)
    missed = with_id & ~_id_twins(frame, keys, with_id, server)
    columns = ["dataset_id", "event_name", "event_id", "fbp", "external_id", "sent_at"]
    sides = {}
    for channel, mask in (("s", missed & server), ("b", missed & ~server)):
        side = _plain(frame, mask, columns).assign(row=np.flatnonzero(mask))
        sides[channel] = side.assign(name_key=side["event_name"].str.lower())
    s, b = sides["s"], sides["b"]

    def pairs(on: list[str]) -> pd.DataFrame:
        merged = s.dropna(subset=on).merge(b.dropna(subset=on), on=on, suffixes=("_s", "_b"))
        return merged[(merged["sent_at_s"] - merged["sent_at_b"]).abs() <= DEDUP_WINDOW_S]

    casing = pairs(["dataset_id", "event_id", "name_key"])
    affected = [casing.loc[casing["event_name_s"] != casing["event_name_b"], "row_s"]]
    for person in ("fbp", "external_id"):
        by_person = pairs(["dataset_id", "name_key", person])
        affixed = [
            _affixed(mine, theirs)
            for mine, theirs in zip(by_person["event_id_s"], by_person["event_id_b"], strict=True)
        ]
        affected.append(by_person.loc[np.array(affixed, dtype=bool), "row_s"])
    rows = np.unique(np.concatenate([a.to_numpy(dtype=np.int64) for a in affected]))
    if not len(rows):
        return
    names = frame["event_name"].astype(object)
    counts = names.iloc[rows].value_counts()
    totals = names[accepted & server].value_counts()
    for name, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        found.add("transformed_event_id", "warning", count, totals[name], event_name=name)


def _id_twins(
    frame: pd.DataFrame, keys: np.ndarray, with_id: np.ndarray, server: np.ndarray
) -> np.ndarray:
    """Per event (by row): an accepted event of the other channel with the same dataset,
    event_name and event_id was sent within 48 h, before or after it."""
    twins = np.zeros(len(frame), dtype=bool)
    rows = np.flatnonzero(with_id)
    keyed = pd.DataFrame(
        {"key": keys[rows], "sent_at": frame["sent_at"].to_numpy()[rows], "row": rows}
    ).sort_values("sent_at", kind="stable")
    on_server = server[keyed["row"].to_numpy()]
    for mine, theirs in ((on_server, ~on_server), (~on_server, on_server)):
        if not mine.any() or not theirs.any():
            continue
        nearest = pd.merge_asof(
            keyed[mine],
            keyed[theirs].rename(columns={"row": "twin"}),
            on="sent_at",
            by="key",
            direction="nearest",
            tolerance=float(DEDUP_WINDOW_S),
        )
        twins[nearest.loc[nearest["twin"].notna(), "row"].to_numpy()] = True
    return twins


def _affixed(a: str, b: str) -> bool:
    """One id starts or ends with the other, longer one, the shorter AFFIX_MIN_CHARS or
    more characters."""
    short, long = (a, b) if len(a) < len(b) else (b, a)
    return (
        len(short) >= AFFIX_MIN_CHARS
        and len(long) > len(short)
        and (long.startswith(short) or long.endswith(short))
    )
