"""Exim mainlog lines that start with a message id: arrival, deliveries, the end.

``<=`` is the arrival (receive.c), ``=>``/``->``/``>>`` a delivery, ``**`` a
permanent failure, ``==`` a deferral (deliver.c), ``Completed`` the end of the
message. Recipients, senders, the message id header and the subject are
client-chosen; each split below first skips them quote-aware and then reads
the fields Exim wrote after them.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from mailwarden.formats._exim_fields import (
    end_of_quoted,
    field,
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
    if head == "<= ":
        return _received(record, qid, rest)
    if head in ("=> ", "-> ", ">> "):
        return _delivery(record, qid, rest, "sent")
    if head == "** ":
        return _delivery(record, qid, rest, "bounced")
    if head == "== ":
        return _delivery(record, qid, rest, "deferred")
    if rest == "Completed" or rest.startswith("Completed QT="):
        return [MessageRemoved(ts=record.ts, source=record.source, host=record.host, queue_id=qid)]
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
    """``<= sender [R=id] [H=host [I=..]] [U=ident|login] [Ci=..] P=proto ... S=size ...``."""
    if rest.startswith("<= <>"):
        sender, pos = "", 5
    else:
        sp = skip_address(rest, 3, " ")
        if sp < 0:
            return None
        sender, pos = rest[3:sp], sp
    events: list[Event] = []
    if rest.startswith(" R=", pos):
        end = rest.find(" ", pos + 3)
        end = len(rest) if end < 0 else end
        ref = rest[pos + 3 : end]
        pos = end
        if not is_message_id(ref) or len(ref) not in (16, 23):
            return None
        events.append(
            BounceNotification(
                ts=record.ts,
                source=record.source,
                host=record.host,
                queue_id=ref,
                notice_queue_id=qid,
                kind="delay" if _is_delay_warning(rest, pos, ref) else "non_delivery",
            )
        )
    if rest.startswith(" DS", pos) and rest.startswith(" DS H=", pos):
        pos += 3
    client: str | None = None
    client_name = ""
    has_host = rest.startswith(" H=", pos)
    service = "smtp"
    if has_host:
        host = parse_host(rest, pos + 3)
        if host is None:
            return None
        client_name, _, client, pos, _ = host
        iface = _interface_port(rest, pos)
        if iface in SUBMISSION_PORTS:
            service = "submission"
    # P= is always written; the first " P=" after the host is Exim's (the
    # ident after U= is a single blank-free token).
    p_at = rest.find(" P=", pos)
    if p_at < 0:
        return None
    user = ""
    if not has_host:
        u_at = rest.find(" U=", pos, p_at + 1)
        if u_at >= 0:
            user = rest[u_at + 3 : p_at]
            if " " in user:
                return None
    s_at = rest.find(" S=", p_at)
    if s_at < 0:
        return None
    s_end = s_at + 3
    while s_end < len(rest) and rest[s_end].isdigit() and s_end - s_at < 22:
        s_end += 1
    size_text = rest[s_at + 3 : s_end]
    if not size_text.isascii() or not size_text.isdigit() or rest[s_end : s_end + 1] not in (" ", ""):
        return None
    account = method = ""
    a_at = rest.find(" A=", p_at, s_at)
    if a_at >= 0:
        colon = rest.find(":", a_at + 3, s_at)
        if colon >= 0:
            method = rest[a_at + 3 : colon]
            tail = rest[colon + 1 : s_at]
            # +smtp_mailauth appends ":<AUTH= sender>" (client text) to the id.
            account = tail.partition(":")[0]
            for stop in (" PRDR", " PRX=", " K"):
                cut = account.find(stop)
                if cut >= 0:
                    account = account[:cut]
        else:
            method = rest[a_at + 3 : s_at].partition(" ")[0]
    ts, src, hst = record.ts, record.source, record.host
    if has_host:
        events.append(
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
            )
        )
        if account:
            events.append(
                AuthSucceeded(
                    ts=ts, source=src, host=hst, service=service, user=account, client=client, method=method
                )
            )
    elif user and not events:
        # A bounce (R=) is Exim's own message, not a submission by its uid.
        events.append(
            LocalSubmission(ts=ts, source=src, host=hst, queue_id=qid, uid=None, sender=sender, user=user)
        )
    events.append(
        MessageQueued(
            ts=ts,
            source=src,
            host=hst,
            queue_id=qid,
            sender=sender,
            size=int(size_text),
            nrcpt=_recipient_count(rest, s_end),
        )
    )
    return events


def _interface_port(rest: str, pos: int) -> str:
    """Port of `` I=[addr]:port`` right after the host (log_selector +incoming_interface)."""
    if not rest.startswith(" I=[", pos):
        return ""
    close = rest.find("]", pos + 4, pos + 70)
    if close < 0 or not rest.startswith(":", close + 1):
        return ""
    sp = rest.find(" ", close)
    return rest[close + 2 : sp if sp >= 0 else len(rest)]


def _is_delay_warning(rest: str, pos: int, ref: str) -> bool:
    """Delay warnings are logged like bounces; their subject (when logged) says which."""
    return rest.find(f' T="Warning: message {ref} delayed', pos) >= 0


def _recipient_count(rest: str, pos: int) -> int:
    """Recipients of `` for a b c`` (+received_recipients), after the quoted subject; 0 if unknown."""
    t_at = rest.find(' T="', pos)
    if t_at >= 0:
        pos = end_of_quoted(rest, t_at + 3)
        if pos < 0:
            return 0
    f_at = rest.find(" for ", pos)
    if f_at < 0:
        return 0
    count = 0
    i = f_at + 5
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
    sp = skip_address(rest, 3, " ")
    end = len(rest) if sp < 0 else sp
    recipient = rest[3:end]
    if not recipient:
        return None
    pos = end
    parent = ""
    if rest.startswith(" <", pos):
        close = skip_address(rest, pos + 2, ">")
        if close < 0:
            return None
        parent = rest[pos + 2 : close]
        pos = close + 1
    elif rest.startswith(" (", pos):  # +all_parents: " (parent, parent)"
        close = skip_address(rest, pos + 2, ")")
        if close < 0:
            return None
        pos = close + 1
        if rest.startswith(" <", pos):
            close = skip_address(rest, pos + 2, ">")
            if close < 0:
                return None
            pos = close + 1
    for key in (" F=<", " P=<"):
        if rest.startswith(key, pos):
            close = skip_address(rest, pos + 4, ">")
            if close < 0:
                return None
            pos = close + 1
    if rest.startswith(" Q=", pos):
        q_end = rest.find(" ", pos + 3)
        pos = len(rest) if q_end < 0 else q_end
    # From here on everything up to the reply is server-written.
    reply_at = len(rest)
    reply = ""
    if status == "deferred":
        d_at = rest.find(" defer (", pos)
        if d_at < 0:
            return None
        reply_at = d_at
        reply = _defer_reason(rest, d_at + 8)
    elif status == "bounced":
        c_at = rest.find(" : ", pos)
        if c_at < 0:
            c_at = rest.find(": ", pos)
            if c_at < 0:
                return None
            reason = rest[c_at + 2 :]
        else:
            reason = rest[c_at + 3 :]
        reply_at = c_at
        reply = _remote_reply(reason)
    fields = rest[pos:reply_at]
    transport_name = field(fields, "T") or ""
    relay, remote = _relay(fields)
    if status == "deferred" and not relay:
        relay, remote = _relay(rest[reply_at:])
    if status == "sent":
        c_at = fields.find(' C="')
        if c_at >= 0:
            c_end = end_of_quoted(fields, c_at + 3)
            if c_end > 0:
                reply = unquote(fields[c_at + 4 : c_end - 1])
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


def _relay(fields: str) -> tuple[str, bool]:
    """``("mx.example.net[192.0.2.25]:25", True)`` from `` H=name [ip][:port]``; local H= has no [ip]."""
    h_at = fields.find(" H=")
    if h_at < 0:
        return "", False
    start = h_at + 3
    sp = fields.find(" ", start)
    name = fields[start : sp if sp >= 0 else len(fields)]
    if sp < 0:
        return name, False
    look = sp + 1
    if fields.startswith("DS ", look):
        look += 3
    if not fields.startswith("[", look):
        return name, False
    close = fields.find("]", look, look + 70)
    if close < 0:
        return name, False
    ip = fields[look + 1 : close]
    port = ""
    if fields.startswith(":", close + 1):
        k = close + 2
        while k < len(fields) and k - close < 8 and fields[k].isdigit():
            k += 1
        if k > close + 2:
            port = fields[close + 1 : k]
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
