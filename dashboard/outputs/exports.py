"""Table exports (CSV) that are safe to open in a spreadsheet. No Streamlit.

Owns neutralising spreadsheet formulas: a cell that begins with =, +, -, @, tab or CR
is prefixed with a single quote, so a campaign name taken from a URL cannot run a
formula when a marketer opens the file (OWASP "CSV injection").
"""

from __future__ import annotations

import pandas as pd

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: object) -> object:
    """The value, with a leading quote when a spreadsheet would read it as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells (and column names) cannot be read as formulas."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].map(neutralise)
    out.columns = [neutralise(str(c)) for c in out.columns]
    return out


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    """UTF-8 CSV (with BOM so Excel detects the encoding) of a formula-safe copy."""
    return safe_frame(frame).to_csv(index=False).encode("utf-8-sig")
