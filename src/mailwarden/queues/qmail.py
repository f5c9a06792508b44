"""qmail's queue, read straight from the queue directory (qmail has no listing tool that
prints envelopes in a machine-readable form).

The layout (qmail INTERNALS, section 2; qmail-queue(8)): a message is named by the inode
number of its ``mess`` file, and "split" directories spread the files over ``conf-split``
numbered subdirectories (23 by default; the subdirectory is the number modulo the split):

* ``mess/S/N``   the message as qmail-queue wrote it, with qmail-queue's own Received line on top;
* ``todo/N``, ``intd/N`` the envelope as qmail-queue wrote it (``u``uid, ``p``pid, ``F``sender,
  ``T``recipients, NUL-terminated) before qmail-send has preprocessed it (split with big-todo);
* ``info/S/N``   the envelope sender (``F`` + address + NUL) after preprocessing;
* ``local/S/N``, ``remote/S/N`` the recipients (``T`` + address + NUL, ``D`` once done);
* ``bounce/N``   permanent failures qmail-send has yet to report.

Reading changes nothing (files are opened read-only, never through a symlink). The arrival time
is the ``mess`` file's mtime: written once by qmail-queue and untouched until the message is
removed, so it is stable between two listings (qmail-qread shows ``info``'s mtime, the moment
qmail-send preprocessed the message -- normally the same second).

qmail has no hold: ``hold``/``release`` raise NotSupported. ``delete`` needs qmail-send stopped
(INTERNALS: qmail-send and qmail-clean own every state change of the queue; the community's
tools -- qmHandle, s/qmail's qmail-qmaint -- stop qmail-send first), see ``QmailQueue.delete``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import ipaddress
import os
import re
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from email import policy
from email.parser import BytesHeaderParser
from pathlib import Path

from mailwarden import _proc
from mailwarden.queues.attribution import MAX_HEADER_BYTES, unfold
from mailwarden.queues.base import (
    BackendInfo,
    HeaderBlock,
    MessageNotFound,
    NotSupported,
    QueuedMessage,
    QueueError,
    Recipient,
    split_headers,
)

DEFAULT_QUEUE = "/var/qmail/queue"
#: daemontools service directories where qmail-send is usually supervised (Life with qmail)
SERVICE_DIRS = ("/service/qmail-send", "/etc/service/qmail-send", "/var/service/qmail-send")
#: envelope files larger than this are not read (qmail-queue caps one address at 1003 bytes)
MAX_ENVELOPE_BYTES = 16 * 1024 * 1024
MAX_MESSAGE_BYTES = 1024 * 1024 * 1024
QUEUE_ID = re.compile(r"[1-9][0-9]{0,19}")
AUTH_PROTOCOLS = frozenset({"ESMTPA", "ESMTPSA", "SMTPA", "UTF8ESMTPA", "UTF8ESMTPSA"})

# qmail-queue.c: "Received: (qmail PID invoked by uid UID|from network|for bounce|by alias); DATE"
_QQ_RECEIVED = re.compile(r"^\(qmail \d{1,10} invoked (by uid (\d{1,10})|from network|for bounce|by alias)\)")
# received.c (qmail-smtpd): "from HOST (HELO H) (INFO@IP)\n  by LOCAL with PROTO; DATE"; every
# field goes through safeput(), which turns anything but [A-Za-z0-9.@%+/=:-] into '?'
_SMTPD_RECEIVED = re.compile(
    r"^from [^\s()]{1,1100}(?: \(HELO [^\s()]{0,1100}\))? \(([^\s()]{1,2200})\) by ([^\s()]{1,1100}) "
    r"with ([A-Za-z0-9]{1,32})"
)
_SAFE_HELO = re.compile(r"\(HELO ([^\s()]{1,255})\)")


def valid_id(qid: str) -> bool:
    return QUEUE_ID.fullmatch(qid) is not None


# ---------------------------------------------------------------------------------------------
# envelope files and qmail's own headers (sans-I/O)


def parse_envelope(data: bytes) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Records of an info/local/remote/todo file: ({'u': uid, 'p': pid, 'F': sender},
    [(letter, address) for T/D records]) -- NUL-terminated records, one letter first."""
    head: dict[str, str] = {}
    addrs: list[tuple[str, str]] = []
    for rec in data.split(b"\0"):
        if not rec:
            continue
        letter, value = chr(rec[0]), rec[1:1004].decode("utf-8", "surrogateescape")
        if letter in "TD":
            addrs.append((letter, value))
        elif letter in "upF" and letter not in head:
            head[letter] = value
    return head, addrs


