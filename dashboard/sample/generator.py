"""Seeded synthetic sample generator: the ONE source of fake Pixel + CAPI logs.

This module owns the synthetic event log used by the tests, the demo data and the
benchmarks. It simulates about `days` days of traffic for two Meta datasets:

* ``1111111111``, a web shop sending every funnel step from the browser (Pixel) and,
  usually, again from its server (Conversions API) with the same event_id;
* ``2222222222``, a CRM (Kommo) sending Conversion Leads stages and click-to-WhatsApp
  business-messaging events, server only.

Records follow log format v1: ``pixel_event`` (one browser event) and ``capi_request``
(one CAPI call: request body plus Meta's response, an error, or ``null`` on timeout).
Known defects are planted on purpose and every one of them is counted, as it is
emitted, in a :class:`GroundTruth`, so analysis code can be tested against exact numbers.

Output is byte-for-byte deterministic for a given (seed, parameters): all randomness
comes from one ``random.Random(seed)`` and records are produced in a fixed order. The
generator streams: it works hour slice by hour slice and keeps only the events that
are still waiting to be sent in memory, so 10 million events never sit in RAM at once.
Standard library only, plus orjson (when installed) to encode the lines faster.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import gc
import gzip
import hashlib
import heapq
import json
import queue
import random
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["GroundTruth", "iter_sample_records", "write_sample_log"]

_WEB_DATASET = "1111111111"
_CRM_DATASET = "2222222222"
_DEFAULT_START = datetime(2026, 10, 1, tzinfo=UTC)
_SHOP = "https://shop.example.com"
_PAGE_ID = "104857600123456"
_TEST_EVENT_CODE = "TEST12345"
_CRM_NAME = "Kommo"

_TOKEN_ERROR_MESSAGE = "Error validating access token: Session has expired"
_TOO_OLD_MESSAGE = "Invalid parameter"
_TOO_OLD_TITLE = "Event Timestamp Too Old"

# Share of all generated events per traffic kind; sources of a kind split it by weight.
_KIND_SHARE = {"web_shop": 0.66, "web_form": 0.10, "crm_lead_ads": 0.15, "click_to_whatsapp": 0.09}

# (campaign, kind, weight within kind, first active day fraction, end fraction, conversion x)
# A campaign of None is organic web traffic (no utm, no ad click).
_SOURCES = (
    ("autumn_sale_prospecting", "web_shop", 0.20, 0.0, 0.75, 0.8),
    ("black_friday_retargeting", "web_shop", 0.12, 0.45, 1.0, 1.8),
    ("catalog_dpa_broad", "web_shop", 0.17, 0.0, 1.0, 1.2),
    ("new_collection_video", "web_shop", 0.10, 0.2, 1.0, 0.7),
    ("lookalike_purchasers_1pct", "web_shop", 0.11, 0.0, 1.0, 1.0),
    (None, "web_shop", 0.30, 0.0, 1.0, 1.0),
    ("spring_leads_form", "web_form", 0.6, 0.0, 1.0, 1.0),
    ("webinar_signup_form", "web_form", 0.4, 0.1, 0.9, 1.0),
    ("b2b_demo_instant_form", "crm_lead_ads", 0.55, 0.0, 1.0, 1.0),
    ("consultation_lead_ads", "crm_lead_ads", 0.45, 0.0, 1.0, 1.0),
    ("whatsapp_chat_promo", "click_to_whatsapp", 0.6, 0.0, 1.0, 1.0),
    ("ctwa_autumn_offer", "click_to_whatsapp", 0.4, 0.0, 0.8, 1.0),
)
# The web-form campaign whose server Lead events forget the e-mail (planted defect 1).
_LEADS_WITHOUT_EM_CAMPAIGN = "spring_leads_form"

# Web funnel: probability to reach each step from the previous one, and the share of
# browser events the server also sends (ViewContent is often skipped server-side).
_P_VIEW, _P_CART, _P_CHECKOUT, _P_PURCHASE = 0.80, 0.22, 0.50, 0.62
_P_FORM_LEAD = 0.30
_COVERAGE = {
    "PageView": 0.95,
    "ViewContent": 0.70,
    "AddToCart": 0.90,
    "InitiateCheckout": 0.92,
    "Purchase": 0.96,
    "Lead": 0.95,
}
# Visitors whose ad blocker stops the Pixel: the server still reports their events.
_P_ADBLOCK = 0.04
_P_RETURNING = 0.20
_P_LOGGED_IN = 0.30  # share of returning, already known visitors who are logged in

# CRM stages: (event_name, CRM stage label, event_id slug, P(reach from previous stage)).
_CRM_STAGES = (
    ("Contact", "Contacted", "contacted", 1.0),
    ("Lead", "Qualified", "qualified", 0.55),
    ("Schedule", "Demo scheduled", "demo_scheduled", 0.55),
    ("Purchase", "Closed won", "closed_won", 0.35),
)
# Delay range (s) from the previous stage (from lead creation for the first one).
_CRM_DELAYS = ((600, 6 * 3600), (2 * 3600, 3 * 86400), (12 * 3600, 4 * 86400), (86400, 10 * 86400))
_MSG_STAGES = (
    ("LeadSubmitted", "leadsubmitted", 1.0),
    ("QualifiedLead", "qualifiedlead", 0.45),
    ("Purchase", "purchase", 0.35),
)
_MSG_DELAYS = ((60, 1800), (3600, 2 * 86400), (12 * 3600, 6 * 86400))

_WEB_STEPS = ("PageView", "ViewContent", "AddToCart", "InitiateCheckout", "Purchase", "Lead")
_EVENT_NAMES = tuple(
    dict.fromkeys(_WEB_STEPS + tuple(s[0] for s in _CRM_STAGES + _MSG_STAGES)).keys()
)

_LATE_STAGE = "Schedule"
_LATE_MIN_LAG, _LATE_MAX_LAG = 86_400, 93_600

# A sender flushes its queue at most this long (s) after the queue's first event: the shop
# server flushes quickly, the CRM middleware syncs every few minutes.
_WEB_WINDOW = 45
_CRM_WINDOW = 300
_WINDOW = {_WEB_DATASET: _WEB_WINDOW, _CRM_DATASET: _CRM_WINDOW}
# Target batch size 1-5 with weights 30/25/20/15/10 (index with a draw below 100).
_BATCH_SIZE_PICK = (1,) * 30 + (2,) * 25 + (3,) * 20 + (4,) * 15 + (5,) * 10
_RETRY_DELAY = (30, 1200)

# Planted-defect rates, applied to the events that can carry the defect.
_RATE_PLAINTEXT_EM = 0.065  # of server events with em -> about 2% of all server events
_RATE_PLAINTEXT_PH = 0.003  # of server events with ph -> "a few"
_RATE_BAD_FBC = 0.065  # of server events with fbc -> about 3% of all server events
_RATE_NO_EVENT_ID = 0.15  # of web server Purchase events
_RATE_TIMEOUT = 0.005  # of capi_requests
_RATE_TOO_OLD = 0.0015  # of capi_requests
_P_EM_LIST_WEB = 0.25
_P_EM_LIST_CRM = 0.75  # the CRM connector uses the SDK, which sends lists

# Flags kept next to each server event, never written into it.
_F_PLAINTEXT_EM = 1
_F_PLAINTEXT_PH = 2
_F_BAD_FBC = 4
_F_NO_EVENT_ID = 8
_F_LEAD_NO_EM = 16
_F_LATE = 32
_F_SERVER_ONLY = 64
_F_PURCHASE_TWIN = 128  # web server Purchase whose browser twin was sent: may lose event_id
_F_EM_LIST = 256  # em sent as a list, the way the official SDKs send it
# Events whose truth must be exact get batches that never time out or fail by chance.
_PROTECTED = _F_LEAD_NO_EM | _F_LATE

_OK, _OK_TEST, _TIMEOUT, _TOO_OLD, _TOKEN = range(5)

_HOUR_WEIGHTS = (
    0.45, 0.3, 0.22, 0.2, 0.22, 0.3, 0.5, 0.75, 0.95, 1.05, 1.1, 1.15,
    1.15, 1.1, 1.05, 1.05, 1.1, 1.2, 1.35, 1.5, 1.5, 1.35, 1.05, 0.7,
)  # fmt: skip
_WEEKDAY_WEIGHTS = (1.0, 1.02, 1.0, 1.03, 0.97, 0.85, 0.9)  # Monday first

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
_COUNTRY_PICK = tuple(c for c in _COUNTRIES for _ in range(c[1]))
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
_N_PRODUCTS = 240
_PRICES = tuple(round(9.99 + (i * 7919 % 19000) / 100, 2) for i in range(_N_PRODUCTS))
_SKUS = tuple(f"SKU-{i:04d}" for i in range(_N_PRODUCTS))


@dataclass
class GroundTruth:
    """Planted defects and totals of one generated sample, counted as records are emitted.

    Event counts are occurrences inside emitted records: a server event re-sent after a
    timeout or error counts once per capi_request that carries it. Fields:

    * seed, target_events, start (ISO Z), days, datasets {"web", "crm"}, campaigns (names),
      campaign_types (name -> web_shop | web_form | crm_lead_ads | click_to_whatsapp);
    * records = pixel_records + capi_requests; total_events = browser_events + server_events;
      server_events counts every event in every capi_request (accepted, rejected, timed
      out, retried); server_events_accepted (status 200); server_events_in_rejected_batches
      (status 400: token burst + genuine errors); server_events_in_timed_out_batches
      (response null); rejected_batches, timed_out_batches; web_server_only_events (ad
      blocker: server event without a Pixel twin, first sends only); server_em_list_events
      (em sent as a list); events_by_dataset {id: {browser, server, by_event_name}};
      first_sent_at, last_sent_at;
    * planted defects, one dict each: leads_without_em, purchases_without_event_id,
      late_stage, plaintext_emails, plaintext_phones, malformed_fbc, token_error_burst,
      test_event_code_left_on; and genuine_errors (code 100 / 2804003), timeouts, retries.
    """

    seed: int = 42
    target_events: int = 20_000
    start: str = ""
    days: int = 35
    datasets: dict = field(default_factory=dict)
    campaigns: list = field(default_factory=list)
    campaign_types: dict = field(default_factory=dict)
    records: int = 0
    pixel_records: int = 0
    capi_requests: int = 0
    total_events: int = 0
    browser_events: int = 0
    server_events: int = 0
    server_events_accepted: int = 0
    server_events_in_rejected_batches: int = 0
    server_events_in_timed_out_batches: int = 0
    rejected_batches: int = 0
    timed_out_batches: int = 0
    web_server_only_events: int = 0
    server_em_list_events: int = 0
    events_by_dataset: dict = field(default_factory=dict)
    first_sent_at: str | None = None
    last_sent_at: str | None = None
    leads_without_em: dict = field(default_factory=dict)
    purchases_without_event_id: dict = field(default_factory=dict)
    late_stage: dict = field(default_factory=dict)
    plaintext_emails: dict = field(default_factory=dict)
    plaintext_phones: dict = field(default_factory=dict)
    malformed_fbc: dict = field(default_factory=dict)
    token_error_burst: dict = field(default_factory=dict)
    test_event_code_left_on: dict = field(default_factory=dict)
    genuine_errors: dict = field(default_factory=dict)
    timeouts: dict = field(default_factory=dict)
    retries: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Return a JSON-able deep copy of the truth."""
        return asdict(self)


