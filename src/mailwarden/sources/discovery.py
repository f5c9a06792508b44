"""Which files to read, grouped into rotated series, each oldest first.

A *series* is one log and its rotations: ``mail.log.3.gz mail.log.2.gz
mail.log.1 mail.log`` or, with logrotate's ``dateext``, ``maillog-20261025.gz
maillog-20261101``. Files of a series are read one after another; different
series (``mail.log`` and ``dovecot.log``) are merged by time in
``read_records``. The order comes from the names, never from mtimes, which a
copy or a backup restore changes.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass

from mailwarden.model import ReadStats
from mailwarden.sources.reader import UNSUPPORTED, looks_like_journal, sniff

COMPRESSION_SUFFIXES = (".gz", ".bz2", ".xz", ".zst")
MULTILOG_CURRENT = "current"

# Files that carry a subset of what mail.log/maillog already hold (syslog
# writes mail.info, mail.warn and mail.err from the same messages): read
# mail.info only where no full mail log exists, and the others never.
_FULL_MAIL_LOGS = frozenset({"mail.log", "maillog", "mail"})
_SUBSET_MAIL_LOGS = frozenset({"mail.info"})
_OTHER_LOGS = frozenset({"exim_mainlog", "mainlog"})
_LOG_PREFIXES = ("mail", "dovecot", "postfix")

_DEFAULT_PRIMARY = (
    "var/log/mail.log",  # Debian, Ubuntu
    "var/log/maillog",  # RHEL, CentOS, Fedora, FreeBSD
    "var/log/mail",  # SUSE (a file there; a directory elsewhere, then skipped)
    "var/log/mail/mail.log",
    "usr/local/psa/var/log/maillog",  # Plesk (often a link to /var/log/maillog)
)
_DEFAULT_FALLBACK = ("var/log/mail.info", "var/log/mail/mail.info")
_DEFAULT_OTHER = (
    "var/log/exim_mainlog",  # cPanel
    "var/log/exim4/mainlog",  # Debian exim4
    "var/log/exim/main.log",  # RHEL exim
    "var/log/dovecot.log",  # Dovecot log_path
    "var/log/dovecot-info.log",  # Dovecot info_log_path
    "var/log/qmail/current",  # qmail-send under daemontools (Life with qmail layout)
    "var/log/qmail/smtpd/current",  # qmail-smtpd under tcpserver
    "var/log/qmail/qmail-send/current",
    "var/log/qmail/qmail-smtpd/current",
    "var/log/qmail/submission/current",
)


class SourceError(Exception):
    """An input named on the command line cannot be read at all."""


@dataclass(frozen=True, slots=True)
class Rotation:
    """A file name seen as part of a series: its ``base`` name and its place in it."""

    base: str
    rank: tuple[int, int]  # sorts oldest first: dated, then numbered (high first), then live


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _date_rank(text: str) -> int | None:
    """``YYYYMMDD`` or ``YYYYMMDDHH`` as a sortable number, or None if it is not a date."""
    if len(text) not in (8, 10) or not _digits(text):
        return None
    year, month, day = int(text[:4]), int(text[4:6]), int(text[6:8])
    if not (1970 <= year <= 2999 and 1 <= month <= 12 and 1 <= day <= 31):
        return None
    return int(text.ljust(10, "0"))


def _multilog_rank(name: str) -> int | None:
    """``@4000000069283b5a1c2d3e4f.s``: a file multilog rotated out of ``current`` (its TAI64N label)."""
    if len(name) == 27 and name[0] == "@" and name[-2:] in (".s", ".u"):
        label = name[1:25]
        if all(c in "0123456789abcdef" for c in label):
            return int(label, 16)
    return None


def rotation_of(name: str) -> Rotation:
    """Place a file name in its series: ``mail.log.2.gz`` is ``mail.log``, rotation 2.

    daemontools' multilog keeps ``current`` and renames full files to their
    TAI64N label (``@4000...s``): those are ``current``'s series, in label order.
    """
    multilog = _multilog_rank(name)
    if multilog is not None:
        return Rotation(MULTILOG_CURRENT, (0, multilog))
    stem = name
    for suffix in COMPRESSION_SUFFIXES:
        if stem.endswith(suffix) and len(stem) > len(suffix):
            stem = stem[: -len(suffix)]
            break
    head, dot, tail = stem.rpartition(".")
    if dot and head and _digits(tail) and len(tail) <= 5:
        return Rotation(head, (1, -int(tail)))
    for sep in ("-", "."):
        head, found, tail = stem.rpartition(sep)
        rank = _date_rank(tail) if found and head else None
        if rank is not None:
            return Rotation(head, (0, rank))
    # dateformat -%Y-%m-%d
    if len(stem) > 11 and stem[-11] == "-" and stem[-6] == "-" and stem[-3] == "-":
        rank = _date_rank(stem[-10:-6] + stem[-5:-3] + stem[-2:])
        if rank is not None:
            return Rotation(stem[:-11], (0, rank))
    return Rotation(stem, (2, 0))


def _is_mail_log(base: str) -> bool:
    """Directory patterns: see docs/sources.md ("Directories")."""
    if base in _FULL_MAIL_LOGS or base in _OTHER_LOGS:
        return True
    if base.startswith("mailman"):  # a mailing-list manager, not the MTA
        return False
    return base.startswith(_LOG_PREFIXES) and base.endswith(".log")


def _is_multilog(path: str) -> bool:
    """A ``current`` or ``@...s`` file counts only when it holds multilog lines (``@4000...``)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(5) == b"@4000"
    except OSError:
        return False


