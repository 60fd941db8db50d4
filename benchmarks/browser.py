"""Pages in a real browser (issue 17, item 5): a filter change timed end to end in Chromium.

`page_changes(store_url, pages, runs=..., timeout=...)` serves the dashboard with
Streamlit (headless, a free port on 127.0.0.1, the store given by $EQM_DB_URL, as the
e2e tests do), drives Debian's Chromium with Playwright, and returns per page:

- "<page>:load": seconds from the navigation to the page's URL until its first script
  run has finished (a fresh server: Streamlit's caches are empty, the store engine is
  made by this run; a new browser context: nothing of the frontend is cached, as on a
  first visit);
- "<page>": the median seconds of an *uncached* filter change: from the click on a
  Campaign in the sidebar's multiselect until the script run it starts has finished. Each
  run picks another campaign (the largest first), so every change is a filter value this
  server process has not seen: none of the page's queries is served from st.cache_data
  (the sidebar's lists of values are, as always), as for a marketer looking at a
  campaign for the first time. This is the figure the issue asks for;
- "<page>:cached": the median seconds of a change *served from the cache*: removing the
  campaign again, back to the view the page loaded with (its queries are all in
  st.cache_data), i.e. the rerun, transfer and drawing the cache cannot save;
- "<page>:load_drawn" and "<page>:drawn": the load and the uncached change until the page
  is also drawn. The script's end is not quite what a person sees: on a first load, the
  charts are still skeletons then (Streamlit loads Plotly's code lazily, after the run's
  elements arrive). "Drawn": the first animation frame after the run's end with no
  `stSkeleton` left and every Plotly chart's SVG there, noted in the page by a
  requestAnimationFrame loop (so not delayed by the wait for the run's end).

Every page gets its own server, so pages never share cached queries; the caches are
cold at the load, and every campaign picked is new to the server. Consequently the
"uncached" samples of one page are different campaigns (the `runs` largest), each
measured once; with `runs` larger than the store's campaigns it raises ValueError.
The Data page (imports, quarantine) ignores the sidebar filters and is not measured.

"Script finished" is Streamlit's own signal: the `data-test-script-state` attribute of
the `stApp` element, which its frontend sets from the script run state (`running` while
the server runs the script, `notRunning` once the server says it finished; Streamlit's
own e2e harness and tests/test_e2e.py wait on it). A MutationObserver installed before
the app loads records every transition with `performance.now()`, and input listeners
(capture phase) record the click, so a duration is measured in the browser's clock from
the click (pointerdown) to the `notRunning` that ends the run it started, not by a
sleep or by Playwright's polling. A run only counts as finished when the state then
stays `notRunning` for QUIET_MS (a script that reruns itself would be followed by a
second `running`; the figure then ends at the last run). Every change is checked: the
chip must show (or be gone), and the page's main area text must differ from the view
before the uncached change, else RuntimeError (a change that reran nothing would
otherwise be timed as a fast one).

CLI: `python -m benchmarks.browser --db URL [--pages overview funnel] [--runs 3]`
prints the figures as JSON. Chromium: $EQM_CHROMIUM, else /usr/bin/chromium.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dashboard.core.config import DB_URL_ENV, REPO_ROOT

CHROMIUM = os.environ.get("EQM_CHROMIUM", "/usr/bin/chromium")
# Page name -> its URL path in the app (st.Page's default url_path; the default page is "/").
PAGE_PATHS = {
    "overview": "",
    "match_quality": "match_quality",
    "coverage_dedup": "coverage_dedup",
    "funnel": "funnel",
    "freshness_delivery": "freshness_delivery",
    "events": "events",
}
# The Data page (imports, quarantine) does not obey the sidebar filters: not measured here.
DEFAULT_PAGES = tuple(PAGE_PATHS)
FILTER_LABEL = "Campaign"  # a shared sidebar filter every page obeys (dashboard/ui/shared.py)
DEFAULT_QUERY = "period=All+data"  # every event: the heaviest view, and any sample's dates
QUIET_MS = 500  # `notRunning` must hold this long for a run to count as finished
VIEWPORT = {"width": 1440, "height": 1700}

# Installed before the app's own scripts: records each script state transition of the
# stApp element and the time of each pointerdown/keydown (both in performance.now() ms).
_RECORDER = """
(() => {
  const eqm = (window.__eqm = {states: [], inputs: []});
  const attr = 'data-test-script-state';
  const watch = new MutationObserver((records) => {
    const at = performance.now();
    records.forEach((record, i) => {
      const next = records[i + 1];
      const value = next ? next.oldValue : record.target.getAttribute(attr);
      eqm.states.push([at, value]);
    });
  });
  // Watch the document only until the app's root appears (React keeps that element).
  const finder = new MutationObserver(() => {
    const app = document.querySelector('[data-testid="stApp"]');
    if (!app) return;
    finder.disconnect();
    watch.observe(app, {attributes: true, attributeOldValue: true, attributeFilter: [attr]});
    eqm.states.push([performance.now(), app.getAttribute(attr)]);
  });
  finder.observe(document, {childList: true, subtree: true});
  for (const kind of ['pointerdown', 'keydown']) {
    document.addEventListener(kind, (e) => eqm.inputs.push(e.timeStamp), true);
  }
  // "Drawn": at the first animation frame after a run (one started at or after entry
  // `from` of the log) has finished where nothing waits to be drawn: no skeleton (what
  // Streamlit shows while an element's lazily loaded code arrives, e.g. Plotly on a
  // first load) and every Plotly chart has its SVG. Cleared when a run starts again.
  eqm.from = 0;
  eqm.drawn = null;
  const drawn = () => {
    if (document.querySelector('[data-testid="stApp"] [data-testid="stSkeleton"]')) return false;
    for (const chart of document.querySelectorAll('[data-testid="stPlotlyChart"]')) {
      if (!chart.querySelector('.main-svg')) return false;
    }
    return true;
  };
  const tick = () => {
    const states = eqm.states;
    let ran = false;
    for (let i = eqm.from; i < states.length && !ran; i++) ran = states[i][1] === 'running';
    const last = states[states.length - 1];
    if (!ran || last[1] !== 'notRunning') eqm.drawn = null;
    else if (eqm.drawn === null && drawn()) eqm.drawn = performance.now();
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
})();
"""

# True once a run that started at or after entry `start` of the log has finished and the
# state has stayed `notRunning` for `quiet` ms since.
_FINISHED = """
([start, quiet]) => {
  const states = window.__eqm.states.slice(start);
  const ran = states.findIndex(([, v]) => v === 'running');
  if (ran < 0) return false;
  const [at, value] = states[states.length - 1];
  return value === 'notRunning' && performance.now() - at >= quiet;
}
"""


@dataclass
class PageTiming:
    """What was measured on one page (seconds), and what each change did to it."""

    page: str
    load: float
    load_drawn: float = 0.0
    changes: list[float] = field(default_factory=list)  # uncached, one per campaign
    changes_drawn: list[float] = field(default_factory=list)
    cached: list[float] = field(default_factory=list)  # back to the loaded view
    campaigns: list[str] = field(default_factory=list)
    # Whether the main area read differently after each uncached change than before it.
    changed: list[bool] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def streamlit_command(port: int) -> list[str]:
    """The dashboard served headless on 127.0.0.1:`port`, as the browser tests and this
    benchmark run it."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(REPO_ROOT / "dashboard" / "app.py"),
        f"--server.port={port}",
        "--server.address=127.0.0.1",
        "--server.headless=true",
        "--server.fileWatcherType=none",
        "--browser.gatherUsageStats=false",
    ]


