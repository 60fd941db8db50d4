"""Planted defects: which events and requests go wrong, when, and how each one is marked.

Owns the flags kept next to every server event (defects and the facts the ground truth
counts), the outcomes a CAPI request can have, the defect rates and the countdown quotas
that spread them evenly, the two incidents planned up front (an expired access token on
the web dataset for about two hours; test_event_code left on the CRM connector for a day
and a half), and the decisions that plant the defects: plaintext e-mails and phones,
malformed fbc, requests that time out or are rejected as too old, web Purchases sent
without the Pixel's event_id. The leads sent without e-mail belong to one campaign.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .identities import Person, SampleRng
from .scenario import CRM_DATASET, RETRY_DELAY, WEB_DATASET
from .timeline import weekday

if TYPE_CHECKING:
    from .truth import GroundTruth

# Flags kept next to each server event, never written into it.
FLAG_PLAINTEXT_EM = 1
FLAG_PLAINTEXT_PH = 2
FLAG_BAD_FBC = 4
FLAG_NO_EVENT_ID = 8
FLAG_LEAD_NO_EM = 16
FLAG_LATE = 32
FLAG_SERVER_ONLY = 64
FLAG_PURCHASE_TWIN = 128  # web server Purchase whose browser twin was sent: may lose event_id
FLAG_EM_LIST = 256  # em sent as a list, the way the official SDKs send it
# Events whose truth must be exact get batches that never time out or fail by chance.
PROTECTED_FLAGS = FLAG_LEAD_NO_EM | FLAG_LATE

# What happens to one CAPI request.
ACCEPTED, ACCEPTED_AS_TEST, TIMED_OUT, REJECTED_TOO_OLD, REJECTED_EXPIRED_TOKEN = range(5)

TEST_EVENT_CODE = "TEST12345"
# The web-form campaign whose server Lead events forget the e-mail (planted defect 1).
LEADS_WITHOUT_EM_CAMPAIGN = "spring_leads_form"

# Planted-defect rates, applied to the events that can carry the defect.
_RATE_PLAINTEXT_EM = 0.065  # of server events with em -> about 2% of all server events
_RATE_PLAINTEXT_PH = 0.003  # of server events with ph -> "a few"
_RATE_BAD_FBC = 0.065  # of server events with fbc -> about 3% of all server events
_RATE_NO_EVENT_ID = 0.15  # of web server Purchase events
_RATE_TIMEOUT = 0.005  # of capi_requests
_RATE_TOO_OLD = 0.0015  # of capi_requests


class _Quota:
    """Hit about `rate` of the calls, spread out so small samples still get their defects.

    A countdown to the next hit (uniform gap with mean 1/rate) instead of a coin per call:
    the first hit comes within 1/rate eligible events and counts never drift far.
    """

    __slots__ = ("rng", "span", "left")

    def __init__(self, rng: SampleRng, rate: float):
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


class PlantedFaults:
    """Decides, draw by draw, which events and requests carry a planted defect."""

    def __init__(self, rng: SampleRng, t0: int, days: int, end: int, truth: GroundTruth):
        self.rng = rng
        self.t0 = t0
        self.days = days
        self.end = end
        # The truth only learns here by how much a Purchase's event_time was moved.
        self.truth = truth
        # Each quota takes one draw: their order is part of the seeded output.
        self._plaintext_em = _Quota(rng, _RATE_PLAINTEXT_EM)
        self._plaintext_ph = _Quota(rng, _RATE_PLAINTEXT_PH)
        self._bad_fbc = _Quota(rng, _RATE_BAD_FBC)
        self._no_event_id = _Quota(rng, _RATE_NO_EVENT_ID)
        self._timeout = _Quota(rng, _RATE_TIMEOUT)
        self._too_old = _Quota(rng, _RATE_TOO_OLD)
        self._plan_incidents()

    def _day_start(self, day: int) -> int:
        return self.t0 + max(0, min(self.days - 1, day)) * 86400

    def _plan_incidents(self) -> None:
        rng = self.rng
        # Token expiry: a weekday morning a bit after the middle of the period.
        day = round(self.days * 0.55)
        for d in (day, day + 1, day + 2, day - 1, day - 2):
            if 0 <= d < self.days and weekday(self._day_start(d)) < 5:
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

    def contact_fields(self, ud: dict, person: Person, p_list: float, with_em: bool = True) -> int:
        """Add em/ph to user_data the way the sender does (hash, list or a planted bug).

        Returns the flags of what was planted.
        """
        rng = self.rng
        flags = 0
        as_list = rng.random() < p_list
        if with_em and person.em is not None:
            if as_list:
                flags |= FLAG_EM_LIST
            if self._plaintext_em.hit():
                flags |= FLAG_PLAINTEXT_EM
                ud["em"] = [person.email] if as_list else person.email
            elif as_list:
                ud["em"] = [person.em, person.second_em()] if rng.random() < 0.35 else [person.em]
            else:
                ud["em"] = person.em
        if person.ph is not None:
            if self._plaintext_ph.hit():
                flags |= FLAG_PLAINTEXT_PH
                ud["ph"] = [person.phone] if as_list else person.phone
            else:
                ud["ph"] = [person.ph] if as_list else person.ph
        return flags

    def fbc_is_malformed(self) -> bool:
        """True when this server event's fbc should carry its creation time in seconds."""
        return self._bad_fbc.hit()

    def in_test_window(self, ds: str, sent: int) -> bool:
        """True when the CRM connector still sends test_event_code at time `sent`."""
        return ds == CRM_DATASET and self.test_start <= sent < self.test_end

    def request_outcome(self, ds: str, sent: int, protected: bool) -> int:
        """The outcome of a request of dataset `ds` sent at `sent` (ACCEPTED, TIMED_OUT, ...)."""
        status = ACCEPTED_AS_TEST if self.in_test_window(ds, sent) else ACCEPTED
        if ds == WEB_DATASET and sent >= self.burst_start and not self.burst_over:
            # The expired token rejects everything for ~2 h (longer in tiny samples, so
            # that at least two batches show the burst); the lost events are not re-sent.
            if sent < self.burst_end or self.burst_batches < 2:
                status = REJECTED_EXPIRED_TOKEN
                self.burst_batches += 1
            else:
                self.burst_over = True
        if status == ACCEPTED and not protected:
            if self._faults_allowed(ds, sent):
                if self._timeout.hit():
                    status = TIMED_OUT
                elif self._too_old.hit():
                    status = REJECTED_TOO_OLD
        return status

    def _faults_allowed(self, ds: str, sent: int) -> bool:
        # Keep retries inside the period and out of the token-error burst.
        if sent + RETRY_DELAY[1] + 60 >= self.end:
            return False
        if ds == WEB_DATASET:
            return self.burst_over or sent < self.burst_start - RETRY_DELAY[1] - 60
        return True

    def drop_purchase_event_ids(self, events: list, flags: list) -> None:
        """Rewrite some web Purchases of an accepted batch without their event_id."""
        # Planted: the order webhook sends some Purchases without the Pixel's event_id and
        # with its own order timestamp (a little before the thank-you page fired), so
        # Meta cannot deduplicate and counts the purchase twice. Only in accepted batches.
        for i, fl in enumerate(flags):
            if fl & FLAG_PURCHASE_TWIN and self._no_event_id.hit():
                ev = events[i]
                diff = self.rng.between(1, 45)
                events[i] = {
                    "event_name": ev["event_name"],
                    "event_time": ev["event_time"] - diff,
                    "action_source": ev["action_source"],
                    "event_source_url": ev["event_source_url"],
                    "user_data": ev["user_data"],
                    "custom_data": ev["custom_data"],
                }
                flags[i] = fl | FLAG_NO_EVENT_ID
                pwe = self.truth.purchases_without_event_id
                pwe["max_event_time_diff_s"] = max(pwe["max_event_time_diff_s"], diff)
