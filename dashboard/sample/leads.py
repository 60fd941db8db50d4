"""The CRM's traffic: lead-ads leads moving through sales stages, WhatsApp conversations.

Owns the Kommo Conversion Leads pipeline (Contacted, Qualified, Demo scheduled, Closed
won) and the click-to-WhatsApp business-messaging stages, with the chance to reach each
stage and the delay before it. A lead or conversation is drawn one stage at a time: the
next stage waits in the timeline until its time comes, so only open units use memory.
Every stage becomes one server event queued for the CRM's CAPI sender; the Demo
scheduled stage is synced about a day late (a planted defect). In the diverse profile a
unit's campaign and dataset come from its source's pool and its customer parameters are
independent draws (userdata).
"""

from __future__ import annotations

import base64

from .faults import FLAG_LATE, PlantedFaults
from .identities import COUNTRY_PICK, Person, SampleRng, Visitor, sha256_hex
from .scenario import CRM_DATASET, CRM_FLUSH_WINDOW, Profile
from .timeline import CRM_STAGE, MESSAGING_STAGE, SERVER_EVENT, Timeline, business_hours
from .userdata import UserDataMixer, identity

# CRM stages: (event_name, CRM stage label, event_id slug, P(reach from previous stage)).
CRM_STAGES = (
    ("Contact", "Contacted", "contacted", 1.0),
    ("Lead", "Qualified", "qualified", 0.55),
    ("Schedule", "Demo scheduled", "demo_scheduled", 0.55),
    ("Purchase", "Closed won", "closed_won", 0.35),
)
# Delay range (s) from the previous stage (from lead creation for the first one).
_CRM_DELAYS = ((600, 6 * 3600), (2 * 3600, 3 * 86400), (12 * 3600, 4 * 86400), (86400, 10 * 86400))
# Messaging stages: (event_name, event_id slug, P(reach from previous stage)).
MESSAGING_STAGES = (
    ("LeadSubmitted", "leadsubmitted", 1.0),
    ("QualifiedLead", "qualifiedlead", 0.45),
    ("Purchase", "purchase", 0.35),
)
_MESSAGING_DELAYS = ((60, 1800), (3600, 2 * 86400), (12 * 3600, 6 * 86400))

# The stage only a nightly job syncs, sent this many seconds (range) after it happened.
LATE_STAGE = "Schedule"
_LATE_MIN_LAG, _LATE_MAX_LAG = 86_400, 93_600

_PAGE_ID = "104857600123456"
_CRM_NAME = "Kommo"
_P_EM_LIST = 0.75  # the CRM connector uses the SDK, which sends lists


def expected_events_per_lead(kind: str) -> float:
    """Expected server events per lead (crm_lead_ads) or conversation (click_to_whatsapp)."""
    stages = CRM_STAGES if kind == "crm_lead_ads" else MESSAGING_STAGES
    total, reach = 0.0, 1.0
    for stage in stages:
        reach *= stage[-1]
        total += reach
    return total


