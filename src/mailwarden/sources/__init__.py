"""Sources: turning log files, rotated and compressed series, stdin and journald
exports into one time-ordered stream of framed ``Record``s.

Layout: ``discovery`` decides which files and in which order, ``reader``
streams one file (decompression, line limits, skip reasons), ``framing`` and
``journald`` cut a line into a record, ``years`` places year-less stamps in
time. See docs/sources.md for what is accepted and why.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, tzinfo
from operator import attrgetter

from mailwarden.model import ReadStats, Record
from mailwarden.sources.discovery import SourceError, default_log_paths, plan, rotation_of
from mailwarden.sources.framing import frame_line
from mailwarden.sources.reader import read_file
from mailwarden.sources.years import YearInference

__all__ = [
    "SourceError",
    "YearInference",
    "default_log_paths",
    "frame_line",
    "merge_by_time",
    "read_records",
    "rotation_of",
]

_by_ts = attrgetter("ts")


def merge_by_time(iterators: Iterable[Iterable[Record]]) -> Iterator[Record]:
    """Interleave time-ordered record streams into one, lazily.

    Stable: records with equal times come in the order of the streams given,
    and each stream keeps its own order, so a stream that is locally out of
    order (a skewed clock) is never reordered, only interleaved.
    """
    return heapq.merge(*iterators, key=_by_ts)


def _read_series(
    files: list[str], stats: ReadStats, tz: tzinfo | None, now: datetime | None
) -> Iterator[Record]:
    for path in files:
        yield from read_file(path, stats, tz=tz, now=now)


def read_records(
    paths: Sequence[str],
    stats: ReadStats,
    *,
    tz: tzinfo | None = None,
    now: datetime | None = None,
) -> Iterator[Record]:
    """All records of ``paths`` as one stream ordered by time.

    ``paths`` holds files (plain, .gz, .bz2, .xz, recognised by content),
    directories (their mail logs, see docs/sources.md) and ``-`` for stdin.
    Each rotated series is read oldest file first, in file order; distinct
    series are merged by time. ``tz`` is the zone of stamps that carry none
    (default: the system zone); ``now`` replaces each file's mtime as the
    reference for year inference. Inputs are checked before this returns:
    a missing or unreadable named path raises ``SourceError``.
    """
    series = plan(paths, stats)
    streams = [_read_series(files, stats, tz, now) for files in series]
    if len(streams) == 1:
        return streams[0]
    return merge_by_time(streams)
