"""The store's handle types, for the layers that may not import SQLAlchemy.

Owns the names `Engine`, `Connection` and `DatabaseError` (any error the database raised) as the rest of the package spells them in
signatures: only modules under dashboard/store/ import sqlalchemy, so quality/, outputs/
and ui/ take their handle types from here.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError as DatabaseError

__all__ = ["Connection", "DatabaseError", "Engine"]