class CrmLeads:
    """Starts leads and conversations and turns each stage they reach into a server event."""

    def __init__(
        self,
        rng: SampleRng,
        timeline: Timeline,
        faults: PlantedFaults,
        end: int,
        profile: Profile,
    ):
        self.rng = rng
        self.timeline = timeline
        self.faults = faults
        self.end = end
        self.n_contacts = 5000
        self.n_people = 0  # units started: each one is a new person
        self.email_numbers = profile.email_numbers
        self.mixer = UserDataMixer(rng) if profile.mixed_user_data else None

    def _campaign(self, source: tuple) -> tuple[str, str]:
        """(campaign, dataset) of a new unit: the source's own, or one of its pool."""
        pool = source[5]
        if pool is None:
            return source[0], CRM_DATASET
        campaign, _, ds = pool[int(self.rng.random() * len(pool))]
        return campaign, ds

    def _identity(self, person: Person, xid: str, t: int):
        # Diverse profile: the lead came through Meta's app, which knows a browser too.
        if self.mixer is None:
            return None
        return identity(self.rng, person, Visitor(self.rng, t, 0, xid), xid, t)

    def lead_ads_lead(self, t: int, source: tuple) -> None:
        """A lead from an instant form at `t`: a new CRM contact with e-mail and phone."""
        rng = self.rng
        campaign, ds = self._campaign(source)
        country = COUNTRY_PICK[rng.below(100)]
        self.n_contacts += 1
        self.n_people += 1
        lead_id = str(rng.randrange(10**14, 10**17))  # 15-17 digits, from the lead form
        person = Person(rng, country, True, True, self.email_numbers)
        xid = sha256_hex(f"kommo-contact-{self.n_contacts}")
        lead = (
            lead_id,
            person,
            xid,
            campaign,
            ds,
            self._identity(person, xid, t),
        )
        self._next_stage(t, CRM_STAGE, lead, 0)

    def whatsapp_conversation(self, t: int, source: tuple) -> None:
        """A click-to-WhatsApp conversation at `t`: a ctwa_clid and a phone number."""
        rng = self.rng
        campaign, ds = self._campaign(source)
        country = COUNTRY_PICK[rng.below(100)]
        clid = "ARA" + base64.urlsafe_b64encode(rng.getrandbits(240).to_bytes(30, "big")).decode()
        self.n_people += 1
        mixed = self.mixer is not None  # every parameter needs a value to draw from
        person = Person(rng, country, mixed, True, self.email_numbers)
        convo_id = f"{rng.getrandbits(64):016x}"[:12]
        ident = None
        if self.mixer is not None:
            ident = self._identity(person, sha256_hex(f"wa-contact-{convo_id}"), t)
        convo = (clid, person, convo_id, campaign, ds, ident)
        self._next_stage(t, MESSAGING_STAGE, convo, 0)

    def _next_stage(self, t: int, kind: int, unit: tuple, stage: int) -> None:
        # Draw now whether the unit reaches `stage` and when; the event itself is made
        # when the timeline reaches that time.
        if kind == CRM_STAGE:
            stages, delays = CRM_STAGES, _CRM_DELAYS
        else:
            stages, delays = MESSAGING_STAGES, _MESSAGING_DELAYS
        if stage >= len(stages) or self.rng.random() >= stages[stage][-1]:
            return
        t += self.rng.between(*delays[stage])
        if kind == CRM_STAGE:
            t = business_hours(self.rng, t)  # sales reps move leads during office hours
        if t < self.end:
            self.timeline.push_item(t, kind, unit, stage, 0)

    def crm_stage(self, t: int, lead: tuple, stage: int) -> None:
        """The lead reached `stage` at `t`: queue its server event, draw the next stage."""
        rng = self.rng
        name, _, slug, _ = CRM_STAGES[stage]
        lead_id, person, xid, campaign, ds, ident = lead
        if name == LATE_STAGE:
            # Planted: this stage is only synced by a nightly job, about a day late.
            send = t + rng.between(_LATE_MIN_LAG + 5, _LATE_MAX_LAG - CRM_FLUSH_WINDOW - 5)
            flags = FLAG_LATE
        else:
            send = t + rng.between(20, 900)
            flags = 0
        if send + CRM_FLUSH_WINDOW < self.end:
            ud = {"lead_id": lead_id}
            if ident is not None:
                ud.update(self.mixer.draw(ident))
            else:
                flags |= self.faults.contact_fields(ud, person, _P_EM_LIST)
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
            self.timeline.push_item(send, SERVER_EVENT, ds, ev, flags)
        self._next_stage(t, CRM_STAGE, lead, stage + 1)

    def messaging_stage(self, t: int, convo: tuple, stage: int) -> None:
        """The conversation reached `stage` at `t`: queue its event, draw the next stage."""
        rng = self.rng
        name, slug, _ = MESSAGING_STAGES[stage]
        clid, person, convo_id, campaign, ds, ident = convo
        send = t + rng.between(5, 300)
        if send + CRM_FLUSH_WINDOW < self.end:
            ud = {"ctwa_clid": clid, "page_id": _PAGE_ID}
            if ident is not None:
                ud.update(self.mixer.draw(ident))
                flags = 0
            else:
                flags = self.faults.contact_fields(ud, person, _P_EM_LIST)
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
            self.timeline.push_item(send, SERVER_EVENT, ds, ev, flags)
        self._next_stage(t, MESSAGING_STAGE, convo, stage + 1)
