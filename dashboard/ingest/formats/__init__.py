"""The log formats the importer reads, and how a file's format is recognised.

Owns the registry of adapters (one module each in this folder) and `detect`, which
decides a file's format from its first non-blank records (and `detect_document`, from
the first records of a whole-file JSON document). Adding a format means one module with a
`LogFormat` subclass, its entry in `FORMATS`, a writer in tests/formatkit.py and its
row in tests/test_formats.py, and a row in the README's format table (README, "Code
layout"; tests/test_docs.py checks the last two).
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass

from dashboard.ingest.files import header_delimiter
from dashboard.ingest.formats.base import LogFormat, Reader, csv_reader
from dashboard.ingest.formats.capi_body import CapiBodyDocument, CapiBodyLines
from dashboard.ingest.formats.eqm_csv import EqmCsv
from dashboard.ingest.formats.eqm_v1 import EqmJsonLines, record_kind_of
from dashboard.ingest.formats.node_sdk import NodeSdkLog
from dashboard.ingest.formats.python_sdk import PythonSdkDebug
from dashboard.ingest.formats.sgtm import StapeTagLog
from dashboard.ingest.formats.woocommerce import WooCommerceLog

# Asked in this order: for the first line any format claims, the first that claims it
# reads the file.
# sGTM before v1: a BigQuery log row has an event_name and no kind, like a bare event.
FORMATS: tuple[LogFormat, ...] = (
    StapeTagLog(),
    EqmJsonLines(),
    CapiBodyLines(),
    WooCommerceLog(),
    NodeSdkLog(),
    PythonSdkDebug(),
    EqmCsv(),
    CapiBodyDocument(),
)
BY_NAME: dict[str, LogFormat] = {fmt.name: fmt for fmt in FORMATS}
UNRECOGNISED = "(unrecognised)"
# How many non-blank lines from a file's start detection looks at.
HEAD_LINES = 200


@dataclass(frozen=True)
class Detected:
    """A file's format (None: unrecognised) and how to read it."""

    format: LogFormat | None
    reader: Reader

    @property
    def name(self) -> str:
        return self.format.name if self.format else UNRECOGNISED


def format_names() -> list[str]:
    return [fmt.name for fmt in FORMATS]


def csv_format(header: list[str]) -> LogFormat | None:
    """The CSV format whose header this is."""
    for fmt in FORMATS:
        if "csv" in fmt.readers and fmt.sniff_header(header):
            return fmt
    return None


def detect_document(document: object) -> Detected | None:
    """The format of a whole-file JSON document (one record, pretty-printed, or an array
    of records) from its first records: as for lines, the first that is a record decides
    (log format v1, or a raw request body); None when none is. Either is read by the
    "json" reader, each record numbered by its place in the array."""
    records = document if isinstance(document, list) else [document]
    for record in records[:HEAD_LINES]:
        kind = record_kind_of(record)
        if kind == "v1":
            return Detected(BY_NAME["eqm-v1"], "json")
        if kind == "body":
            return Detected(BY_NAME["capi-body-json"], "json")
    return None


def detect(
    head: list[bytes], whole_document: Callable[[], Detected | None] | None = None
) -> Detected:
    """The format of a file from its first non-blank lines (BOM removed): the first line
    that a format claims decides (so a damaged first line does not hide the rest), the
    formats asked in the order of FORMATS.

    `whole_document()` gives the format of the file read as one JSON document
    (`detect_document`), or None: asked, once, only when the first line is no record of
    its own, since it reads the whole file.
    """
    line_formats = [fmt for fmt in FORMATS if {"lines", "entries"} & set(fmt.readers)]
    first_claimed = bool(head) and any(fmt.claims(head[0]) for fmt in line_formats)
    document = whole_document() if whole_document is not None and not first_claimed else None
    if document is not None:
        return document
    for line in head:
        for fmt in line_formats:
            if fmt.claims(line):
                return Detected(fmt, fmt.readers[0])
    if head and not head[0].lstrip().startswith((b"{", b"[")):
        delimiter = ","
        try:
            text = head[0].decode("utf-8")
            delimiter = header_delimiter(text)
            header = [h.strip() for h in next(csv.reader([text], delimiter=delimiter), [])]
        except (csv.Error, UnicodeDecodeError):
            header = []
        fmt = csv_format(header)
        if fmt is not None:
            return Detected(fmt, csv_reader(delimiter))
    return Detected(None, "lines")
