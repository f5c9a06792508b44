"""Throughput of the sources layer on a synthetic syslog file.

Prints lines/s for: framing alone (``frame_line`` on lines already in memory,
including the ``Source`` each record needs), the floor set by building the
``Record`` and ``Source`` objects themselves, and whole ``read_records`` runs
on the plain and the gzip file. The file is generated in a temporary
directory and removed afterwards; nothing here touches the network.

    .venv/bin/python bench/bench_framing.py [--lines 500000] [--per-second 5]
"""

from __future__ import annotations

import argparse
import gzip
import random
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mailwarden.model import ReadStats, Record, Source
from mailwarden.sources import YearInference, frame_line, read_records

START = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
TEMPLATES = (
    "mx postfix/smtpd[{pid}]: connect from unknown[203.0.113.{a}]",
    "mx postfix/smtpd[{pid}]: {qid}: client=unknown[203.0.113.{a}], sasl_method=LOGIN, "
    "sasl_username=user{a}@example.test",
    "mx postfix/cleanup[{pid}]: {qid}: message-id=<{qid}.{a}@example.test>",
    "mx postfix/qmgr[1201]: {qid}: from=<user{a}@example.test>, size={size}, nrcpt=1 (queue active)",
    "mx postfix/smtp[{pid}]: {qid}: to=<rcpt{a}@example.org>, relay=mx.example.org"
    "[198.51.100.{a}]:25, delay=0.4, delays=0.1/0/0.1/0.2, dsn=2.0.0, status=sent (250 ok)",
    "mx postfix/qmgr[1201]: {qid}: removed",
    "mx postfix/smtpd[{pid}]: disconnect from unknown[203.0.113.{a}] ehlo=1 auth=1 mail=1 "
    "rcpt=1 data=1 quit=1 commands=6",
    "mx dovecot: imap-login: Login: user=<user{a}@example.test>, method=PLAIN, "
    "rip=192.0.2.{a}, lip=10.0.0.1, mpid={pid}, TLS, session=<abcdef{a}>",
)


def generate(path: Path, lines: int, per_second: int) -> None:
    rng = random.Random(1)
    with path.open("w") as out:
        for n in range(lines):
            stamp = (START + timedelta(seconds=n // per_second)).strftime("%b %e %H:%M:%S")
            text = rng.choice(TEMPLATES).format(
                pid=rng.randrange(2000, 2100),
                qid=f"{rng.getrandbits(40):010X}",
                a=rng.randrange(1, 255),
                size=rng.randrange(500, 90000),
            )
            out.write(f"{stamp} {text}\n")


def rate(label: str, count: int, run: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    per_second = count / best
    print(f"{label:<42} {per_second / 1e6:6.2f} M lines/s  ({best * 1e9 / count:5.0f} ns/line)")
    return per_second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=500_000)
    parser.add_argument("--per-second", type=int, default=5, help="lines sharing one stamp")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / "mail.log"
        generate(plain, args.lines, args.per_second)
        packed = Path(tmp) / "mail.log.1.gz"
        packed.write_bytes(gzip.compress(plain.read_bytes(), compresslevel=6))
        text = plain.read_text().splitlines()
        reference = START + timedelta(days=30)
        print(f"{len(text):,} lines, {plain.stat().st_size / 1e6:.1f} MB, "
              f"{args.per_second} per second")  # fmt: skip

        def frame_all() -> None:
            clock = YearInference(reference, UTC)
            for number, line in enumerate(text, 1):
                if frame_line(line, Source("mail.log", number), clock) is None:
                    raise SystemExit(f"line {number} did not frame: {line!r}")

        def objects_only() -> None:
            ts = START
            for number, line in enumerate(text, 1):
                Record(ts, "mx", "postfix/smtpd", 1, line, Source("mail.log", number))

        def read(path: Path) -> Callable[[], object]:
            def run() -> None:
                stats = ReadStats()
                for _record in read_records([str(path)], stats, tz=UTC, now=reference):
                    pass
                if stats.records != len(text):
                    raise SystemExit(f"read {stats.records} of {len(text)}: {stats.skipped}")

            return run

        rate("frame_line (incl. Source per line)", len(text), frame_all)
        rate("Record()+Source() construction alone", len(text), objects_only)
        rate("read_records, plain file", len(text), read(plain))
        rate("read_records, gzip file", len(text), read(packed))


if __name__ == "__main__":
    main()
