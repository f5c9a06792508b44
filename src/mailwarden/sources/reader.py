"""Reading one file (or stdin) into records, with bounded memory whatever it holds.

Compression is recognised by its magic bytes, not the file name: rotated files
get renamed, and stdin has no name. Lines are cut from fixed-size chunks, so a
line of a gigabyte costs at most one chunk plus ``MAX_LINE`` of memory before
it is dropped as ``too_long``.

Every physical line ends as exactly one of: a record, or one ``stats.skip``
reason (``blank``, ``too_long``, ``binary``, ``invalid_utf8``, ``unframed``).
The only exception is a broken archive, which counts one
``truncated_archive`` (or ``read_error`` for a plain file) for the part that
could not be read.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import sys
import zlib
from collections.abc import Generator, Iterable, Iterator
from datetime import UTC, datetime, tzinfo
from functools import partial
from itertools import chain
from typing import TYPE_CHECKING, BinaryIO

from mailwarden.model import ReadStats, Record, Source
from mailwarden.sources.framing import YearInference, frame_line
from mailwarden.sources.journald import frame_journal_line
from mailwarden.sources.native import Framer, framer_for, kind_of

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

CHUNK = 256 * 1024
MAX_LINE = 64 * 1024

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)
UNSUPPORTED = frozenset({"zstd"})
MAGIC_LEN = 6

# Control characters other than tab; more than a quarter of a line means binary junk.
_CONTROL = bytes(range(9)) + bytes(range(10, 32)) + b"\x7f"

_ARCHIVE_ERRORS = (EOFError, OSError, zlib.error, lzma.LZMAError)


def compression_of(head: bytes) -> str:
    """``plain``, ``gzip``, ``bzip2``, ``xz`` or ``zstd`` from the first bytes of a stream."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    return "plain"


def sniff(path: str) -> str:
    """Compression of the file at ``path``; raises OSError when it cannot be opened."""
    with open(path, "rb") as handle:
        return compression_of(handle.read(MAGIC_LEN))


