#!/usr/bin/env python3
"""Throughput per log format: the same mail traffic written by each MTA, read and triaged.

Issue 3's claim: on every MTA family, throughput stays within 1.5x of the Postfix
figure. Each family's scenario writer (tests/scenarios/writers) renders the same plays
(a company's normal days, a cracked account, a web script) in its MTA's own shapes,
taken from that format's golden samples; the days are repeated until the logs hold
about ``--lines`` lines. Two figures per family:

* ``parse``: framing + parsing into events (``mailwarden events`` without the JSON);
* ``triage``: the whole pipeline (correlation, detectors, GeoIP of the lab database).

Every MTA gets the same traffic (the same rounds of plays), so two comparisons with
Postfix are printed: the time to triage the same mail (``time/pf``), and the rate in log
lines per second (``rate/pf``). They differ because MTAs write different numbers of lines
per message: Postfix about 7, Exim and Sendmail about 3.

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


def write_corpus(name: str, directory: Path, rounds: int) -> tuple[list[Path], int]:
    """The plays, shifted by four days per round: the same traffic whatever the MTA."""
    writer = WRITERS[name](plays.T0)
    for r in range(rounds):
        shifted = _Shifted(writer, timedelta(days=4 * r))
        plays.benign(shifted)
        if r % 5 == 0:
            plays.compromised(shifted)
            plays.web_script(shifted)
    paths = writer.write(directory, time.time())
    return paths, sum(1 for p in paths for _ in p.open("rb"))


def rounds_for(lines: int, directory: Path) -> int:
    """Rounds that give Postfix's writer about ``lines`` lines (one round is measured)."""
    probe = directory / "probe"
    probe.mkdir()
    _paths, one = write_corpus("postfix", probe, 1)
    return max(1, round(lines / one))


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
    ap.add_argument("--lines", type=int, default=300_000, help="about this many Postfix lines")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    names = [n for n in sorted(WRITERS) if not args.only or n in args.only.split(",") or n == "postfix"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rounds = rounds_for(args.lines, Path(tmp))
        for name in names:
            directory = Path(tmp) / name
            directory.mkdir()
            paths, count = write_corpus(name, directory, rounds)
            files = [str(p) for p in paths]

            def parse(files: list[str] = files) -> None:
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
    base = next(r for r in rows if r[0] == "postfix")
    print(f"same traffic for every MTA: {rounds} rounds of the plays (bench/bench_formats.py)")
    print(
        f"{'format':<15}{'lines':>8}{'msgs':>7}{'parse l/s':>11}{'triage l/s':>11}{'triage s':>9}"
        f"{'time/pf':>8}{'rate/pf':>8}{'unparsed':>9}"
    )
    for name, count, messages, parse_s, triage_s, unparsed in rows:
        time_ratio = triage_s / base[4]
        rate_ratio = (base[1] / base[4]) / (count / triage_s)
        print(
            f"{name:<15}{count:>8}{messages:>7}{count / parse_s:>11,.0f}{count / triage_s:>11,.0f}"
            f"{triage_s:>9.2f}{time_ratio:>7.2f}x{rate_ratio:>7.2f}x{unparsed:>9}"
        )
    print("time/pf: triage time of this MTA's logs / Postfix's, for the same mail traffic")
    print("rate/pf: Postfix triage lines/s / this MTA's (MTAs write different numbers of lines per message)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
