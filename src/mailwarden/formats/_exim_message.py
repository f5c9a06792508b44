"""Exim mainlog lines that start with a message id: arrival, deliveries, the end.

``<=`` is the arrival (receive.c), ``=>``/``->``/``>>`` a delivery, ``**`` a
permanent failure, ``==`` a deferral (deliver.c), ``Completed`` the end of the
message. Recipients, senders, the message id header and the subject are
client-chosen; each split below first skips them quote-aware and then reads
the fields Exim wrote after them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from mailwarden.formats._exim_fields import (
    end_of_quoted,
    ip_of,
    is_message_id,
    parse_host,
    skip_address,
    split_reply,
    unquote,
)
from mailwarden.model import (
    AuthSucceeded,
    BounceNotification,
    DeliveryAttempted,
    Event,
    LocalSubmission,
    MessageInfo,
    MessageQueued,
    MessageReceived,
    MessageRemoved,
    QueueAction,
    Record,
)

NOTHING: tuple[Event, ...] = ()
# "H=[name ][(helo) ][addr][ I=[iface]:port]" of an arrival when the HELO holds no ")": the
# shapes parse_host reads the same way (name up to the first blank, the HELO up to its ") ",
# the address as _exim_fields._bracket takes it), then +incoming_interface's port.
_RECEIVED_HOST = re.compile(
    r"(?:([^ (\[][^ ]*) )?(?:\(([^)]*)\) )?\[([^\] \[]{0,64})\](?::([0-9]{1,5}+))?+(?=[ :]|\Z)"
    r"((?: I=\[[^\]]{0,65}\]:([^ ]*))?)"
).match
# "rcpt R=router T=transport H=name [ip] ... C="reply"" (a delivery with nothing quoted or
# escaped before the reply's closing quote and no port): the first " T=", " H=" and ' C="'
# after the recipient are these, since no value before them holds a blank or a quote.
_SENT = re.compile(
    r'([^ "]+) R=[^ "]* T=([^ "]*) H=([^ "]*) \[([^\] "]{0,68})\](?!:)[^"]* C="([^"\\]*)"'
).match
# " H=name [ip]" of a delivery: the name, an optional "DS " and the first "]" within 70 characters.
_RELAY_HOST = re.compile(r"([^ ]*) (?:DS )?\[([^\]]{0,68})\]").match
SUBMISSION_PORTS = frozenset({"465", "587"})
_SMTP_ERROR = "SMTP error from remote mail server after "
# Per-message chatter that says nothing about who sent a message or where it went.
_QUIET = (
    "SMTP connection outbound ",  # cPanel's outbound connection note
    "SA: ",  # sa-exim's verdict (fail2ban's exim-spam samples)
    "DKIM: ",  # DKIM verification result
    "no immediate delivery",
    "Unfrozen by ",
    "Message is frozen",
    "cancelled by system filter",
    "SMTP data timeout",
    "(= ",  # fakereject: the client was told the message was refused
    "*> ",  # delivery suppressed by -N
)


def parse_with_id(record: Record, msg: str, n: int) -> Sequence[Event] | None:
    """A line that starts with a message id of length ``n``; None when the rest is not understood."""
    qid = msg[:n]
    rest = msg[n + 1 :]
    head = rest[:3]
    if head == "=> " or head == "-> " or head == ">> ":  # noqa: PLR1714 - faster than a tuple test
        return _delivery(record, qid, rest, "sent")
    if head == "<= ":
        return _received(record, qid, rest)
    if rest == "Completed" or rest.startswith("Completed QT="):
        return [MessageRemoved(ts=record.ts, source=record.source, host=record.host, queue_id=qid)]
    if head == "** ":
        return _delivery(record, qid, rest, "bounced")
    if head == "== ":
        return _delivery(record, qid, rest, "deferred")
    if rest.startswith("Frozen"):
        return [
            MessageInfo(
                ts=record.ts,
                source=record.source,
                host=record.host,
                queue_id=qid,
                check="frozen",
                action="hold",
                value=rest[6:].lstrip(" :"),
            )
        ]
    if rest.startswith("removed by "):
        return [
            QueueAction(ts=record.ts, source=record.source, host=record.host, queue_id=qid, action="deleted")
        ]
    if rest.startswith(_QUIET):
        return NOTHING
    return None


# --- arrival ----------------------------------------------------------------------


def _received(record: Record, qid: str, rest: str) -> Sequence[Event] | None:
    """``<= sender [R=id] [H=host [I=..]] [U=ident|login] [Ci=..] P=proto ... S=size ...``.

    One function on purpose: this is the hottest line of a mainlog (one per message).
    """
    find = rest.find
    startswith = rest.startswith
    if startswith("<= <>"):
        sender, pos = "", 5
    else:
        pos = find(" ", 3)
        if pos < 0 or find('"', 3, pos) >= 0:  # no blank, or a quoted local part: skip it quote-aware
            pos = skip_address(rest, 3, " ")
            if pos < 0:
                return None
        sender = rest[3:pos]
    bounce: BounceNotification | None = None
    if startswith(" R=", pos):
        end = find(" ", pos + 3)
        end = len(rest) if end < 0 else end
        ref = rest[pos + 3 : end]
        pos = end
        if not is_message_id(ref) or len(ref) not in (16, 23):
            return None
        bounce = BounceNotification(
            ts=record.ts,
            source=record.source,
            host=record.host,
            queue_id=ref,
            notice_queue_id=qid,
            kind="delay" if _is_delay_warning(rest, pos, ref) else "non_delivery",
        )
    if startswith(" DS H=", pos):
        pos += 3
    client: str | None = None
    client_name = ""
    has_host = startswith(" H=", pos)
    service = "smtp"
    if has_host:
        m = _RECEIVED_HOST(rest, pos + 3)
        if m is not None:  # the plain shapes, read exactly as parse_host reads them
            client_name = m[1] or ""
            inner = m[3]
            client = ip_of(inner) if inner else None
            pos = m.start(5)
            if m[6] in SUBMISSION_PORTS:
                service = "submission"
        else:
            host = parse_host(rest, pos + 3)
            if host is None:
                return None
            client_name, _, client, pos, _ = host
        # " I=[addr]:port" right after the host (log_selector +incoming_interface)
        if m is None and startswith(" I=[", pos):
            close = find("]", pos + 4, pos + 70)
            if close >= 0 and startswith(":", close + 1):
                sp = find(" ", close)
                if rest[close + 2 : sp if sp >= 0 else len(rest)] in SUBMISSION_PORTS:
                    service = "submission"
    # P= is always written; the first " P=" after the host is Exim's (the
    # ident after U= is a single blank-free token).
    p_at = find(" P=", pos)
    if p_at < 0:
        return None
    user = ""
    if not has_host:
        u_at = find(" U=", pos, p_at + 1)
        if u_at >= 0:
            user = rest[u_at + 3 : p_at]
            if " " in user:
                return None
    s_at = find(" S=", p_at)
    if s_at < 0:
        return None
    s_end = find(" ", s_at + 3)
    if s_end < 0:
        s_end = len(rest)
    size_text = rest[s_at + 3 : s_end]
    if len(size_text) > 19 or not size_text.isascii() or not size_text.isdigit():
        return None
    account = method = ""
    a_at = find(" A=", p_at, s_at)
    if a_at >= 0:
        colon = find(":", a_at + 3, s_at)
        if colon >= 0:
            method = rest[a_at + 3 : colon]
            tail = rest[colon + 1 : s_at]
            # +smtp_mailauth appends ":<AUTH= sender>" (client text) to the id.
            account = tail.partition(":")[0]
            if " " in account:
                for stop in (" PRDR", " PRX=", " K"):
                    cut = account.find(stop)
                    if cut >= 0:
                        account = account[:cut]
        else:
            method = rest[a_at + 3 : s_at].partition(" ")[0]
    # Recipients of " for a b c" (+received_recipients), after the quoted subject; 0 if unknown.
    nrcpt = 0
    look = s_end
    t_at = find(' T="', look)
    if t_at >= 0:
        look = end_of_quoted(rest, t_at + 3)
    if look >= 0:
        f_at = find(" for ", look)
        if f_at >= 0:
            start = f_at + 5
            if find('"', start) < 0:
                if start < len(rest):
                    nrcpt = rest.count(" ", start) + (0 if rest.endswith(" ") else 1)
            else:
                nrcpt = _recipient_count(rest, start)
    ts, src, hst = record.ts, record.source, record.host
    queued = MessageQueued(
        ts=ts, source=src, host=hst, queue_id=qid, sender=sender, size=int(size_text), nrcpt=nrcpt
    )
    if has_host:
        if account:
            events: list[Event] = [
                MessageReceived(
                    ts=ts,
                    source=src,
                    host=hst,
                    queue_id=qid,
                    service=service,
                    client=client,
                    client_name=client_name,
                    sasl_username=account,
                    sasl_method=method,
                ),
                AuthSucceeded(
                    ts=ts, source=src, host=hst, service=service, user=account, client=client, method=method
                ),
                queued,
            ]
            if bounce is not None:
                events.insert(0, bounce)
            return events
        received = MessageReceived(
            ts=ts,
            source=src,
            host=hst,
            queue_id=qid,
            service=service,
            client=client,
            client_name=client_name,
            sasl_method=method,
        )
        return [received, queued] if bounce is None else [bounce, received, queued]
    if bounce is not None:
        return [bounce, queued]
    if user:
        return [
            LocalSubmission(ts=ts, source=src, host=hst, queue_id=qid, uid=None, sender=sender, user=user),
            queued,
        ]
    return [queued]


def _is_delay_warning(rest: str, pos: int, ref: str) -> bool:
    """Delay warnings are logged like bounces; their subject (when logged) says which."""
    return rest.find(f' T="Warning: message {ref} delayed', pos) >= 0


def _recipient_count(rest: str, i: int) -> int:
    """Count the recipients from ``i`` on, skipping quoted local parts (which may hold blanks)."""
    count = 0
    n = len(rest)
    while i < n:
        sp = skip_address(rest, i, " ")
        count += 1
        if sp < 0:
            break
        i = sp + 1
    return count


# --- deliveries -------------------------------------------------------------------


def _delivery(record: Record, qid: str, rest: str, status: str) -> Sequence[Event] | None:
    """``=> rcpt [<parent>] [F=<s>] [P=<s>] R=router T=transport [H=host [ip]] ... [C="reply"]``.

    ``**`` lines end with `` : <reason>`` (``: `` before 4.8x), ``==`` lines with
    ``defer (errno)[: strerror][ H=host [ip]][: message]``.
    """
    if status == "sent":
        m = _SENT(rest, 3)
        if m is not None:  # the common remote delivery, read exactly as below
            reply = m[5]
            code, dsn = split_reply(reply)
            if not dsn and code.startswith("2"):
                dsn = "2.0.0"
            return [
                DeliveryAttempted(
                    ts=record.ts,
                    source=record.source,
                    host=record.host,
                    queue_id=qid,
                    recipient=m[1],
                    status=status,
                    relay=f"{m[3]}[{m[4]}]",
                    dsn=dsn,
                    reply=reply,
                    transport=transport_kind(m[2], True),
                )
            ]
    find = rest.find
    startswith = rest.startswith
    n = len(rest)
    sp = find(" ", 3)
    if find('"', 3, n if sp < 0 else sp) >= 0:  # a quoted local part: skip it quote-aware
        sp = skip_address(rest, 3, " ")
    end = n if sp < 0 else sp
    recipient = rest[3:end]
    if not recipient:
        return None
    pos = end
    parent = ""
    if startswith(" R=", pos):
        pass  # the common case: the router follows the recipient directly
    elif startswith(" <", pos):
        close = skip_address(rest, pos + 2, ">")
        if close < 0:
            return None
        parent = rest[pos + 2 : close]
        pos = close + 1
    elif startswith(" (", pos):  # +all_parents: " (parent, parent)"
        close = skip_address(rest, pos + 2, ")")
        if close < 0:
            return None
        pos = close + 1
        if startswith(" <", pos):
            close = skip_address(rest, pos + 2, ">")
            if close < 0:
                return None
            pos = close + 1
    if not startswith(" R=", pos):
        for key in (" F=<", " P=<"):
            if startswith(key, pos):
                close = skip_address(rest, pos + 4, ">")
                if close < 0:
                    return None
                pos = close + 1
        if startswith(" Q=", pos):
            q_end = find(" ", pos + 3)
            pos = n if q_end < 0 else q_end
    # From here on everything up to the reply is server-written: the fields are rest[pos:reply_at].
    reply_at = n
    reply = ""
    if status == "deferred":
        d_at = find(" defer (", pos)
        if d_at < 0:
            return None
        reply_at = d_at
        reply = _defer_reason(rest, d_at + 8)
    elif status == "bounced":
        c_at = find(" : ", pos)
        if c_at < 0:
            c_at = find(": ", pos)
            if c_at < 0:
                return None
            reason = rest[c_at + 2 :]
        else:
            reason = rest[c_at + 3 :]
        reply_at = c_at
        reply = _remote_reply(_without_deliver_time(reason))
    transport_name = ""
    t_at = find(" T=", pos, reply_at)
    if t_at >= 0:
        t_end = find(" ", t_at + 3, reply_at)
        transport_name = rest[t_at + 3 : reply_at if t_end < 0 else t_end]
    relay, remote = _relay(rest, pos, reply_at)
    if status == "deferred" and not relay:
        relay, remote = _relay(rest, reply_at, n)
    if status == "sent":
        c_at = find(' C="', pos)
        if c_at >= 0:
            q_at = find('"', c_at + 4)
            if q_at >= 0 and find("\\", c_at + 4, q_at) < 0:  # nothing escaped: the text as it is
                reply = rest[c_at + 4 : q_at]
            else:
                c_end = end_of_quoted(rest, c_at + 3)
                if c_end > 0:
                    reply = unquote(rest[c_at + 4 : c_end - 1])
    code, dsn = split_reply(reply)
    if not dsn and status == "sent" and code.startswith("2"):
        dsn = "2.0.0"
    transport = transport_kind(transport_name, remote)
    if not relay:
        relay = transport_name
    return [
        DeliveryAttempted(
            ts=record.ts,
            source=record.source,
            host=record.host,
            queue_id=qid,
            recipient=recipient,
            status=status,
            relay=relay,
            dsn=dsn,
            reply=reply,
            orig_recipient=parent,
            transport=transport,
        )
    ]


def _relay(text: str, lo: int, hi: int) -> tuple[str, bool]:
    """``("mx.example.net[192.0.2.25]:25", True)`` from `` H=name [ip][:port]`` in ``text[lo:hi]``;
    a local H= has no [ip]."""
    h_at = text.find(" H=", lo, hi)
    if h_at < 0:
        return "", False
    start = h_at + 3
    m = _RELAY_HOST(text, start, hi)
    if m is not None and text[m.end() : m.end() + 1] != ":":  # "name [ip]", no port
        return f"{m[1]}[{m[2]}]", True
    sp = text.find(" ", start, hi)
    if sp < 0:
        return text[start:hi], False
    name = text[start:sp]
    look = sp + 1
    if text.startswith("DS ", look, hi):
        look += 3
    if not text.startswith("[", look, hi):
        return name, False
    close = text.find("]", look, min(look + 70, hi))
    if close < 0:
        return name, False
    ip = text[look + 1 : close]
    port = ""
    if text.startswith(":", close + 1, hi):
        k = close + 2
        while k < hi and k - close < 8 and text[k].isdigit():
            k += 1
        if k > close + 2:
            port = text[close + 1 : k]
    return f"{name}[{ip}]{port}", True


def _defer_reason(rest: str, pos: int) -> str:
    """What follows ``defer (errno)``: the remote reply when there is one, else Exim's words."""
    close = rest.find(")", pos, pos + 12)
    if close < 0:
        return ""
    tail = rest[close + 1 :]
    at = tail.find(_SMTP_ERROR)
    if at >= 0:
        return _remote_reply(tail[at:])
    tail = tail.removeprefix(": ")
    if tail.startswith("H=") or " H=" in tail[:200]:
        # "<strerror> H=host [ip][:port][*]: message" -> keep strerror and message
        h_at = 0 if tail.startswith("H=") else tail.find(" H=")
        head = tail[:h_at]
        colon = tail.find(": ", h_at)
        msg = tail[colon + 2 :] if colon >= 0 else ""
        return f"{head}: {msg}" if head and msg else head or msg
    return tail