class _Rng(random.Random):
    """random.Random with cheap integer draws (randrange costs ~10x more per call)."""

    def below(self, n: int) -> int:
        """Uniform int in [0, n)."""
        return int(self.random() * n)

    def between(self, a: int, b: int) -> int:
        """Uniform int in [a, b], both ends included."""
        return a + int(self.random() * (b - a + 1))


def _sha(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


_HASH_CACHE: dict[str, str] = {}
_BASE_CACHE: dict[tuple, dict] = {}


def _sha_cached(value: str) -> str:
    # Names, cities and countries repeat a lot; hash each distinct value once.
    h = _HASH_CACHE.get(value)
    if h is None:
        h = _HASH_CACHE[value] = _sha(value)
    return h


class _Person:
    """A known identity with its hashes computed once (hashing per event would be slow)."""

    __slots__ = ("email", "em", "em2", "phone", "ph", "base", "country")

    def __init__(self, rng: _Rng, country: tuple, with_email: bool, with_phone: bool):
        rnd = rng.random
        fn = _FIRST_NAMES[int(rnd() * len(_FIRST_NAMES))]
        ln = _LAST_NAMES[int(rnd() * len(_LAST_NAMES))]
        city, st, zips = country[3][int(rnd() * len(country[3]))]
        zp = zips[int(rnd() * len(zips))]
        self.country = country
        self.em2 = None
        if with_email:
            self.email = f"{fn}.{ln}{1 + int(rnd() * 99)}@{_DOMAINS[int(rnd() * 3)]}"
            self.em = _sha(self.email)
        else:
            self.email = self.em = None
        if with_phone:
            self.phone = _phone(rng, country[4])
            # Meta's rule: digits only, country code kept, no leading '+' or zeros.
            self.ph = _sha(self.phone.translate(_NON_DIGITS))
        else:
            self.phone = self.ph = None
        # Persons sharing name and place share one (read-only) dict of those hashes.
        key = (fn, ln, city, zp, country[0])
        base = _BASE_CACHE.get(key)
        if base is None:
            base = _BASE_CACHE[key] = {
                "fn": _sha_cached(fn),
                "ln": _sha_cached(ln),
                "ct": _sha_cached(city),
                "st": _sha_cached(st),
                "zp": _sha_cached(zp),
                "country": _sha_cached(country[0]),
            }
        self.base = base

    def second_em(self) -> str:
        """Hash of a second (work) address, made only when an event sends two."""
        if self.em2 is None:
            local, _, domain = self.email.partition("@")
            self.em2 = _sha(f"{local.split('.')[0]}@work.{domain}")
        return self.em2


def _phone(rng: _Rng, fmt: str) -> str:
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


class _Visitor:
    """A browser (cookie) identity: fbp, IP, user agent, hashed external_id, maybe a person."""

    __slots__ = ("fbp", "fbc", "fbc_bad", "ip", "ua", "xid", "country", "person", "adblock")

    def __init__(self, rng: _Rng, t: int, vid: int):
        rnd = rng.random
        country = _COUNTRY_PICK[int(rnd() * 100)]
        self.country = country
        self.adblock = rnd() < _P_ADBLOCK
        # The Pixel sets _fbp on the first visit; blocked Pixels never set it.
        if self.adblock:
            self.fbp = None
        else:
            self.fbp = f"fb.1.{t * 1000 + int(rnd() * 1000)}.{1000000000 + int(rnd() * 9e9)}"
        self.fbc = self.fbc_bad = None
        if rnd() < 0.3:
            pre = country[6][int(rnd() * len(country[6]))]
            r = rng.getrandbits(96)
            self.ip = pre + "".join(f":{(r >> k) & 0xFFFF:x}" for k in range(0, 96, 16))
        else:
            pre = country[5][int(rnd() * len(country[5]))]
            self.ip = f"{pre}.{int(rnd() * 256)}.{1 + int(rnd() * 254)}"
        self.ua = _USER_AGENTS[int(rnd() * len(_USER_AGENTS))]
        self.xid = _sha(f"visitor-{vid}")
        self.person = None

    def click(self, rng: _Rng, t: int) -> None:
        """Record an ad click: a new fbclid and _fbc cookie (plus the seconds-based bug form)."""
        fbclid = (
            "IwAR" + base64.urlsafe_b64encode(rng.getrandbits(264).to_bytes(33, "big")).decode()
        )
        self.fbc = f"fb.1.{t * 1000 + rng.below(1000)}.{fbclid}"
        # Malformed variant: creation time in seconds (10 digits) instead of milliseconds.
        self.fbc_bad = f"fb.1.{t}.{fbclid}"


class _Quota:
    """Hit about `rate` of the calls, spread out so small samples still get their defects.

    A countdown to the next hit (uniform gap with mean 1/rate) instead of a coin per call:
    the first hit comes within 1/rate eligible events and counts never drift far.
    """

    __slots__ = ("rng", "span", "left")

    def __init__(self, rng: _Rng, rate: float):
        self.rng = rng
        self.span = 2.0 / rate - 1.0
        self.left = 1 + int(rng.random() / rate)

    def hit(self) -> bool:
        """Return True when this eligible event should carry the defect."""
        self.left -= 1
        if self.left:
            return False
        self.left = 1 + int(self.rng.random() * self.span)
        return True


class _Batch:
    """Server events queued by one sender until the queue is full or its flush time passes."""

    __slots__ = ("events", "flags", "first", "last", "deadline", "size", "protected")

    def __init__(self, first: int, deadline: int, size: int):
        self.events: list = []
        self.flags: list = []
        self.first = first
        self.last = first
        self.deadline = deadline
        self.size = size
        self.protected = False


def _expected_events(kind: str, mult: float) -> float:
    """Expected events (browser + server) per unit (session, lead, conversation) of a kind."""
    if kind == "web_shop":
        steps = ("PageView", "ViewContent", "AddToCart", "InitiateCheckout", "Purchase")
        probs = (1.0, _P_VIEW, min(1.0, _P_CART * mult), _P_CHECKOUT, _P_PURCHASE)
    elif kind == "web_form":
        steps, probs = ("PageView", "Lead"), (1.0, _P_FORM_LEAD)
    else:
        stages = _CRM_STAGES if kind == "crm_lead_ads" else _MSG_STAGES
        total, reach = 0.0, 1.0
        for stage in stages:
            reach *= stage[-1]
            total += reach
        return total
    total, reach = 0.0, 1.0
    for name, p in zip(steps, probs, strict=True):
        reach *= p
        browser = reach * (1.0 + _COVERAGE[name])
        total += (1.0 - _P_ADBLOCK) * browser + _P_ADBLOCK * reach
    return total


class _Generator:
    """Holds the streaming state: pending server events, open batches, records to emit."""

    def __init__(self, seed: int, target: int, start: datetime, days: int, truth: GroundTruth):
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        self.rng = rng = _Rng(seed)
        self.t0 = int(start.timestamp())
        self.days = max(1, int(days))
        self.end = self.t0 + self.days * 86400
        self.target = max(1, int(target))
        self.truth = truth
        self.items: list = []  # (time, seq, kind, a, b, c): server events and lazy stages
        self.out: list = []  # (sent_at, seq, record, meta): finished records
        self.ready: list = []  # records final in sent_at order, yielded after each slice
        self.next_expiry = 1 << 62  # earliest flush time of an open batch
        self.seq = 0
        self.open: dict[str, _Batch | None] = {_WEB_DATASET: None, _CRM_DATASET: None}
        self.pool: list[_Visitor] = []
        self.n_visitors = 0
        self.n_orders = 100000
        self.n_contacts = 5000
        self.iso_days: dict[int, str] = {}
        self.q_pt_em = _Quota(rng, _RATE_PLAINTEXT_EM)
        self.q_pt_ph = _Quota(rng, _RATE_PLAINTEXT_PH)
        self.q_bad_fbc = _Quota(rng, _RATE_BAD_FBC)
        self.q_no_id = _Quota(rng, _RATE_NO_EVENT_ID)
        self.q_timeout = _Quota(rng, _RATE_TIMEOUT)
        self.q_too_old = _Quota(rng, _RATE_TOO_OLD)
        self._plan_incidents()
        self._plan_sources()
        self._init_truth(seed)
        self.pt_emails: dict[str, None] = {}
        self.pt_phones: dict[str, None] = {}

    # ----------------------------------------------------------------- planning
    def _day_start(self, day: int) -> int:
        return self.t0 + max(0, min(self.days - 1, day)) * 86400

    def _plan_incidents(self) -> None:
        rng = self.rng
        # Token expiry: a weekday morning a bit after the middle of the period.
        day = round(self.days * 0.55)
        for d in (day, day + 1, day + 2, day - 1, day - 2):
            if 0 <= d < self.days and _weekday(self._day_start(d)) < 5:
                day = d
                break
        self.burst_start = self._day_start(day) + 9 * 3600 + rng.below(3600)
        self.burst_end = min(self.end - 1, self.burst_start + 7200 + rng.between(-600, 600))
        self.burst_batches = 0
        self.burst_over = False
        # test_event_code forgotten on the CRM connector for 30-40 h after a deploy.
        day = round(self.days * 0.3)
        self.test_start = self._day_start(day) + 13 * 3600 + rng.below(7200)
        self.test_end = min(self.end - 1, self.test_start + rng.between(30 * 3600, 40 * 3600))

    def _plan_sources(self) -> None:
        # Expected units per source = target * kind share * weight / events per unit;
        # spread over hour slices by weekday, hour of day and the campaign's flight.
        self.slices = self.days * 24
        self.sources = []
        for name, kind, weight, f0, f1, mult in _SOURCES:
            d0, d1 = int(f0 * self.days), max(int(f0 * self.days) + 1, round(f1 * self.days))
            units = self.target * _KIND_SHARE[kind] * weight / _expected_events(kind, mult)
            weights = []
            for s in range(self.slices):
                ts = self.t0 + s * 3600
                day = s // 24
                w = 0.0
                if d0 <= day < d1:
                    w = _WEEKDAY_WEIGHTS[_weekday(ts)] * _HOUR_WEIGHTS[(ts // 3600) % 24]
                weights.append(w)
            total = sum(weights) or 1.0
            per_slice = [units * w / total for w in weights]
            query = f"?utm_source=facebook&utm_campaign={name}" if name else ""
            self.sources.append((name, kind, mult, per_slice, query))

    def _init_truth(self, seed: int) -> None:
        tr = self.truth
        tr.seed, tr.target_events, tr.days = seed, self.target, self.days
        tr.start = _iso_full(self.t0)
        tr.datasets = {"web": _WEB_DATASET, "crm": _CRM_DATASET}
        tr.campaigns = [s[0] for s in _SOURCES if s[0]]
        tr.campaign_types = {s[0]: s[1] for s in _SOURCES if s[0]}
        # by_event_name holds [browser, server] lists while running, dicts at the end.
        tr.events_by_dataset = {
            ds: {"browser": 0, "server": 0, "by_event_name": {n: [0, 0] for n in _EVENT_NAMES}}
            for ds in (_WEB_DATASET, _CRM_DATASET)
        }
        tr.leads_without_em = {
            "campaign": _LEADS_WITHOUT_EM_CAMPAIGN,
            "dataset_id": _WEB_DATASET,
            "event_name": "Lead",
            "events": 0,
            "events_accepted": 0,
            "events_in_rejected_batches": 0,
        }
        tr.purchases_without_event_id = {
            "dataset_id": _WEB_DATASET,
            "event_name": "Purchase",
            "events": 0,
            "max_event_time_diff_s": 0,
        }
        tr.late_stage = {
            "dataset_id": _CRM_DATASET,
            "event_name": _LATE_STAGE,
            "stage": "Demo scheduled",
            "events": 0,
            "min_lag_s": None,
            "max_lag_s": None,
        }
        tr.plaintext_emails = {"events": 0, "addresses": []}
        tr.plaintext_phones = {"events": 0, "numbers": []}
        tr.malformed_fbc = {"events": 0}
        tr.token_error_burst = {
            "dataset_id": _WEB_DATASET,
            "code": 190,
            "error_subcode": 463,
            "type": "OAuthException",
            "batches": 0,
            "events": 0,
            "first_sent_at": None,
            "last_sent_at": None,
        }
        tr.test_event_code_left_on = {
            "dataset_id": _CRM_DATASET,
            "test_event_code": _TEST_EVENT_CODE,
            "window_start": _iso_full(self.test_start),
            "window_end": _iso_full(self.test_end),
            "batches": 0,
            "events": 0,
            "first_sent_at": None,
            "last_sent_at": None,
        }
        tr.genuine_errors = {"code": 100, "error_subcode": 2804003, "batches": 0, "events": 0}
        tr.timeouts = {"batches": 0, "events": 0}
        tr.retries = {
            "batches": 0,
            "events": 0,
            "after_timeout": 0,
            "after_error": 0,
            "batches_after_timeout": 0,
            "batches_after_error": 0,
        }

    # ----------------------------------------------------------------- helpers
    def _iso(self, ts: int) -> str:
        # Cached day prefix + "HH:MM:SS" table: formatting a datetime per record is slow.
        day, sod = divmod(ts, 86400)
        prefix = self.iso_days.get(day)
        if prefix is None:
            prefix = self.iso_days[day] = _iso_full(day * 86400)[:11]
        return prefix + _HMS[sod]

    def _push_item(self, t: int, kind: int, a, b, c) -> None:
        self.seq += 1
        heapq.heappush(self.items, (t, self.seq, kind, a, b, c))

    def _push_out(self, sent: int, record: dict, meta) -> None:
        self.seq += 1
        heapq.heappush(self.out, (sent, self.seq, record, meta))

    def _hex_id(self) -> str:
        return f"{self.rng.getrandbits(64):016x}"

    def _trace(self) -> str:
        return f"A{self.rng.getrandbits(92):023x}"

    def _contact(self, ud: dict, person: _Person, p_list: float, with_em: bool = True) -> int:
        """Add em/ph to user_data the way the sender does (hash, list or a planted bug)."""
        rng = self.rng
        flags = 0
        as_list = rng.random() < p_list
        if with_em and person.em is not None:
            if as_list:
                flags |= _F_EM_LIST
            if self.q_pt_em.hit():
                flags |= _F_PLAINTEXT_EM
                ud["em"] = [person.email] if as_list else person.email
            elif as_list:
                ud["em"] = [person.em, person.second_em()] if rng.random() < 0.35 else [person.em]
            else:
                ud["em"] = person.em
        if person.ph is not None:
            if self.q_pt_ph.hit():
                flags |= _F_PLAINTEXT_PH
                ud["ph"] = [person.phone] if as_list else person.phone
            else:
                ud["ph"] = [person.ph] if as_list else person.ph
        return flags

    # ----------------------------------------------------------------- web traffic
    def _visitor(self, t: int) -> _Visitor:
        rng = self.rng
        if self.pool and rng.random() < _P_RETURNING:
            return self.pool[int(rng.random() * len(self.pool))]
        self.n_visitors += 1
        v = _Visitor(rng, t, self.n_visitors)
        # A bounded pool of recent visitors gives returning users without growing memory.
        if len(self.pool) < 5000:
            self.pool.append(v)
        else:
            self.pool[rng.below(5000)] = v
        return v

    def _web_session(self, t: int, source: tuple) -> None:
        rng = self.rng
        rnd = rng.random
        name, kind, mult, _, query = source
        v = self._visitor(t)
        if name is not None:
            v.click(rng, t)
        if v.person is not None and rnd() >= _P_LOGGED_IN:
            known = None  # returning customer, not logged in this time
        else:
            known = v.person
        cur = v.country[2]
        emit = self._web_event
        if kind == "web_form":
            url = f"{_SHOP}/lp/{name.replace('_', '-')}{query}"
            if not emit("PageView", t, url, None, v, name, known):
                return
            if rnd() < _P_FORM_LEAD:
                t += 30 + int(rnd() * 371)
                known = v.person or self._new_web_person(v)
                cd = {"content_name": "signup_form", "content_category": "lead_form"}
                emit("Lead", t, url, cd, v, name, known)
            return
        pid = int(rnd() * _N_PRODUCTS)
        price, sku = _PRICES[pid], _SKUS[pid]
        url = f"{_SHOP}/product/{pid}{query}"
        if not emit("PageView", t, url, None, v, name, known) or rnd() >= _P_VIEW:
            return
        t += 2 + int(rnd() * 39)
        cd = {"content_ids": [sku], "content_type": "product", "value": price, "currency": cur}
        if not emit("ViewContent", t, url, cd, v, name, known) or rnd() >= _P_CART * mult:
            return
        t += 15 + int(rnd() * 386)
        qty = 1 if rnd() < 0.75 else 2 + int(rnd() * 2)
        value = round(price * qty, 2)
        cd = {"content_ids": [sku], "content_type": "product", "value": value, "currency": cur}
        if not emit("AddToCart", t, url, cd, v, name, known) or rnd() >= _P_CHECKOUT:
            return
        t += 20 + int(rnd() * 581)
        # The checkout form is where an anonymous visitor becomes a known person.
        known = v.person or self._new_web_person(v)
        cd = {"content_ids": [sku], "num_items": qty, "value": value, "currency": cur}
        url = f"{_SHOP}/checkout{query}"
        if not emit("InitiateCheckout", t, url, cd, v, name, known) or rnd() >= _P_PURCHASE:
            return
        t += 45 + int(rnd() * 856)
        self.n_orders += 1
        cd = {
            "value": value,
            "currency": cur,
            "order_id": f"ORD-{self.n_orders}",
            "content_ids": [sku],
            "content_type": "product",
            "num_items": qty,
        }
        emit("Purchase", t, f"{_SHOP}/checkout/thank-you{query}", cd, v, name, known)

    def _new_web_person(self, v: _Visitor) -> _Person:
        v.person = _Person(self.rng, v.country, True, self.rng.random() < 0.75)
        return v.person

    def _web_event(
        self, name: str, t: int, url: str, cd, v: _Visitor, campaign, known: _Person | None
    ) -> bool:
        """Emit one web funnel step (Pixel record and usually its server twin)."""
        if t >= self.end:
            return False
        rng = self.rng
        rnd = rng.random
        eid = cd["order_id"] if name == "Purchase" else f"{rng.getrandbits(64):016x}"
        fbc = v.fbc
        if not v.adblock:
            if fbc:
                pud = {"fbp": v.fbp, "fbc": fbc, "client_user_agent": v.ua}
            else:
                pud = {"fbp": v.fbp, "client_user_agent": v.ua}
            pud["client_ip_address"] = v.ip
            if known is not None:
                pud["em"] = known.em
            pud["external_id"] = v.xid
            ev = {
                "event_name": name,
                "event_time": t,
                "event_id": eid,
                "action_source": "website",
                "event_source_url": url,
                "user_data": pud,
                "custom_data": cd if cd is not None else {},  # fresh per step; server copies
            }
            rec = {
                "kind": "pixel_event",
                "sent_at": self._iso(t),
                "dataset_id": _WEB_DATASET,
                "event": ev,
            }
            self.seq += 1
            heapq.heappush(self.out, (t, self.seq, rec, None))
            if rnd() >= _COVERAGE[name]:
                return True
        r = rnd()
        send = t + (1 + int(89 * r * r) if r < 0.9 else 90 + int(rnd() * 511))
        if send + _WEB_WINDOW >= self.end:
            return True
        flags = _F_SERVER_ONLY if v.adblock else 0
        if known is not None:
            ud: dict = {}
            no_em = name == "Lead" and campaign == _LEADS_WITHOUT_EM_CAMPAIGN
            if no_em:
                flags |= _F_LEAD_NO_EM
            flags |= self._contact(ud, known, _P_EM_LIST_WEB, with_em=not no_em)
            ud.update(known.base)
            ud["external_id"] = v.xid
        else:
            ud = {"external_id": v.xid}
        ud["client_ip_address"] = v.ip
        ud["client_user_agent"] = v.ua
        if fbc:
            q = self.q_bad_fbc
            q.left -= 1
            if q.left:
                ud["fbc"] = fbc
            else:
                q.left = 1 + int(rnd() * q.span)
                flags |= _F_BAD_FBC
                ud["fbc"] = v.fbc_bad
        if v.fbp:
            ud["fbp"] = v.fbp
        if name == "Purchase" and not v.adblock:
            flags |= _F_PURCHASE_TWIN
        ev = {
            "event_name": name,
            "event_time": t,
            "event_id": eid,
            "action_source": "website",
            "event_source_url": url,
            "user_data": ud,
            "custom_data": dict(cd) if cd else {},
        }
        self.seq += 1
        heapq.heappush(self.items, (send, self.seq, 0, _WEB_DATASET, ev, flags))
        return True

    # ----------------------------------------------------------------- CRM and messaging
    def _crm_lead(self, t: int, source: tuple) -> None:
        rng = self.rng
        country = _COUNTRY_PICK[rng.below(100)]
        self.n_contacts += 1
        lead = (
            str(rng.randrange(10**14, 10**17)),  # lead_id: 15-17 digits, from the lead form
            _Person(rng, country, True, True),
            _sha(f"kommo-contact-{self.n_contacts}"),
            source[0],
        )
        self._next_stage(t, 1, lead, 0)

    def _msg_lead(self, t: int, source: tuple) -> None:
        rng = self.rng
        country = _COUNTRY_PICK[rng.below(100)]
        clid = "ARA" + base64.urlsafe_b64encode(rng.getrandbits(240).to_bytes(30, "big")).decode()
        convo = (clid, _Person(rng, country, False, True), self._hex_id()[:12], source[0])
        self._next_stage(t, 2, convo, 0)

    def _next_stage(self, t: int, kind: int, unit: tuple, stage: int) -> None:
        stages, delays = (_CRM_STAGES, _CRM_DELAYS) if kind == 1 else (_MSG_STAGES, _MSG_DELAYS)
        if stage >= len(stages) or self.rng.random() >= stages[stage][-1]:
            return
        t += self.rng.between(*delays[stage])
        if kind == 1:
            t = _business_hours(self.rng, t)  # sales reps move leads during office hours
        if t < self.end:
            self._push_item(t, kind, unit, stage, 0)

    def _crm_event(self, t: int, lead: tuple, stage: int) -> None:
        rng = self.rng
        name, _, slug, _ = _CRM_STAGES[stage]
        lead_id, person, xid, campaign = lead
        if name == _LATE_STAGE:
            # Planted: this stage is only synced by a nightly job, about a day late.
            send = t + rng.between(_LATE_MIN_LAG + 5, _LATE_MAX_LAG - _CRM_WINDOW - 5)
            flags = _F_LATE
        else:
            send = t + rng.between(20, 900)
            flags = 0
        if send + _CRM_WINDOW < self.end:
            ud = {"lead_id": lead_id}
            flags |= self._contact(ud, person, _P_EM_LIST_CRM)
            ud["fn"] = person.base["fn"]
            ud["ln"] = person.base["ln"]
            ud["country"] = person.base["country"]
            ud["external_id"] = xid
            cd = {"event_source": "crm", "lead_event_source": _CRM_NAME, "campaign": campaign}
            if name == "Purchase":
                cd["value"] = float(rng.between(50, 499) * 10)
                cd["currency"] = "EUR"
            ev = {
                "event_name": name,
                "event_time": t,
                "event_id": f"crm-{lead_id}-{slug}",
                "action_source": "system_generated",
                "user_data": ud,
                "custom_data": cd,
            }
            self._push_item(send, 0, _CRM_DATASET, ev, flags)
        self._next_stage(t, 1, lead, stage + 1)

    def _msg_event(self, t: int, convo: tuple, stage: int) -> None:
        rng = self.rng
        name, slug, _ = _MSG_STAGES[stage]
        clid, person, convo_id, campaign = convo
        send = t + rng.between(5, 300)
        if send + _CRM_WINDOW < self.end:
            ud = {"ctwa_clid": clid, "page_id": _PAGE_ID}
            flags = self._contact(ud, person, _P_EM_LIST_CRM)
            cd = {"campaign": campaign}
            if name == "Purchase":
                cd["value"] = rng.between(2000, 39999) / 100
                cd["currency"] = "EUR"
            ev = {
                "event_name": name,
                "event_time": t,
                "event_id": f"wa-{convo_id}-{slug}",
                "action_source": "business_messaging",
                "messaging_channel": "whatsapp",
                "user_data": ud,
                "custom_data": cd,
            }
            self._push_item(send, 0, _CRM_DATASET, ev, flags)
        self._next_stage(t, 2, convo, stage + 1)

    # ----------------------------------------------------------------- batching
    def _add_server_event(self, t: int, ds: str, ev: dict, flags: int) -> None:
        b = self.open[ds]
        if b is None:
            size = _BATCH_SIZE_PICK[int(self.rng.random() * 100)]
            b = self.open[ds] = _Batch(t, t + _WINDOW[ds], size)
            if b.deadline < self.next_expiry:
                self.next_expiry = b.deadline
        b.events.append(ev)
        b.flags.append(flags)
        b.last = t
        if flags & _PROTECTED:
            b.protected = True
        if len(b.events) >= b.size:
            self._close_batch(ds)

    def _expire_batches(self, now: int) -> None:
        # Close batches whose flush timer ran out; remember when the next one will.
        nxt = 1 << 62
        for ds in (_WEB_DATASET, _CRM_DATASET):
            b = self.open[ds]
            if b is not None:
                if b.deadline < now:
                    self._close_batch(ds)
                else:
                    nxt = min(nxt, b.deadline)
        self.next_expiry = nxt

    def _close_batch(self, ds: str) -> None:
        b = self.open[ds]
        self.open[ds] = None
        sent = b.last
        request: dict = {"data": b.events}
        in_test = ds == _CRM_DATASET and self.test_start <= sent < self.test_end
        if in_test:
            request["test_event_code"] = _TEST_EVENT_CODE
        status = _OK_TEST if in_test else _OK
        if ds == _WEB_DATASET and sent >= self.burst_start and not self.burst_over:
            # The expired token rejects everything for ~2 h (longer in tiny samples, so
            # that at least two batches show the burst); the lost events are not re-sent.
            if sent < self.burst_end or self.burst_batches < 2:
                status = _TOKEN
                self.burst_batches += 1
            else:
                self.burst_over = True
        if status == _OK and not b.protected:
            if self._faults_allowed(ds, sent):
                if self.q_timeout.hit():
                    status = _TIMEOUT
                elif self.q_too_old.hit():
                    status = _TOO_OLD
        if status == _OK and ds == _WEB_DATASET:
            self._drop_event_ids(b)
        if status == _TOKEN:
            err = {
                "message": _TOKEN_ERROR_MESSAGE,
                "type": "OAuthException",
                "code": 190,
                "error_subcode": 463,
                "fbtrace_id": self._trace(),
            }
            response = {"status": 400, "body": {"error": err}}
        elif status == _TOO_OLD:
            err = {
                "message": _TOO_OLD_MESSAGE,
                "type": "OAuthException",
                "code": 100,
                "error_subcode": 2804003,
                "is_transient": False,
                "error_user_title": _TOO_OLD_TITLE,
                "error_user_msg": "The timestamp for this event is too far in the past.",
                "fbtrace_id": self._trace(),
            }
            response = {"status": 400, "body": {"error": err}}
        elif status == _TIMEOUT:
            response = None
        else:
            body = {"events_received": len(b.events), "messages": [], "fbtrace_id": self._trace()}
            response = {"status": 200, "body": body}
        rec = {
            "kind": "capi_request",
            "sent_at": self._iso(sent),
            "dataset_id": ds,
            "request": request,
            "response": response,
        }
        self._push_out(sent, rec, (ds, b.flags, status, None))
        if status in (_TIMEOUT, _TOO_OLD):
            # The sender retries the same events (same event_id and event_time) later.
            retry_at = sent + self.rng.between(*_RETRY_DELAY)
            retry_req: dict = {"data": copy.deepcopy(b.events)}
            retry_test = ds == _CRM_DATASET and self.test_start <= retry_at < self.test_end
            if retry_test:
                retry_req["test_event_code"] = _TEST_EVENT_CODE
            body = {"events_received": len(b.events), "messages": [], "fbtrace_id": self._trace()}
            retry = {
                "kind": "capi_request",
                "sent_at": self._iso(retry_at),
                "dataset_id": ds,
                "request": retry_req,
                "response": {"status": 200, "body": body},
            }
            reason = "timeout" if status == _TIMEOUT else "error"
            meta = (ds, list(b.flags), _OK_TEST if retry_test else _OK, reason)
            self._push_out(retry_at, retry, meta)

    def _faults_allowed(self, ds: str, sent: int) -> bool:
        # Keep retries inside the period and out of the token-error burst.
        if sent + _RETRY_DELAY[1] + 60 >= self.end:
            return False
        if ds == _WEB_DATASET:
            return self.burst_over or sent < self.burst_start - _RETRY_DELAY[1] - 60
        return True

    def _drop_event_ids(self, b: _Batch) -> None:
        # Planted: the order webhook sends some Purchases without the Pixel's event_id and
        # with its own order timestamp (a little before the thank-you page fired), so
        # Meta cannot deduplicate and counts the purchase twice. Only in accepted batches.
        flags = b.flags
        for i, fl in enumerate(flags):
            if fl & _F_PURCHASE_TWIN and self.q_no_id.hit():
                ev = b.events[i]
                diff = self.rng.between(1, 45)
                b.events[i] = {
                    "event_name": ev["event_name"],
                    "event_time": ev["event_time"] - diff,
                    "action_source": ev["action_source"],
                    "event_source_url": ev["event_source_url"],
                    "user_data": ev["user_data"],
                    "custom_data": ev["custom_data"],
                }
                flags[i] = fl | _F_NO_EVENT_ID
                pwe = self.truth.purchases_without_event_id
                pwe["max_event_time_diff_s"] = max(pwe["max_event_time_diff_s"], diff)

    # ----------------------------------------------------------------- emission
    def _account_capi(self, sent: int, rec: dict, meta: tuple) -> None:
        tr = self.truth
        iso = rec["sent_at"]
        ds, flags, status, retry = meta
        data = rec["request"]["data"]
        n = len(data)
        tr.capi_requests += 1
        tr.server_events += n
        tr.total_events += n
        dsc = tr.events_by_dataset[ds]
        dsc["server"] += n
        by_name = dsc["by_event_name"]
        accepted = status in (_OK, _OK_TEST)
        if accepted:
            tr.server_events_accepted += n
        elif status == _TIMEOUT:
            tr.server_events_in_timed_out_batches += n
            tr.timed_out_batches += 1
            tr.timeouts["batches"] += 1
            tr.timeouts["events"] += n
        else:
            tr.server_events_in_rejected_batches += n
            tr.rejected_batches += 1
            if status == _TOKEN:
                tb = tr.token_error_burst
            else:
                tb = tr.genuine_errors
            tb["batches"] += 1
            tb["events"] += n
            if status == _TOKEN:
                tb["last_sent_at"] = iso
                if tb["first_sent_at"] is None:
                    tb["first_sent_at"] = iso
        if status == _OK_TEST:
            tc = tr.test_event_code_left_on
            tc["batches"] += 1
            tc["events"] += n
            tc["last_sent_at"] = iso
            if tc["first_sent_at"] is None:
                tc["first_sent_at"] = iso
        if retry is not None:
            rt = tr.retries
            rt["batches"] += 1
            rt["events"] += n
            rt["after_" + retry] += n
            rt["batches_after_" + retry] += 1
        for ev, fl in zip(data, flags, strict=True):
            by_name[ev["event_name"]][1] += 1
            if not fl:
                continue
            if fl & _F_EM_LIST:
                tr.server_em_list_events += 1
            if fl & _F_PLAINTEXT_EM:
                tr.plaintext_emails["events"] += 1
                em = ev["user_data"]["em"]
                self.pt_emails[em[0] if em.__class__ is list else em] = None
            if fl & _F_PLAINTEXT_PH:
                tr.plaintext_phones["events"] += 1
                ph = ev["user_data"]["ph"]
                self.pt_phones[ph[0] if ph.__class__ is list else ph] = None
            if fl & _F_BAD_FBC:
                tr.malformed_fbc["events"] += 1
            if fl & _F_SERVER_ONLY and retry is None:
                tr.web_server_only_events += 1
            if fl & _F_NO_EVENT_ID:
                tr.purchases_without_event_id["events"] += 1
            if fl & _F_LEAD_NO_EM:
                # Never in timed-out batches (protected), so events = accepted + rejected.
                lw = tr.leads_without_em
                lw["events"] += 1
                lw["events_accepted" if accepted else "events_in_rejected_batches"] += 1
            if fl & _F_LATE:
                ls = tr.late_stage
                lag = sent - ev["event_time"]
                ls["events"] += 1
                ls["min_lag_s"] = lag if ls["min_lag_s"] is None else min(ls["min_lag_s"], lag)
                ls["max_lag_s"] = lag if ls["max_lag_s"] is None else max(ls["max_lag_s"], lag)

    def _release(self, watermark: int) -> None:
        # Nothing produced later can be sent before the watermark, so these are final.
        out, ready, pop = self.out, self.ready, heapq.heappop
        while out and out[0][0] < watermark:
            ready.append(pop(out))

    def _watermark(self, now: int) -> int:
        for b in self.open.values():
            if b is not None and b.first < now:
                now = b.first
        return now

    def _pop_until(self, limit: int) -> None:
        items, out, pop = self.items, self.out, heapq.heappop
        add, crm, msg = self._add_server_event, self._crm_event, self._msg_event
        while items and items[0][0] < limit:
            t, _, kind, a, b, c = pop(items)
            if t > self.next_expiry:
                self._expire_batches(t)
            if kind == 0:
                add(t, a, b, c)
            elif kind == 1:
                crm(t, a, b)
            else:
                msg(t, a, b)
            if out and out[0][0] < t:
                self._release(self._watermark(t))

    def _drain(self) -> list[dict]:
        """Count the final records of this slice into the truth and hand them out."""
        ready, self.ready = self.ready, []
        if not ready:
            return []
        tr = self.truth
        account = self._account_capi
        browser = tr.events_by_dataset[_WEB_DATASET]["by_event_name"]
        pixels = 0
        records = []
        for sent, _, rec, meta in ready:
            if meta is None:
                pixels += 1
                browser[rec["event"]["event_name"]][0] += 1
            else:
                account(sent, rec, meta)
            records.append(rec)
        # Pixel totals are added once per slice: per-record attribute updates are slow.
        tr.records += len(ready)
        tr.pixel_records += pixels
        tr.browser_events += pixels
        tr.total_events += pixels
        tr.events_by_dataset[_WEB_DATASET]["browser"] += pixels
        if tr.first_sent_at is None:
            tr.first_sent_at = ready[0][2]["sent_at"]
        tr.last_sent_at = ready[-1][2]["sent_at"]
        return records

    def run(self) -> Iterator[dict]:
        """Generate hour slice by hour slice and yield records in sent_at order."""
        rng = self.rng
        for s in range(self.slices):
            a = self.t0 + s * 3600
            for source in self.sources:
                x = source[3][s]
                n = int(x)
                if rng.random() < x - n:
                    n += 1
                kind = source[1]
                make = (
                    self._web_session
                    if kind in ("web_shop", "web_form")
                    else self._crm_lead
                    if kind == "crm_lead_ads"
                    else self._msg_lead
                )
                rnd = rng.random
                for _ in range(n):
                    make(a + int(rnd() * 3600), source)
            b = a + 3600
            self._pop_until(b)
            self._expire_batches(b)
            self._release(self._watermark(b))
            yield from self._drain()
        self._pop_until(1 << 62)
        for ds in (_WEB_DATASET, _CRM_DATASET):
            if self.open[ds] is not None:
                self._close_batch(ds)
        self._release(1 << 62)
        yield from self._drain()
        self._finish()

    def _finish(self) -> None:
        tr = self.truth
        tr.plaintext_emails["addresses"] = list(self.pt_emails)
        tr.plaintext_phones["numbers"] = list(self.pt_phones)
        for dsc in tr.events_by_dataset.values():
            dsc["by_event_name"] = {
                k: {"browser": v[0], "server": v[1]}
                for k, v in sorted(dsc["by_event_name"].items())
                if v[0] or v[1]
            }


_HMS = tuple(f"{h:02d}:{m:02d}:{s:02d}Z" for h in range(24) for m in range(60) for s in range(60))


def _weekday(ts: int) -> int:
    return (ts // 86400 + 3) % 7  # 1970-01-01 was a Thursday


def _business_hours(rng: _Rng, t: int) -> int:
    hour = t // 3600 % 24
    if 7 <= hour < 18:
        return t
    day = t // 86400 + (1 if hour >= 18 else 0)
    return day * 86400 + 7 * 3600 + rng.below(10 * 3600)


def _iso_full(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iter_sample_records(
    *,
    seed: int = 42,
    target_events: int = 20_000,
    start: datetime = _DEFAULT_START,
    days: int = 35,
    truth: GroundTruth | None = None,
) -> Iterator[dict]:
    """Yield log records (dicts) in time order of sent_at; fills `truth` while yielding."""
    gen = _Generator(
        seed, target_events, start, days, truth if truth is not None else GroundTruth()
    )
    yield from gen.run()


def _truth_path(path: Path) -> Path:
    # <path minus .gz/.jsonl>.truth.json, e.g. demo.jsonl.gz -> demo.truth.json
    p = Path(path)
    name = p.name
    if name.endswith(".gz"):
        name = name[:-3]
    if name.endswith(".jsonl"):
        name = name[:-6]
    return p.with_name(name + ".truth.json")


def _pump(chunks: queue.Queue, sinks: list, errors: list) -> None:
    # Runs in a thread: zlib and file writes release the GIL, so compression overlaps
    # with generating the next records. Keeps draining after an error so put() never blocks.
    while True:
        buf = chunks.get()
        if buf is None:
            return
        if not errors:
            try:
                for sink in sinks:
                    sink.write(buf)
            except BaseException as exc:  # re-raised in the caller's thread
                errors.append(exc)


def write_sample_log(
    path: str | Path,
    *,
    seed: int = 42,
    target_events: int = 20_000,
    start: datetime = _DEFAULT_START,
    days: int = 35,
    gzip_copy: str | Path | None = None,
    compresslevel: int = 3,
) -> GroundTruth:
    """Write JSONL (gzip if .gz), one record a line, and <path minus .gz/.jsonl>.truth.json.

    `gzip_copy` writes the same lines gzip-compressed to a second file in the same pass
    (the benchmarks need both); `compresslevel` applies to every .gz output (the
    uncompressed lines are identical whatever the level).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    targets = [path]
    if gzip_copy is not None:
        targets.append(Path(gzip_copy))
        targets[-1].parent.mkdir(parents=True, exist_ok=True)
    truth = GroundTruth()
    records = iter_sample_records(
        seed=seed, target_events=target_events, start=start, days=days, truth=truth
    )
    # The records hold no reference cycles, but millions of short-lived dicts make the
    # cyclic GC rescan everything alive again and again (~20% of a 10M run): pause it.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        _write_records(targets, records, _encoder(), compresslevel)
    finally:
        if gc_was_enabled:
            gc.enable()
    _truth_path(path).write_text(json.dumps(truth.to_dict(), indent=2) + "\n", encoding="utf-8")
    return truth


def _encoder():
    """One record -> its line (bytes, no newline): json.dumps(rec, separators=(",", ":"))."""
    try:
        import orjson
    except ImportError:  # same bytes, ~3x slower
        encode = json.JSONEncoder(separators=(",", ":")).encode
        return lambda record: encode(record).encode("utf-8")
    # The same bytes as the json module's compact form for what the generator emits:
    # ASCII text, ints and short decimal floats (tests/test_sample.py checks the bytes).
    return orjson.dumps


def _write_records(paths: list[Path], records: Iterator[dict], encode, compresslevel: int) -> None:
    with contextlib.ExitStack() as stack:
        sinks = []
        for path in paths:
            raw = stack.enter_context(open(path, "wb"))
            if path.name.endswith(".gz"):
                # mtime=0 and no file name in the header keep the bytes deterministic.
                sinks.append(
                    stack.enter_context(
                        gzip.GzipFile(
                            filename="",
                            mode="wb",
                            fileobj=raw,
                            compresslevel=compresslevel,
                            mtime=0,
                        )
                    )
                )
            else:
                sinks.append(raw)
        chunks: queue.Queue = queue.Queue(maxsize=8)
        errors: list = []
        writer = threading.Thread(target=_pump, args=(chunks, sinks, errors), daemon=True)
        writer.start()
        try:
            lines: list[bytes] = []
            for rec in records:
                lines.append(encode(rec))
                if len(lines) >= 4096:
                    lines.append(b"")
                    chunks.put(b"\n".join(lines))
                    lines = []
                    if errors:
                        break
            if lines and not errors:
                lines.append(b"")
                chunks.put(b"\n".join(lines))
        finally:
            chunks.put(None)
            writer.join()
        if errors:
            raise errors[0]
