"""The benchmark's figures and their Markdown (BENCHMARKS.md).

Owns `Result` (every figure for one profile, store and size), the targets of issue #17
with their verdicts, the growth ratios, and the tables. `benchmarks.bench` measures;
this module only reads what it measured, so `--render` can rewrite a saved run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PAGES = ("overview", "match_quality", "coverage_dedup", "funnel", "freshness_delivery")
VIEWS = ("default", "filtered")
PROFILES = ("standard", "diverse")

# Issue #17 targets (on a 2-core machine).
INGEST_TARGET = 200_000  # events/s from JSONL, both profiles, at 1M and 10M
ANCHOR_TARGET = 3.0  # ingest time at most this many times DuckDB's read_json of the file
REPORT_TARGETS = {1_000_000: 0.5, 10_000_000: 3.0}  # seconds
PANDAS_RATIO_TARGET = 20.0  # report at least this much faster than pandas at 10M
PAGE_TARGETS = {1_000_000: 1.0, 10_000_000: 3.0}  # seconds, a page change in Chromium
RSS_TARGET_MB = 2048  # at 10M, for ingest, report and dashboard pages
HELP_TARGET_S = 0.3  # `python -m dashboard --help`
# Sizes are nominal (the generator lands within a percent or two of them): a result
# counts for a target's size when its nominal size is at least that.
TARGET_SIZES = (1_000_000, 10_000_000)


@dataclass
class Result:
    """Every figure for one (profile, store, size)."""

    store: str
    size: int
    runs: int
    profile: str = "standard"
    events: int = 0
    ingest_s: float | None = None
    ingest_gzip_s: float | None = None
    ingest_rss_mb: float | None = None
    read_json_s: float | None = None  # DuckDB's read_json materialising the same file
    report_s: float | None = None
    report_rss_mb: float | None = None
    pages: dict[str, float] = field(default_factory=dict)  # "page:view" -> seconds
    pages_rss_mb: float | None = None
    browser: dict[str, float] = field(default_factory=dict)  # page -> s, in Chromium
    pandas_s: float | None = None
    pandas_load_s: float | None = None
    pandas_compute_s: float | None = None
    pandas_rss_mb: float | None = None
    numbers_compared: int = 0
    differences: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # timed out or crashed
    seconds: float = 0.0  # wall time spent measuring this (profile, store, size)

    @property
    def ingest_eps(self) -> float | None:
        return self.events / self.ingest_s if self.ingest_s else None

    @property
    def ingest_gzip_eps(self) -> float | None:
        return self.events / self.ingest_gzip_s if self.ingest_gzip_s else None

    @property
    def anchor_ratio(self) -> float | None:
        """Ingest time ÷ DuckDB's read_json time on the same file."""
        if self.ingest_s is None or not self.read_json_s:
            return None
        return self.ingest_s / self.read_json_s

    @property
    def ratio(self) -> float | None:
        if self.pandas_s is None or not self.report_s:
            return None
        return self.pandas_s / self.report_s

    @property
    def slowest_page_s(self) -> float | None:
        return max(self.pages.values()) if self.pages else None

    @property
    def slowest_browser_s(self) -> float | None:
        return max(self.browser.values()) if self.browser else None

    @property
    def pages_total_s(self) -> float | None:
        return sum(self.pages.values()) if self.pages else None

    @property
    def identical(self) -> bool | None:
        if self.pandas_s is None:
            return None
        return not self.differences

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out.update(
            ingest_eps=self.ingest_eps,
            ingest_gzip_eps=self.ingest_gzip_eps,
            ratio=self.ratio,
            anchor_ratio=self.anchor_ratio,
        )
        return out


def _n(value: float | None, fmt: str = ",.0f") -> str:
    return "–" if value is None else format(value, fmt)


def _s(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.3f}" if value < 1 else f"{value:.2f}" if value < 100 else f"{value:,.0f}"


def _x(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}×"


def _label(size: int) -> str:
    if size >= 1_000_000 and size % 1_000_000 == 0:
        return f"{size // 1_000_000}M"
    if size >= 1000 and size % 1000 == 0:
        return f"{size // 1000}k"
    return f"{size:,}"


def _duckdb(results: list[Result]) -> dict[str, dict[int, Result]]:
    """DuckDB results with events, per profile (in PROFILES order) and nominal size."""
    out: dict[str, dict[int, Result]] = {}
    for r in sorted(results, key=lambda r: (_profile_order(r.profile), r.size)):
        if r.store == "duckdb" and r.events:
            out.setdefault(r.profile, {})[r.size] = r
    return out


def _profile_order(profile: str) -> int:
    return PROFILES.index(profile) if profile in PROFILES else len(PROFILES)