def _without_deliver_time(reason: str) -> str:
    """Drop the `` DT=0.123s`` that ``+deliver_time`` appends after a failure's reason (seen on a
    real Exim 4.96): it is Exim's figure, not part of the remote reply."""
    at = reason.rfind(" DT=")
    if at >= 0 and reason.endswith("s"):
        figure = reason[at + 4 : -1].removesuffix("m").replace(".", "", 1)
        if figure.isascii() and figure.isdigit():
            return reason[:at]
    return reason


def _remote_reply(reason: str) -> str:
    """The remote reply in ``SMTP error from remote mail server after <cmd>: [host h [ip]: ]reply``."""
    if not reason.startswith(_SMTP_ERROR):
        return reason
    after = reason[len(_SMTP_ERROR) :]
    if after.startswith(("RCPT TO:<", "MAIL FROM:<")):
        cut = after.find(">: ")
        if cut < 0:
            return reason
        reply = after[cut + 3 :]
    else:
        cut = after.find(": ")
        if cut < 0:
            return reason
        reply = after[cut + 2 :]
    if reply.startswith("host "):
        # before 4.8x: "... after RCPT TO:<x>: host mx.example.net [192.0.2.25]: 550 ..."
        hc = reply.find("]: ", 5, 400)
        if hc >= 0:
            reply = reply[hc + 3 :]
    return reply


@lru_cache(maxsize=1024)
def transport_kind(name: str, remote: bool) -> str:
    """Normalised transport: ``smtp`` for a delivery to a remote host, local kinds otherwise.

    Transport names are the administrator's (``remote_smtp``, cPanel's
    ``dkim_remote_smtp``, ``local_delivery``, ``dovecot_virtual_delivery``);
    a delivery line with ``H=name [ip]`` went over the network.
    """
    low = name.lower()
    if "lmtp" in low:
        return "lmtp"
    if "smtp" in low:
        return "smtp"
    if "pipe" in low:
        return "pipe"
    if remote:
        return "smtp"
    if "virtual" in low or "dovecot" in low:
        return "virtual"
    if not name:
        return ""
    return "local"


__all__ = ["NOTHING", "SUBMISSION_PORTS", "parse_with_id", "transport_kind"]
