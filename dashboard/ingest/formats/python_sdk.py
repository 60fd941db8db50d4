"""The facebook-python-business-sdk debug output: a curl command per call.

Owns the reading of what `FacebookAdsApi.init(..., debug=True)` prints for each call
(facebook_business/api.py: `print(curlify.to_curl(response.request))`):

    curl -X POST -H 'User-Agent: fbbizsdk-python-v26.0.3' ... \
      -d 'data=%5B%7B%22event_name%22...&test_event_code=TEST1' \
      'https://graph.facebook.com/v26.0/<PIXEL>/events?access_token=<TOKEN>'

The form body is the request; the URL names the dataset (and carries the token: it is
read for the pixel id only). The SDK prints no answer, so delivery is unknown and
`sent_at` falls back to event_time. Every other line (the application's own output,
calls other than the events call) is skipped.
"""

from __future__ import annotations

import re
import shlex

from dashboard.ingest.formats.base import NOT_A_META_REQUEST, LogFormat, Outcome, Skipped
from dashboard.ingest.formats.eqm_v1 import request_batch
from dashboard.ingest.formats.graph import body_from_text, events_call_dataset
from dashboard.ingest.rows import Rejected

_DATA_FLAGS = ("-d", "--data", "--data-raw", "--data-binary", "--data-urlencode")


class PythonSdkDebug(LogFormat):
    name = "python-sdk"
    title = "facebook-python-business-sdk debug output (curl commands)"

    def claims(self, line: bytes) -> bool:
        return line.startswith(b"curl ") and b"/events" in line

    def parse_line(self, line: bytes, default_dataset: str) -> Outcome:
        text = line.decode("utf-8", "replace").strip()
        if not text.startswith("curl "):
            return Skipped(NOT_A_META_REQUEST)
        body_text, url = _body_and_url(text)
        dataset = events_call_dataset(url)
        if dataset is None:
            return Skipped(NOT_A_META_REQUEST)
        return request_batch(
            body_from_text(body_text), None, default_dataset, sent_at=None, dataset_id=dataset
        )

    def line_complete(self, line: bytes) -> bool:
        return True  # a command is printed whole


# curlify quotes with shlex.quote: a word with special characters becomes '...', a single
# quote inside it '"'"'. Read that directly (shlex.split walks a 3 KB line a character at
# a time: 20x slower); anything else falls back to shlex.
_QUOTED = r"'(?:[^']|'\"'\"')*'"
_DATA_WORD = re.compile(r"(?:^|\s)(?:-d|--data|--data-raw|--data-binary) (" + _QUOTED + r"|\S+)")
_URL_WORD = re.compile(r"\s('https?://[^']*'|https?://\S+)\s*$")


def _unquote(word: str) -> str:
    if word.startswith("'") and word.endswith("'"):
        return word[1:-1].replace("'\"'\"'", "'")
    return word


def _body_and_url(command: str) -> tuple[str | None, str | None]:
    data, url = _DATA_WORD.search(command), _URL_WORD.search(command)
    if data and url:
        return _unquote(data.group(1)), _unquote(url.group(1))
    try:
        words = shlex.split(command)
    except ValueError:
        raise Rejected("malformed curl command") from None
    body_text = url_text = None
    for i, word in enumerate(words):
        if word in _DATA_FLAGS and i + 1 < len(words):
            body_text = words[i + 1]
        elif word.startswith(("http://", "https://")):
            url_text = word
    return body_text, url_text
