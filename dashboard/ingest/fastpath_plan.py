"""The vectorised importer's query: JSON Lines to store rows, one CTE per stage.

Owns the DuckDB query `fastpath.BlockParser` runs on a block of lines, built once per
import from the config and the store's columns, and its record-level stages. In order:

- `rec`: each line read against the record structure, its kind, sent time, dataset and
  response judged (`_records_cte`);
- `batch`: what a record says about its events, as `rows.Envelope`, and whether the
  Python path would read it alike (`_batch_cte`);
- `raw_events`: one row per event of a record (`_raw_events_cte`);
- `kinds`, `parsed`, `reasoned`, `judged`, `statused`: each event's stored values, and
  `ok`, whether the Python path would store exactly these (`fastpath_events`);
- the final select, in the store's column order (`_final_select`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pyarrow as pa

from dashboard.core.config import Config
from dashboard.core.definitions import MAX_TIMESTAMP_S, MIN_TIMESTAMP_S
from dashboard.core.params import (
    EMAIL_IN_TEXT,
    INVALID,
    PARAMS,
    PHONE_IN_TEXT,
    REJECTED_COMBINATIONS,
    SECRET_IN_TEXT,
    UNHASHED,
    VALID,
)
from dashboard.ingest.fastpath_events import event_ctes, event_paths
from dashboard.ingest.fastpath_sql import (
    ASCII_LINE,
    PARAM_REASON_FUNCTION,
    int32,
    is_integer,
    is_null,
    is_plain,
    is_text,
    json_spec,
    leaf_type,
    plain_text_ok,
    quoted,
    text,
)
from dashboard.ingest.rows import ERROR_TEXT_FIELDS

# Lines whose containers are not objects go back (DuckDB would read them as empty).
_NOT_AN_OBJECT = (r'"user_data"\s*:\s*[^{\sn]', r'"custom_data"\s*:\s*[^{\sn]')
# The ISO 8601 shapes of sent_at that DuckDB's TIMESTAMPTZ and Python's fromisoformat
# read alike; any other text goes back.
_ISO = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"(\.[0-9]{3}|\.[0-9]{6})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?"
)

# The record's leaves the query reads (`r` is the record as `_record_spec` reads it).
_SENT = "r.sent_at"
_DATASET = "r.dataset_id"
_ERROR = "r.response.body.error"


def _error_leaf(key: str) -> str:
    """A leaf of Meta's error object, raw JSON (NULL when the error is no object)."""
    return f"json_extract({_ERROR}, '$.{key}')"


@dataclass(frozen=True)
class QueryPlan:
    """The query for one import and the table it joins (event name to funnel stage).
    `sql` reads printable-ASCII lines, `sql_other` the other lines (with the checks
    non-ASCII text needs, `fastpath_sql.is_plain` and `unspaced`)."""

    sql: str
    sql_other: str
    stage_map: pa.Table


def plan_query(config: Config, columns: tuple[str, ...]) -> QueryPlan:
    """The fast path's query, selecting `ok` then `columns` (store column names)."""
    sql = f"""
    WITH {_records_cte(config)},
    {_batch_cte()},
    {_raw_events_cte()},
    {event_ctes(config)}
    SELECT ok, {_final_select(columns)}
    FROM statused LEFT JOIN stage_map ON stage_map.event_name = statused.name_text
    """
    other = sql.replace(ASCII_LINE, "(/*other lines*/ false)")
    return QueryPlan(sql=sql, sql_other=other, stage_map=_stage_map(config))


def _stage_map(config: Config) -> pa.Table:
    return pa.table(
        {
            "event_name": pa.array(list(config.stage_by_event), pa.string()),
            "stage": pa.array([v[:128] for v in config.stage_by_event.values()], pa.string()),
        }
    )


# -- records -------------------------------------------------------------------------


def _record_spec(config: Config) -> str:
    """The from_json structure of a record, as the body of a SQL string literal."""
    event_spec = json_spec(event_paths(config))
    record_spec = {
        **json_spec(["kind", "sent_at", "dataset_id", "event_name"]),
        "event": event_spec,
        "request": {"data": [event_spec], "test_event_code": "JSON"},
        # A raw request body (no kind): {"data": [...], "test_event_code": ...}.
        "data": [event_spec],
        "test_event_code": "JSON",
        # body.error stays raw JSON: a non-object error must not look like an empty one.
        "response": json_spec(["status", "body.events_received", "body.error"]),
    }
    return json.dumps(record_spec).replace("'", "''")


