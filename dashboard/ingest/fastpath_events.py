"""The per-event stages of the vectorised importer's query (`fastpath_plan` holds the rest).

Owns what the query reads from each event and how: the event fields it reads, each
user_data value's JSON type, text(s) and status, the stored values of the event (dedup
keys, fingerprints, campaign, stage...) and `ok`, whether the Python path (`rows.build_row`)
would store exactly these values. The CTEs, in order, each selecting from the one before
and the first from `raw_events` (one row per event, `e`): `kinds`, `parsed`, `reasoned`,
`judged`, `statused`.

Column names per user_data parameter p: `k_p` its JSON type, `s_p` the text of a string
value, `a_p` the texts of an array's elements, `r_p` a string value's reason (NULL
when valid), `sc_p` / `st_p` the statuses, `p_p` the stored status. Strings (the common
case) never become lists.
"""

from __future__ import annotations

import json

from dashboard.core.config import Config
from dashboard.core.definitions import MAX_TIMESTAMP_S, MIN_TIMESTAMP_S
from dashboard.core.params import ABSENT, INVALID, PARAMS, UNHASHED, VALID
from dashboard.ingest.fastpath_sql import (
    QUERY_VALUE_FUNCTION,
    config_text,
    element_reason,
    element_status,
    fingerprint,
    is_email,
    is_integer,
    is_null,
    is_phone,
    is_plain,
    is_text,
    json_path,
    leaf_type,
    optional_text,
    plain_text_ok,
    reason_status,
    text,
    unspaced,
)

# A JSON array of strings only, as DuckDB writes it back (minified, no escapes).
_STRING_ARRAY = r'\[("[^"]*"(,"[^"]*")*)?\]'
# A custom_data.value text both paths parse to the same float.
_NUMBER_TEXT = r"-?[0-9]{1,15}(\.[0-9]{1,15})?"

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
    "custom_data.order_id",
]


def event_paths(config: Config) -> list[str]:
    """The dotted paths of an event the query reads (the config's fields included)."""
    paths = list(_EVENT_FIELDS)
    for source in config.campaign_sources:
        if not source.startswith("url:"):
            paths.append(source)
    paths.append(config.stage_field)
    return paths


def event_ctes(config: Config) -> str:
    """The per-event CTEs, `kinds` to `statused`, comma-separated."""
    return ",".join((_kinds_cte(), _parsed_cte(), _judged_cte(), _statused_cte(config)))


# -- fields and user_data values ------------------------------------------------------


def _user_data_leaf(param: str) -> str:
    return f"e.user_data.{json.dumps(param)}"


def _kinds_cte() -> str:
    """kinds: the JSON type of each user_data value (`k_p`)."""
    kinds = ", ".join(f"{leaf_type(_user_data_leaf(p))} AS k_{p}" for p in PARAMS)
    return f"""
    kinds AS (
        SELECT *, {kinds} FROM raw_events
    )"""


def _value_columns(param: str) -> str:
    """`s_p`, the text of a string value, and `a_p`, the texts of an array of strings
    (NULL for an array holding anything else, which then goes back)."""
    leaf = _user_data_leaf(param)
    raw = f"CAST({leaf} AS VARCHAR)"
    return (
        f"CASE WHEN k_{param} = 'VARCHAR' THEN {text(leaf)} END AS s_{param},"
        f" CASE WHEN k_{param} = 'ARRAY' AND regexp_full_match({raw}, '{_STRING_ARRAY}')"
        f" THEN CASE WHEN {raw} = '[]' THEN CAST([] AS VARCHAR[])"
        f" ELSE string_split(substr({raw}, 3, strlen({raw}) - 4), '\",\"') END"
        f" END AS a_{param}"
    )


def _event_time_raw() -> str:
    """event_time as sent, for JSON integers only (texts and doubles go back)."""
    leaf = "e.event_time"
    return f"CASE WHEN {is_integer(leaf)} THEN TRY_CAST({leaf} AS BIGINT) END"


def _parsed_cte() -> str:
    """parsed: the event name's text, the raw event_time, each value's text(s)."""
    return f"""
    parsed AS (
        SELECT *, {text("e.event_name")} AS name_text, {_event_time_raw()} AS t_raw,
            {", ".join(_value_columns(p) for p in PARAMS)}
        FROM kinds
    )"""


def _reason_columns(param: str) -> str:
    """`r_p`, the reason of a string value (NULL when valid), and `st_p`, the statuses of
    an array's elements."""
    return (
        f"CASE WHEN k_{param} = 'VARCHAR' THEN {element_reason(param, f's_{param}')} END"
        f" AS r_{param}, CASE WHEN k_{param} = 'ARRAY' THEN list_transform(a_{param},"
        f" lambda x: {element_status(param, 'x')}) END AS st_{param}"
    )


