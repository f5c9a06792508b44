"""One pass over a queue: list, filter on the envelope, read headers in batches, attribute,
filter on headers, and read bodies only for what is left and only when asked.

Cheap filters run first: with ``--sender`` or ``--older-than`` alone, no message content is read.
Bodies are read one message at a time (the MTA's tool prints no safe separator between bodies)
by a small thread pool; regex filters then run in the main thread, where their time budget works.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser

from mailwarden.queues.attribution import read_headers
from mailwarden.queues.base import MessageNotFound, QueueBackend, QueuedMessage
from mailwarden.queues.select import Criteria

HEADER_BATCH = 400
BODY_WORKERS = 4
#: MIME parts looked at per message when reading body text
MAX_PARTS = 50


@dataclass(slots=True)
class Found:
    """A selected message, why it was selected, and its body text when it was read."""

    message: QueuedMessage
    why: tuple[str, ...]
    body: str | None = None


@dataclass(slots=True)
class ScanStats:
    listed: int = 0
    selected: int = 0
    headers_read: int = 0
    bodies_read: int = 0
    vanished: int = 0
    regex_timeouts: int = 0
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def body_text(message: bytes, cap: int) -> str:
    """The readable text of a message (text/* parts, transfer-decoded), at most ``cap`` characters."""
    raw = message[: max(cap * 2, 8192) + 65536]
    try:
        msg = BytesParser(policy=policy.compat32).parsebytes(raw)
    except Exception:  # the email package raises assorted errors on hostile MIME
        return raw.decode("utf-8", "replace")[:cap]
    out: list[str] = []
    size = 0
    for n, part in enumerate(msg.walk()):
        if n >= MAX_PARTS or size >= cap:
            break
        if part.get_content_maintype() != "text":
            continue
        try:
            payload = part.get_payload(decode=True)
        except Exception:  # noqa: S112 - a broken part is just not searched
            continue
        if not isinstance(payload, bytes):
            continue
        charset = part.get_content_charset() or "utf-8"
        try:
            text = payload.decode(charset, "replace")
        except LookupError:
            text = payload.decode("utf-8", "replace")
        out.append(text[: cap - size])
        size += len(out[-1])
    return "\n".join(out)


def scan(
    backend: QueueBackend,
    criteria: Criteria,
    *,
    our_names: Collection[str] = (),
    attribute: bool = True,
    want_body: bool = False,
    stats: ScanStats | None = None,
) -> Iterator[Found]:
    """The messages ``criteria`` selects, attributed (when ``attribute``) and with body text
    (when ``want_body`` or a body filter needs it)."""
    st = stats if stats is not None else ScanStats()
    need_headers = attribute or criteria.needs_headers
    need_body = want_body or criteria.needs_body
    pending: list[Found] = []

    def flush() -> Iterator[Found]:
        batch = list(pending)
        pending.clear()
        if need_headers:
            batch = list(_with_headers(backend, criteria, batch, our_names, st))
        if need_body:
            batch = list(_with_body(backend, criteria, batch, st))
        st.selected += len(batch)
        yield from batch

    for m in backend.list_messages():
        st.listed += 1
        why = criteria.match_envelope(m)
        if why is None:
            continue
        pending.append(Found(m, tuple(why)))
        if len(pending) >= HEADER_BATCH:
            yield from flush()
    yield from flush()
    st.problems.extend(getattr(backend, "problems", ())[:100])


def _with_headers(
    backend: QueueBackend, criteria: Criteria, batch: list[Found], our_names: Collection[str], st: ScanStats
) -> Iterator[Found]:
    by_id = {f.message.id: f for f in batch}
    seen: set[str] = set()
    for block in backend.read_headers([f.message.id for f in batch]):
        found = by_id.get(block.id)
        if found is None or block.id in seen:
            continue
        seen.add(block.id)
        st.headers_read += 1
        facts = read_headers(block.headers, our_names=our_names, envelope=block.envelope)
        m = dataclasses.replace(found.message, subject=facts.subject, attribution=facts.attribution)
        why_a = criteria.match_attribution(m)
        if why_a is None:
            continue
        why_t, timeouts = criteria.match_text(facts.subject, facts.headers)
        st.regex_timeouts += timeouts
        if why_t is None:
            continue
        yield Found(m, found.why + tuple(why_a) + tuple(why_t))
    st.vanished += len(by_id) - len(seen)


def _read_or_none(backend: QueueBackend, qid: str) -> bytes | None:
    try:
        return backend.read(qid)
    except MessageNotFound:
        return None


def _with_body(
    backend: QueueBackend, criteria: Criteria, batch: list[Found], st: ScanStats
) -> Iterator[Found]:
    with ThreadPoolExecutor(max_workers=BODY_WORKERS) as pool:
        contents = pool.map(lambda f: _read_or_none(backend, f.message.id), batch)
        for found, data in zip(batch, contents, strict=True):
            if data is None:
                st.vanished += 1
                continue
            st.bodies_read += 1
            text = body_text(data, criteria.body_max)
            why_b, timeouts = criteria.match_body(text)
            st.regex_timeouts += timeouts
            if why_b is None:
                continue
            yield Found(found.message, found.why + tuple(why_b), text)