def _kind_text() -> str:
    """The record's kind. A record with no kind key and no event_name key but a data
    list is a raw request body (`eqm_v1.record_batch`); read here as a capi_request whose
    request is the record itself. A present kind or event_name (even null) goes back."""
    kind = "r.kind"
    return (
        f"CASE WHEN {is_text(kind)} THEN {text(kind)}"
        " WHEN r.kind IS NULL AND r.event_name IS NULL AND r.data IS NOT NULL"
        " THEN 'capi_body' END"
    )


def _sent_seconds() -> str:
    """sent_at in seconds (`rows.to_unix_seconds`): integers, milliseconds divided, and
    the ISO 8601 shapes both paths read alike; NULL for anything else."""
    sent_text = text(_SENT)
    sent_number = f"TRY_CAST({_SENT} AS DOUBLE)"
    return (
        f"CASE WHEN {is_integer(_SENT)} THEN"
        f" CASE WHEN {sent_number} > 100000000000 THEN {sent_number} / 1000.0::DOUBLE"
        f" ELSE {sent_number} END"
        f" WHEN {is_text(_SENT)} AND regexp_full_match({sent_text}, '{_ISO}')"
        f" THEN epoch(TRY_CAST({sent_text} AS TIMESTAMPTZ)) END"
    )


def _dataset() -> tuple[str, str]:
    """(value, ok) for `rows.dataset_or`: a text or a non-negative integer, else the
    default; texts the Python path would strip or cut go back."""
    value = (
        f"CASE WHEN {is_text(_DATASET)} THEN coalesce(nullif({text(_DATASET)}, ''),"
        " $dataset_default)"
        f" WHEN {is_integer(_DATASET)} THEN CAST({_DATASET} AS VARCHAR)"
        " ELSE $dataset_default END"
    )
    ok = (
        f"(({is_text(_DATASET)} AND {plain_text_ok(_DATASET, 64)})"
        f" OR ({is_integer(_DATASET)}"
        f" AND NOT starts_with(CAST({_DATASET} AS VARCHAR), '-'))"
        f" OR {leaf_type(_DATASET)} IN ('NULL', 'DOUBLE', 'BOOLEAN', 'OBJECT', 'ARRAY'))"
    )
    return value, ok


def _records_cte(config: Config) -> str:
    """rec: the lines that are JSON with object containers, each read once as a record.
    Lines dropped here are never handled, so they go back to the Python path."""
    dataset_value, dataset_ok = _dataset()
    status, status_ok = int32("r.response.status")
    _, code_ok = int32(_error_leaf("code"))
    _, subcode_ok = int32(_error_leaf("error_subcode"))
    _, received_ok = int32("r.response.body.events_received")
    return f"""
    rec AS (
        SELECT line_no, r,
            {_kind_text()} AS kind_text,
            {_sent_seconds()} AS sent_seconds,
            ({is_null(_SENT)}) AS sent_missing,
            {dataset_value} AS dataset_value,
            {dataset_ok} AS dataset_ok,
            {status} AS http_status,
            ({status_ok} AND {code_ok} AND {subcode_ok} AND {received_ok}
                AND {" AND ".join(_error_text_ok(key) for _, key, _ in ERROR_TEXT_FIELDS)})
                AS response_ok
        FROM (
            SELECT line_no, from_json(line, '{_record_spec(config)}') AS r FROM lines
            WHERE json_valid(line)
                AND NOT regexp_matches(line, '{_NOT_AN_OBJECT[0]}')
                AND NOT regexp_matches(line, '{_NOT_AN_OBJECT[1]}')
        )
    )"""


# -- batches and their events ------------------------------------------------------


def _nonblank(leaf: str) -> str:
    return f"coalesce({is_text(leaf)} AND trim({text(leaf)}) <> '', false)"


