"""Postfix's queue, through Postfix's own tools.

* list: ``postqueue -j`` -- one JSON object per message (queue_name, queue_id, arrival_time,
  message_size, sender, recipients[{address, delay_reason}]); postqueue(1).
* headers of many messages: ``postcat -q -e -h ID ...`` in batches. With ``-e`` postcat marks
  each file (``*** ENVELOPE RECORDS deferred/6/ID ***`` ... ``*** MESSAGE FILE END ... ***``), and
  the envelope part carries Postfix's own record of the SASL login and client address. A marker
  cannot be forged from a header section: a line that is not a header ends the headers in
  cleanup(8), and with ``-h`` the body is not printed.
* one whole message: ``postcat -q -h -b ID`` (no markers; headers, blank line, body).
* hold / release / delete: ``postsuper -h - | -H - | -d -`` with the ids on standard input,
  one per line; the ids acted on are read back from postsuper's ``ID: placed on hold`` /
  ``released from hold`` / ``removed`` lines.

Every tool gets ``-c DIR`` when a config directory was given (``--postfix-config``, or
``MAIL_CONFIG`` in the environment, which the tools also read themselves).
"""

from __future__ import annotations

import json
import os
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

#: Postfix queue ids: short (hex) or long (base-52 with a 'z' separator) form.
QUEUE_ID = re.compile(r"[0-9A-Za-z]{6,32}")
#: ids per postcat run (argv stays far below ARG_MAX, one run per ~2 ms per message saved).
POSTCAT_BATCH = 400

_MARKER = re.compile(
    rb"^\*\*\* (ENVELOPE RECORDS|MESSAGE CONTENTS|HEADER EXTRACTED|MESSAGE FILE END) (\S+) \*\*\*$"
)
_GONE = re.compile(rb"open queue file ([0-9A-Za-z]+): No such file or directory")
_ACTED = re.compile(r"^postsuper: ([0-9A-Za-z]+): (placed on hold|released from hold|removed)$")
_ENVELOPE_KEYS = frozenset(
    {
        "sasl_username",
        "sasl_method",
        "client_address",
        "log_client_address",
        "client_name",
        "helo_name",
        "sender",
        "sender_fullname",
        "rewrite_context",
    }
)


def valid_id(qid: str) -> bool:
    """A string postsuper/postcat will read as one queue id (never the ``ALL`` keyword)."""
    return QUEUE_ID.fullmatch(qid) is not None and qid.upper() != "ALL"


