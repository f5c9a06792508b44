"""Reading answers: listed / not listed / unknown -- and unknown is never counted as listed."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailwarden.intel.dnsbl.answers import Outcome, decode_txt, interpret
from mailwarden.intel.dnsbl.model import Problem, Status
from mailwarden.intel.dnsbl.zones import ZoneInfo, adhoc_zone, load_catalogue

CAT = load_catalogue()


def _list(name: str) -> ZoneInfo:
    z = CAT.find(name)
    assert z is not None
    return z


ZEN, DBL, URIBL, SURBL = (
    _list(n) for n in ("spamhaus-zen", "dbl.spamhaus.org", "uribl-multi", "surbl-multi")
)


def answer(*addresses: str) -> Outcome:
    return Outcome("answer", addresses=addresses)


def test_nxdomain_is_not_listed() -> None:
    v = interpret(ZEN, Outcome("nxdomain"))
    assert (v.status, v.problem, v.codes) == (Status.NOT_LISTED, None, ())


def test_nodata_is_not_listed() -> None:
    assert interpret(ZEN, Outcome("nodata")).status is Status.NOT_LISTED


@pytest.mark.parametrize("problem", [Problem.TIMEOUT, Problem.SERVFAIL, Problem.REFUSED, Problem.DNS_ERROR])
def test_failures_are_unknown(problem: Problem) -> None:
    v = interpret(ZEN, Outcome("failure", problem=problem, detail="x"))
    assert (v.status, v.problem) == (Status.UNKNOWN, problem)


def test_single_code_with_meaning_and_severity() -> None:
    v = interpret(ZEN, answer("127.0.0.4"))
    assert v.status is Status.LISTED
    assert [c.address for c in v.codes] == ["127.0.0.4"]
    assert "XBL" in v.codes[0].meaning
    assert v.severity == 9


def test_multiple_codes_all_reported_worst_severity_wins() -> None:
    v = interpret(ZEN, answer("127.0.0.2", "127.0.0.10"))
    assert v.status is Status.LISTED
    assert [c.address for c in v.codes] == ["127.0.0.2", "127.0.0.10"]
    assert v.severity == 10


def test_pbl_alone_is_a_listing_of_lower_severity() -> None:
    v = interpret(ZEN, answer("127.0.0.11"))
    assert v.status is Status.LISTED and v.severity == 6


@pytest.mark.parametrize(
    ("code", "problem"),
    [
        ("127.255.255.254", Problem.RESOLVER_BLOCKED),
        ("127.255.255.255", Problem.RATE_LIMITED),
        ("127.255.255.252", Problem.ERROR_CODE),
    ],
)
def test_spamhaus_error_codes_are_unknown_not_listed(code: str, problem: Problem) -> None:
    for zone in (ZEN, DBL):
        v = interpret(zone, answer(code))
        assert (v.status, v.problem) == (Status.UNKNOWN, problem)
        assert code in v.detail


def test_public_resolver_is_said_clearly() -> None:
    v = interpret(ZEN, answer("127.255.255.254"))
    assert "refused to answer this resolver" in v.detail
    assert "public/open resolver" in v.detail


def test_error_code_wins_over_listing_codes_in_the_same_answer() -> None:
    v = interpret(ZEN, answer("127.0.0.2", "127.255.255.254"))
    assert (v.status, v.problem) == (Status.UNKNOWN, Problem.RESOLVER_BLOCKED)


def test_dbl_ip_query_error() -> None:
    v = interpret(DBL, answer("127.0.1.255"))
    assert (v.status, v.problem) == (Status.UNKNOWN, Problem.ERROR_CODE)


def test_answer_outside_127_is_unknown() -> None:
    for addrs in (("192.0.2.55",), ("127.0.0.2", "10.1.2.3")):
        v = interpret(ZEN, answer(*addrs))
        assert (v.status, v.problem) == (Status.UNKNOWN, Problem.OUTSIDE_127)
        assert v.codes == ()


def test_undocumented_code_is_unknown() -> None:
    v = interpret(ZEN, answer("127.0.0.77"))
    assert (v.status, v.problem) == (Status.UNKNOWN, Problem.UNDOCUMENTED_CODE)


def test_documented_plus_undocumented_is_listed_with_a_note() -> None:
    v = interpret(ZEN, answer("127.0.0.2", "127.0.0.77"))
    assert v.status is Status.LISTED
    assert "127.0.0.77" in v.detail


def test_uribl_query_refused() -> None:
    v = interpret(URIBL, answer("127.0.0.1"))
    assert (v.status, v.problem) == (Status.UNKNOWN, Problem.RESOLVER_BLOCKED)
    assert "query refused" in v.detail.lower()


def test_bitmask_decoding() -> None:
    v = interpret(URIBL, answer("127.0.0.6"))
    assert v.status is Status.LISTED
    assert [c.address for c in v.codes] == ["127.0.0.2", "127.0.0.4"]
    v = interpret(SURBL, answer("127.0.0.80"))  # MW (16) + ABUSE (64)
    assert [c.meaning.split(":")[0] for c in v.codes] == ["MW", "ABUSE"]


def test_bitmask_unknown_bits_only_is_unknown() -> None:
    v = interpret(SURBL, answer("127.0.0.2"))  # bit 2: retired SURBL sub-list
    assert (v.status, v.problem) == (Status.UNKNOWN, Problem.UNDOCUMENTED_CODE)


def test_adhoc_zone_follows_rfc5782() -> None:
    z = adhoc_zone("bl.example.net")
    assert interpret(z, answer("127.0.0.2")).status is Status.LISTED
    assert interpret(z, answer("127.0.0.9")).status is Status.LISTED
    for bad in ("127.0.0.1", "127.255.255.254"):
        v = interpret(z, answer(bad))
        assert (v.status, v.problem) == (Status.UNKNOWN, Problem.ERROR_CODE)
    assert interpret(z, answer("198.51.100.7")).problem is Problem.OUTSIDE_127


def test_decode_txt_joins_strings_and_keeps_bytes_visible_to_clean() -> None:
    assert decode_txt([b"Listed ", b"in SBL"]) == "Listed in SBL"
    assert decode_txt([b"\x1b[2J\xff"]) == "\x1b[2J\ufffd"


ipv4 = st.builds(lambda n: str(ipaddress.IPv4Address(n)), st.integers(0, 2**32 - 1))
loop127 = st.builds(lambda n: str(ipaddress.IPv4Address(0x7F000000 + n)), st.integers(0, 2**24 - 1))


@given(st.lists(st.one_of(ipv4, loop127), min_size=1, max_size=4), st.sampled_from(CAT.active()))
def test_listed_only_for_documented_codes_in_127(addrs: list[str], zone: ZoneInfo) -> None:
    v = interpret(zone, answer(*addrs))
    if v.status is Status.LISTED:
        assert all(ipaddress.ip_address(a) in ipaddress.ip_network("127.0.0.0/8") for a in addrs)
        assert not any(zone.error(a) for a in addrs)
        assert v.codes and v.severity > 0
    else:
        assert v.status is Status.UNKNOWN and v.problem is not None
