"""The benchmark command runs end to end at a small size, so it never rots.

Figures are never asserted (the machine is shared and noisy): only that every table,
the targets section and the pandas check are there, and that the check matched.
"""

from __future__ import annotations

import pytest

from benchmarks.bench import (
    PAGES,
    VIEWS,
    Result,
    main,
    page_computations,
    page_filters,
    plan,
    sample_logs,
    targets,
    to_markdown,
)
from dashboard.ingest import ingest
from dashboard.sample.generator import write_sample_log
from dashboard.store.database import make_engine

SMALL = "2000"


def _run(tmp_path, *options: str) -> str:
    out = tmp_path / "BENCH.md"
    code = main(
        [
            "--runs",
            "1",
            "--workdir",
            str(tmp_path / "w"),
            "--cache",
            str(tmp_path / "cache"),
            "--out",
            str(out),
            *options,
        ]
    )
    assert code == 0
    return out.read_text()


def test_benchmark_runs_end_to_end_on_duckdb_and_sqlite(tmp_path):
    table = _run(
        tmp_path,
        "--json",
        str(tmp_path / "w" / "bench.json"),
        "--sizes",
        SMALL,
        "--stores",
        "duckdb,sqlite",
        "--pages",
        "overview",
    )
    assert "| events | store |" in table and "| duckdb |" in table and "| sqlite |" in table
    for section in ("## Dashboard pages", "## Targets (issue #6)", "Machine: "):
        assert section in table
    assert "| overview |" in table
    # The pandas reference ran on both stores and gave the report's numbers.
    assert table.count("| yes (") == 2 and "**NO**" not in table
    # Generated once, then reused from the cache.
    assert len(list((tmp_path / "cache").glob(f"sample_{SMALL}_*.jsonl.gz"))) == 1
    # The saved figures render again, with notes, without measuring anything.
    notes = tmp_path / "notes.md"
    notes.write_text("Why a target is not met.")
    again = tmp_path / "AGAIN.md"
    saved = str(tmp_path / "w" / "bench.json")
    assert main(["--render", saved, "--notes", str(notes), "--out", str(again)]) == 0
    assert again.read_text().startswith(table.rstrip("\n")) and "Why a target" in again.read_text()


@pytest.mark.pg
def test_benchmark_on_postgresql(tmp_path, postgres_server):
    table = _run(
        tmp_path,
        "--sizes",
        "1500",
        "--stores",
        "postgresql",
        "--pages",
        "overview",
        "--postgres-url",
        postgres_server.url(),
    )
    assert "| postgresql |" in table and "| yes (" in table
    assert postgres_server.url() not in table  # a URL may hold a password: never written


def test_sample_logs_of_another_profile_are_cached_apart(tmp_path):
    diverse, packed, spent = sample_logs(1500, 42, tmp_path, "diverse")
    assert diverse.name.startswith("sample_diverse_1500_seed42_") and packed.exists() and spent
    assert sample_logs(1500, 42, tmp_path, "diverse") == (diverse, packed, 0.0)
    standard, _, _ = sample_logs(1500, 42, tmp_path)
    assert standard.name.startswith("sample_1500_seed42_")
    assert standard.read_bytes() != diverse.read_bytes()


def test_every_page_plan_runs(tmp_path, config):
    log = tmp_path / "log.jsonl"
    write_sample_log(log, target_events=1500)
    engine = make_engine(f"duckdb:///{tmp_path / 's.duckdb'}")
    ingest([log], engine)
    default = page_filters(engine, config, "default")
    filtered = page_filters(engine, config, "filtered")
    assert (default.until - default.since).days == 27 and not default.campaigns
    assert len(filtered.campaigns) == len(filtered.stages) == 1
    assert (filtered.since, filtered.until) == (default.since, default.until)
    for page in PAGES:
        for view in VIEWS:
            filters = page_filters(engine, config, view)
            assert page_computations(engine, config, page, filters) >= 2
    engine.dispose()


def _result(size: int, scale: float, **overrides) -> Result:
    events = size
    r = Result(
        "duckdb",
        size,
        3,
        events=events,
        ingest_s=0.2 + events / 250_000 * scale,
        ingest_gzip_s=0.2 + events / 200_000 * scale,
        ingest_rss_mb=500,
        report_s=0.05 * (events / 1e6) ** 0.8 * scale,
        report_rss_mb=400,
        pages={f"{p}:{v}": 0.02 * (events / 1e6) ** 0.7 for p in PAGES for v in VIEWS},
        pages_rss_mb=600,
        pandas_s=events / 50_000,
        pandas_load_s=1.0,
        pandas_compute_s=events / 50_000 - 1.0,
        pandas_rss_mb=5000,
        numbers_compared=3300,
    )
    for key, value in overrides.items():
        setattr(r, key, value)
    return r


def test_targets_met_and_not_met_with_the_measured_figures():
    results = [_result(100_000, 1.0), _result(1_000_000, 1.0), _result(10_000_000, 1.0)]
    verdicts = {t: v for t, v, _ in targets(results)}
    assert all(v == "**met**" for v in verdicts.values()), verdicts
    table = to_markdown(results, {"cpus": "2"}, 3)
    assert "## Growth (DuckDB)" in table and "100k → 1M" in table and "1M → 10M" in table

    slow = [
        _result(100_000, 1.0),
        _result(1_000_000, 1.0, report_s=0.9),
        _result(10_000_000, 1.0, ingest_rss_mb=2500, differences=["x"]),
    ]
    rows = {t: (v, m) for t, v, m in targets(slow)}
    report_1m = rows["Full report at 1M events < 0.5 s"]
    assert report_1m == ("**not met**", "0.900 s")
    assert rows["Peak RSS at 10M < 2 GB for ingest, report and dashboard"][0] == "**not met**"
    pandas = next(v for t, v in rows.items() if t.startswith("Report ≥ 20×"))
    assert pandas[0] == "**not met**" and "NUMBERS DIFFER" in pandas[1]


def test_plan_defaults_other_stores_to_one_hundred_thousand():
    assert plan(["duckdb", "sqlite", "postgresql"], [100_000, 1_000_000, 10_000_000], {}) == [
        (100_000, "duckdb"),
        (100_000, "sqlite"),
        (100_000, "postgresql"),
        (1_000_000, "duckdb"),
        (10_000_000, "duckdb"),
    ]
    sizes = {"sqlite": [100_000, 1_000_000], "postgresql": [1_000_000]}
    assert plan(["duckdb", "sqlite", "postgresql"], [100_000, 1_000_000], sizes) == [
        (100_000, "duckdb"),
        (100_000, "sqlite"),
        (1_000_000, "duckdb"),
        (1_000_000, "sqlite"),
        (1_000_000, "postgresql"),
    ]
    assert plan(["duckdb", "sqlite"], [3000], {}) == [(3000, "duckdb"), (3000, "sqlite")]
    assert plan(["sqlite"], [100_000], {"sqlite": [5000]}) == [(5000, "sqlite")]
