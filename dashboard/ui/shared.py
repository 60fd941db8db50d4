"""Streamlit plumbing shared by the pages: store connection, cached queries, filters.

Owns the engine (st.cache_resource, one per store URL, never mutated), the bounded
query cache (st.cache_data keyed on the query, the filters and the store version, so
an import invalidates it), the sidebar filters mirrored in the URL query string, and
small display helpers. Pages call `query(...)` and never touch SQL.
"""

from __future__ import annotations

import json
import os
import weakref
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

import pandas as pd
import streamlit as st

from dashboard.core import clock
from dashboard.core import formatting as fmt
from dashboard.core.config import DB_URL_ENV, Config, default_db_url, load_config
from dashboard.core.filters import FILTER_DIMENSIONS, Filters
from dashboard.core.selection import URL_KEYS, Selection
from dashboard.outputs import labels
from dashboard.outputs.exports import to_csv_bytes
from dashboard.quality.blocks import block_frames, overall_block
from dashboard.quality.daily import before_after
from dashboard.quality.diagnostics import overview
from dashboard.quality.drilldown import event_page
from dashboard.quality.freshness import lag_stats
from dashboard.quality.funnel import funnel_stages
from dashboard.quality.match_quality import what_to_fix
from dashboard.quality.meta_compare import compare, current_calibration, period_snapshots
from dashboard.quality.periods import comparison
from dashboard.store.database import create_schema, make_engine, release_connections, store_version
from dashboard.store.locks import retry_on_lock
from dashboard.store.meta_snapshots import meta_version
from dashboard.store.queries import blocks as block_queries
from dashboard.store.queries.blocks import distinct_values
from dashboard.store.queries.freshness import (
    delivery_errors,
    delivery_summary,
    lag_sample,
    pipeline_health,
)
from dashboard.store.queries.funnel import (
    funnel_people,
    purchase_readiness,
    purchases,
    stage_order_gaps,
    weekly_purchases,
)
from dashboard.store.queries.match import action_sources_by, dedup_key_feedback, gap_events

PERIODS = {"Last 7 days": 7, "Last 28 days": 28, "All data": None, "Custom": -1}
DEFAULT_PERIOD = "Last 28 days"
# Bars or rows a chart can still label: the groups with the most events (largest_groups).
CHART_GROUPS = 25


def _secret(name: str) -> Any:
    """A top-level entry of Streamlit's secrets; None when absent or there is no secrets file."""
    try:
        return st.secrets.get(name)
    except FileNotFoundError:  # StreamlitSecretNotFoundError: no secrets.toml anywhere
        return None


def store_url() -> str:
    """The store URL: $EQM_DB_URL, else `db_url` (or `[connections.eqm] url`) in Streamlit's
    secrets, else the embedded DuckDB file. Never shown: it may hold a password."""
    if os.environ.get(DB_URL_ENV):
        return default_db_url()
    connection = _secret("connections") or {}
    from_secrets = _secret("db_url") or (connection.get("eqm") or {}).get("url")
    return str(from_secrets) if from_secrets else default_db_url()


# ---------------------------------------------------------------------------
# Access. With an [auth] section in Streamlit's secrets, Streamlit's OIDC login
# (st.login, st.user) guards every page, optionally for some e-mail domains only
# ([access] allowed_email_domains). Without it, the dashboard is for this machine only:
# .streamlit/config.toml binds it to localhost.
LOCAL_ADDRESSES = ("localhost", "127.0.0.1", "::1")


def login_configured() -> bool:
    """True when Streamlit's OIDC login is configured ([auth] in the secrets)."""
    return bool(_secret("auth"))


def allowed_email_domains() -> tuple[str, ...]:
    """E-mail domains allowed in ([access] allowed_email_domains); empty: any logged-in user."""
    domains = (_secret("access") or {}).get("allowed_email_domains") or ()
    if isinstance(domains, str):
        domains = [domains]
    return tuple(str(d).strip().lstrip("@").lower() for d in domains if str(d).strip())


def email_allowed(email: Any, verified: Any, domains: tuple[str, ...]) -> bool:
    """Whether a logged-in user's e-mail passes the domain allow-list (exact domains)."""
    if not domains:
        return True
    if not isinstance(email, str) or "@" not in email or verified is False:
        return False
    return email.rsplit("@", 1)[1].strip().lower() in domains


