"""Exim's queue, through Exim's own command line (Exim specification: "Message queue listing",
"Format of spool files", and the -M options).

* list: ``exim -bpr`` -- per message a line ``AGE SIZE ID <SENDER> [*** frozen ***]`` and the
  recipients indented below it (``D`` before the delivered ones). The arrival time is taken from
  the message id, whose first six base-62 characters are the arrival second -- exact and stable,
  unlike the rounded age. Exim lists no delay reasons (they are in the message log).
* headers: ``exim -Mvh ID`` prints the -H spool file: envelope lines (``-auth_id bob``,
  ``-host_address 192.0.2.1.52334``, ...) and then each header as ``NNNc text`` (length, flag;
  ``*`` marks a header Exim has deleted). The ``-auth_id`` and ``-host_address`` lines are Exim's
  own record and are used like Postfix's envelope.
* body: ``exim -Mvb ID``. hold/release: freeze/thaw (``-Mf``/``-Mt``); delete: ``-Mrm``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence

from mailwarden import _proc
from mailwarden.queues.base import (
    BackendInfo,
    HeaderBlock,
    MessageNotFound,
    QueuedMessage,
    QueueError,
    Recipient,
)

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
MESSAGE_ID = re.compile(r"[0-9A-Za-z]{6}-[0-9A-Za-z]{6,11}-[0-9A-Za-z]{2,4}")
_LISTING = re.compile(
    r"^\s*(?P<age>\d+[smhdwy])\s+(?P<size>[\d.]+[KMG]?)\s+(?P<id>\S+)\s+<(?P<sender>[^>]*)>(?P<rest>.*)$"
)
_HEADER_LINE = re.compile(r"(\d{3,6})(.) ")
_ACTED = {
    "-Mf": re.compile(r"^Message (\S+) is now frozen"),
    "-Mt": re.compile(r"^Message (\S+) is no longer frozen"),
    "-Mrm": re.compile(r"^Message (\S+) has been removed"),
}


def valid_id(qid: str) -> bool:
    return MESSAGE_ID.fullmatch(qid) is not None


def arrival_from_id(qid: str) -> int:
    """Seconds since the epoch encoded in the first six characters of an Exim message id."""
    value = 0
    for ch in qid[:6]:
        value = value * 62 + _B62.index(ch)
    return value


def _size(text: str) -> int:
    mult = {"K": 1024, "M": 1024**2, "G": 1024**3}.get(text[-1:], 1)
    try:
        return int(float(text.rstrip("KMG")) * mult)
    except ValueError:
        return 0


def parse_bpr(lines: Iterable[str], problems: list[str] | None = None) -> Iterator[QueuedMessage]:
    """Messages from ``exim -bp``/``-bpr`` output (delivered recipients are left out)."""
    current: dict[str, object] | None = None
    rcpts: list[Recipient] = []

    def done() -> QueuedMessage | None:
        if current is None:
            return None
        return QueuedMessage(
            id=str(current["id"]),
            queue=str(current["queue"]),
            arrival=int(str(current["arrival"])),
            size=int(str(current["size"])),
            sender=str(current["sender"]),
            recipients=tuple(rcpts),
        )

    for line in lines:
        m = _LISTING.match(line)
        if m and valid_id(m.group("id")):
            if (msg := done()) is not None:
                yield msg
            frozen = "*** frozen ***" in m.group("rest")
            current = {
                "id": m.group("id"),
                "queue": "hold" if frozen else "queue",
                "arrival": arrival_from_id(m.group("id")),
                "size": _size(m.group("size")),
                "sender": m.group("sender"),
            }
            rcpts = []
        elif current is not None and line.startswith((" ", "\t")) and line.strip():
            addr = line.strip()
            if addr.startswith("D "):
                continue
            rcpts.append(Recipient(addr.split()[-1] if addr.startswith("+D ") else addr))
        elif line.strip() and problems is not None and len(problems) < 100:
            problems.append(f"exim -bpr: unreadable line {line[:80]!r}")
    if (msg := done()) is not None:
        yield msg


def parse_spool_header(text: bytes) -> HeaderBlock:
    """The -H spool file as ``exim -Mvh`` prints it -> headers (deleted ones left out) + envelope."""
    lines = text.decode("utf-8", "surrogateescape").split("\n")
    qid = lines[0][:-2] if lines and lines[0].endswith("-H") else ""
    env: dict[str, str] = {}
    i = 1
    # envelope part: ends at the first blank line
    while i < len(lines) and lines[i] != "":
        line = lines[i]
        if line.startswith("-auth_id "):
            env["sasl_username"] = line[9:].strip()[:320]
        elif line.startswith("-host_address "):
            host = line[14:].strip()
            env["client_address"] = host.rsplit(".", 1)[0] if host.count(".") in (1, 4) else host
        elif line.startswith("-helo_name "):
            env["helo_name"] = line[11:].strip()[:255]
        i += 1
    headers: list[str] = []
    rest = "\n".join(lines[i + 1 :])
    pos = 0
    while pos < len(rest):
        m = _HEADER_LINE.match(rest, pos)
        if m is None:
            break
        length = int(m.group(1))
        start = m.end()
        body = rest[start : start + length]
        if m.group(2) != "*":
            headers.append(body)
        pos = start + length
        while pos < len(rest) and rest[pos] == "\n" and not body.endswith("\n"):
            pos += 1
    data = "".join(headers).encode("utf-8", "surrogateescape")
    return HeaderBlock(qid, data, env)


class EximQueue:
    """Exim's queue, through the exim binary (``/usr/sbin/exim4`` on Debian)."""

    def __init__(self, binary: str | None = None, *, timeout: float = 120.0) -> None:
        self.binary = binary or _proc.which("exim4") or _proc.which("exim") or ""
        self.timeout = timeout
        self.problems: list[str] = []
        self._info: BackendInfo | None = None

    def _run(self, *args: str, stdin: bytes | None = None, check: bool = True) -> _proc.Result:
        if not self.binary:
            raise QueueError("exim not found")
        try:
            return _proc.run([self.binary, *args], timeout=self.timeout, stdin=stdin, check=check)
        except _proc.ProcError as exc:
            raise QueueError(str(exc)) from exc

    def describe(self) -> BackendInfo:
        # Asked several times per command (names, header, audit): run exim -bV once.
        if self._info is None:
            res = self._run("-bV", check=False)
            first = res.text().splitlines()[0] if res.stdout else ""
            self._info = BackendInfo(
                mta="exim",
                version=first.replace("Exim version", "").strip().split(" ")[0] if first else "",
                config=self.binary,
                can=frozenset({"read", "hold", "release", "delete"}),
                notes=("hold = freeze (-Mf), release = thaw (-Mt); no delay reasons in the listing",),
            )
        return self._info

    def list_messages(self) -> Iterator[QueuedMessage]:
        yield from parse_bpr(self._run("-bpr").text().splitlines(), self.problems)

    def _check(self, qid: str) -> None:
        if not valid_id(qid):
            raise QueueError(f"not an Exim message id: {qid!r}")

    def read(self, qid: str) -> bytes:
        self._check(qid)
        head = self._run("-Mvh", qid, check=False)
        body = self._run("-Mvb", qid, check=False)
        if head.returncode or body.returncode:
            raise MessageNotFound(qid)
        block = parse_spool_header(head.stdout)
        lines = body.stdout.split(b"\n", 1)
        data = lines[1] if lines[0].strip() == f"{qid}-D".encode() and len(lines) > 1 else body.stdout
        return block.headers + b"\n" + data

    def read_headers(self, ids: Sequence[str]) -> Iterator[HeaderBlock]:
        for qid in ids:
            if not valid_id(qid):
                continue
            res = self._run("-Mvh", qid, check=False)
            if res.returncode == 0:
                block = parse_spool_header(res.stdout)
                yield HeaderBlock(qid, block.headers, block.envelope)

    def _act(self, flag: str, ids: Sequence[str]) -> list[str]:
        for qid in ids:
            self._check(qid)
        if not ids:
            return []
        res = self._run(flag, *ids, check=False)
        wanted = set(ids)
        out = res.text() + "\n" + res.stderr.decode("utf-8", "replace")
        return [
            m.group(1)
            for line in out.splitlines()
            if (m := _ACTED[flag].match(line)) and m.group(1) in wanted
        ]

    def hold(self, ids: Sequence[str]) -> list[str]:
        return self._act("-Mf", ids)

    def release(self, ids: Sequence[str]) -> list[str]:
        return self._act("-Mt", ids)

    def delete(self, ids: Sequence[str]) -> list[str]:
        return self._act("-Mrm", ids)
