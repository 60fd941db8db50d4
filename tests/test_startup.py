"""The command line starts light (issue #17, item 3: lazy imports).

`python -m dashboard --help` imports none of pandas, SQLAlchemy, DuckDB, Plotly or
Streamlit, and `check` and the text and JSON reports run without Plotly or Streamlit:
each command imports what it runs, inside its handler. Every case runs in a fresh
interpreter (this test process has long imported everything) and asserts which modules
were loaded, never how long it took: the machine is shared and timings are noise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from dashboard.cli import main
from dashboard.core.config import REPO_ROOT
from dashboard.sample.generator import write_sample_log

HEAVY = ("pandas", "sqlalchemy", "duckdb", "plotly", "streamlit")
CHARTING = ("plotly", "streamlit")

# Runs the command line's main as `python -m dashboard` would, then prints the top-level
# packages loaded, as JSON, on the last line of stdout (even when argparse exits).
WRAPPER = """
import json, sys
from dashboard.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print()
print(json.dumps({"code": code, "modules": sorted({m.split('.')[0] for m in sys.modules})}))
"""


def loaded_after(*argv: str) -> tuple[int, set[str]]:
    """The exit code and the top-level modules loaded by `python -m dashboard *argv`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EQM_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    done = subprocess.run(
        [sys.executable, "-c", WRAPPER, *argv],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.stdout.strip(), done.stderr
    last = json.loads(done.stdout.strip().splitlines()[-1])
    return last["code"], set(last["modules"])


@pytest.fixture(scope="module")
def small_db(tmp_path_factory) -> str:
    """A few hundred sample events in a DuckDB store."""
    folder = tmp_path_factory.mktemp("startup")
    log = folder / "small.jsonl"
    write_sample_log(log, target_events=300, seed=3, days=3)
    db = f"duckdb:///{folder / 'small.duckdb'}"
    assert main(["ingest", str(log), "--db", db]) == 0
    return db


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["check", "--help"], ["report", "--help"], ["events", "--help"]],
    ids=" ".join,
)
def test_help_loads_no_heavy_library(argv):
    code, modules = loaded_after(*argv)
    assert code == 0
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))


def test_the_wrapper_sees_what_a_command_loads(small_db):
    """The probe itself works: a real check does load pandas and SQLAlchemy."""
    code, modules = loaded_after("check", "--db", small_db, "--at", "latest")
    assert code in (0, 1)
    assert {"pandas", "sqlalchemy"} <= modules


@pytest.mark.parametrize(
    "argv",
    [
        ["check", "--at", "latest"],
        ["check", "--at", "latest", "--format", "json"],
        ["report", "--format", "text"],
        ["report", "--format", "json"],
    ],
    ids=" ".join,
)
def test_check_and_text_reports_load_no_charting_library(small_db, argv):
    code, modules = loaded_after(*argv, "--db", small_db)
    assert code in (0, 1)  # 1: a check breached; the sample plants defects on purpose
    assert not modules & set(CHARTING), sorted(modules & set(CHARTING))


def test_ingest_format_choices_are_still_checked_and_listed(capsys):
    """The --format choices are read lazily, yet refused and listed as before."""
    with pytest.raises(SystemExit) as exit_info:
        main(["ingest", "x.jsonl", "--format", "no-such-format"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'no-such-format'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["ingest", "--help"])
    assert "eqm-v1" in capsys.readouterr().out
