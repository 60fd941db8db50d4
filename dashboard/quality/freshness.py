"""Freshness classes: how often an integration uploads, judged from its lag."""

from __future__ import annotations

import pandas as pd

from dashboard.core.config import Config
from dashboard.core.filters import Filters
from dashboard.store.queries import freshness as queries


def upload_frequency(median_lag_s: float | None, config: Config) -> str:
    """Events Manager's upload-frequency class from the median lag."""
    if median_lag_s is None:
        return "no data"
    if median_lag_s <= config.freshness["real_time_max_s"]:
        return "real time"
    if median_lag_s <= config.freshness["hourly_max_s"]:
        return "hourly"
    if median_lag_s <= config.freshness["daily_max_s"]:
        return "daily"
    return "weekly"


def lag_stats(engine, filters: Filters, config: Config, by: str = "funnel_stage") -> pd.DataFrame:
    """Lag percentiles (seconds) of server events per group, with the upload-frequency class."""
    frame = queries.lag_percentiles(engine, filters, by)
    frame["upload_frequency"] = pd.Series(
        [upload_frequency(v, config) for v in frame["p50_lag_s"]], index=frame.index, dtype=object
    )
    return frame