def received_headers(header_bytes: bytes) -> list[str]:
    parsed = BytesHeaderParser(policy=policy.compat32).parsebytes(header_bytes[:MAX_HEADER_BYTES])
    out = []
    for name, raw in parsed.raw_items():
        if str(name).lower() == "received":
            text = raw if isinstance(raw, str) else str(raw)
            out.append(unfold(text.encode("ascii", "surrogateescape").decode("utf-8", "replace")))
    return out


def qmail_facts(header_bytes: bytes) -> dict[str, str]:
    """What qmail itself wrote on top of a message, as envelope facts for attribution.

    qmail-queue always prepends ``Received: (qmail PID invoked ...)`` (qmail-queue(8)), so the
    topmost Received header is ours by position. ``invoked by uid U`` is a local submission by
    uid U (a web script's ``mail()`` shows up this way). ``invoked from network`` means
    qmail-smtpd (running as qmaild) queued it, and qmail-smtpd writes its own Received line first
    in the data it hands over, so the second header is ours too: it gives the client address, and
    the login when the protocol says authenticated (auth patches set ``ESMTPA`` and put the
    login where the ident answer goes; without them that slot is TCPREMOTEINFO or the MAIL FROM
    ``AUTH=`` value, which the client chooses, so it is never read as a login otherwise).
    """
    received = received_headers(header_bytes)
    if not received:
        return {}
    m = _QQ_RECEIVED.match(received[0])
    if m is None:
        return {}
    facts = {"trusted_received": "0"}
    if m.group(2) is not None:
        facts["local_uid"] = m.group(2)
        return facts
    if m.group(1) != "from network" or len(received) < 2:
        return facts
    s = _SMTPD_RECEIVED.match(received[1])
    if s is None:
        return facts
    info, _, addr = s.group(1).rpartition("@")
    try:
        client = str(ipaddress.ip_address(addr))
    except ValueError:
        return facts
    facts["trusted_received"] = "1"
    facts["client_address"] = client
    if (h := _SAFE_HELO.search(received[1][: s.start(1)])) is not None:
        facts["helo_name"] = h.group(1)
    if info and s.group(3).upper() in AUTH_PROTOCOLS:
        facts["sasl_username"] = info[:320]
    return facts


# ---------------------------------------------------------------------------------------------
# safe file access


