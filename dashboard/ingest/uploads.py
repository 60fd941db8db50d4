"""Uploaded files, imported under the names people gave them.

A browser upload arrives as bytes and a file name, and the importer reads files: each
upload is written to a temporary folder of its own (two uploads may share a name) and
imported with `ingest(..., names=...)`, so the summary, the import history and the
quarantine say "upload: orders.jsonl", never the temporary path. Which source a file
is goes by its content (first line and checkpoint), not its path, so uploading the same
file again adds nothing.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path

from dashboard.core.config import Config
from dashboard.core.definitions import UPLOAD_PREFIX
from dashboard.ingest.importer import ingest
from dashboard.ingest.summary import ImportSummary
from dashboard.store.database import StoreEngine


def upload_name(name: str, number: int) -> str:
    """The file name of an upload, without any folder a browser may send; a name that is
    no file name ("", "..") becomes upload-N, so the copy stays in its folder."""
    base = Path(str(name).replace("\\", "/")).name
    return base if base not in ("", ".", "..") else f"upload-{number}"


def ingest_uploads(
    uploads: Iterable[tuple[str, bytes]],
    engine: StoreEngine,
    *,
    paths: Iterable[str | os.PathLike] = (),
    config: Config | None = None,
) -> ImportSummary:
    """Import uploaded files (name, bytes), plus any `paths` on this machine, in one run.
    Uploads are named "upload: NAME" wherever the run records a file."""
    with tempfile.TemporaryDirectory(prefix="eqm-upload-") as folder:
        targets: list[Path] = []
        names: dict[Path, str] = {}
        for number, (name, data) in enumerate(uploads, start=1):
            base = upload_name(name, number)
            # One folder per upload: two uploads named alike must not overwrite each other.
            # The copy's name must not read as a glob ("events[2].jsonl"); the extension,
            # which tells CSV and gzip apart, stays. People still see their own name.
            target = Path(folder) / str(number) / re.sub(r"[][*?]", "_", base)
            target.parent.mkdir()
            target.write_bytes(data)
            targets.append(target)
            names[target] = UPLOAD_PREFIX + base
        return ingest([*targets, *paths], engine, config=config, names=names)
