"""Golden sample files are the spec of every parser.

Each ``tests/golden/<format>/*.log`` file holds sample lines, each preceded by
one ``#> `` line with the expected result as JSON:

* a list of event objects: every key given must equal the event's
  ``to_dict()`` value (``source`` and ``ts`` are not compared unless given);
  the list length must match exactly;
* ``[]``: the format understands the line and emits nothing;
* ``null``: the format claims the program but does not understand the line
  (it is counted as unparsed).

Other lines starting with ``#`` are comments. Lines are framed by the real
framer of the file's kind, decided from its first sample line as the reader
decides it (``sources.native.kind_of``): syslog lines (``Mon DD HH:MM:SS host
program[pid]: message``), Dovecot ``log_path`` lines, multilog (``@4000...``),
Exim's own files, PHP's mail.log; the year of syslog stamps is pinned to 2026.

A format may keep state between lines: each file is one stream, read in
order by its own ``FormatSet``. Run a file's cases together (pytest keeps
their order); a case picked alone may lack the lines before it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailwarden.formats import FormatSet
from mailwarden.model import Record, Source
from mailwarden.sources.framing import YearInference
from mailwarden.sources.native import framer_for, kind_of

GOLDEN = Path(__file__).parent
# Golden lines are read by the real framer; the year is pinned (reference: end of 2026).
_CLOCK_REFERENCE = datetime(2026, 12, 31, 23, 59, tzinfo=UTC)
_CLOCK = YearInference(_CLOCK_REFERENCE, UTC)


def _record(line: str, path: Path, lineno: int) -> Record:
    """Frame as the reader would: the file's first sample line decides its kind (syslog, multilog, ...)."""
    first = next(
        raw
        for raw in path.read_text(encoding="utf-8").splitlines()
        if raw.strip() and not raw.startswith("#")
    )
    frame = framer_for(kind_of(first.encode(), path.name), path.name, _CLOCK_REFERENCE)
    rec = frame(line, Source(file=path.name, line=lineno), _CLOCK)
    assert rec is not None, f"{path.name}:{lineno}: not a log line of this file's kind: {line!r}"
    return rec


# Formats may keep state between the lines of a stream (qmail delivery numbers,
# OpenSMTPD sessions): each golden file is one stream, read in order by one set.
_SETS: dict[str, FormatSet] = {}


def _formats_of(name: str) -> FormatSet:
    if name not in _SETS:
        _SETS[name] = FormatSet()
    return _SETS[name]


def _cases() -> list[tuple[str, int, str, object]]:
    cases: list[tuple[str, int, str, object]] = []
    for path in sorted(GOLDEN.glob("*/*.log")):
        expected: object = ...
        for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if raw.startswith("#> "):
                expected = json.loads(raw[3:])
            elif raw.startswith("#") or not raw.strip():
                continue
            else:
                assert expected is not ..., f"{path}:{lineno}: sample line without '#> ' expectation"
                cases.append((f"{path.parent.name}/{path.name}", lineno, raw, expected))
                expected = ...
    return cases


CASES = _cases()


@pytest.mark.parametrize(("name", "lineno", "line", "expected"), CASES, ids=[f"{c[0]}:{c[1]}" for c in CASES])
def test_golden_line(name: str, lineno: int, line: str, expected: object) -> None:
    path = GOLDEN / name
    record = _record(line, path, lineno)
    fmt = _formats_of(name).format_for(record.program)
    assert fmt is not None, f"no format claims program {record.program!r}"
    events = fmt.parse(record)
    if expected is None:
        assert events is None, f"expected unparsed, got {events}"
        return
    assert events is not None, "format did not understand the line"
    assert isinstance(expected, list)
    got = [e.to_dict() for e in events]
    assert len(got) == len(expected), f"expected {len(expected)} events, got {got}"
    for want, have in zip(expected, got, strict=True):
        for key, value in want.items():
            assert have.get(key) == value, f"{key}: want {value!r}, have {have.get(key)!r} in {have}"


def test_every_format_has_golden_samples() -> None:
    from mailwarden.formats import FORMATS

    for fmt in FORMATS:
        files = list((GOLDEN / fmt.name).glob("*.log"))
        assert files, f"format {fmt.name} has no golden samples"
        assert any("injection" in f.name for f in files), f"format {fmt.name} has no injection samples"
