r"""SQL vocabulary of the vectorised importer: JSON leaves and value validity in DuckDB.

Owns the small SQL expressions `fastpath_plan` builds its query from: reading a raw JSON
leaf (its type, the text of a string leaf, the checks that a text is kept unchanged by
the Python path) and the DuckDB form of a user_data value's status. Every validity rule
comes from `dashboard.core.params`; this module only spells it in SQL. The expressions
assume a fast-path line: valid UTF-8 whose only escapes DuckDB writes back as the
character itself (see `fastpath`). Texts that are judged by a pattern or case-mapped
must be printable ASCII (`is_plain`), where RE2 reads each shared pattern as Python's
`re` does; their line goes back otherwise.
"""

from __future__ import annotations

import json

from dashboard.core.params import (
    DIGITS_PATTERN,
    EMAIL_PATTERN,
    FB_PREFIX_PATTERN,
    FB_TIME_PATTERN,
    HASHED_PARAMS,
    HEXISH_PATTERN,
    INVALID,
    MIN_HEXISH_DIGITS,
    MIN_PHONE_DIGITS,
    PHONE_CHARS_PATTERN,
    PLACEHOLDERS,
    PLAIN_PATTERNS,
    PLAINTEXT_MARKER,
    PLAINTEXT_REASONS,
    REASON_FB_ID,
    REASON_FB_PREFIX,
    REASON_FB_TIME,
    REASON_HASHED_RAW,
    REASON_HEX_NOT_SHA256,
    REASON_LEAD_ID_LENGTH,
    REASON_NOT_DIGITS,
    REASON_NOT_IP,
    REASON_PLACEHOLDER,
    REASON_PLAINTEXT_EMAIL,
    REASON_PLAINTEXT_MARKED,
    REASON_PLAINTEXT_PHONE,
    REASON_PLAINTEXT_VALUE,
    REASON_UPPERCASE_HEX,
    SHA256_HEX_DIGITS,
    SHA256_PATTERN,
    UNHASHED,
    VALID,
)

# The Python functions the query calls, registered on the connection by `BlockParser`.
IP_OK_FUNCTION = "eqm_ip_ok"
QUERY_VALUE_FUNCTION = "eqm_query_value"
# (param, text of a string value, texts of an array's elements) -> `params.value_reason`.
PARAM_REASON_FUNCTION = "eqm_param_reason"


def quoted(pattern: str) -> str:
    """A regex as the body of a SQL string literal."""
    return pattern.replace("'", "''")


def full_match(value: str, pattern: str) -> str:
    """SQL for `re.match(f"^{pattern}$", value)` with a pattern of `params`: written in
    the syntax RE2 and `re` share, so it goes to DuckDB as it is."""
    return f"regexp_full_match({value}, '{quoted(pattern)}')"


# Stands for a literal in the query text: true when the lines it reads are printable
# ASCII throughout. The query is planned twice (`fastpath_plan.QueryPlan`), run on
# those lines and on the rest; with the literal true DuckDB folds away every guard
# below (a per-line column, or a bound parameter, cost each guard on every line).
ASCII_LINE = "(/*ascii lines*/ true)"


# -- JSON leaves ---------------------------------------------------------------------


def leaf_type(leaf: str) -> str:
    """JSON type of a raw leaf from its first character (DuckDB writes leaves minified);
    only numbers need the parser, to tell integers from doubles."""
    return (
        f"CASE WHEN {leaf} IS NULL THEN 'NULL' ELSE CASE left(CAST({leaf} AS VARCHAR), 1)"
        " WHEN '\"' THEN 'VARCHAR' WHEN '[' THEN 'ARRAY' WHEN '{' THEN 'OBJECT'"
        " WHEN 'n' THEN 'NULL' WHEN 't' THEN 'BOOLEAN' WHEN 'f' THEN 'BOOLEAN'"
        f" ELSE json_type({leaf}) END END"
    )


def text(leaf: str) -> str:
    """The value of a string leaf. A fast-path line's only escapes are `\\/` and `\\uXXXX`
    of non-ASCII characters, which DuckDB writes back as the character itself, so the
    leaf is the text between two quotes. `substr` counts code points: `strlen` (bytes)
    gives the length on ASCII lines, where it is the cheapest; `length` (code points) on
    the others."""
    raw = f"CAST({leaf} AS VARCHAR)"
    return (
        f"CASE WHEN {ASCII_LINE} THEN substr({raw}, 2, strlen({raw}) - 2)"
        f" ELSE substr({raw}, 2, length({raw}) - 2) END"
    )


def is_text(leaf: str) -> str:
    return f"{leaf_type(leaf)} = 'VARCHAR'"


def is_null(leaf: str) -> str:
    return f"{leaf_type(leaf)} = 'NULL'"


def is_integer(leaf: str) -> str:
    return f"{leaf_type(leaf)} IN ('BIGINT', 'UBIGINT')"


