"""The README stays true: every report key documented, Quick start and CI in step."""

import re

from dashboard.core.config import REPO_ROOT
from dashboard.quality.indicators import block_dict
from dashboard.store.database import DEDUP_STATUSES

README = (REPO_ROOT / "README.md").read_text()


def _sample_block() -> dict:
    from dashboard.core.config import load_config
    from dashboard.quality.indicators import _block_aggregates  # noqa: PLC2701 - the registry of block columns

    row = {a.name: 0 for a in _block_aggregates(load_config())}
    row.update(event_coverage=None, event_coverage_any_key=None, emq_estimate=None, emq_sum=0.0)
    return block_dict(row)


def test_every_block_key_and_status_is_documented():
    block = _sample_block()
    for key in block:
        if key in ("dedup", "freshness"):
            continue
        assert f"`{key}`" in README, key
    for key in block["freshness"]:
        assert f"`{key}`" in README, key
    for status in (*DEDUP_STATUSES, "likely_double_counted"):
        assert f"`{status}`" in README, status


def test_quick_start_has_exactly_two_commands_and_ci_runs_the_test_one():
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash", 1)[1].split("```", 1)[0]
    commands = [
        line for line in block.splitlines() if line.strip() and not line.strip().startswith("#")
    ]
    assert len(commands) == 2
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert commands[1].strip() in ci
    assert re.search(r"python3 -m dashboard demo", commands[0])


def test_every_cli_command_is_documented():
    from dashboard.cli import build_parser

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # noqa: SLF001
    for name in commands:
        assert f"dashboard {name}" in README or f"python3 -m dashboard {name}" in README, name


def test_every_log_format_and_ingest_option_is_documented():
    from dashboard.ingest.formats import FORMATS

    section = README.split("## Use it on your own log", 1)[1].split("\n## ", 1)[0]
    for fmt in FORMATS:
        assert f"| `{fmt.name}` |" in section, fmt.name
    for option in ("--format", "--dataset", "--follow", "--interval", "--strict"):
        assert f"`{option}" in section, option


def test_every_log_format_has_a_test_file():
    """A format is done when tests/test_formats.py writes a file of it (see README)."""
    import sys

    sys.path.insert(0, str(REPO_ROOT / "tests"))
    from test_formats import FORMAT_FILES

    from dashboard.ingest.formats import FORMATS

    tested = {detected for _, _, detected, _ in FORMAT_FILES.values()} | {"eqm-csv"}
    assert {fmt.name for fmt in FORMATS} <= tested
