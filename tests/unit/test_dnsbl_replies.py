"""Which blocklist a remote rejection cites."""

from __future__ import annotations

import pytest

from mailwarden.intel.dnsbl.replies import zone_for_reply


@pytest.mark.parametrize(
    ("reply", "name"),
    [
        ("554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org; "
         "https://www.spamhaus.org/query/ip/192.0.2.1", "spamhaus-zen"),
        ("554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using sbl.spamhaus.org", "spamhaus-zen"),
        ("550 5.7.1 Rejected: example.com listed at dbl.spamhaus.org", "spamhaus-dbl"),
        ("554 Service unavailable; Client host [mx.example] blocked using Barracuda Reputation; "
         "http://bbl.barracudacentral.com/q.cgi?ip=192.0.2.1", "barracuda"),
        ("554 5.7.1 listed at b.barracudacentral.org", "barracuda"),
        ("550 5.7.1 Blocked - see https://www.spamcop.net/bl.shtml?192.0.2.1", "spamcop"),
        ("550 rejected because 192.0.2.1 is in a black list at bl.spamcop.net", "spamcop"),
        ("550 5.7.1 SPAMCOP listed", "spamcop"),
        ("554 5.7.1 IP 192.0.2.1 listed in dnsbl-1.uceprotect.net", "uceprotect-1"),
        ("554 Your access to this mail system has been rejected due to the sending MTA's poor "
         "reputation. If you believe that this failure is in error, please contact the intended "
         "recipient via alternate means. (UCEPROTECT-Level2)", "uceprotect-2"),
        ("550 5.7.1 Rejected - see https://psbl.org/listing?ip=192.0.2.1", "psbl"),
        ("554 5.7.1 blocked using bl.mailspike.net", "mailspike-bl"),
        ("550 5.7.1 message contains a URL listed in multi.surbl.org", "surbl-multi"),
        ("550 5.7.1 Blocked by SORBS (dnsbl.sorbs.net)", "sorbs"),
    ],
)  # fmt: skip
def test_known_replies(reply: str, name: str) -> None:
    z = zone_for_reply(reply)
    assert z is not None and z.name == name


def test_retired_list_is_returned_and_flagged() -> None:
    z = zone_for_reply("554 blocked using dnsbl.sorbs.net")
    assert z is not None and z.retired and "2024" in z.retired_note


@pytest.mark.parametrize(
    "reply",
    [
        "250 2.0.0 OK",
        "550 5.1.1 user unknown",
        "452 4.2.2 mailbox over quota; the message absorbs space",  # 'sorbs' inside a word
        "",
    ],
)
def test_no_list(reply: str) -> None:
    assert zone_for_reply(reply) is None


def test_longest_pattern_wins() -> None:
    z = zone_for_reply("spamhaus says: listed in dbl.spamhaus.org")
    assert z is not None and z.name == "spamhaus-dbl"


def test_hostile_long_reply_is_fast_and_safe() -> None:
    z = zone_for_reply("\x1b[2J" + "s" * 100_000 + " blocked using zen.spamhaus.org")
    assert z is None  # beyond the 4 KiB that is read
