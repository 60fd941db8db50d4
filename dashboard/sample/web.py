"""The web shop's traffic: visitors, their funnel journeys, Pixel events and server twins.

Owns the shop's funnel (PageView, ViewContent, AddToCart, InitiateCheckout, Purchase;
PageView and Lead on the lead-form landing pages; the profile's custom events after a
PageView), the pool of returning visitors, and the making of each step: a
``pixel_event`` record unless an ad blocker stops the Pixel, then usually the same event
(same event_id) queued for the shop server's CAPI sender. The step probabilities and
the share of browser events the server also sends come from the profile (scenario).
"""

from __future__ import annotations

from .faults import (
    FLAG_BAD_FBC,
    FLAG_LEAD_NO_EM,
    FLAG_PURCHASE_TWIN,
    FLAG_SERVER_ONLY,
    LEADS_WITHOUT_EM_CAMPAIGN,
    PlantedFaults,
)
from .identities import P_ADBLOCK, Person, SampleRng, Visitor
from .scenario import WEB_DATASET, WEB_FLUSH_WINDOW, Profile
from .timeline import SERVER_EVENT, Timeline
from .userdata import FBC_INVALID, FBC_VALID, UserDataMixer, identity

WEB_STEPS = ("PageView", "ViewContent", "AddToCart", "InitiateCheckout", "Purchase", "Lead")

_SHOP = "https://shop.example.com"

_P_LOGGED_IN = 0.30  # share of returning, already known visitors who are logged in
_P_EM_LIST = 0.25  # the shop's own server code sends em as a list only sometimes
_POOL_SIZE = 5000

_N_PRODUCTS = 240
_PRICES = tuple(round(9.99 + (i * 7919 % 19000) / 100, 2) for i in range(_N_PRODUCTS))
_SKUS = tuple(f"SKU-{i:04d}" for i in range(_N_PRODUCTS))


def expected_events_per_session(kind: str, mult: float, profile: Profile) -> float:
    """Expected events (browser + server) per web session of kind web_shop or web_form."""
    p_view, p_cart, p_checkout, p_purchase, p_form_lead = profile.funnel
    coverage = profile.coverage
    if kind == "web_shop":
        steps = ("PageView", "ViewContent", "AddToCart", "InitiateCheckout", "Purchase")
        probs = (1.0, p_view, min(1.0, p_cart * mult), p_checkout, p_purchase)
    else:
        steps, probs = ("PageView", "Lead"), (1.0, p_form_lead)
    total, reach = 0.0, 1.0
    for name, p in zip(steps, probs, strict=True):
        reach *= p
        browser = reach * (1.0 + coverage[name])
        total += (1.0 - P_ADBLOCK) * browser + P_ADBLOCK * reach
    if kind == "web_shop" and profile.custom_events:
        names = profile.custom_events
        mean = sum(coverage[n] for n in names) / len(names)
        total += profile.p_custom * ((1.0 - P_ADBLOCK) * (1.0 + mean) + P_ADBLOCK)
    return total


