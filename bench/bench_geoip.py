#!/usr/bin/env python3
"""How fast and how big the offline address lookup is.

Prints: the cost of the lazy geoip2fast load (seconds, RSS), lookups/s for
100k lookups over 10k distinct public addresses with the memo off ("cold":
every lookup parses and queries the data) and on ("memoised"), and the RSS
of a full memo. Addresses are random but seeded, so runs compare.

usage: bench_geoip.py [--lookups N] [--distinct N] [--mmdb FILE ...] [--json]
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import random
import resource
import sys
import time
from pathlib import Path

from mailwarden.enrich import DEFAULT_CACHE_SIZE, GeoResolver
from mailwarden.enrich.scope import classify

# Where real IPv6 clients live (RIPE, APNIC, ARIN, LACNIC, AFRINIC allocations).
V6_PREFIXES = ("2a00::/12", "2400::/12", "2600::/12", "2800::/12", "2c00::/12")


def rss_mib() -> float:
    """Resident set size now (Linux); peak RSS elsewhere, which overstates."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def public_addresses(count: int, seed: int) -> list[str]:
    """``count`` distinct public addresses, 80 % IPv4, like a typical mail log."""
    rng = random.Random(seed)
    v6_nets = [ipaddress.IPv6Network(p) for p in V6_PREFIXES]
    seen: set[str] = set()
    while len(seen) < count:
        if rng.random() < 0.8:
            addr: ipaddress.IPv4Address | ipaddress.IPv6Address
            addr = ipaddress.IPv4Address(rng.getrandbits(32))
        else:
            net = rng.choice(v6_nets)
            addr = net[rng.getrandbits(128 - net.prefixlen)]
        if classify(addr) == "public":
            seen.add(str(addr))
    return sorted(seen)


def rate(resolver: GeoResolver, stream: list[str]) -> float:
    lookup = resolver.lookup
    started = time.perf_counter()
    for ip in stream:
        lookup(ip)
    return len(stream) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lookups", type=int, default=100_000)
    parser.add_argument("--distinct", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--mmdb", action="append", default=[], help="user .mmdb (repeatable)")
    parser.add_argument("--no-fill", action="store_true", help="skip the full-memo RSS check")
    parser.add_argument("--json", action="store_true", help="one JSON object instead of text")
    args = parser.parse_args()

    distinct = public_addresses(args.distinct, args.seed)
    rng = random.Random(args.seed + 1)
    stream = [rng.choice(distinct) for _ in range(args.lookups)]
    out: dict[str, object] = {
        "python": sys.version.split()[0],
        "lookups": args.lookups,
        "distinct": args.distinct,
        "mmdb": args.mmdb,
    }

    base = rss_mib()
    started = time.perf_counter()
    cold = GeoResolver(args.mmdb, cache_size=0)
    cold.lookup("8.8.8.8")  # first public address: loads the network table
    out["load_seconds"] = round(time.perf_counter() - started, 3)
    out["load_rss_mib"] = round(rss_mib() - base, 1)

    out["cold_lookups_per_s"] = round(rate(cold, stream))
    memo = GeoResolver(args.mmdb)
    out["memoised_first_pass_per_s"] = round(rate(memo, stream))
    out["memoised_warm_per_s"] = round(rate(memo, stream))

    if not args.no_fill:
        fill = GeoResolver(args.mmdb)
        many = public_addresses(DEFAULT_CACHE_SIZE, args.seed + 2)
        before = rss_mib()
        for ip in many:
            fill.lookup(ip)
        out["full_memo_entries"] = DEFAULT_CACHE_SIZE
        out["full_memo_rss_mib"] = round(rss_mib() - before, 1)
    out["describe"] = memo.describe()

    if args.json:
        print(json.dumps(out, indent=2))
        return
    for key, value in out.items():
        if key != "describe":
            print(f"{key:28} {value}")
    builtin = memo.describe()["builtin"]
    if isinstance(builtin, dict):
        print(f"{'network data':28} {builtin['network']['data']}")
        print(f"{'country data':28} iptocc {builtin['country']['version']}")


if __name__ == "__main__":
    main()
