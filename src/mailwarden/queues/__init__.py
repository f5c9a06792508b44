"""Mail queues: list, attribute, summarise, cluster, hold, release, export and delete safely.

One backend per MTA behind ``base.QueueBackend``: Postfix and Exim through their tools, qmail and
Sendmail by reading their queue directories (docs/queue.md). ``open_backend`` picks one: ``--mta``
when given, else the queue directory named on the command line (``--qmail-queue``,
``--sendmail-queue``), else the MTA that is installed (``postconf`` -> Postfix,
``/usr/sbin/exim4`` or ``exim`` -> Exim, ``/var/qmail/queue`` -> qmail, ``/var/spool/mqueue`` ->
Sendmail).
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
from mailwarden.queues.qmail import QmailQueue
from mailwarden.queues.sendmail import SendmailQueue

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


def open_backend(
    mta: str | None = None,
    *,
    postfix_config: str | None = None,
    qmail_queue: str | None = None,
    sendmail_queue: str | None = None,
    i_stopped_qmail_send: bool = False,
) -> QueueBackend:
    """The backend for ``mta`` (or the one a queue directory names, or the detected one)."""
    name = mta
    if name is None and bool(qmail_queue) != bool(sendmail_queue):
        name = "qmail" if qmail_queue else "sendmail"
    name = name or detect_mta()
    if name is None:
        raise QueueError("no MTA found (no postconf, exim, /var/qmail or /var/spool/mqueue); use --mta")
    if name == "postfix":
        return PostfixQueue(postfix_config)
    if name == "exim":
        return EximQueue()
    if name == "qmail":
        return QmailQueue(qmail_queue, i_stopped_qmail_send=i_stopped_qmail_send)
    if name == "sendmail":
        return SendmailQueue(sendmail_queue)
    raise QueueError(f"unknown MTA {name!r}; one of {', '.join(MTAS)}")