def access_granted() -> bool:
    """Gate the app before anything reads the store; False: nothing else may render."""
    if not login_configured():
        address = st.get_option("server.address") or ""
        if address in LOCAL_ADDRESSES:
            st.sidebar.caption(
                f"No login configured: only this machine can open the dashboard "
                f"(server.address = {address})."
            )
        else:
            st.sidebar.warning(
                "No login configured, and the server is not bound to localhost: anyone who "
                'can reach it sees the data. Set server.address = "localhost" or configure '
                "[auth] (see the README)."
            )
        return True
    user = st.user
    if not user.get("is_logged_in", False):
        st.title("Event Quality Monitor")
        st.info("Log in to see the dashboard.")
        if st.button("Log in", key="btn_login", type="primary"):
            st.login((_secret("access") or {}).get("provider") or None)
        return False
    email = user.get("email")
    with st.sidebar:
        st.caption(f"Logged in as {email or user.get('name') or 'an unnamed user'}")
        if st.button("Log out", key="btn_logout"):
            st.logout()
    if not email_allowed(email, user.get("email_verified"), allowed_email_domains()):
        st.title("Event Quality Monitor")
        st.error("This account may not see the dashboard. Log out and use an allowed account.")
        return False
    return True


@st.cache_resource(max_entries=4)
def get_engine(url: str):
    engine = make_engine(url, reuse_connections=True)
    create_schema(engine)
    _ENGINES.add(engine)
    return engine


# Every engine get_engine made, so end_run can close their idle connections.
_ENGINES: weakref.WeakSet = weakref.WeakSet()


def _refresh_dedup_if_stale(url: str) -> None:
    # An import killed half-way leaves committed rows without dedup status: finish it.
    from dashboard.store import dedup

    dedup.refresh_if_stale(get_engine(url))


@st.cache_resource(max_entries=1)
def get_config() -> Config:
    return load_config()


def with_retry(fn: Callable[[], Any]) -> Any:
    # While an import holds the store, wait under the store's one lock policy.
    return retry_on_lock(fn)


def begin_run() -> None:
    """Read the store version once for this script run (the router calls it first)."""
    st.session_state["_store_version"] = _read_version()


def end_run() -> None:
    """Close the store connections this run left open (the router calls it last): a
    page's queries share one open of the store, and an import in another process can
    take the DuckDB file between runs."""
    for engine in list(_ENGINES):
        release_connections(engine)


def version() -> tuple[int, int]:
    """Store version (changes with every import): the cache key's freshness part."""
    if "_store_version" not in st.session_state:
        begin_run()
    return st.session_state["_store_version"]


def _read_version() -> tuple[int, int]:
    # The refresh checks for itself whether it is due: data changed since the last one, or
    # a store made before the per-person table (a few meta reads when nothing is due).
    with_retry(lambda: _refresh_dedup_if_stale(store_url()))
    return with_retry(lambda: store_version(get_engine(store_url())))


def _filters_key(filters: Filters) -> str:
    return json.dumps(filters.as_dict(), sort_keys=True)


def _filters_from_key(key: str) -> Filters:
    raw = json.loads(key)
    kwargs: dict[str, Any] = {}
    for name, value in raw.items():
        if name in ("since", "until"):
            kwargs[name] = date.fromisoformat(value)
        elif name in ("start_ts", "end_ts", "sent_start_ts", "sent_end_ts"):
            kwargs[name] = float(value)
        else:
            kwargs[name] = tuple(value)
    return Filters(**kwargs)


