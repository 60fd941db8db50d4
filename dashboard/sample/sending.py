"""Sending to the Conversions API: batches, ``capi_request`` records, Meta's answers, retries.

Owns each dataset's sender: it queues server events into a batch of a drawn target size
(1-5), flushes the batch when it is full or its flush window has passed, writes the
request (with test_event_code while that incident lasts), Meta's answer for the outcome
the planted faults chose (events_received, an expired-token or too-old error, or no
answer at all on a timeout), and re-sends timed-out and too-old batches a little later.
"""

from __future__ import annotations

import copy

from .faults import (
    ACCEPTED,
    ACCEPTED_AS_TEST,
    PROTECTED_FLAGS,
    REJECTED_EXPIRED_TOKEN,
    REJECTED_TOO_OLD,
    TEST_EVENT_CODE,
    TIMED_OUT,
    PlantedFaults,
)
from .identities import SampleRng
from .scenario import CRM_FLUSH_WINDOW, RETRY_DELAY, WEB_DATASET, WEB_FLUSH_WINDOW, Profile
from .timeline import END_OF_TIME, Timeline

_TOKEN_ERROR_MESSAGE = "Error validating access token: Session has expired"
_TOO_OLD_MESSAGE = "Invalid parameter"
_TOO_OLD_TITLE = "Event Timestamp Too Old"

# Target batch size 1-5 with weights 30/25/20/15/10 (index with a draw below 100).
_BATCH_SIZE_PICK = (1,) * 30 + (2,) * 25 + (3,) * 20 + (4,) * 15 + (5,) * 10


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


class CapiSender:
    """The open batch of each dataset; closing one turns it into capi_request records."""

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
        self.flush_window = dict.fromkeys(profile.web_datasets, WEB_FLUSH_WINDOW)
        self.flush_window.update(dict.fromkeys(profile.crm_datasets, CRM_FLUSH_WINDOW))
        # Batches are closed in this dataset order when several are due at once (the
        # order is part of the seeded output).
        self.rank = {ds: i for i, ds in enumerate(self.flush_window)}
        self.open: dict[str, _Batch] = {}  # only datasets with an open batch
        self.next_expiry = END_OF_TIME  # earliest flush time of an open batch

    def add(self, t: int, ds: str, ev: dict, flags: int) -> None:
        """Queue a server event the sender of dataset `ds` gets at `t`."""
        b = self.open.get(ds)
        if b is None:
            size = _BATCH_SIZE_PICK[int(self.rng.random() * 100)]
            b = self.open[ds] = _Batch(t, t + self.flush_window[ds], size)
            if b.deadline < self.next_expiry:
                self.next_expiry = b.deadline
        b.events.append(ev)
        b.flags.append(flags)
        b.last = t
        if flags & PROTECTED_FLAGS:
            b.protected = True
        if len(b.events) >= b.size:
            self._close(ds)

    def expire(self, now: int) -> None:
        """Close the batches whose flush time is before `now`."""
        # Also remember when the next one will, so callers can skip checking until then.
        nxt = END_OF_TIME
        for ds in self._open_in_order():
            b = self.open[ds]
            if b.deadline < now:
                self._close(ds)
            else:
                nxt = min(nxt, b.deadline)
        self.next_expiry = nxt

    def close_all(self) -> None:
        """Flush every open batch (the end of the period)."""
        for ds in self._open_in_order():
            self._close(ds)

    def _open_in_order(self) -> list[str]:
        open_ = self.open
        if len(open_) < 2:
            return list(open_)
        return sorted(open_, key=self.rank.__getitem__)

    def watermark(self, now: int) -> int:
        """The earliest time a record not made yet can be sent at: open batches send later."""
        for b in self.open.values():
            if b.first < now:
                now = b.first
        return now

    def _close(self, ds: str) -> None:
        b = self.open.pop(ds)
        sent = b.last
        status = self.faults.request_outcome(ds, sent, b.protected)
        if status == ACCEPTED and ds == WEB_DATASET:
            self.faults.drop_purchase_event_ids(b.events, b.flags)
        request: dict = {"data": b.events}
        if status == ACCEPTED_AS_TEST:
            request["test_event_code"] = TEST_EVENT_CODE
        rec = {
            "kind": "capi_request",
            "sent_at": self.timeline.iso(sent),
            "dataset_id": ds,
            "request": request,
            "response": self._answer(status, len(b.events)),
        }
        self.timeline.push_out(sent, rec, (ds, b.flags, status, None))
        if status in (TIMED_OUT, REJECTED_TOO_OLD):
            self._retry(ds, sent, b, "timeout" if status == TIMED_OUT else "error")

    def _answer(self, status: int, n_events: int) -> dict | None:
        # Meta's response to a request: None when it never came (timeout).
        if status == REJECTED_EXPIRED_TOKEN:
            err = {
                "message": _TOKEN_ERROR_MESSAGE,
                "type": "OAuthException",
                "code": 190,
                "error_subcode": 463,
                "fbtrace_id": self._trace_id(),
            }
            return {"status": 400, "body": {"error": err}}
        if status == REJECTED_TOO_OLD:
            err = {
                "message": _TOO_OLD_MESSAGE,
                "type": "OAuthException",
                "code": 100,
                "error_subcode": 2804003,
                "is_transient": False,
                "error_user_title": _TOO_OLD_TITLE,
                "error_user_msg": "The timestamp for this event is too far in the past.",
                "fbtrace_id": self._trace_id(),
            }
            return {"status": 400, "body": {"error": err}}
        if status == TIMED_OUT:
            return None
        body = {"events_received": n_events, "messages": [], "fbtrace_id": self._trace_id()}
        return {"status": 200, "body": body}

    def _retry(self, ds: str, sent: int, b: _Batch, reason: str) -> None:
        # The sender retries the same events (same event_id and event_time) later.
        retry_at = sent + self.rng.between(*RETRY_DELAY)
        retry_req: dict = {"data": copy.deepcopy(b.events)}
        retry_test = self.faults.in_test_window(ds, retry_at)
        if retry_test:
            retry_req["test_event_code"] = TEST_EVENT_CODE
        body = {"events_received": len(b.events), "messages": [], "fbtrace_id": self._trace_id()}
        retry = {
            "kind": "capi_request",
            "sent_at": self.timeline.iso(retry_at),
            "dataset_id": ds,
            "request": retry_req,
            "response": {"status": 200, "body": body},
        }
        meta = (ds, list(b.flags), ACCEPTED_AS_TEST if retry_test else ACCEPTED, reason)
        self.timeline.push_out(retry_at, retry, meta)

    def _trace_id(self) -> str:
        # fbtrace_id: Meta's request id, "A" and 23 hex digits.
        return f"A{self.rng.getrandbits(92):023x}"
