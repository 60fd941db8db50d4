"""What an import did: the counts a person and a test read, which add up.

Owns `ImportSummary` (lines read, events imported, quarantined by reason, formats
found) and `IngestError` (a usage problem: no such path, nothing to import).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


class IngestError(RuntimeError):
    """A usage problem: no such path, nothing to import, unreadable file."""


@dataclass
class ImportSummary:
    """What one `ingest` run did. Counts add up: see `accounted()`."""

    files: int = 0
    lines_read: int = 0
    lines_already_imported: int = 0
    blank_lines: int = 0
    lines_with_events: int = 0
    lines_quarantined: int = 0
    events_imported: int = 0
    events_quarantined: int = 0
    pending_lines: int = 0  # unfinished last lines (or entries) left for the next import
    quarantined_by_reason: Counter = field(default_factory=Counter)
    # Lines read that hold no event and are no error, by reason: another tag's request,
    # Meta's answer to a request on an earlier line, the rest of a multi-line entry.
    lines_skipped: Counter = field(default_factory=Counter)
    formats: dict[str, str] = field(default_factory=dict)  # path -> format name
    unrecognised_tried: tuple[str, ...] = ()  # formats tried on unrecognised files
    reimported_files: list[str] = field(default_factory=list)
    import_id: int = 0

    def progress(self) -> dict[str, int]:
        """The counts an `imports` row records, as of now."""
        return {
            "lines_read": self.lines_read,
            "lines_already_imported": self.lines_already_imported,
            "events_imported": self.events_imported,
            "events_quarantined": self.events_quarantined,
            "lines_quarantined": self.lines_quarantined,
        }

    def accounted(self) -> bool:
        """Every line read is blank, quarantined whole, holds imported/quarantined events,
        or is skipped with a reason."""
        return self.lines_read == (
            self.blank_lines
            + self.lines_quarantined
            + self.lines_with_events
            + sum(self.lines_skipped.values())
        )

    def to_text(self) -> str:
        """The human summary `ingest` prints."""
        lines = [f"files: {self.files}"]
        for path, name in self.formats.items():
            lines.append(f"  {path}: {name}")
        if self.unrecognised_tried:
            lines.append("  (formats tried: " + ", ".join(self.unrecognised_tried) + ")")
        lines += [
            f"lines read: {self.lines_read:,}"
            + (
                f" (plus {self.lines_already_imported:,} already imported)"
                if self.lines_already_imported
                else ""
            ),
            f"events imported: {self.events_imported:,}",
            f"quarantined: {self.lines_quarantined:,} lines, {self.events_quarantined:,} events",
        ]
        if self.blank_lines:
            lines.append(f"lines without events (blank, CSV header): {self.blank_lines:,}")
        for reason, count in self.lines_skipped.most_common():
            lines.append(f"lines skipped, {reason}: {count:,}")
        if self.pending_lines:
            lines.append(f"unfinished last lines left for the next import: {self.pending_lines:,}")
        for reason, count in self.quarantined_by_reason.most_common():
            lines.append(f"  {count:>8,}  {reason}")
        for path in self.reimported_files:
            lines.append(
                f"note: {path} changed before its last import point; re-imported from the start"
            )
        return "\n".join(lines)
