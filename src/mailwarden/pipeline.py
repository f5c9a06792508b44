"""The one pipeline behind every command: sources → formats → correlate → detect.

``triage`` and ``events`` (and later the daemon) differ only in what they do
with the stream; keeping the stages here, as plain generators, means one code
path is tested and benchmarked for all of them.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

from mailwarden.correlate.messages import DEFAULT_MYNETWORKS, MessageState, MessageTracker, Totals
from mailwarden.detect import DetectContext, Detector, build, merge
from mailwarden.detect.compromised_account import CompromisedAccount
from mailwarden.enrich import GeoResolver
from mailwarden.formats import FormatSet, Handler
from mailwarden.model import Event, ReadStats, Record, Rejected
from mailwarden.model.findings import Incident
from mailwarden.sources import flatten, read_batches

# CPython collects its youngest generation every 700 net allocations of
# container objects. A triage run keeps a batch of records and events alive at
# a time and grows long-lived detector state; with the default, each batch is
# traversed and promoted again and again, and full collections keep walking
# the detector state: measured, 20 % of a 300k-line run and 35 % of a 1M-line
# one. The pipeline's own objects form no reference cycles (see
# ``BoundedDict``), so collecting rarely holds no extra memory. Measured
# 10k/20k/50k/100k: 50k is within noise of the best on both sizes.
GC_YOUNG_THRESHOLD = 50_000


@contextmanager
def few_collections() -> Iterator[None]:
    """Raise the garbage collector's young-generation threshold for the duration.

    The caller's thresholds come back afterwards; a threshold of 0 (automatic
    collection off) is left alone.
    """
    thresholds = gc.get_threshold()
    if thresholds[0]:
        gc.set_threshold(max(thresholds[0], GC_YOUNG_THRESHOLD), *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


class _Parser:
    """Records -> events, a batch at a time, counting what each format claimed and what none understood.

    The format's handler is resolved once per distinct program name (bounded
    cache, ``FormatSet.route_for``), so each record costs one dict lookup and
    the handler itself. The formats are fresh per parser (per run): some keep
    state between the lines of a stream.
    """

    __slots__ = ("_formats", "_per_program", "_routes", "_stats")

    def __init__(self, stats: ReadStats) -> None:
        self._stats = stats
        self._formats = FormatSet()
        self._routes: dict[str, tuple[Handler, str, str] | None] = {}
        self._per_program: dict[str, int] = {}

    def __call__(self, records: Iterable[Record]) -> list[Event]:
        routes = self._routes
        stats = self._stats
        per_program = self._per_program
        out: list[Event] = []
        parsed = 0
        for rec in records:
            program = rec.program
            try:
                route = routes[program]
            except KeyError:
                route = self._formats.route_for(program)
                if len(routes) >= 4096:
                    self.flush()
                routes[program] = route
                per_program[program] = 0
            if route is None:
                stats.note_unclaimed(program)
                continue
            per_program[program] += 1
            handler, label, name = route
            events = handler(rec, rec.message, label)
            if events is None:
                stats.note_unparsed(name, rec)
                continue
            parsed += 1
            if events:
                out += events
        stats.parsed += parsed
        stats.events += len(out)
        return out

    def flush(self) -> None:
        """Move the per-program record counts into ``stats.formats`` (at the end, or when full)."""
        formats = self._stats.formats
        for fmt in self._formats.formats:
            # per-stream state a format evicted at its bound (qmail deliveries, Courier ids...)
            dropped = getattr(fmt, "dropped", 0)
            if isinstance(dropped, int) and dropped > self._stats.format_dropped[fmt.name]:
                self._stats.format_dropped[fmt.name] = dropped
        for program, count in self._per_program.items():
            route = self._routes.get(program)
            if route is not None and count:
                formats[route[2]] += count
        self._per_program.clear()
        self._routes.clear()


def parse_batches(batches: Iterable[list[Record]], stats: ReadStats) -> Iterator[list[Event]]:
    """Turn batches of framed records into batches of typed events (never empty)."""
    parse = _Parser(stats)
    try:
        for records in batches:
            events = parse(records)
            if events:
                yield events
    finally:
        parse.flush()


def _window_batches(
    batches: Iterable[list[Record]], since: datetime | None, until: datetime | None, stats: ReadStats
) -> Iterator[list[Record]]:
    for records in batches:
        kept = list(window(records, since, until, stats))
        if kept:
            yield kept


def window(
    records: Iterable[Record], since: datetime | None, until: datetime | None, stats: ReadStats
) -> Iterator[Record]:
    """Keep records inside [since, until); what falls outside is counted, not silently lost."""
    for rec in records:
        if since is not None and rec.ts < since:
            stats.skip("before_since")
            continue
        if until is not None and rec.ts >= until:
            stats.skip("after_until")
            continue
        yield rec


def event_batches(
    paths: Sequence[str],
    stats: ReadStats,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    tz: tzinfo | None = None,
) -> Iterator[list[Event]]:
    """``events_from`` in non-empty lists (one per read chunk): the form the triage loop uses."""
    batches: Iterable[list[Record]] = read_batches(paths, stats, tz=tz)
    if since is not None or until is not None:
        batches = _window_batches(batches, since, until, stats)
    return parse_batches(batches, stats)


def events_from(
    paths: Sequence[str],
    stats: ReadStats,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    tz: tzinfo | None = None,
) -> Iterator[Event]:
    """Every event of ``paths`` in time order (inputs are checked before this returns)."""
    return flatten(event_batches(paths, stats, since=since, until=until, tz=tz))


@dataclass(slots=True)
class TriageResult:
    incidents: list[Incident]
    accounts: list[dict[str, object]]
    stats: ReadStats
    totals: Totals
    geo: dict[str, object]
    first_ts: datetime | None = None
    last_ts: datetime | None = None
    dropped: dict[str, int] = field(default_factory=dict)
    still_queued: int = 0


_Feed = Callable[[Event, MessageState | None], None]
_Plan = tuple[Callable[[Any], MessageState | None] | None, bool, tuple[_Feed, ...]]


class _Routes:
    """Per event class: the tracker's handler, whether it is a reject, the detectors' ``feed``s.

    Built once per class on first sight, so each event costs one dict lookup
    instead of ``isinstance`` tests and a route lookup per stage. Detectors
    get the exact classes they list in ``wants``.
    """

    def __init__(self, tracker: MessageTracker, detectors: list[Detector]) -> None:
        self._tracker = tracker
        self._detectors = detectors
        self.plans: dict[type[Event], _Plan] = {}

    def plan_for(self, cls: type[Event]) -> _Plan:
        plan = (
            self._tracker.handler_for(cls),
            issubclass(cls, Rejected),
            tuple(det.feed for det in self._detectors if cls in det.wants),
        )
        self.plans[cls] = plan
        return plan


def triage(
    paths: Sequence[str],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    geoip_paths: Sequence[str] = (),
    mynetworks: Sequence[str] = DEFAULT_MYNETWORKS,
    tz: tzinfo | None = None,
    on_event: Callable[[ReadStats], None] | None = None,
) -> TriageResult:
    """Read, correlate and detect; the whole of ``mailwarden triage`` minus the output."""
    stats = ReadStats()
    geo = GeoResolver(geoip_paths)
    tracker = MessageTracker(mynetworks)
    ctx = DetectContext(geo=geo, is_local=tracker.is_local)
    detectors = build(ctx)
    with few_collections():
        batches = event_batches(paths, stats, since=since, until=until, tz=tz)
        first_ts, last_ts = _correlate_and_detect(batches, tracker, detectors, stats, on_event)
        return _finish(
            stats, geo=geo, ctx=ctx, tracker=tracker, detectors=detectors, first_ts=first_ts, last_ts=last_ts
        )


def _correlate_and_detect(
    batches: Iterable[list[Event]],
    tracker: MessageTracker,
    detectors: list[Detector],
    stats: ReadStats,
    on_event: Callable[[ReadStats], None] | None,
) -> tuple[datetime | None, datetime | None]:
    """The per-event loop of ``triage``; returns the times of the first and last event."""
    first_ts: datetime | None = None
    last_ts: datetime | None = None
    totals = tracker.totals
    routes = _Routes(tracker, detectors)
    plan_for = routes.plan_for
    plans = routes.plans
    dones = tuple(det.message_done for det in detectors)
    seen = 0
    for events in batches:
        if first_ts is None:
            first_ts = events[0].ts
        for event in events:
            cls = type(event)
            handle, rejected, feeds = plans.get(cls) or plan_for(cls)
            msg = None if handle is None else handle(event)
            if rejected and event.action == "reject" and event.stage != "postscreen":  # type: ignore[attr-defined]
                totals.rejected += 1
            for feed in feeds:
                feed(event, msg)
            if msg is not None and msg.removed:
                for done in dones:
                    done(msg)
        last_ts = events[-1].ts
        before, seen = seen, seen + len(events)
        if on_event is not None and before >> 14 != seen >> 14:  # about every 16k events
            on_event(stats)
        if before >> 16 != seen >> 16:  # about every 65k events: forget idle state
            for det in detectors:
                det.expire(last_ts)
    return first_ts, last_ts


def _finish(
    stats: ReadStats,
    *,
    geo: GeoResolver,
    ctx: DetectContext,
    tracker: MessageTracker,
    detectors: list[Detector],
    first_ts: datetime | None,
    last_ts: datetime | None,
) -> TriageResult:
    """Messages still queued, the detectors' verdicts and the run's figures."""
    still = list(tracker.live.values())
    for msg in still:
        for det in detectors:
            det.message_done(msg)
    incidents = merge([i for det in detectors for i in det.finish()])
    accounts = next((d.account_summaries() for d in detectors if isinstance(d, CompromisedAccount)), [])
    dropped = dict(ctx.dropped)
    for name, count in stats.format_dropped.items():
        if count:
            dropped[f"format.{name}"] = count
    if tracker.evicted:
        dropped["messages"] = tracker.evicted
    return TriageResult(
        incidents=incidents,
        accounts=accounts,
        stats=stats,
        totals=tracker.totals,
        geo=geo.describe(),
        first_ts=first_ts,
        last_ts=last_ts,
        dropped=dropped,
        still_queued=len(still),
    )
