"""The web shop's traffic: visitors, their funnel journeys, Pixel events and server twins.

Owns the shop's funnel (PageView, ViewContent, AddToCart, InitiateCheckout, Purchase;
PageView and Lead on the lead-form landing pages), the step probabilities and the share
of browser events the server also sends, the pool of returning visitors, and the making
of each step: a ``pixel_event`` record unless an ad blocker stops the Pixel, then
usually the same event (same event_id) queued for the shop server's CAPI sender.
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
from .scenario import WEB_DATASET, WEB_FLUSH_WINDOW
from .timeline import SERVER_EVENT, Timeline

WEB_STEPS = ("PageView", "ViewContent", "AddToCart", "InitiateCheckout", "Purchase", "Lead")

_SHOP = "https://shop.example.com"

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
_P_RETURNING = 0.20
_P_LOGGED_IN = 0.30  # share of returning, already known visitors who are logged in
_P_EM_LIST = 0.25  # the shop's own server code sends em as a list only sometimes
_POOL_SIZE = 5000

_N_PRODUCTS = 240
_PRICES = tuple(round(9.99 + (i * 7919 % 19000) / 100, 2) for i in range(_N_PRODUCTS))
_SKUS = tuple(f"SKU-{i:04d}" for i in range(_N_PRODUCTS))


def expected_events_per_session(kind: str, mult: float) -> float:
    """Expected events (browser + server) per web session of kind web_shop or web_form."""
    if kind == "web_shop":
        steps = ("PageView", "ViewContent", "AddToCart", "InitiateCheckout", "Purchase")
        probs = (1.0, _P_VIEW, min(1.0, _P_CART * mult), _P_CHECKOUT, _P_PURCHASE)
    else:
        steps, probs = ("PageView", "Lead"), (1.0, _P_FORM_LEAD)
    total, reach = 0.0, 1.0
    for name, p in zip(steps, probs, strict=True):
        reach *= p
        browser = reach * (1.0 + _COVERAGE[name])
        total += (1.0 - P_ADBLOCK) * browser + P_ADBLOCK * reach
    return total


class WebShop:
    """Makes web sessions: Pixel records go out directly, server twins wait in the timeline."""

    def __init__(self, rng: SampleRng, timeline: Timeline, faults: PlantedFaults, end: int):
        self.rng = rng
        self.timeline = timeline
        self.faults = faults
        self.end = end
        self.pool: list[Visitor] = []
        self.n_visitors = 0
        self.n_orders = 100000

    def session(self, t: int, source: tuple) -> None:
        """One visit starting at `t` from a campaign source (or organic traffic)."""
        name, kind, mult, _, query = source
        v = self._visitor(t)
        if name is not None:
            v.click(self.rng, t)
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
        if self.pool and rng.random() < _P_RETURNING:
            return self.pool[int(rng.random() * len(self.pool))]
        self.n_visitors += 1
        v = Visitor(rng, t, self.n_visitors)
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
        if rnd() < _P_FORM_LEAD:
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
        known = v.person or self._new_person(v)
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
            if rng.random() >= _COVERAGE[name]:
                return True
        self._server_twin(name, t, eid, url, cd, v, campaign, known)
        return True

    def _pixel_event(self, name: str, t: int, eid: str, url: str, cd, v: Visitor, known) -> None:
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
            "dataset_id": WEB_DATASET,
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
        self.timeline.push_item(send, SERVER_EVENT, WEB_DATASET, ev, flags)