def _verdict(checks: list[bool | None]) -> str:
    """Met when every check passed; None is a figure some profile or size lacks."""
    if all(check is None for check in checks):
        return "not measured"
    if False in checks:
        return "**not met**"
    return "partly measured" if None in checks else "**met**"


def _at_target_sizes(by_size: dict[int, Result]) -> list[Result]:
    return [r for size, r in sorted(by_size.items()) if size >= TARGET_SIZES[0]]


def targets(
    results: list[Result], startup: dict[str, Any] | None = None
) -> list[tuple[str, str, str]]:
    """(target, verdict, measured) for every target of issue #17, from the DuckDB figures
    of every profile measured; a target is met when every profile meets it."""
    duck = _duckdb(results)
    rows: list[tuple[str, str, str]] = []

    def per_profile(describe) -> str:
        parts = [f"{profile}: {describe(sizes)}" for profile, sizes in duck.items()]
        return "; ".join(parts) or "–"

    checks = [
        None if r.ingest_eps is None else r.ingest_eps >= INGEST_TARGET
        for sizes in duck.values()
        for r in _at_target_sizes(sizes)
    ]
    rows.append(
        (
            f"Ingest ≥ {INGEST_TARGET:,} events/s from JSONL, both profiles, at 1M and 10M",
            _verdict(checks),
            per_profile(
                lambda sizes: ", ".join(
                    f"{_label(s)}: {_n(r.ingest_eps)}/s" for s, r in sizes.items()
                )
            ),
        )
    )
    checks = [
        None if r.anchor_ratio is None else r.anchor_ratio <= ANCHOR_TARGET
        for sizes in duck.values()
        for r in _at_target_sizes(sizes)
    ]
    rows.append(
        (
            f"Ingest ≤ {ANCHOR_TARGET:g}× DuckDB's read_json on the same file",
            _verdict(checks),
            per_profile(
                lambda sizes: ", ".join(
                    f"{_label(s)}: {_x(r.anchor_ratio)} ({_s(r.ingest_s)} s ÷ {_s(r.read_json_s)} s)"
                    for s, r in sizes.items()
                )
            ),
        )
    )
    for size, limit in REPORT_TARGETS.items():
        found = [sizes[size] for sizes in duck.values() if size in sizes]
        rows.append(
            (
                f"Full report at {_label(size)} events < {limit:g} s, both profiles",
                _verdict([None if r.report_s is None else r.report_s < limit for r in found]),
                per_profile(lambda sizes, size=size: _seconds(_get(sizes, size, "report_s"))),
            )
        )
    big = [sizes[10_000_000] for sizes in duck.values() if 10_000_000 in sizes]
    rows.append(
        (
            f"Report ≥ {PANDAS_RATIO_TARGET:.0f}× faster than pandas at 10M, identical numbers",
            _verdict(
                [
                    None
                    if r.ratio is None
                    else r.ratio >= PANDAS_RATIO_TARGET and bool(r.identical)
                    for r in big
                ]
            ),
            per_profile(lambda sizes: _pandas_text(sizes.get(10_000_000))),
        )
    )
    for size, limit in PAGE_TARGETS.items():
        found = [sizes[size] for sizes in duck.values() if size in sizes]
        rows.append(
            (
                f"Page change in Chromium at {_label(size)} events < {limit:g} s",
                _verdict([None if not r.browser else r.slowest_browser_s < limit for r in found]),
                per_profile(lambda sizes, size=size: _page_text(sizes.get(size))),
            )
        )
    rss_checks: list[bool | None] = []
    for r in big:
        parts = [r.ingest_rss_mb, r.report_rss_mb, r.pages_rss_mb]
        rss_checks.append(None if None in parts else max(parts) < RSS_TARGET_MB)
    rows.append(
        (
            "Peak RSS at 10M < 2 GB for ingest, report and pages",
            _verdict(rss_checks),
            per_profile(lambda sizes: _rss_text(sizes.get(10_000_000))),
        )
    )
    growth = growth_rows(results)
    keys = ("ingest", "report", "pages")
    measured = [(g[k] / g["events"], k, g) for g in growth for k in keys if g[k] is not None]
    if measured:
        worst = max(measured, key=lambda m: m[0])
        rows.append(
            (
                "Time grows linearly or better (time ratio ≤ event ratio)",
                _verdict([ratio <= 1 for ratio, _, _ in measured]),
                f"worst: {worst[2]['profile']} {worst[1]} ×{worst[2][worst[1]]:.2f} for "
                f"×{worst[2]['events']:.2f} events ({worst[2]['step']})",
            )
        )
    else:
        rows.append(("Time grows linearly or better", "not measured", "needs two sizes"))
    help_s = (startup or {}).get("help_s")
    rows.append(
        (
            f"`python -m dashboard --help` starts in < {HELP_TARGET_S:g} s",
            _verdict([] if help_s is None else [help_s < HELP_TARGET_S]),
            "–"
            if help_s is None
            else f"{_s(help_s)} s (bare `python3 -c pass`: {_s(startup.get('python_s'))} s)",
        )
    )
    return rows


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{_s(value)} s"