class WebShop:
    """Makes web sessions: Pixel records go out directly, server twins wait in the timeline."""

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
        self.pool: list[Visitor] = []
        self.n_visitors = 0
        self.n_orders = 100000
        self.p_view, self.p_cart, self.p_checkout, self.p_purchase, self.p_form_lead = (
            profile.funnel
        )
        self.coverage = profile.coverage
        self.custom_events = profile.custom_events
        self.p_custom = profile.p_custom
        self.p_returning = profile.p_returning
        self.email_numbers = profile.email_numbers
        self.mixer = UserDataMixer(rng) if profile.mixed_user_data else None
        self.ds = WEB_DATASET  # the dataset of the session being made

    def session(self, t: int, source: tuple) -> None:
        """One visit starting at `t` from a campaign source (or organic traffic)."""
        name, kind, mult, _, query, pool = source
        if pool is not None:
            name, query, self.ds = pool[int(self.rng.random() * len(pool))]
        v = self._visitor(t)
        if name is not None:
            v.click(self.rng, t)
            if v.ident is not None:  # the new click's cookie, and its seconds form
                v.ident[FBC_VALID] = v.fbc
                v.ident[FBC_INVALID] = v.fbc_bad
        if v.person is not None and self.rng.random() >= _P_LOGGED_IN:
            known = None  # returning customer, not logged in this time
        else:
            known = v.person
        if kind == "web_form":
            self._form_journey(t, v, name, query, known)
        else:
            self._shop_journey(t, v, name, mult, query, known)

    def _visitor(self, t: int) -> Visitor:
        rng = self.rng
        if self.pool and rng.random() < self.p_returning:
            return self.pool[int(rng.random() * len(self.pool))]
        self.n_visitors += 1
        v = Visitor(rng, t, self.n_visitors)
        if self.mixer is not None:
            # Every parameter may be drawn valid, so every visitor has all the values.
            v.person = Person(rng, v.country, True, True, self.email_numbers)
            v.ident = identity(rng, v.person, v, v.xid, t)
        # A bounded pool of recent visitors gives returning users without growing memory.
        if len(self.pool) < _POOL_SIZE:
            self.pool.append(v)
        else:
            self.pool[rng.below(_POOL_SIZE)] = v
        return v

    def _new_person(self, v: Visitor) -> Person:
        v.person = Person(self.rng, v.country, True, self.rng.random() < 0.75)
        return v.person

    def _form_journey(self, t: int, v: Visitor, name: str, query: str, known) -> None:
        rnd = self.rng.random
        url = f"{_SHOP}/lp/{name.replace('_', '-')}{query}"
        if not self._step("PageView", t, url, None, v, name, known):
            return
        if rnd() < self.p_form_lead:
            t += 30 + int(rnd() * 371)
            known = v.person or self._new_person(v)
            cd = {"content_name": "signup_form", "content_category": "lead_form"}
            self._step("Lead", t, url, cd, v, name, known)

    def _shop_journey(self, t: int, v: Visitor, name, mult: float, query: str, known) -> None:
        rnd = self.rng.random
        emit = self._step
        cur = v.country[2]
        pid = int(rnd() * _N_PRODUCTS)
        price, sku = _PRICES[pid], _SKUS[pid]
        url = f"{_SHOP}/product/{pid}{query}"
        if not emit("PageView", t, url, None, v, name, known):
            return
        if self.p_custom and rnd() < self.p_custom:
            custom = self.custom_events[int(rnd() * len(self.custom_events))]
            emit(custom, t + 1 + int(rnd() * 30), url, None, v, name, known)
        if rnd() >= self.p_view:
            return
        t += 2 + int(rnd() * 39)
        cd = {"content_ids": [sku], "content_type": "product", "value": price, "currency": cur}
        if not emit("ViewContent", t, url, cd, v, name, known) or rnd() >= self.p_cart * mult:
            return
        t += 15 + int(rnd() * 386)
        qty = 1 if rnd() < 0.75 else 2 + int(rnd() * 2)
        value = round(price * qty, 2)
        cd = {"content_ids": [sku], "content_type": "product", "value": value, "currency": cur}
        if not emit("AddToCart", t, url, cd, v, name, known) or rnd() >= self.p_checkout:
            return
        t += 20 + int(rnd() * 581)
        # The checkout form is where an anonymous visitor becomes a known person.
        known = v.person or self._new_person(v)
        cd = {"content_ids": [sku], "num_items": qty, "value": value, "currency": cur}
        url = f"{_SHOP}/checkout{query}"
        if not emit("InitiateCheckout", t, url, cd, v, name, known) or rnd() >= self.p_purchase:
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

    def _step(
        self, name: str, t: int, url: str, cd, v: Visitor, campaign, known: Person | None
    ) -> bool:
        """Emit one funnel step (Pixel record and usually its server twin); False past the end."""
        if t >= self.end:
            return False
        rng = self.rng
        eid = cd["order_id"] if name == "Purchase" else f"{rng.getrandbits(64):016x}"
        if not v.adblock:
            self._pixel_event(name, t, eid, url, cd, v, known)
            if rng.random() >= self.coverage[name]:
                return True
        self._server_twin(name, t, eid, url, cd, v, campaign, known)
        return True

    def _pixel_event(self, name: str, t: int, eid: str, url: str, cd, v: Visitor, known) -> None:
        if self.mixer is not None:
            pud = self.mixer.draw(v.ident)
        else:
            if v.fbc:
                pud = {"fbp": v.fbp, "fbc": v.fbc, "client_user_agent": v.ua}
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
            "sent_at": self.timeline.iso(t),
            "dataset_id": self.ds,
            "event": ev,
        }
        self.timeline.push_out(t, rec, None)

    def _server_twin(
        self, name: str, t: int, eid: str, url: str, cd, v: Visitor, campaign, known
    ) -> None:
        rnd = self.rng.random
        r = rnd()
        send = t + (1 + int(89 * r * r) if r < 0.9 else 90 + int(rnd() * 511))
        if send + WEB_FLUSH_WINDOW >= self.end:
            return
        flags = FLAG_SERVER_ONLY if v.adblock else 0
        if self.mixer is not None:
            # No planted parameter defects: the independent draws make every kind of them.
            ud = self.mixer.draw(v.ident)
        else:
            flags, ud = self._planted_user_data(name, v, campaign, known, flags)
        if name == "Purchase" and not v.adblock:
            flags |= FLAG_PURCHASE_TWIN
        ev = {
            "event_name": name,
            "event_time": t,
            "event_id": eid,
            "action_source": "website",
            "event_source_url": url,
            "user_data": ud,
            "custom_data": dict(cd) if cd else {},
        }
        self.timeline.push_item(send, SERVER_EVENT, self.ds, ev, flags)

    def _planted_user_data(self, name: str, v: Visitor, campaign, known, flags: int) -> tuple:
        """(flags, user_data) of a server event of the standard profile: the shop's own
        parameters, with the planted e-mail, phone and fbc defects."""
        if known is not None:
            ud: dict = {}
            no_em = name == "Lead" and campaign == LEADS_WITHOUT_EM_CAMPAIGN
            if no_em:
                flags |= FLAG_LEAD_NO_EM
            flags |= self.faults.contact_fields(ud, known, _P_EM_LIST, with_em=not no_em)
            ud.update(known.base)
            ud["external_id"] = v.xid
        else:
            ud = {"external_id": v.xid}
        ud["client_ip_address"] = v.ip
        ud["client_user_agent"] = v.ua
        if v.fbc:
            if self.faults.fbc_is_malformed():
                flags |= FLAG_BAD_FBC
                ud["fbc"] = v.fbc_bad
            else:
                ud["fbc"] = v.fbc
        if v.fbp:
            ud["fbp"] = v.fbp
        return flags, ud
