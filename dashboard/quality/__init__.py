"""The numbers, computed from the frames the store returns: blocks of indicators from
the registry of measures, the EMQ estimate, what to fix, the funnel, periods, and the
diagnostics and integrity rules with their texts. No SQL and no Streamlit here."""
