#!/usr/bin/env python3
"""Throughput per log format: the same mail traffic written by each MTA, read and triaged.

Issue 3's claim: on every MTA family, throughput stays within 1.5x of the Postfix
figure. Each family's scenario writer (tests/scenarios/writers) renders the same plays
(a company's normal days, a cracked account, a web script) in its MTA's own shapes,
taken from that format's golden samples; the days are repeated until the logs hold
about ``--lines`` lines. Two figures per family:

* ``parse``: framing + parsing into events (``mailwarden events`` without the JSON);
* ``triage``: the whole pipeline (correlation, detectors, GeoIP of the lab database).

Lines differ per MTA (Exim writes one line per delivery where Postfix writes several),
so messages per second are printed too: that is the operator's unit of work.

Usage::

    python bench/bench_formats.py [--lines 300000] [--repeat 3] [--only exim,qmail...]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.scenarios import plays  # noqa: E402
from tests.scenarios.writers import WRITERS  # noqa: E402

from mailwarden.model import ReadStats  # noqa: E402
from mailwarden.pipeline import event_batches, triage  # noqa: E402

GEO = str(ROOT / "tests" / "data" / "lab-geo.mmdb")


def write_corpus(name: str, directory: Path, lines: int) -> tuple[list[Path], int]:
    """The plays, shifted by four days at a time, until the writer holds about ``lines`` lines."""
    writer = WRITERS[name](plays.T0)
    rounds = 0
    while True:
        shift = timedelta(days=4 * rounds)
        shifted = _Shifted(writer, shift)
        plays.benign(shifted)
        if rounds % 5 == 0:
            plays.compromised(shifted)
            plays.web_script(shifted)
        rounds += 1
        probe = directory / f"probe-{name}"
        probe.mkdir(exist_ok=True)
        if rounds % 4 == 0 or rounds > 200:
            paths = writer.write(probe, time.time())
            count = sum(1 for p in paths for _ in p.open("rb"))
            if count >= lines or rounds > 200:
                return paths, count


class _Shifted:
    """Forward every writer call with its time argument moved by ``shift``."""

    def __init__(self, writer: object, shift: timedelta) -> None:
        self._w = writer
        self._shift = shift

    def __getattr__(self, attr: str) -> object:
        method = getattr(self._w, attr)

        def call(t: object, *args: object, **kwargs: object) -> object:
            return method(t + self._shift, *args, **kwargs)  # type: ignore[operator]

        return call


def best(fn: object, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=300_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    names = [n for n in sorted(WRITERS) if not args.only or n in args.only.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            directory = Path(tmp) / name
            directory.mkdir()
            paths, count = write_corpus(name, directory, args.lines)
            files = [str(p) for p in paths]
            stats = ReadStats()

            def parse(files: list[str] = files, stats: ReadStats = stats) -> None:
                for _batch in event_batches(files, ReadStats()):
                    pass

            def run(files: list[str] = files) -> None:
                triage(files, geoip_paths=[GEO])

            parse_s = best(parse, args.repeat)
            triage_s = best(run, args.repeat)
            result = triage(files, geoip_paths=[GEO])
            messages = result.totals.received
            unparsed = sum(result.stats.unparsed.values())
            rows.append((name, count, messages, parse_s, triage_s, unparsed))
            for p in paths:
                os.unlink(p)
    base = next((r for r in rows if r[0] == "postfix"), None)
    print(
        f"{'format':<14}{'lines':>9}{'msgs':>8}{'parse l/s':>12}{'triage l/s':>12}{'triage msg/s':>14}"
        f"{'vs postfix':>12}{'unparsed':>10}"
    )
    for name, count, messages, parse_s, triage_s, unparsed in rows:
        ratio = (base[1] / base[4]) / (count / triage_s) if base else float("nan")
        print(
            f"{name:<14}{count:>9}{messages:>8}{count / parse_s:>12,.0f}{count / triage_s:>12,.0f}"
            f"{messages / triage_s:>14,.0f}{ratio:>11.2f}x{unparsed:>10}"
        )
    print("vs postfix: Postfix triage lines/s divided by this format's (<= 1.5 is the target)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
