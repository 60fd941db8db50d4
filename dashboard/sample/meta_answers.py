"""Seeded Dataset Quality API answers for the bundled sample's web shop (dataset
1111111111): what Meta's Events Manager could have said about it, every three days.

Synthetic like the sample log, and labelled so wherever it shows (the demo stores them
under the agent name core.meta_quality.SAMPLE_AGENT).
Meta's score is drawn near 2.4 + 0.6 × a base close to our estimate per event, so a
calibration has something to find; one fault is planted: in the last answer Meta's
Purchase score falls by about two points while the parameters sent do not change (as
when the server starts hashing a normalised value wrongly), which `check`'s two Meta
rules must catch. The answers use the docs' spelling `dedupe_key_feedback`, except the
first, which uses the field table's `dedup_key_feedback`: both occur in the wild.
Standard library only.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

SAMPLE_DATASET = "1111111111"
# Our estimate's level per event on the sample, and the share of events carrying
# e-mail and phone (the match keys that differ between the events).
EVENTS = {
    "PageView": (5.8, 0.01, 0.01, 0.94),
    "ViewContent": (5.7, 0.01, 0.01, 0.71),
    "AddToCart": (5.8, 0.01, 0.01, 0.89),
    "InitiateCheckout": (9.8, 0.92, 0.71, 0.89),
    "Lead": (9.5, 0.36, 0.75, 0.96),
    "Purchase": (9.9, 0.96, 0.76, 0.83),
}
FIRST = datetime(2026, 10, 20, tzinfo=UTC)
EVERY = timedelta(days=3)
COUNT = 6  # 2026-10-20 .. 2026-11-04, each at midnight UTC
FAULTY_EVENT = "Purchase"


def _pct(value: float) -> float:
    return round(max(0.0, min(100.0, value)), 1)


def _event(rng: random.Random, name: str, last: bool, dedup_field: str) -> dict:
    level, email, phone, coverage = EVENTS[name]
    score = 2.4 + 0.6 * level + rng.uniform(-0.3, 0.3)
    diagnostics = []
    if last and name == FAULTY_EVENT:
        score -= 2.0
        diagnostics.append(
            {
                "name": "Server sending invalid match key parameters",
                "description": "Some hashed e-mail values sent from your server are not "
                "normalised before hashing.",
                "solution": "Trim and lower-case e-mails before SHA-256 hashing them.",
                "percentage": 41.2,
                "affected_event_count": 97,
                "total_event_count": 235,
            }
        )
    keys = {
        "email": email,
        "phone": phone,
        "external_id": 1.0,
        "ip_address": 1.0,
        "user_agent": 1.0,
        "fbc": 0.7,
        "fbp": 0.96,
    }
    event_coverage = _pct(coverage * 100 - rng.uniform(1, 5))
    return {
        "event_name": name,
        "event_match_quality": {
            "composite_score": round(min(10.0, max(0.0, score)), 1),
            "match_key_feedback": [
                {"identifier": key, "coverage": {"percentage": _pct(share * 100)}}
                for key, share in keys.items()
            ],
            "diagnostics": diagnostics,
        },
        "event_coverage": {
            "percentage": event_coverage,
            "goal_percentage": 75,
            "description": "7-day average of Pixel events covered by the Conversions API",
        },
        dedup_field: [
            {
                "dedupe_key": "event_id",
                "browser_events_with_dedupe_key": {"percentage": 100},
                "server_events_with_dedupe_key": {"percentage": 100},
                "overall_browser_coverage_from_dedupe_key": {"percentage": event_coverage},
            }
        ],
        "data_freshness": {"upload_frequency": "real_time", "description": "sample"},
        "acr": {"percentage": round(rng.uniform(8, 30), 1), "description": "sample"},
    }


def sample_answers(seed: int = 42) -> list[tuple[datetime, dict]]:
    """(fetched_at, answer) for each of the sample's snapshot times, oldest first."""
    rng = random.Random(seed)
    out = []
    for index in range(COUNT):
        last = index == COUNT - 1
        field = "dedup_key_feedback" if index == 0 else "dedupe_key_feedback"
        answer = {"web": [_event(rng, name, last, field) for name in EVENTS]}
        out.append((FIRST + index * EVERY, answer))
    return out


def write_sample_answers(folder: str | Path, seed: int = 42) -> list[tuple[Path, datetime]]:
    """Write each answer to `folder`/dataset_quality_<day>.json; (path, fetched_at) each."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for at, answer in sample_answers(seed):
        path = folder / f"dataset_quality_{at:%Y-%m-%d}.json"
        path.write_text(json.dumps(answer, indent=1) + "\n")
        written.append((path, at))
    return written