# The characters Python's str.strip() removes (str.isspace) that a JSON text can hold
# raw: the space, and beyond ASCII NEL, NBSP and the Unicode spaces and separators.
# The ASCII controls among them cannot appear unescaped in valid JSON.
_UNICODE_SPACE = (
    "[\\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}]"
)


def unspaced(value: str) -> str:
    """No edge whitespace, so Python's strip() is a no-op: only the space can be one on a
    printable-ASCII line; on other lines, Unicode spaces too."""
    return (
        f"(NOT (starts_with({value}, ' ') OR ends_with({value}, ' ')) AND ({ASCII_LINE}"
        f" OR NOT regexp_matches({value}, '^{_UNICODE_SPACE}|{_UNICODE_SPACE}$')))"
    )


def is_plain(value: str) -> str:
    """A printable-ASCII text: where Python's and RE2's \\d, \\s and case mapping agree
    (`\\d` matches Arabic-Indic digits in Python, `lower` maps "İ" differently...). Texts
    that are judged, hashed or case-mapped must be plain, or their line goes back."""
    return f"({ASCII_LINE} OR NOT regexp_matches({value}, '[^ -~]'))"


def plain_text_ok(leaf: str, max_chars: int) -> str:
    """A text the Python path would keep unchanged: no edge whitespace, not cut (Python
    counts code points: DuckDB's `length`; on ASCII lines the cheaper byte count)."""
    value = text(leaf)
    size = f"CASE WHEN {ASCII_LINE} THEN strlen({value}) ELSE length({value}) END"
    return f"({unspaced(value)} AND {size} <= {max_chars})"


def optional_text(leaf: str, max_bytes: int) -> tuple[str, str]:
    """(value, ok) for `rows._opt_text`: None, or a text kept as sent; numbers go back."""
    value = f"CASE WHEN {is_text(leaf)} THEN nullif({text(leaf)}, '') END"
    ok = f"({is_null(leaf)} OR ({is_text(leaf)} AND {plain_text_ok(leaf, max_bytes)}))"
    return value, ok


def config_text(leaf: str, max_bytes: int) -> tuple[str, str]:
    """(value, ok) for `config._text`: texts and nothing else; numbers go back."""
    value = f"CASE WHEN {is_text(leaf)} THEN nullif({text(leaf)}, '') END"
    kind = leaf_type(leaf)
    ok = (
        f"({kind} IN ('NULL', 'BOOLEAN', 'OBJECT', 'ARRAY')"
        f" OR ({kind} = 'VARCHAR' AND {plain_text_ok(leaf, max_bytes)}))"
    )
    return value, ok


def int32(leaf: str) -> tuple[str, str]:
    """(value, ok) for `rows.int_or_none`: JSON integers; texts (parsed there) go back."""
    kind = leaf_type(leaf)
    number = f"TRY_CAST({leaf} AS HUGEINT)"
    value = (
        f"CASE WHEN {kind} IN ('BIGINT', 'UBIGINT') AND abs({number}) < 2147483648"
        f" THEN CAST({number} AS INTEGER) END"
    )
    return value, f"({kind} <> 'VARCHAR')"


def json_spec(paths: list[str]) -> dict:
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


def json_path(root: str, dotted: str) -> str:
    """The struct field at a dotted path under `root`, each part quoted."""
    return root + "".join(f".{json.dumps(part)}" for part in dotted.split("."))


# -- value validity (dashboard.core.params in SQL) -----------------------------------
# Length checks go first where a pattern implies a length: they are cheaper than RE2.

# The two shapes of almost every client_ip_address, which `ipaddress.ip_address` reads as
# an address exactly when they match: a dotted quad of decimal octets 0-255 without
# leading zeros, and eight uncompressed groups of 1-4 hex digits. Judging them in SQL
# keeps the Python UDF (per chunk, holding the GIL) for the rare rest ("::", scope ids).
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])"
IPV4_PATTERN = rf"{_OCTET}(\.{_OCTET}){{3}}"
IPV6_FULL_PATTERN = r"[0-9a-fA-F]{1,4}(:[0-9a-fA-F]{1,4}){7}"


def _is_sha256(value: str) -> str:
    return f"(strlen({value}) = {SHA256_HEX_DIGITS} AND {full_match(value, SHA256_PATTERN)})"


def _is_hexish(value: str) -> str:
    return f"(strlen({value}) >= {MIN_HEXISH_DIGITS} AND {full_match(value, HEXISH_PATTERN)})"


def _is_placeholder(value: str) -> str:
    listed = ", ".join(f"'{p}'" for p in sorted(PLACEHOLDERS))
    return f"(strlen({value}) <= {max(map(len, PLACEHOLDERS))} AND lower({value}) IN ({listed}))"


def is_email(value: str) -> str:
    """SQL for `params.looks_like_email` on a clean ASCII text."""
    return full_match(value, EMAIL_PATTERN)


