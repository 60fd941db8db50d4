"""Meta's error codes in plain words (dashboard.core.meta_errors), and the errors chart's legend
and colours built from them."""

from __future__ import annotations

import pandas as pd
import pytest

from dashboard.core import meta_errors
from dashboard.core.meta_errors import explain, legend
from dashboard.outputs import charts


@pytest.mark.parametrize(
    ("code", "subcode", "token", "known", "meaning_has"),
    [
        (190, 463, True, True, "expired"),  # the sample's and the tests' token error
        (190, 460, True, True, "password"),
        (190, 467, True, True, "invalid or expired"),  # unlisted subcode: the code's entry
        (200, None, True, True, "permission"),
        (100, 2804003, False, True, "7 days"),
        (100, 2804009, False, True, "value"),
        (100, 2804050, False, True, "See Meta's message"),  # meaning not published
        (17, None, False, True, "limit"),
        (5, 12, False, False, "see Meta's message"),  # not in the catalogue
        (None, None, False, False, "without an error code"),
        (pd.NA, pd.NA, False, False, "without an error code"),  # a frame's missing code
    ],
)
def test_explain(code, subcode, token, known, meaning_has):
    found = explain(code, subcode)
    assert found.is_token_error is token
    assert found.known is known
    assert meaning_has in found.meaning
    assert found.fix  # always something to do


def test_token_errors_say_to_renew_the_token():
    found = explain(190, 463)
    assert found.is_token_error
    assert "access token" in found.fix and "Events Manager" in found.fix


@pytest.mark.parametrize(
    ("code", "subcode", "message", "expected"),
    [
        (190, 463, "Session has expired", "190/463 access token expired"),
        (17, None, "User request limit reached", "17 rate limit"),
        (5, 12, "Unhandled random error", "5/12 Unhandled random error"),
        (5, None, "x" * 60, "5 " + "x" * 39 + "…"),  # unknown: Meta's message, cut
        (None, None, "(no message)", "no error code"),
    ],
)
def test_legend(code, subcode, message, expected):
    assert legend(code, subcode, message) == expected


def _errors(rows):
    frame = pd.DataFrame(
        rows,
        columns=["event_day", "error_code", "error_subcode", "error_message", "batches", "events"],
    )
    frame["event_day"] = pd.to_datetime(frame["event_day"])
    for column in ("error_code", "error_subcode"):
        frame[column] = frame[column].astype("Int64")
    return frame


ERRORS = [
    ("2025-11-20", 100, 2804003, "Invalid parameter", 2, 30),
    ("2025-11-20", 190, 463, "Session has expired", 1, 5),
    ("2025-11-21", 190, 463, "Session has expired", 3, 7),
    ("2025-11-21", 17, None, "User request limit reached", 1, 1),
]


def test_explained_table_sums_days_and_puts_token_errors_first():
    table = meta_errors.explained(_errors(ERRORS))
    assert list(table["error_code"]) == [190, 100, 17]
    token = table.iloc[0]
    assert (token["batches"], token["events"]) == (4, 12)
    assert str(token["first_day"].date()) == "2025-11-20"
    assert str(token["last_day"].date()) == "2025-11-21"
    assert "expired" in token["meaning"] and token["fix"]
    assert pd.isna(table.iloc[2]["error_subcode"])
    assert meta_errors.explained(_errors([])).empty


def test_errors_chart_names_errors_and_colours_token_errors_warm():
    figure = charts.errors_over_time(_errors(ERRORS))
    colours = {trace.name: trace.marker.color for trace in figure.data}
    assert set(colours) == {
        "190/463 access token expired",
        "100/2804003 event_time too old",
        "17 rate limit",
    }
    assert colours["190/463 access token expired"] in charts.ERROR_WARNING_COLORS
    for name in ("100/2804003 event_time too old", "17 rate limit"):
        assert colours[name] in charts.ERROR_NEUTRAL_COLORS
    # Token errors first: the bottom of the stack and the start of the legend.
    assert figure.data[0].name == "190/463 access token expired"
    assert list(figure.data[0].y) == [5, 7]
