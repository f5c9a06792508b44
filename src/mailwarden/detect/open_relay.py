"""Open relay: an outside client without AUTH got mail delivered to outside domains.

A correctly configured server only accepts mail from unauthenticated outside
clients for its own domains; relaying for them is a configuration error that
spammers find within hours. False positives: a backup MX or a gateway that
relays for ``relay_domains`` it serves (their mail goes to the transport of
those domains — allowlist them), and content filters that re-inject mail
with XFORWARD. See docs/detectors/open_relay.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from mailwarden.correlate.messages import REMOTE_SMTP, MessageState
from mailwarden.detect._outbound import OutboundDetector, timeline_of
from mailwarden.detect.base import DetectContext, span
from mailwarden.detect.playbook import actions_for
from mailwarden.model import DeliveryAttempted, Event
from mailwarden.model.findings import Incident


@dataclass(frozen=True, slots=True)
class Params:
    """``min_external`` outside recipients relayed within ``window`` (all clients together)."""

    min_external: int = 3
    window: timedelta = timedelta(hours=1)
    max_tracked: int = 10_000


class OpenRelay(OutboundDetector):
    name = "open_relay"

    def __init__(self, ctx: DetectContext, params: Params | None = None):
        p = params or Params()
        super().__init__(ctx, p.min_external, p.window, p.max_tracked)

    def feed(self, event: Event, msg: MessageState | None) -> None:
        """Skip forwarding: Postfix logs ``orig_to=`` when a local alias expands to an outside address."""
        if (
            isinstance(event, DeliveryAttempted)
            and event.orig_recipient
            and event.orig_recipient != event.recipient
        ):
            return
        super().feed(event, msg)

    def key(self, msg: MessageState) -> tuple[object, ...] | None:
        return ("relay",) if msg.origin == REMOTE_SMTP else None

    def finish(self) -> list[Incident]:
        out = []
        for _, g in self.flagged():
            if g.first_ts is None or g.last_ts is None:
                continue
            clients = sorted(g.clients, key=lambda c: -g.clients[c])
            infos = [self.ctx.net(c) for c in clients[:20]]
            out.append(
                Incident(
                    kind="open_relay",
                    subject={"ip": clients[0] if clients else "", "clients": clients[:20]},
                    path="unauthenticated_smtp",
                    severity="critical",
                    first_seen=g.first_ts,
                    last_seen=g.last_ts,
                    summary=f"{g.message_count} messages from {len(clients)} outside unauthenticated "
                    "client(s) were relayed to outside domains",
                    countries=sorted({i.country for i in infos if i and i.country}),
                    messages=g.message_count,
                    recipients=g.recipients,
                    bounced=g.bounced,
                    deferred=g.deferred,
                    addresses=[
                        {"ip": c, "country": i.country if i else None}
                        for c, i in zip(clients[:20], infos, strict=True)
                    ],
                    reasons=[
                        f"at least {self.min_external} outside recipients relayed within {span(self.window)}"
                    ],
                    timeline=timeline_of(g),
                    evidence=g.evidence,
                    queued_ids=g.queued,
                    recommended_actions=actions_for(
                        "open_relay", ip=", ".join(clients[:5]), queued=len(g.queued)
                    ),
                )
            )
        return out