def parse_postqueue_json(
    lines: Iterable[bytes], problems: list[str] | None = None
) -> Iterator[QueuedMessage]:
    """Messages from ``postqueue -j`` output; unreadable lines are skipped (and noted)."""
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line.decode("utf-8", "replace"))
            rcpts = tuple(
                Recipient(str(r.get("address", "")), str(r.get("delay_reason", "") or ""))
                for r in obj.get("recipients", ())
                if isinstance(r, dict)
            )
            yield QueuedMessage(
                id=str(obj["queue_id"]),
                queue=str(obj.get("queue_name", "")),
                arrival=int(obj.get("arrival_time", 0)),
                size=int(obj.get("message_size", 0)),
                sender=str(obj.get("sender", "")),
                recipients=rcpts,
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            if problems is not None and len(problems) < 100:
                problems.append(f"postqueue -j line {n}: {type(exc).__name__}")


def parse_postcat_batch(output: bytes, ids: Sequence[str]) -> Iterator[HeaderBlock]:
    """Split ``postcat -q -e -h ID...`` output into one HeaderBlock per message.

    A marker counts only when its path ends in one of the requested ids; content lines are
    collected between MESSAGE CONTENTS and HEADER EXTRACTED of the same id."""
    wanted = set(ids)
    current: str | None = None
    section = ""
    env: dict[str, str] = {}
    head: list[bytes] = []
    for line in output.split(b"\n"):
        m = _MARKER.match(line)
        qid = m.group(2).rsplit(b"/", 1)[-1].decode("ascii", "replace") if m else ""
        if m and qid in wanted and (current is None or qid == current):
            kind = m.group(1)
            if kind == b"ENVELOPE RECORDS":
                current, section, env, head = qid, "env", {}, []
            elif kind == b"MESSAGE CONTENTS":
                section = "content"
            elif kind == b"HEADER EXTRACTED":
                section = "extracted"
            else:  # MESSAGE FILE END
                yield HeaderBlock(qid, b"".join(head), env)
                current, section = None, ""
            continue
        if current is None:
            continue
        if section == "content":
            head.append(line + b"\n")
        elif section == "env":
            key, sep, value = line.decode("utf-8", "replace").partition(": ")
            if not sep:
                continue
            if key == "named_attribute":
                key, _, value = value.partition("=")
            if key in _ENVELOPE_KEYS and key not in env:
                env[key] = value.strip()[:1024]


class PostfixQueue:
    """A Postfix instance's queue (the system one, or ``config_dir``'s)."""

    def __init__(self, config_dir: str | None = None, *, timeout: float = 120.0) -> None:
        self.config_dir = config_dir or os.environ.get("MAIL_CONFIG") or None
        self.timeout = timeout
        self.problems: list[str] = []
        self._info: BackendInfo | None = None

    def _argv(self, tool: str, *args: str) -> list[str]:
        exe = _proc.which(tool)
        if exe is None:
            raise QueueError(f"{tool} not found (is Postfix installed?)")
        conf = ["-c", self.config_dir] if self.config_dir else []
        return [exe, *conf, *args]

    def describe(self) -> BackendInfo:
        if self._info is None:
            res = _proc.run(
                self._argv("postconf", "-h", "mail_version", "myhostname", "queue_directory"),
                timeout=30,
                check=False,
            )
            vals = res.text().splitlines() if res.returncode == 0 else []
            vals += [""] * (3 - len(vals))
            self._info = BackendInfo(
                mta="postfix",
                version=vals[0].strip(),
                config=self.config_dir or "/etc/postfix",
                queue_dir=vals[2].strip(),
                our_names=tuple(n for n in (vals[1].strip().lower(),) if n),
                can=frozenset({"read", "hold", "release", "delete"}),
                notes=("postsuper (hold/release/delete) must run as root",),
            )
        return self._info

    def list_messages(self) -> Iterator[QueuedMessage]:
        try:
            res = _proc.run(self._argv("postqueue", "-j"), timeout=self.timeout)
        except _proc.ProcError as exc:
            raise QueueError(str(exc)) from exc
        yield from parse_postqueue_json(res.stdout.split(b"\n"), self.problems)

    def read(self, qid: str) -> bytes:
        if not valid_id(qid):
            raise QueueError(f"not a Postfix queue id: {qid!r}")
        res = _proc.run(self._argv("postcat", "-q", "-h", "-b", qid), timeout=self.timeout, check=False)
        if res.returncode != 0:
            if _GONE.search(res.stderr):
                raise MessageNotFound(qid)
            raise QueueError(f"postcat {qid}: {res.stderr.decode('utf-8', 'replace').strip()[-300:]}")
        return res.stdout

    def read_headers(self, ids: Sequence[str]) -> Iterator[HeaderBlock]:
        todo = [q for q in ids if valid_id(q)]
        for start in range(0, len(todo), POSTCAT_BATCH):
            batch = todo[start : start + POSTCAT_BATCH]
            while batch:
                res = _proc.run(
                    self._argv("postcat", "-q", "-e", "-h", *batch), timeout=self.timeout, check=False
                )
                done = list(parse_postcat_batch(res.stdout, batch))
                yield from done
                if res.returncode == 0:
                    break
                # postcat stops at the first id that is gone: go on after it
                gone = _GONE.search(res.stderr)
                if gone is None:
                    raise QueueError(f"postcat: {res.stderr.decode('utf-8', 'replace').strip()[-300:]}")
                seen = {b.id for b in done} | {gone.group(1).decode("ascii")}
                batch = [q for q in batch if q not in seen]

    def _postsuper(self, flag: str, ids: Sequence[str], verb: str) -> list[str]:
        bad = [q for q in ids if not valid_id(q)]
        if bad:
            raise QueueError(f"not Postfix queue ids: {', '.join(map(repr, bad[:5]))}")
        if not ids:
            return []
        stdin = "".join(q + "\n" for q in ids).encode("ascii")
        try:
            res = _proc.run(self._argv("postsuper", flag, "-"), stdin=stdin, timeout=self.timeout)
        except _proc.ProcError as exc:
            raise QueueError(str(exc)) from exc
        wanted = set(ids)
        acted = []
        for line in res.stderr.decode("utf-8", "replace").splitlines():
            m = _ACTED.match(line.strip())
            if m and m.group(2) == verb and m.group(1) in wanted:
                acted.append(m.group(1))
        return acted

    def hold(self, ids: Sequence[str]) -> list[str]:
        return self._postsuper("-h", ids, "placed on hold")

    def release(self, ids: Sequence[str]) -> list[str]:
        return self._postsuper("-H", ids, "released from hold")

    def delete(self, ids: Sequence[str]) -> list[str]:
        return self._postsuper("-d", ids, "removed")

    def reinject(self, data: bytes, sender: str, recipients: Sequence[str]) -> None:
        """Submit a message again with Postfix's sendmail(1): envelope sender and recipients as
        exported (``-f``, ``--``), ``-G`` (gateway: no address rewriting), ``-i`` (a lone dot is
        data). It gets a new queue id."""
        if not recipients:
            raise QueueError("no recipients to deliver to")
        bad = [r for r in recipients if r.startswith("-") or any(ch.isspace() for ch in r)]
        if bad or sender.startswith("-"):
            raise QueueError(f"refusing address that looks like an option: {(bad or [sender])[0]!r}")
        conf = ["-C", self.config_dir] if self.config_dir else []
        exe = _proc.which("sendmail")
        if exe is None:
            raise QueueError("sendmail not found")
        argv = [exe, *conf, "-G", "-i", "-f", sender or "<>", "--", *recipients]
        try:
            _proc.run(argv, stdin=data, timeout=self.timeout)
        except _proc.ProcError as exc:
            raise QueueError(str(exc)) from exc
