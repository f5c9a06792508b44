"""What every detector is, and the small bounded structures they share.

Detectors are stream processors: they are fed time-ordered events (with the
message state the correlator attached) and keep only bounded state, with
windows driven by event time, never by the wall clock. The one-shot
``triage`` command and the later daemon run the same detectors; only the
moment ``finish`` is called differs.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Generic, Protocol, TypeVar

from mailwarden.correlate.messages import MessageState
from mailwarden.enrich import GeoResolver, NetInfo
from mailwarden.model import Event, Source
from mailwarden.model.findings import Evidence, Incident

K = TypeVar("K")
V = TypeVar("V")

MAX_EVIDENCE = 25


class Detector(Protocol):
    """A detector: ``feed`` every event, then ``finish`` for the incidents found."""

    name: str
    wants: tuple[type[Event], ...]

    def feed(self, event: Event, msg: MessageState | None) -> None: ...

    def message_done(self, msg: MessageState) -> None: ...

    def expire(self, now: datetime) -> None:
        """Forget state that can no longer contribute to a finding as of event time ``now``.

        Called every few ten thousand events. Without it, memory would grow
        with every new address a botnet uses until the hard bounds were hit.
        """
        ...

    def finish(self) -> list[Incident]: ...


@dataclass(slots=True)
class DetectContext:
    """What detectors may consult besides the events: address facts, nothing mutable."""

    geo: GeoResolver
    is_local: Callable[[str | None], bool]
    dropped: dict[str, int] = field(default_factory=dict)

    def net(self, ip: str | None) -> NetInfo | None:
        return None if ip is None else self.geo.lookup(ip)

    def note_dropped(self, what: str) -> None:
        """Count state that a bound forced us to forget, for the report's stats."""
        self.dropped[what] = self.dropped.get(what, 0) + 1


class BoundedDict(Generic[K, V]):
    """A dict that forgets its least recently touched key past ``limit``.

    Keys here come from attackers (addresses, user names), so every map that
    grows with input needs a bound; what is forgotten is counted. ``factory``
    and ``on_drop`` must not refer to the detector that owns the dict: that
    would be a reference cycle, and all of the detector's state would then
    wait for a full garbage collection instead of being freed when the run ends.
    """

    def __init__(self, limit: int, factory: Callable[[], V], on_drop: Callable[[], None]):
        self._data: dict[K, V] = {}
        self._limit = limit
        self._factory = factory
        self._on_drop = on_drop

    def touch(self, key: K) -> V:
        value = self._data.pop(key, None)
        if value is None:
            value = self._factory()
            if len(self._data) >= self._limit:
                del self._data[next(iter(self._data))]
                self._on_drop()
        self._data[key] = value
        return value

    def drop_if(self, stale: Callable[[V], bool]) -> int:
        """Forget every entry ``stale`` says can no longer matter; return how many."""
        gone = [k for k, v in self._data.items() if stale(v)]
        for k in gone:
            del self._data[k]
        return len(gone)

    def put(self, key: K, value: V) -> None:
        self._data.pop(key, None)
        self._data[key] = value

    def get(self, key: K) -> V | None:
        return self._data.get(key)

    def items(self) -> Iterator[tuple[K, V]]:
        return iter(list(self._data.items()))

    def __len__(self) -> int:
        return len(self._data)


class SlidingSum:
    """Sum of weights in the last ``window`` of event time; O(1) amortised per add."""

    __slots__ = ("_items", "total", "window")

    def __init__(self, window: timedelta):
        self.window = window
        self._items: deque[tuple[datetime, int]] = deque()
        self.total = 0

    def add(self, ts: datetime, weight: int = 1) -> int:
        self._items.append((ts, weight))
        self.total += weight
        limit = ts - self.window
        items = self._items
        while items and items[0][0] < limit:
            self.total -= items.popleft()[1]
        return self.total


class SlidingDistinct:
    """Distinct keys seen in the last ``window``; each key remembers its last time."""

    __slots__ = ("_last", "_limit", "window")

    def __init__(self, window: timedelta, limit: int = 10_000):
        self.window = window
        self._last: dict[str, datetime] = {}
        self._limit = limit

    def add(self, ts: datetime, key: str) -> int:
        last = self._last
        last.pop(key, None)
        if len(last) < self._limit:
            last[key] = ts
        limit = ts - self.window
        while last:
            first_key = next(iter(last))
            if last[first_key] >= limit:
                break
            del last[first_key]
        return len(last)


def add_evidence(target: list[Evidence], ts: datetime, what: str, source: Source | None) -> None:
    """Keep the first evidence lines of a finding; the bound keeps reports readable."""
    if source is not None and len(target) < MAX_EVIDENCE:
        target.append(Evidence(ts=ts, what=what, source=source))


def span(delta: timedelta) -> str:
    """A window length as operators write it: ``24h``, ``1h``, ``90min``, ``2d``."""
    seconds = int(delta.total_seconds())
    if seconds % 86400 == 0 and seconds >= 2 * 86400:
        return f"{seconds // 86400}d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}min"
    return f"{seconds}s"


def sorted_incidents(incidents: list[Incident]) -> list[Incident]:
    order = {"critical": 0, "high": 1, "medium": 2, "low": 3}
    return sorted(incidents, key=lambda i: (order.get(i.severity, 9), i.first_seen))
