"""Attribution from header bytes: only our own MTA's topmost Received header and envelope count."""

from __future__ import annotations

import time

from mailwarden.queues.attribution import parse_received, read_headers

OURS = ("mx.lab.test",)

# recorded: postcat -q -h of a message from SMTP AUTH through the lab stack (Postfix 3.7)
SMTP_AUTH = (
    b"Received: from client.example (unknown [203.0.113.7])\n"
    b"\t(Authenticated sender: bob@lab.test)\n"
    b"\tby mx.lab.test (Postfix) with ESMTPA id 36BB920D142;\n"
    b"\tFri, 27 Nov 2026 18:28:13 +0000 (UTC)\n"
    b"From: bob@lab.test\nTo: rate1@example.com, x@example.org\nSubject: Win 123 now\n"
    b"Date: Fri, 27 Nov 2026 18:28:13 -0000\nMessage-ID: <629f6fbed82c07cd.c2094cac@lab.test>\n"
    b"X-Mailer: PHPMailer 6.8.0\n"
)
# recorded: sendmail as www-data (PHP mail())
PICKUP = (
    b"Received: by mx.lab.test (Postfix, from userid 33)\n"
    b"\tid 4A07920D153; Fri, 27 Nov 2026 18:28:13 +0000 (UTC)\n"
    b"From: www-data@lab.test\nTo: full1@example.net\nSubject: Contact\n"
    b"Message-ID: <65c59204ad9a4fb7.beff6757@lab.test>\n"
    b"X-PHP-Originating-Script: 33:contact.php\n"
)
FORGED_BELOW = (
    b"Received: from client.example (unknown [203.0.113.7])\n"
    b"\tby mx.lab.test (Postfix) with ESMTP id 36BB920D142;\n"
    b"\tFri, 27 Nov 2026 18:28:13 +0000 (UTC)\n"
    b"Received: from trusted (trusted [10.0.0.1])\n"
    b"\t(Authenticated sender: victim@lab.test)\n"
    b"\tby mx.lab.test (Postfix) with ESMTPA id AAAAAAAAAA;\n"
    b"\tFri, 27 Nov 2026 10:00:00 +0000 (UTC)\n"
    b"Received: by mx.lab.test (Postfix, from userid 0)\n\tid BBBBBBBBBB; Fri, 27 Nov 2026 09:00:00 +0000\n"
    b"X-PHP-Originating-Script: 1000:framed.php\n"
    b"Subject: hi\n"
)


def test_smtp_auth_from_our_received_header() -> None:
    facts = read_headers(SMTP_AUTH, our_names=OURS)
    a = facts.attribution
    assert (a.account, a.client, a.helo, a.received_by, a.source) == (
        "bob@lab.test",
        "203.0.113.7",
        "client.example",
        "mx.lab.test",
        "received",
    )
    assert a.uid is None and a.script is None
    assert (a.mailer, a.msgid_domain, a.from_header) == ("PHPMailer 6.8.0", "lab.test", "bob@lab.test")
    assert facts.subject == "Win 123 now"
    assert a.culprit() == "account bob@lab.test"


def test_local_submission_with_php_script() -> None:
    a = read_headers(PICKUP, our_names=OURS).attribution
    assert (a.uid, a.script, a.account, a.client) == (33, "contact.php", None, None)
    assert a.culprit() == "script contact.php (uid 33)"
    assert a.notes == ()


def test_forged_lower_received_is_ignored() -> None:
    a = read_headers(FORGED_BELOW, our_names=OURS).attribution
    assert a.account is None  # not victim@lab.test
    assert a.uid is None  # not the forged "from userid 0"
    assert a.client == "203.0.113.7"
    assert a.script is None  # a PHP header on SMTP mail proves nothing
    assert any("not submitted locally" in n for n in a.notes)
    # also without knowing our names: only the topmost header is read
    b = read_headers(FORGED_BELOW).attribution
    assert (b.account, b.uid, b.client) == (None, None, "203.0.113.7")


def test_headers_added_above_ours_are_skipped_but_nothing_below() -> None:
    above = b"Received: from localhost by filter.other.example with LMTP;\n\tFri, 27 Nov 2026\n" + SMTP_AUTH
    a = read_headers(above, our_names=OURS).attribution
    assert a.account == "bob@lab.test"
    assert any("above ours" in n for n in a.notes)


