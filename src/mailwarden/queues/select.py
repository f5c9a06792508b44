"""Which queued messages a command acts on, and why each one was chosen.

Every filter is ANDed; each match records a reason ("account bob@lab.test", "older than 2h"),
so a dry run can print exactly why every id is in the list.

Regular expressions from the command line (``--subject``, ``--header``, ``--body``) run over
attacker-written text, and Python's ``re`` backtracks. They are bounded three ways: the pattern
is linted (no back-references, no repetition of something that itself repeats or alternates --
the shapes that blow up exponentially), the text is capped (header values 4 KiB, bodies
``--body-max``), and every search runs under a wall-clock budget (a SIGALRM timer, which ``re``
honours; main thread only). A search that runs out of budget counts as "no match" -- the safe
direction for hold and delete -- and is counted in ``Scan.regex_timeouts``.
"""

from __future__ import annotations

import fnmatch
import importlib
import ipaddress
import re
import signal
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from mailwarden.queues.base import QueuedMessage
from mailwarden.queues.reasons import explain

MAX_PATTERN_CHARS = 256
#: seconds one regex search may take before it counts as "no match"
REGEX_BUDGET = 0.2


class PatternError(ValueError):
    """A filter pattern is refused (too long, or shaped to backtrack without bound)."""


class _RegexTimeout(Exception):
    pass


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise _RegexTimeout


def _lint(pattern: str) -> None:
    parser: Any = importlib.import_module("re._parser")
    try:
        tree = parser.parse(pattern)
    except re.error as exc:
        raise PatternError(f"bad regular expression {pattern!r}: {exc}") from exc
    maxrepeat = parser.MAXREPEAT

    def walk(items: Any, inside_repeat: bool) -> None:
        for op, av in items:
            name = str(op)
            if name in ("GROUPREF", "GROUPREF_EXISTS"):
                raise PatternError(f"{pattern!r}: back-references are not allowed in filters")
            if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
                _lo, hi, sub = av
                repeats = hi > 1 or hi == maxrepeat
                if inside_repeat and repeats:
                    raise PatternError(
                        f"{pattern!r}: nested repetition (like (a+)+) can take forever on hostile text"
                    )
                walk(sub, inside_repeat or (repeats and name != "POSSESSIVE_REPEAT"))
            elif name == "SUBPATTERN":
                walk(av[-1], inside_repeat)
            elif name == "BRANCH":
                if inside_repeat:
                    raise PatternError(f"{pattern!r}: a repeated alternation (like (a|ab)*) is not allowed")
                for alt in av[1]:
                    walk(alt, inside_repeat)
            elif name in ("ASSERT", "ASSERT_NOT"):
                walk(av[1], inside_repeat)
            elif name == "ATOMIC_GROUP":
                walk(av, inside_repeat)

    walk(tree, False)


@dataclass(frozen=True, slots=True)
class BoundedRegex:
    """A case-insensitive pattern, linted, searched under a time budget."""

    pattern: str
    compiled: re.Pattern[str] = field(compare=False, repr=False)

    @classmethod
    def compile(cls, pattern: str) -> BoundedRegex:
        if len(pattern) > MAX_PATTERN_CHARS:
            raise PatternError(f"pattern longer than {MAX_PATTERN_CHARS} characters")
        _lint(pattern)
        return cls(pattern, re.compile(pattern, re.IGNORECASE))

    def search(self, text: str, budget: float = REGEX_BUDGET) -> bool | None:
        """True/False, or None when the search ran out of its time budget."""
        if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
            return self.compiled.search(text) is not None
        old = signal.signal(signal.SIGALRM, _on_alarm)
        try:
            signal.setitimer(signal.ITIMER_REAL, budget)
            try:
                return self.compiled.search(text) is not None
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        except _RegexTimeout:
            return None
        finally:
            signal.signal(signal.SIGALRM, old)


def _glob(pattern: str, value: str) -> bool:
    return fnmatch.fnmatchcase(value.lower(), pattern.lower())