def _regular(path: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


_MULTILOG_DEPTH = 2  # /var/log -> qmail -> smtpd/current


def _multilog_subdirs(directory: str, depth: int) -> list[str]:
    """Subdirectories (symlinks not followed) up to ``depth`` down that hold a multilog ``current``.

    daemontools gives every service its own log directory (/var/log/qmail/current for
    qmail-send, /var/log/qmail/smtpd/current for qmail-smtpd): naming /var/log/qmail must
    read both, as naming /var/log reads mail.log and its rotations.
    """
    found: list[str] = []
    if depth <= 0:
        return found
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError:
        return found
    for entry in entries:
        try:
            if not entry.is_dir(follow_symlinks=False):
                continue
        except OSError:
            continue
        current = os.path.join(entry.path, MULTILOG_CURRENT)
        if _regular(current) and _is_multilog(current):
            found.append(entry.path)
        found.extend(_multilog_subdirs(entry.path, depth - 1))
    return found


def discover(directory: str, stats: ReadStats) -> list[str]:
    """The mail log files in ``directory``, grouped by series, oldest first.

    Not recursive, except for daemontools log directories (a multilog ``current``)
    up to two levels down.
    """
    try:
        names = sorted(os.listdir(directory))
    except OSError as exc:
        raise SourceError(f"{directory}: cannot list directory: {exc.strerror or exc}") from exc
    chosen: list[tuple[str, tuple[int, int], str]] = []
    subsets: list[tuple[str, tuple[int, int], str]] = []
    for name in names:
        path = os.path.join(directory, name)
        rotation = rotation_of(name)
        if rotation.base in _SUBSET_MAIL_LOGS:
            target = subsets
        elif rotation.base == MULTILOG_CURRENT:
            if not _is_multilog(path):
                continue
            target = chosen
        elif _is_mail_log(rotation.base):
            target = chosen
        elif rotation.base.endswith((".json", ".jsonl")) and _regular(path):
            if not looks_like_journal(path):
                continue
            target = chosen
        else:
            continue
        if _regular(path):
            target.append((rotation.base, rotation.rank, path))
    if not any(base in _FULL_MAIL_LOGS for base, _rank, _path in chosen):
        chosen.extend(subsets)
    chosen.sort()
    for sub in _multilog_subdirs(directory, _MULTILOG_DEPTH):
        found = []
        for name in os.listdir(sub):
            path = os.path.join(sub, name)
            rotation = rotation_of(name)
            if rotation.base == MULTILOG_CURRENT and _regular(path) and _is_multilog(path):
                found.append((rotation.base, rotation.rank, path))
        chosen.extend(sorted(found))
    if not chosen:
        raise SourceError(
            f"{directory}: no mail log files found (looked for mail.log*, maillog*, mail*.log*, "
            "dovecot*.log*, postfix*.log*, exim_mainlog*, mainlog*, mail.info*, journald *.json, "
            "multilog current)"
        )
    readable = []
    for _base, _rank, path in chosen:
        if os.access(path, os.R_OK):
            readable.append(path)
        else:
            stats.problem(f"{path}: not readable, skipped")
            stats.skip("unreadable_file")
    return readable


def plan(paths: Sequence[str], stats: ReadStats) -> list[list[str]]:
    """Group the inputs into series, each sorted oldest first; raise SourceError on a bad input.

    A file named twice (or reached twice through a link or a directory) is
    read once. Explicitly named files must be readable; files found in a
    directory that are not readable are reported and skipped.
    """
    series: dict[tuple[str, str], list[tuple[tuple[int, int], str]]] = {}
    seen: set[tuple[int, int]] = set()
    for name in paths:
        given = os.fspath(name)
        if given == "-":
            if ("", "-") not in series:
                series[("", "-")] = [((2, 0), "-")]
            continue
        try:
            status = os.stat(given)
        except OSError as exc:
            raise SourceError(f"{given}: {exc.strerror or exc}") from exc
        found = discover(given, stats) if stat.S_ISDIR(status.st_mode) else [_check_file(given)]
        for path in found:
            identity = _identity(path)
            if identity in seen:
                stats.problem(f"{path}: same file as an earlier input, read once")
                continue
            seen.add(identity)
            rotation = rotation_of(os.path.basename(path))
            key = (os.path.dirname(path), rotation.base)
            series.setdefault(key, []).append((rotation.rank, path))
    return [[path for _rank, path in sorted(files)] for files in series.values()]


def _identity(path: str) -> tuple[int, int]:
    try:
        status = os.stat(path)
    except OSError:
        return (-1, hash(path))
    return (status.st_dev, status.st_ino)


def _check_file(path: str) -> str:
    """Fail early, with a clear message, on a named file that cannot be read."""
    if not _regular(path):  # a pipe (<(zcat ...)) must not lose bytes to sniffing
        if not os.access(path, os.R_OK):
            raise SourceError(f"{path}: permission denied")
        return path
    try:
        kind = sniff(path)
    except OSError as exc:
        raise SourceError(f"{path}: {exc.strerror or exc}") from exc
    if kind in UNSUPPORTED:
        raise SourceError(f"{path}: {kind}-compressed, which this Python cannot read")
    return path


def default_log_paths(*, root: str = "/") -> list[str]:
    """Existing, readable mail logs where distributions and panels put them, in read order.

    Each log comes with its rotated siblings, oldest first. ``root`` exists
    for tests and for reading a mounted image of another system.
    """
    found: list[str] = []
    seen: set[tuple[int, int]] = set()

    def add_series(relative: str) -> bool:
        path = os.path.join(root, relative)
        if not _regular(path) or not os.access(path, os.R_OK):
            return False
        identity = _identity(path)
        if identity in seen:
            return True
        seen.add(identity)
        directory, name = os.path.split(path)
        try:
            names = os.listdir(directory)
        except OSError:
            names = []
        siblings = sorted(
            (rotation_of(other).rank, os.path.join(directory, other))
            for other in names
            if other != name and rotation_of(other).base == name
        )
        for _rank, sibling in siblings:
            if _regular(sibling) and os.access(sibling, os.R_OK) and _identity(sibling) not in seen:
                seen.add(_identity(sibling))
                found.append(sibling)
        found.append(path)
        return True

    primary = [add_series(relative) for relative in _DEFAULT_PRIMARY]
    if not any(primary):
        for relative in _DEFAULT_FALLBACK:
            add_series(relative)
    for relative in _DEFAULT_OTHER:
        add_series(relative)
    return found
