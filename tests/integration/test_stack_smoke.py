"""The real-stack fixture works: what we do over SMTP/IMAP shows up in the real daemons' logs."""

from __future__ import annotations

import re

import pytest
from mailstack import MailStack, make_message

pytestmark = pytest.mark.integration


def test_stack_smoke(mailstack: MailStack) -> None:
    s = mailstack
    # 1. authenticated mail from a claimed office address (XCLIENT on the submission port)
    ok = s.smtp_auth_send(
        "alice@lab.test",
        "alice-secret",
        "alice@lab.test",
        ["friend@example.com"],
        claim_ip="192.0.2.10",
        subject="smoke",
    )
    assert ok.code == 250 and ok.queue_id
    # 2. failed SMTP AUTH from a claimed attacker address
    assert s.smtp_auth_fail("bob@lab.test", "guess1", "198.51.100.23")
    # 3. IMAP login with a claimed address (ID x-originating-ip)
    assert s.imap_login("bob@lab.test", "bob-secret", "203.0.113.10")
    # 4. a hard bounce from the fake remote MX (554 blocklist)
    bounce = s.smtp_auth_send(
        "alice@lab.test",
        "alice-secret",
        "alice@lab.test",
        ["block-me@example.net"],
        claim_ip="192.0.2.10",
    )
    assert bounce.queue_id
    s.wait_queue_settled(timeout=20)

    qid, bid = re.escape(ok.queue_id), re.escape(bounce.queue_id)
    s.wait_log(
        "postfix",
        rf"postfix/submission/smtpd\[\d+\]: {qid}: client=unknown\[192\.0\.2\.10\], "
        r"sasl_method=PLAIN, sasl_username=alice@lab\.test$",
    )
    s.wait_log(
        "postfix",
        rf"postfix/smtp\[\d+\]: {qid}: to=<friend@example\.com>, "
        r"relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+, .*dsn=2\.0\.0, status=sent \(250 ",
    )
    s.wait_log(
        "postfix",
        r"warning: unknown\[198\.51\.100\.23\]: SASL PLAIN authentication failed: "
        r"\(reason unavailable\), sasl_username=bob@lab\.test",
    )
    s.wait_log(
        "dovecot",
        r"auth: Info: passwd-file\(bob@lab\.test,198\.51\.100\.23\): "
        r"Password mismatch",
    )
    s.wait_log(
        "dovecot",
        r"imap-login: Info: Login: user=<bob@lab\.test>, method=PLAIN, "
        r"rip=203\.0\.113\.10, lip=127\.0\.0\.1, ",
    )
    s.wait_log(
        "postfix",
        rf"{bid}: to=<block-me@example\.net>, .*dsn=5\.7\.1, status=bounced "
        r"\(host 127\.0\.0\.1\[127\.0\.0\.1\] said: 554 5\.7\.1 Service unavailable; "
        r"Client host \[127\.0\.0\.1\] blocked using zen\.spamhaus\.org; "
        r"https://www\.spamhaus\.org/query/ip/127\.0\.0\.1 \(in reply to RCPT TO command\)\)",
    )
    s.wait_log("postfix", rf"postfix/bounce\[\d+\]: {bid}: sender non-delivery notification: ")


# -- a few more paths on one shared stack ----------------------------------------------------


def test_deferrals_and_other_bounces(mailstack_module: MailStack) -> None:
    s = mailstack_module
    r = s.smtp_auth_send(
        "bob@lab.test",
        "bob-secret",
        "bob@lab.test",
        ["rate-1@example.org", "nouser-2@example.com", "ok-3@example.com", "full-4@example.net"],
        claim_ip="203.0.113.70",
    )
    assert r.queue_id
    q = s.wait_queue_settled(timeout=20)
    qid = re.escape(r.queue_id)
    s.wait_log(
        "postfix",
        rf"{qid}: to=<rate-1@example\.org>, .*dsn=4\.7\.0, status=deferred "
        r"\(host 127\.0\.0\.1\[127\.0\.0\.1\] said: 421 4\.7\.0 .*unusual rate of "
        r"unsolicited mail",
    )
    s.wait_log(
        "postfix",
        rf"{qid}: to=<nouser-2@example\.com>, .*dsn=5\.1\.1, status=bounced .*"
        r"550 5\.1\.1 .*does not exist",
    )
    s.wait_log("postfix", rf"{qid}: to=<full-4@example\.net>, .*dsn=4\.2\.2, status=deferred .*452 ")
    s.wait_log("postfix", rf"{qid}: to=<ok-3@example\.com>, .*status=sent")
    deferred = {m["queue_id"]: m for m in q if m["queue_name"] == "deferred"}
    assert r.queue_id in deferred
    assert {x["address"] for x in deferred[r.queue_id]["recipients"]} == {
        "rate-1@example.org",
        "full-4@example.net",
    }


def test_ipv6_and_proxy_claims(mailstack_module: MailStack) -> None:
    s = mailstack_module
    for via in ("xclient", "proxy"):
        r = s.smtp_auth_send(
            "bob@lab.test",
            "bob-secret",
            "bob@lab.test",
            [f"v6-{via}@example.com"],
            claim_ip="2001:db8:bad::25",
            via=via,
            port="smtp",
        )
        assert r.queue_id
        s.wait_log(
            "postfix",
            rf"postfix/smtpd\[\d+\]: {r.queue_id}: client=unknown\[2001:db8:bad::25\], "
            r"sasl_method=PLAIN, sasl_username=bob@lab\.test",
        )
    # with the PROXY listener even the connect line carries the claimed address
    r = s.smtp_auth_send(
        "bob@lab.test",
        "bob-secret",
        "bob@lab.test",
        ["p@example.com"],
        claim_ip="203.0.113.140",
        via="proxy",
    )
    s.wait_log("postfix", r"postfix/submission/smtpd\[\d+\]: connect from unknown\[203\.0\.113\.140\]")
    assert s.pop3_login("alice@lab.test", "alice-secret", "192.0.2.11")
    s.wait_log(
        "dovecot",
        r"pop3-login: Info: Login: user=<alice@lab\.test>, method=PLAIN, "
        r"rip=192\.0\.2\.11,",
    )


def test_injection_paths(mailstack_module: MailStack) -> None:
    s = mailstack_module
    denied = s.smtp_relay_attempt("192.0.2.66")
    assert denied.queue_id is None and denied.code == 554
    s.wait_log(
        "postfix",
        r"NOQUEUE: reject: RCPT from unknown\[192\.0\.2\.66\]: 554 5\.7\.1 "
        r"<target@example\.com>: Relay access denied",
    )
    telnet = s.smtp_unauth_send("security@paypa1.example", ["victim@example.com"])
    assert telnet.queue_id
    s.wait_log("postfix", rf"postfix/smtpd\[\d+\]: {telnet.queue_id}: client=unknown\[127\.0\.0\.1\]$")
    eml = make_message(
        "www-data@lab.test",
        ["winner@example.com"],
        "You won",
        "spam\n",
        headers={"X-PHP-Originating-Script": "33:contact.php"},
    )
    s.local_sendmail_as(eml)
    s.wait_log("postfix", r"postfix/pickup\[\d+\]: \w+: uid=33 from=<www-data")
    s.wait_log(
        "postfix",
        r"postfix/cleanup\[\d+\]: \w+: info: header X-PHP-Originating-Script: "
        r"33:contact\.php from local",
    )
