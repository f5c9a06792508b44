"""Web script: mail to outside domains submitted locally by a web server's user.

A contact form abused for spam, or a web shell, calls ``sendmail``. The MTA
logs who submitted it: Postfix's pickup and qmail the numeric uid, Sendmail
the uid in ``ctladdr``, Exim the login name (``U=www-data``). The script
itself shows up where something names it: Postfix with a ``header_checks``
INFO rule on ``X-PHP-Originating-Script``, and PHP's own ``mail.log``, which
writes one line per ``mail()`` call with the script's path and line
(``ScriptMail`` events). Those lines carry no queue id, so they are joined to
an MTA finding by time: the script with the most calls while the finding's
mail went out names it. A PHP ``mail.log`` alone (no MTA log given) still
makes a finding when one script writes to many distinct recipients.

False positives: a shop or CMS that sends order confirmations and
newsletters through PHP ``mail()`` (raise ``min_external`` for that user,
or watch the script name). See docs/detectors/web_script.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from mailwarden.correlate.messages import LOCAL_SUBMISSION, MessageState
from mailwarden.detect._outbound import Group, OutboundDetector, severity_of, timeline_of
from mailwarden.detect.base import (
    MAX_EVIDENCE,
    BoundedDict,
    DetectContext,
    SlidingDistinct,
    add_evidence,
    span,
)
from mailwarden.detect.playbook import actions_for
from mailwarden.model import DeliveryAttempted, Event, ScriptMail
from mailwarden.model.findings import Evidence, Incident

# www-data (Debian), apache (RHEL), nginx, wwwrun (SUSE), www (FreeBSD), nobody.
DEFAULT_WEB_UIDS = (33, 48, 30, 80, 65534)
DEFAULT_WEB_USERS = ("www-data", "apache", "nginx", "wwwrun", "www", "nobody", "httpd", "lighttpd")


@dataclass(frozen=True, slots=True)
class Params:
    """Watch ``web_uids``/``web_users`` (and any submitter whose mail names a script).

    A finding needs ``min_external`` outside recipients within ``window``.

    On shared hosting (Plesk, cPanel, PHP-FPM pools) PHP runs as the site's
    own user, not a web server uid, so every other local user except root is
    watched too, at ``other_min_external``.

    ``min_script_recipients``: distinct recipients of one script's ``mail()``
    calls within ``window`` that make a finding from PHP's mail.log alone.
    """

    min_external: int = 5
    window: timedelta = timedelta(hours=1)
    web_uids: tuple[int, ...] = field(default=DEFAULT_WEB_UIDS)
    web_users: tuple[str, ...] = field(default=DEFAULT_WEB_USERS)
    other_min_external: int = 25
    ignore_uids: tuple[int, ...] = (0,)
    ignore_users: tuple[str, ...] = ("root",)
    min_script_recipients: int = 20
    max_tracked: int = 10_000


@dataclass(slots=True)
class _Stretch:
    """Calls of one script separated from the next ones by a quiet gap longer than the window."""

    first: datetime
    last: datetime
    calls: int = 0


@dataclass(slots=True)
class _Script:
    """One script's ``mail()`` calls, from PHP's mail.log."""

    window: timedelta
    recipients: SlidingDistinct = field(init=False)
    calls: int = 0
    first_ts: datetime | None = None
    last_ts: datetime | None = None
    flagged_at: datetime | None = None
    peak: int = 0
    evidence: list[Evidence] = field(default_factory=list)
    stretches: list[_Stretch] = field(default_factory=list)  # to join with MTA findings by time

    def __post_init__(self) -> None:
        self.recipients = SlidingDistinct(self.window, limit=100_000)


class WebScript(OutboundDetector):
    name = "web_script"
    wants: tuple[type[Event], ...] = (DeliveryAttempted, ScriptMail)

    def __init__(self, ctx: DetectContext, params: Params | None = None):
        self.p = params or Params()
        super().__init__(ctx, self.p.min_external, self.p.window, self.p.max_tracked)
        self.scripts: BoundedDict[str, _Script] = BoundedDict(
            self.p.max_tracked,
            lambda: _Script(self.p.window),
            lambda: ctx.note_dropped(self.name + ".scripts"),
        )

    def key(self, msg: MessageState) -> tuple[object, ...] | None:
        if msg.origin != LOCAL_SUBMISSION:
            return None
        if msg.uid in self.p.ignore_uids or msg.user in self.p.ignore_users:
            return None
        if msg.uid is None and not msg.user:
            return None
        return (msg.uid, msg.user, msg.script)

    def threshold(self, key: tuple[object, ...]) -> int:
        uid, user, script = key
        if uid in self.p.web_uids or user in self.p.web_users or script:
            return self.min_external
        return self.p.other_min_external

    def feed(self, event: Event, msg: MessageState | None) -> None:
        if isinstance(event, ScriptMail):
            self._script_mail(event)
        else:
            super().feed(event, msg)

    def _script_mail(self, ev: ScriptMail) -> None:
        s = self.scripts.touch(ev.script)
        if (s.last_ts is None or ev.ts - s.last_ts > self.window) and len(s.stretches) < 100:
            s.stretches.append(_Stretch(ev.ts, ev.ts))
        if s.stretches:
            s.stretches[-1].last = ev.ts
            s.stretches[-1].calls += 1
        s.calls += 1
        s.first_ts = s.first_ts or ev.ts
        s.last_ts = ev.ts
        n = 0
        for rcpt in ev.to.lower().split(",")[:100]:  # "To: a@x, b@y": each is a recipient
            n = s.recipients.add(ev.ts, rcpt.strip())
        s.peak = max(s.peak, n)
        if len(s.evidence) < MAX_EVIDENCE:
            add_evidence(s.evidence, ev.ts, f"PHP mail() call from {ev.script}:{ev.script_line}", ev.source)
        if n >= self.p.min_script_recipients and s.flagged_at is None:
            s.flagged_at = ev.ts

    def _script_during(self, first: datetime, last: datetime) -> tuple[str, _Script] | None:
        """The script with the most mail() calls in stretches overlapping [first, last]."""
        best: tuple[int, str, _Script] | None = None
        for name, s in self.scripts.items():
            calls = sum(st.calls for st in s.stretches if st.first <= last and st.last >= first)
            if calls and (best is None or calls > best[0]):
                best = (calls, name, s)
        return None if best is None else (best[1], best[2])

    def finish(self) -> list[Incident]:
        out = []
        named: set[str] = set()
        for (uid, user, script), g in self.flagged():
            if g.first_ts is None or g.last_ts is None:
                continue
            script_s = str(script)
            found = None if script_s else self._script_during(g.first_ts, g.last_ts)
            evidence = list(g.evidence)
            if found is not None:
                script_s, s = found
                named.add(script_s)
                evidence = (s.evidence[:3] + evidence)[:MAX_EVIDENCE]
            who = {"uid": uid, "user": str(user), "script": script_s}
            out.append(self._incident(who=who, g=g, evidence=evidence, first=g.first_ts, last=g.last_ts))
        for name, s in self.scripts.items():
            if name in named or s.flagged_at is None or s.first_ts is None or s.last_ts is None:
                continue
            out.append(self._script_incident(name, s, s.first_ts, s.last_ts))
        return out

    def _incident(
        self,
        *,
        who: dict[str, object],
        g: Group,
        evidence: list[Evidence],
        first: datetime,
        last: datetime,
    ) -> Incident:
        uid, user, script = who["uid"], str(who["user"]), str(who["script"])
        uid_n = None if uid is None else int(str(uid))
        named = f"uid {uid_n}" if uid_n is not None else f"user {user}"
        if script:
            named += f", script {script}"
        subject: dict[str, object] = {"uid": uid_n, "script": script}
        if user:
            subject["user"] = user
        return Incident(
            kind="web_script",
            subject=subject,
            path="local_submission",
            severity=severity_of(g),
            first_seen=first,
            last_seen=last,
            summary=f"{g.message_count} messages to outside domains submitted locally by {named}",
            messages=g.message_count,
            recipients=g.recipients,
            bounced=g.bounced,
            deferred=g.deferred,
            reasons=[
                f"at least {self.threshold((uid, user, script))} outside recipients within "
                f"{span(self.window)} submitted locally by {named}"
            ],
            timeline=timeline_of(g),
            evidence=evidence,
            queued_ids=g.queued,
            recommended_actions=actions_for(
                "web_script",
                uid=uid_n if uid_n is not None else user,
                script=script,
                spam=bool(g.complaints),
                queued=len(g.queued),
            ),
        )

    def _script_incident(self, name: str, s: _Script, first: datetime, last: datetime) -> Incident:
        return Incident(
            kind="web_script",
            subject={"uid": None, "script": name},
            path="local_submission",
            severity="critical" if s.calls >= 100 else "high",
            first_seen=first,
            last_seen=last,
            summary=f"{s.calls} PHP mail() calls from {name} ({s.peak} distinct recipients within "
            f"{span(self.window)})",
            messages=s.calls,
            recipients=s.peak,
            bounced=0,
            deferred=0,
            reasons=[
                f"at least {self.p.min_script_recipients} distinct recipients within {span(self.window)} "
                "from one script in PHP's mail.log"
            ],
            timeline=[s.evidence[0]] if s.evidence else [],
            evidence=list(s.evidence),
            queued_ids=[],
            recommended_actions=actions_for("web_script", uid="(the site's PHP user)", script=name),
        )