def is_phone(value: str) -> str:
    """SQL for `params.looks_like_phone` on a clean ASCII text."""
    digits = f"strlen(regexp_replace({value}, '[^0-9]', '', 'g'))"
    return f"({full_match(value, PHONE_CHARS_PATTERN)} AND {digits} >= {MIN_PHONE_DIGITS})"


def reason_status(reason: str) -> str:
    """SQL for `params.reason_status` on a present value's reason (NULL: valid)."""
    plaintext = ", ".join(str(code) for code in sorted(PLAINTEXT_REASONS))
    return (
        f"CASE WHEN {reason} IS NULL THEN {VALID}"
        f" WHEN {reason} IN ({plaintext}) THEN {UNHASHED} ELSE {INVALID} END"
    )


def element_status(param: str, value: str) -> str:
    """SQL for `params.value_status(param, value)[0]` on a clean ASCII text."""
    return reason_status(element_reason(param, value))


def element_reason(param: str, x: str) -> str:
    """SQL for `params._scalar_reason(param, x)` on a clean ASCII text, in its order:
    the relay's plaintext marker, then the hashed, external_id or plain parameter rules.
    NULL for a valid value. The reason is the one definition of validity (the status
    derives from it), so the query computes it once per value, in SQL."""
    marker = f"starts_with({x}, '{PLAINTEXT_MARKER}')"
    if param in HASHED_PARAMS:
        upper_hex = (
            f"CASE WHEN strlen({x}) = {SHA256_HEX_DIGITS}"
            f" AND {full_match(f'lower({x})', SHA256_PATTERN)}"
            f" THEN {REASON_UPPERCASE_HEX} ELSE {REASON_HEX_NOT_SHA256} END"
        )
        phone = f" WHEN {is_phone(x)} THEN {REASON_PLAINTEXT_PHONE}" if param == "ph" else ""
        return (
            f"CASE WHEN {marker} THEN {REASON_PLAINTEXT_MARKED} WHEN {_is_sha256(x)} THEN NULL"
            f" WHEN {_is_placeholder(x)} THEN {REASON_PLACEHOLDER}"
            f" WHEN {_is_hexish(x)} THEN {upper_hex}"
            f" WHEN {is_email(x)} THEN {REASON_PLAINTEXT_EMAIL}{phone}"
            f" ELSE {REASON_PLAINTEXT_VALUE} END"
        )
    if param == "external_id":
        return (
            f"CASE WHEN {marker} THEN {REASON_PLAINTEXT_MARKED}"
            f" WHEN {_is_placeholder(x)} THEN {REASON_PLACEHOLDER}"
            f" WHEN {is_email(x)} THEN {REASON_PLAINTEXT_EMAIL}"
            f" WHEN starts_with({x}, '+') AND {is_phone(x)} THEN {REASON_PLAINTEXT_PHONE} END"
        )
    if param == "client_ip_address":
        valid = (
            f"(CASE WHEN {full_match(x, IPV4_PATTERN)} OR {full_match(x, IPV6_FULL_PATTERN)}"
            f" THEN true ELSE {IP_OK_FUNCTION}({x}) END)"
        )
        shape_reason = str(REASON_NOT_IP)
    elif param in ("fbc", "fbp"):
        valid = full_match(x, PLAIN_PATTERNS[param])
        shape_reason = (
            f"CASE WHEN NOT regexp_matches({x}, '^{quoted(FB_PREFIX_PATTERN)}')"
            f" THEN {REASON_FB_PREFIX}"
            f" WHEN NOT regexp_matches({x}, '^{quoted(FB_TIME_PATTERN)}') THEN {REASON_FB_TIME}"
            f" ELSE {REASON_FB_ID} END"
        )
    elif param in PLAIN_PATTERNS:
        valid = full_match(x, PLAIN_PATTERNS[param])
        shape_reason = (
            f"CASE WHEN {full_match(x, DIGITS_PATTERN)} THEN {REASON_LEAD_ID_LENGTH}"
            f" ELSE {REASON_NOT_DIGITS} END"
            if param == "lead_id"
            else str(REASON_NOT_DIGITS)
        )
    else:
        # No shape: any raw value is valid but a hash, which the next branch names.
        valid = f"NOT {_is_sha256(x)}"
        shape_reason = str(REASON_NOT_DIGITS)
    return (
        f"CASE WHEN {marker} THEN {REASON_PLAINTEXT_MARKED}"
        f" WHEN {_is_placeholder(x)} THEN {REASON_PLACEHOLDER} WHEN {valid} THEN NULL"
        f" WHEN {_is_sha256(x)} THEN {REASON_HASHED_RAW} ELSE {shape_reason} END"
    )


def fingerprint(value: str, *, lower: bool) -> str:
    """SQL for `rows.fingerprint` on a clean ASCII text (no edge spaces to strip)."""
    folded = f"lower({value})" if lower else value
    return f"left(sha256({folded}), 16)"
