"""Random draws and the simulated people: the seeded RNG, hashing, persons and browsers.

Owns :class:`SampleRng` (the one random source, with cheap integer draws), SHA-256
hashing of identifiers the way Meta expects them, :class:`Person` (a known identity:
e-mail, phone, name and place, hashed once) and :class:`Visitor` (a browser: cookies,
IP, user agent, maybe an ad blocker), with the name, country and user-agent tables
they are drawn from. Every draw goes through the caller's SampleRng, in a fixed order.
"""

from __future__ import annotations

import base64
import hashlib
import random

# Visitors whose ad blocker stops the Pixel: the server still reports their events.
P_ADBLOCK = 0.04

_FIRST_NAMES = (
    "anna", "max", "lena", "paul", "sofia", "lukas", "emma", "jonas", "mia", "leon",
    "laura", "david", "julia", "tom", "clara", "noah", "marie", "ben", "nina", "felix",
    "sara", "jan", "lea", "elias", "carmen", "pablo", "lucia", "hugo", "chloe", "louis",
    "olivia", "james", "emily", "liam", "sophie", "daan", "fleur", "sem", "ines", "marco",
)  # fmt: skip
_LAST_NAMES = (
    "smith", "mueller", "schmidt", "garcia", "martin", "bernard", "jansen", "devries",
    "fischer", "weber", "lopez", "martinez", "dubois", "moreau", "johnson", "brown",
    "wagner", "becker", "hoffmann", "schulz", "fernandez", "rossi", "bakker", "visser",
    "taylor", "wilson", "klein", "wolf", "richter", "petit",
)  # fmt: skip
_DOMAINS = ("example.com", "example.org", "example.net")

# country, weight, currency, (city, state, zips), phone format, IPv4 and IPv6 prefixes
_COUNTRIES = (
    ("de", 40, "EUR",
     (("berlin", "be", ("10115", "10437", "12043")), ("munich", "by", ("80331", "81669")),
      ("hamburg", "hh", ("20095", "22767")), ("cologne", "nw", ("50667", "50931"))),
     "de", ("91.64", "185.22", "84.132"), ("2a02:8108", "2003:e4")),
    ("es", 15, "EUR",
     (("madrid", "md", ("28001", "28013")), ("barcelona", "ct", ("08001", "08013"))),
     "es", ("88.12", "83.47"), ("2a0c:5a80",)),
    ("fr", 15, "EUR",
     (("paris", "idf", ("75001", "75011")), ("lyon", "ara", ("69001", "69003"))),
     "fr", ("90.45", "82.64"), ("2a01:cb00",)),
    ("nl", 10, "EUR", (("amsterdam", "nh", ("1012ab", "1071xx")),), "nl",
     ("145.53", "77.161"), ("2a02:a450",)),
    ("us", 20, "USD",
     (("newyork", "ny", ("10001", "10027")), ("sanfrancisco", "ca", ("94103", "94110")),
      ("austin", "tx", ("78701",))),
     "us", ("73.162", "24.5", "98.207"), ("2601:646", "2600:1700")),
)  # fmt: skip
# Weights add up to 100: index this table with a uniform draw below 100.
COUNTRY_PICK = tuple(c for c in _COUNTRIES for _ in range(c[1]))
_NON_DIGITS = str.maketrans("", "", "+ ()-")

_USER_AGENTS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/489.0.0.39.108;FBBV/655113466]",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/AP2A.240905.003; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/130.0.6723.58 Mobile Safari/537.36 "
    "[FB_IAB/FB4A;FBAV/487.0.0.50.109;]",
    "Mozilla/5.0 (Linux; Android 13; SM-A536B Build/TP1A.220624.014; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/129.0.6668.100 Mobile Safari/537.36 "
    "Instagram 354.0.0.43.101 Android",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.0 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:131.0) Gecko/20100101 Firefox/131.0",
)


class SampleRng(random.Random):
    """random.Random with cheap integer draws (randrange costs ~10x more per call)."""

    def below(self, n: int) -> int:
        """Uniform int in [0, n)."""
        return int(self.random() * n)

    def between(self, a: int, b: int) -> int:
        """Uniform int in [a, b], both ends included."""
        return a + int(self.random() * (b - a + 1))