QUERIES: dict[str, Callable[..., Any]] = {
    "overall": lambda e, f, c: overall_block(e, f, c),
    # Several groupings in one scan (GROUPING SETS where the database has them).
    "blocks": lambda e, f, c, groupings: block_frames(e, f, c, [list(g) for g in groupings]),
    "what_to_fix": lambda e, f, c, limit=50: what_to_fix(e, f, c, limit),
    "dedup_key_feedback": lambda e, f, c: dedup_key_feedback(e, f),
    # limit None: every gap (the whole-list download).
    "gap_events": lambda e, f, c, statuses, limit=1000: gap_events(e, f, statuses, limit, c),
    "lag_stats": lambda e, f, c, by="funnel_stage": lag_stats(e, f, c, by),
    "lag_sample": lambda e, f, c: lag_sample(e, f),
    "delivery_errors": lambda e, f, c: delivery_errors(e, f),
    "delivery_summary": lambda e, f, c: delivery_summary(e, f),
    "funnel_stages": lambda e, f, c: funnel_stages(e, f, c),
    "funnel_people": lambda e, f, c: funnel_people(e, f, c),
    "stage_order_gaps": lambda e, f, c: stage_order_gaps(e, f, c),
    "purchases": lambda e, f, c: purchases(e, f, c),
    "purchase_readiness": lambda e, f, c: purchase_readiness(e, f, c),
    "weekly_purchases": lambda e, f, c: weekly_purchases(e, f),
    # `day` as for comparison: the days without events end yesterday.
    "overview": lambda e, f, c, day=None: overview(e, f, c),
    # `day`: today's date, only for the cache key (the comparison depends on it).
    "comparison": lambda e, f, c, day=None: comparison(e, f),
    "action_sources_by": lambda e, f, c, by: action_sources_by(e, f, by),
    "pipeline_health": lambda e, f, c: pipeline_health(e, f),
    # `over`: whether the days after the marker are over, only for the cache key.
    "before_after": lambda e, f, c, at, days, over=None: before_after(e, f, c, at, days),
    # Meta's snapshots in the period with our figures beside them, and the calibration;
    # `meta_ver` (meta_snapshots.meta_version) only keys the cache.
    "meta_comparisons": lambda e, f, c, meta_ver: compare(e, c, period_snapshots(e, f)),
    "meta_calibration": lambda e, f, c, meta_ver: current_calibration(e),
    # The selection as its URL query (hashable): one page of its events and the total.
    "event_page": lambda e, f, c, selection, sort, descending, offset, limit: event_page(
        e,
        f,
        c,
        Selection.from_query(dict(selection)),
        sort=sort,
        descending=descending,
        offset=offset,
        limit=limit,
    ),
}


@st.cache_data(ttl=900, max_entries=512, show_spinner=False)
def _cached(name: str, url: str, store_ver: tuple[int, int], filters_key: str, args: tuple) -> Any:
    engine = get_engine(url)
    return with_retry(
        lambda: QUERIES[name](engine, _filters_from_key(filters_key), get_config(), *args)
    )


def query(name: str, filters: Filters, *args: Any) -> Any:
    """Run a named indicator query for the filters, cached per store version."""
    return _cached(name, store_url(), version(), _filters_key(filters), tuple(args))


def meta_query(name: str, filters: Filters) -> Any:
    """A named query on Meta's snapshots, cached per snapshot and calibration version."""
    current = with_retry(lambda: meta_version(get_engine(store_url())))
    return query(name, filters, current)


@st.cache_data(ttl=900, max_entries=64, show_spinner=False)
def _distinct(url: str, store_ver: tuple[int, int], column: str) -> list[str]:
    return with_retry(lambda: distinct_values(get_engine(url), column))


def distinct(column: str) -> list[str]:
    """The values a column holds in the store (cached per store version)."""
    return _distinct(store_url(), version(), column)


@st.cache_data(ttl=900, max_entries=16, show_spinner=False)
def _range(url: str, store_ver: tuple[int, int]) -> tuple[date, date] | None:
    return with_retry(lambda: block_queries.data_range(get_engine(url)))


def data_range() -> tuple[date, date] | None:
    return _range(store_url(), version())


def markers() -> list:
    """The store's markers (dashboard.store.markers), for every time chart. Read each run,
    not cached: adding a marker does not change the store version."""
    from dashboard.store.markers import list_markers

    return with_retry(lambda: list_markers(get_engine(store_url())))


def import_log(name: str) -> pd.DataFrame:
    """The import history or the quarantine (dashboard.store.import_log.READS), read each run
    and not cached: small tables, and an import that adds nothing bumps no version."""
    from dashboard.store.import_log import READS

    return with_retry(lambda: READS[name](get_engine(store_url())))


# ---------------------------------------------------------------------------
# Sidebar filters, mirrored in the URL so a view can be shared.
def remember_opened_url() -> None:
    """Keep the query of the URL this session opened with, before the navigation shows.

    A page clicked while the first run is still going switches pages, and so clears the
    query, before that run reached the filters: the shared link's slice would be lost.
    """
    if "_opened_with" not in st.session_state:
        st.session_state["_opened_with"] = {k: st.query_params.get_all(k) for k in st.query_params}


def _init_from_url(span: tuple[date, date]) -> None:
    if st.session_state.get("_filters_initialised"):
        return
    opened_with = st.session_state.get("_opened_with") or {}
    params = {key: values[-1] for key, values in opened_with.items() if values}
    period = params.get("period")
    st.session_state["f_period"] = period if period in PERIODS else DEFAULT_PERIOD
    try:
        since = date.fromisoformat(params["since"]) if "since" in params else None
        until = date.fromisoformat(params["until"]) if "until" in params else None
    except ValueError:
        since = until = None
    if since and until:
        st.session_state["f_period"] = "Custom"
        st.session_state["f_dates"] = (since, until)
    else:
        st.session_state["f_dates"] = (span[0], span[1])
    for dimension in FILTER_DIMENSIONS:
        st.session_state[dimension.session_key] = list(opened_with.get(dimension.url, []))
    st.session_state["_filters_initialised"] = True


