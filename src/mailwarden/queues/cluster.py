"""``queue cluster``: one spam run shows as one group, with its culprit and its size.

A template is (normalised subject, URL domains, body shape):

* subject: URLs, e-mail addresses, long hex strings and digit runs become ``<url>``,
  ``<email>``, ``<hex>``, ``<n>``; case and spacing are folded -- so "Invoice 4411 for
  bob@x.example" and "Invoice 98 for eve@y.example" are one template;
* URL domains: the registrable domains linked from the body text (at most 5, sorted; spam
  runs randomise subdomains);
* body shape: top-level content type, whether it carries HTML, and the rough size of the text
  (a power of two of its line count) -- stable across a run whose words are randomised.

Sans-I/O; patterns are simple and linear on hostile text.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from mailwarden.queues.base import QueuedMessage
from mailwarden.queues.summary import BoundedCounter

MAX_CLUSTERS = 50_000
_URL = re.compile(r"\b(?:https?://|www\.)([A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)", re.IGNORECASE)
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}")
_HEX = re.compile(r"\b(?=[0-9a-f]{0,63}[0-9])(?=[0-9a-f]{0,63}[a-f])[0-9a-f]{6,64}\b", re.IGNORECASE)
_DIGITS = re.compile(r"\d+")
_SPACE = re.compile(r"\s+")
_SUBJECT_URL = re.compile(r"\b(?:https?://|www\.)\S{1,2000}", re.IGNORECASE)


def normalise_subject(subject: str | None) -> str:
    if not subject:
        return "(no subject)"
    s = subject[:998]
    s = _SUBJECT_URL.sub("<url>", s)
    s = _EMAIL.sub("<email>", s)
    s = _HEX.sub("<hex>", s)
    s = _DIGITS.sub("<n>", s)
    return _SPACE.sub(" ", s).strip().lower()[:200]


def base_domain(host: str) -> str:
    """The registrable part of a host name, roughly: spam runs randomise the subdomains.

    Last two labels, or three under a two-letter country code whose second level is short
    (``co.uk``, ``com.br``). No public-suffix list: grouping, not security, depends on it."""
    labels = host.lower().rstrip(".").split(".")
    if len(labels) <= 2:
        return ".".join(labels)
    if len(labels[-1]) == 2 and len(labels[-2]) <= 3:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


def url_domains(text: str, limit: int = 5) -> tuple[str, ...]:
    found: set[str] = set()
    for m in _URL.finditer(text[:262144]):
        found.add(base_domain(m.group(1)))
        if len(found) >= 50:
            break
    return tuple(sorted(found)[:limit])


def body_shape(text: str | None, content_type: str = "") -> str:
    if text is None:
        return "-"
    lines = sum(1 for ln in text.splitlines() if ln.strip())
    bucket = 1
    while bucket < lines:
        bucket *= 2
    html = "html" if ("<html" in text[:65536].lower() or "<a href" in text[:65536].lower()) else "text"
    return f"{content_type or 'text/plain'},{html},~{bucket} lines"


@dataclass(slots=True)
class Cluster:
    subject_template: str
    domains: tuple[str, ...]
    shape: str
    messages: int = 0
    bytes: int = 0
    recipients: int = 0
    first: int | None = None
    last: int | None = None
    sample_subject: str = ""
    ids: list[str] = field(default_factory=list)
    culprits: BoundedCounter = field(default_factory=lambda: BoundedCounter(limit=1000))
    senders: BoundedCounter = field(default_factory=lambda: BoundedCounter(limit=1000))
    queues: Counter[str] = field(default_factory=Counter)

    def add(self, m: QueuedMessage, keep_ids: int) -> None:
        self.messages += 1
        self.bytes += m.size
        self.recipients += len(m.recipients)
        self.first = m.arrival if self.first is None else min(self.first, m.arrival)
        self.last = m.arrival if self.last is None else max(self.last, m.arrival)
        if not self.sample_subject and m.subject:
            self.sample_subject = m.subject[:300]
        if len(self.ids) < keep_ids:
            self.ids.append(m.id)
        culprit = m.attribution.culprit() if m.attribution else ""
        self.culprits.add(culprit or "(unknown)")
        self.senders.add(m.sender or "<>")
        self.queues[m.queue] += 1

    def to_dict(self, top: int = 5) -> dict[str, object]:
        return {
            "subject_template": self.subject_template,
            "url_domains": list(self.domains),
            "body_shape": self.shape,
            "messages": self.messages,
            "bytes": self.bytes,
            "recipients": self.recipients,
            "first_arrival": self.first,
            "last_arrival": self.last,
            "sample_subject": self.sample_subject,
            "culprits": self.culprits.top(top),
            "senders": self.senders.top(top),
            "queues": dict(self.queues),
            "ids": list(self.ids),
        }


@dataclass(slots=True)
class Clusterer:
    keep_ids: int = 20
    clusters: dict[tuple[str, tuple[str, ...], str], Cluster] = field(default_factory=dict)
    dropped: int = 0

    def add(self, m: QueuedMessage, body: str | None, content_type: str = "") -> None:
        key = (normalise_subject(m.subject), url_domains(body or ""), body_shape(body, content_type))
        c = self.clusters.get(key)
        if c is None:
            if len(self.clusters) >= MAX_CLUSTERS:
                self.dropped += 1
                return
            c = self.clusters[key] = Cluster(*key)
        c.add(m, self.keep_ids)

    def top(self, n: int) -> list[Cluster]:
        return sorted(self.clusters.values(), key=lambda c: (-c.messages, c.subject_template))[:n]
