"""The diverse profile's customer information: every parameter an independent draw.

Owns, for each user_data parameter the importer scores, the share of events in which it
is absent, valid, invalid or plaintext (unhashed); the draw of those statuses for one
event (one random byte per parameter, so the parameters are independent of each other
and of the event, and the status "signatures" of a log grow towards their combinatorial
limit); and the values written for each status, taken from the unit's :func:`identity`:
the real hash or raw value, a spoiled variant of it, or its plaintext. Only the diverse profile uses it; the standard profile's parameters come from
the planted faults.
"""

from __future__ import annotations

from .identities import Person, SampleRng, Visitor, sha256_cached

# The importer's status codes (dashboard.core.params), repeated: the generator stays
# independent of the package it produces test data for.
ABSENT, VALID, INVALID, UNHASHED = range(4)

# Parameter: percent of events with it absent, valid, invalid, unhashed. In the order
# of core.params.PARAMS; the raw-value parameters (ip, user agent, cookies) cannot be
# "unhashed". tests/test_sample_diverse.py checks the shares a log ends up with.
PARAM_MIX = (
    ("em", 25, 62, 3, 10),
    ("ph", 40, 48, 5, 7),
    ("fn", 45, 47, 3, 5),
    ("ln", 45, 47, 3, 5),
    ("ct", 55, 37, 5, 3),
    ("st", 57, 37, 3, 3),
    ("zp", 50, 41, 3, 6),
    ("country", 30, 60, 6, 4),
    ("db", 75, 19, 3, 3),
    ("ge", 70, 24, 3, 3),
    ("external_id", 20, 72, 5, 3),
    ("client_ip_address", 10, 82, 8, 0),
    ("client_user_agent", 5, 90, 5, 0),
    ("fbc", 50, 40, 10, 0),
    ("fbp", 15, 77, 8, 0),
)
assert all(sum(row[1:]) == 100 for row in PARAM_MIX)
_N = len(PARAM_MIX)


def _table(i: int, row: tuple) -> tuple[int, ...]:
    # 256 entries, one per value of a random byte: the index of the value to send in
    # the identity (valid values, then invalid ones, then plaintexts), or -1 for absent.
    bounds, cumulative = [], 0
    for share in row[1:]:
        cumulative += share
        bounds.append(cumulative * 256 / 100)
    out = []
    for byte in range(256):
        status = next(k for k, bound in enumerate(bounds) if byte + 0.5 < bound)
        out.append((status - 1) * _N + i if status != ABSENT else -1)
    return tuple(out)


_SPEC = tuple((row[0], _table(i, row)) for i, row in enumerate(PARAM_MIX))


def status_shares() -> dict[str, tuple[float, float, float, float]]:
    """Parameter -> the exact (absent, valid, invalid, unhashed) probabilities drawn."""
    out = {}
    for key, table in _SPEC:
        counts = [0, 0, 0, 0]
        for k in table:
            counts[ABSENT if k < 0 else k // _N + 1] += 1
        out[key] = tuple(c / 256 for c in counts)
    return out


_UA_SAMPLE = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36"
# The invalid value of each parameter, the mistakes integrations make: upper-case or
# MD5 hashes, unset template variables and placeholders, a hashed user agent, cookies
# with their time in seconds or without the fb.1. prefix. Fixed: what varies per event
# is whether a parameter is invalid, not how (a visitor's own click keeps its own).
_INVALID = [
    "d41d8cd98f00b204e9800998ecf8427e",  # em: MD5, not SHA-256
    sha256_cached("491512345678").upper(),  # ph
    "undefined",  # fn
    "null",  # ln
    sha256_cached("berlin").upper(),  # ct
    "n/a",  # st
    "5d41402abc4b2a76b9719d911017c592",  # zp: MD5
    sha256_cached("de").upper(),  # country
    "0",  # db
    "undefined",  # ge
    "undefined",  # external_id
    "unknown",  # client_ip_address
    sha256_cached(_UA_SAMPLE),  # client_user_agent: hashed where Meta wants it raw
    "fb.1.1727740800.IwAR0invalidclickid",  # fbc: creation time in seconds
    "1727740800123.1234567890",  # fbp: without the fb.1. prefix
]
assert len(_INVALID) == _N


_DATES_OF_BIRTH: list[tuple[str, str]] = []


def _dates_of_birth() -> list[tuple[str, str]]:
    # (YYYYMMDD, its hash) for 1950-2005, built on first use: a date is drawn per person.
    _DATES_OF_BIRTH.extend(
        (d, sha256_cached(d))
        for d in (
            f"{y}{m:02d}{day:02d}" for y in range(1950, 2006) for m in range(1, 13)
            for day in range(1, 29)
        )
    )  # fmt: skip
    return _DATES_OF_BIRTH


def identity(rng: SampleRng, person: Person, visitor: Visitor, xid: str, t: int) -> list:
    """The values one person on one browser can send: the valid value of each parameter
    in PARAM_MIX order, then the invalid ones, then the plaintexts (None where none).

    Every parameter has a valid value, so its status is free to be drawn: a visitor
    without an ad click still has an older _fbc cookie, an ad-blocked one a first-party
    _fbp.
    """
    rnd = rng.random
    dobs = _DATES_OF_BIRTH or _dates_of_birth()
    dob, dob_hash = dobs[int(rnd() * len(dobs))]
    ge = "f" if rnd() < 0.5 else "m"
    base = person.base
    fn, ln, ct, st, zp = person.names
    email = person.email
    valid = [
        person.em,
        person.ph,
        base["fn"],
        base["ln"],
        base["ct"],
        base["st"],
        base["zp"],
        base["country"],
        dob_hash,
        sha256_cached(ge),
        xid,
        visitor.ip,
        visitor.ua,
        visitor.fbc or f"fb.1.{t * 1000 - 86_400_000}.IwAR{xid[8:48]}",
        visitor.fbp or f"fb.1.{t * 1000 + 1}.{int(xid[:9], 16)}",
    ]
    cc = person.country[0]
    plain = [email, person.phone, fn, ln, ct, st, zp, cc, dob, ge, email, None, None, None, None]
    return valid + _INVALID + plain


# Where a new ad click's _fbc cookie goes in an identity (valid, then invalid form).
FBC_VALID = [row[0] for row in PARAM_MIX].index("fbc")
FBC_INVALID = FBC_VALID + _N


class UserDataMixer:
    """Draws one event's user_data: each parameter's status on its own, then its value."""

    def __init__(self, rng: SampleRng):
        self.randbytes = rng.randbytes

    def draw(self, ident: list) -> dict:
        """user_data for one event of the unit whose identity is `ident`."""
        # One random byte per parameter: independent statuses, one RNG call per event.
        ud = {}
        for (key, table), byte in zip(_SPEC, self.randbytes(len(_SPEC)), strict=True):
            k = table[byte]
            if k >= 0:
                ud[key] = ident[k]
        return ud
