"""Message lifecycles joined by queue id, and the origin of every message.

A Postfix message is spread over many lines written by different daemons
(smtpd or pickup, cleanup, qmgr, smtp, bounce). Detectors need each delivery
attributed to *who put the message in*: an authenticated account and its
client address, an unauthenticated client (local "telnet" injection or a
remote relay attempt), or a local uid and script (the web path). This module
keeps one small mutable state per live queue id.

Memory is bounded: at most ``max_live`` messages are tracked; when a log never
shows the end of a message (lost lines, mail still queued) the oldest state
is evicted and counted in ``evicted``. Queue ids are reused by Postfix, so a
state is dropped as soon as its ``removed`` line is seen.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from types import MethodType
from typing import Any

from mailwarden.formats.base import address_value
from mailwarden.model import (
    BounceNotification,
    DeliveryAttempted,
    Event,
    LocalSubmission,
    MessageExpired,
    MessageInfo,
    MessageQueued,
    MessageReceived,
    MessageRemoved,
    QueueAction,
    Source,
)

# Origins, finer than the public ``path``: the detectors need to know whether an
# unauthenticated client was local (injection) or remote (relay).
SMTP_AUTH = "smtp_auth"
LOCAL_SMTP = "local_smtp"
REMOTE_SMTP = "remote_smtp"
LOCAL_SUBMISSION = "local_submission"
NOTIFICATION = "notification"
UNKNOWN = "unknown"

_CONTENT_CHECKS = frozenset({"header", "body", "END-OF-MESSAGE"})
EXTERNAL_TRANSPORTS = frozenset({"smtp", "relay"})
MAX_RECIPIENTS_TRACKED = 2000

DEFAULT_MYNETWORKS = ("127.0.0.0/8", "::1/128")


@dataclass(slots=True)
class MessageState:
    """What is known so far about one queued message."""

    queue_id: str
    first_ts: datetime
    origin: str = UNKNOWN
    account: str = ""
    client: str | None = None
    uid: int | None = None
    user: str = ""
    script: str = ""
    sender: str = ""
    size: int = 0
    nrcpt: int = 0
    origin_source: Source | None = None
    recipients: dict[str, str] = field(default_factory=dict)
    external: int = 0
    deferred_rcpts: int = 0
    removed: bool = False


@dataclass(slots=True)
class Totals:
    """Message totals in pflogsumm's sense (see docs/formats/postfix.md for the mapping)."""

    received: int = 0
    delivered: int = 0
    forwarded: int = 0
    deferred: int = 0
    deferrals: int = 0
    bounced: int = 0
    rejected: int = 0
    expired: int = 0
    held: int = 0
    admin_held: int = 0
    admin_deleted: int = 0

    def to_dict(self) -> dict[str, int]:
        return {
            "received": self.received,
            "delivered": self.delivered,
            "forwarded": self.forwarded,
            "deferred": self.deferred,
            "deferrals": self.deferrals,
            "bounced": self.bounced,
            "rejected": self.rejected,
            "expired": self.expired,
            "held": self.held,
            "admin_held": self.admin_held,
            "admin_deleted": self.admin_deleted,
        }


