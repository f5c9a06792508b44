"""The fast paths of ``normalise_ip`` agree with ``ipaddress`` on every input.

``normalise_ip`` decides what becomes a ``client`` address, so its shortcuts
(a plain IPv4 pattern, inet_pton for plain IPv6) must never accept, reject or
spell an address differently from the reference implementation.
"""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from mailwarden.formats.base import normalise_ip


def reference(text: str) -> str | None:
    if text.startswith(("IPv6:", "ipv6:")):
        text = text[5:]
    try:
        return str(ipaddress.ip_address(text.split("%", 1)[0]))
    except ValueError:
        return None


octets = st.sampled_from(
    ["0", "00", "01", "1", "9", "10", "99", "100", "199", "255", "256", "300", "", "-1", "\u0663"]
)
words = st.one_of(
    st.integers(0, 0xFFFF).map(lambda w: f"{w:x}"),
    st.sampled_from(["", "0", "ffff", "00000", "g", "1.2.3.4"]),
)


@settings(max_examples=3000)
@given(st.lists(octets, min_size=1, max_size=5).map(".".join))
def test_ipv4_like(text: str) -> None:
    assert normalise_ip(text) == reference(text)


@settings(max_examples=3000)
@given(
    st.lists(words, min_size=1, max_size=10).map(":".join),
    st.sampled_from(["", "IPv6:", "ipv6:"]),
    st.sampled_from(["", "%eth0", "%"]),
)
def test_ipv6_like(text: str, prefix: str, zone: str) -> None:
    candidate = prefix + text + zone
    assert normalise_ip(candidate) == reference(candidate)
    assert normalise_ip(text.upper()) == reference(text.upper())


@settings(max_examples=3000)
@given(st.ip_addresses())
def test_real_addresses(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    for text in (str(addr), addr.exploded, str(addr).upper()):
        assert normalise_ip(text) == str(addr)


@settings(max_examples=3000)
@given(st.text(alphabet="0123456789abcdefABCDEF:.%g ", max_size=24))
def test_arbitrary_text(text: str) -> None:
    assert normalise_ip(text) == reference(text)
