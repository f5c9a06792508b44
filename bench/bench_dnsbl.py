"""How long does `mailwarden dnsbl check` take when the lists are slow? And pydnsbl?

Everything runs on 127.0.0.1 -- no packet leaves the machine:

* a real rbldnsd serves every bundled IP blocklist under its real zone name
  (tests/integration/dnsbl/rbldnsd_server.py; the bench address is listed on
  a few of them);
* a tiny asyncio UDP proxy in front of it delays each answer by a per-zone
  delay spread evenly from --min-delay to --max-delay ms (rbldnsd has no
  delay option), so the slowest list answers in --max-delay ms;
* the check of one address against all bundled IP lists is timed for
  mailwarden (A then TXT for listings; and A only) and for pydnsbl (A only,
  aiodns/c-ares pointed at the same proxy), --runs times each; medians shown.

A sequential checker would need the sum of the delays; a concurrent one
needs about the slowest single answer (plus one more round trip for the TXT
reason of a listing, if it fetches one). Last, both tools read a Spamhaus
error answer (127.255.255.254: "your resolver is blocked"), to show the
difference that matters more than speed.

    .venv/bin/python bench/bench_dnsbl.py [--runs 7] [--min-delay 50] [--max-delay 300]

pydnsbl is optional (`pip install pydnsbl`); without it only mailwarden is timed.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dns.asyncquery
import dns.message
import dns.name

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "integration" / "dnsbl"))

from rbldnsd_server import Dataset, Rbldnsd, rbldnsd_path  # noqa: E402

from mailwarden.intel.dnsbl.check import CheckOptions, ResolverAddress, check  # noqa: E402
from mailwarden.intel.dnsbl.model import CheckReport, Status  # noqa: E402
from mailwarden.intel.dnsbl.targets import parse_target  # noqa: E402
from mailwarden.intel.dnsbl.zones import ZoneInfo, load_catalogue  # noqa: E402

TARGET = "203.0.113.7"
ERROR_TARGET = "203.0.113.66"
LISTED_ON = ("zen.spamhaus.org", "bl.spamcop.net", "psbl.surriel.com")


class DelayProxy:
    """UDP proxy on 127.0.0.1: forwards each query to rbldnsd, answers after the zone's delay."""

    def __init__(self, upstream_port: int, delays: dict[str, float]) -> None:
        self.upstream_port = upstream_port
        self.delays = {dns.name.from_text(z): d for z, d in delays.items()}
        self.port = 0
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._transport: asyncio.DatagramTransport | None = None
        self.answered = 0

    def __enter__(self) -> DelayProxy:
        self._thread.start()
        self._ready.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        proxy = self

        class Protocol(asyncio.DatagramProtocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                proxy._transport = transport  # type: ignore[assignment]

            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                proxy.loop.create_task(proxy._answer(data, addr))

        transport, _ = self.loop.run_until_complete(
            self.loop.create_datagram_endpoint(Protocol, local_addr=("127.0.0.1", 0))
        )
        self.port = transport.get_extra_info("sockname")[1]
        self._ready.set()
        self.loop.run_forever()
        transport.close()

    def _delay(self, qname: dns.name.Name) -> float:
        for zone, delay in self.delays.items():
            if qname.is_subdomain(zone):
                return delay
        return 0.0

    async def _answer(self, data: bytes, addr: tuple[str, int]) -> None:
        t0 = time.monotonic()
        try:
            query = dns.message.from_wire(data)
            response = await dns.asyncquery.udp(query, "127.0.0.1", port=self.upstream_port, timeout=2)
        except Exception:  # a benchmark proxy: drop what it cannot relay
            return
        wait = self._delay(query.question[0].name) - (time.monotonic() - t0)
        if wait > 0:
            await asyncio.sleep(wait)
        if self._transport is not None:
            self._transport.sendto(response.to_wire(), addr)
            self.answered += 1


def datasets(ip_zones: list[ZoneInfo]) -> list[Dataset]:
    out = []
    for z in ip_zones:
        text = ":127.0.0.2:Listed for the benchmark: $\n"
        if z.zone in LISTED_ON:
            text += f"{TARGET}\n"
        if z.zone == "zen.spamhaus.org":
            text += f"{ERROR_TARGET} :127.255.255.254:Error: open resolver\n"
        out.append(Dataset(z.zone, "ip4set", z.name, text))
    return out


def timed(fn: Callable[[], Any], runs: int) -> tuple[list[float], Any]:
    times, last = [], None
    fn()  # warm-up (imports, first sockets)
    for _ in range(runs):
        t0 = time.perf_counter()
        last = fn()
        times.append(time.perf_counter() - t0)
    return times, last


def pydnsbl_checker(zones: list[ZoneInfo], port: int, loop: asyncio.AbstractEventLoop) -> Any:
    """A pydnsbl DNSBLIpChecker whose aiodns resolver asks only 127.0.0.1:port (never the system's)."""
    # Optional dependency, imported only when present (the bench runs without it).
    import aiodns  # type: ignore[import-not-found, unused-ignore]  # noqa: PLC0415
    import pydnsbl  # type: ignore[import-untyped, import-not-found, unused-ignore]  # noqa: PLC0415
    from pydnsbl.providers import Provider  # type: ignore[import-untyped, import-not-found, unused-ignore]  # noqa: PLC0415

    class LoopbackChecker(pydnsbl.DNSBLIpChecker):  # type: ignore[misc]
        def __init__(self) -> None:  # deliberately not calling super(): it builds a system resolver
            self.providers = [Provider(z.zone) for z in zones]
            self._loop = loop
            self._resolver = aiodns.DNSResolver(
                nameservers=["127.0.0.1"], loop=loop, udp_port=port, tcp_port=port, timeout=3, tries=1
            )
            self._semaphore = asyncio.Semaphore(200)

    return LoopbackChecker()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--min-delay", type=float, default=50.0, help="ms, fastest list")
    ap.add_argument("--max-delay", type=float, default=300.0, help="ms, slowest list")
    args = ap.parse_args()
    if rbldnsd_path() is None:
        print("rbldnsd is not installed (apt-get install rbldnsd)", file=sys.stderr)
        return 2
    ip_zones = [z for z in load_catalogue().active() if z.kind == "ip"]
    n = len(ip_zones)
    step = (args.max_delay - args.min_delay) / max(1, n - 1)
    delays = {z.zone: (args.min_delay + i * step) / 1000 for i, z in enumerate(ip_zones)}
    target = [parse_target(TARGET)]
    print(f"{n} bundled IP lists; delays {args.min_delay:g}..{args.max_delay:g} ms; {args.runs} runs each")
    print(f"sum of delays (one list after the other): {sum(delays.values()) * 1000:.0f} ms")
    print(f"slowest single answer (configured):        {max(delays.values()) * 1000:.0f} ms\n")

    with Rbldnsd(datasets(ip_zones)) as server, DelayProxy(server.port, delays) as proxy:
        resolver = ResolverAddress("127.0.0.1", proxy.port)
        rows = []
        for label, txt in (("mailwarden (A + TXT for listings)", True), ("mailwarden (A only)", False)):
            opts = CheckOptions(timeout=3, deadline=10, txt=txt)

            def ours(opts: CheckOptions = opts) -> CheckReport:
                return check(target, ip_zones, resolver=resolver, options=opts)

            times, rep = timed(ours, args.runs)
            slowest = max(r.elapsed for r in rep.results) * 1000
            rows.append((label, times, f"listed on {len(rep.listed)}/{n}, slowest lookup {slowest:.0f} ms"))
        try:
            loop = asyncio.new_event_loop()
            checker = pydnsbl_checker(ip_zones, proxy.port, loop)
        except ImportError:
            checker = None
            print("(pydnsbl not installed: pip install pydnsbl)")
        if checker is not None:
            times, res = timed(lambda: checker.check(TARGET), args.runs)
            rows.append(("pydnsbl 1.1.7 (A only)", times, f"listed on {len(res.detected_by)}/{n}"))

        width = max(len(r[0]) for r in rows)
        for label, times, note in rows:
            med, best = statistics.median(times) * 1000, min(times) * 1000
            print(f"{label:<{width}}  median {med:6.0f} ms  min {best:6.0f} ms   {note}")

        print(f"\nSpamhaus error answer for {ERROR_TARGET} (127.255.255.254 = query via public resolver):")
        zen = [z for z in ip_zones if z.zone == "zen.spamhaus.org"]
        rep = check([parse_target(ERROR_TARGET)], zen, resolver=resolver, options=CheckOptions(timeout=3))
        r = rep.results[0]
        print(f"  mailwarden: {r.status.value} ({r.problem.value if r.problem else '-'})"
              f"{'  -- not counted as listed' if r.status is not Status.LISTED else ''}")  # fmt: skip
        if checker is not None:
            checker.providers = [checker.providers[[z.zone for z in ip_zones].index("zen.spamhaus.org")]]
            res = checker.check(ERROR_TARGET)
            print(f"  pydnsbl:    blacklisted={res.blacklisted} detected_by={res.detected_by}")
            loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
