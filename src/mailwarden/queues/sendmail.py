"""Sendmail's queue, read from the queue directory (Sendmail Installation and Operation Guide,
"Queue file formats" and "Quarantined Queue Items"; sendmail(8)).

Each message is a set of files named ``ttID``: ``qf`` the control file (envelope, status and the
headers), ``df`` the body, ``xf`` a transcript; a *quarantined* message has its control file
named ``hf`` instead of ``qf`` (listed here as queue ``hold``), and ``Qf`` is a "lost" control
file Sendmail gave up on (queue ``lost``). ``qf/``, ``df/`` and ``xf/`` subdirectories of the
queue directory are used when present.

Control file lines used here: ``V`` version, ``T`` creation time (the arrival), ``K`` last attempt,
``N`` attempts, ``S`` sender, ``R<flags>:<address>`` one undelivered recipient (Sendmail writes
only those), ``M`` status text (before ``S``: the envelope's; after it: the next recipient's),
``q`` quarantine reason, ``d`` the df file's directory, ``A`` the trusted ``AUTH=`` value,
``$x``/``${name}`` persistent macros (``$_`` who connected, ``$r`` protocol, ``$s`` HELO) and
``H?flags?Name: value`` headers; continuation lines start with white space; ``.`` ends the file.

Sendmail rewrites a control file by writing ``tfID`` and renaming it over the old one, so a
reader always sees a whole file and no lock is needed to read. To change a message Sendmail
locks its control file (fcntl on Linux, flock where Sendmail was built with it); ``delete``
takes the same locks (both kinds) and leaves alone any message that is locked: it is being
delivered. ``hold``/``release`` run the sendmail binary (``-Q``), which does its own locking.
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
from dataclasses import dataclass, field
from pathlib import Path

from mailwarden import _proc
from mailwarden.queues.base import (
    BackendInfo,
    HeaderBlock,
    MessageNotFound,
    QueuedMessage,
    QueueError,
    Recipient,
)

DEFAULT_QUEUE = "/var/spool/mqueue"
HOLD_REASON = "held by mailwarden"
#: control files larger than this are not read (a qf holds headers and recipients, not the body)
MAX_CONTROL_BYTES = 16 * 1024 * 1024
MAX_BODY_BYTES = 1024 * 1024 * 1024
#: ids per sendmail -Q run (one -qI per id)
ACT_BATCH = 100
QUEUE_ID = re.compile(r"[0-9A-Za-z]{8,40}")
_CONTROL_NAME = re.compile(r"([qhQ])f([0-9A-Za-z]{8,40})")
_KINDS = {"q": "queue", "h": "hold", "Q": "lost"}
AUTH_PROTOCOLS = frozenset({"ESMTPA", "ESMTPSA", "UTF8ESMTPA", "UTF8ESMTPSA"})
_RCPT = re.compile(r"([A-Za-z]{0,16}):(.*)", re.DOTALL)
_MACRO = re.compile(r"(?:\{([A-Za-z0-9_]{1,64})\}|([^{]))(.*)", re.DOTALL)
# $_ as getauthinfo() builds it: "USER@localhost" (local submission: the real uid's login name)
# or "[IDENT@]HOST [ADDR]" with " (may be forged)" when the name's forward lookup failed
_AUTHINFO_LOCAL = re.compile(r"([^\s@\[\]()<>]{1,64})@localhost")
_AUTHINFO_ADDR = re.compile(r"\[(?:IPv6:)?([0-9A-Fa-f:.]{2,45})\](?: \(may be forged\))?")
_VERSION = re.compile(r"^Version (8\.[0-9][0-9A-Za-z.]*)", re.MULTILINE)


def valid_id(qid: str) -> bool:
    return QUEUE_ID.fullmatch(qid) is not None


def xtext_decode(value: str) -> str:
    """RFC 3461 xtext (``+40`` is ``@``), as Sendmail writes the ``A`` line."""

    def one(m: re.Match[str]) -> str:
        return chr(int(m.group(1), 16))

    return re.sub(r"\+([0-9A-Fa-f]{2})", one, value)


@dataclass(slots=True)
class ControlFile:
    """A parsed qf/hf/Qf file."""

    qid: str
    kind: str  # "q", "h" or "Q"
    version: int = 0
    ctime: int | None = None
    last_attempt: int | None = None
    tries: int = 0
    sender: str = ""
    status: str = ""
    quarantine: str = ""
    df_dir: str = ""
    auth_param: str = ""
    recipients: list[Recipient] = field(default_factory=list)
    macros: dict[str, str] = field(default_factory=dict)
    headers: list[bytes] = field(default_factory=list)  # "Name: value\n" with continuations
    complete: bool = False  # the "." terminator was seen

    def header_bytes(self) -> bytes:
        return b"".join(self.headers)

    def received(self) -> list[str]:
        out = []
        for h in self.headers:
            name, sep, value = h.partition(b":")
            if sep and name.strip().lower() == b"received":
                text = value.decode("utf-8", "replace")
                out.append(" ".join(text.split()))
        return out


def _records(data: bytes) -> Iterator[tuple[str, bytes]]:
    """(letter, rest) per record; continuation lines (leading white space) stay in the record."""
    letter = ""
    rest: list[bytes] = []
    for line in data.split(b"\n"):
        if line[:1] in (b" ", b"\t") and letter:
            rest.append(b"\n" + line)
            continue
        if letter:
            yield letter, b"".join(rest)
        if line == b".":
            yield ".", b""
            return
        letter, rest = (chr(line[0]), [line[1:]]) if line else ("", [])
    if letter:
        yield letter, b"".join(rest)


def parse_control(data: bytes, qid: str, kind: str = "q") -> ControlFile:
    """A control file's lines -> ControlFile (unknown lines are ignored, as Sendmail's own
    reader ignores lines of later versions it does not know)."""
    cf = ControlFile(qid, kind)
    seen_sender = False
    pending: str | None = None  # the M line that belongs to the next R line

    def text(b: bytes) -> str:
        return b.decode("utf-8", "replace")

    def number(b: bytes) -> int | None:
        t = b.strip()
        return int(t) if t.isdigit() and len(t) <= 12 else None

    for letter, rest in _records(data):
        if letter == ".":
            cf.complete = True
            break
        if letter == "V":
            cf.version = number(rest) or 0
        elif letter == "T":
            cf.ctime = number(rest)
        elif letter == "K":
            cf.last_attempt = number(rest)
        elif letter == "N":
            cf.tries = number(rest) or 0
        elif letter == "S":
            cf.sender = text(rest).strip()[:1000]
            if cf.sender.startswith("<") and cf.sender.endswith(">"):
                cf.sender = cf.sender[1:-1]
            seen_sender = True
        elif letter == "M":
            msg = " ".join(text(rest).split())[:1000]
            if seen_sender:
                pending = msg
            else:
                cf.status = msg
        elif letter == "R":
            addr = text(rest)
            m = _RCPT.fullmatch(addr)
            if m is not None and cf.version >= 1:
                addr = m.group(2)
            reason = pending if pending is not None else cf.status
            cf.recipients.append(Recipient(addr.strip()[:1000], reason))
            pending = None
        elif letter == "q":
            cf.quarantine = " ".join(text(rest).split())[:1000]
        elif letter == "d":
            cf.df_dir = text(rest).strip()[:1000]
        elif letter == "A":
            cf.auth_param = text(rest).strip()[:1000]
        elif letter == "$":
            mm = _MACRO.fullmatch(text(rest))
            if mm is not None:
                cf.macros.setdefault(mm.group(1) or mm.group(2), mm.group(3)[:1000])
        elif letter == "H":
            header = rest
            if header.startswith(b"?"):
                end = header.find(b"?", 1)
                if end < 0:
                    continue
                header = header[end + 1 :]
            if b"\x81" in header:  # unexpanded macro: a header Sendmail builds at delivery time
                continue
            cf.headers.append(header + b"\n")
    return cf


def sendmail_facts(cf: ControlFile) -> dict[str, str]:
    """Envelope facts for attribution, from what Sendmail itself recorded in the control file.

    * our Received header is the topmost one that names this queue id (``... id QID``):
      Sendmail writes it when it accepts the message; anything below was written by the sender;
    * ``$_`` is ``USER@localhost`` for a local submission (the real uid's login name) and
      ``HOST [ADDR]`` for a connection (the address comes from the socket);
    * the login: ``${auth_authen}`` when the site keeps it, else the ``A`` line (the ``AUTH=``
      value the ``trust_auth`` ruleset accepted: by default only the authenticated identity
      itself) when ``$r`` says the session authenticated (``ESMTPA``/``ESMTPSA``).
    """
    facts: dict[str, str] = {}
    want = re.compile(rf"(?:^|\s)id {re.escape(cf.qid)}(?:[;\s]|$)")
    for i, value in enumerate(cf.received()):
        if want.search(value):
            facts["trusted_received"] = str(i)
            break
    authinfo = cf.macros.get("_", "").strip()
    if (m := _AUTHINFO_LOCAL.fullmatch(authinfo)) is not None:
        facts["local_user"] = m.group(1)
    elif (m2 := _AUTHINFO_ADDR.search(authinfo)) is not None and m2.end() == len(authinfo):
        with contextlib.suppress(ValueError):
            facts["client_address"] = str(ipaddress.ip_address(m2.group(1)))
    login = cf.macros.get("auth_authen", "").strip()
    protocol = cf.macros.get("r", "").strip().upper()
    if not login and protocol in AUTH_PROTOCOLS and cf.auth_param not in ("", "<>"):
        login = xtext_decode(cf.auth_param)
    if login:
        facts["sasl_username"] = login[:320]
    if helo := cf.macros.get("s", "").strip():
        facts["helo_name"] = helo[:255]
    return facts


# ---------------------------------------------------------------------------------------------


def _open(path: Path, flags: int) -> int | None:
    """An fd for a regular file (never through a symlink), None when it does not exist."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise QueueError(f"{path}: {exc.strerror}") from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise QueueError(f"{path}: not a regular file")
    return fd


def _read(path: Path, cap: int) -> bytes | None:
    fd = _open(path, os.O_RDONLY)
    if fd is None:
        return None
    try:
        chunks: list[bytes] = []
        left = cap + 1
        while left > 0 and (chunk := os.read(fd, min(left, 1024 * 1024))):
            chunks.append(chunk)
            left -= len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > cap:
        raise QueueError(f"{path}: larger than {cap} bytes; not read")
    return data


class SendmailQueue:
    """A Sendmail queue directory (``/var/spool/mqueue`` unless told otherwise; the MSP's
    ``/var/spool/clientmqueue`` works too)."""

    def __init__(
        self,
        queue_dir: str | os.PathLike[str] | None = None,
        *,
        binary: str | None = None,
        timeout: float = 120.0,
    ) -> None:
        self.explicit_dir = queue_dir is not None
        self.dir = Path(queue_dir or DEFAULT_QUEUE)
        self.binary = binary if binary is not None else (_proc.which("sendmail") or "")
        self.timeout = timeout
        self.problems: list[str] = []
        self._version: str | None = None
        self._info: BackendInfo | None = None
        self._subdirs: dict[str, Path] = {}

    def _sub(self, name: str) -> Path:
        """The qf/, df/ or xf/ subdirectory when the queue has one, else the queue directory."""
        if name not in self._subdirs:
            sub = self.dir / name
            self._subdirs[name] = sub if sub.is_dir() and not sub.is_symlink() else self.dir
        return self._subdirs[name]

    # -- reading ----------------------------------------------------------------------------

    def sendmail_version(self) -> str:
        """Sendmail's version ('' when the binary is missing or is another MTA's sendmail)."""
        if self._version is None:
            self._version = ""
            if self.binary:
                try:
                    res = _proc.run([self.binary, "-d0.1", "-bt"], stdin=b"", timeout=30, check=False)
                    if (m := _VERSION.search(res.text())) is not None:
                        self._version = m.group(1)
                except _proc.ProcError:
                    pass
        return self._version

    def describe(self) -> BackendInfo:
        if self._info is None:
            version = self.sendmail_version()
            can = {"read", "delete"} | ({"hold", "release"} if version else set())
            notes = ["hold = quarantine (sendmail -Q); delete leaves locked (in-delivery) messages alone"]
            if not version:
                notes.append(f"no Sendmail binary ({self.binary or 'sendmail not found'}): no hold/release")
            self._info = BackendInfo(
                mta="sendmail",
                version=version,
                config="/etc/mail/sendmail.cf",
                queue_dir=str(self.dir),
                can=frozenset(can),
                notes=tuple(notes),
            )
        return self._info

    def _control_files(self) -> Iterator[tuple[str, str, Path]]:
        """(id, kind letter, path) of every control file, qf before hf before Qf per id."""
        found: dict[str, tuple[str, Path]] = {}
        rank = {"q": 0, "h": 1, "Q": 2}
        try:
            with os.scandir(self._sub("qf")) as it:
                for e in it:
                    m = _CONTROL_NAME.fullmatch(e.name)
                    if m is None or not e.is_file(follow_symlinks=False):
                        continue
                    kind, qid = m.group(1), m.group(2)
                    if qid in found:
                        if len(self.problems) < 100:
                            self.problems.append(f"{qid}: more than one control file ({kind}f too)")
                        if rank[kind] >= rank[found[qid][0]]:
                            continue
                    found[qid] = (kind, Path(e.path))
        except FileNotFoundError as exc:
            raise QueueError(f"{self.dir}: no such queue directory") from exc
        for qid, (kind, path) in sorted(found.items()):
            yield qid, kind, path

    def _control(self, qid: str) -> tuple[ControlFile, Path] | None:
        base = self._sub("qf")
        for kind in ("q", "h", "Q"):
            path = base / f"{kind}f{qid}"
            data = _read(path, MAX_CONTROL_BYTES)
            if data is not None:
                return parse_control(data, qid, kind), path
        return None

    def _df_path(self, cf: ControlFile) -> Path:
        if not cf.df_dir or cf.df_dir == ".":
            return self._sub("df") / f"df{cf.qid}"
        d = cf.df_dir
        if d.startswith("/") or ".." in Path(d).parts or not re.fullmatch(r"[A-Za-z0-9._/-]{1,255}", d):
            raise QueueError(f"{cf.qid}: refusing data file directory {d!r}")
        # the d record names a queue directory relative to the queue root (ours or our parent)
        for root in (self.dir, self.dir.parent):
            cand = root / d
            if cand.is_dir():
                sub = cand / "df"
                return (sub if sub.is_dir() else cand) / f"df{cf.qid}"
        raise QueueError(f"{cf.qid}: data file directory {d!r} not found")

    def list_messages(self) -> Iterator[QueuedMessage]:
        for qid, kind, path in self._control_files():
            try:
                data = _read(path, MAX_CONTROL_BYTES)
                if data is None:
                    continue  # delivered meanwhile
                cf = parse_control(data, qid, kind)
                try:
                    size = os.stat(self._df_path(cf), follow_symlinks=False).st_size
                except FileNotFoundError:
                    size = 0
                ctime = cf.ctime if cf.ctime is not None else int(os.stat(path).st_mtime)
            except (QueueError, OSError) as exc:
                if len(self.problems) < 100:
                    self.problems.append(f"{qid}: {exc}; skipped")
                continue
            if not cf.complete and len(self.problems) < 100:
                self.problems.append(f"{qid}: control file has no '.' terminator (being written?)")
            yield QueuedMessage(
                id=qid,
                queue=_KINDS[kind],
                arrival=ctime,
                size=size,
                sender=cf.sender,
                recipients=tuple(cf.recipients),
            )

    def _check(self, qid: str) -> None:
        if not valid_id(qid):
            raise QueueError(f"not a Sendmail queue id: {qid!r}")

    def read(self, qid: str) -> bytes:
        self._check(qid)
        found = self._control(qid)
        if found is None:
            raise MessageNotFound(qid)
        cf, _ = found
        body = _read(self._df_path(cf), MAX_BODY_BYTES)
        if body is None:
            raise MessageNotFound(qid)
        return cf.header_bytes() + b"\n" + body

    def read_headers(self, ids: Sequence[str]) -> Iterator[HeaderBlock]:
        for qid in ids:
            if not valid_id(qid):
                continue
            try:
                found = self._control(qid)
            except QueueError as exc:
                self.problems.append(str(exc))
                continue
            if found is not None:
                yield HeaderBlock(qid, found[0].header_bytes(), sendmail_facts(found[0]))

    # -- changing ---------------------------------------------------------------------------

    def _states(self) -> dict[str, str]:
        return {qid: kind for qid, kind, _ in self._control_files()}

    def _quarantine(self, ids: Sequence[str], *, hold: bool) -> list[str]:
        for qid in ids:
            self._check(qid)
        if not ids:
            return []
        if not self.sendmail_version():
            raise QueueError(
                f"{self.binary or 'sendmail'} is not Sendmail's binary (or is missing): "
                "cannot quarantine/unquarantine"
            )
        states = self._states()
        want = "q" if hold else "h"
        todo: list[str] = []
        for qid in ids:
            # -qI matches SUBSTRINGS of queue ids: an id inside a longer one would act on both
            others = [o for o in states if o != qid and qid in o]
            if states.get(qid) != want:
                continue
            if others:
                self.problems.append(
                    f"{qid}: also part of queue id {others[0]}; left alone (-qI is a substring)"
                )
                continue
            todo.append(qid)
        opts = ["-OQueueDirectory=" + str(self.dir)] if self.explicit_dir else []
        for start in range(0, len(todo), ACT_BATCH):
            batch = todo[start : start + ACT_BATCH]
            mode = [f"-Q{HOLD_REASON}"] if hold else ["-qQ", "-Q"]
            argv = [self.binary, *opts, *mode, *(f"-qI{q}" for q in batch)]
            try:
                _proc.run(argv, timeout=self.timeout)
            except _proc.ProcError as exc:
                raise QueueError(str(exc)) from exc
        after = self._states()
        done = "h" if hold else "q"
        return [q for q in todo if after.get(q) == done]

    def hold(self, ids: Sequence[str]) -> list[str]:
        """Quarantine (``sendmail -Q'held by mailwarden' -qIID ...``); returns the ids whose control
        file is an ``hf`` file afterwards."""
        return self._quarantine(ids, hold=True)

    def release(self, ids: Sequence[str]) -> list[str]:
        """Unquarantine (``sendmail -qQ -Q -qIID ...``); returns the ids that have a ``qf`` again."""
        return self._quarantine(ids, hold=False)

    def delete(self, ids: Sequence[str]) -> list[str]:
        """Remove control, data and transcript files of messages no Sendmail process has locked.

        Per message: open its control file read-write and take an exclusive lock without
        waiting, with fcntl (what Sendmail uses on Linux) and flock (what it uses where it was
        built with HASFLOCK); if either is refused a Sendmail process is working on the message
        and it is left alone. With the locks held, check the name still points at the file we
        locked (Sendmail renames a rewritten tf file over it), then remove the control file first
        -- without it Sendmail no longer knows the message; an interrupted delete leaves at most
        an orphan df file -- then df and xf.
        """
        for qid in ids:
            self._check(qid)
        removed = []
        for qid in ids:
            if self._remove(qid):
                removed.append(qid)
        return removed

    def _remove(self, qid: str) -> bool:
        base = self._sub("qf")
        for kind in ("q", "h", "Q"):
            path = base / f"{kind}f{qid}"
            try:
                fd = _open(path, os.O_RDWR)
            except QueueError as exc:
                self.problems.append(f"{qid}: {exc}; left alone")
                return False
            if fd is None:
                continue
            try:
                try:
                    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as exc:
                    if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                        self.problems.append(
                            f"{qid}: locked by a Sendmail process (being delivered); left alone"
                        )
                        return False
                    raise
                held = os.fstat(fd)
                try:
                    now = os.stat(path, follow_symlinks=False)
                except FileNotFoundError:
                    return False
                if (now.st_dev, now.st_ino) != (held.st_dev, held.st_ino):
                    self.problems.append(f"{qid}: control file replaced while locking; left alone")
                    return False
                data = os.pread(fd, min(held.st_size, MAX_CONTROL_BYTES), 0)
                cf = parse_control(data, qid, kind)
                try:
                    df = self._df_path(cf)
                except QueueError as exc:
                    self.problems.append(f"{exc}; left alone")
                    return False
                os.unlink(path)
                for extra in (df, self._sub("xf") / f"xf{qid}"):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(extra)
                return True
            except OSError as exc:
                self.problems.append(f"{qid}: {exc.strerror}; left alone")
                return False
            finally:
                os.close(fd)
        return False

    def reinject(self, data: bytes, sender: str, recipients: Sequence[str]) -> None:
        """Submit again with ``sendmail -G -i -f SENDER -- RECIPIENTS`` (a new queue id)."""
        if not recipients:
            raise QueueError("no recipients to deliver to")
        bad = [r for r in (sender, *recipients) if r.startswith("-") or any(ch.isspace() for ch in r)]
        if bad:
            raise QueueError(f"refusing address that looks like an option: {bad[0]!r}")
        if not self.sendmail_version():
            raise QueueError(f"{self.binary or 'sendmail'} is not Sendmail's binary (or is missing)")
        try:
            _proc.run(
                [self.binary, "-G", "-i", "-f", sender or "<>", "--", *recipients],
                stdin=data,
                timeout=self.timeout,
            )
        except _proc.ProcError as exc:
            raise QueueError(str(exc)) from exc
