"""Unauthenticated injection: mail to outside domains over SMTP from mynetworks without AUTH.

This is the "telnet" path: something on the server itself or on a trusted
network (a compromised web application talking SMTP to localhost, a bot on
the LAN) sends through Postfix because ``permit_mynetworks`` lets it. False
positives: monitoring or cron jobs and local applications that legitimately
send a few mails to outside addresses over localhost (raise ``min_external``
or move them to authenticated submission). See
docs/detectors/unauthenticated_injection.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from mailwarden.correlate.messages import LOCAL_SMTP, MessageState
from mailwarden.detect._outbound import OutboundDetector, severity_of, timeline_of
from mailwarden.detect.base import DetectContext, span
from mailwarden.detect.playbook import actions_for
from mailwarden.model import DeliveryAttempted, Event, ProtocolViolation
from mailwarden.model.findings import Evidence, Incident


@dataclass(frozen=True, slots=True)
class Params:
    """``min_external`` outside recipients within ``window`` from one local client."""

    min_external: int = 5
    window: timedelta = timedelta(hours=1)
    max_tracked: int = 10_000


class UnauthenticatedInjection(OutboundDetector):
    name = "unauthenticated_injection"

    wants: tuple[type[Event], ...] = (DeliveryAttempted, ProtocolViolation)

    def __init__(self, ctx: DetectContext, params: Params | None = None):
        p = params or Params()
        super().__init__(ctx, p.min_external, p.window, p.max_tracked)
        # per local client: the first and the number of pipelining violations (bounded)
        self.raw_smtp: dict[str, tuple[Evidence, int]] = {}

    def feed(self, event: Event, msg: MessageState | None) -> None:
        if isinstance(event, ProtocolViolation):
            client = event.client
            if client is not None and self.ctx.is_local(client):
                seen = self.raw_smtp.get(client)
                if seen is not None:
                    self.raw_smtp[client] = (seen[0], seen[1] + 1)
                elif len(self.raw_smtp) < 1000:
                    what = (
                        f"client pipelined SMTP commands after {event.stage} (raw SMTP, not a mail program)"
                    )
                    self.raw_smtp[client] = (Evidence(event.ts, what, event.source), 1)
            return
        super().feed(event, msg)

    def key(self, msg: MessageState) -> tuple[object, ...] | None:
        return (msg.client,) if msg.origin == LOCAL_SMTP else None

    def finish(self) -> list[Incident]:
        out = []
        for (client,), g in self.flagged():
            if g.first_ts is None or g.last_ts is None:
                continue
            ip = str(client)
            senders = sorted(g.senders, key=lambda s: -g.senders[s])
            out.append(
                Incident(
                    kind="unauthenticated_injection",
                    subject={"ip": ip, "senders": senders[:10]},
                    path="unauthenticated_smtp",
                    severity=severity_of(g),
                    first_seen=g.first_ts,
                    last_seen=g.last_ts,
                    summary=f"{g.message_count} messages to outside domains injected over SMTP "
                    f"without authentication from {ip} (mynetworks)",
                    messages=g.message_count,
                    recipients=g.recipients,
                    bounced=g.bounced,
                    deferred=g.deferred,
                    addresses=[{"ip": ip, "local": True}],
                    reasons=[
                        f"at least {self.min_external} outside recipients within {span(self.window)}, "
                        "no SMTP AUTH",
                        *self._raw_reason(ip),
                    ],
                    timeline=sorted(
                        timeline_of(g) + ([self.raw_smtp[ip][0]] if ip in self.raw_smtp else []),
                        key=lambda e: e.ts,
                    ),
                    evidence=g.evidence,
                    queued_ids=g.queued,
                    recommended_actions=actions_for(
                        "unauthenticated_injection",
                        ip=ip,
                        spam=bool(g.complaints),
                        queued=len(g.queued),
                    ),
                )
            )
        return out

    def _raw_reason(self, ip: str) -> list[str]:
        seen = self.raw_smtp.get(ip)
        if seen is None:
            return []
        return [f"{seen[1]} session(s) pipelined commands without waiting: someone talks raw SMTP"]
