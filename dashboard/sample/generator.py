"""Seeded synthetic sample generator: the ONE source of fake Pixel + CAPI logs.

This module is the package's entry point and composition root: it plans how much
traffic each hour slice gets, wires the parts together, runs the clock and writes the
files. It simulates about `days` days of traffic for two Meta datasets:

* ``1111111111``, a web shop sending every funnel step from the browser (Pixel) and,
  usually, again from its server (Conversions API) with the same event_id;
* ``2222222222``, a CRM (Kommo) sending Conversion Leads stages and click-to-WhatsApp
  business-messaging events, server only.

Records follow log format v1: ``pixel_event`` (one browser event) and ``capi_request``
(one CAPI call: request body plus Meta's response, an error, or ``null`` on timeout).
Known defects are planted on purpose and every one of them is counted, as it is
emitted, in a :class:`GroundTruth`, so analysis code can be tested against exact numbers.

That is the "standard" profile. The "diverse" profile (scenario.DIVERSE) runs the same
machinery over 2,000 campaigns, 300 event names and 30 datasets, with about one new
person per two events and every customer parameter an independent draw (userdata).

Output is byte-for-byte deterministic for a given (seed, parameters): all randomness
comes from one ``random.Random(seed)`` and records are produced in a fixed order. The
generator streams: it works hour slice by hour slice and keeps only the events that
are still waiting to be sent in memory, so 10 million events never sit in RAM at once.
Standard library only, plus orjson (when installed) to encode the lines faster.

The parts: scenario (datasets, campaigns, rhythm), identities (RNG, people, browsers),
timeline (clock and queues), web (shop visits), leads (CRM and WhatsApp), faults
(planted defects), sending (batches and Meta's answers), truth (the counts), files.
"""

from __future__ import annotations

import gc
import heapq
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from .faults import PlantedFaults
from .files import line_encoder, truth_path, write_records
from .identities import SampleRng
from .leads import CrmLeads, expected_events_per_lead
from .scenario import (
    DEFAULT_START,
    HOUR_WEIGHTS,
    PROFILES,
    WEB_KINDS,
    WEEKDAY_WEIGHTS,
    Profile,
)
from .sending import CapiSender
from .timeline import CRM_STAGE, END_OF_TIME, SERVER_EVENT, Timeline, weekday
from .truth import GroundTruth, TruthLedger
from .web import WebShop, expected_events_per_session

__all__ = ["PROFILES", "GroundTruth", "iter_sample_records", "write_sample_log"]