class MessageTracker:
    """Stream processor: feed events in time order, read the state of each message."""

    def __init__(self, mynetworks: Iterable[str] = DEFAULT_MYNETWORKS, max_live: int = 200_000):
        self._nets = [ipaddress.ip_network(n, strict=False) for n in mynetworks]
        self._net_values = [(n.version, int(n.network_address), int(n.netmask)) for n in self._nets]
        self._local_cache: dict[str, bool] = {}
        self.max_live = max_live
        self.live: dict[str, MessageState] = {}
        self.notices: set[str] = set()
        self.evicted = 0
        self.totals = Totals()
        self._deferred_ids: set[str] = set()

    def is_local(self, client: str | None) -> bool:
        """Whether a client address is in mynetworks (the unauthenticated "telnet" path)."""
        if client is None:
            return False
        hit = self._local_cache.get(client)
        if hit is None:
            hit = self._in_mynetworks(client)
            if len(self._local_cache) < 65536:
                self._local_cache[client] = hit
        return hit

    def _in_mynetworks(self, client: str) -> bool:
        value = address_value(client)
        if value is not None:  # the forms the formats write: no ipaddress object needed
            version, number = value
            return any(version == v and number & mask == net for v, net, mask in self._net_values)
        try:
            addr = ipaddress.ip_address(client)
        except ValueError:
            return False
        return any(addr in net for net in self._nets)

    def _state(self, queue_id: str, ts: datetime) -> MessageState:
        state = self.live.get(queue_id)
        if state is None:
            if len(self.live) >= self.max_live:
                oldest = next(iter(self.live))
                del self.live[oldest]
                self._deferred_ids.discard(oldest)
                self.evicted += 1
            state = MessageState(queue_id=queue_id, first_ts=ts)
            if queue_id in self.notices:
                self.notices.discard(queue_id)
                state.origin = NOTIFICATION
            self.live[queue_id] = state
        return state

    def feed(self, event: Event) -> MessageState | None:
        """Apply one event; return the message it belongs to (None for non-message events).

        A ``MessageRemoved`` returns the final state and forgets it, so callers
        see every message exactly once at its end as well as at each delivery.
        """
        method = _method_for(type(self), type(event))
        return None if method is None else method(self, event)

    def handler_for(self, cls: type[Event]) -> Callable[[Any], MessageState | None] | None:
        """What ``feed`` runs for events of class ``cls``, bound to this tracker (None: ignored).

        The pipeline resolves this once per event class and then calls it
        directly, instead of paying a chain of ``isinstance`` tests per event.
        """
        method = _method_for(type(self), cls)
        return None if method is None else MethodType(method, self)

    def _received(self, event: MessageReceived) -> MessageState:
        state = self._state(event.queue_id, event.ts)
        state.client = event.client
        state.origin_source = event.source
        self.totals.received += 1
        if event.sasl_username:
            state.origin = SMTP_AUTH
            state.account = event.sasl_username
        elif self.is_local(event.client):
            state.origin = LOCAL_SMTP
        else:
            state.origin = REMOTE_SMTP
        return state

    def _local_submission(self, event: LocalSubmission) -> MessageState:
        state = self._state(event.queue_id, event.ts)
        state.origin = LOCAL_SUBMISSION
        state.uid = event.uid
        state.user = event.user
        state.sender = state.sender or event.sender
        state.origin_source = event.source
        self.totals.received += 1
        return state

    def _queued(self, event: MessageQueued) -> MessageState:
        state = self._state(event.queue_id, event.ts)
        state.sender = event.sender
        state.size = event.size
        state.nrcpt = event.nrcpt
        if state.origin == UNKNOWN and event.sender == "":
            state.origin = NOTIFICATION
        return state

    def _info(self, event: MessageInfo) -> MessageState:
        if event.action == "hold":
            self.totals.held += 1
        elif event.action in ("reject", "milter-reject") and event.check in _CONTENT_CHECKS:
            # cleanup refusing a message on content: pflogsumm counts these as rejected
            self.totals.rejected += 1
        state = self._state(event.queue_id, event.ts)
        if event.script:
            state.script = event.script
        return state

    def _removed(self, event: MessageRemoved) -> MessageState | None:
        self._deferred_ids.discard(event.queue_id)
        return self._forget(event.queue_id)

    def _expired(self, event: MessageExpired) -> MessageState | None:
        self.totals.expired += 1
        return self.live.get(event.queue_id)

    def _bounce(self, event: BounceNotification) -> MessageState | None:
        existing = self.live.get(event.notice_queue_id)
        if existing is not None:
            # cleanup logged the notice before bounce did: mark it now, remember nothing
            if existing.origin == UNKNOWN:
                existing.origin = NOTIFICATION
        else:
            self.notices.add(event.notice_queue_id)
            if len(self.notices) > self.max_live:
                self.notices.pop()
        return self.live.get(event.queue_id)

    def _queue_action(self, event: QueueAction) -> MessageState | None:
        if event.action == "held":
            self.totals.admin_held += 1
        elif event.action == "deleted":
            self.totals.admin_deleted += 1
            return self._forget(event.queue_id)
        return self.live.get(event.queue_id)

    def _forget(self, queue_id: str) -> MessageState | None:
        """Drop a finished message (queue ids are reused) and hand its final state back."""
        gone = self.live.pop(queue_id, None)
        if gone is not None:
            gone.removed = True
        return gone

    def _delivery(self, event: DeliveryAttempted) -> MessageState:
        state = self._state(event.queue_id, event.ts)
        previous = state.recipients.get(event.recipient)
        first = previous is None
        if not first or len(state.recipients) < MAX_RECIPIENTS_TRACKED:
            state.recipients[event.recipient] = event.status
        if event.status == "deferred" and previous != "deferred":
            state.deferred_rcpts += 1
        if first and event.transport in EXTERNAL_TRANSPORTS:
            state.external += 1
        status = event.status
        totals = self.totals
        if status == "sent":
            # pflogsumm's rule (docs/formats/postfix.md): a content filter's reply says "forwarded as"
            if "forwarded as " in event.reply:
                totals.forwarded += 1
            else:
                totals.delivered += 1
        elif status == "deferred":
            totals.deferrals += 1
            if event.queue_id not in self._deferred_ids:
                self._deferred_ids.add(event.queue_id)
                totals.deferred += 1
        elif status == "bounced":
            totals.bounced += 1
        return state


# Event class -> MessageTracker method name, in the order of the isinstance tests ``feed`` follows.
_HANDLERS: tuple[tuple[type[Event], str], ...] = (
    (DeliveryAttempted, "_delivery"),
    (MessageReceived, "_received"),
    (LocalSubmission, "_local_submission"),
    (MessageQueued, "_queued"),
    (MessageInfo, "_info"),
    (MessageRemoved, "_removed"),
    (MessageExpired, "_expired"),
    (BounceNotification, "_bounce"),
    (QueueAction, "_queue_action"),
)
_Method = Callable[[MessageTracker, Any], MessageState | None]
_METHODS: dict[tuple[type[MessageTracker], type[Event]], _Method | None] = {}


def _method_for(tracker: type[MessageTracker], cls: type[Event]) -> _Method | None:
    """The (unbound) method of ``tracker`` for events of ``cls``, as ``isinstance`` picks it.

    Memoised per class pair, outside the tracker: a tracker holding its own
    bound methods would be a reference cycle, freed only by a full collection.
    """
    try:
        return _METHODS[tracker, cls]
    except KeyError:
        pass
    name = next((name for base, name in _HANDLERS if issubclass(cls, base)), None)
    method: _Method | None = None if name is None else getattr(tracker, name)
    if len(_METHODS) < 256:
        _METHODS[tracker, cls] = method
    return method
