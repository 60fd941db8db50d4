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
        try:
            words = shlex.split(text)
        except ValueError:
            raise Rejected("malformed curl command") from None
        body_text = url = None
        for i, word in enumerate(words):
            if word in _DATA_FLAGS and i + 1 < len(words):
                body_text = words[i + 1]
            elif word.startswith(("http://", "https://")):
                url = word
        dataset = events_call_dataset(url)
        if dataset is None:
            return Skipped(NOT_A_META_REQUEST)
        return request_batch(
            body_from_text(body_text), None, default_dataset, sent_at=None, dataset_id=dataset
        )

    def line_complete(self, line: bytes) -> bool:
        return True  # a command is printed whole