class StreamlitServer:
    """The dashboard served headless against `store_url`, in its own process group."""

    def __init__(self, store_url: str, timeout: float, log_dir: Path):
        self.store_url = store_url
        self.timeout = timeout
        self.log_path = log_dir / "streamlit.log"
        self.process: subprocess.Popen | None = None
        self.base = ""

    def __enter__(self) -> StreamlitServer:
        port = _free_port()
        self.base = f"http://127.0.0.1:{port}"
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                streamlit_command(port),
                cwd=REPO_ROOT,
                env=dict(os.environ, **{DB_URL_ENV: self.store_url}),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped as a whole
            )
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                with urllib.request.urlopen(f"{self.base}/_stcore/health", timeout=2) as answer:
                    if answer.read().decode().strip() == "ok":
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"Streamlit did not start:\n{tail}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def __exit__(self, *exc) -> None:
        self.stop()


def largest_campaigns(store_url: str, count: int) -> list[str]:
    """The store's `count` largest campaigns (events), biggest first; ValueError if fewer."""
    import sqlalchemy as sa

    from dashboard.store.database import events, make_engine

    engine = make_engine(store_url)
    try:
        column = events.c.campaign
        statement = (
            sa.select(column, sa.func.count().label("n"))
            .where(column.is_not(None))
            .group_by(column)
            .order_by(sa.desc("n"), column)
        )
        with engine.connect() as connection:
            names = [str(row[0]) for row in connection.execute(statement)]
    finally:
        engine.dispose()
    names = [name for name in names if name != "(none)"]
    if len(names) < count:
        raise ValueError(
            f"{count} uncached changes need {count} campaigns; the store has {len(names)}"
        )
    return names[:count]


