"""Web script: mail to outside domains submitted locally by a web server's uid.

A contact form abused for spam, or a web shell, calls ``sendmail``; Postfix's
pickup logs the uid and, with a ``header_checks`` INFO rule, the
``X-PHP-Originating-Script`` header names the script. False positives: a
shop or CMS that sends order confirmations and newsletters through PHP
``mail()`` (raise ``min_external`` for that uid, or watch the script name).
See docs/detectors/web_script.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from mailwarden.correlate.messages import LOCAL_SUBMISSION, MessageState
from mailwarden.detect._outbound import OutboundDetector, severity_of, timeline_of
from mailwarden.detect.base import DetectContext, span
from mailwarden.detect.playbook import actions_for
from mailwarden.model.findings import Incident

# www-data (Debian), apache (RHEL), nginx, wwwrun (SUSE), www (FreeBSD), nobody.
DEFAULT_WEB_UIDS = (33, 48, 30, 80, 65534)


@dataclass(frozen=True, slots=True)
class Params:
    """Watch ``web_uids`` (and any uid whose mail names a script); fire at ``min_external``."""

    min_external: int = 5
    window: timedelta = timedelta(hours=1)
    web_uids: tuple[int, ...] = field(default=DEFAULT_WEB_UIDS)
    max_tracked: int = 10_000


class WebScript(OutboundDetector):
    name = "web_script"

    def __init__(self, ctx: DetectContext, params: Params | None = None):
        self.p = params or Params()
        super().__init__(ctx, self.p.min_external, self.p.window, self.p.max_tracked)

    def key(self, msg: MessageState) -> tuple[object, ...] | None:
        if msg.origin != LOCAL_SUBMISSION or msg.uid is None:
            return None
        if msg.uid in self.p.web_uids or msg.script:
            return (msg.uid, msg.script)
        return None

    def finish(self) -> list[Incident]:
        out = []
        for (uid, script), g in self.flagged():
            if g.first_ts is None or g.last_ts is None:
                continue
            uid_n = int(str(uid))
            script_s = str(script)
            who = f"uid {uid_n}" + (f", script {script_s}" if script_s else "")
            out.append(
                Incident(
                    kind="web_script",
                    subject={"uid": uid_n, "script": script_s},
                    path="local_submission",
                    severity=severity_of(g),
                    first_seen=g.first_ts,
                    last_seen=g.last_ts,
                    summary=f"{g.message_count} messages to outside domains submitted locally by {who}",
                    messages=g.message_count,
                    recipients=g.recipients,
                    bounced=g.bounced,
                    deferred=g.deferred,
                    reasons=[
                        f"at least {self.min_external} outside recipients within {span(self.window)} "
                        "from a web server uid"
                    ],
                    timeline=timeline_of(g),
                    evidence=g.evidence,
                    queued_ids=g.queued,
                    recommended_actions=actions_for(
                        "web_script",
                        uid=uid_n,
                        script=script_s,
                        spam=bool(g.complaints),
                        queued=len(g.queued),
                    ),
                )
            )
        return out