def today() -> date:
    """Today's UTC date (indicators.today: the one clock of the periods)."""
    return clock.today()


def _period_dates(span: tuple[date, date]) -> tuple[date | None, date | None, str | None]:
    """The selected period's first and last day, and a notice when it had to move.

    "Last N days" ends today (UTC). When those days hold no event at all, the latest
    N days that do are shown instead, and the notice says so plainly: a dashboard
    that goes blank, or quietly shows old data as current, would hide a dead pipeline.
    """
    choice = st.session_state.get("f_period", DEFAULT_PERIOD)
    days = PERIODS.get(choice)
    if days is None:
        return None, None, None
    if days == -1:
        picked = st.session_state.get("f_dates") or span
        if isinstance(picked, tuple | list) and len(picked) == 2:
            return picked[0], picked[1], None
        return picked[0], picked[0], None
    until = today()
    since = until - timedelta(days=days - 1)
    if span[1] >= since:
        return since, until, None
    ago = (until - span[1]).days
    notice = (
        f"Showing data through {fmt.day(span[1])}, {ago} day{'s' if ago != 1 else ''} ago: "
        f"nothing received since. The {choice.lower()} up to today hold no events, so "
        f"this is the latest {days} days that do."
    )
    return span[1] - timedelta(days=days - 1), span[1], notice


def sidebar_filters() -> Filters:
    """Draw the shared filters in the sidebar and return the slice they select."""
    span = data_range()
    if span is None:
        return Filters()
    _init_from_url(span)
    url, ver = store_url(), version()
    with st.sidebar:
        st.header("Filters")
        # Each choice is written back before its widget is drawn, so every run sends it to
        # the browser. Otherwise a run that the first one's interruption (a page clicked
        # while the app still loads) left without that message draws the widget at its
        # first option while the numbers use the choice: "Last 7 days" over all data.
        st.session_state["f_period"] = st.session_state.get("f_period", DEFAULT_PERIOD)
        st.selectbox("Period", list(PERIODS), key="f_period")
        if st.session_state["f_period"] == "Custom":
            st.session_state["f_dates"] = st.session_state.get("f_dates", span)
            st.date_input("Dates (UTC, event time)", key="f_dates", min_value=date(2000, 1, 1))
        for dimension in FILTER_DIMENSIONS:
            key = dimension.session_key
            options = _distinct(url, ver, dimension.column)
            # Values from a shared URL that this store does not have are dropped.
            st.session_state[key] = [v for v in st.session_state.get(key, []) if v in options]
            st.multiselect(dimension.label, options, key=key, placeholder="All")
    since, until, notice = _period_dates(span)
    st.session_state["period_notice"] = notice
    filters = Filters(
        since=since,
        until=until,
        **{
            dimension.field: tuple(st.session_state.get(dimension.session_key, []))
            for dimension in FILTER_DIMENSIONS
        },
    )
    _write_url(filters)
    return filters


def current_filters() -> Filters:
    """The slice selected in the sidebar (drawn by the router before the page runs)."""
    return st.session_state.get("current_filters") or Filters()


def filter_query(filters: Filters) -> dict[str, Any]:
    """The sidebar's filters as URL query parameters (what a shared link carries)."""
    wanted: dict[str, Any] = {"period": st.session_state.get("f_period", DEFAULT_PERIOD)}
    if wanted["period"] == "Custom" and filters.since and filters.until:
        wanted["since"] = filters.since.isoformat()
        wanted["until"] = filters.until.isoformat()
    for dimension in FILTER_DIMENSIONS:
        values = st.session_state.get(dimension.session_key, [])
        if values:
            wanted[dimension.url] = list(values)
    return wanted


# URL keys a page owns (the Events page's selection, sort and paging): kept when the
# sidebar rewrites the URL, so a link to a finding's events survives the first run.
PAGE_URL_KEYS = frozenset((*URL_KEYS.values(), "sort", "order", "size", "page"))


def events_link(selection: Selection, filters: Filters) -> str:
    """A relative link to the Events page listing `selection` in the current slice."""
    return "events?" + urlencode({**filter_query(filters), **selection.to_query()}, doseq=True)


