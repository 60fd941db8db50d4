"""The store's own error, without SQLAlchemy: `StoreError`.

Owns the exception the rest of the package catches when the store cannot be opened,
created or written. It lives apart from database.py so a module that only names it (the
command line's options, which `python -m dashboard --help` loads) does not import
SQLAlchemy; database.py raises it and re-exports it.
"""

from __future__ import annotations


class StoreError(RuntimeError):
    """The store cannot be opened, created or written."""
