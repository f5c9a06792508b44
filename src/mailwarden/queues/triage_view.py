"""``mailwarden triage --queue``: what is in the mail queue right now, next to what the logs say.

``queue_picture(backend, incidents)`` lists and attributes the queue once (``scan``, the same
trust rule as ``mailwarden queue``) and cross-references every incident with it:

* ``account`` incidents (compromised_account, distributed_attack) match messages whose trusted
  attribution names that login (case-insensitive);
* ``uid``/``script`` incidents (web_script) match the uid, and the script when both sides know it;
* ``ip`` incidents (unauthenticated_injection, open_relay, brute_force, password_spray) match the
  trusted client address (open_relay: any of its ``clients`` too);
* the queue ids the logs saw queued (``Incident.queued_ids``) match whatever their attribution.

The result is plain data (the JSON report embeds it as is); ``render_queue_picture`` prints it.
Everything from the queue passes through ``report.safe.clean`` on the way to the terminal, and
command suggestions shell-quote their values.
"""

from __future__ import annotations

import ipaddress
import shlex
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from rich.console import Console
from rich.text import Text

from mailwarden.model.findings import Incident
from mailwarden.queues.base import Attribution, QueueBackend, QueuedMessage
from mailwarden.queues.render import size, when
from mailwarden.queues.scan import ScanStats, scan
from mailwarden.queues.select import Criteria
from mailwarden.queues.summary import Summary
from mailwarden.report.safe import clean

#: queue ids kept per incident in the picture (the count is exact)
MAX_IDS = 50
#: the queue-directory option of the MTAs read from their directory, and its default
_QUEUE_DIR_OPTION = {
    "qmail": ("--qmail-queue", "/var/qmail/queue"),
    "sendmail": ("--sendmail-queue", "/var/spool/mqueue"),
}


def _ip(value: object) -> str | None:
    try:
        return str(ipaddress.ip_address(str(value).strip()))
    except ValueError:
        return None


@dataclass(slots=True)
class _Matcher:
    """What one incident is about, in queue-attribution terms."""

    label: str = ""
    account: str | None = None
    uid: int | None = None
    script: str = ""
    clients: frozenset[str] = frozenset()
    queued_ids: frozenset[str] = frozenset()
    select: list[str] = field(default_factory=list)

    def match(self, m: QueuedMessage) -> str | None:
        a = m.attribution or Attribution()
        if self.account is not None and a.account and a.account.lower() == self.account:
            return "account"
        if (
            self.uid is not None
            and a.uid == self.uid
            and (not self.script or not a.script or _same_script(self.script, a.script))
        ):
            return "uid"
        if self.clients and a.client in self.clients:
            return "client"
        if m.id in self.queued_ids:
            return "queue id in the logs"
        return None


def _same_script(want: str, have: str) -> bool:
    return want == have or want.rsplit("/", 1)[-1] == have.rsplit("/", 1)[-1]


def _matcher(inc: Incident) -> _Matcher:
    s = inc.subject
    m = _Matcher(queued_ids=frozenset(inc.queued_ids))
    if s.get("account"):
        m.account = str(s["account"]).lower()
        m.label = f"account {s['account']}"
        m.select = ["--account", str(s["account"])]
    elif s.get("uid") is not None and str(s["uid"]).isdigit():
        m.uid = int(str(s["uid"]))
        m.script = str(s.get("script") or "")
        m.label = f"uid {m.uid}" + (f", script {m.script}" if m.script else "")
        m.select = ["--uid", str(m.uid)] + (["--script", m.script.rsplit("/", 1)[-1]] if m.script else [])
    else:
        more = s.get("clients")
        raw = [s.get("ip"), *(more if isinstance(more, list) else [])]
        clients = {ip for ip in (_ip(x) for x in raw if x) if ip}
        m.clients = frozenset(clients)
        first = _ip(s.get("ip")) if s.get("ip") else None
        if first:
            m.label = f"client {first}" + (f" (+{len(clients) - 1})" if len(clients) > 1 else "")
        for ip in sorted(clients, key=lambda x: (x != first, x)):
            m.select += ["--client", ip]
    return m


@dataclass(slots=True)
class _Hits:
    queued: int = 0
    recipients: int = 0
    bytes: int = 0
    oldest: int | None = None
    ids: list[str] = field(default_factory=list)
    matched_by: dict[str, int] = field(default_factory=dict)

    def add(self, m: QueuedMessage, why: str) -> None:
        self.queued += 1
        self.recipients += len(m.recipients)
        self.bytes += m.size
        self.oldest = m.arrival if self.oldest is None else min(self.oldest, m.arrival)
        if len(self.ids) < MAX_IDS:
            self.ids.append(m.id)
        self.matched_by[why] = self.matched_by.get(why, 0) + 1


