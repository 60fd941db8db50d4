r"""Vectorised ingest: a block of JSONL lines turned into store rows by one DuckDB query.

Owns the columnar fast path of the importer. The per-record Python code in
`dashboard.ingest` (`build_row` and friends) stays the definition of every stored value;
this module computes the same values for the common, well-formed shape of a line in an
in-memory DuckDB, and hands every line it cannot decide *exactly* like the Python path
back to that path: lines with a byte outside printable ASCII or an escape other than
`\/` (so every text is plain ASCII and Python's and DuckDB's notions of whitespace,
digits and case agree), deep nesting, invalid JSON, a container or field of an
unexpected type, text with edge spaces where the Python path strips, numbers where a
text is expected, values that would be cut to length, bare-event records, the file's
first line, and every event the Python path would quarantine. JSON that orjson refuses
but DuckDB reads (NaN, trailing commas, huge exponents) is read alike by both paths
(see `formats.jsonline.lenient_loads`). `tests/test_fastpath.py` checks that both paths store
identical rows and quarantine on logs built to hit each case, and on random logs.

One known difference is documented rather than handled: when a JSON object repeats a
key, DuckDB's reader keeps the first value and orjson the last (RFC 8259 leaves it
undefined). Either way nothing is lost and no plaintext is stored.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from functools import lru_cache

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dashboard.core.config import Config, _query_value
from dashboard.core.params import (
    _FBC,
    _FBP,
    _PLACEHOLDERS,
    EMAIL_IN_TEXT,
    HASHED_PARAMS,
    PARAMS,
    PHONE_IN_TEXT,
    PLAINTEXT_MARKER,
    REJECTED_COMBINATIONS,
    SECRET_IN_TEXT,
)
from dashboard.ingest.rows import UNKNOWN_DATASET

# Lines whose containers are not objects go back (DuckDB would read them as empty).
_NOT_AN_OBJECT = (r'"user_data"\s*:\s*[^{\sn]', r'"custom_data"\s*:\s*[^{\sn]')
# A JSON array of strings only, as DuckDB writes it back (minified, no escapes).
_STRING_ARRAY = r'\[("[^"]*"(,"[^"]*")*)?\]'
_MAX_OPENERS = 900  # orjson stops at 1024 levels of nesting: leave deep lines to it
_MIN_TS = 946_684_800
_MAX_TS = 4_102_444_800

_SHA = "(strlen({x}) = 64 AND regexp_full_match({x}, '[0-9a-f]{{64}}'))"
_HEX = "(strlen({x}) >= 32 AND regexp_full_match({x}, '[0-9a-fA-F]{{32,}}'))"
_EMAIL = r"regexp_full_match({x}, '[^@\s]+@[^@\s]+\.[^@\s]+')"
_PHONE = (
    r"(regexp_full_match({x}, '[0-9\s()+.\-/]+')"
    " AND strlen(regexp_replace({x}, '[^0-9]', '', 'g')) >= 7)"
)
_PLACEHOLDER = (
    f"(strlen({{x}}) <= {max(map(len, _PLACEHOLDERS))} AND lower({{x}}) IN ("
    + ", ".join(f"'{p}'" for p in sorted(_PLACEHOLDERS))
    + "))"
)


def _sql(pattern: str) -> str:
    """A regex as the body of a SQL string literal."""
    return pattern.replace("'", "''")


def _sql_regex(pattern: str) -> str:
    """A Python `^...$` pattern as the body of a full-match RE2 pattern literal."""
    body = pattern.removeprefix("^").removesuffix("$")
    return body.replace("'", "''")


def _element_status(param: str, x: str) -> str:
    """SQL for `params._scalar_status(param, x)` on a clean ASCII text x."""
    marker = f"starts_with({x}, '{PLAINTEXT_MARKER}')"
    return f"CASE WHEN {marker} THEN 3 ELSE {_value_status(param, x)} END"


def _value_status(param: str, x: str) -> str:

    def f(template: str) -> str:
        return template.format(x=x)

    if param in HASHED_PARAMS:
        return f"CASE WHEN {f(_SHA)} THEN 1 WHEN {f(_PLACEHOLDER)} OR {f(_HEX)} THEN 2 ELSE 3 END"
    if param == "external_id":
        return (
            f"CASE WHEN {f(_PLACEHOLDER)} THEN 2 WHEN {f(_EMAIL)}"
            f" OR (starts_with({x}, '+') AND {f(_PHONE)}) THEN 3 ELSE 1 END"
        )
    if param == "client_ip_address":
        check = f"eqm_ip_ok({x})"
    elif param == "fbc":
        check = f"regexp_full_match({x}, '{_sql_regex(_FBC.pattern)}')"
    elif param == "fbp":
        check = f"regexp_full_match({x}, '{_sql_regex(_FBP.pattern)}')"
    elif param == "lead_id":
        check = f"regexp_full_match({x}, '[0-9]{{15,17}}')"
    elif param in ("page_id", "page_scoped_user_id", "fb_login_id", "ig_account_id"):
        check = f"regexp_full_match({x}, '[0-9]+')"
    else:
        check = f"NOT {f(_SHA)}"
    return f"CASE WHEN {f(_PLACEHOLDER)} THEN 2 WHEN {check} THEN 1 ELSE 2 END"


def _leaf_type(leaf: str) -> str:
    """JSON type of a raw leaf from its first character (DuckDB writes leaves minified);
    only numbers need the parser, to tell integers from doubles."""
    return (
        f"CASE WHEN {leaf} IS NULL THEN 'NULL' ELSE CASE left(CAST({leaf} AS VARCHAR), 1)"
        " WHEN '\"' THEN 'VARCHAR' WHEN '[' THEN 'ARRAY' WHEN '{' THEN 'OBJECT'"
        " WHEN 'n' THEN 'NULL' WHEN 't' THEN 'BOOLEAN' WHEN 'f' THEN 'BOOLEAN'"
        f" ELSE json_type({leaf}) END END"
    )


def _text(leaf: str) -> str:
    """The value of a string leaf. Fast-path lines hold no escapes (bar `\\/`, which
    DuckDB writes back as `/`), so the leaf is the text between two quotes."""
    return f"substr(CAST({leaf} AS VARCHAR), 2, strlen(CAST({leaf} AS VARCHAR)) - 2)"


def _is_text(leaf: str) -> str:
    return f"{_leaf_type(leaf)} = 'VARCHAR'"


def _is_null(leaf: str) -> str:
    return f"{_leaf_type(leaf)} = 'NULL'"


def _unspaced(text: str) -> str:
    """No edge space (the only whitespace a fast-path line's text can hold): strip is a no-op."""
    return f"NOT (starts_with({text}, ' ') OR ends_with({text}, ' '))"


def _plain_text_ok(leaf: str, max_bytes: int) -> str:
    """A text the Python path would keep unchanged: no edge whitespace, not cut."""
    text = _text(leaf)
    return f"({_unspaced(text)} AND strlen({text}) <= {max_bytes})"


def _optional_text(leaf: str, max_bytes: int) -> tuple[str, str]:
    """(value, ok) for `_opt_text`: None, or a text kept as sent; numbers go back."""
    value = f"CASE WHEN {_is_text(leaf)} THEN nullif({_text(leaf)}, '') END"
    ok = f"({_is_null(leaf)} OR ({_is_text(leaf)} AND {_plain_text_ok(leaf, max_bytes)}))"
    return value, ok


def _config_text(leaf: str, max_bytes: int) -> tuple[str, str]:
    """(value, ok) for `config._text`: texts and nothing else; numbers go back."""
    value = f"CASE WHEN {_is_text(leaf)} THEN nullif({_text(leaf)}, '') END"
    kind = _leaf_type(leaf)
    ok = (
        f"({kind} IN ('NULL', 'BOOLEAN', 'OBJECT', 'ARRAY')"
        f" OR ({kind} = 'VARCHAR' AND {_plain_text_ok(leaf, max_bytes)}))"
    )
    return value, ok


def _int32(leaf: str) -> tuple[str, str]:
    """(value, ok) for `_int_or_none`: JSON integers; texts (parsed there) go back."""
    kind = _leaf_type(leaf)
    number = f"TRY_CAST({leaf} AS HUGEINT)"
    value = (
        f"CASE WHEN {kind} IN ('BIGINT', 'UBIGINT') AND abs({number}) < 2147483648"
        f" THEN CAST({number} AS INTEGER) END"
    )
    return value, f"({kind} <> 'VARCHAR')"


def _spec(paths: list[str]) -> dict:
    """A from_json structure holding each dotted path, leaves kept as raw JSON."""
    tree: dict = {}
    for dotted in paths:
        node = tree
        parts = dotted.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node.setdefault(parts[-1], "JSON")
    return tree


def _path(root: str, dotted: str) -> str:
    return root + "".join(f".{json.dumps(part)}" for part in dotted.split("."))


_EVENT_FIELDS = [
    "event_name",
    "event_time",
    "event_id",
    "action_source",
    "messaging_channel",
    "event_source_url",
    *(f"user_data.{param}" for param in PARAMS),
    "custom_data.value",
    "custom_data.currency",
]


@dataclass(frozen=True)
class _Plan:
    sql: str
    stage_map: pa.Table


def _plan(config: Config, columns: tuple[str, ...]) -> _Plan:
    event_paths = list(_EVENT_FIELDS)
    for source in config.campaign_sources:
        if not source.startswith("url:"):
            event_paths.append(source)
    event_paths.append(config.stage_field)
    event_spec = _spec(event_paths)
    record_spec = {
        **_spec(["kind", "sent_at", "dataset_id", "event_name"]),
        "event": event_spec,
        "request": {"data": [event_spec], "test_event_code": "JSON"},
        # A raw request body (no kind): {"data": [...], "test_event_code": ...}.
        "data": [event_spec],
        "test_event_code": "JSON",
        # body.error stays raw JSON: a non-object error must not look like an empty one.
        "response": _spec(["status", "body.events_received", "body.error"]),
    }
    spec_literal = json.dumps(record_spec).replace("'", "''")

    kind = "r.kind"
    # A record with no kind key and no event_name key but a data list is a raw request
    # body (`eqm_v1.record_batch`); read here as a capi_request whose request is the
    # record itself. A present kind or event_name (even null) goes back to Python.
    kind_text = (
        f"CASE WHEN {_is_text(kind)} THEN {_text(kind)}"
        " WHEN r.kind IS NULL AND r.event_name IS NULL AND r.data IS NOT NULL"
        " THEN 'capi_body' END"
    )
    sent = "r.sent_at"
    sent_text = _text(sent)
    iso = (
        r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
        r"(\.[0-9]{3}|\.[0-9]{6})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?"
    )
    sent_number = f"TRY_CAST({sent} AS DOUBLE)"
    sent_seconds = (
        f"CASE WHEN {_leaf_type(sent)} IN ('BIGINT', 'UBIGINT') THEN"
        f" CASE WHEN {sent_number} > 100000000000 THEN {sent_number} / 1000.0::DOUBLE"
        f" ELSE {sent_number} END"
        f" WHEN {_is_text(sent)} AND regexp_full_match({sent_text}, '{iso}')"
        f" THEN epoch(TRY_CAST({sent_text} AS TIMESTAMPTZ)) END"
    )
    dataset = "r.dataset_id"
    dataset_value = (
        f"CASE WHEN {_is_text(dataset)} THEN coalesce(nullif({_text(dataset)}, ''),"
        " $dataset_default)"
        f" WHEN {_leaf_type(dataset)} IN ('BIGINT', 'UBIGINT') THEN CAST({dataset} AS VARCHAR)"
        " ELSE $dataset_default END"
    )
    dataset_ok = (
        f"(({_is_text(dataset)} AND {_plain_text_ok(dataset, 64)})"
        f" OR ({_leaf_type(dataset)} IN ('BIGINT', 'UBIGINT')"
        f" AND NOT starts_with(CAST({dataset} AS VARCHAR), '-'))"
        f" OR {_leaf_type(dataset)} IN ('NULL', 'DOUBLE', 'BOOLEAN', 'OBJECT', 'ARRAY'))"
    )

    def nonblank(leaf: str) -> str:
        return f"coalesce({_is_text(leaf)} AND trim({_text(leaf)}) <> '', false)"

    status, status_ok = _int32("r.response.status")
    error = "r.response.body.error"
    code, code_ok = _int32(f"json_extract({error}, '$.code')")
    subcode, subcode_ok = _int32(f"json_extract({error}, '$.error_subcode')")
    received, received_ok = _int32("r.response.body.events_received")
    message = f"json_extract({error}, '$.message')"
    has_error = f"({_leaf_type(error)} = 'OBJECT')"
    rejected = f"({has_error} OR coalesce(http_status >= 400, false))"
    accepted = "coalesce(http_status BETWEEN 200 AND 299, false)"

    records = f"""
    rec AS (
        SELECT line_no, r,
            {kind_text} AS kind_text,
            {sent_seconds} AS sent_seconds,
            ({_is_null(sent)}) AS sent_missing,
            {dataset_value} AS dataset_value,
            {dataset_ok} AS dataset_ok,
            {status} AS http_status,
            ({status_ok} AND {code_ok} AND {subcode_ok} AND {received_ok}
                AND NOT coalesce({_is_text(message)} AND strlen({_text(message)}) > 500, false))
                AS response_ok
        FROM (
            SELECT line_no, from_json(line, '{spec_literal}') AS r FROM lines
            WHERE json_valid(line)
                AND NOT regexp_matches(line, '{_NOT_AN_OBJECT[0]}')
                AND NOT regexp_matches(line, '{_NOT_AN_OBJECT[1]}')
        )
    ),
    batch AS (
        SELECT line_no, kind_text, dataset_value,
            coalesce(sent_seconds, 0) AS sent_value, sent_missing,
            CASE kind_text WHEN 'pixel_event' THEN 'browser' ELSE 'server' END AS channel,
            CASE kind_text
                WHEN 'capi_request' THEN {nonblank("r.request.test_event_code")}
                WHEN 'capi_body' THEN {nonblank("r.test_event_code")}
                ELSE false END AS is_test,
            CASE WHEN kind_text = 'capi_request' THEN
                CASE WHEN {rejected} THEN 'rejected' WHEN {accepted} THEN 'accepted'
                ELSE 'unknown' END ELSE 'unknown' END AS delivery,
            CASE WHEN kind_text = 'capi_request' THEN http_status END AS http_status,
            CASE WHEN kind_text = 'capi_request' AND {rejected} THEN {code} END AS error_code,
            CASE WHEN kind_text = 'capi_request' AND {rejected} THEN {subcode} END
                AS error_subcode,
            CASE WHEN kind_text = 'capi_request' AND {rejected} AND {_is_text(message)}
                THEN left(regexp_replace(regexp_replace(regexp_replace({_text(message)},
                    '{_sql(SECRET_IN_TEXT)}', '[secret]', 'g'),
                    '{_sql(EMAIL_IN_TEXT)}', '[e-mail]', 'g'), '{_sql(PHONE_IN_TEXT)}',
                    '[phone]', 'g'), 500)
                END AS error_message,
            CASE kind_text WHEN 'capi_request' THEN len(r.request.data)
                WHEN 'capi_body' THEN len(r.data) END AS batch_size,
            CASE WHEN kind_text = 'capi_request' AND NOT {rejected} AND {accepted}
                THEN {received} END AS events_received,
            (dataset_ok AND response_ok AND (sent_missing OR sent_seconds BETWEEN {_MIN_TS}
                AND {_MAX_TS}) AND kind_text IN ('pixel_event', 'capi_request', 'capi_body')
                AND (kind_text IS DISTINCT FROM 'capi_request' OR len(r.request.data) > 0)
                AND (kind_text IS DISTINCT FROM 'capi_body' OR len(r.data) > 0)
            ) AS line_ok,
            CASE kind_text WHEN 'pixel_event' THEN [r.event]
                WHEN 'capi_request' THEN r.request.data
                WHEN 'capi_body' THEN r.data END AS evs
        FROM rec
    ),
    raw_events AS (
        SELECT * EXCLUDE (evs), unnest(evs) AS e, generate_subscripts(evs, 1) - 1 AS idx
        FROM batch
    )"""

    # -- per event ---------------------------------------------------------------
    name_leaf = "e.event_name"
    time_leaf = "e.event_time"
    name_ok = (
        f"({_is_text(name_leaf)} AND {_text(name_leaf)} <> '' AND {_plain_text_ok(name_leaf, 128)})"
    )
    time_value = (
        f"CASE WHEN {_leaf_type(time_leaf)} IN ('BIGINT', 'UBIGINT')"
        f" THEN TRY_CAST({time_leaf} AS BIGINT) END"
    )
    event_id_leaf = "e.event_id"
    event_id_text = _text(event_id_leaf)
    event_id_pii = (
        f"({_EMAIL.format(x=event_id_text)} OR (starts_with({event_id_text}, '+')"
        f" AND {_PHONE.format(x=event_id_text)}))"
    )
    event_id_value = (
        f"CASE WHEN {_is_text(event_id_leaf)} AND {event_id_text} <> '' THEN"
        f" CASE WHEN {event_id_pii} THEN sha256(lower({event_id_text}))"
        f" ELSE {event_id_text} END END"
    )
    event_id_ok = (
        f"({_is_null(event_id_leaf)} OR ({_is_text(event_id_leaf)}"
        f" AND {_unspaced(event_id_text)}"
        f" AND strlen({event_id_text}) <= 256))"
    )
    action_value, action_ok = _optional_text("e.action_source", 32)
    channel_value, channel_ok = _optional_text("e.messaging_channel", 32)

    # Per parameter: k_ its JSON type, s_ the text of a string value, a_ the texts of
    # an array's elements; sc_ / st_ their statuses. Strings (the common case) never
    # become lists.
    param_kinds = []
    param_cols = []
    param_ok = []
    for param in PARAMS:
        leaf = f"e.user_data.{json.dumps(param)}"
        raw = f"CAST({leaf} AS VARCHAR)"
        param_kinds.append(f"{_leaf_type(leaf)} AS k_{param}")
        param_cols.append(
            f"CASE WHEN k_{param} = 'VARCHAR' THEN {_text(leaf)} END AS s_{param},"
            f" CASE WHEN k_{param} = 'ARRAY' AND regexp_full_match({raw}, '{_STRING_ARRAY}')"
            f" THEN CASE WHEN {raw} = '[]' THEN CAST([] AS VARCHAR[])"
            f" ELSE string_split(substr({raw}, 3, strlen({raw}) - 4), '\",\"') END"
            f" END AS a_{param}"
        )
        param_ok.append(
            f"(k_{param} = 'NULL' OR (k_{param} = 'VARCHAR' AND {_unspaced(f's_{param}')})"
            f" OR (k_{param} = 'ARRAY' AND a_{param} IS NOT NULL AND coalesce(list_bool_and("
            f"list_transform(a_{param}, lambda x: {_unspaced('x')})), true)))"
        )

    value_leaf = "e.custom_data.value"
    value_kind = _leaf_type(value_leaf)
    number_text = r"-?[0-9]{1,15}(\.[0-9]{1,15})?"
    value_number = (
        f"CASE WHEN {value_kind} IN ('BIGINT', 'UBIGINT', 'DOUBLE') THEN TRY_CAST({value_leaf}"
        f" AS DOUBLE) WHEN {value_kind} = 'VARCHAR' THEN TRY_CAST({_text(value_leaf)} AS DOUBLE)"
        " END"
    )
    value_value = f"CASE WHEN abs({value_number}) < 1e15 THEN {value_number} END"
    value_ok = (
        f"({value_kind} <> 'VARCHAR' OR regexp_full_match({_text(value_leaf)}, '{number_text}'))"
    )
    currency_leaf = "e.custom_data.currency"
    currency_value = (
        f"CASE WHEN {_is_text(currency_leaf)} AND {_text(currency_leaf)} <> ''"
        f" THEN left(upper({_text(currency_leaf)}), 8) END"
    )
    currency_ok = f"(NOT {_is_text(currency_leaf)} OR {_unspaced(_text(currency_leaf))})"

    campaign_parts = []
    campaign_ok = ["true"]
    for source in config.campaign_sources:
        if source.startswith("url:"):
            url = "e.event_source_url"
            name = source[4:].replace("'", "''")
            campaign_parts.append(
                f"CASE WHEN {_is_text(url)} AND contains({_text(url)}, '?')"
                f" THEN eqm_query_value({_text(url)}, '{name}') END"
            )
        else:
            value, ok = _config_text(_path("e", source), 256)
            campaign_parts.append(value)
            campaign_ok.append(ok)
    stage_value, stage_ok = _config_text(_path("e", config.stage_field), 128)

    events_sql = f"""
    kinds AS (
        SELECT *, {", ".join(param_kinds)} FROM raw_events
    ),
    parsed AS (
        SELECT *, {_text(name_leaf)} AS name_text, {time_value} AS t_raw,
            {", ".join(param_cols)}
        FROM kinds
    ),
    judged AS (
        SELECT *,
            CASE WHEN t_raw > 100000000000 THEN t_raw / 1000.0::DOUBLE
                ELSE CAST(t_raw AS DOUBLE) END AS t_seconds,
            {", ".join(_status_columns(p) for p in PARAMS)}
        FROM parsed
    ),
    statused AS (
        SELECT *,
            {
        ", ".join(
            f"CASE k_{p} WHEN 'VARCHAR' THEN sc_{p} WHEN 'ARRAY' THEN CASE"
            f" WHEN len(st_{p}) = 0 THEN 0 WHEN list_contains(st_{p}, 1) THEN 1"
            f" WHEN list_contains(st_{p}, 3) THEN 3 ELSE 2 END ELSE 0 END AS p_{p}"
            for p in PARAMS
        )
    },
            ({
        " OR ".join(f"coalesce(sc_{p} = 3 OR list_contains(st_{p}, 3), false)" for p in PARAMS)
    })
                AS has_unhashed_pii,
            {_identifier("fbp", allow_phone_shape=True)} AS fbp,
            {_identifier("external_id", allow_phone_shape=False)} AS external_id,
            {_identifier("ctwa_clid", allow_phone_shape=True)} AS ctwa_key,
            {_first_valid("em")} AS em_hash,
            {_fingerprint(_first_valid("client_ip_address"), lower=True)} AS ip_fp,
            {_fingerprint(_first_valid("client_user_agent"), lower=False)} AS ua_fp,
            {_first_valid("lead_id")} AS lead_key,
            {_first_valid("page_scoped_user_id")} AS psid_key,
            coalesce(line_ok AND e IS NOT NULL AND {name_ok} AND t_raw IS NOT NULL
                AND abs(t_raw) <= 9000000000000000
                AND t_seconds BETWEEN {_MIN_TS} AND {_MAX_TS}
                AND {event_id_ok} AND {action_ok} AND {channel_ok}
                AND {" AND ".join(param_ok)}
                AND {_identifier_ok("fbp")} AND {_identifier_ok("external_id")}
                AND {_identifier_ok("ctwa_clid")}
                AND {value_ok} AND {currency_ok} AND {" AND ".join(campaign_ok)} AND {stage_ok},
                false) AS ok,
            coalesce({", ".join(campaign_parts)}, $campaign_default) AS campaign,
            {stage_value} AS explicit_stage,
            {event_id_value} AS event_id,
            {action_value} AS action_source,
            {channel_value} AS messaging_channel,
            {currency_value} AS currency,
            {value_value} AS value
        FROM judged
    )"""
    n_valid = " + ".join(f"CAST(p_{p} = 1 AS INTEGER)" for p in PARAMS)
    combos = [
        " AND ".join(f"p_{p} <> 1" for p in PARAMS if p not in combo) or "true"
        for combo in REJECTED_COMBINATIONS
    ]
    select_expr = {
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
        **{f"combo_{k}": f"({expr})" for k, expr in enumerate(combos)},
    }
    missing = set(columns) - set(select_expr)
    if missing:
        raise RuntimeError(f"fast path does not compute {sorted(missing)}")
    select = ",\n        ".join(f"{select_expr[c]} AS {c}" for c in columns)
    sql = f"""
    WITH {records},
    {events_sql}
    SELECT ok, {select}
    FROM statused LEFT JOIN stage_map ON stage_map.event_name = statused.name_text
    """
    stage_map = pa.table(
        {
            "event_name": pa.array(list(config.stage_by_event), pa.string()),
            "stage": pa.array([v[:128] for v in config.stage_by_event.values()], pa.string()),
        }
    )
    return _Plan(sql=sql, stage_map=stage_map)


def _status_columns(param: str) -> str:
    return (
        f"CASE WHEN k_{param} = 'VARCHAR' THEN {_element_status(param, f's_{param}')} END"
        f" AS sc_{param}, CASE WHEN k_{param} = 'ARRAY' THEN list_transform(a_{param},"
        f" lambda x: {_element_status(param, 'x')}) END AS st_{param}"
    )


def _first_valid(param: str) -> str:
    """SQL for `params.first_valid`."""
    return (
        f"CASE k_{param} WHEN 'VARCHAR' THEN CASE WHEN sc_{param} = 1 THEN s_{param} END"
        f" WHEN 'ARRAY' THEN a_{param}[list_position(st_{param}, 1)] END"
    )


def _fingerprint(text: str, *, lower: bool) -> str:
    """SQL for `rows.fingerprint` on a clean ASCII text (no edge spaces to strip)."""
    value = f"lower({text})" if lower else text
    return f"left(sha256({value}), 16)"


def _first(param: str) -> str:
    return f"CASE k_{param} WHEN 'VARCHAR' THEN s_{param} WHEN 'ARRAY' THEN a_{param}[1] END"


def _identifier(param: str, *, allow_phone_shape: bool) -> str:
    """SQL for `rows._safe_identifier` on the first element of a clean text list."""
    first = _first(param)
    pii = _EMAIL.format(x=first)
    if not allow_phone_shape:
        pii = f"({pii} OR (starts_with({first}, '+') AND {_PHONE.format(x=first)}))"
    return (
        f"CASE WHEN {first} IS NULL OR {first} = '' THEN NULL"
        f" WHEN {pii} THEN sha256(lower({first})) ELSE {first} END"
    )


def _identifier_ok(param: str) -> str:
    return f"coalesce(strlen({_first(param)}) <= 256, true)"


@lru_cache(maxsize=262_144)
def _ip_ok(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _ip_ok_batch(values: pa.Array) -> pa.Array:
    return pa.array([None if v is None else _ip_ok(v) for v in values.to_pylist()], pa.bool_())


def _query_value_batch(urls: pa.Array, names: pa.Array) -> pa.Array:
    out = []
    for url, name in zip(urls.to_pylist(), names.to_pylist(), strict=True):
        value = _query_value(url, name) if url is not None and name is not None else None
        out.append(value[:256] if value else None)
    return pa.array(out, pa.string())


class BlockParser:
    """Turns blocks of raw JSONL lines into store rows; one in-memory DuckDB per import."""

    def __init__(
        self,
        config: Config,
        columns: tuple[str, ...],
        schema: pa.Schema,
        default_dataset: str = UNKNOWN_DATASET,
    ) -> None:
        self.plan = _plan(config, columns)
        self.schema = schema
        self.config = config
        self.default_dataset = default_dataset
        self.connection = duckdb.connect()
        self.connection.execute("SET enable_progress_bar = false")
        self.connection.create_function(
            "eqm_ip_ok", _ip_ok_batch, ["VARCHAR"], "BOOLEAN", type="arrow"
        )
        self.connection.create_function(
            "eqm_query_value",
            _query_value_batch,
            ["VARCHAR", "VARCHAR"],
            "VARCHAR",
            type="arrow",
        )
        self.connection.register("stage_map", self.plan.stage_map)

    def close(self) -> None:
        self.connection.close()

    def parse(
        self, data: bytes, ends: np.ndarray, first_line_no: int, source_id: int, max_bytes: int
    ) -> tuple[pa.Table, np.ndarray]:
        """Rows for the lines of `data` the fast path decides, and the indexes of the rest.

        `ends[i]` is the offset just after line i's newline. Line numbers are
        `first_line_no + i`. Lines left over go to the Python path, which also owns
        blank lines, the file's first line (a BOM), long lines and bad UTF-8.
        """
        count = len(ends)
        offsets = np.empty(count + 1, dtype=np.int64)
        offsets[0] = 0
        offsets[1:] = ends
        candidate = _plain_lines(data, offsets, max_bytes)
        if first_line_no == 1 and count:
            candidate[0] = False  # a BOM is the Python path's business
        # A view of the block, no copy; only printable-ASCII lines (valid UTF-8 for sure)
        # are handed to DuckDB.
        lines = pa.LargeStringArray.from_buffers(count, pa.py_buffer(offsets), pa.py_buffer(data))
        taken = np.flatnonzero(candidate)
        if not len(taken):
            return self.schema.empty_table(), np.arange(count)
        if len(taken) < count:
            lines = lines.take(pa.array(taken))
        table = pa.table({"line_no": pa.array(taken + first_line_no), "line": lines})
        # Several record batches let DuckDB scan the block on every core.
        self.connection.register("lines", pa.Table.from_batches(table.to_batches(16_384)))
        try:
            result = self.connection.sql(
                self.plan.sql,
                params={
                    "source_id": source_id,
                    "campaign_default": self.config.campaign_default[:256],
                    "stage_other": self.config.stage_other[:128],
                    "dataset_default": self.default_dataset,
                },
            ).to_arrow_table()
        finally:
            self.connection.unregister("lines")
        ok = result.column("ok")
        line_numbers = result.column("line_no")
        bad_lines = pc.unique(pc.filter(line_numbers, pc.invert(ok)))
        keep = pc.invert(pc.is_in(line_numbers, value_set=bad_lines))
        rows = result.filter(keep).drop_columns(["ok"]).cast(self.schema)
        handled = np.zeros(count, dtype=bool)
        done = pc.unique(rows.column("line_no")).to_numpy()
        handled[done - first_line_no] = True
        return rows, np.flatnonzero(~handled)


def _plain_lines(data: bytes, offsets: np.ndarray, max_bytes: int) -> np.ndarray:
    """Which lines the fast path may take: printable ASCII without escapes (bar `\\/`),
    not blank, not too long, and nested less deeply than orjson's limit.

    With no byte above 0x7e and no escape, every text in the line is printable ASCII:
    Python's and DuckDB's notions of whitespace, digits and case then agree.
    """
    count = len(offsets) - 1
    lengths = np.diff(offsets)
    plain = (lengths > 2) & (lengths <= max_bytes)
    raw = np.frombuffer(data, dtype=np.uint8)
    if not count:
        return plain
    # Whole-block checks first: the common block is all ASCII with no escape at all.
    if not data.isascii() or b"\x7f" in data:
        high = np.flatnonzero(raw > 0x7E)
        plain[np.searchsorted(offsets, high, side="right") - 1] = False
    if b"\\" in data:
        backslashes = np.flatnonzero(raw == 0x5C)
        escapes = backslashes[raw[np.minimum(backslashes + 1, len(raw) - 1)] != 0x2F]
        plain[np.searchsorted(offsets, escapes, side="right") - 1] = False
    for i in np.flatnonzero(plain & (lengths > 2 * _MAX_OPENERS)):
        line = data[offsets[i] : offsets[i + 1]]
        if line.count(b"[") + line.count(b"{") > _MAX_OPENERS:
            plain[i] = False
    return plain
