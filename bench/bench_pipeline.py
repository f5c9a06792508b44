"""Lines per second of each pipeline stage on one log file, cumulatively.

Each stage runs the ones before it, so the difference between two rows is the
cost of the stage added:

* ``read+frame``  -- ``read_records``: reading, decoding, framing into Records;
* ``+parse``      -- ``events_from``: the formats turn records into events;
* ``+correlate``  -- events fed to ``MessageTracker`` (plus the reject total);
* ``triage``      -- ``pipeline.triage``: everything, detectors included
  (without rendering the report).

Usage::

    .venv/bin/python bench/bench_pipeline.py FILE... [--repeat 3] [--cpu] [--profile STAGE]

Every run is a fresh child process, as a real ``mailwarden triage`` is: the
parsers' caches (addresses, tags, time stamps) start empty, so a second run in
the same process would look faster than any real one. Imports are not timed.
Every stage runs under the garbage-collector settings ``triage`` uses
(``pipeline.few_collections``), so the rows add up to the triage row.

With ``--repeat`` the best of N runs is shown (the machine may be shared);
``--cpu`` measures process CPU time instead of wall time, which other work
on a shared machine disturbs less. ``--profile triage`` (or another stage
name) runs that stage once under cProfile and prints the top functions by
own time instead. ``PYTHONPATH=/other/tree/src`` measures another checkout.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

from mailwarden import pipeline
from mailwarden.correlate.messages import MessageTracker
from mailwarden.model import ReadStats, Rejected
from mailwarden.pipeline import events_from, triage
from mailwarden.sources import read_records

# Absent before the pipeline tuned the collector; lets this script measure older trees too.
_gc_settings: Callable[[], AbstractContextManager[object]] = getattr(pipeline, "few_collections", nullcontext)


def _read(paths: list[str]) -> int:
    stats = ReadStats()
    for _ in read_records(paths, stats):
        pass
    return stats.lines_read


def _parse(paths: list[str]) -> int:
    stats = ReadStats()
    for _ in events_from(paths, stats):
        pass
    return stats.lines_read


def _correlate(paths: list[str]) -> int:
    stats = ReadStats()
    tracker = MessageTracker()
    feed = tracker.feed
    totals = tracker.totals
    for event in events_from(paths, stats):
        feed(event)
        if type(event) is Rejected and event.action == "reject" and event.stage != "postscreen":
            totals.rejected += 1
    return stats.lines_read


def _triage(paths: list[str]) -> int:
    return triage(paths).stats.lines_read


STAGES: dict[str, Callable[[list[str]], int]] = {
    "read+frame": _read,
    "+parse": _parse,
    "+correlate": _correlate,
    "triage": _triage,
}


def _child(stage: str, paths: list[str], cpu: bool) -> None:
    """One measured run in this (fresh) process: prints ``{"seconds": s, "lines": n}``."""
    clock = time.process_time if cpu else time.perf_counter
    with _gc_settings():
        started = clock()
        lines = STAGES[stage](paths)
        seconds = clock() - started
    print(json.dumps({"seconds": seconds, "lines": lines}))


def _measure(stage: str, paths: list[str], cpu: bool) -> tuple[float, int]:
    command = [sys.executable, __file__, "--child", stage, *paths] + (["--cpu"] if cpu else [])
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    result = json.loads(done.stdout)
    return float(result["seconds"]), int(result["lines"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs per stage")
    parser.add_argument("--cpu", action="store_true", help="process CPU time, not wall time")
    parser.add_argument("--profile", choices=sorted(STAGES), help="cProfile one stage instead")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--child", choices=sorted(STAGES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.paths, args.cpu)
        return
    if args.profile:
        profiler = cProfile.Profile()
        with _gc_settings():
            profiler.runcall(STAGES[args.profile], args.paths)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(args.top)
        return
    best = dict.fromkeys(STAGES, float("inf"))
    lines = 0
    for _ in range(args.repeat):  # rounds over all stages, so load changes hit every stage alike
        for name in STAGES:
            seconds, lines = _measure(name, args.paths, args.cpu)
            best[name] = min(best[name], seconds)
    print(f"{'stage':<12} {'seconds':>8} {'lines/s':>10} {'stage cost':>11}")
    previous = 0.0
    for name, seconds in best.items():
        print(f"{name:<12} {seconds:8.3f} {lines / seconds:10,.0f} {seconds - previous:10.3f}s")
        previous = seconds


if __name__ == "__main__":
    main()
