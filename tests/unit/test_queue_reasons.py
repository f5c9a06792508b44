"""Deferral reasons grouped by meaning and by who said it.

The provider replies below are shaped from the texts the providers document (Google's
"UnsolicitedRateLimitError" help page, Yahoo's postmaster error codes, Microsoft's S3150/S775
codes) wrapped the way Postfix records them in ``delay_reason``.
"""

from __future__ import annotations

import time

import pytest

from mailwarden.queues.reasons import explain, provider

LAB_RATE = (
    "host 127.0.0.1[127.0.0.1] said: 421 4.7.0 [127.0.0.1] Our system has detected an unusual rate of "
    "unsolicited mail originating from your IP address. To protect our users from spam, mail sent from your IP "
    "address has been temporarily rate limited. (in reply to RCPT TO command)"
)
GMAIL = (
    "host gmail-smtp-in.l.google.com[142.250.102.27] said: 421-4.7.28 [192.0.2.1      15] Our system has "
    "detected an unusual rate of unsolicited mail originating from your IP address. To protect our users from "
    "spam, mail sent from your IP address has been temporarily rate limited. Please visit "
    "https://support.google.com/mail/?p=UnsolicitedRateLimitError to review our Bulk Email Senders Guidelines. "
    "a1si1234qkb.12 - gsmtp (in reply to end of DATA command)"
)
YAHOO = (
    "host mta7.am0.yahoodns.net[67.195.204.72] said: 421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily "
    "deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/"
    "error-codes (in reply to MAIL FROM command)"
)
MICROSOFT_RATE = (
    "host hotmail-com.olc.protection.outlook.com[52.101.8.36] said: 451 4.7.650 The mail server [192.0.2.1] "
    "has been temporarily rate limited due to IP reputation. For e-mail delivery information, see "
    "https://postmaster.live.com (S775) (in reply to MAIL FROM command)"
)
MICROSOFT_BLOCK = (
    "host outlook-com.olc.protection.outlook.com[52.101.8.36] said: 550 5.7.1 Unfortunately, messages from "
    "[192.0.2.1] weren't sent. Please contact your Internet service provider since part of their network is on "
    "our block list (S3150). (in reply to MAIL FROM command)"
)
SPAMHAUS = (
    "host 127.0.0.1[127.0.0.1] said: 554 5.7.1 Service unavailable; Client host [127.0.0.1] blocked using "
    "zen.spamhaus.org; https://www.spamhaus.org/query/ip/127.0.0.1 (in reply to RCPT TO command)"
)


@pytest.mark.parametrize(
    ("reason", "domain", "label", "category"),
    [
        (LAB_RATE, "example.com", "rate-limited by example.com", "spam"),
        (GMAIL, "gmail.com", "rate-limited by Gmail", "spam"),
        (YAHOO, "yahoo.com", "rate-limited by Yahoo", "rate_limit"),
        (MICROSOFT_RATE, "hotmail.com", "rate-limited by Microsoft", "spam"),
        (MICROSOFT_BLOCK, "outlook.com", "blocklisted (at Microsoft)", "blocklist"),
        (SPAMHAUS, "example.com", "blocklisted by zen.spamhaus.org", "blocklist"),
        (
            "host 127.0.0.1[127.0.0.1] said: 452 4.2.2 The email account that you tried to reach is over quota. "
            "(in reply to RCPT TO command)",
            "example.net",
            "mailbox full",
            "mailbox_full",
        ),
        (
            "host mx.example.org[192.0.2.25] said: 550 5.1.1 <x@example.org>: Recipient address rejected: User "
            "unknown in virtual mailbox table (in reply to RCPT TO command)",
            "example.org",
            "unknown user",
            "unknown_user",
        ),
        (
            "connect to mx.example.org[192.0.2.25]:25: Connection timed out",
            "example.org",
            "connection failure (mx.example.org)",
            "connection",
        ),
        (
            "lost connection with 127.0.0.1[127.0.0.1] while sending RCPT TO",
            "example.com",
            "connection failure (example.com)",
            "connection",
        ),
        (
            "delivery temporarily suspended: connect to mx.gmail.example[192.0.2.9]:25: Connection refused",
            "gmail.com",
            "connection failure (Gmail)",
            "connection",
        ),
        ("", "x.example", "not tried yet / no reason recorded", "other"),
    ],
)
def test_explain(reason: str, domain: str, label: str, category: str) -> None:
    d = explain(reason, domain)
    assert (d.label, d.category) == (label, category)


def test_provider_sources() -> None:
    assert provider("host alt1.gmail-smtp-in.l.google.com[1.2.3.4] said: 550 x", "") == "Gmail"
    assert provider("host 127.0.0.1[127.0.0.1] said: 421 try later - gsmtp", "") == "Gmail"
    assert provider("host 127.0.0.1[127.0.0.1] said: 421 later", "ymail.com") == "Yahoo"
    assert provider("host mx.example.org[192.0.2.1] said: 421 later", "example.org") is None
    assert explain(GMAIL).temporary is True and explain(SPAMHAUS).temporary is False


def test_hostile_reason_is_cheap() -> None:
    hostile = "host " + "a[" * 50_000 + " said: 4" * 10_000
    t0 = time.monotonic()
    explain(hostile, "x.example")
    assert time.monotonic() - t0 < 1
