"""The lookup engine against a real rbldnsd on 127.0.0.1 (and a resolver that never answers).

All queries go to 127.0.0.1 through an explicit resolver; the zones carry the
real lists' names but are served by our own rbldnsd.
"""

from __future__ import annotations

import time

import pytest
from dnsbl_testdata import HOSTILE_TXT
from rbldnsd_server import Rbldnsd, SilentResolver

from mailwarden.intel.dnsbl.check import CheckOptions, ResolverAddress, check, parse_resolver
from mailwarden.intel.dnsbl.model import CheckReport, Problem, Status, ZoneResult
from mailwarden.intel.dnsbl.targets import parse_target
from mailwarden.intel.dnsbl.zones import ZoneInfo, adhoc_zone, load_catalogue

pytestmark = pytest.mark.integration

CAT = load_catalogue()


def zone(name: str) -> ZoneInfo:
    z = CAT.find(name)
    assert z is not None
    return z


def run(
    server: Rbldnsd, targets: list[str], zones: list[ZoneInfo] | None = None, **opts: float
) -> CheckReport:
    return check(
        [parse_target(t) for t in targets],
        zones if zones is not None else list(CAT.active()),
        resolver=parse_resolver(server.resolver),
        options=CheckOptions(**opts),  # type: ignore[arg-type]
    )


def one(report: CheckReport, target: str, list_name: str) -> ZoneResult:
    (r,) = [r for r in report.results if r.target.text == target and r.zone.name == list_name]
    return r


def test_listed_with_meaning_and_txt(rbldnsd: Rbldnsd) -> None:
    rep = run(rbldnsd, ["203.0.113.7"])
    zen = one(rep, "203.0.113.7", "spamhaus-zen")
    assert zen.status is Status.LISTED
    assert [c.address for c in zen.codes] == ["127.0.0.2"]
    assert zen.txt == ("Listed in SBL, see https://check.spamhaus.org/sbl/query/SBLTEST for 203.0.113.7",)
    assert zen.qname == "7.113.0.203.zen.spamhaus.org."
    assert one(rep, "203.0.113.7", "spamcop").status is Status.LISTED
    assert {r.zone.name for r in rep.listed} == {"spamhaus-zen", "spamcop"}
    assert rep.results[0].zone.name == "spamhaus-zen"  # worst first
    assert not rep.unknown
    assert len(rep.results) == len([z for z in CAT.active() if z.kind == "ip"])


def test_not_listed(rbldnsd: Rbldnsd) -> None:
    rep = run(rbldnsd, ["198.51.100.1"])
    assert rep.results and all(r.status is Status.NOT_LISTED for r in rep.results)
    assert all(r.detail == "NXDOMAIN" for r in rep.results)


def test_rfc5782_test_point(rbldnsd: Rbldnsd) -> None:
    rep = run(rbldnsd, ["127.0.0.2"], [zone("spamhaus-zen")])
    assert rep.results[0].status is Status.LISTED


def test_multiple_codes_for_one_ip(rbldnsd: Rbldnsd) -> None:
    r = run(rbldnsd, ["203.0.113.8"], [zone("spamhaus-zen")]).results[0]
    assert r.status is Status.LISTED
    assert r.answers == ("127.0.0.2", "127.0.0.4")
    assert [c.address for c in r.codes] == ["127.0.0.2", "127.0.0.4"]
    assert len(r.txt) == 2 and any("botnet" in t for t in r.txt)
    assert r.severity == 10


def test_ipv6_ip6trie(rbldnsd: Rbldnsd) -> None:
    rep = run(rbldnsd, ["2001:db8:bad::25", "2001:db8:1::1"])
    listed = one(rep, "2001:db8:bad::25", "spamhaus-zen")
    assert listed.status is Status.LISTED and listed.txt == ("IPv6 listed in SBL",)
    assert listed.qname.count(".") == 32 + 3
    assert one(rep, "2001:db8:1::1", "spamhaus-zen").status is Status.NOT_LISTED
    assert {r.zone.name for r in rep.results} == {"spamhaus-zen"}  # only ZEN publishes IPv6 data here


def test_domain_list_dnset(rbldnsd: Rbldnsd) -> None:
    rep = run(rbldnsd, ["bad.example", "good.example", "both.example"])
    assert one(rep, "bad.example", "spamhaus-dbl").status is Status.LISTED
    assert one(rep, "good.example", "spamhaus-dbl").status is Status.NOT_LISTED
    both = one(rep, "both.example", "uribl-multi")
    assert [c.meaning.split(":")[0] for c in both.codes] == ["black", "grey"]
    assert {r.zone.kind for r in rep.results} == {"domain"}


def test_hostile_txt_arrives_raw_for_clean(rbldnsd: Rbldnsd) -> None:
    r = run(rbldnsd, ["hostile.example"], [zone("spamhaus-dbl")]).results[0]
    assert r.status is Status.LISTED and r.txt == (HOSTILE_TXT,)