def _write_url(filters: Filters) -> None:
    wanted = filter_query(filters)
    current = {k: st.query_params.get_all(k) for k in st.query_params}
    wanted |= {k: v for k, v in current.items() if k in PAGE_URL_KEYS}
    normalised = {k: v if isinstance(v, list) else [v] for k, v in wanted.items()}
    if current != normalised:
        st.query_params.from_dict(wanted)


def period_notice() -> None:
    """Say so when the selected period had to move to the latest days with data."""
    notice = st.session_state.get("period_notice")
    if notice:
        st.warning(notice, icon=":material/history:")


def describe(filters: Filters) -> str:
    """One line saying what the page shows."""
    span = (
        f"{fmt.day(filters.since)} – {fmt.day(filters.until)}"
        if filters.since and filters.until
        else "all data"
    )
    parts = [span]
    for dimension in FILTER_DIMENSIONS:
        values = getattr(filters, dimension.field)
        if values:
            parts.append(f"{dimension.label.lower()}: {', '.join(values)}")
    return " · ".join(parts)


# ---------------------------------------------------------------------------
def table(
    frame: pd.DataFrame,
    key: str,
    file_name: str,
    column_config: dict | None = None,
    *,
    empty: str = "No events in this selection.",
    full_csv: Callable[[], bytes] | None = None,
    **kwargs,
) -> None:
    """A dataframe for people (human headers, shares in % with one decimal, durations,
    "–" for missing values: see dashboard.outputs.labels) with a formula-safe CSV download of
    the same table under it. `column_config` is keyed by the frame's own column names;
    `empty` says what is empty when there are no rows; `full_csv` builds the download
    when the table shows only part of the rows (called when clicked)."""
    if frame is None or frame.empty:
        st.info(empty)
        return
    shown = labels.for_people(frame)
    config: dict[str, Any] = {}
    for column in frame.columns:
        header = labels.label(column)
        digits = labels.decimals(column)
        numeric = pd.api.types.is_numeric_dtype(shown[header])
        given = (column_config or {}).get(column)
        if given is not None and (given.get("type_config") or {}).get("type") == "link":
            config[header] = dict(given, label=header)
            continue
        if pd.api.types.is_datetime64_any_dtype(shown[header]):
            # As a time: a text column would show the raw epoch milliseconds.
            config[header] = st.column_config.DatetimeColumn(header, format="YYYY-MM-DD HH:mm:ss")
            continue
        if not numeric:
            # A column with a missing value ("–") is text: a number column would flag
            # every "–" as an invalid cell.
            width = (given or {}).get("width")
            config[header] = st.column_config.TextColumn(header, width=width)
            continue
        if given is None:
            if digits is not None:
                config[header] = st.column_config.NumberColumn(header, format=f"%.{digits}f")
            elif pd.api.types.is_integer_dtype(shown[header]):
                # Counts with thousands separators (128,917), as in every other table.
                config[header] = st.column_config.NumberColumn(header, format="localized")
            continue
        # One name per column everywhere (labels.py), and shares already in % with one
        # decimal: a page's own label or "percent" format would contradict both.
        cell = dict(given, label=header)
        kind = dict(cell.get("type_config") or {})
        if column in labels.SHARE_COLUMNS and kind.get("type") == "number":
            kind["format"] = "%.1f"
        cell["type_config"] = kind
        config[header] = cell
    st.dataframe(
        shown,
        hide_index=True,
        width="stretch",
        column_config=config,
        key=f"df_{key}",
        **kwargs,
    )
    st.download_button(
        "Download CSV" if full_csv is None else "Download all rows (CSV)",
        data=to_csv_bytes(shown) if full_csv is None else full_csv,
        file_name=file_name,
        mime="text/csv",
        key=f"dl_{key}",
    )


def empty_store_notice() -> bool:
    """On an empty store, explain how to import and offer the sample. True when empty."""
    if data_range() is not None:
        return False
    st.info(
        "The store is empty. Import your sent-events log on the **Data** page or with "
        "`python -m dashboard ingest PATH`, or load the bundled sample to look around."
    )
    if st.button("Import the bundled sample", key="btn_import_sample", type="primary"):
        import_sample()
        st.rerun()
    return True


def import_sample() -> None:
    from dashboard.core.config import SAMPLE_LOG_PATH
    from dashboard.ingest import ingest

    with st.spinner("Importing the sample log…"):
        summary = ingest([SAMPLE_LOG_PATH], get_engine(store_url()), config=get_config())
    st.session_state["last_import"] = summary.to_text()
    st.cache_data.clear()
    begin_run()
