"""benchmarks.browser end to end: a real Streamlit server timed in headless Chromium.

Built on a small sample store; checks that every requested page gives positive figures
under the documented keys and that each timed filter change really reran the page (its
numbers changed). No time bound is asserted: speed is measured, never tested.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import browser
from dashboard.core.config import REPO_ROOT

pytestmark = pytest.mark.e2e
PAGES = ("overview", "funnel", "events")


@pytest.fixture(scope="module")
def small_store(tmp_path_factory) -> str:
    if not Path(browser.CHROMIUM).exists():
        message = f"Chromium not found at {browser.CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    folder = tmp_path_factory.mktemp("bench_browser")
    log, url = folder / "sample.jsonl", f"duckdb:///{folder / 'store.duckdb'}"
    for command in (
        ["sample", str(log), "--events", "3000"],
        ["ingest", str(log), "--db", url],
    ):
        subprocess.run([sys.executable, "-m", "dashboard", *command], cwd=REPO_ROOT, check=True)
    return url


def _children() -> set[int]:
    found = subprocess.run(
        ["pgrep", "-P", str(os.getpid())], capture_output=True, text=True
    ).stdout.split()
    return {int(pid) for pid in found}


def test_page_changes_times_every_page_and_each_change_reruns_it(small_store):
    timings = browser.measure_pages(small_store, PAGES, runs=2, timeout=180)
    assert [t.page for t in timings] == list(PAGES)
    for timing in timings:
        # Two different campaigns (each new to the server), each changed the numbers.
        assert len(set(timing.campaigns)) == 2
        assert timing.changed == [True, True]
        assert timing.load > 0 and timing.load_drawn >= timing.load
        assert all(s > 0 for s in timing.changes + timing.cached)
        assert all(d >= s for s, d in zip(timing.changes, timing.changes_drawn, strict=True))
    figures = browser.figures(timings)
    expected = {
        f"{page}{suffix}"
        for page in PAGES
        for suffix in ("", ":drawn", ":load", ":load_drawn", ":cached")
    }
    assert set(figures) == expected
    assert all(value > 0 for value in figures.values())
    # The servers and the browser are gone.
    assert not _children()


def test_a_change_that_leaves_the_page_alike_is_refused():
    timing = browser.PageTiming(
        "overview",
        load=1.0,
        load_drawn=1.0,
        changes=[0.5],
        changes_drawn=[0.6],
        cached=[0.2],
        campaigns=["a"],
        changed=[False],
    )
    with pytest.raises(RuntimeError, match="did not change the page"):
        browser.figures([timing])


def test_unknown_pages_and_too_many_runs_are_refused(small_store):
    with pytest.raises(ValueError, match="unknown pages"):
        browser.measure_pages(small_store, ["data"], runs=1)
    with pytest.raises(ValueError, match="campaigns"):
        browser.measure_pages(small_store, ["overview"], runs=1000)
