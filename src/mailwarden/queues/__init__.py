"""Mail queues: list, attribute, summarise, cluster, hold, release, export and delete safely.

One backend per MTA behind ``base.QueueBackend`` (Postfix and Exim; see docs/queue.md for the
others). ``open_backend`` picks one: ``--mta`` when given, else the MTA that is installed
(``postconf`` -> Postfix, ``/usr/sbin/exim4`` or ``exim`` -> Exim, ``/var/qmail`` -> qmail,
``/var/spool/mqueue`` -> Sendmail).
"""

from __future__ import annotations

import os

from mailwarden import _proc
from mailwarden.queues.base import (
    Attribution,
    BackendInfo,
    HeaderBlock,
    MessageNotFound,
    NotSupported,
    QueueBackend,
    QueuedMessage,
    QueueError,
    Recipient,
)
from mailwarden.queues.exim import EximQueue
from mailwarden.queues.postfix import PostfixQueue

MTAS = ("postfix", "exim", "qmail", "sendmail")

__all__ = [
    "MTAS",
    "Attribution",
    "BackendInfo",
    "HeaderBlock",
    "MessageNotFound",
    "NotSupported",
    "QueueBackend",
    "QueueError",
    "QueuedMessage",
    "Recipient",
    "detect_mta",
    "open_backend",
]


def detect_mta() -> str | None:
    """The installed MTA, by the marks each leaves on a system; None when none is found."""
    if _proc.which("postconf"):
        return "postfix"
    if any(os.access(p, os.X_OK) for p in ("/usr/sbin/exim4", "/usr/sbin/exim")):
        return "exim"
    if os.path.isdir("/var/qmail/queue"):
        return "qmail"
    if os.path.isdir("/var/spool/mqueue"):
        return "sendmail"
    return None


def open_backend(mta: str | None = None, *, postfix_config: str | None = None) -> QueueBackend:
    """The backend for ``mta`` (or the detected one)."""
    name = mta or detect_mta()
    if name is None:
        raise QueueError("no MTA found (no postconf, exim, /var/qmail or /var/spool/mqueue); use --mta")
    if name == "postfix":
        return PostfixQueue(postfix_config)
    if name == "exim":
        return EximQueue()
    if name in MTAS:
        raise NotSupported(f"the {name} queue backend is not available yet (see docs/queue.md)")
    raise QueueError(f"unknown MTA {name!r}; one of {', '.join(MTAS)}")