def queue_picture(
    backend: QueueBackend,
    incidents: Sequence[Incident],
    *,
    our_names: Collection[str] = (),
    now: float | None = None,
    top: int = 10,
) -> dict[str, object]:
    """The queue's totals and culprits, and per incident (keyed by its position in
    ``incidents``) how many of its messages are still queued, and their ids.

    ``{"backend": {...}, "summary": {"messages", "bytes", "recipients", "oldest_arrival",
    "queues": {name: {"messages", "bytes"}}, "top_culprits": [[culprit, n], ...], "unattributed"},
    "incidents": {index: {"subject", "queued", "recipients", "bytes", "oldest_arrival",
    "queue_ids" (at most MAX_IDS), "matched_by": {how: n}, "select": [queue filter options]}},
    "scan": {...}}``
    """
    info = backend.describe()
    names = tuple(n.lower() for n in our_names) + tuple(info.our_names)
    stats = ScanStats()
    summ = Summary(now=int(time.time() if now is None else now))
    matchers = [_matcher(inc) for inc in incidents]
    hits = [_Hits() for _ in matchers]
    for found in scan(backend, Criteria(), our_names=names, stats=stats):
        m = found.message
        summ.add(m)
        for mt, h in zip(matchers, hits, strict=True):
            why = mt.match(m)
            if why is not None:
                h.add(m, why)
    doc = summ.to_dict(top=top)
    totals = _dict(doc["totals"])
    return {
        "backend": info.to_dict(),
        "summary": {**totals, "top_culprits": doc["culprits"], "unattributed": doc["unattributed"]},
        "incidents": {
            i: {
                "subject": mt.label,
                "queued": h.queued,
                "recipients": h.recipients,
                "bytes": h.bytes,
                "oldest_arrival": h.oldest,
                "queue_ids": h.ids,
                "matched_by": h.matched_by,
                "select": mt.select,
            }
            for i, (mt, h) in enumerate(zip(matchers, hits, strict=True))
        },
        "scan": stats.to_dict(),
    }


def _dict(value: object) -> dict[str, object]:
    return {str(k): v for k, v in value.items()} if isinstance(value, dict) else {}


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def render_queue_picture(console: Console, picture: dict[str, object], *, numbers_from: int = 1) -> None:
    """The queue section of the triage report; incidents numbered as the report numbers them."""
    backend = _dict(picture.get("backend"))
    summ = _dict(picture.get("summary"))
    mta = str(backend.get("mta") or "")
    version = " ".join(str(x) for x in (mta, backend.get("version")) if x)
    queues = _dict(summ.get("queues"))
    per_queue = ", ".join(
        f"{clean(k, 40)} {_int(_dict(v).get('messages'))}" for k, v in sorted(queues.items())
    )
    n = _int(summ.get("messages"))
    head = f"QUEUE now ({clean(version, 60)}): {n} message(s), {size(_int(summ.get('bytes')))}"
    console.print(Text(head + (f"; {per_queue}" if per_queue else ""), style="bold"))
    if n == 0:
        return
    oldest = summ.get("oldest_arrival")
    console.print(Text(f"  oldest: {when(oldest if isinstance(oldest, int) else None)}"))
    culprits = summ.get("top_culprits")
    if isinstance(culprits, list) and culprits:
        top = ", ".join(f"{clean(str(row[0]), 80)} ({_int(row[1])})" for row in culprits[:5] if len(row) == 2)
        console.print(Text(f"  sent by: {top}"))
    unattributed = _int(summ.get("unattributed"))
    if unattributed:
        console.print(Text(f"  not attributable: {unattributed}"))
    can = backend.get("can")
    verb = "hold" if isinstance(can, list) and "hold" in can else "delete"
    mta_opt = ["--mta", mta] if mta in ("postfix", "exim", "qmail", "sendmail") else []
    queue_dir = str(backend.get("queue_dir") or "")
    if mta in _QUEUE_DIR_OPTION and queue_dir and queue_dir != _QUEUE_DIR_OPTION[mta][1]:
        mta_opt += [_QUEUE_DIR_OPTION[mta][0], queue_dir]
    for idx, raw in sorted(_dict(picture.get("incidents")).items(), key=lambda kv: int(kv[0])):
        entry = _dict(raw)
        queued = _int(entry.get("queued"))
        if not queued:
            continue
        listed = entry.get("queue_ids")
        ids = [str(x) for x in listed] if isinstance(listed, list) else []
        shown = " ".join(ids[:6]) + (" ..." if queued > min(len(ids), 6) else "")
        console.print(
            Text(
                f"  #{int(idx) + numbers_from} {clean(str(entry.get('subject') or ''), 120)}: "
                f"{queued} queued message(s), {_int(entry.get('recipients'))} recipient(s), "
                f"{size(_int(entry.get('bytes')))}; ids {clean(shown, 200)}"
            )
        )
        select = entry.get("select")
        if isinstance(select, list) and select:
            cmd = shlex.join(["mailwarden", "queue", verb, *mta_opt, *(str(x) for x in select)])
            console.print(Text(f"     {verb} them: {clean(cmd, 300)}   (a dry run; add --yes to act)"))
