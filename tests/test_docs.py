"""The README stays true: every report key documented, Quick start and CI in step."""

import re

from dashboard.core.config import REPO_ROOT
from dashboard.core.definitions import DEDUP_STATUSES
from dashboard.quality.blocks import block_dict

README = (REPO_ROOT / "README.md").read_text()


def _sample_block() -> dict:
    from dashboard.core.measures import MEASURES

    row = {m.column: 0 for m in MEASURES}
    row.update(median_lag_s=None, p90_lag_s=None)
    for column in ("last_event_at", "last_browser_event_at", "last_server_event_at"):
        row[column] = None
    row.update(last_sent_at=None, last_server_sent_at=None, days_without_events=[])
    return block_dict(row)


def test_the_indicator_table_is_the_registrys():
    """The README's indicator table starts with the rows generated from the registry of
    measures, in its order, each row word for word (a new measure without its row, or an
    edited definition not carried to the README, fails here)."""
    from dashboard.core.measures import markdown_rows

    section = README.split("## Indicators", 1)[1].split("\n## ", 1)[0]
    table = [line for line in section.splitlines() if line.startswith("| ")][1:]
    rows = markdown_rows()
    assert table[: len(rows)] == rows


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
