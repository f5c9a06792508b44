"""Exports: a copy of each message taken before it is deleted, and the way back.

An export is a new directory (mode 0700; files 0600 -- queued mail is other people's mail):

* ``eml`` format: ``<id>.eml`` per message, exactly the bytes the MTA's tool printed;
* ``mbox`` format: one ``messages.mbox`` (mboxrd: ``>From `` quoting, reversible);
* ``manifest.json``: per message the queue id, queue, arrival time, envelope sender, the
  recipients still to be delivered, size, the SHA-256 of the message bytes and where they are;
* ``SHA256SUMS``: ``sha256sum -c`` compatible (of the .eml files, or of the mbox file).

The manifest is written last, through a temporary name, so an export without one is known to be
incomplete. ``load`` reads an export back and checks every hash (``queue reinject``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mailwarden import __version__
from mailwarden.queues.base import QueuedMessage

FORMATS = ("eml", "mbox")
_FROM_LINE = re.compile(rb"^(>*From )", re.MULTILINE)
_QUOTED_FROM = re.compile(rb"^>(>*From )", re.MULTILINE)
_SAFE_NAME = re.compile(r"^[0-9A-Za-z._-]{1,64}$")


class ExportError(Exception):
    """An export could not be written, or read back intact."""


@dataclass(frozen=True, slots=True)
class ExportedMessage:
    id: str
    queue: str
    arrival: int
    sender: str
    recipients: tuple[str, ...]
    size: int
    sha256: str
    file: str
    offset: int = 0
    length: int = 0

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "queue": self.queue,
            "arrival": self.arrival,
            "sender": self.sender,
            "recipients": list(self.recipients),
            "size": self.size,
            "sha256": self.sha256,
            "file": self.file,
            "offset": self.offset,
            "length": self.length,
        }


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _mbox_from(sender: str, arrival: int) -> bytes:
    who = re.sub(r"\s", "_", sender)[:320] or "MAILER-DAEMON"
    return f"From {who} {time.asctime(time.gmtime(arrival))}\n".encode("utf-8", "replace")


class Exporter:
    """Writes one export directory; ``close()`` writes the manifest and the checksums."""

    def __init__(
        self, directory: str | os.PathLike[str], fmt: str = "eml", *, meta: dict[str, object] | None = None
    ):
        if fmt not in FORMATS:
            raise ExportError(f"export format must be one of {', '.join(FORMATS)}")
        self.dir = Path(directory)
        self.fmt = fmt
        self.meta = dict(meta or {})
        self.items: list[ExportedMessage] = []
        if self.dir.exists() and (not self.dir.is_dir() or any(self.dir.iterdir())):
            raise ExportError(f"{self.dir} exists and is not an empty directory; refusing to mix exports")
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.dir, 0o700)
        self._mbox = None
        self._mbox_pos = 0
        if fmt == "mbox":
            fd = os.open(self.dir / "messages.mbox", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            self._mbox = os.fdopen(fd, "wb")
        self.closed = False

    def add(self, m: QueuedMessage, data: bytes) -> ExportedMessage:
        digest = sha256(data)
        recipients = tuple(r.address for r in m.recipients)
        if self._mbox is not None:
            body = _FROM_LINE.sub(rb">\1", data)
            if not body.endswith(b"\n"):
                body += b"\n"
            head = _mbox_from(m.sender, m.arrival)
            self._mbox.write(head)
            offset = self._mbox_pos + len(head)
            self._mbox.write(body + b"\n")
            self._mbox_pos = offset + len(body) + 1
            item = ExportedMessage(
                m.id,
                m.queue,
                m.arrival,
                m.sender,
                recipients,
                m.size,
                digest,
                "messages.mbox",
                offset,
                len(body),
            )
        else:
            if not _SAFE_NAME.match(m.id):
                raise ExportError(f"queue id {m.id!r} is not usable as a file name")
            name = f"{m.id}.eml"
            fd = os.open(self.dir / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            item = ExportedMessage(
                m.id, m.queue, m.arrival, m.sender, recipients, m.size, digest, name, 0, len(data)
            )
        self.items.append(item)
        return item

    def close(self) -> Path:
        """Write manifest.json and SHA256SUMS; returns the manifest path."""
        if self.closed:
            return self.dir / "manifest.json"
        sums: list[str] = []
        if self._mbox is not None:
            self._mbox.flush()
            os.fsync(self._mbox.fileno())
            self._mbox.close()
            sums.append(f"{_file_sha(self.dir / 'messages.mbox')}  messages.mbox\n")
        else:
            sums.extend(f"{i.sha256}  {i.file}\n" for i in self.items)
        _write_new(self.dir / "SHA256SUMS", "".join(sums).encode())
        doc = {
            "mailwarden": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "host": socket.gethostname(),
            "format": self.fmt,
            **self.meta,
            "messages": [i.to_dict() for i in self.items],
        }
        tmp = self.dir / "manifest.json.partial"
        _write_new(tmp, json.dumps(doc, indent=1, ensure_ascii=True).encode() + b"\n")
        os.replace(tmp, self.dir / "manifest.json")
        self.closed = True
        return self.dir / "manifest.json"

    def abort(self) -> None:
        if self._mbox is not None and not self._mbox.closed:
            self._mbox.close()


def _write_new(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _file_sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True, slots=True)
class LoadedMessage:
    item: ExportedMessage
    data: bytes


def load(directory: str | os.PathLike[str]) -> tuple[dict[str, object], Iterator[LoadedMessage]]:
    """Read an export back: (manifest, messages). Raises ExportError when a hash does not match."""
    base = Path(directory)
    if base.is_file():
        base = base.parent
    try:
        manifest = json.loads((base / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ExportError(f"{base}: no readable manifest.json ({exc})") from exc
    raw_items = manifest.get("messages")
    if not isinstance(raw_items, list):
        raise ExportError(f"{base}/manifest.json has no message list")
    items = []
    for d in raw_items:
        try:
            items.append(
                ExportedMessage(
                    id=str(d["id"]),
                    queue=str(d.get("queue", "")),
                    arrival=int(d["arrival"]),
                    sender=str(d["sender"]),
                    recipients=tuple(str(r) for r in d["recipients"]),
                    size=int(d["size"]),
                    sha256=str(d["sha256"]),
                    file=str(d["file"]),
                    offset=int(d.get("offset", 0)),
                    length=int(d.get("length", 0)),
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ExportError(f"{base}/manifest.json: bad entry ({exc})") from exc

    def messages() -> Iterator[LoadedMessage]:
        for it in items:
            if "/" in it.file or it.file.startswith("."):
                raise ExportError(f"manifest names a file outside the export: {it.file!r}")
            path = base / it.file
            if manifest.get("format") == "mbox":
                with open(path, "rb") as f:
                    f.seek(it.offset)
                    quoted = f.read(it.length)
                data = _QUOTED_FROM.sub(rb"\1", quoted)
                if sha256(data) != it.sha256 and data.endswith(b"\n") and sha256(data[:-1]) == it.sha256:
                    data = data[:-1]  # the message had no final newline; mbox added one
            else:
                data = path.read_bytes()
            if sha256(data) != it.sha256:
                raise ExportError(f"{it.id}: content does not match its SHA-256 in the manifest")
            yield LoadedMessage(it, data)

    return manifest, messages()
