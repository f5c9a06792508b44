"""Sources: turning log files, rotated and compressed series, stdin and journald
exports into one time-ordered stream of framed ``Record``s.

Layout: ``discovery`` decides which files and in which order, ``reader``
streams one file (decompression, line limits, skip reasons), ``framing`` and
``journald`` cut a line into a record, ``years`` places year-less stamps in
time. See docs/sources.md for what is accepted and why.
"""

from __future__ import annotations

import heapq
from collections.abc import Generator, Iterable, Iterator, Sequence
from datetime import datetime, tzinfo
from itertools import chain, islice
from operator import attrgetter
from typing import TypeVar

from mailwarden.model import ReadStats, Record
from mailwarden.sources.discovery import SourceError, default_log_paths, plan, rotation_of
from mailwarden.sources.framing import frame_line
from mailwarden.sources.reader import read_file_batches
from mailwarden.sources.years import YearInference

__all__ = [
    "SourceError",
    "YearInference",
    "default_log_paths",
    "flatten",
    "frame_line",
    "merge_by_time",
    "read_batches",
    "read_records",
    "rotation_of",
]

_by_ts = attrgetter("ts")
T = TypeVar("T")


def flatten(batches: Iterator[list[T]]) -> Generator[T, None, None]:
    """The items of ``batches`` one by one; closing this closes ``batches`` (and its files)."""
    try:
        for batch in batches:
            yield from batch
    finally:
        close = getattr(batches, "close", None)
        if close is not None:
            close()


def merge_by_time(iterators: Iterable[Iterable[Record]]) -> Iterator[Record]:
    """Interleave time-ordered record streams into one, lazily.

    Stable: records with equal times come in the order of the streams given,
    and each stream keeps its own order, so a stream that is locally out of
    order (a skewed clock) is never reordered, only interleaved.
    """
    return heapq.merge(*iterators, key=_by_ts)


def _read_series(
    files: list[str], stats: ReadStats, tz: tzinfo | None, now: datetime | None
) -> Iterator[list[Record]]:
    for path in files:
        yield from read_file_batches(path, stats, tz=tz, now=now)


MERGED_BATCH = 1024


def _rebatch(records: Iterator[Record]) -> Iterator[list[Record]]:
    """Cut a record stream back into lists (``islice`` does the work in C)."""
    try:
        while batch := list(islice(records, MERGED_BATCH)):
            yield batch
    finally:
        close = getattr(records, "close", None)
        if close is not None:
            close()


def read_batches(
    paths: Sequence[str],
    stats: ReadStats,
    *,
    tz: tzinfo | None = None,
    now: datetime | None = None,
) -> Iterator[list[Record]]:
    """``read_records`` as a stream of non-empty lists of records, the form the pipeline uses.

    A list holds the records of one read chunk (or ``MERGED_BATCH`` records
    when series are merged), so memory stays bounded. Inputs are checked
    before this returns, as for ``read_records``.
    """
    series = plan(paths, stats)
    streams = [_read_series(files, stats, tz, now) for files in series]
    if len(streams) == 1:
        return streams[0]
    return _rebatch(merge_by_time(chain.from_iterable(stream) for stream in streams))


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
    return flatten(read_batches(paths, stats, tz=tz, now=now))