def _get(sizes: dict[int, Result], size: int, name: str) -> float | None:
    r = sizes.get(size)
    return None if r is None else getattr(r, name)


def _pandas_text(r: Result | None) -> str:
    if r is None or r.ratio is None:
        return "–"
    same = "identical numbers" if r.identical else "NUMBERS DIFFER"
    return f"{r.ratio:.1f}× (pandas {_s(r.pandas_s)} s vs report {_s(r.report_s)} s), {same}"


def _page_text(r: Result | None) -> str:
    if r is None:
        return "–"
    browser = (
        f"Chromium slowest {_s(r.slowest_browser_s)} s ({max(r.browser, key=r.browser.get)})"
        if r.browser
        else "Chromium not measured"
    )
    computation = "–"
    if r.pages:
        worst = max(r.pages, key=r.pages.get)
        computation = f"{_s(r.slowest_page_s)} s ({worst.replace(':', ', ')})"
    return f"{browser}; computations alone {computation}"


def _rss_text(r: Result | None) -> str:
    if r is None:
        return "–"
    return (
        f"ingest {_n(r.ingest_rss_mb)} MB, report {_n(r.report_rss_mb)} MB, "
        f"pages {_n(r.pages_rss_mb)} MB"
    )


def growth_rows(results: list[Result]) -> list[dict[str, Any]]:
    """Time ratios between consecutive DuckDB sizes of each profile, next to the event
    ratio."""
    out = []
    for profile, sizes in _duckdb(results).items():
        ordered = list(sizes.values())
        for a, b in zip(ordered, ordered[1:], strict=False):

            def ratio(x: float | None, y: float | None) -> float | None:
                return None if not x or y is None else y / x

            out.append(
                {
                    "profile": profile,
                    "step": f"{_label(a.size)} → {_label(b.size)}",
                    "events": b.events / a.events,
                    "ingest": ratio(a.ingest_s, b.ingest_s),
                    "report": ratio(a.report_s, b.report_s),
                    "pages": ratio(a.pages_total_s, b.pages_total_s),
                    "pandas": ratio(a.pandas_s, b.pandas_s),
                }
            )
    return out


def _ordered(results: list[Result]) -> list[Result]:
    return sorted(results, key=lambda r: (_profile_order(r.profile), r.size))