def test_envelope_wins_and_works_without_authenticated_header() -> None:
    plain = SMTP_AUTH.replace(b"\t(Authenticated sender: bob@lab.test)\n", b"")
    env = {"sasl_username": "bob@lab.test", "client_address": "203.0.113.7", "sasl_method": "PLAIN"}
    a = read_headers(plain, our_names=OURS, envelope=env).attribution
    assert (a.account, a.client, a.source) == ("bob@lab.test", "203.0.113.7", "envelope+received")
    b = read_headers(SMTP_AUTH, our_names=OURS, envelope={"sasl_username": "eve@lab.test"}).attribution
    assert b.account == "eve@lab.test"
    assert any("differs" in n for n in b.notes)


def test_php_header_rules() -> None:
    wrong_uid = PICKUP.replace(b"33:contact.php", b"1000:contact.php")
    a = read_headers(wrong_uid, our_names=OURS).attribution
    assert a.script == "contact.php" and any("uid 1000" in n for n in a.notes)
    two = PICKUP + b"X-PHP-Originating-Script: 33:other.php\n"
    b = read_headers(two, our_names=OURS).attribution
    assert b.script == "contact.php"  # PHP writes its own first
    bad = PICKUP.replace(b"33:contact.php", b"contact.php")
    assert read_headers(bad, our_names=OURS).attribution.script is None


def test_other_mtas_received_forms() -> None:
    exim_local = parse_received(
        "from www-data by host.example with local (Exim 4.96)\n\t(envelope-from <www-data@host.example>)\n\tid 1tAbCd-000123-AB;"
    )
    assert (exim_local.local_user, exim_local.by, exim_local.protocol) == (
        "www-data",
        "host.example",
        "local",
    )
    exim_smtp = parse_received(
        "from [198.51.100.4] (helo=pc)\n\tby host.example with esmtpsa (TLS1.3) (Exim 4.96)\n\tid 1t-0-A"
    )
    assert (exim_smtp.client, exim_smtp.helo, exim_smtp.authenticated) == ("198.51.100.4", "pc", True)
    sm_local = parse_received(
        "(from www-data@localhost)\n\tby host.example (8.17.1/8.17.1/Submit) id 4ARAbc01;"
    )
    assert (sm_local.local_user, sm_local.by) == ("www-data", "host.example")
    sm_auth = parse_received(
        "from pc (pc.example [192.0.2.5]) (authenticated bits=0)\n\tby host.example (8.17.1/8.17.1) with ESMTPSA id x"
    )
    assert (sm_auth.client, sm_auth.authenticated) == ("192.0.2.5", True)
    qmail = parse_received("(qmail 4711 invoked by uid 33); 27 Nov 2026 10:00:00 -0000")
    assert qmail.uid == 33
    v6 = parse_received("from x (unknown [IPv6:2001:db8::25])\n\tby mx.lab.test (Postfix) with ESMTP id A;")
    assert v6.client == "2001:db8::25"


def test_attacker_text_after_by_is_not_read() -> None:
    hop = parse_received(
        'from pc (unknown [192.0.2.5])\n\tby mx.lab.test (Postfix) with ESMTP id Q\n\tfor <"(Authenticated sender: victim)"@x.example>; date'
    )
    assert hop.account is None
    helo_trick = parse_received(
        "from (Authenticated (unknown [192.0.2.5])\n\tby mx.lab.test (Postfix) with ESMTP id Q;"
    )
    assert helo_trick.account is None and helo_trick.client == "192.0.2.5"


def test_eight_bit_and_encoded_headers() -> None:
    raw = (
        b"Received: by mx.lab.test (Postfix, from userid 33)\n\tid X; now\n"
        b"Subject: =?utf-8?q?Caf=C3=A9?= \xc3\xa9t\xc3\xa9 \x1b[31m\n"
        b"From: =?bogus?x?broken?= <a@b.example>\n"
    )
    facts = read_headers(raw, our_names=OURS)
    assert facts.subject is not None and "Café" in facts.subject and "été" in facts.subject
    assert "\x1b" in facts.subject  # kept as data; rendering escapes it
    assert facts.attribution.from_header is not None


def test_hostile_sizes_are_bounded() -> None:
    huge = (
        b"Received: by mx.lab.test (Postfix, from userid 33)\n\tid X; now\n"
        + b"X-Junk: "
        + b"A(" * 2_000_000
        + b"\n"
    )
    t0 = time.monotonic()
    facts = read_headers(huge, our_names=OURS)
    assert time.monotonic() - t0 < 5
    assert facts.attribution.uid == 33
    assert all(len(v) <= 4096 for _, v in facts.headers)
    many = b"".join(b"Received: from a (b [192.0.2.1]) by x (y) id z;\n" for _ in range(20000))
    t0 = time.monotonic()
    assert read_headers(many, our_names=OURS).attribution.notes
    assert time.monotonic() - t0 < 5
