"""Configuration: loading the TOML config and resolving campaign and funnel stage.

Owns the documented config file format (defaults in data/config.toml), where files
and the default store live, and the pure functions that map a raw event to its
campaign and funnel stage at import time.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = REPO_ROOT / "data"
DEFAULT_CONFIG_PATH = DATA_DIR / "config.toml"
DEFAULT_STORE_PATH = DATA_DIR / "events.duckdb"
SAMPLE_LOG_PATH = DATA_DIR / "sample" / "sent_events.jsonl.gz"
# The sample's Dataset Quality API answers (dashboard/sample/meta_answers.py wrote them).
SAMPLE_META_DIR = DATA_DIR / "sample" / "meta"

CONFIG_ENV = "EQM_CONFIG"
DB_URL_ENV = "EQM_DB_URL"


def default_db_url() -> str:
    """The store URL: $EQM_DB_URL if set, else the embedded DuckDB file under data/."""
    return os.environ.get(DB_URL_ENV) or f"duckdb:///{DEFAULT_STORE_PATH}"


@dataclass(frozen=True)
class Config:
    """Every tunable the import and the indicators read."""

    campaign_sources: tuple[str, ...]
    campaign_default: str
    stage_field: str
    stage_other: str
    stage_by_event: dict[str, str]
    funnels: dict[str, tuple[str, ...]]
    emq_points: dict[str, float]
    emq_pair_points: float
    emq_cap: float
    emq_tiers: dict[str, float]
    coverage_goal: float
    freshness: dict[str, float]
    readiness: dict[str, int]
    source_path: str = field(default="")
    # Server events with another action_source, or at one of these stages, have no
    # browser twin by design (see [dedup] in data/config.toml).
    pixel_action_sources: tuple[str, ...] = ("website",)
    server_only_stages: tuple[str, ...] = ()
    max_silence_hours: float = 6.0
    # The exported report's branding ([report]): all optional.
    report_title: str = "Event quality report"
    report_client: str = ""
    report_logo: str = ""  # an image file, relative to the config file's folder
    # Reconciliation against orders exports ([reconcile]).
    reconcile_match_on: str = "event_id"  # or "order_id" (custom_data.order_id)
    reconcile_purchase_event: str = "Purchase"
    reconcile_late_after_s: float = 3600.0
    reconcile_list_cap: int = 100
    reconcile_timezone: str = "UTC"  # of export times without an offset
    # Export column names per shop system: name -> {field: column}.
    reconcile_columns: dict[str, dict[str, str]] = field(default_factory=dict)
    # CRM stage changes ([reconcile.crm]): stage -> event name, windows, column names.
    crm_stage_events: dict[str, str] = field(default_factory=dict)
    crm_window_s: float = 7 * 86_400.0
    crm_early_s: float = 3600.0
    crm_late_after_s: float = 3600.0
    crm_columns: dict[str, dict[str, str]] = field(default_factory=dict)

    def stage_order(self) -> list[str]:
        """Every configured stage, funnel by funnel, each once, in funnel order."""
        seen: list[str] = []
        for stages in self.funnels.values():
            for stage in stages:
                if stage not in seen:
                    seen.append(stage)
        for stage in self.stage_by_event.values():
            if stage not in seen:
                seen.append(stage)
        return seen

    def earlier_stages(self, stage: str) -> set[str]:
        """Stages that come before `stage` in any funnel containing it."""
        earlier: set[str] = set()
        for stages in self.funnels.values():
            if stage in stages:
                earlier.update(stages[: stages.index(stage)])
        return earlier


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


class ConfigError(ValueError):
    """The config file is missing, unreadable or has a value of the wrong type."""


def load_config(path: str | Path | None = None) -> Config:
    """Load the defaults, overlaid with `path` (or $EQM_CONFIG) when given."""
    with DEFAULT_CONFIG_PATH.open("rb") as fh:
        raw = tomllib.load(fh)
    chosen = path or os.environ.get(CONFIG_ENV)
    if chosen:
        try:
            with Path(chosen).open("rb") as fh:
                raw = _deep_merge(raw, tomllib.load(fh))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config {chosen}: {exc}") from exc
    try:
        return Config(
            campaign_sources=tuple(raw["campaign"]["sources"]),
            campaign_default=str(raw["campaign"]["default"]),
            stage_field=str(raw["funnel"]["stage_field"]),
            stage_other=str(raw["funnel"]["other"]),
            stage_by_event={str(k): str(v) for k, v in raw["funnel"]["stages"].items()},
            funnels={str(k): tuple(map(str, v)) for k, v in raw["funnel"]["order"].items()},
            emq_points={str(k): float(v) for k, v in raw["emq"]["points"].items()},
            emq_pair_points=float(raw["emq"]["ip_and_user_agent"]),
            emq_cap=float(raw["emq"]["cap"]),
            emq_tiers={str(k): float(v) for k, v in raw["emq"]["tiers"].items()},
            coverage_goal=float(raw["coverage"]["goal"]),
            freshness={str(k): float(v) for k, v in raw["freshness"].items()},
            readiness={str(k): int(v) for k, v in raw["readiness"].items()},
            source_path=str(chosen or DEFAULT_CONFIG_PATH),
            pixel_action_sources=tuple(map(str, raw["dedup"]["pixel_action_sources"])),
            server_only_stages=tuple(map(str, raw["dedup"]["server_only_stages"])),
            max_silence_hours=float(raw["health"]["max_silence_hours"]),
            **_report_branding(raw.get("report", {}), Path(chosen or DEFAULT_CONFIG_PATH)),
            **_reconcile(raw.get("reconcile", {})),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"config {chosen or DEFAULT_CONFIG_PATH}: bad or missing {exc}") from exc


def _report_branding(section: dict[str, Any], config_path: Path) -> dict[str, str]:
    """[report] title, client and logo; a relative logo path is read from the config's folder."""
    logo = str(section.get("logo") or "")
    if logo and not Path(logo).is_absolute():
        logo = str(config_path.resolve().parent / logo)
    return {
        "report_title": str(section.get("title") or "Event quality report"),
        "report_client": str(section.get("client") or ""),
        "report_logo": logo,
    }