def to_markdown(
    results: list[Result],
    info: dict[str, str],
    runs: int,
    command: str = "",
    notes: str = "",
    extra: list[str] | None = None,
    startup: dict[str, Any] | None = None,
) -> str:
    """The results as Markdown (BENCHMARKS.md)."""
    results = _ordered(results)
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `python -m benchmarks.bench{(' ' + command) if command else ''}`: each "
        "figure is the median of the fresh processes the runs column gives (at most "
        f"{runs}), uncached; peak RSS is the largest of those processes' (for PostgreSQL, the "
        "client process only). Logs come from the sample generator "
        "(`dashboard/sample/generator.py`), in two profiles: *standard* (the bundled sample's "
        "shape) and *diverse* (2,000 campaigns, 300 event names, 30 datasets, about one "
        "person per two events, each parameter's status drawn independently). A dash is a "
        "figure not measured (gzip imports stop at `--gzip-max-size`); the gzip figure is the "
        "median of `--gzip-runs` imports. *read_json* is DuckDB's own reader materialising "
        "every field of the same file (the physical limit on this machine, with nothing of "
        "ours in the way); *÷ read_json* is the ingest time divided by it.",
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in info.items()) + ".",
        *[line for text in extra or [] for line in ("", text)],
        "",
        "## Ingest, full report and the pandas reference",
        "",
        "| events | profile | store | runs | ingest JSONL (events/s) | read_json (s) "
        "| ÷ read_json | ingest gzip (events/s) | ingest peak RSS (MB) | full report (s) "
        "| report peak RSS (MB) | pandas: load + compute (s) | pandas peak RSS (MB) "
        "| report vs pandas | same numbers |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        if r.pandas_s is None:
            pandas = "–"
        else:
            pandas = f"{_s(r.pandas_s)} ({_s(r.pandas_load_s)} + {_s(r.pandas_compute_s)})"
        same = (
            "–"
            if r.identical is None
            else f"yes ({r.numbers_compared:,} numbers)"
            if r.identical
            else f"**NO** ({len(r.differences)} differences)"
        )
        events = f"{r.events:,}" if r.events else f"~{r.size:,}"
        lines.append(
            f"| {events} | {r.profile} | {r.store} | {r.runs} | {_n(r.ingest_eps)} "
            f"| {_s(r.read_json_s)} | {_x(r.anchor_ratio)} | {_n(r.ingest_gzip_eps)} "
            f"| {_n(r.ingest_rss_mb)} | {_s(r.report_s)} | {_n(r.report_rss_mb)} | {pandas} "
            f"| {_n(r.pandas_rss_mb)} | {_x(r.ratio)} | {same} |"
        )
    pages = sorted({k.split(":")[0] for r in results for k in r.pages}, key=_page_order)
    if pages:
        lines += [
            "",
            "## Dashboard pages: computations",
            "",
            "Each page's computations (its queries, uncached: what a page change costs before "
            "the cache helps; Streamlit's rendering not included), seconds, default view (last "
            "28 days) / filtered view (same days, largest campaign and largest stage):",
            "",
            "| events | profile | store | " + " | ".join(pages) + " | slowest | peak RSS (MB) |",
            "|---:|---|---|" + "---:|" * (len(pages) + 2),
        ]
        for r in results:
            if not r.pages:
                continue
            cells = [
                f"{_s(r.pages.get(f'{p}:default'))} / {_s(r.pages.get(f'{p}:filtered'))}"
                for p in pages
            ]
            lines.append(
                f"| {r.events:,} | {r.profile} | {r.store} | "
                + " | ".join(cells)
                + f" | {_s(r.slowest_page_s)} | {_n(r.pages_rss_mb)} |"
            )
    browser_pages = sorted({p for r in results for p in r.browser}, key=_page_order)
    if browser_pages:
        lines += [
            "",
            "## Dashboard pages in Chromium",
            "",
            "A page change end to end, as a marketer feels it: a filter clicked in Chromium, "
            "until Streamlit reports the script finished (`benchmarks/browser.py`), seconds:",
            "",
            "| events | profile | store | " + " | ".join(browser_pages) + " | slowest |",
            "|---:|---|---|" + "---:|" * (len(browser_pages) + 1),
        ]
        for r in results:
            if r.browser:
                cells = [_s(r.browser.get(p)) for p in browser_pages]
                lines.append(
                    f"| {r.events:,} | {r.profile} | {r.store} | "
                    + " | ".join(cells)
                    + f" | {_s(r.slowest_browser_s)} |"
                )
    growth = growth_rows(results)
    if growth:
        lines += [
            "",
            "## Growth (DuckDB)",
            "",
            "Time ratio between consecutive sizes next to the event ratio: linear growth keeps "
            "the time ratio at or below the event ratio.",
            "",
            "| profile | step | events × | ingest JSONL time × | full report time × "
            "| all pages time × | pandas time × |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for g in growth:
            cells = [_n(g[k], ".2f") for k in ("ingest", "report", "pages", "pandas")]
            lines.append(
                f"| {g['profile']} | {g['step']} | {g['events']:.2f} | " + " | ".join(cells) + " |"
            )
    if startup:
        lines += [
            "",
            "## Start-up",
            "",
            f"`python -m dashboard --help`: median {_s(startup.get('help_s'))} s of "
            f"{startup.get('runs', 0)} fresh processes; a bare `python3 -c pass` on the same "
            f"machine in the same run: {_s(startup.get('python_s'))} s.",
        ]
    lines += [
        "",
        "## Targets (issue #17)",
        "",
        "| target | verdict | measured (DuckDB) |",
        "|---|---|---|",
    ]
    for target, verdict, measured in targets(results, startup):
        lines.append(f"| {target} | {verdict} | {measured} |")
    problems = [r for r in results if r.failed or r.differences]
    if problems:
        lines += ["", "## Problems", ""]
        for r in problems:
            for text in r.failed:
                lines.append(
                    f"- {r.profile} {r.store} at ~{r.size:,} events: {text} "
                    "(later figures not measured)"
                )
            for text in r.differences[:10]:
                lines.append(
                    f"- {r.profile} {r.store} at {r.events:,} events: pandas differs: {text}"
                )
    if notes.strip():
        lines += ["", "## Notes", "", notes.strip()]
    return "\n".join(lines) + "\n"


def _page_order(page: str) -> int:
    name = page.split(":")[0]
    return PAGES.index(name) if name in PAGES else len(PAGES)