def _plan_sources(t0: int, days: int, target: int, profile: Profile) -> list[tuple]:
    """(campaign, kind, conversion x, expected units per hour slice, utm query, pool) per
    source."""
    # Expected units per source = target * kind share * weight / events per unit;
    # spread over hour slices by weekday, hour of day and the campaign's flight.
    sources = []
    for name, kind, weight, f0, f1, mult, pool in profile.sources:
        d0, d1 = int(f0 * days), max(int(f0 * days) + 1, round(f1 * days))
        if kind in WEB_KINDS:
            per_unit = expected_events_per_session(kind, mult, profile)
        else:
            per_unit = expected_events_per_lead(kind)
        units = target * profile.kind_share[kind] * weight / per_unit
        weights = []
        for s in range(days * 24):
            ts = t0 + s * 3600
            day = s // 24
            w = 0.0
            if d0 <= day < d1:
                w = WEEKDAY_WEIGHTS[weekday(ts)] * HOUR_WEIGHTS[(ts // 3600) % 24]
            weights.append(w)
        total = sum(weights) or 1.0
        per_slice = [units * w / total for w in weights]
        query = f"?utm_source=facebook&utm_campaign={name}" if name else ""
        sources.append((name, kind, mult, per_slice, query, pool))
    return sources


class _Generator:
    """Wires the parts to one RNG and one timeline and runs them hour slice by hour slice."""

    def __init__(
        self,
        seed: int,
        target: int,
        start: datetime,
        days: int,
        truth: GroundTruth,
        profile: Profile,
    ):
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        self.rng = rng = SampleRng(seed)
        self.t0 = t0 = int(start.timestamp())
        self.days = days = max(1, int(days))
        self.end = end = t0 + days * 86400
        target = max(1, int(target))
        self.timeline = timeline = Timeline()
        # The faults draw first (quotas, then the incidents' times): that order is fixed.
        self.faults = faults = PlantedFaults(rng, t0, days, end, truth)
        self.sources = _plan_sources(t0, days, target, profile)
        test_window = (faults.test_start, faults.test_end)
        self.ledger = TruthLedger(truth, seed, target, days, t0, test_window, profile)
        self.web = WebShop(rng, timeline, faults, end, profile)
        self.leads = CrmLeads(rng, timeline, faults, end, profile)
        self.sender = CapiSender(rng, timeline, faults, end, profile)
        self.start_unit = {
            "web_shop": self.web.session,
            "web_form": self.web.session,
            "crm_lead_ads": self.leads.lead_ads_lead,
            "click_to_whatsapp": self.leads.whatsapp_conversation,
        }

    def run(self) -> Iterator[dict]:
        """Generate hour slice by hour slice and yield records in sent_at order."""
        rng = self.rng
        for s in range(self.days * 24):
            slice_start = self.t0 + s * 3600
            for source in self.sources:
                # Expected units rounded up or down at random, so sums stay unbiased.
                x = source[3][s]
                n = int(x)
                if rng.random() < x - n:
                    n += 1
                make = self.start_unit[source[1]]
                rnd = rng.random
                for _ in range(n):
                    make(slice_start + int(rnd() * 3600), source)
            slice_end = slice_start + 3600
            self._pop_until(slice_end)
            self.sender.expire(slice_end)
            self.timeline.release(self.sender.watermark(slice_end))
            yield from self._drain()
        self._pop_until(END_OF_TIME)
        self.sender.close_all()
        self.timeline.release(END_OF_TIME)
        yield from self._drain()
        if self.ledger.truth.profile != "standard":
            self.ledger.truth.people = self.web.n_visitors + self.leads.n_people
        self.ledger.finish()

    def _pop_until(self, limit: int) -> None:
        # Play the pending items due before `limit`, in time order, releasing finished
        # records as soon as nothing can be sent before them any more.
        timeline, sender, leads = self.timeline, self.sender, self.leads
        items, out, pop = timeline.items, timeline.out, heapq.heappop
        add, crm, msg = sender.add, leads.crm_stage, leads.messaging_stage
        while items and items[0][0] < limit:
            t, _, kind, a, b, c = pop(items)
            if t > sender.next_expiry:
                sender.expire(t)
            if kind == SERVER_EVENT:
                add(t, a, b, c)
            elif kind == CRM_STAGE:
                crm(t, a, b)
            else:
                msg(t, a, b)
            if out and out[0][0] < t:
                timeline.release(sender.watermark(t))

    def _drain(self) -> list[dict]:
        """Count the final records of this slice into the truth and hand them out."""
        return self.ledger.count(self.timeline.take_ready())


def iter_sample_records(
    *,
    seed: int = 42,
    target_events: int = 20_000,
    start: datetime = DEFAULT_START,
    days: int = 35,
    truth: GroundTruth | None = None,
    profile: str = "standard",
) -> Iterator[dict]:
    """Yield log records (dicts) in time order of sent_at; fills `truth` while yielding.

    `profile` names a scenario.PROFILES entry ("standard" or "diverse").
    """
    gen = _Generator(
        seed,
        target_events,
        start,
        days,
        truth if truth is not None else GroundTruth(),
        PROFILES[profile],
    )
    yield from gen.run()


def write_sample_log(
    path: str | Path,
    *,
    seed: int = 42,
    target_events: int = 20_000,
    start: datetime = DEFAULT_START,
    days: int = 35,
    gzip_copy: str | Path | None = None,
    compresslevel: int = 3,
    profile: str = "standard",
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
        seed=seed, target_events=target_events, start=start, days=days, truth=truth, profile=profile
    )
    # The records hold no reference cycles, but millions of short-lived dicts make the
    # cyclic GC rescan everything alive again and again (~20% of a 10M run): pause it.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        write_records(targets, records, line_encoder(), compresslevel)
    finally:
        if gc_was_enabled:
            gc.enable()
    truth_path(path).write_text(json.dumps(truth.to_dict(), indent=2) + "\n", encoding="utf-8")
    return truth
