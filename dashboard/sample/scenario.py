"""The simulated world: the Meta datasets, their senders' timing, the campaigns, the rhythm.

Owns the fixed parameters several parts of the generator read: the dataset ids of the
web shop and of the CRM, how long each sender waits before flushing a batch and before
retrying one, the campaigns (sources) that bring traffic with their kind, weight, flight
and conversion factor, the hour-of-day and weekday weights of that traffic, and the
profiles (:class:`Profile`): "standard", the small world the tests and golden files are
built on, and "diverse", thousands of campaigns, hundreds of event names, dozens of
datasets and customer parameters drawn independently (see userdata). Pure data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

# The web shop: every funnel step from the browser (Pixel) and, usually, its server (CAPI).
WEB_DATASET = "1111111111"
# The CRM (Kommo): Conversion Leads stages and click-to-WhatsApp events, server only.
CRM_DATASET = "2222222222"
DEFAULT_START = datetime(2026, 10, 1, tzinfo=UTC)

# A sender flushes its queue at most this long (s) after the queue's first event: the shop
# server flushes quickly, the CRM middleware syncs every few minutes.
WEB_FLUSH_WINDOW = 45
CRM_FLUSH_WINDOW = 300
# A request that timed out or was rejected is sent again this long (s, range) later.
RETRY_DELAY = (30, 1200)

# Share of all generated events per traffic kind; sources of a kind split it by weight.
KIND_SHARE = {"web_shop": 0.66, "web_form": 0.10, "crm_lead_ads": 0.15, "click_to_whatsapp": 0.09}
WEB_KINDS = ("web_shop", "web_form")

# (campaign, kind, weight within kind, first active day fraction, end fraction, conversion x)
# A campaign of None is organic web traffic (no utm, no ad click).
SOURCES = (
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

HOUR_WEIGHTS = (
    0.45, 0.3, 0.22, 0.2, 0.22, 0.3, 0.5, 0.75, 0.95, 1.05, 1.1, 1.15,
    1.15, 1.1, 1.05, 1.05, 1.1, 1.2, 1.35, 1.5, 1.5, 1.35, 1.05, 0.7,
)  # fmt: skip
WEEKDAY_WEIGHTS = (1.0, 1.02, 1.0, 1.03, 0.97, 0.85, 0.9)  # Monday first

# The web funnel of the standard profile: P(reach each step from the previous one) and
# the share of browser events the server also sends (ViewContent is often skipped).
_STANDARD_FUNNEL = (0.80, 0.22, 0.50, 0.62, 0.30)  # view, cart, checkout, purchase, form lead
_STANDARD_COVERAGE = {
    "PageView": 0.95,
    "ViewContent": 0.70,
    "AddToCart": 0.90,
    "InitiateCheckout": 0.92,
    "Purchase": 0.96,
    "Lead": 0.95,
}


@dataclass(frozen=True)
class Profile:
    """What kind of world a sample simulates; every part reads the one it is given.

    `sources` are (campaign, kind, weight within kind, first active day fraction, end
    fraction, conversion x, pool): a pool is a tuple of (campaign, utm query, dataset)
    that each unit of the source picks one of at random, or None for one fixed campaign
    on the kind's main dataset. `funnel` is (view, cart, checkout, purchase, form lead).
    `custom_events` are extra event names a shop visit may fire after its PageView (one,
    with probability `p_custom`). `mixed_user_data` makes every event's customer
    parameters independent draws (userdata.UserDataMixer) instead of the planted ones.
    """

    name: str
    sources: tuple
    web_datasets: tuple[str, ...]
    crm_datasets: tuple[str, ...]
    kind_share: dict
    funnel: tuple
    coverage: dict
    custom_events: tuple[str, ...] = ()
    p_custom: float = 0.0
    p_returning: float = 0.20
    email_numbers: int = 99  # e-mail local parts are name.surname<1..n>
    mixed_user_data: bool = False

    @property
    def campaign_types(self) -> dict[str, str]:
        """Every campaign name -> its kind, in source order."""
        out: dict[str, str] = {}
        for name, kind, *_, pool in self.sources:
            for campaign in (p[0] for p in pool) if pool else (name,):
                if campaign:
                    out[campaign] = kind
        return out


STANDARD = Profile(
    name="standard",
    sources=tuple((*s, None) for s in SOURCES),
    web_datasets=(WEB_DATASET,),
    crm_datasets=(CRM_DATASET,),
    kind_share=KIND_SHARE,
    funnel=_STANDARD_FUNNEL,
    coverage=_STANDARD_COVERAGE,
)

# -- the diverse profile ----------------------------------------------------------------
# Sized so that a 1M-event log holds all of it: 2,000 campaigns, 300 event names (the 10
# of the fixed funnels + 290 below), 30 datasets, about 500,000 people. Bounce-heavy
# visits, few returning visitors, PageViews often not sent server-side and a larger
# CRM and WhatsApp share keep events per person near 2.
_META_STANDARD_EXTRA = (
    "AddPaymentInfo", "AddToWishlist", "CompleteRegistration", "CustomizeProduct", "Donate",
    "FindLocation", "Search", "StartTrial", "SubmitApplication", "Subscribe",
)  # fmt: skip
_VERBS = (
    "Viewed", "Clicked", "Opened", "Closed", "Shared", "Saved", "Started", "Completed",
    "Downloaded", "Watched", "Filtered", "Compared", "Rated", "Scrolled",
)  # fmt: skip
_OBJECTS = (
    "Banner", "Video", "Coupon", "Gallery", "SizeGuide", "Review", "Wishlist", "StoreMap",
    "Newsletter", "Quiz", "Chat", "Faq", "Lookbook", "Bundle", "GiftCard", "Calculator",
    "Brochure", "Webinar", "Demo", "Catalog",
)  # fmt: skip
DIVERSE_CUSTOM_EVENTS = _META_STANDARD_EXTRA + tuple(v + o for v in _VERBS for o in _OBJECTS)
# Server coverage of the custom events by name index: a quarter are browser-only (gaps).
_CUSTOM_COVERAGE = (0.0, 0.6, 0.85, 0.95)
_THEMES = (
    "autumn", "winter", "spring", "summer", "blackfriday", "cybermonday", "newyear",
    "valentine", "easter", "backtoschool", "clearance", "launch", "loyalty", "brand",
    "catalog", "video", "reels", "stories", "search", "retarget",
)  # fmt: skip
_OBJECTIVES = ("prospecting", "retargeting", "lookalike", "broad", "advantage")
# Campaigns per kind (2,000 in all) and the flights their groups run in.
_DIVERSE_CAMPAIGNS = {
    "web_shop": 1300,
    "web_form": 300,
    "crm_lead_ads": 250,
    "click_to_whatsapp": 150,
}
_FLIGHTS = ((0.0, 1.0, 1.0), (0.0, 0.6, 0.8), (0.3, 1.0, 1.5), (0.5, 0.9, 1.2))  # + conv x
_N_WEB_DATASETS, _N_CRM_DATASETS = 24, 6
DIVERSE_WEB_DATASETS = (WEB_DATASET,) + tuple(
    f"{1_600_000_000_000_000 + k * 104_729}" for k in range(1, _N_WEB_DATASETS)
)
DIVERSE_CRM_DATASETS = (CRM_DATASET,) + tuple(
    f"{2_600_000_000_000_000 + k * 104_729}" for k in range(1, _N_CRM_DATASETS)
)


def _diverse_sources() -> tuple:
    # Each kind's campaigns are split into flight groups; a campaign runs on one dataset
    # (index modulo the datasets of its side), the way one advertiser owns a pixel.
    sources = []
    serial = 0
    for kind, n in _DIVERSE_CAMPAIGNS.items():
        datasets = DIVERSE_WEB_DATASETS if kind in WEB_KINDS else DIVERSE_CRM_DATASETS
        groups: list[list] = [[] for _ in _FLIGHTS]
        for i in range(n):
            theme = _THEMES[serial % len(_THEMES)]
            objective = _OBJECTIVES[serial // len(_THEMES) % len(_OBJECTIVES)]
            name = f"{theme}_{objective}_{kind}_{serial:04d}"
            query = f"?utm_source=facebook&utm_campaign={name}"
            groups[i % len(_FLIGHTS)].append((name, query, datasets[serial % len(datasets)]))
            serial += 1
        for (f0, f1, mult), pool in zip(_FLIGHTS, groups, strict=True):
            weight = 0.75 / len(_FLIGHTS) if kind == "web_shop" else 1.0 / len(_FLIGHTS)
            mult = mult if kind == "web_shop" else 1.0
            sources.append((None, kind, weight, f0, f1, mult, tuple(pool)))
    # Organic shop traffic: no campaign, on any of the web datasets.
    organic = tuple((None, "", ds) for ds in DIVERSE_WEB_DATASETS)
    sources.append((None, "web_shop", 0.25, 0.0, 1.0, 1.0, organic))
    return tuple(sources)


DIVERSE = Profile(
    name="diverse",
    sources=_diverse_sources(),
    web_datasets=DIVERSE_WEB_DATASETS,
    crm_datasets=DIVERSE_CRM_DATASETS,
    kind_share={
        "web_shop": 0.38,
        "web_form": 0.12,
        "crm_lead_ads": 0.20,
        "click_to_whatsapp": 0.30,
    },
    funnel=(0.30, 0.25, 0.50, 0.60, 0.30),
    coverage={
        **{"PageView": 0.5, "ViewContent": 0.5, "AddToCart": 0.85, "InitiateCheckout": 0.9},
        **{"Purchase": 0.95, "Lead": 0.9},
        **{n: _CUSTOM_COVERAGE[i % 4] for i, n in enumerate(DIVERSE_CUSTOM_EVENTS)},
    },
    custom_events=DIVERSE_CUSTOM_EVENTS,
    p_custom=0.2,
    p_returning=0.01,
    email_numbers=9999,
    mixed_user_data=True,
)

PROFILES = {p.name: p for p in (STANDARD, DIVERSE)}
