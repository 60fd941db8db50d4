"""The simulated world: the two Meta datasets, their senders' timing, the campaigns, the rhythm.

Owns the fixed parameters several parts of the generator read: the dataset ids of the
web shop and of the CRM, how long each sender waits before flushing a batch and before
retrying one, the campaigns (sources) that bring traffic with their kind, weight, flight
and conversion factor, and the hour-of-day and weekday weights of that traffic. Pure data.
"""

from __future__ import annotations

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
FLUSH_WINDOW = {WEB_DATASET: WEB_FLUSH_WINDOW, CRM_DATASET: CRM_FLUSH_WINDOW}
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
