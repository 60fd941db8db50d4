"""The ground truth: what a generated sample contains, counted record by record as it goes out.

Owns :class:`GroundTruth` (totals and every planted defect, the numbers the analysis
code is tested against) and :class:`TruthLedger`, which fills it: the fixed facts at the
start (datasets, campaigns, the test_event_code window), then each released record's
events by dataset, event name, request outcome and planted flag, and the final tidy-up.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .faults import (
    ACCEPTED,
    ACCEPTED_AS_TEST,
    FLAG_BAD_FBC,
    FLAG_EM_LIST,
    FLAG_LATE,
    FLAG_LEAD_NO_EM,
    FLAG_NO_EVENT_ID,
    FLAG_PLAINTEXT_EM,
    FLAG_PLAINTEXT_PH,
    FLAG_SERVER_ONLY,
    LEADS_WITHOUT_EM_CAMPAIGN,
    REJECTED_EXPIRED_TOKEN,
    TEST_EVENT_CODE,
    TIMED_OUT,
)
from .leads import CRM_STAGES, LATE_STAGE, MESSAGING_STAGES
from .scenario import CRM_DATASET, WEB_DATASET, Profile
from .timeline import iso_full
from .web import WEB_STEPS

_EVENT_NAMES = tuple(
    dict.fromkeys(WEB_STEPS + tuple(s[0] for s in CRM_STAGES + MESSAGING_STAGES)).keys()
)


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
      test_event_code_left_on; and genuine_errors (code 100 / 2804003), timeouts, retries;
    * other profiles than "standard" only: profile (its name), people (persons made),
      all_datasets (every dataset id). In the diverse profile customer parameters are
      independent draws, not planted: the plaintext and malformed-fbc counts stay 0.
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
    profile: str = "standard"
    people: int = 0
    all_datasets: list = field(default_factory=list)

    def to_dict(self) -> dict:
        """Return a JSON-able deep copy of the truth."""
        out = asdict(self)
        if self.profile == "standard":
            # Truth files written before profiles existed stay byte-identical.
            for key in ("profile", "people", "all_datasets"):
                del out[key]
        return out


class TruthLedger:
    """Counts released records into a GroundTruth; `finish` turns it into its final shape."""

    def __init__(
        self,
        truth: GroundTruth,
        seed: int,
        target: int,
        days: int,
        t0: int,
        test_window: tuple,
        profile: Profile,
    ):
        self.truth = truth
        # Plaintext values seen, in first-seen order (dicts as ordered sets).
        self.plaintext_emails: dict[str, None] = {}
        self.plaintext_phones: dict[str, None] = {}
        tr = truth
        tr.seed, tr.target_events, tr.days = seed, target, days
        tr.start = iso_full(t0)
        tr.datasets = {"web": WEB_DATASET, "crm": CRM_DATASET}
        tr.campaign_types = profile.campaign_types
        tr.campaigns = list(tr.campaign_types)
        tr.profile = profile.name
        datasets = profile.web_datasets + profile.crm_datasets
        if profile.name != "standard":
            tr.all_datasets = list(datasets)
        names = _EVENT_NAMES + profile.custom_events
        # by_event_name holds [browser, server] lists while running, dicts at the end.
        tr.events_by_dataset = {
            ds: {"browser": 0, "server": 0, "by_event_name": {n: [0, 0] for n in names}}
            for ds in datasets
        }
        self._start_defects(test_window)

    def _start_defects(self, test_window: tuple) -> None:
        tr = self.truth
        tr.leads_without_em = {
            "campaign": LEADS_WITHOUT_EM_CAMPAIGN,
            "dataset_id": WEB_DATASET,
            "event_name": "Lead",
            "events": 0,
            "events_accepted": 0,
            "events_in_rejected_batches": 0,
        }
        tr.purchases_without_event_id = {
            "dataset_id": WEB_DATASET,
            "event_name": "Purchase",
            "events": 0,
            "max_event_time_diff_s": 0,
        }
        tr.late_stage = {
            "dataset_id": CRM_DATASET,
            "event_name": LATE_STAGE,
            "stage": "Demo scheduled",
            "events": 0,
            "min_lag_s": None,
            "max_lag_s": None,
        }
        tr.plaintext_emails = {"events": 0, "addresses": []}
        tr.plaintext_phones = {"events": 0, "numbers": []}
        tr.malformed_fbc = {"events": 0}
        tr.token_error_burst = {
            "dataset_id": WEB_DATASET,
            "code": 190,
            "error_subcode": 463,
            "type": "OAuthException",
            "batches": 0,
            "events": 0,
            "first_sent_at": None,
            "last_sent_at": None,
        }
        tr.test_event_code_left_on = {
            "dataset_id": CRM_DATASET,
            "test_event_code": TEST_EVENT_CODE,
            "window_start": iso_full(test_window[0]),
            "window_end": iso_full(test_window[1]),
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

    def count(self, ready: list) -> list[dict]:
        """Count released (sent_at, seq, record, meta) tuples; return their records."""
        if not ready:
            return []
        tr = self.truth
        count_request = self._count_request
        by_dataset = tr.events_by_dataset
        pixels = 0
        pixels_by_dataset: dict[str, int] = {}
        records = []
        for sent, _, rec, meta in ready:
            if meta is None:
                pixels += 1
                ds = rec["dataset_id"]
                pixels_by_dataset[ds] = pixels_by_dataset.get(ds, 0) + 1
                by_dataset[ds]["by_event_name"][rec["event"]["event_name"]][0] += 1
            else:
                count_request(sent, rec, meta)
            records.append(rec)
        # Pixel totals are added once per slice: per-record attribute updates are slow.
        tr.records += len(ready)
        tr.pixel_records += pixels
        tr.browser_events += pixels
        tr.total_events += pixels
        for ds, n in pixels_by_dataset.items():
            by_dataset[ds]["browser"] += n
        if tr.first_sent_at is None:
            tr.first_sent_at = ready[0][2]["sent_at"]
        tr.last_sent_at = ready[-1][2]["sent_at"]
        return records

    def _count_request(self, sent: int, rec: dict, meta: tuple) -> None:
        tr = self.truth
        ds, flags, status, retry = meta
        data = rec["request"]["data"]
        n = len(data)
        tr.capi_requests += 1
        tr.server_events += n
        tr.total_events += n
        dsc = tr.events_by_dataset[ds]
        dsc["server"] += n
        by_name = dsc["by_event_name"]
        accepted = status in (ACCEPTED, ACCEPTED_AS_TEST)
        self._count_outcome(rec["sent_at"], status, n, accepted)
        if retry is not None:
            rt = tr.retries
            rt["batches"] += 1
            rt["events"] += n
            rt["after_" + retry] += n
            rt["batches_after_" + retry] += 1
        for ev, fl in zip(data, flags, strict=True):
            by_name[ev["event_name"]][1] += 1
            if fl:
                self._count_flags(sent, ev, fl, accepted, retry)

    def _count_outcome(self, iso: str, status: int, n: int, accepted: bool) -> None:
        # Totals by what became of one request of n events sent at `iso`.
        tr = self.truth
        if accepted:
            tr.server_events_accepted += n
        elif status == TIMED_OUT:
            tr.server_events_in_timed_out_batches += n
            tr.timed_out_batches += 1
            tr.timeouts["batches"] += 1
            tr.timeouts["events"] += n
        else:
            tr.server_events_in_rejected_batches += n
            tr.rejected_batches += 1
            if status == REJECTED_EXPIRED_TOKEN:
                tb = tr.token_error_burst
            else:
                tb = tr.genuine_errors
            tb["batches"] += 1
            tb["events"] += n
            if status == REJECTED_EXPIRED_TOKEN:
                tb["last_sent_at"] = iso
                if tb["first_sent_at"] is None:
                    tb["first_sent_at"] = iso
        if status == ACCEPTED_AS_TEST:
            tc = tr.test_event_code_left_on
            tc["batches"] += 1
            tc["events"] += n
            tc["last_sent_at"] = iso
            if tc["first_sent_at"] is None:
                tc["first_sent_at"] = iso

    def _count_flags(self, sent: int, ev: dict, fl: int, accepted: bool, retry) -> None:
        # One server event that carries flags, in a request sent at `sent`.
        tr = self.truth
        if fl & FLAG_EM_LIST:
            tr.server_em_list_events += 1
        if fl & FLAG_PLAINTEXT_EM:
            tr.plaintext_emails["events"] += 1
            em = ev["user_data"]["em"]
            self.plaintext_emails[em[0] if em.__class__ is list else em] = None
        if fl & FLAG_PLAINTEXT_PH:
            tr.plaintext_phones["events"] += 1
            ph = ev["user_data"]["ph"]
            self.plaintext_phones[ph[0] if ph.__class__ is list else ph] = None
        if fl & FLAG_BAD_FBC:
            tr.malformed_fbc["events"] += 1
        if fl & FLAG_SERVER_ONLY and retry is None:
            tr.web_server_only_events += 1
        if fl & FLAG_NO_EVENT_ID:
            tr.purchases_without_event_id["events"] += 1
        if fl & FLAG_LEAD_NO_EM:
            # Never in timed-out batches (protected), so events = accepted + rejected.
            lw = tr.leads_without_em
            lw["events"] += 1
            lw["events_accepted" if accepted else "events_in_rejected_batches"] += 1
        if fl & FLAG_LATE:
            ls = tr.late_stage
            lag = sent - ev["event_time"]
            ls["events"] += 1
            ls["min_lag_s"] = lag if ls["min_lag_s"] is None else min(ls["min_lag_s"], lag)
            ls["max_lag_s"] = lag if ls["max_lag_s"] is None else max(ls["max_lag_s"], lag)

    def finish(self) -> None:
        """Plaintext values as lists, by_event_name as sorted {browser, server} dicts."""
        tr = self.truth
        tr.plaintext_emails["addresses"] = list(self.plaintext_emails)
        tr.plaintext_phones["numbers"] = list(self.plaintext_phones)
        for dsc in tr.events_by_dataset.values():
            dsc["by_event_name"] = {
                k: {"browser": v[0], "server": v[1]}
                for k, v in sorted(dsc["by_event_name"].items())
                if v[0] or v[1]
            }
