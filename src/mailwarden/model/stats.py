"""Counters that travel with a run, so that nothing is dropped silently."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from mailwarden.model.record import Record


@dataclass(slots=True)
class ReadStats:
    """What the sources and formats saw.

    ``skipped`` counts lines that never became a record, by reason
    (``invalid_utf8``, ``binary``, ``too_long``, ``truncated``, ``no_timestamp``,
    ``out_of_range``...). ``unparsed`` counts records that a format claimed by
    program name but could not read, per format; ``unclaimed`` counts records
    whose program no format knows, per program (bounded, see ``note_unclaimed``).
    ``formats`` counts the records each format claimed (understood or not), so
    a run can say which formats it recognised; ``file_kinds`` counts input
    files by how they were framed.
    """

    lines_read: int = 0
    records: int = 0
    parsed: int = 0
    events: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    unparsed: Counter[str] = field(default_factory=Counter)
    unclaimed: Counter[str] = field(default_factory=Counter)
    formats: Counter[str] = field(default_factory=Counter)
    file_kinds: Counter[str] = field(default_factory=Counter)
    format_dropped: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    unparsed_samples: list[Record] = field(default_factory=list)

    MAX_UNCLAIMED_PROGRAMS = 256
    MAX_PROBLEMS = 100
    MAX_UNPARSED_SAMPLES = 1000

    def note_unparsed(self, fmt: str, record: Record) -> None:
        """Count a record a format claimed but could not read; keep the first ones to show."""
        self.unparsed[fmt] += 1
        if len(self.unparsed_samples) < self.MAX_UNPARSED_SAMPLES:
            self.unparsed_samples.append(record)

    def note_file_kind(self, kind: str) -> None:
        """Count a file by how it was framed (``syslog``, ``journald``, ``multilog``, ``exim``...)."""
        self.file_kinds[kind] += 1

    def skip(self, reason: str) -> None:
        self.skipped[reason] += 1

    def note_unclaimed(self, program: str) -> None:
        """Count a record no format claimed; program names are attacker-influenced, so bound them."""
        if program in self.unclaimed or len(self.unclaimed) < self.MAX_UNCLAIMED_PROGRAMS:
            self.unclaimed[program] += 1
        else:
            self.unclaimed["(other)"] += 1

    def problem(self, text: str) -> None:
        """Record a run-level problem (unreadable file, truncated archive) for the report."""
        if len(self.problems) < self.MAX_PROBLEMS:
            self.problems.append(text)

    def formats_line(self) -> str:
        """One line for people: which formats were recognised, and what of each was not understood."""
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(self.file_kinds.items()))
        found = ", ".join(
            f"{name} {count} lines ({self.unparsed.get(name, 0)} not understood)"
            for name, count in self.formats.most_common()
        )
        other = sum(self.unclaimed.values())
        text = f"Formats: {found or 'none recognised'}"
        if other:
            names = ", ".join(name for name, _n in self.unclaimed.most_common(5))
            text += f"; {other} lines of other programs ({names})"
        return text + (f"; files: {kinds}" if kinds else "")

    def to_dict(self) -> dict[str, object]:
        return {
            "lines_read": self.lines_read,
            "records": self.records,
            "parsed": self.parsed,
            "events": self.events,
            "skipped": dict(sorted(self.skipped.items())),
            "unparsed": dict(sorted(self.unparsed.items())),
            "unclaimed": dict(sorted(self.unclaimed.items())),
            "formats": {
                name: {"records": self.formats[name], "unparsed": self.unparsed.get(name, 0)}
                for name in sorted(self.formats)
            },
            "file_kinds": dict(sorted(self.file_kinds.items())),
            "problems": list(self.problems),
        }
