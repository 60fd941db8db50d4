"""The benchmark command runs end to end at a small size, so it never rots (figures not asserted)."""

from dashboard.bench import PAGES, main


def test_benchmark_runs_and_writes_its_table(tmp_path):
    out = tmp_path / "BENCH.md"
    assert (
        main(
            ["--sizes", "3000", "--runs", "1", "--workdir", str(tmp_path / "w"), "--out", str(out)]
        )
        == 0
    )
    table = out.read_text()
    assert "| events | store |" in table and "| duckdb |" in table
    for page in PAGES:
        assert page in table
