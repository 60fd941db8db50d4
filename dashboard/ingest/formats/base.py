"""What a log format adapter is: how it is recognised, how it is read, what it yields.

Owns the small vocabulary shared by every adapter and the importer. An adapter turns
one record of its source (a line, a multi-line entry, a CSV row or a whole JSON file)
into one outcome:

- `Batch`: events with their envelope (channel, dataset, Meta's answer if known), stored
  at the record's position; `awaits` names the request when its answer comes later in
  the file (server-side GTM logs, WooCommerce logs);
- `Answer`: Meta's answer to an earlier request, found by that name;
- `Skipped`: a record that holds no event and is no error (another tag's request, a
  log entry about something else), counted by reason;
- `None`: a blank record.

A record that cannot be read raises `Rejected` and is quarantined with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from dashboard.ingest.files import CSV_DELIMITERS
from dashboard.ingest.formats.jsonline import parses
from dashboard.ingest.rows import Envelope

# How the importer reads a file of this format:
#   lines   - one record per line (JSON Lines, form-encoded lines);
#   entries - records spanning several lines, each starting with a recognisable line;
#   csv     - one record per CSV row, cells by header name ("csv" is comma-separated;
#             "csv;", "csv\t", "csv|" name the other delimiters, see `csv_reader`);
#   json    - the whole file is one JSON document (one record, or an array of records).
Reader = Literal["lines", "entries", "csv", "csv;", "csv\t", "csv|", "json"]


def csv_reader(delimiter: str) -> Reader:
    """The reader of a CSV file with this delimiter. The delimiter is part of the reader
    name, so it is stored with the source's format and a grown file is read alike; a
    comma keeps the plain name stores made before delimiters were detected hold."""
    return "csv" if delimiter == "," else f"csv{delimiter}"  # type: ignore[return-value]


def csv_delimiter(reader: str) -> str | None:
    """The delimiter of a CSV reader (None: not a CSV reader)."""
    if reader == "csv":
        return ","
    if reader.startswith("csv") and reader[3:] in CSV_DELIMITERS:
        return reader[3:]
    return None


@dataclass(frozen=True)
class Pending:
    """A request whose answer comes on a later record: its queue key and, when the
    source names it, the dataset (pixel) the answer will name too."""

    key: str
    dataset_id: str | None = None


@dataclass(frozen=True)
class Batch:
    envelope: Envelope
    events: list[Any]
    awaits: Pending | None = None


@dataclass(frozen=True)
class Answer:
    """Meta's answer (`delivery_from_response` fields) to the oldest open request with
    this key (and dataset, when given)."""

    key: str
    delivery: dict[str, Any]
    dataset_id: str | None = None


@dataclass(frozen=True)
class Skipped:
    """No event and no error; `awaits` when it is a request whose answer will follow
    (its answer must not be taken for another request's)."""

    reason: str
    awaits: Pending | None = None


Outcome = Batch | Answer | Skipped | None

NOT_A_META_REQUEST = "not a Meta events request"
ANSWER_LINE = "Meta's answer to an earlier request"
ENTRY_CONTINUATION = "part of a multi-line log entry"


class LogFormat:
    """One source's log format. Subclasses set the class attributes and implement
    `claims` and the parse method of their reader."""

    name: ClassVar[str]  # the --format value, e.g. "sgtm"
    title: ClassVar[str]  # what a person calls it, e.g. "server-side GTM tag log (Stape)"
    # How its files are read; the first is the default, "csv" applies when the file
    # turns out to be CSV (e.g. BigQuery rows exported as CSV).
    readers: ClassVar[tuple[Reader, ...]] = ("lines",)
    # The vectorised DuckDB path reads this format's lines (JSON records only).
    vectorised: ClassVar[bool] = False

    def claims(self, line: bytes) -> bool:
        """Whether this non-blank line (BOM removed) is clearly of this format: the first
        line of a file that some format claims decides the file's format."""
        return False

    # -- reader "lines" and "entries" -------------------------------------------
    def parse_line(self, line: bytes, default_dataset: str) -> Outcome:
        """The outcome of one non-blank line (reader "lines")."""
        raise NotImplementedError

    def line_complete(self, line: bytes) -> bool:
        """Whether a last line that has no newline yet is whole (else it waits for the
        writer to finish it; reader "lines")."""
        return parses(line)

    def starts_entry(self, line: str) -> bool:
        """Whether this line opens a new entry (reader "entries")."""
        return True

    def entry_complete(self, lines: list[str]) -> bool:
        """Whether an entry found at the end of a growing file is whole (else it waits)."""
        return True

    def parse_entry(self, lines: list[str], default_dataset: str) -> Outcome:
        """The outcome of one entry's lines (reader "entries")."""
        raise NotImplementedError

    # -- reader "csv" -------------------------------------------------------------
    def sniff_header(self, header: list[str]) -> bool:
        """Whether a CSV header belongs to this format (reader "csv")."""
        return False

    def parse_row(self, cells: dict[str, str], default_dataset: str) -> Outcome:
        """The outcome of one CSV row, non-empty cells by header name (reader "csv")."""
        raise NotImplementedError

    # -- reader "json" ------------------------------------------------------------
    def document_records(self, document: Any) -> list[Any]:
        """The records of a whole-file JSON document (reader "json"), numbered from 1."""
        raise NotImplementedError

    def parse_record(self, record: Any, default_dataset: str) -> Outcome:
        """The outcome of one record of a whole-file JSON document."""
        raise NotImplementedError
