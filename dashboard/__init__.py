"""Event Quality Monitor: coverage, dedup and match quality of Meta Pixel + CAPI events.

The package root. Import/compute modules (config, params, ingest, store, dedup,
indicators, sample) never import Streamlit; only app.py and ui/pages/ do.
"""

__version__ = "0.1.0"
