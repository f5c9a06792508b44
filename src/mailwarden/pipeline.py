"""The one pipeline behind every command: sources → formats → correlate → detect.

``triage`` and ``events`` (and later the daemon) differ only in what they do
with the stream; keeping the stages here, as plain generators, means one code
path is tested and benchmarked for all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo

from mailwarden.correlate.messages import DEFAULT_MYNETWORKS, MessageTracker, Totals
from mailwarden.detect import DetectContext, Detector, build, merge
from mailwarden.detect.compromised_account import CompromisedAccount
from mailwarden.enrich import GeoResolver
from mailwarden.formats import format_for
from mailwarden.model import Event, ReadStats, Record, Rejected
from mailwarden.model.findings import Incident
from mailwarden.sources import read_records


def parse_records(records: Iterable[Record], stats: ReadStats) -> Iterator[Event]:
    """Turn framed records into typed events, counting what no format understood."""
    cache: dict[str, object] = {}
    unparsed = stats.unparsed
    for rec in records:
        program = rec.program
        fmt = cache.get(program, cache)
        if fmt is cache:
            fmt = format_for(program)
            if len(cache) < 4096:
                cache[program] = fmt
        if fmt is None:
            stats.note_unclaimed(program)
            continue
        events = fmt.parse(rec)  # type: ignore[attr-defined]
        if events is None:
            unparsed[fmt.name] += 1  # type: ignore[attr-defined]
            continue
        stats.parsed += 1
        if events:
            stats.events += len(events)
            yield from events


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


def events_from(
    paths: Sequence[str],
    stats: ReadStats,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    tz: tzinfo | None = None,
) -> Iterator[Event]:
    records: Iterable[Record] = read_records(paths, stats, tz=tz)
    if since is not None or until is not None:
        records = window(records, since, until, stats)
    return parse_records(records, stats)


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
    first_ts: datetime | None = None
    last_ts: datetime | None = None
    totals = tracker.totals
    feed = tracker.feed
    routes: dict[type[Event], list[Detector]] = {}
    for det in detectors:
        for wanted in det.wants:
            routes.setdefault(wanted, []).append(det)
    for n, event in enumerate(events_from(paths, stats, since=since, until=until, tz=tz), 1):
        if first_ts is None:
            first_ts = event.ts
        last_ts = event.ts
        msg = feed(event)
        if isinstance(event, Rejected) and event.action == "reject" and event.stage != "postscreen":
            totals.rejected += 1
        for det in routes.get(type(event), ()):
            det.feed(event, msg)
        if msg is not None and msg.removed:
            for det in detectors:
                det.message_done(msg)
        if on_event is not None and not n & 0x3FFF:
            on_event(stats)
    still = list(tracker.live.values())
    for msg in still:
        for det in detectors:
            det.message_done(msg)
    incidents = merge([i for det in detectors for i in det.finish()])
    accounts = next((d.account_summaries() for d in detectors if isinstance(d, CompromisedAccount)), [])
    dropped = dict(ctx.dropped)
    if tracker.evicted:
        dropped["messages"] = tracker.evicted
    return TriageResult(
        incidents=incidents,
        accounts=accounts,
        stats=stats,
        totals=totals,
        geo=geo.describe(),
        first_ts=first_ts,
        last_ts=last_ts,
        dropped=dropped,
        still_queued=len(still),
    )
