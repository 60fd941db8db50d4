"""What the product's words mean, as numbers: every window, status set and limit, once.

Meta's rules (sources in ../shared/capi-reference.md and the README) and our own
choices live here and nowhere else; the SQL in `store/`, the import in `ingest/`, the
indicators in `quality/` and the pandas oracle in `tests/oracle/` all read them.
"""

from __future__ import annotations

# Dedup: a browser and a server event with the same dataset, event_name and event_id
# are twins when their event_times are at most 48 h apart ("within" is inclusive).
DEDUP_WINDOW_S = 48 * 3600
# Two accepted server events of one key this close together are a likely double count.
DOUBLE_COUNT_WINDOW_S = 5 * 60

# Every dedup status an event can have (stored in events.dedup_status).
DEDUP_STATUSES = (
    "same_channel_repeat",
    "deduplicated",
    "outside_48h",
    "fallback_deduplicated",
    "server_only",
    "browser_only",
    "missing_event_id",
)
# The statuses that are a dedup gap: an event that Meta cannot pair with its twin.
GAP_STATUSES = ("browser_only", "server_only", "missing_event_id", "outside_48h")
# The statuses that count as deduplicated in the dedup rate.
DEDUPLICATED_STATUSES = ("deduplicated", "fallback_deduplicated")
CHANNELS = ("browser", "server")

# Freshness: Meta rejects a batch holding an event older than 7 days; an event more than
# a minute in the future (clock skew aside) is flagged.
STALE_AFTER_S = 7 * 86400
FUTURE_TOLERANCE_S = 60

# Timestamps the import accepts (event_time, sent_at): 2000-01-01 to 2100-01-01 UTC.
MIN_TIMESTAMP_S = 946_684_800
MAX_TIMESTAMP_S = 4_102_444_800

# A group (campaign, stage...) needs this many server events before a diagnostic is
# raised about it: fewer are noise.
MIN_GROUP_EVENTS = 10
SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}

# The name an upload is imported under in the import log ("upload: orders.jsonl"), so the
# Data page can tell an upload from a file read on disk.
UPLOAD_PREFIX = "upload: "