def _reconcile(section: dict[str, Any]) -> dict[str, Any]:
    """[reconcile]: how orders are matched, and each shop system's column names."""
    match_on = str(section.get("match_on", "event_id"))
    if match_on not in ("event_id", "order_id"):
        raise ValueError(f"[reconcile] match_on must be event_id or order_id, not {match_on!r}")
    crm = section.get("crm", {})
    return {
        "crm_stage_events": {str(k): str(v) for k, v in crm.get("stages", {}).items()},
        "crm_window_s": float(crm.get("window_s", 7 * 86_400)),
        "crm_early_s": float(crm.get("early_s", 3600)),
        "crm_late_after_s": float(crm.get("late_after_s", 3600)),
        "crm_columns": {
            str(name): {str(k): str(v) for k, v in columns.items()}
            for name, columns in crm.get("columns", {}).items()
        },
        "reconcile_match_on": match_on,
        "reconcile_purchase_event": str(section.get("purchase_event", "Purchase")),
        "reconcile_late_after_s": float(section.get("late_after_s", 3600)),
        "reconcile_list_cap": int(section.get("missing_list_cap", 100)),
        "reconcile_timezone": str(section.get("timezone", "UTC")),
        "reconcile_columns": {
            str(name): {str(k): str(v) for k, v in columns.items()}
            for name, columns in section.get("columns", {}).items()
        },
    }


def _lookup(event: dict[str, Any], dotted: str) -> Any:
    node: Any = event
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


@lru_cache(maxsize=65_536)
def query_value(url: str, name: str) -> str | None:
    # Pages repeat across events: parse each URL once.
    try:
        values = parse_qs(urlsplit(url).query).get(name)
    except ValueError:
        return None
    return values[0].strip() if values and values[0].strip() else None


def resolve_campaign(event: dict[str, Any], config: Config) -> str:
    """Campaign of a raw event: first configured source that has a value, else the default."""
    for source in config.campaign_sources:
        if source.startswith("url:"):
            url = event.get("event_source_url")
            if not isinstance(url, str) or "?" not in url:
                continue
            value = query_value(url, source[4:])
            if value:
                return value
        else:
            value = _text(_lookup(event, source))
            if value:
                return value
    return config.campaign_default


def resolve_stage(event: dict[str, Any], config: Config) -> str:
    """Funnel stage of a raw event: explicit stage field, else the event-name mapping."""
    explicit = _text(_lookup(event, config.stage_field))
    if explicit:
        return explicit
    name = event.get("event_name")
    return (
        config.stage_by_event.get(name, config.stage_other)
        if isinstance(name, str)
        else (config.stage_other)
    )
