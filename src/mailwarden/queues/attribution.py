"""Who sent a queued message, read from the parts of it that our own MTA wrote.

Sans-I/O: the input is a message's header bytes (and, for Postfix, the
envelope attributes ``postcat -e`` prints); the output is an ``Attribution``.

The trust rule. Everything in a message below the Received header that our
MTA added when it accepted the message was written by the sender -- including
any number of ``Received:`` headers saying ``(Authenticated sender: victim)``.
So exactly ONE Received header is read: the topmost one whose ``by`` host is
one of our own names (or, when our names are unknown or none matches, the
topmost one). Received headers below it are never consulted. Two more
sources are trusted:

* the envelope our MTA keeps beside the message (Postfix records
  ``sasl_username`` and ``client_address`` there even when
  ``smtpd_sasl_authenticated_header = no``, the default) -- it wins over the
  header when both are present;
* ``X-PHP-Originating-Script: UID:SCRIPT`` -- written by PHP's ``mail()``
  ahead of the script's own headers, so the first one is PHP's -- but only when
  our Received header shows a *local* submission (sendmail/pickup); on mail
  that arrived over SMTP anyone can write it, and it is only noted.

``X-Mailer``, the ``Message-ID`` domain and ``From:`` are kept as what the
sender *claims*: good for grouping a spam run, never used as the culprit.

Backends whose MTA marks its own Received header by position or content (qmail-queue always
prepends one; Sendmail's names the queue id) say so in the envelope they hand over -- keys a
backend sets from its MTA's own records, never from message text (``ENVELOPE_HINTS``):
``trusted_received`` (index of our Received header, 0 = topmost; replaces the by-name choice),
``local_uid`` and ``local_user`` (who submitted locally, as the MTA recorded it).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from email import policy
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser

from mailwarden.queues.base import Attribution

#: Header sections larger than this are cut before parsing (a hostile message can carry megabytes).
MAX_HEADER_BYTES = 256 * 1024
#: Decoded header values are capped to this many characters.
MAX_VALUE_CHARS = 4096

_FOLD = re.compile(r"\r?\n[ \t]*")
_TOKEN = re.compile(r"\S+")
_BY = re.compile(r"by\s+([^\s;()]{1,255})")
_ADDR = re.compile(r"\[(?:IPv6:)?([0-9A-Fa-f:.]{2,45})\]")
_BARE_ADDR = re.compile(r"^(?:[^@\s]{1,64}@)?([0-9A-Fa-f:.]{2,45})$")
_AUTH_SENDER = re.compile(r"^Authenticated sender:\s*([^\s()]{1,320})$", re.IGNORECASE)
_POSTFIX_UID = re.compile(r"^Postfix, from userid (\d{1,10})$")
_QMAIL_UID = re.compile(r"^qmail \d{1,10} invoked by uid (\d{1,10})$")
_SENDMAIL_LOCAL = re.compile(r"^from ([^\s@()]{1,64})(?:@[^\s()]{0,255})?$")
_EXIM_HELO = re.compile(r"helo=(\S{1,255})")
_WITH = re.compile(r"\bwith\s+([A-Za-z0-9_-]{1,32})")
_PHP = re.compile(r"^\s*(\d{1,10}):(.{1,1024})$")
_ENCODED_WORD = re.compile(r"=\?[^?\s]{1,40}\?[bBqQ]\?[^?\s]{0,2000}\?=")
_BETWEEN_WORDS = re.compile(r"(?<=\?=)[ \t]+(?==\?)")
_MSGID = re.compile(r"@([A-Za-z0-9.\-\[\]:_]{1,255})>")
_LOCAL_USER = re.compile(r"[^\s@()<>\[\]]{1,64}")

#: Envelope keys a backend may set from its MTA's own records (see the module docstring).
ENVELOPE_HINTS = frozenset({"trusted_received", "local_uid", "local_user"})


@dataclass(frozen=True, slots=True)
class Hop:
    """What one Received header says (only ever read from the one we trust)."""

    by: str = ""
    helo: str | None = None
    client: str | None = None
    account: str | None = None
    uid: int | None = None
    local_user: str | None = None
    protocol: str = ""
    authenticated: bool = False


@dataclass(frozen=True, slots=True)
class HeaderFacts:
    """A header section, read: attribution, subject, and the decoded headers for filters."""

    attribution: Attribution
    subject: str | None
    headers: tuple[tuple[str, str], ...] = field(default=())

    def values(self, name: str) -> list[str]:
        low = name.lower()
        return [v for k, v in self.headers if k.lower() == low]


def _raw_to_text(raw: str) -> str:
    """compat32 keeps 8-bit header bytes as surrogate escapes; read them as UTF-8."""
    try:
        return raw.encode("ascii", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:
        return raw


def unfold(value: str) -> str:
    return _FOLD.sub(" ", value).strip()


def decode_words(value: str) -> str:
    """RFC 2047 encoded words decoded one by one (raw 8-bit text around them is kept);
    a malformed word stays as it is."""
    if "=?" not in value:
        return value

    def one(m: re.Match[str]) -> str:
        try:
            return str(make_header(decode_header(m.group())))
        except (ValueError, LookupError, UnicodeError, AssertionError):
            return m.group()

    return _ENCODED_WORD.sub(one, _BETWEEN_WORDS.sub("", value))


def _ip(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return None


def _comments(text: str, pos: int) -> tuple[list[str], int]:
    """Parenthesised comments starting at ``pos`` (not nested), and the position after them."""
    out: list[str] = []
    n = len(text)
    while True:
        while pos < n and text[pos] == " ":
            pos += 1
        if pos >= n or text[pos] != "(":
            return out, pos
        end = text.find(")", pos + 1)
        if end < 0 or end - pos > 1024:
            return out, pos
        out.append(text[pos + 1 : end].strip())
        pos = end + 1


def parse_received(value: str) -> Hop:
    """Read one Received header in the forms Postfix, Exim, Sendmail and qmail write.

    ``from HELO (NAME [ADDR]) (Authenticated sender: X) by HOST (Postfix) with ESMTPA id Q``,
    ``by HOST (Postfix, from userid N) id Q``, ``from [ADDR] (helo=H) by HOST with esmtpa
    (Exim 4.96) ...``, ``from USER by HOST with local (Exim ...)``, ``(from USER@localhost) by
    HOST (8.17.1/8.17.1/Submit)``, ``(qmail N invoked by uid U)``. Text after ``by HOST`` and its
    own comments (``for <rcpt>`` is the sender's) is not searched for attribution.
    """
    text = unfold(value)[:MAX_VALUE_CHARS]
    pos = 0
    helo: str | None = None
    from_token: str | None = None
    if text[:5].lower() == "from ":
        m = _TOKEN.match(text, 5)
        if m:
            from_token = m.group()
            helo = from_token
            pos = m.end()
    before, pos = _comments(text, pos)
    client = account = local_user = None
    uid: int | None = None
    authenticated = False
    for c in before:
        if m2 := _AUTH_SENDER.match(c):
            account, authenticated = m2.group(1), True
        elif c.lower().startswith("authenticated"):
            authenticated = True
        elif m2 := _QMAIL_UID.match(c):
            uid = int(m2.group(1))
        elif m2 := _SENDMAIL_LOCAL.match(c):
            local_user = m2.group(1)
        elif client is None:
            if (m2 := _ADDR.search(c)) or (m2 := _BARE_ADDR.match(c)):
                client = _ip(m2.group(1))
            if m2 := _EXIM_HELO.search(c):
                helo = m2.group(1)
            elif c.upper().startswith("HELO "):
                helo = c[5:].strip() or helo
    if client is None and from_token and from_token.startswith("["):  # Exim: from [ADDR] (helo=H)
        m3 = _ADDR.match(from_token)
        if m3:
            client = _ip(m3.group(1))
    by = ""
    m4 = _BY.match(text, pos) if text[pos : pos + 3].lower() == "by " else None
    protocol = ""
    if m4:
        by = m4.group(1).lower()
        after, end = _comments(text, m4.end())
        for c in after:
            if m5 := _POSTFIX_UID.match(c):
                uid = int(m5.group(1))
        m6 = _WITH.match(text[end : end + 200].strip())
        if m6:
            protocol = m6.group(1).lower()
    if protocol in ("esmtpa", "esmtpsa", "smtpa", "utf8esmtpa", "utf8esmtpsa"):
        authenticated = True
    if protocol == "local" and from_token and client is None and not from_token.startswith("["):
        local_user = local_user or from_token  # Exim: from USER by HOST with local
    return Hop(
        by=by,
        helo=helo if from_token else None,
        client=client,
        account=account,
        uid=uid,
        local_user=local_user,
        protocol=protocol,
        authenticated=authenticated,
    )


def _choose_hop(received: list[str], our_names: Collection[str]) -> tuple[Hop | None, list[str]]:
    notes: list[str] = []
    if not received:
        return None, ["no Received header: nothing in the content can be trusted"]
    names = {n.lower().rstrip(".") for n in our_names if n}
    if names:
        for i, value in enumerate(received):
            hop = parse_received(value)
            if hop.by in names:
                if i > 0:
                    notes.append(f"{i} Received header(s) above ours (added after us) were skipped")
                return hop, notes
        notes.append("no Received header is by this server's name; the topmost one was read as ours")
    return parse_received(received[0]), notes


def _hinted_hop(
    received: list[str], our_names: Collection[str], index: str | None
) -> tuple[Hop | None, list[str]]:
    """The Received header the backend named as ours, else the by-name choice."""
    if index is not None and index.isascii() and index.isdigit() and int(index) < len(received):
        return parse_received(received[int(index)]), []
    return _choose_hop(received, our_names)


def read_headers(
    header_bytes: bytes,
    *,
    our_names: Collection[str] = (),
    envelope: Mapping[str, str] | None = None,
) -> HeaderFacts:
    """Attribution, subject and decoded headers of one message (see the module docstring)."""
    parsed = BytesHeaderParser(policy=policy.compat32).parsebytes(header_bytes[:MAX_HEADER_BYTES])
    headers: list[tuple[str, str]] = []
    for name, raw in parsed.raw_items():
        text = _raw_to_text(raw) if isinstance(raw, str) else str(raw)
        headers.append((str(name), unfold(text)[:MAX_VALUE_CHARS]))
    received = [v for k, v in headers if k.lower() == "received"]
    env = envelope or {}
    hop, notes = _hinted_hop(received, our_names, env.get("trusted_received"))

    account = hop.account if hop else None
    client = hop.client if hop else None
    source = (
        "received" if hop and (hop.account or hop.uid is not None or hop.client or hop.local_user) else ""
    )
    env_account = env.get("sasl_username") or None
    env_client = _ip(env.get("client_address", "") or env.get("log_client_address", ""))
    if env_account or env_client:
        if env_account and account and env_account != account:
            notes.append(f"envelope SASL login {env_account!r} differs from our Received header {account!r}")
        account = env_account or account
        client = env_client or client
        source = "envelope+received" if source else "envelope"

    uid = hop.uid if hop else None
    local_user = hop.local_user if hop else None
    env_uid = env.get("local_uid", "")
    if env_uid.isascii() and env_uid.isdigit() and len(env_uid) <= 10:
        if uid is not None and uid != int(env_uid):
            notes.append(f"the MTA recorded uid {env_uid}, our Received header says uid {uid}")
        uid = int(env_uid)
        source = "envelope+received" if source and source != "envelope" else "envelope"
    env_user = env.get("local_user", "")
    if _LOCAL_USER.fullmatch(env_user):
        local_user = env_user
        source = "envelope+received" if source and source != "envelope" else "envelope"
    local = uid is not None or local_user is not None
    script: str | None = None
    php = [v for k, v in headers if k.lower() == "x-php-originating-script"]
    if php:
        m = _PHP.match(php[0])
        if not local:
            notes.append(f"X-PHP-Originating-Script {php[0][:100]!r} on mail not submitted locally: ignored")
        elif m is None:
            notes.append(f"X-PHP-Originating-Script {php[0][:100]!r} is not UID:SCRIPT: ignored")
        else:
            script = m.group(2).strip()
            php_uid = int(m.group(1))
            if uid is not None and php_uid != uid:
                notes.append(f"X-PHP-Originating-Script names uid {php_uid}, but uid {uid} submitted it")
        if len(set(php)) > 1:
            notes.append("several different X-PHP-Originating-Script headers; PHP writes the first")

    def first(name: str) -> str | None:
        low = name.lower()
        for k, v in headers:
            if k.lower() == low:
                return decode_words(v)[:300]
        return None

    msgid = first("Message-ID")
    msgid_domain = None
    if msgid and (m7 := _MSGID.search(msgid)):
        msgid_domain = m7.group(1).lower()
    raw_subject = next((v for k, v in headers if k.lower() == "subject"), None)
    attribution = Attribution(
        account=account,
        uid=uid,
        local_user=local_user,
        script=script,
        client=client,
        helo=hop.helo if hop else None,
        received_by=hop.by or None if hop else None,
        source=source,
        mailer=first("X-Mailer") or first("User-Agent"),
        msgid_domain=msgid_domain,
        from_header=first("From"),
        notes=tuple(notes),
    )
    return HeaderFacts(
        attribution=attribution,
        subject=None if raw_subject is None else decode_words(raw_subject)[:998],
        headers=tuple(headers),
    )