class _Tab:
    """One browser page of the app, with the script-state recorder installed."""

    def __init__(self, context, timeout: float):
        self.page = context.new_page()
        self.page.add_init_script(_RECORDER)
        self.timeout_ms = timeout * 1000

    def _wait_finished(self, start: int) -> float:
        """Wait for a run begun at log entry `start` to finish; its end (ms)."""
        self.page.wait_for_function(
            _FINISHED, arg=[start, QUIET_MS], polling="raf", timeout=self.timeout_ms
        )
        return self.page.evaluate("window.__eqm.states.at(-1)[0]")

    def _wait_drawn(self, end: float) -> float:
        drawn = self.page.wait_for_function(
            "() => window.__eqm.drawn", polling="raf", timeout=self.timeout_ms
        )
        return max(end, drawn.json_value())

    def load(self, url: str) -> tuple[float, float]:
        """Seconds from the navigation to the first run's end, and to everything drawn."""
        self.page.goto(url, timeout=self.timeout_ms)
        # performance.now() counts from the navigation's start.
        end = self._wait_finished(0)
        return end / 1000, self._wait_drawn(end) / 1000

    def _timed(self, act) -> tuple[float, float]:
        """Seconds from the input `act` makes to the end of the script run it starts,
        and to everything drawn."""
        start, inputs = self.page.evaluate(
            "(() => { const eqm = window.__eqm; eqm.from = eqm.states.length; eqm.drawn = null;"
            " return [eqm.from, eqm.inputs.length]; })()"
        )
        act()
        end = self._wait_finished(start)
        drawn = self._wait_drawn(end)
        clicked = self.page.evaluate(f"window.__eqm.inputs[{inputs}]")
        if clicked is None:
            raise RuntimeError("no click was recorded")
        return (end - clicked) / 1000, (drawn - clicked) / 1000

    def _box(self):
        return (
            self.page.locator("[data-testid='stSidebar'] [data-testid='stMultiSelect']")
            .filter(has_text=FILTER_LABEL)
            .first
        )

    def choose(self, option: str) -> tuple[float, float]:
        box = self._box()
        box.click()  # opens the list; not timed (a person's first click)
        # Typed, as a person searches a long list: the list shows only its first options
        # (a diverse store has 2,000 campaigns), and typing reruns nothing.
        self.page.keyboard.type(option)
        choice = self.page.locator("[role='option']").filter(has_text=option).first
        choice.wait_for(timeout=self.timeout_ms)
        seconds = self._timed(lambda: choice.click(timeout=self.timeout_ms))
        self.page.keyboard.press("Escape")  # close the list, after the run
        if not box.locator("[data-tag]").filter(has_text=option).count():
            raise RuntimeError(f"{option!r} was not chosen in the {FILTER_LABEL} filter")
        return seconds

    def remove(self, option: str) -> tuple[float, float]:
        box = self._box()
        button = box.get_by_role("button", name=f"Remove {option}", exact=True)
        seconds = self._timed(lambda: button.click(timeout=self.timeout_ms))
        if box.locator("[data-tag]").filter(has_text=option).count():
            raise RuntimeError(f"{option!r} is still chosen in the {FILTER_LABEL} filter")
        return seconds

    def main_text(self) -> str:
        if self.page.locator("[data-testid='stException']").count():
            raise RuntimeError("the page shows an exception")
        return self.page.locator("[data-testid='stMain']").inner_text()


def _launch(playwright):
    from dashboard.outputs.documents import CHROMIUM_FLAGS

    if not Path(CHROMIUM).exists():
        raise FileNotFoundError(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    return playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=list(CHROMIUM_FLAGS)
    )


