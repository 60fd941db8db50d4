"""The commands that bring other sources of truth beside the sent-events log: Meta's
own numbers (`meta`, dashboard/cli/meta.py) and orders exports (`reconcile`,
dashboard/cli/reconcile.py). cli/__init__.py registers and runs them through here.
"""

from __future__ import annotations

from dashboard.cli.meta import add_meta_parser, run_meta
from dashboard.cli.reconcile import add_reconcile_parser, run_reconcile

# Command name -> its handler (args, store URL, config) -> exit code.
SOURCE_COMMANDS = {"meta": run_meta, "reconcile": run_reconcile}


def add_source_parsers(commands) -> None:
    add_meta_parser(commands)
    add_reconcile_parser(commands)
