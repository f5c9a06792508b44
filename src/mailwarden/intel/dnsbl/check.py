"""The lookup engine: every (target, list) pair asked at once, within a deadline.

The DNS side is a thin asyncio layer over ``dns.asyncresolver``; naming
(``targets``) and reading (``answers``) are pure functions.

Timing, in dnspython's terms: ``Resolver.timeout`` bounds one attempt at one
server, ``lifetime`` bounds one whole lookup (all attempts and retries). We set
``lifetime`` to the per-query timeout (capped by what is left of the deadline)
and ``timeout`` to half of it, so a lost UDP datagram gets one retry. The
deadline bounds the whole check: whatever has not answered by then is
``unknown`` (``deadline``), and results already known are kept.

The resolver is the system's (``/etc/resolv.conf``) unless one is given; tests
always give a loopback one. Blocklists refuse public resolvers (Spamhaus,
URIBL) -- see ``public_resolver_warning``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import dns.asyncresolver
import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.resolver

from mailwarden.intel.dnsbl.answers import Outcome, decode_txt, interpret
from mailwarden.intel.dnsbl.errors import ResolverError
from mailwarden.intel.dnsbl.model import (
    RESOLVER_PROBLEMS,
    CheckReport,
    Problem,
    Status,
    ZoneResult,
    sort_key,
)
from mailwarden.intel.dnsbl.targets import Target, query_name
from mailwarden.intel.dnsbl.zones import ZoneInfo

# Well-known public resolvers: blocklists refuse them or rate-limit them to uselessness.
PUBLIC_RESOLVERS = frozenset(
    {
        "8.8.8.8", "8.8.4.4", "2001:4860:4860::8888", "2001:4860:4860::8844",  # Google
        "1.1.1.1", "1.0.0.1", "2606:4700:4700::1111", "2606:4700:4700::1001",  # Cloudflare
        "9.9.9.9", "149.112.112.112", "2620:fe::fe", "2620:fe::9",  # Quad9
        "208.67.222.222", "208.67.220.220", "2620:119:35::35", "2620:119:53::53",  # OpenDNS
        "94.140.14.14", "94.140.15.15",  # AdGuard
        "8.26.56.26", "8.20.247.20",  # Comodo
        "185.228.168.9", "185.228.169.9",  # CleanBrowsing
        "64.6.64.6", "64.6.65.6",  # Verisign (retired, still configured in places)
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ResolverAddress:
    """An explicit resolver: ``HOST``, ``HOST:PORT``, ``[V6]:PORT`` or a bare IPv6 address."""

    host: str
    port: int = 53

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == 53 else f"{host}:{self.port}"


def parse_resolver(text: str) -> ResolverAddress:
    raw = text.strip()
    host, port_text = raw, ""
    if raw.startswith("["):
        end = raw.find("]")
        if end < 0:
            raise ResolverError(f"--resolver {raw!r}: missing ']'")
        host, rest = raw[1:end], raw[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ResolverError(f"--resolver {raw!r}: expected ':PORT' after ']'")
            port_text = rest[1:]
    elif raw.count(":") == 1:
        host, port_text = raw.split(":")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise ResolverError(f"--resolver {raw!r}: HOST must be an IP address (not a name)") from None
    port = 53
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ResolverError(f"--resolver {raw!r}: bad port {port_text!r}")
        port = int(port_text)
    return ResolverAddress(ip.compressed, port)


@dataclass(frozen=True, slots=True)
class CheckOptions:
    timeout: float = 4.0  # one lookup (all its retries)
    deadline: float = 10.0  # the whole check
    concurrency: int = 32  # lookups in flight at once
    txt: bool = True  # fetch the TXT reason for listings and refusals

    def __post_init__(self) -> None:
        if self.timeout <= 0 or self.deadline <= 0 or self.concurrency < 1:
            raise ValueError("timeout and deadline must be > 0 and concurrency >= 1")


def make_resolver(address: ResolverAddress | None, options: CheckOptions) -> dns.asyncresolver.Resolver:
    if address is None:
        try:
            res = dns.asyncresolver.Resolver()  # the system's resolver, as the MTA would use
        except dns.resolver.NoResolverConfiguration as exc:
            raise ResolverError("no system resolver configured (/etc/resolv.conf); use --resolver") from exc
    else:
        res = dns.asyncresolver.Resolver(configure=False)
        res.nameservers = [address.host]
        res.port = address.port
    res.cache = None
    res.timeout = max(0.1, options.timeout / 2)
    res.lifetime = options.timeout
    return res


def resolver_label(address: ResolverAddress | None, res: dns.asyncresolver.Resolver) -> str:
    if address is not None:
        return str(address)
    servers = ", ".join(str(ns) for ns in res.nameservers)
    return f"system ({servers or 'none configured'})"


def public_resolver_warning(res: dns.asyncresolver.Resolver) -> str | None:
    public = [str(ns) for ns in res.nameservers if str(ns) in PUBLIC_RESOLVERS]
    if not public:
        return None
    return (
        f"The resolver {', '.join(public)} is a public resolver. Spamhaus answers such queries with an "
        "error code and URIBL refuses them, so those lists will show 'unknown', not 'clean'. "
        "Use a local recursive resolver (e.g. unbound) with --resolver 127.0.0.1."
    )


def check(
    targets: Sequence[Target],
    zones: Sequence[ZoneInfo],
    *,
    resolver: ResolverAddress | None = None,
    options: CheckOptions | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> CheckReport:
    """Look every target up in every list that applies to it; blocking wrapper of ``check_async``."""
    return asyncio.run(check_async(targets, zones, resolver=resolver, options=options, now=now))


async def check_async(
    targets: Sequence[Target],
    zones: Sequence[ZoneInfo],
    *,
    resolver: ResolverAddress | None = None,
    options: CheckOptions | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> CheckReport:
    opts = options or CheckOptions()
    res = make_resolver(resolver, opts)
    started, t0 = now(), time.monotonic()
    pairs = [(t, z) for t in dict.fromkeys(targets) for z in dict.fromkeys(zones) if z.applies_to(t.kind)]
    lookup = _Lookup(res, opts, t0 + opts.deadline)
    tasks = [asyncio.create_task(lookup.run(i, t, z)) for i, (t, z) in enumerate(pairs)]
    if tasks:
        _done, pending = await asyncio.wait(tasks, timeout=opts.deadline)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    results = []
    for i, (t, z) in enumerate(pairs):
        r = lookup.results.get(i)
        if r is None:
            r = ZoneResult(
                t, z, query_name(t, z.zone), Status.UNKNOWN, problem=Problem.DEADLINE,
                detail=f"no answer before the {opts.deadline:g}s deadline", elapsed=time.monotonic() - t0,
            )  # fmt: skip
        results.append(r)
    results.sort(key=sort_key)
    warnings = _warnings(results, res)
    warnings += [f"{z.label} is retired: {z.retired_note}" for z in dict.fromkeys(zones) if z.retired]
    asked = {t for t, _z in pairs}
    for t in dict.fromkeys(targets):
        if t not in asked:
            what = {"ip4": "IPv4", "ip6": "IPv6", "domain": "domain"}[t.kind]
            warnings.append(f"{t.display}: none of the selected lists publishes {what} data; not checked")
    return CheckReport(
        started=started,
        elapsed=time.monotonic() - t0,
        resolver=resolver_label(resolver, res),
        targets=tuple(dict.fromkeys(targets)),
        zones=tuple(dict.fromkeys(zones)),
        results=tuple(results),
        warnings=tuple(warnings),
    )


class _Lookup:
    """Shared state of one check: results land in ``results`` as soon as they are known,
    so a lookup cut off by the deadline while fetching its TXT keeps its verdict."""

    def __init__(self, res: dns.asyncresolver.Resolver, opts: CheckOptions, deadline_at: float) -> None:
        self.res = res
        self.opts = opts
        self.deadline_at = deadline_at
        self.sem = asyncio.Semaphore(opts.concurrency)
        self.results: dict[int, ZoneResult] = {}

    def _lifetime(self) -> float:
        return min(self.opts.timeout, self.deadline_at - time.monotonic())

    async def run(self, i: int, target: Target, zone: ZoneInfo) -> None:
        qname = query_name(target, zone.zone)
        async with self.sem:
            t0 = time.monotonic()
            lifetime = self._lifetime()
            if lifetime <= 0:
                return  # reported as DEADLINE by the caller
            outcome = await self._a(qname, lifetime)
            verdict = interpret(zone, outcome)
            result = ZoneResult(
                target, zone, qname, verdict.status, answers=outcome.addresses, codes=verdict.codes,
                problem=verdict.problem, detail=verdict.detail, severity=verdict.severity,
                elapsed=time.monotonic() - t0,
            )  # fmt: skip
            self.results[i] = result
            wants_txt = verdict.status is Status.LISTED or verdict.problem in (
                RESOLVER_PROBLEMS | {Problem.ERROR_CODE}
            )
            if self.opts.txt and wants_txt and self._lifetime() > 0:
                txt = await self._txt(qname, self._lifetime())
                self.results[i] = replace(result, txt=txt, elapsed=time.monotonic() - t0)

    async def _a(self, qname: str, lifetime: float) -> Outcome:
        try:
            answer = await self.res.resolve(
                dns.name.from_text(qname), "A", lifetime=lifetime, search=False, raise_on_no_answer=False
            )
        except dns.resolver.NXDOMAIN:
            return Outcome("nxdomain")
        except dns.resolver.LifetimeTimeout:
            return Outcome("failure", problem=Problem.TIMEOUT, detail=f"no answer within {lifetime:.3g}s")
        except dns.resolver.NoNameservers as exc:
            return _no_nameservers(exc)
        except dns.exception.Timeout:
            return Outcome("failure", problem=Problem.TIMEOUT, detail=f"no answer within {lifetime:.3g}s")
        except (dns.exception.DNSException, OSError) as exc:
            return Outcome("failure", problem=Problem.DNS_ERROR, detail=f"{type(exc).__name__}: {exc}")
        if answer.rrset is None:
            return Outcome("nodata")
        addresses = tuple(sorted({rd.to_text() for rd in answer.rrset}, key=_addr_key))
        return Outcome("answer", addresses=addresses)

    async def _txt(self, qname: str, lifetime: float) -> tuple[str, ...]:
        try:
            answer = await self.res.resolve(
                dns.name.from_text(qname), "TXT", lifetime=lifetime, search=False, raise_on_no_answer=False
            )
        except (dns.exception.DNSException, OSError):
            return ()  # the reason text is a courtesy; the A record already decided
        if answer.rrset is None:
            return ()
        return tuple(decode_txt(rd.strings) for rd in answer.rrset)[:8]


def _no_nameservers(exc: dns.resolver.NoNameservers) -> Outcome:
    errors = exc.kwargs.get("errors") or []
    rcodes = []
    for err in errors:
        response = err[4] if len(err) > 4 else None
        if isinstance(response, dns.message.Message):
            rcodes.append(response.rcode())
    if dns.rcode.SERVFAIL in rcodes:
        return Outcome("failure", problem=Problem.SERVFAIL, detail="SERVFAIL from the resolver")
    if dns.rcode.REFUSED in rcodes:
        return Outcome(
            "failure",
            problem=Problem.REFUSED,
            detail="REFUSED: the resolver will not answer for this zone (or for us)",
        )
    if rcodes:
        return Outcome("failure", problem=Problem.DNS_ERROR, detail=f"rcode {dns.rcode.to_text(rcodes[0])}")
    why = "; ".join(f"{e[0]}: {e[3]}" for e in errors if len(e) > 3)[:200]
    return Outcome("failure", problem=Problem.DNS_ERROR, detail=why or str(exc)[:200])


def _addr_key(a: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in a.split("."))
    except ValueError:
        return (999,)


def _warnings(results: Sequence[ZoneResult], res: dns.asyncresolver.Resolver) -> list[str]:
    out: list[str] = []
    public = public_resolver_warning(res)
    refused: dict[str, ZoneResult] = {}
    for r in results:
        if r.problem in RESOLVER_PROBLEMS:
            refused.setdefault(r.zone.name, r)
    for r in refused.values():
        why = "; ".join(f"{e.address}: {e.meaning}" for e in map(r.zone.error, r.answers) if e)
        out.append(
            f"{r.zone.label} refuses this resolver ({why}). Its results are UNKNOWN, not clean. "
            "Fix: query through your own recursive resolver (e.g. unbound on 127.0.0.1) rather than a "
            "public or shared one, or use the operator's registered service (Spamhaus DQS)."
        )
    if public:
        out.append(public)
    if results and all(r.problem in (Problem.TIMEOUT, Problem.DEADLINE) for r in results):
        out.append("The resolver answered none of the lookups: is it running and reachable?")
    return out