def _error_text_ok(key: str) -> str:
    """A plain text of the error object no longer than 500: `rows.error_text` redacts a
    window of 2000 then cuts, which this query's redact-then-cut matches only on short
    texts, and its patterns read non-ASCII digits and spaces as RE2 does not (those go
    back)."""
    leaf = _error_leaf(key)
    return (
        f"NOT coalesce({is_text(leaf)} AND (strlen({text(leaf)}) > 500"
        f" OR NOT {is_plain(text(leaf))}), false)"
    )


def _test_code_ok(leaf: str) -> str:
    """A test_event_code both paths find blank or not alike: DuckDB's trim removes only
    spaces, Python's strip every Unicode space (non-ASCII codes go back)."""
    return f"NOT coalesce({is_text(leaf)} AND NOT {is_plain(text(leaf))}, false)"


def _error_text(key: str, limit: int) -> str:
    """`rows.error_text` of a leaf of the error object: secrets, e-mails, phones
    redacted, cut; NULL for anything but a text."""
    leaf = _error_leaf(key)
    redacted = text(leaf)
    for pattern, placeholder in (
        (SECRET_IN_TEXT, "[secret]"),
        (EMAIL_IN_TEXT, "[e-mail]"),
        (PHONE_IN_TEXT, "[phone]"),
    ):
        redacted = f"regexp_replace({redacted}, '{quoted(pattern)}', '{placeholder}', 'g')"
    return f"CASE WHEN {is_text(leaf)} THEN left({redacted}, {limit}) END"


def _batch_cte() -> str:
    """batch: the envelope of each record (`rows.Envelope`), and `line_ok`, whether the
    Python path would read the record's envelope to the same values."""
    code, _ = int32(_error_leaf("code"))
    subcode, _ = int32(_error_leaf("error_subcode"))
    received, _ = int32("r.response.body.events_received")
    has_error = f"({leaf_type(_ERROR)} = 'OBJECT')"
    rejected = f"({has_error} OR coalesce(http_status >= 400, false))"
    accepted = "coalesce(http_status BETWEEN 200 AND 299, false)"
    error_texts = ",\n            ".join(
        f"CASE WHEN kind_text = 'capi_request' AND {rejected} THEN {_error_text(key, limit)}"
        f" END AS {column}"
        for column, key, limit in ERROR_TEXT_FIELDS
    )
    return f"""
    batch AS (
        SELECT line_no, kind_text, dataset_value,
            coalesce(sent_seconds, 0) AS sent_value, sent_missing,
            CASE kind_text WHEN 'pixel_event' THEN 'browser' ELSE 'server' END AS channel,
            CASE kind_text
                WHEN 'capi_request' THEN {_nonblank("r.request.test_event_code")}
                WHEN 'capi_body' THEN {_nonblank("r.test_event_code")}
                ELSE false END AS is_test,
            CASE WHEN kind_text = 'capi_request' THEN
                CASE WHEN {rejected} THEN 'rejected' WHEN {accepted} THEN 'accepted'
                ELSE 'unknown' END ELSE 'unknown' END AS delivery,
            CASE WHEN kind_text = 'capi_request' THEN http_status END AS http_status,
            CASE WHEN kind_text = 'capi_request' AND {rejected} THEN {code} END AS error_code,
            CASE WHEN kind_text = 'capi_request' AND {rejected} THEN {subcode} END
                AS error_subcode,
            {error_texts},
            CASE kind_text WHEN 'capi_request' THEN len(r.request.data)
                WHEN 'capi_body' THEN len(r.data) END AS batch_size,
            CASE WHEN kind_text = 'capi_request' AND NOT {rejected} AND {accepted}
                THEN {received} END AS events_received,
            (dataset_ok AND response_ok AND {_test_code_ok("r.request.test_event_code")}
                AND {_test_code_ok("r.test_event_code")}
                AND (sent_missing OR sent_seconds BETWEEN {MIN_TIMESTAMP_S} AND {MAX_TIMESTAMP_S})
                AND kind_text IN ('pixel_event', 'capi_request', 'capi_body')
                AND (kind_text IS DISTINCT FROM 'capi_request' OR len(r.request.data) > 0)
                AND (kind_text IS DISTINCT FROM 'capi_body' OR len(r.data) > 0)
            ) AS line_ok,
            CASE kind_text WHEN 'pixel_event' THEN [r.event]
                WHEN 'capi_request' THEN r.request.data
                WHEN 'capi_body' THEN r.data END AS evs
        FROM rec
    )"""