def test_public_resolver_error_code(rbldnsd: Rbldnsd) -> None:
    rep = run(rbldnsd, ["203.0.113.66"], [zone("spamhaus-zen")])
    (r,) = rep.results
    assert (r.status, r.problem) == (Status.UNKNOWN, Problem.RESOLVER_BLOCKED)
    assert r.answers == ("127.255.255.254",) and r.txt
    assert not rep.listed
    assert any("refuses this resolver" in w and "127.255.255.254" in w for w in rep.warnings)


def test_uribl_query_refused(rbldnsd: Rbldnsd) -> None:
    r = run(rbldnsd, ["refused.example"], [zone("uribl-multi")]).results[0]
    assert (r.status, r.problem) == (Status.UNKNOWN, Problem.RESOLVER_BLOCKED)


def test_answer_outside_127(rbldnsd: Rbldnsd) -> None:
    r = run(rbldnsd, ["203.0.113.99"], [zone("spamhaus-zen")]).results[0]
    assert (r.status, r.problem) == (Status.UNKNOWN, Problem.OUTSIDE_127)
    assert r.answers == ("192.0.2.55",)


def test_undocumented_code(rbldnsd: Rbldnsd) -> None:
    r = run(rbldnsd, ["203.0.113.120"], [zone("spamhaus-zen")]).results[0]
    assert (r.status, r.problem) == (Status.UNKNOWN, Problem.UNDOCUMENTED_CODE)


def test_zone_the_server_does_not_serve_is_refused_unknown(rbldnsd: Rbldnsd) -> None:
    r = run(rbldnsd, ["203.0.113.7"], [adhoc_zone("bl.not-served.example")]).results[0]
    assert (r.status, r.problem) == (Status.UNKNOWN, Problem.REFUSED)


def test_adhoc_zone_served(rbldnsd: Rbldnsd) -> None:
    r = run(rbldnsd, ["203.0.113.7"], [adhoc_zone("bl.spamcop.net.")]).results[0]
    assert r.status is Status.LISTED and r.zone.zone == "bl.spamcop.net"


def test_resolver_that_never_answers_ends_at_the_deadline() -> None:
    with SilentResolver() as silent:
        deadline = 1.5
        t0 = time.monotonic()
        rep = check(
            [parse_target("203.0.113.7"), parse_target("bad.example")],
            list(CAT.active()),
            resolver=ResolverAddress("127.0.0.1", silent.port),
            options=CheckOptions(timeout=5.0, deadline=deadline),
        )
        elapsed = time.monotonic() - t0
        assert silent.received > 0
    assert elapsed < deadline + 1.0
    assert rep.results and all(r.status is Status.UNKNOWN for r in rep.results)
    assert {r.problem for r in rep.results} <= {Problem.TIMEOUT, Problem.DEADLINE}
    assert not rep.listed and rep.answered == 0
    assert any("answered none" in w for w in rep.warnings)


def test_per_query_timeout_shorter_than_deadline() -> None:
    with SilentResolver() as silent:
        t0 = time.monotonic()
        rep = check(
            [parse_target("203.0.113.7")],
            [zone("spamhaus-zen")],
            resolver=ResolverAddress("127.0.0.1", silent.port),
            options=CheckOptions(timeout=0.5, deadline=5.0),
        )
        assert time.monotonic() - t0 < 1.5
    assert rep.results[0].problem is Problem.TIMEOUT


def test_concurrency_bound_still_completes(rbldnsd: Rbldnsd) -> None:
    targets = [f"203.0.113.{i}" for i in range(1, 41)]
    rep = run(rbldnsd, targets, concurrency=3)
    assert len(rep.results) == 40 * len([z for z in CAT.active() if z.kind == "ip"])
    assert not rep.unknown
    assert {r.target.text for r in rep.listed} == {"203.0.113.7", "203.0.113.8"}


def test_ipv6_loopback_resolver_syntax(rbldnsd: Rbldnsd) -> None:
    assert parse_resolver(f"[::1]:{rbldnsd.port}") == ResolverAddress("::1", rbldnsd.port)


def test_resolver_on_ipv6_loopback() -> None:
    from dnsbl_testdata import bundled_datasets
    from rbldnsd_server import free_udp_port

    try:
        free_udp_port("::1")
    except OSError:
        pytest.skip("no IPv6 loopback on this host")
    with Rbldnsd(bundled_datasets(), host="::1") as v6:
        assert v6.resolver.startswith("[::1]:")
        rep = run(v6, ["203.0.113.7"], [zone("spamhaus-zen")])
        assert rep.results[0].status is Status.LISTED
        assert rep.resolver == v6.resolver


def test_retired_list_checked_on_request_says_so(rbldnsd: Rbldnsd) -> None:
    rep = run(rbldnsd, ["203.0.113.7"], [zone("sorbs")])
    assert rep.results[0].status is Status.UNKNOWN  # not served here: REFUSED
    assert any("retired" in w and "2024-06-05" in w for w in rep.warnings)


def test_target_no_selected_list_applies_to(rbldnsd: Rbldnsd) -> None:
    rep = run(rbldnsd, ["2001:db8::1", "bad.example"], [zone("spamcop")])
    assert rep.results == ()
    assert any("2001:db8::1" in w and "IPv6" in w for w in rep.warnings)
    assert any("bad.example" in w and "domain" in w for w in rep.warnings)