def sha256_hex(value: str) -> str:
    """Hex SHA-256 of a UTF-8 string: how Meta wants customer information hashed."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


_HASH_CACHE: dict[str, str] = {}
_BASE_CACHE: dict[tuple, dict] = {}


def sha256_cached(value: str) -> str:
    # Names, cities and countries repeat a lot; hash each distinct value once.
    h = _HASH_CACHE.get(value)
    if h is None:
        h = _HASH_CACHE[value] = sha256_hex(value)
    return h


class Person:
    """A known identity with its hashes computed once (hashing per event would be slow)."""

    __slots__ = ("email", "em", "em2", "phone", "ph", "base", "country", "names")

    def __init__(
        self,
        rng: SampleRng,
        country: tuple,
        with_email: bool,
        with_phone: bool,
        email_numbers: int = 99,
    ):
        rnd = rng.random
        fn = _FIRST_NAMES[int(rnd() * len(_FIRST_NAMES))]
        ln = _LAST_NAMES[int(rnd() * len(_LAST_NAMES))]
        city, st, zips = country[3][int(rnd() * len(country[3]))]
        zp = zips[int(rnd() * len(zips))]
        self.country = country
        self.names = (fn, ln, city, st, zp)  # plaintext, for the diverse profile's defects
        self.em2 = None
        if with_email:
            n = 1 + int(rnd() * email_numbers)
            self.email = f"{fn}.{ln}{n}@{_DOMAINS[int(rnd() * 3)]}"
            self.em = sha256_hex(self.email)
        else:
            self.email = self.em = None
        if with_phone:
            self.phone = _phone(rng, country[4])
            # Meta's rule: digits only, country code kept, no leading '+' or zeros.
            self.ph = sha256_hex(self.phone.translate(_NON_DIGITS))
        else:
            self.phone = self.ph = None
        # Persons sharing name and place share one (read-only) dict of those hashes.
        key = (fn, ln, city, zp, country[0])
        base = _BASE_CACHE.get(key)
        if base is None:
            base = _BASE_CACHE[key] = {
                "fn": sha256_cached(fn),
                "ln": sha256_cached(ln),
                "ct": sha256_cached(city),
                "st": sha256_cached(st),
                "zp": sha256_cached(zp),
                "country": sha256_cached(country[0]),
            }
        self.base = base

    def second_em(self) -> str:
        """Hash of a second (work) address, made only when an event sends two."""
        if self.em2 is None:
            local, _, domain = self.email.partition("@")
            self.em2 = sha256_hex(f"{local.split('.')[0]}@work.{domain}")
        return self.em2


def _phone(rng: SampleRng, fmt: str) -> str:
    r = rng.between
    if fmt == "de":
        return f"+49 15{r(1, 7)} {r(1000000, 9999999)}"
    if fmt == "es":
        return f"+34 6{r(10, 99)} {r(100, 999)} {r(100, 999)}"
    if fmt == "fr":
        return f"+33 6 {r(10, 99)} {r(10, 99)} {r(10, 99)} {r(10, 99)}"
    if fmt == "nl":
        return f"+31 6 {r(10000000, 99999999)}"
    return f"+1 ({r(201, 989)}) 555-{r(1000, 9999)}"


class Visitor:
    """A browser (cookie) identity: fbp, IP, user agent, hashed external_id, maybe a person."""

    __slots__ = (
        "fbp", "fbc", "fbc_bad", "ip", "ua", "xid", "country", "person", "adblock", "ident"
    )  # fmt: skip

    def __init__(self, rng: SampleRng, t: int, vid: int, xid: str | None = None):
        rnd = rng.random
        country = COUNTRY_PICK[int(rnd() * 100)]
        self.country = country
        self.adblock = rnd() < P_ADBLOCK
        # The Pixel sets _fbp on the first visit; blocked Pixels never set it.
        if self.adblock:
            self.fbp = None
        else:
            self.fbp = f"fb.1.{t * 1000 + int(rnd() * 1000)}.{1000000000 + int(rnd() * 9e9)}"
        self.fbc = self.fbc_bad = None
        if rnd() < 0.3:
            pre = country[6][int(rnd() * len(country[6]))]
            r = rng.getrandbits(96)
            # Six 16-bit groups, lowest first (one f-string: a generator join is slow).
            self.ip = (
                f"{pre}:{r & 0xFFFF:x}:{r >> 16 & 0xFFFF:x}:{r >> 32 & 0xFFFF:x}"
                f":{r >> 48 & 0xFFFF:x}:{r >> 64 & 0xFFFF:x}:{r >> 80 & 0xFFFF:x}"
            )
        else:
            pre = country[5][int(rnd() * len(country[5]))]
            self.ip = f"{pre}.{int(rnd() * 256)}.{1 + int(rnd() * 254)}"
        self.ua = _USER_AGENTS[int(rnd() * len(_USER_AGENTS))]
        self.xid = xid if xid is not None else sha256_hex(f"visitor-{vid}")
        self.person = None
        self.ident = None  # the diverse profile's customer values (userdata.Identity)

    def click(self, rng: SampleRng, t: int) -> None:
        """Record an ad click: a new fbclid and _fbc cookie (plus the seconds-based bug form)."""
        fbclid = (
            "IwAR" + base64.urlsafe_b64encode(rng.getrandbits(264).to_bytes(33, "big")).decode()
        )
        self.fbc = f"fb.1.{t * 1000 + rng.below(1000)}.{fbclid}"
        # Malformed variant: creation time in seconds (10 digits) instead of milliseconds.
        self.fbc_bad = f"fb.1.{t}.{fbclid}"