class _Prefixed(io.RawIOBase):
    """A stream with bytes already read pushed back in front (stdin cannot seek)."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        super().__init__()
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        view = memoryview(buffer).cast("B")
        if self._head:
            size = min(len(view), len(self._head))
            view[:size] = self._head[:size]
            self._head = self._head[size:]
            return size
        data = self._rest.read(len(view))
        view[: len(data)] = data
        return len(data)


def _chunks(raw: BinaryIO, kind: str, head: bytes) -> Iterator[bytes]:
    """Decompressed content in chunks of at most ``CHUNK`` bytes (so bombs stay bounded)."""
    if kind == "plain":
        if head:
            yield head
        yield from iter(partial(raw.read, CHUNK), b"")
        return
    with _decompressor(kind, io.BufferedReader(_Prefixed(head, raw))) as stream:
        # closing the decompressor leaves ``raw`` open: the caller owns it
        yield from iter(partial(stream.read, CHUNK), b"")


def _decompressor(kind: str, source: io.BufferedReader) -> io.BufferedIOBase:
    if kind == "gzip":
        return gzip.GzipFile(fileobj=source, mode="rb")
    if kind == "bzip2":
        return bz2.BZ2File(source)
    return lzma.LZMAFile(source)


def split_lines(chunks: Iterator[bytes]) -> Iterator[list[bytes | None]]:
    """Batches of physical lines without line ends; ``None`` stands for an over-long line.

    Batches (one per chunk) rather than single lines keep the per-line cost
    down. A trailing ``\\r`` is dropped (files that passed through Windows).
    """
    pending = b""
    dropping = False  # inside an over-long line: discard up to its newline
    for chunk in chunks:
        data = chunk
        if dropping:
            newline = data.find(b"\n")
            if newline < 0:
                continue
            data = data[newline + 1 :]
            dropping = False
            batch: list[bytes | None] = [None]
        else:
            batch = []
            if pending:
                data = pending + data
        lines = data.split(b"\n")
        pending = lines.pop()
        if b"\r" in data:
            lines = [line[:-1] if line.endswith(b"\r") else line for line in lines]
        if lines and max(map(len, lines)) > MAX_LINE:
            batch.extend(None if len(line) > MAX_LINE else line for line in lines)
        else:
            batch.extend(lines)
        if len(pending) > MAX_LINE:
            pending = b""
            dropping = True
        if batch:
            yield batch
    if dropping:
        yield [None]
    elif pending:
        yield [pending[:-1] if pending.endswith(b"\r") else pending]


_LOOKAHEAD_BATCHES = 4


def _first_text(batches: Iterator[list[bytes | None]]) -> tuple[list[list[bytes | None]], bytes]:
    """Read ahead to the first non-blank line; returns the batches read and that line.

    Gives up (returning ``b""``) after a few batches, so that a file of
    nothing but newlines is not held in memory while looking.
    """
    seen: list[list[bytes | None]] = []
    for batch in batches:
        seen.append(batch)
        for line in batch:
            if line and line.strip():
                return seen, line.lstrip()
        if len(seen) >= _LOOKAHEAD_BATCHES:
            break
    return seen, b""


def _is_binary(raw: bytes) -> bool:
    return b"\0" in raw or (len(raw) - len(raw.translate(None, _CONTROL))) * 4 > len(raw)


def _text_records(
    batches: Iterable[list[bytes | None]],
    label: str,
    stats: ReadStats,
    clock: YearInference,
    frame: Framer = frame_line,
) -> Iterator[list[Record]]:
    """Decode, classify and frame syslog-style lines (the per-line hot loop).

    Yields one list of records per batch of lines: the stages after this one
    loop over lists, which costs far less per line than resuming a chain of
    generators for every record.
    """
    skip = stats.skip
    lineno = 0
    for batch in batches:
        stats.lines_read += len(batch)
        records: list[Record] = []
        append = records.append
        for raw in batch:
            lineno += 1
            if not raw:
                skip("blank" if raw is not None else "too_long")
                continue
            try:
                line = raw.decode()
            except UnicodeDecodeError:
                skip("binary" if _is_binary(raw) else "invalid_utf8")
                continue
            if "\0" in line:
                # A crash leaves a block of NULs and syslog appends the next line
                # right after it: keep that line, drop anything else with a NUL.
                line = line.lstrip("\0")
                if not line or "\0" in line:
                    skip("binary")
                    continue
            record = frame(line, Source(label, lineno), clock)
            if record is None:
                skip("binary" if _is_binary(raw) else ("unframed" if line.strip() else "blank"))
                continue
            append(record)
        if records:
            stats.records += len(records)
            yield records


def _journal_records(
    batches: Iterable[list[bytes | None]], label: str, stats: ReadStats
) -> Iterator[list[Record]]:
    """Frame ``journalctl -o json`` lines; JSON itself is always valid UTF-8 text."""
    lineno = 0
    for batch in batches:
        stats.lines_read += len(batch)
        records: list[Record] = []
        for raw in batch:
            lineno += 1
            if not raw or not raw.strip():
                stats.skip("blank" if raw is not None else "too_long")
                continue
            try:
                line = raw.decode()
            except UnicodeDecodeError:
                stats.skip("binary" if _is_binary(raw) else "invalid_utf8")
                continue
            result = frame_journal_line(line, Source(label, lineno))
            if isinstance(result, str):
                stats.skip(result)
                continue
            records.append(result)
        if records:
            stats.records += len(records)
            yield records


def read_file_batches(
    path: str, stats: ReadStats, *, tz: tzinfo | None, now: datetime | None
) -> Generator[list[Record], None, None]:
    """Records of one file in file order, a list per read chunk; ``-`` is stdin.

    Open failures become problems. The first non-blank line decides between syslog text and a journald JSON
    export (which starts with ``{``; its records are labelled ``journal:<path>``).
    The reference for year inference is ``now`` when given, else the file's
    mtime, else (stdin) the current time.
    """
    try:
        raw: BinaryIO = _stdin() if path == "-" else open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        stats.problem(f"{path}: cannot open: {exc.strerror or exc}")
        stats.skip("unreadable_file")
        return
    try:
        reference = now if now is not None or path == "-" else _mtime(raw)
        try:
            head = raw.read(MAGIC_LEN)
        except OSError as exc:  # EISDIR, EIO: the file opened but cannot be read
            stats.problem(f"{path}: cannot read: {exc.strerror or exc}")
            stats.skip("read_error")
            return
        kind = compression_of(head)
        if kind in UNSUPPORTED:
            stats.problem(f"{path}: {kind}-compressed, which this Python cannot read; skipped")
            stats.skip("unsupported_compression")
            return
        stats.files.append(path)
        batches = split_lines(_chunks(raw, kind, head))
        try:
            seen, first = _first_text(batches)
            if first.startswith(b"{"):
                stats.note_file_kind("journald")
                yield from _journal_records(chain(seen, batches), f"journal:{path}", stats)
            else:
                clock = YearInference(reference, tz)
                kind = kind_of(first, path)
                stats.note_file_kind(kind)
                frame = framer_for(kind, path, reference)
                yield from _text_records(chain(seen, batches), path, stats, clock, frame)
        except _ARCHIVE_ERRORS as exc:
            if kind == "plain":
                stats.problem(f"{path}: read error: {exc}")
                stats.skip("read_error")
            else:
                stats.problem(
                    f"{path}: {kind} archive is truncated or corrupt ({exc}); "
                    "kept the lines before the damage"
                )
                stats.skip("truncated_archive")
    finally:
        if path != "-":
            raw.close()


def _stdin() -> BinaryIO:
    """The binary side of stdin; OSError when there is none (a daemon, ``stdin=None``)."""
    stream: BinaryIO | None = getattr(sys.stdin, "buffer", None)
    if stream is None:
        raise OSError("stdin is closed or not a byte stream")
    return stream


def _mtime(raw: BinaryIO) -> datetime | None:
    try:
        return datetime.fromtimestamp(os.fstat(raw.fileno()).st_mtime, UTC)
    except (OSError, ValueError, OverflowError):
        return None


def looks_like_journal(path: str) -> bool:
    """Whether ``path`` is a ``journalctl -o json`` export (judged by its first line)."""
    try:
        with open(path, "rb") as raw:
            head = raw.read(MAGIC_LEN)
            kind = compression_of(head)
            if kind in UNSUPPORTED:
                return False
            _seen, first = _first_text(split_lines(_chunks(raw, kind, head)))
    except _ARCHIVE_ERRORS:
        return False
    return first.startswith(b"{") and b'"__REALTIME_TIMESTAMP"' in first