@dataclass(frozen=True, slots=True)
class Criteria:
    """The filters of one command line; empty means "everything"."""

    ids: frozenset[str] = frozenset()
    queues: tuple[str, ...] = ()
    senders: tuple[str, ...] = ()  # globs; "<>" is the null sender (bounces)
    accounts: tuple[str, ...] = ()  # globs
    uids: tuple[int, ...] = ()
    scripts: tuple[str, ...] = ()  # globs on the script path
    clients: tuple[str, ...] = ()  # addresses or networks
    recipient_domains: tuple[str, ...] = ()
    arrived_before: int | None = None  # epoch seconds (--older-than)
    older_than_text: str = ""
    reasons: tuple[str, ...] = ()  # category keys or words of the group label
    subject: BoundedRegex | None = None
    headers: tuple[tuple[str, BoundedRegex], ...] = ()
    body: BoundedRegex | None = None
    body_max: int = 64 * 1024

    @property
    def empty(self) -> bool:
        return not (
            self.ids
            or self.queues
            or self.senders
            or self.accounts
            or self.uids
            or self.scripts
            or self.clients
            or self.recipient_domains
            or self.arrived_before is not None
            or self.reasons
            or self.subject
            or self.headers
            or self.body
        )

    @property
    def needs_headers(self) -> bool:
        return bool(
            self.accounts or self.uids or self.scripts or self.clients or self.subject or self.headers
        )

    @property
    def needs_body(self) -> bool:
        return self.body is not None

    def describe(self) -> dict[str, object]:
        """JSON-ready form, for dry runs and the audit log."""
        out: dict[str, object] = {}
        for key in (
            "queues",
            "senders",
            "accounts",
            "uids",
            "scripts",
            "clients",
            "recipient_domains",
            "reasons",
        ):
            if getattr(self, key):
                out[key] = list(getattr(self, key))
        if self.ids:
            out["ids"] = sorted(self.ids)
        if self.older_than_text:
            out["older_than"] = self.older_than_text
        if self.subject:
            out["subject"] = self.subject.pattern
        if self.headers:
            out["headers"] = [f"{n}: {r.pattern}" for n, r in self.headers]
        if self.body:
            out["body"] = self.body.pattern
            out["body_max"] = self.body_max
        return out

    def match_envelope(self, m: QueuedMessage) -> list[str] | None:
        """Reasons the envelope matches, or None when it does not."""
        why: list[str] = []
        if self.ids:
            if m.id not in self.ids:
                return None
            why.append("id given")
        if self.queues:
            if m.queue not in self.queues:
                return None
            why.append(f"queue {m.queue}")
        if self.senders:
            sender = m.sender or "<>"
            hit = next((p for p in self.senders if _glob(p, sender)), None)
            if hit is None:
                return None
            why.append(f"sender {sender} ~ {hit}")
        if self.recipient_domains:
            doms = {r.domain for r in m.recipients}
            hits = sorted(d for d in doms if d in {x.lower() for x in self.recipient_domains})
            if not hits:
                return None
            why.append("recipient domain " + ",".join(hits))
        if self.arrived_before is not None:
            if m.arrival >= self.arrived_before:
                return None
            why.append(f"older than {self.older_than_text}")
        if self.reasons:
            labels = {}
            for r in m.recipients:
                d = explain(r.delay_reason, r.domain)
                labels[d.category] = d.label
            hit2 = None
            for want in self.reasons:
                w = want.lower()
                for cat, label in labels.items():
                    if w == cat or w in label.lower():
                        hit2 = label
                        break
                if hit2:
                    break
            if hit2 is None:
                return None
            why.append(f"deferred: {hit2}")
        return why

    def match_attribution(self, m: QueuedMessage) -> list[str] | None:
        a = m.attribution
        why: list[str] = []
        if self.accounts:
            if not (a and a.account and any(_glob(p, a.account) for p in self.accounts)):
                return None
            why.append(f"account {a.account}")
        if self.uids:
            if not (a and a.uid is not None and a.uid in self.uids):
                return None
            why.append(f"uid {a.uid}")
        if self.scripts:
            if not (
                a
                and a.script
                and any(_glob(p, a.script) or _glob(p, a.script.rsplit("/", 1)[-1]) for p in self.scripts)
            ):
                return None
            why.append(f"script {a.script}")
        if self.clients:
            ip = a.client if a else None
            if not ip or not any(_in_net(ip, c) for c in self.clients):
                return None
            why.append(f"client {ip}")
        return why

    def match_text(
        self, subject: str | None, headers: Sequence[tuple[str, str]]
    ) -> tuple[list[str] | None, int]:
        """Subject/header regex matches: (reasons or None, number of searches that timed out)."""
        why: list[str] = []
        timeouts = 0
        if self.subject:
            res = self.subject.search((subject or "")[:4096])
            timeouts += res is None
            if not res:
                return None, timeouts
            why.append(f"subject ~ /{self.subject.pattern}/")
        for name, rx in self.headers:
            low = name.lower()
            found = False
            for k, v in headers:
                if k.lower() == low:
                    res = rx.search(v[:4096])
                    timeouts += res is None
                    if res:
                        found = True
                        break
            if not found:
                return None, timeouts
            why.append(f"{name} ~ /{rx.pattern}/")
        return why, timeouts

    def match_body(self, text: str) -> tuple[list[str] | None, int]:
        if self.body is None:
            return [], 0
        res = self.body.search(text[: self.body_max])
        if not res:
            return None, int(res is None)
        return [f"body ~ /{self.body.pattern}/"], 0


def _in_net(ip: str, spec: str) -> bool:
    try:
        return ipaddress.ip_address(ip) in ipaddress.ip_network(spec, strict=False)
    except ValueError:
        return False


def parse_header_filter(spec: str) -> tuple[str, BoundedRegex]:
    """``'X-Mailer: PHPMailer'`` -> ("X-Mailer", regex)."""
    name, sep, pattern = spec.partition(":")
    name = name.strip()
    if not sep or not name or not re.fullmatch(r"[!-9;-~]{1,76}", name):
        raise PatternError(f"--header wants 'Name: REGEX', got {spec!r}")
    return name, BoundedRegex.compile(pattern.strip())


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