def _judged_cte() -> str:
    """judged: event_time in seconds (`rows._event_time`), each string value's reason and
    each array's statuses; then `sc_p`, the status of a string value, from its reason."""
    statuses = ", ".join(
        f"CASE WHEN k_{p} = 'VARCHAR' THEN {reason_status(f'r_{p}')} END AS sc_{p}" for p in PARAMS
    )
    return f"""
    reasoned AS (
        SELECT *,
            CASE WHEN t_raw > 100000000000 THEN t_raw / 1000.0::DOUBLE
                ELSE CAST(t_raw AS DOUBLE) END AS t_seconds,
            {", ".join(_reason_columns(p) for p in PARAMS)}
        FROM parsed
    ),
    judged AS (
        SELECT *, {statuses} FROM reasoned
    )"""


# -- statused: what the Python path would store, and whether it would --------------------


def _param_status(param: str) -> str:
    """`p_p`, `params.value_status` of the value: an array is valid when any element
    is, else unhashed when any is, else invalid; absent when empty."""
    return (
        f"CASE k_{param} WHEN 'VARCHAR' THEN sc_{param} WHEN 'ARRAY' THEN CASE"
        f" WHEN len(st_{param}) = 0 THEN {ABSENT}"
        f" WHEN list_contains(st_{param}, {VALID}) THEN {VALID}"
        f" WHEN list_contains(st_{param}, {UNHASHED}) THEN {UNHASHED}"
        f" ELSE {INVALID} END ELSE {ABSENT} END AS p_{param}"
    )


def _has_unhashed_pii() -> str:
    return " OR ".join(
        f"coalesce(sc_{p} = {UNHASHED} OR list_contains(st_{p}, {UNHASHED}), false)" for p in PARAMS
    )


def _param_ok(param: str) -> str:
    """A value the fast path judges like the Python path: null, an unspaced plain text,
    or an array of unspaced plain texts (validity patterns and case mapping read
    non-ASCII text differently in Python and RE2)."""
    raw = f"CAST({_user_data_leaf(param)} AS VARCHAR)"
    return (
        f"(k_{param} = 'NULL' OR (k_{param} = 'VARCHAR' AND {unspaced(f's_{param}')}"
        f" AND {is_plain(f's_{param}')})"
        f" OR (k_{param} = 'ARRAY' AND a_{param} IS NOT NULL AND {is_plain(raw)}"
        f" AND coalesce(list_bool_and(list_transform(a_{param}, lambda x: {unspaced('x')})),"
        " true)))"
    )


def _first_valid(param: str) -> str:
    """SQL for `params.first_valid`."""
    return (
        f"CASE k_{param} WHEN 'VARCHAR' THEN CASE WHEN sc_{param} = {VALID} THEN s_{param} END"
        f" WHEN 'ARRAY' THEN a_{param}[list_position(st_{param}, {VALID})] END"
    )


def _first(param: str) -> str:
    return f"CASE k_{param} WHEN 'VARCHAR' THEN s_{param} WHEN 'ARRAY' THEN a_{param}[1] END"


def _identifier(param: str, *, allow_phone_shape: bool) -> str:
    """SQL for `rows._safe_identifier` on the first element of a clean text list."""
    first = _first(param)
    pii = is_email(first)
    if not allow_phone_shape:
        pii = f"({pii} OR (starts_with({first}, '+') AND {is_phone(first)}))"
    return (
        f"CASE WHEN {first} IS NULL OR {first} = '' THEN NULL"
        f" WHEN {pii} THEN sha256(lower({first})) ELSE {first} END"
    )


def _identifier_ok(param: str) -> str:
    return f"coalesce(strlen({_first(param)}) <= 256, true)"


def _event_id() -> tuple[str, str]:
    """(value, ok) for build_row's event_id: as sent, or the SHA-256 of plaintext PII."""
    leaf = "e.event_id"
    value = text(leaf)
    pii = f"({is_email(value)} OR (starts_with({value}, '+') AND {is_phone(value)}))"
    stored = (
        f"CASE WHEN {is_text(leaf)} AND {value} <> '' THEN"
        f" CASE WHEN {pii} THEN sha256(lower({value}))"
        f" ELSE {value} END END"
    )
    ok = (
        f"({is_null(leaf)} OR ({is_text(leaf)} AND {unspaced(value)} AND {is_plain(value)}"
        f" AND strlen({value}) <= 256))"
    )
    return stored, ok


def _custom_data() -> tuple[str, str, str, str]:
    """(value, value ok, currency, currency ok) from custom_data, as `build_row` reads
    them (`rows._number`, the currency upper-cased and cut)."""
    value_leaf = "e.custom_data.value"
    value_kind = leaf_type(value_leaf)
    number = (
        f"CASE WHEN {value_kind} IN ('BIGINT', 'UBIGINT', 'DOUBLE') THEN TRY_CAST({value_leaf}"
        f" AS DOUBLE) WHEN {value_kind} = 'VARCHAR' THEN TRY_CAST({text(value_leaf)} AS DOUBLE)"
        " END"
    )
    value = f"CASE WHEN abs({number}) < 1e15 THEN {number} END"
    value_ok = (
        f"({value_kind} <> 'VARCHAR' OR regexp_full_match({text(value_leaf)}, '{_NUMBER_TEXT}'))"
    )
    currency_leaf = "e.custom_data.currency"
    currency = (
        f"CASE WHEN {is_text(currency_leaf)} AND {text(currency_leaf)} <> ''"
        f" THEN left(upper({text(currency_leaf)}), 8) END"
    )
    currency_text = text(currency_leaf)
    currency_ok = (
        f"(NOT {is_text(currency_leaf)} OR ({unspaced(currency_text)}"
        f" AND {is_plain(currency_text)}))"
    )
    return value, value_ok, currency, currency_ok