def _raw_events_cte() -> str:
    """raw_events: one row per event of a record, `idx` its position in the record."""
    return """
    raw_events AS (
        SELECT * EXCLUDE (evs), unnest(evs) AS e, generate_subscripts(evs, 1) - 1 AS idx
        FROM batch
    )"""


# -- the rows ------------------------------------------------------------------------------


def _select_expressions() -> dict[str, str]:
    """The SQL of each store column, from the `statused` and `batch` columns."""
    n_valid = " + ".join(f"CAST(p_{p} = {VALID} AS INTEGER)" for p in PARAMS)
    # A rejected combination holds when no parameter outside it is valid.
    combos = [
        " AND ".join(f"p_{p} <> {VALID}" for p in PARAMS if p not in combo) or "true"
        for combo in REJECTED_COMBINATIONS
    ]
    return {
        "source_id": "CAST($source_id AS INTEGER)",
        "line_no": "line_no",
        "idx": "CAST(idx AS INTEGER)",
        "channel": "channel",
        "dataset_id": "dataset_value",
        "event_name": "name_text",
        "event_id": "event_id",
        "event_time_raw": "t_raw",
        "event_time": "t_seconds",
        "event_time_in_ms": "t_raw > 100000000000",
        "event_day": "DATE '1970-01-01' + CAST(floor(t_seconds / 86400.0) AS INTEGER)",
        "sent_at": "CASE WHEN sent_missing THEN t_seconds ELSE sent_value END",
        "sent_at_defaulted": "sent_missing",
        "action_source": "action_source",
        "messaging_channel": "messaging_channel",
        "is_test": "is_test",
        "delivery": "delivery",
        "http_status": "http_status",
        "error_code": "error_code",
        "error_subcode": "error_subcode",
        "error_message": "error_message",
        "error_user_title": "error_user_title",
        "error_user_msg": "error_user_msg",
        "fbtrace_id": "fbtrace_id",
        "batch_size": "CAST(batch_size AS INTEGER)",
        "events_received": "events_received",
        "campaign": "campaign",
        "funnel_stage": "coalesce(explicit_stage, stage_map.stage, $stage_other)",
        "value": "value",
        "currency": "currency",
        "fbp": "fbp",
        "external_id": "external_id",
        "em_hash": "em_hash",
        "person_key": "coalesce(external_id, em_hash, fbp, lead_key, ctwa_key, psid_key)",
        "ip_fp": "ip_fp",
        "ua_fp": "ua_fp",
        "has_unhashed_pii": "has_unhashed_pii",
        "n_valid_params": f"({n_valid})",
        **{f"p_{p}": f"CAST(p_{p} AS SMALLINT)" for p in PARAMS},
        "param_reasons": _param_reasons(),
        **{f"combo_{k}": f"({expr})" for k, expr in enumerate(combos)},
        "order_id": "order_id",
        "lead_id": "lead_key",
    }


def _param_reasons() -> str:
    """`params.format_reasons` of the event: "param:code" for each parameter whose
    status is invalid or unhashed, in PARAMS order. A string value's code is its reason
    `r_p`, computed in SQL; an array's comes from `params.value_reason` (a UDF: arrays are
    rare, and their rule for mixed elements is long). NULL when there is none."""
    parts = ", ".join(
        f"CASE WHEN k_{p} = 'VARCHAR' THEN '{p}:' || CAST(r_{p} AS VARCHAR)"
        f" WHEN p_{p} IN ({INVALID}, {UNHASHED}) THEN '{p}:' || CAST("
        f"{PARAM_REASON_FUNCTION}('{p}', NULL, a_{p}) AS VARCHAR) END"
        for p in PARAMS
    )
    return f"nullif(concat_ws(';', {parts}), '')"


def _final_select(columns: tuple[str, ...]) -> str:
    """The select list, in the store's column order."""
    select_expr = _select_expressions()
    missing = set(columns) - set(select_expr)
    if missing:
        raise RuntimeError(f"fast path does not compute {sorted(missing)}")
    return ",\n        ".join(f"{select_expr[c]} AS {c}" for c in columns)