def _read(path: Path, cap: int) -> bytes | None:
    """Contents of a regular file (at most ``cap`` bytes; None when it does not exist).
    Never follows a symlink; raises QueueError for anything that is not a regular file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise QueueError(f"{path}: is a symlink; refusing to follow it") from exc
        raise QueueError(f"{path}: {exc.strerror}") from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise QueueError(f"{path}: not a regular file")
        chunks: list[bytes] = []
        left = cap
        while left > 0:
            chunk = os.read(fd, min(left, 1024 * 1024))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _numeric_entries(directory: Path, *, dirs: bool) -> Iterator[tuple[int, Path]]:
    """(number, path) of the entries with decimal names that are directories (or, with
    ``dirs=False``, anything else: a symlink is then refused, and noted, when it is read)."""
    try:
        with os.scandir(directory) as it:
            for e in it:
                if not (e.name.isascii() and e.name.isdigit()):
                    continue
                if e.is_dir(follow_symlinks=False) == dirs:
                    yield int(e.name), Path(e.path)
    except FileNotFoundError:
        return


@dataclass(frozen=True, slots=True)
class SendState:
    """Whether qmail-send is running, and how we know."""

    state: str  # "running", "stopped" (proven) or "unknown"
    evidence: tuple[str, ...] = ()


class QmailQueue:
    """A qmail queue directory (``/var/qmail/queue`` unless told otherwise)."""

    def __init__(
        self,
        queue_dir: str | os.PathLike[str] | None = None,
        *,
        i_stopped_qmail_send: bool = False,
        proc_dir: str | os.PathLike[str] = "/proc",
        service_dirs: Sequence[str] = SERVICE_DIRS,
        timeout: float = 60.0,
    ) -> None:
        self.dir = Path(queue_dir or DEFAULT_QUEUE)
        self.i_stopped_qmail_send = i_stopped_qmail_send
        self.proc_dir = Path(proc_dir)
        self.service_dirs = tuple(service_dirs)
        self.timeout = timeout
        self.problems: list[str] = []
        self._split: int | None = None
        self._info: BackendInfo | None = None
        self._lock_fd: int | None = None
        self._deleted_any = False

    # -- layout -----------------------------------------------------------------------------

    @property
    def split(self) -> int:
        """conf-split, read from the queue itself: mess/ holds the subdirectories 0 .. split-1."""
        if self._split is None:
            if not (self.dir / "mess").is_dir():
                raise QueueError(f"{self.dir}: not a qmail queue (no mess/ directory)")
            numbers = sorted(n for n, _ in _numeric_entries(self.dir / "mess", dirs=True))
            if not numbers or numbers != list(range(len(numbers))):
                raise QueueError(
                    f"{self.dir}/mess: subdirectories {numbers[:10]} are not 0 .. split-1; "
                    "is this a qmail queue? (queue-repair can fix a damaged one)"
                )
            self._split = len(numbers)
        return self._split

    def _path(self, kind: str, n: int, *, split: bool = True) -> Path:
        return self.dir / kind / str(n % self.split) / str(n) if split else self.dir / kind / str(n)

    def _todo_paths(self, kind: str, n: int) -> list[Path]:
        """todo/ and intd/ are flat in qmail 1.03, split with the big-todo patch: look in both."""
        return [self._path(kind, n, split=False), self._path(kind, n)]

    def _ids_in(self, kind: str) -> Iterator[int]:
        base = self.dir / kind
        for n, path in _numeric_entries(base, dirs=True):
            for qid, _ in _numeric_entries(path, dirs=False):
                if kind in ("todo", "intd") or qid % self.split == n:
                    yield qid
                elif len(self.problems) < 100:
                    self.problems.append(f"{kind}/{n}/{qid}: in the wrong split directory; skipped")
        if kind in ("todo", "intd"):
            for qid, _ in _numeric_entries(base, dirs=False):
                yield qid

    # -- reading ----------------------------------------------------------------------------

    def describe(self) -> BackendInfo:
        if self._info is None:
            me = None
            with contextlib.suppress(QueueError):
                me = _read(self.dir.parent / "control" / "me", 1024)
            name = me.decode("ascii", "replace").strip().lower() if me else ""
            self._info = BackendInfo(
                mta="qmail",
                config=str(self.dir.parent),
                queue_dir=str(self.dir),
                our_names=(name,) if name else (),
                can=frozenset({"read", "delete"}),
                notes=(
                    "qmail has no hold/release",
                    "delete needs qmail-send stopped (svc -d /service/qmail-send), see docs/queue.md",
                ),
            )
        return self._info

    def _message(self, qid: int, queue: str, envelope: bytes | None) -> QueuedMessage | None:
        try:
            st = os.lstat(self._path("mess", qid))
        except FileNotFoundError:
            return None
        if not stat.S_ISREG(st.st_mode):
            self.problems.append(f"mess/{qid % self.split}/{qid}: not a regular file; skipped")
            return None
        if st.st_ino != qid and len(self.problems) < 100:
            self.problems.append(
                f"mess/{qid % self.split}/{qid} has inode {st.st_ino}: queue copied without queue-repair?"
            )
        head, addrs = parse_envelope(envelope or b"")
        rcpts: list[str] = [a for letter, a in addrs if letter == "T"]
        if queue != "todo":
            rcpts = []
            pending = {}
            for channel in ("remote", "local"):
                data = _read(self._path(channel, qid), MAX_ENVELOPE_BYTES)
                pending[channel] = [a for letter, a in parse_envelope(data or b"")[1] if letter == "T"]
                rcpts += pending[channel]
            if pending["remote"]:
                queue = "remote"
            elif pending["local"]:
                queue = "local"
            elif os.path.lexists(self._path("bounce", qid, split=False)):
                queue = "bounce"
            else:
                queue = "done"  # every recipient DONE: qmail-send removes it shortly
        sender = head.get("F", "")
        return QueuedMessage(
            id=str(qid),
            queue=queue,
            arrival=int(st.st_mtime),
            size=st.st_size,
            sender=sender,
            recipients=tuple(Recipient(a) for a in rcpts),
        )

    def list_messages(self) -> Iterator[QueuedMessage]:
        """Messages not yet preprocessed (todo/, intd/: queue ``todo``), then the preprocessed ones
        (info/: queue ``remote``, ``local``, ``bounce`` or ``done``)."""
        seen: set[int] = set()
        for kind in ("todo", "intd"):
            for qid in self._ids_in(kind):
                if qid in seen:
                    continue
                envelope = None
                for path in self._todo_paths(kind, qid):
                    with contextlib.suppress(QueueError):
                        envelope = _read(path, MAX_ENVELOPE_BYTES)
                    if envelope is not None:
                        break
                msg = self._safely(qid, "todo", envelope)
                if msg is not None:
                    seen.add(qid)
                    yield msg
        for qid in self._ids_in("info"):
            if qid not in seen:
                msg = self._safely(qid, "", None)
                if msg is not None:
                    yield msg

    def _safely(self, qid: int, queue: str, envelope: bytes | None) -> QueuedMessage | None:
        """One message, or None (with a note in ``problems``) when one of its files is odd."""
        try:
            if queue != "todo":
                envelope = _read(self._path("info", qid), MAX_ENVELOPE_BYTES)
            return self._message(qid, queue, envelope)
        except QueueError as exc:
            if len(self.problems) < 100:
                self.problems.append(f"message {qid}: {exc}; skipped")
            return None

    def _check(self, qid: str) -> int:
        if not valid_id(qid):
            raise QueueError(f"not a qmail message number: {qid!r}")
        return int(qid)

    def read(self, qid: str) -> bytes:
        data = _read(self._path("mess", self._check(qid)), MAX_MESSAGE_BYTES)
        if data is None:
            raise MessageNotFound(qid)
        return data

    def read_headers(self, ids: Sequence[str]) -> Iterator[HeaderBlock]:
        for qid in ids:
            if not valid_id(qid):
                continue
            try:
                data = _read(self._path("mess", int(qid)), MAX_HEADER_BYTES)
            except QueueError as exc:
                self.problems.append(str(exc))
                continue
            if data is None:
                continue
            head, _ = split_headers(data)
            yield HeaderBlock(qid, head, qmail_facts(head))

    # -- changing ---------------------------------------------------------------------------

    def hold(self, ids: Sequence[str]) -> list[str]:
        raise NotSupported(
            "qmail has no hold: qmail-send delivers whatever is in the queue. Stop qmail-send "
            "(svc -d /service/qmail-send) while you decide, or delete the messages (see docs/queue.md)"
        )

    def release(self, ids: Sequence[str]) -> list[str]:
        raise NotSupported("qmail has no hold, so there is nothing to release")

    def send_state(self, lock_fd: int | None = None) -> SendState:
        """Evidence that qmail-send is (not) running: its lock, running processes, svstat."""
        running: list[str] = []
        stopped: list[str] = []
        if lock_fd is not None:
            stopped.append(f"we hold {self.dir}/lock/sendmutex, which a running qmail-send keeps locked")
        for pid, comm in self._processes():
            if comm == "qmail-send":
                running.append(f"process {pid} is qmail-send")
        svstat = _proc.which("svstat")
        for sdir in self.service_dirs:
            if svstat is None or not os.path.isdir(sdir):
                continue
            try:
                res = _proc.run([svstat, sdir], timeout=self.timeout, check=False)
            except _proc.ProcError:
                continue
            text = res.text().strip()
            if ": up " in text:
                running.append(f"svstat {sdir}: {text[:120]}")
            elif ": down " in text:
                stopped.append(f"svstat {sdir}: {text[:120]}")
        if running:
            return SendState("running", tuple(running))
        if lock_fd is not None:
            return SendState("stopped", tuple(stopped))
        if stopped and self.proc_dir.is_dir():
            # supervise says down and no process of that name: stopped, as far as we can see
            return SendState("stopped", (*stopped, f"no qmail-send process in {self.proc_dir}"))
        return SendState("unknown", tuple(stopped))

    def _processes(self) -> Iterator[tuple[str, str]]:
        for pid, path in _numeric_entries(self.proc_dir, dirs=True):
            try:
                comm = (path / "comm").read_bytes()[:64].decode("ascii", "replace").strip()
            except OSError:
                continue
            yield str(pid), comm

    def _lock(self) -> int | None:
        """Take lock/sendmutex like qmail-send does at start (flock, or lockf on systems without
        it -- both are tried); returns the fd, None when the lock file cannot be opened.
        Raises QueueError when the lock is held: qmail-send is running."""
        path = self.dir / "lock" / "sendmutex"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise QueueError(
                    f"qmail-send is running ({path} is locked): stop it first "
                    "(svc -d /service/qmail-send, or your init system's qmail stop), then run again"
                ) from exc
            return None
        return fd

    def delete(self, ids: Sequence[str]) -> list[str]:
        """Remove messages -- only while qmail-send is stopped.

        qmail-send must be stopped: it keeps the queue's state in memory and would go on
        delivering (or trip over) a message whose files vanish. We take ``lock/sendmutex`` the
        way qmail-send does at start: if it is held, qmail-send runs and nothing is deleted; if we
        get it, qmail-send is not running -- and cannot start until this backend is closed (the
        lock is kept from the first delete on, so every batch of a long delete is covered). Any
        other sign of a running qmail-send (a process of that name, ``svstat`` saying up) also
        refuses. When the lock cannot be opened (not root?) and nothing else shows the state,
        deletion needs ``--i-stopped-qmail-send``. Files go in the order that leaves a state
        qmail-send cleans up by itself if we are interrupted (INTERNALS 6): todo, intd, remote,
        local, bounce, info, and mess last.

        The first refusal raises QueueError (nothing deleted). A later batch that finds qmail-send
        running (possible only without the lock) removes nothing and returns [] with a note in
        ``problems``, so what earlier batches deleted is still reported and audited.
        """
        numbers = [self._check(q) for q in ids]
        if not numbers:
            return []
        if self._lock_fd is None:
            self._lock_fd = self._lock()
        state = self.send_state(self._lock_fd)
        refusal = ""
        if state.state == "running":
            refusal = (
                "qmail-send is running (" + "; ".join(state.evidence) + "): stop it first "
                "(svc -d /service/qmail-send), then run again"
            )
        elif state.state == "unknown" and not self.i_stopped_qmail_send:
            refusal = (
                f"cannot tell whether qmail-send is stopped ({self.dir}/lock/sendmutex cannot be "
                "opened: run as root?). Stop it and add --i-stopped-qmail-send"
            )
        if refusal:
            if not self._deleted_any:
                raise QueueError(refusal + "; nothing was deleted")
            self.problems.append(refusal + f"; {len(numbers)} message(s) left alone")
            return []
        removed = [str(n) for n in numbers if self._remove(n)]
        self._deleted_any = self._deleted_any or bool(removed)
        return removed

    def close(self) -> None:
        """Release lock/sendmutex (qmail-send can start again)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _remove(self, n: int) -> bool:
        mess = self._path("mess", n)
        try:
            if not stat.S_ISREG(os.lstat(mess).st_mode):
                self.problems.append(f"{mess}: not a regular file; left alone")
                return False
        except FileNotFoundError:
            return False
        paths = [
            *self._todo_paths("todo", n),
            *self._todo_paths("intd", n),
            self._path("remote", n),
            self._path("local", n),
            self._path("bounce", n, split=False),
            self._path("bounce", n),
            self._path("info", n),
            mess,
        ]
        for path in paths:
            try:
                os.unlink(path)
            except FileNotFoundError:
                continue
            except OSError as exc:
                self.problems.append(f"{path}: {exc.strerror}; message {n} only partly removed")
                return False
        return True

    def reinject(self, data: bytes, sender: str, recipients: Sequence[str]) -> None:
        """Queue a message again with qmail-inject: ``-f SENDER`` and ``-a`` (the recipients given,
        not the header's). qmail-inject may add header fields (qmail-header(5)); it gets a new
        number."""
        if not recipients:
            raise QueueError("no recipients to deliver to")
        bad = [r for r in (sender, *recipients) if r.startswith("-") or any(ch.isspace() for ch in r)]
        if bad:
            raise QueueError(f"refusing address that looks like an option: {bad[0]!r}")
        exe = _proc.which("qmail-inject")
        if exe is None:
            raise QueueError("qmail-inject not found")
        try:
            _proc.run([exe, "-a", f"-f{sender}", "--", *recipients], stdin=data, timeout=self.timeout)
        except _proc.ProcError as exc:
            raise QueueError(str(exc)) from exc