def _order_id() -> tuple[str, str]:
    """(order id, ok) for `rows._order_id`: a plain text as sent; numbers go back to the
    per-record path (it writes an integer's digits); other shapes are no order id."""
    leaf = "e.custom_data.order_id"
    kind = leaf_type(leaf)
    value = f"CASE WHEN {is_text(leaf)} THEN nullif({text(leaf)}, '') END"
    ok = (
        f"({kind} NOT IN ('BIGINT', 'UBIGINT', 'HUGEINT', 'DOUBLE', 'VARCHAR')"
        f" OR ({kind} = 'VARCHAR' AND {plain_text_ok(leaf, 128)}))"
    )
    return value, ok


def _campaign(config: Config) -> tuple[str, list[str]]:
    """(campaign, oks) for `config.resolve_campaign`: the first configured source with a
    value, else the default; field texts the Python path would change go back."""
    parts = []
    oks = ["true"]
    for source in config.campaign_sources:
        if source.startswith("url:"):
            url = "e.event_source_url"
            name = source[4:].replace("'", "''")
            parts.append(
                f"CASE WHEN {is_text(url)} AND contains({text(url)}, '?')"
                f" THEN {QUERY_VALUE_FUNCTION}({text(url)}, '{name}') END"
            )
        else:
            value, ok = config_text(json_path("e", source), 256)
            parts.append(value)
            oks.append(ok)
    return f"coalesce({', '.join(parts)}, $campaign_default)", oks


def _event_ok(config: Config) -> str:
    """Whether the Python path would store this event with the values computed here
    (else its whole line goes back): every field of a shape both paths read alike."""
    name = "e.event_name"
    name_ok = f"({is_text(name)} AND {text(name)} <> '' AND {plain_text_ok(name, 128)})"
    _, event_id_ok = _event_id()
    _, action_ok = optional_text("e.action_source", 32)
    _, channel_ok = optional_text("e.messaging_channel", 32)
    _, value_ok, _, currency_ok = _custom_data()
    _, order_id_ok = _order_id()
    _, campaign_ok = _campaign(config)
    _, stage_ok = config_text(json_path("e", config.stage_field), 128)
    return f"""coalesce(line_ok AND e IS NOT NULL AND {name_ok} AND t_raw IS NOT NULL
                AND abs(t_raw) <= 9000000000000000
                AND t_seconds BETWEEN {MIN_TIMESTAMP_S} AND {MAX_TIMESTAMP_S}
                AND {event_id_ok} AND {action_ok} AND {channel_ok}
                AND {" AND ".join(_param_ok(p) for p in PARAMS)}
                AND {_identifier_ok("fbp")} AND {_identifier_ok("external_id")}
                AND {_identifier_ok("ctwa_clid")}
                AND {value_ok} AND {currency_ok} AND {order_id_ok}
                AND {" AND ".join(campaign_ok)} AND {stage_ok},
                false)"""


def _statused_cte(config: Config) -> str:
    """statused: every stored value of the event, and `ok`."""
    event_id, _ = _event_id()
    action_source, _ = optional_text("e.action_source", 32)
    messaging_channel, _ = optional_text("e.messaging_channel", 32)
    value, _, currency, _ = _custom_data()
    campaign, _ = _campaign(config)
    stage, _ = config_text(json_path("e", config.stage_field), 128)
    return f"""
    statused AS (
        SELECT *,
            {", ".join(_param_status(p) for p in PARAMS)},
            ({_has_unhashed_pii()})
                AS has_unhashed_pii,
            {_identifier("fbp", allow_phone_shape=True)} AS fbp,
            {_identifier("external_id", allow_phone_shape=False)} AS external_id,
            {_identifier("ctwa_clid", allow_phone_shape=True)} AS ctwa_key,
            {_first_valid("em")} AS em_hash,
            {fingerprint(_first_valid("client_ip_address"), lower=True)} AS ip_fp,
            {fingerprint(_first_valid("client_user_agent"), lower=False)} AS ua_fp,
            {_first_valid("lead_id")} AS lead_key,
            {_first_valid("page_scoped_user_id")} AS psid_key,
            {_event_ok(config)} AS ok,
            {campaign} AS campaign,
            {stage} AS explicit_stage,
            {event_id} AS event_id,
            {action_source} AS action_source,
            {messaging_channel} AS messaging_channel,
            {currency} AS currency,
            {value} AS value,
            {_order_id()[0]} AS order_id
        FROM judged
    )"""
