"""Query names (RFC 5782): reversed IPv4 octets, 32 reversed IPv6 nibbles, IDNA domains."""

from __future__ import annotations

import pytest

from mailwarden.intel.dnsbl.errors import TargetError
from mailwarden.intel.dnsbl.targets import parse_target, query_name


def test_ipv4_octets_reversed() -> None:
    t = parse_target("203.0.113.7")
    assert (t.kind, t.text) == ("ip4", "203.0.113.7")
    assert query_name(t, "zen.spamhaus.org") == "7.113.0.203.zen.spamhaus.org."


def test_rfc5782_test_point() -> None:
    assert query_name(parse_target("127.0.0.2"), "bl.example") == "2.0.0.127.bl.example."


def test_ipv6_is_32_reversed_nibbles() -> None:
    t = parse_target("2001:DB8::1")
    assert (t.kind, t.text) == ("ip6", "2001:db8::1")
    name = query_name(t, "zen.spamhaus.org")
    left = name.removesuffix(".zen.spamhaus.org.")
    assert len(left.split(".")) == 32
    assert left == "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2"


def test_ipv6_in_brackets_and_full_form_normalised() -> None:
    assert parse_target("[2001:0db8:0000:0000:0000:0000:0000:0001]").text == "2001:db8::1"


def test_ipv4_mapped_ipv6_is_the_ipv4_address() -> None:
    t = parse_target("::ffff:203.0.113.7")
    assert (t.kind, t.text) == ("ip4", "203.0.113.7")


def test_domain_as_is_lowercased() -> None:
    t = parse_target("Mail.Example.COM.")
    assert (t.kind, t.text) == ("domain", "mail.example.com")
    assert query_name(t, "dbl.spamhaus.org") == "mail.example.com.dbl.spamhaus.org."


def test_idna_domain() -> None:
    t = parse_target("bücher.example")
    assert t.text == "xn--bcher-kva.example"
    assert t.display == "xn--bcher-kva.example (bücher.example)"
    assert query_name(t, "multi.surbl.org") == "xn--bcher-kva.example.multi.surbl.org."


@pytest.mark.parametrize(
    "bad",
    ["", "   ", "not a domain", "user@example.com", "example", "http://example.com/", "1.2.3", "a..b",
     "fe80::1%eth0", "-bad-.example", "a" * 64 + ".example", "999.1.1.1"],
)  # fmt: skip
def test_rejected(bad: str) -> None:
    with pytest.raises(TargetError):
        parse_target(bad)


def test_too_long_with_zone() -> None:
    long_domain = ".".join(["a" * 60] * 3) + ".example"  # 191 chars: valid alone
    t = parse_target(long_domain)
    with pytest.raises(TargetError, match="too long"):
        query_name(t, "x" * 60 + ".blocklist.example")
