"""The queue backend interface and the values it deals in.

A backend is one MTA's queue seen through that MTA's own tools (``postqueue``,
``postcat``, ``postsuper`` for Postfix). Everything above it -- selection,
summary, clusters, export, verified deletion -- is written against the small
``QueueBackend`` protocol, so adding an MTA is adding one module (the shape of
httpx's transports, see STYLE.md).

Exceptions::

    QueueError              a queue tool failed or its output could not be read
     ├── MessageNotFound    the message is no longer in the queue (delivered, deleted, expired)
     └── NotSupported       this backend cannot do that (e.g. hold on qmail)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable


class QueueError(Exception):
    """A queue tool failed, or its output could not be read."""


class MessageNotFound(QueueError):
    """The message is no longer in the queue."""


class NotSupported(QueueError):
    """The backend cannot perform this operation."""


@dataclass(frozen=True, slots=True)
class Recipient:
    """One recipient still to be delivered, with the MTA's last reason for the delay ('' if none)."""

    address: str
    delay_reason: str = ""

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2].lower() if "@" in self.address else ""


@dataclass(frozen=True, slots=True)
class Attribution:
    """Who sent a message, from the parts of it that our own MTA wrote.

    ``account``, ``uid``, ``client`` come only from the envelope our MTA keeps
    or the topmost Received header it added (see attribution.py);
    ``script`` only when that header shows a local submission by the same
    uid. ``mailer``, ``msgid_domain`` and ``from_header`` are what the sender
    *claims*: useful to group a spam run, never proof of who sent it.
    """

    account: str | None = None
    uid: int | None = None
    local_user: str | None = None
    script: str | None = None
    client: str | None = None
    helo: str | None = None
    received_by: str | None = None
    source: str = ""  # "envelope", "received", "envelope+received" or "" when nothing trusted
    mailer: str | None = None
    msgid_domain: str | None = None
    from_header: str | None = None
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {
            "account": self.account,
            "uid": self.uid,
            "local_user": self.local_user,
            "script": self.script,
            "client": self.client,
            "helo": self.helo,
            "received_by": self.received_by,
            "source": self.source,
            "claimed": {
                "mailer": self.mailer,
                "msgid_domain": self.msgid_domain,
                "from": self.from_header,
            },
            "notes": list(self.notes),
        }

    def culprit(self) -> str:
        """The most specific trustworthy name for whoever sent it ('' when unknown)."""
        if self.account:
            return f"account {self.account}"
        if self.script:
            who = f"uid {self.uid}" if self.uid is not None else "local"
            return f"script {self.script} ({who})"
        if self.uid is not None:
            return f"uid {self.uid}" + (f" ({self.local_user})" if self.local_user else "")
        if self.local_user:
            return f"local user {self.local_user}"
        if self.client:
            return f"client {self.client}"
        return ""


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    """One message in the queue, as its MTA lists it; attribution is filled in later."""

    id: str
    queue: str
    arrival: int  # seconds since the epoch (UTC)
    size: int
    sender: str
    recipients: tuple[Recipient, ...] = ()
    subject: str | None = None
    attribution: Attribution | None = None

    @property
    def arrival_dt(self) -> datetime:
        return datetime.fromtimestamp(self.arrival, UTC)

    def fingerprint(self) -> tuple[int, str, int]:
        """What must stay equal for a queue id to still name the same message (ids are reused)."""
        return (self.arrival, self.sender, self.size)

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "queue": self.queue,
            "arrival": self.arrival_dt.isoformat(),
            "size": self.size,
            "sender": self.sender,
            "recipients": [{"address": r.address, "delay_reason": r.delay_reason} for r in self.recipients],
            "subject": self.subject,
            "attribution": self.attribution.to_dict() if self.attribution else None,
        }


@dataclass(frozen=True, slots=True)
class HeaderBlock:
    """A message's header section and the envelope facts the MTA itself recorded."""

    id: str
    headers: bytes
    envelope: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BackendInfo:
    """What ``describe()`` reports: which MTA, where, and what it can do."""

    mta: str
    version: str = ""
    config: str = ""
    queue_dir: str = ""
    our_names: tuple[str, ...] = ()
    can: frozenset[str] = frozenset()  # subset of {"read", "hold", "release", "delete"}
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {
            "mta": self.mta,
            "version": self.version,
            "config": self.config,
            "queue_dir": self.queue_dir,
            "our_names": list(self.our_names),
            "can": sorted(self.can),
            "notes": list(self.notes),
        }


@runtime_checkable
class QueueBackend(Protocol):
    """One MTA's queue. Ids are the MTA's own queue ids; every method uses the MTA's tools."""

    def describe(self) -> BackendInfo:
        """Which MTA and queue this is, and which operations it supports."""
        ...

    def list_messages(self) -> Iterator[QueuedMessage]:
        """Every queued message, with envelope sender, recipients and delay reasons."""
        ...

    def read(self, qid: str) -> bytes:
        """The whole message (headers and body) as stored; MessageNotFound if it is gone."""
        ...

    def read_headers(self, ids: Sequence[str]) -> Iterator[HeaderBlock]:
        """Header sections of many messages (in as few tool runs as possible); gone ids are skipped."""
        ...

    def hold(self, ids: Sequence[str]) -> list[str]:
        """Stop delivery attempts of these messages; returns the ids actually put on hold."""
        ...

    def release(self, ids: Sequence[str]) -> list[str]:
        """Undo ``hold``; returns the ids actually released."""
        ...

    def delete(self, ids: Sequence[str]) -> list[str]:
        """Remove these messages; returns the ids actually removed."""
        ...


def split_headers(message: bytes) -> tuple[bytes, bytes]:
    """(header section incl. its last newline, body); the blank separator line belongs to neither."""
    if message.startswith(b"\n"):
        return b"", message[1:]
    if message.startswith(b"\r\n"):
        return b"", message[2:]
    found = [
        (pos, width) for pos, width in ((message.find(b"\n\n"), 2), (message.find(b"\n\r\n"), 3)) if pos >= 0
    ]
    if not found:
        return message, b""
    pos, width = min(found)
    return message[: pos + 1], message[pos + width :]
