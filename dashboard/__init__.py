"""Event Quality Monitor: coverage, dedup and match quality of Meta Pixel + CAPI events.

The package root. Its rooms, lowest first: core/, store/, ingest/ and quality/,
outputs/, ui/ (the only one importing Streamlit, with app.py), plus sample/, capture/
and cli/. docs/architecture.md draws the layers.
"""

__version__ = "0.1.0"
