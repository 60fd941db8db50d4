"""A straightforward pandas reference for the full JSON report (benchmarks, issue #6).

What a user would otherwise reach for: load the events into a DataFrame and do the
group-bys in memory, the way an analyst would in a notebook. `python -m benchmarks.bench`
times it against `dashboard.outputs.report.build_report` and checks that both give the same
numbers; tests/test_reference.py checks the same on the bundled sample and hand-built logs.

How it loads the data
    The store's `events` table, as the importer parsed it, one row per event, with only
    the columns the report needs: DuckDB through its own Arrow result
    (`con.sql(...).to_arrow_table().to_pandas()`, the fast path an analyst on DuckDB
    uses), SQLite and PostgreSQL with `pd.read_sql`. The quarantine is counted with one
    `SELECT count(*)`. It does *not* re-parse the log files: per-line parsing and
    validation (JSON, user_data value checks, campaign and stage resolution, ms
    timestamps, plaintext detection) is the importer's job, benchmarked as ingest; the
    reference starts from its per-event output, exactly as the SQL report does.

What it computes itself (nothing derived across events is read from the store)
    * dedup: every accepted event's status (same_channel_repeat, deduplicated,
      outside_48h, fallback_deduplicated, server_only, browser_only, missing_event_id)
      with sort + grouped shift/ffill/bfill over (dataset, event_name, event_id), the
      fbp/external_id fallback with `merge_asof`; event_id twins within 48 h (event
      coverage), coverage with any key, likely double counts (5 min on event_time by
      fbp, external_id or hashed email) - the store's dedup_status, id_twin_48h,
      covered_any_key and likely_double columns are never loaded;
    * per event: valid-parameter sets from the p_<param> statuses, Meta's rejected
      combinations, the EMQ estimate from the config's points (pair bonus, cap);
    * every block of the report (overall, by_event_name, by_campaign, by_funnel_stage,
      by_dataset):
      volumes, test/ms/unhashed/rejected-combination counts, coverage rates, EMQ estimate
      and tier, parameter coverage, invalid and unhashed counts per parameter, dedup
      statuses per channel, likely double counts, lag median/p90 (linear interpolation,
      as percentile_cont), stale and future counts, upload frequency;
    * period.data_first_day/data_last_day, rejected_records;
    * diagnostics (tests/oracle/diagnostics.py): key, severity, affected, total, share
      and the event/campaign/stage/parameter they name, in the report's order
      (batch-level delivery summary, lag per stage, parameter gaps per dataset/action
      source/event/campaign and the integrity rules, tests/oracle/integrity.py, in
      pandas too), with the report's rule thresholds.

Not covered (not numbers, or constants): generated_at, report_version, schema_version, the config echo,
the diagnostics' prose (name, how_to_fix), and Meta's numbers beside ours (meta,
meta_snapshots, emq_calibration, emq_estimate_calibrated: from Meta's snapshots, not from
the events; tests/test_meta_quality.py works them out by hand). The report is for `Filters()` (everything),
so previous_overall is null in both and the period bounds are null.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dashboard.core.config import Config
from dashboard.core.definitions import (
    DEDUP_STATUSES,
    DEDUP_WINDOW_S,
    DOUBLE_COUNT_WINDOW_S,
    FUTURE_TOLERANCE_S,
    STALE_AFTER_S,
)
from dashboard.core.params import PARAMS, REJECTED_COMBINATIONS
from dashboard.store.database import events, quarantine

# Re-exported: the benchmark and tests/test_reference.py call them as reference's.
from tests.oracle.compare import NOT_COMPARED as NOT_COMPARED
from tests.oracle.compare import compare_reports as compare_reports
from tests.oracle.compare import count_numbers as count_numbers

# Re-exported: tests/test_meta_errors.py checks the oracle's token codes.
from tests.oracle.diagnostics import diagnostics
from tests.oracle.integrity import INTEGRITY_COLUMNS

# Per-event output of the importer; nothing computed across events.
LOADED_COLUMNS = (
    "source_id",
    "line_no",
    "idx",
    "channel",
    "dataset_id",
    "event_name",
    "event_id",
    "event_time",
    "event_time_in_ms",
    "sent_at",
    "sent_at_defaulted",
    "action_source",
    "is_test",
    "delivery",
    "error_code",
    "batch_size",
    "events_received",
    "campaign",
    "funnel_stage",
    "fbp",
    "external_id",
    "em_hash",
    "has_unhashed_pii",
    *[f"p_{p}" for p in PARAMS],
    *INTEGRITY_COLUMNS,
)


# ---------------------------------------------------------------------------
# Loading
def load_events(engine: Engine) -> pd.DataFrame:
    """The events table (LOADED_COLUMNS) as a DataFrame, with plain dtypes."""
    query = sa.select(*[events.c[c] for c in LOADED_COLUMNS])
    with engine.connect() as connection:
        if engine.dialect.name == "duckdb":
            raw = connection.connection.dbapi_connection
            sql = ", ".join(LOADED_COLUMNS)
            frame = raw.sql(f"SELECT {sql} FROM events").to_arrow_table().to_pandas()
        else:
            frame = pd.read_sql(query, connection)
    for column in (
        "event_time_in_ms",
        "sent_at_defaulted",
        "is_test",
        "has_unhashed_pii",
    ):
        frame[column] = frame[column].astype(bool)
    for column in ("event_time", "sent_at"):
        frame[column] = frame[column].astype("float64")
    # Few distinct values: categories, as any pandas user would load them.
    for column in (
        "channel",
        "delivery",
        "dataset_id",
        "event_name",
        "action_source",
        "campaign",
        "funnel_stage",
    ):
        frame[column] = frame[column].astype("category")
    for column in ("error_code", "batch_size", "events_received"):
        frame[column] = pd.to_numeric(frame[column]).astype("float64")
    return frame


def load_rejected_records(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(sa.select(sa.func.count()).select_from(quarantine)).scalar())


def reference_report(engine: Engine, config: Config) -> dict[str, Any]:
    """Load the store and compute the report in pandas (what the benchmark times)."""
    return compute_report(load_events(engine), load_rejected_records(engine), config)


# ---------------------------------------------------------------------------
# Dedup, in memory
def _codes(series: pd.Series) -> np.ndarray:
    """Integer codes of a string column (-1 for null): cheap to sort, group and merge on."""
    return pd.factorize(series)[0].astype(np.int64)


def dedup_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """dedup_status, id_twin_48h, covered_any_key, likely_double for every event (by row)."""
    server = frame["channel"].eq("server").to_numpy()
    accepted = frame["delivery"].ne("rejected").to_numpy()
    keys = _dedup_keys(frame)
    status, id_twin = _id_statuses(frame, keys, server, accepted)
    browsers = keys[accepted & ~server]
    _fallback_statuses(keys, browsers, status, server, accepted)

    # 3. Coverage with any key: a server event with the same event_name and fbp or
    #    external_id within 48 h, either order.
    servers = keys[accepted & server]
    covered_any = id_twin.copy()
    for key in ("fbp", "external_id"):
        covered_any[_match(browsers, servers, key, "sent_at", "nearest", DEDUP_WINDOW_S)] = True

    # 4. Likely double counts: a server event that escaped dedup while the same person's
    #    browser event of the same name happened within 5 minutes (event_time).
    code = _STATUS_CODE
    escaped = keys[
        accepted
        & server
        & np.isin(status, [code["server_only"], code["missing_event_id"], code["outside_48h"]])
    ]
    double = np.zeros(len(frame), dtype=bool)
    for key in ("fbp", "external_id", "em_hash"):
        double[_match(escaped, browsers, key, "event_time", "nearest", DOUBLE_COUNT_WINDOW_S)] = (
            True
        )

    return pd.DataFrame(
        {
            "dedup_status": status,  # index into DEDUP_STATUSES, -1 for rejected events
            "id_twin_48h": id_twin,
            "covered_any_key": covered_any & accepted & ~server,
            "likely_double": double,
        },
        index=frame.index,
    )


_STATUS_CODE = {name: i for i, name in enumerate(DEDUP_STATUSES)}


def _dedup_keys(frame: pd.DataFrame) -> pd.DataFrame:
    """A narrow numeric copy: one code per (dataset, event_name), one per key value."""
    return pd.DataFrame(
        {
            "name": frame.groupby(["dataset_id", "event_name"], observed=True).ngroup().to_numpy(),
            "event_id": _codes(frame["event_id"]),
            "fbp": _codes(frame["fbp"]),
            "external_id": _codes(frame["external_id"]),
            "em_hash": _codes(frame["em_hash"]),
            "sent_at": frame["sent_at"].to_numpy(),
            "event_time": frame["event_time"].to_numpy(),
        }
    )


def _id_statuses(
    frame: pd.DataFrame, keys: pd.DataFrame, server: np.ndarray, accepted: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """1. event_id twins and repeats: each (dataset, event_name, event_id) in arrival order
    (sent_at, then position in the log). Returns the status codes (-1: not decided by
    event_id, or rejected) and the id_twin_48h flags."""
    n = len(frame)
    code = _STATUS_CODE
    sent = keys["sent_at"].to_numpy()
    status = np.full(n, -1, dtype=np.int8)  # index into DEDUP_STATUSES; -1: rejected
    id_twin = np.zeros(n, dtype=bool)
    with_id = np.flatnonzero(accepted & (keys["event_id"].to_numpy() >= 0))
    gid = keys["name"].to_numpy()[with_id] * (n + 1) + keys["event_id"].to_numpy()[with_id]
    order = np.lexsort(
        (
            frame["idx"].to_numpy()[with_id],
            frame["line_no"].to_numpy()[with_id],
            frame["source_id"].to_numpy()[with_id],
            sent[with_id],
            gid,
        )
    )
    rows = with_id[order]
    g = pd.Series(gid[order])
    s_sent = pd.Series(sent[rows])
    s_server = pd.Series(server[rows])
    prev_same = s_sent.groupby([g, s_server]).shift(1)

    def around(values: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series]:
        before = values.groupby(g).shift(1).groupby(g).ffill()
        after = values.groupby(g).shift(-1).groupby(g).bfill()
        count = values.groupby(g).transform("count")
        return before, after, count

    prev_b, next_b, n_b = around(s_sent.where(~s_server))
    prev_s, next_s, n_s = around(s_sent.where(s_server))
    srv = s_server.to_numpy()
    prev_other = np.where(srv, prev_b, prev_s)
    next_other = np.where(srv, next_b, next_s)
    n_other = np.where(srv, n_b, n_s)
    with np.errstate(invalid="ignore"):
        repeat = (s_sent - prev_same).to_numpy() <= DEDUP_WINDOW_S
        twin = ((s_sent.to_numpy() - prev_other) <= DEDUP_WINDOW_S) | (
            (next_other - s_sent.to_numpy()) <= DEDUP_WINDOW_S
        )
    id_twin[rows] = twin
    id_status = np.select(
        [repeat, twin, n_other > 0],
        [code["same_channel_repeat"], code["deduplicated"], code["outside_48h"]],
        default=-1,
    )
    decided = id_status >= 0
    status[rows[decided]] = id_status[decided]
    return status, id_twin


def _fallback_statuses(
    keys: pd.DataFrame,
    browsers: pd.DataFrame,
    status: np.ndarray,
    server: np.ndarray,
    accepted: np.ndarray,
) -> None:
    """2. Fallback (server only): a browser event with the same event_name and fbp or
    external_id arrived strictly earlier, within 48 h. Then every accepted event not
    decided yet gets its status (in place)."""
    code = _STATUS_CODE
    # Accepted server events that event_id did not decide.
    undecided = accepted & server & (status < 0)
    fallback = np.zeros(len(keys), dtype=bool)
    for key in ("fbp", "external_id"):
        hit = _match(
            keys[undecided], browsers, key, "sent_at", "backward", DEDUP_WINDOW_S, exact=False
        )
        fallback[hit] = True
    no_status = accepted & (status < 0)
    has_id = keys["event_id"].to_numpy() >= 0
    status[no_status & fallback] = code["fallback_deduplicated"]
    rest = no_status & ~fallback
    status[rest & has_id & server] = code["server_only"]
    status[rest & has_id & ~server] = code["browser_only"]
    status[rest & ~has_id] = code["missing_event_id"]


def _match(
    left: pd.DataFrame,
    right: pd.DataFrame,
    key: str,
    on: str,
    direction: str,
    tolerance: float,
    *,
    exact: bool = True,
) -> np.ndarray:
    """Row positions of `left` rows with a `right` row of the same dataset, event_name
    and `key` whose `on` lies within `tolerance` in `direction` (inclusive)."""
    lhs = left.loc[left[key] >= 0, ["name", key, on]]
    rhs = right.loc[right[key] >= 0, ["name", key, on]]
    if lhs.empty or rhs.empty:
        return np.array([], dtype=np.int64)
    lhs = lhs.assign(_row=lhs.index.to_numpy()).sort_values(on, kind="stable")
    rhs = rhs.assign(_hit=True).sort_values(on, kind="stable")
    merged = pd.merge_asof(
        lhs,
        rhs,
        on=on,
        by=["name", key],
        direction=direction,
        tolerance=tolerance,
        allow_exact_matches=exact,
    )
    return merged.loc[merged["_hit"].eq(True), "_row"].to_numpy()


# ---------------------------------------------------------------------------
# Per-event values and blocks
def per_event(frame: pd.DataFrame, config: Config) -> pd.DataFrame:
    """One column per counted quantity (0/1, or the EMQ score), plus lag and group keys."""
    dedup = dedup_columns(frame)
    server = frame["channel"].eq("server").to_numpy()
    browser = ~server
    accepted = frame["delivery"].ne("rejected").to_numpy()
    statuses = np.stack([frame[f"p_{p}"].to_numpy() for p in PARAMS], axis=1)
    valid = statuses == 1
    n_valid = valid.sum(axis=1)

    points = np.zeros(len(frame))
    for i, param in enumerate(PARAMS):
        weight = config.emq_points.get(param, 0.0)
        if weight:
            points = points + np.where(valid[:, i], weight, 0.0)
    ip, ua = PARAMS.index("client_ip_address"), PARAMS.index("client_user_agent")
    points = points + np.where(valid[:, ip] & valid[:, ua], config.emq_pair_points, 0.0)
    rejected_combo = np.zeros(len(frame), dtype=bool)
    for combo in REJECTED_COMBINATIONS:
        outside = [i for i, p in enumerate(PARAMS) if p not in combo]
        rejected_combo |= ~valid[:, outside].any(axis=1)
    rejected_combo &= n_valid > 0
    score = np.where(
        rejected_combo,
        0.0,
        np.minimum(points, config.emq_cap) * (10.0 / config.emq_cap),
    )

    lag_known = server & ~frame["sent_at_defaulted"].to_numpy()
    lag = frame["sent_at"].to_numpy() - frame["event_time"].to_numpy()
    status = dedup["dedup_status"].to_numpy()
    cols: dict[str, Any] = {
        "dataset_id": frame["dataset_id"].array,
        "event_name": frame["event_name"].array,
        "campaign": frame["campaign"].array,
        "funnel_stage": frame["funnel_stage"].array,
        "browser_events": browser & accepted,
        "server_events": server & accepted,
        "server_rejected_by_meta": server & ~accepted,
        "server_sent": server,
        "test_events": server & frame["is_test"].to_numpy(),
        "server_without_event_id": server & accepted & frame["event_id"].isna().to_numpy(),
        "covered": browser & accepted & dedup["id_twin_48h"].to_numpy(),
        "covered_any_key": browser & accepted & dedup["covered_any_key"].to_numpy(),
        "emq_sum": np.where(server, score, 0.0),
        "unhashed_pii": server & frame["has_unhashed_pii"].to_numpy(),
        "rejected_combination": server & rejected_combo,
        "event_time_in_ms": server & frame["event_time_in_ms"].to_numpy(),
        "likely_double_counted": server & accepted & dedup["likely_double"].to_numpy(),
        "lag": np.where(lag_known, lag, np.nan),
        "stale_over_7d": lag_known & (lag > STALE_AFTER_S),
        "future": lag_known & (-lag > FUTURE_TOLERANCE_S),
    }
    for i, param in enumerate(PARAMS):
        cols[f"valid__{param}"] = server & valid[:, i]
        cols[f"invalid__{param}"] = server & (statuses[:, i] >= 2)
        cols[f"unhashed__{param}"] = server & (statuses[:, i] == 3)
    for channel, mask in (("browser", browser), ("server", server)):
        for i, s in enumerate(DEDUP_STATUSES):
            cols[f"dedup__{channel}__{s}"] = mask & (status == i)
    # Server events that cannot have a Pixel twin: another action_source, or a stage
    # configured as server-only (events without an action_source are website events).
    source = frame["action_source"]
    by_design = server & (
        (source.notna() & ~source.isin(config.pixel_action_sources)).to_numpy()
        | frame["funnel_stage"].isin(config.server_only_stages).to_numpy()
    )
    for i, s in enumerate(DEDUP_STATUSES):
        cols[f"by_design__{s}"] = by_design & (status == i)
    # Newest times of accepted events (NaN elsewhere): maxima, not sums.
    event_time = frame["event_time"].to_numpy(dtype=float)
    cols["latest__event"] = np.where(accepted, event_time, np.nan)
    cols["latest__browser"] = np.where(accepted & browser, event_time, np.nan)
    cols["latest__server"] = np.where(accepted & server, event_time, np.nan)
    sent_at = frame["sent_at"].to_numpy(dtype=float)
    cols["latest__sent"] = np.where(accepted, sent_at, np.nan)
    cols["latest__server_sent"] = np.where(accepted & server, sent_at, np.nan)
    cols["day"] = pd.to_datetime(frame["event_time"], unit="s", utc=True).dt.date.array
    return pd.DataFrame(cols, index=frame.index)


_LATEST = (
    "latest__event",
    "latest__browser",
    "latest__server",
    "latest__sent",
    "latest__server_sent",
)


_GROUP_KEYS = ("dataset_id", "event_name", "campaign", "funnel_stage")


def _block_table(values: pd.DataFrame, by: str | None) -> pd.DataFrame:
    """Sums and lag quantiles, one row per group (one row, index None, overall)."""
    counted = values.drop(columns=[*_GROUP_KEYS, "lag", "day", *_LATEST])
    if by is None:
        sums = counted.sum().to_frame().T
        sums.index = [None]
        lag = values["lag"].dropna()
        sums["median_lag_s"] = lag.quantile(0.5) if len(lag) else np.nan
        sums["p90_lag_s"] = lag.quantile(0.9) if len(lag) else np.nan
        for column in _LATEST:
            sums[column] = values[column].max()
        sums["days"] = [set(values["day"])]
        return sums
    # Group on the category codes (much faster than on the categorical itself), then
    # label the rows with the values.
    keys = values[by].cat
    codes = keys.codes.to_numpy()
    grouped = counted.groupby(codes)
    # Column by column: one sum over all columns would convert every 0/1 column to int64
    # at once (8 bytes x rows x ~110 columns: gigabytes at 10M events).
    sums = pd.DataFrame({column: grouped[column].sum() for column in counted.columns})
    lags = values["lag"].groupby(codes)
    sums["median_lag_s"] = lags.quantile(0.5)
    sums["p90_lag_s"] = lags.quantile(0.9)
    for column in _LATEST:
        sums[column] = values[column].groupby(codes).max()
    sums["days"] = values["day"].groupby(codes).agg(set)
    sums.index = keys.categories[sums.index]
    return sums


def _rate(num: float, den: float, digits: int = 6) -> float | None:
    return None if den == 0 else round(float(num) / float(den), digits)


def _number(value: Any) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def tier(score: float | None, config: Config) -> str:
    if score is None:
        return "No data"
    shown = round(score, 1)  # the tier of the value as displayed, one decimal
    for name, label in (("great", "Great"), ("good", "Good"), ("ok", "OK")):
        if shown >= config.emq_tiers[name]:
            return label
    return "Poor"


def upload_frequency(median: float | None, config: Config) -> str:
    if median is None:
        return "no data"
    for key, label in (
        ("real_time_max_s", "real time"),
        ("hourly_max_s", "hourly"),
        ("daily_max_s", "daily"),
    ):
        if median <= config.freshness[key]:
            return label
    return "weekly"


def _iso(seconds: Any) -> str | None:
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return None
    moment = datetime.fromtimestamp(float(seconds), tz=UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _block(row: pd.Series, config: Config, period: list | None = None) -> dict[str, Any]:
    def n(name: str) -> int:
        return int(row[name])

    by_design = {s: n(f"by_design__{s}") for s in DEDUP_STATUSES}
    twinnable = sum(n(f"dedup__server__{s}") - by_design[s] for s in DEDUP_STATUSES)
    deduped = sum(
        n(f"dedup__server__{s}") - by_design[s] for s in ("deduplicated", "fallback_deduplicated")
    )
    seen = row["days"] if isinstance(row["days"], set) else set()

    sent, browser = n("server_sent"), n("browser_events")
    median = _number(float(row["median_lag_s"]))
    p90 = _number(float(row["p90_lag_s"]))
    emq = None if sent == 0 else round(float(row["emq_sum"]) / sent, 4)
    return {
        "browser_events": browser,
        "server_events": n("server_events"),
        "server_rejected_by_meta": n("server_rejected_by_meta"),
        "server_sent": sent,
        "test_events": n("test_events"),
        "server_without_event_id": n("server_without_event_id"),
        "event_coverage": _rate(n("covered"), browser),
        "event_coverage_any_key": _rate(n("covered_any_key"), browser),
        "emq_estimate": emq,
        "parameter_coverage": {p: _rate(n(f"valid__{p}"), sent) for p in PARAMS},
        "invalid_parameters": {p: n(f"invalid__{p}") for p in PARAMS},
        "unhashed_parameters": {p: n(f"unhashed__{p}") for p in PARAMS},
        "unhashed_pii": n("unhashed_pii"),
        "rejected_combination": n("rejected_combination"),
        "event_time_in_ms": n("event_time_in_ms"),
        "dedup": {
            "browser": {s: n(f"dedup__browser__{s}") for s in DEDUP_STATUSES},
            "server": {s: n(f"dedup__server__{s}") for s in DEDUP_STATUSES}
            | {"by_design": sum(by_design.values())},
            "likely_double_counted": n("likely_double_counted"),
            "rate": _rate(deduped, twinnable),
        },
        "freshness": {
            "median_lag_s": None if median is None else round(median, 6),
            "p90_lag_s": None if p90 is None else round(p90, 6),
            "stale_over_7d": n("stale_over_7d"),
            "future": n("future"),
            "last_event_at": _iso(row["latest__event"]),
            "last_browser_event_at": _iso(row["latest__browser"]),
            "last_server_event_at": _iso(row["latest__server"]),
            "last_sent_at": _iso(row["latest__sent"]),
            "last_server_sent_at": _iso(row["latest__server_sent"]),
            "days_without_events": [d.isoformat() for d in period or [] if d not in seen],
        },
        "emq_tier": tier(emq, config),
        "upload_frequency": upload_frequency(median, config),
    }


# ---------------------------------------------------------------------------
def compute_report(frame: pd.DataFrame, rejected_records: int, config: Config) -> dict[str, Any]:
    """The report (Filters(): everything) from the loaded events, in pandas."""
    frame = frame.reset_index(drop=True)  # row labels are positions from here on
    values = per_event(frame, config)
    if len(frame):
        first, last = (
            datetime.fromtimestamp(float(t), tz=UTC).date()
            for t in (frame["event_time"].min(), frame["event_time"].max())
        )
        days = [first.isoformat(), last.isoformat()]
        # Whole days of the period, never today or later (today is not over yet).
        last = min(last, datetime.now(tz=UTC).date() - timedelta(days=1))
        period = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    else:
        days = [None, None]
        period = []
    overall_row = _block_table(values, None).iloc[0]
    overall = _block(overall_row, config, period)
    tables = {by: _block_table(values, by) for by in _GROUP_KEYS}
    return {
        "period": {
            "since": None,
            "until": None,
            "data_first_day": days[0],
            "data_last_day": days[1],
            "previous_since": None,
            "previous_until": None,
            "comparison": None,
            "filters": {},
        },
        "overall": overall,
        "previous_overall": None,
        "by_event_name": {
            str(k): _block(row, config, period) for k, row in tables["event_name"].iterrows()
        },
        "by_campaign": {
            str(k): _block(row, config, period) for k, row in tables["campaign"].iterrows()
        },
        "by_funnel_stage": {
            str(k): _block(row, config, period) for k, row in tables["funnel_stage"].iterrows()
        },
        "by_dataset": {
            str(k): _block(row, config, period) for k, row in tables["dataset_id"].iterrows()
        },
        "diagnostics": diagnostics(frame, values, overall, tables["event_name"], config),
        "rejected_records": int(rejected_records),
    }
