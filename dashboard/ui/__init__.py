"""The Streamlit dashboard: the shared session, sidebar and named-query cache
(`shared.py`) and the pages (`pages/`). The only room that imports Streamlit."""