def measure_pages(
    store_url: str,
    pages: Sequence[str] = DEFAULT_PAGES,
    *,
    runs: int = 3,
    timeout: float = 120.0,
    query: str = DEFAULT_QUERY,
) -> list[PageTiming]:
    """Every measurement of every page (see the module docstring); `timeout` in seconds
    bounds each wait (server start, load, one change)."""
    from playwright.sync_api import sync_playwright

    unknown = [p for p in pages if p not in PAGE_PATHS]
    if unknown:
        raise ValueError(f"unknown pages {unknown}; known: {', '.join(PAGE_PATHS)}")
    if runs < 1:
        raise ValueError("runs must be at least 1")
    campaigns = largest_campaigns(store_url, runs)
    timings = []
    with (
        tempfile.TemporaryDirectory(prefix="eqm-browser-") as folder,
        sync_playwright() as playwright,
    ):
        browser = _launch(playwright)
        try:
            for name in pages:
                with StreamlitServer(store_url, timeout, Path(folder)) as server:
                    context = browser.new_context(viewport=VIEWPORT)
                    try:
                        tab = _Tab(context, timeout)
                        url = f"{server.base}/{PAGE_PATHS[name]}?{query}"
                        load, load_drawn = tab.load(url)
                        timing = PageTiming(name, load=load, load_drawn=load_drawn)
                        for campaign in campaigns:
                            before = tab.main_text()
                            change, drawn = tab.choose(campaign)
                            timing.changes.append(change)
                            timing.changes_drawn.append(drawn)
                            timing.changed.append(tab.main_text() != before)
                            timing.campaigns.append(campaign)
                            timing.cached.append(tab.remove(campaign)[0])
                        timings.append(timing)
                    finally:
                        context.close()
        finally:
            browser.close()
    return timings


def figures(timings: Sequence[PageTiming]) -> dict[str, float]:
    """The medians: "<page>" (uncached change), "<page>:drawn" (the same, until drawn),
    "<page>:load", "<page>:load_drawn" and "<page>:cached"."""
    out: dict[str, float] = {}
    for timing in timings:
        if not all(timing.changed):
            unchanged = [
                c for c, ok in zip(timing.campaigns, timing.changed, strict=True) if not ok
            ]
            raise RuntimeError(f"{timing.page}: choosing {unchanged} did not change the page")
        out[f"{timing.page}:load"] = round(timing.load, 3)
        out[f"{timing.page}:load_drawn"] = round(timing.load_drawn, 3)
        out[timing.page] = round(statistics.median(timing.changes), 3)
        out[f"{timing.page}:drawn"] = round(statistics.median(timing.changes_drawn), 3)
        out[f"{timing.page}:cached"] = round(statistics.median(timing.cached), 3)
    return out


def page_changes(
    store_url: str,
    pages: Sequence[str] = DEFAULT_PAGES,
    *,
    runs: int = 3,
    timeout: float = 120.0,
    query: str = DEFAULT_QUERY,
) -> dict[str, float]:
    """Per page, in Chromium: the median seconds of an uncached filter change ("<page>";
    until drawn: "<page>:drawn"), the first load ("<page>:load", "<page>:load_drawn") and
    a change served from the cache ("<page>:cached"). RuntimeError when a change did not
    change the page."""
    return figures(measure_pages(store_url, pages, runs=runs, timeout=timeout, query=query))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.browser",
        description="Time the dashboard's pages in headless Chromium: first load, and a "
        "Campaign filter change until Streamlit reports the script finished.",
    )
    parser.add_argument("--db", required=True, help="store URL, e.g. duckdb:////tmp/s.duckdb")
    parser.add_argument("--pages", nargs="+", default=list(DEFAULT_PAGES), choices=PAGE_PATHS)
    parser.add_argument("--runs", type=int, default=3, help="changes per page (one campaign each)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per wait")
    parser.add_argument("--query", default=DEFAULT_QUERY, help="the URL query pages open with")
    parser.add_argument(
        "--samples", action="store_true", help="also print every sample, not only the medians"
    )
    args = parser.parse_args(argv)
    timings = measure_pages(
        args.db, args.pages, runs=args.runs, timeout=args.timeout, query=args.query
    )
    out: dict = figures(timings)
    if args.samples:
        out = {
            "figures": out,
            "samples": {
                t.page: {
                    "load": round(t.load, 3),
                    "load_drawn": round(t.load_drawn, 3),
                    "changes": dict(
                        zip(t.campaigns, [round(s, 3) for s in t.changes], strict=True)
                    ),
                    "changes_drawn": [round(s, 3) for s in t.changes_drawn],
                    "cached": [round(s, 3) for s in t.cached],
                }
                for t in timings
            },
        }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
