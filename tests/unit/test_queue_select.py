"""Filters: every match says why; regexes over attacker text are linted, capped and timed."""

from __future__ import annotations

import time

import pytest

from mailwarden.queues.base import Attribution, QueuedMessage, Recipient
from mailwarden.queues.cluster import Clusterer, base_domain, body_shape, normalise_subject, url_domains
from mailwarden.queues.scan import body_text
from mailwarden.queues.select import BoundedRegex, Criteria, PatternError, parse_header_filter
from mailwarden.queues.summary import BoundedCounter, Summary, age_bucket

NOW = 1_795_800_000
RATE = (
    "host 127.0.0.1[127.0.0.1] said: 421 4.7.0 unusual rate of unsolicited mail (in reply to RCPT TO command)"
)


def msg(
    qid: str = "AAAAAA1",
    *,
    sender: str = "bob@lab.test",
    age: int = 60,
    account: str | None = "bob@lab.test",
    uid: int | None = None,
    script: str | None = None,
    rcpt: str = "rate1@example.com",
    reason: str = RATE,
    subject: str | None = "Win 1",
    queue: str = "deferred",
    client: str | None = "203.0.113.7",
) -> QueuedMessage:
    return QueuedMessage(
        qid,
        queue,
        NOW - age,
        500,
        sender,
        (Recipient(rcpt, reason),),
        subject,
        Attribution(account=account, uid=uid, script=script, client=client),
    )


@pytest.mark.parametrize("pattern", [r"(a+)+$", r"(a|aa)*b", r"(\w+\s?)*$", r"(x+x+)+y", r"(a)\1", "x" * 300])
def test_dangerous_patterns_refused(pattern: str) -> None:
    with pytest.raises(PatternError):
        BoundedRegex.compile(pattern)


@pytest.mark.parametrize(
    "pattern",
    [
        r"viagra|cialis",
        r"^win \d+",
        r"[a-z]+@[a-z]+\.example",
        r"(?:ab){2,3}",
        r"(?i)invoice.*overdue",
        r"(foo|bar) baz",
    ],
)
def test_ordinary_patterns_accepted(pattern: str) -> None:
    BoundedRegex.compile(pattern)


def test_search_is_time_bounded() -> None:
    # passes the lint (no nested repetition) but is polynomial: O(n^4) on this text
    rx = BoundedRegex.compile(r".*a.*a.*a.*b")
    t0 = time.monotonic()
    assert rx.search("a" * 60_000, budget=0.2) is None  # out of budget: "no match", counted by the caller
    assert time.monotonic() - t0 < 2
    assert rx.search("aaab") is True


def test_bad_regex_and_header_filter() -> None:
    with pytest.raises(PatternError):
        BoundedRegex.compile("([unclosed")
    name, rx = parse_header_filter("X-Mailer: PHPMailer")
    assert name == "X-Mailer" and rx.search("phpmailer 6.0")
    for bad in ("no colon here", ": empty name", "Bad Name: x"):
        with pytest.raises(PatternError):
            parse_header_filter(bad)


def test_envelope_and_attribution_matching_says_why() -> None:
    c = Criteria(
        senders=("*@lab.test",),
        recipient_domains=("example.com",),
        arrived_before=NOW - 30,
        older_than_text="30s",
        reasons=("rate",),
        queues=("deferred",),
    )
    assert c.match_envelope(msg()) == [
        "queue deferred",
        "sender bob@lab.test ~ *@lab.test",
        "recipient domain example.com",
        "older than 30s",
        "deferred: rate-limited by example.com",
    ]
    assert c.match_envelope(msg(age=10)) is None
    assert c.match_envelope(msg(sender="x@other.example")) is None
    assert c.match_envelope(msg(rcpt="x@example.net")) is None
    assert c.match_envelope(msg(queue="hold")) is None
    assert Criteria(senders=("<>",)).match_envelope(msg(sender="")) == ["sender <> ~ <>"]
    assert Criteria(reasons=("mailbox_full",)).match_envelope(msg()) is None
    a = Criteria(accounts=("BOB@*",), clients=("203.0.113.0/24",))
    assert a.match_attribution(msg()) == ["account bob@lab.test", "client 203.0.113.7"]
    assert a.match_attribution(msg(account=None)) is None
    s = Criteria(uids=(33,), scripts=("contact.php",))
    assert s.match_attribution(msg(account=None, uid=33, script="/var/www/html/contact.php")) == [
        "uid 33",
        "script /var/www/html/contact.php",
    ]
    assert s.match_attribution(msg(account=None, uid=34, script="contact.php")) is None
    assert Criteria().empty and not c.empty and a.needs_headers and not c.needs_headers


def test_text_and_body_matching() -> None:
    c = Criteria(
        subject=BoundedRegex.compile(r"^win \d"),
        headers=(parse_header_filter("X-Mailer: ^PHP"),),
        body=BoundedRegex.compile("claim"),
        body_max=10,
    )
    why, timeouts = c.match_text("Win 1", [("X-Mailer", "PHPMailer")])
    assert why == ["subject ~ /^win \\d/", "X-Mailer ~ /^PHP/"] and timeouts == 0
    assert c.match_text("Lose", [("X-Mailer", "PHPMailer")])[0] is None
    assert c.match_text("Win 1", [("User-Agent", "PHPMailer")])[0] is None
    assert c.match_body("claim now, please")[0] == ["body ~ /claim/"]
    assert c.match_body("0123456789 claim")[0] is None  # beyond --body-max


def test_body_text_decodes_and_caps() -> None:
    mime = (
        b"MIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=b\n\n--b\n"
        b"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\nQ2xhaW0geW91ciBwcml6ZQ==\n"
        b"--b\nContent-Type: image/png\nContent-Transfer-Encoding: base64\n\nAAAA\n--b--\n"
    )
    assert body_text(mime, 1000) == "Claim your prize"
    assert len(body_text(b"Subject: x\n\n" + b"y" * 100_000, 500)) == 500


def test_subject_templates_and_domains() -> None:
    assert normalise_subject("Invoice 4411 for bob@x.example  due") == "invoice <n> for <email> due"
    assert normalise_subject("Order deadbeef42 shipped http://a.example/x") == "order <hex> shipped <url>"
    assert normalise_subject("Order cafe") == "order cafe"  # words made of hex letters stay
    assert normalise_subject(None) == "(no subject)"
    assert base_domain("trk1.parcel-claims.example") == "parcel-claims.example"
    assert base_domain("a.b.shop.co.uk") == "shop.co.uk"
    assert url_domains("see http://A.x.example/1 and www.y.example and https://b.x.example") == (
        "x.example",
        "y.example",
    )
    assert body_shape(None) == "-"
    assert body_shape("one\ntwo\nthree\n") == "text/plain,text,~4 lines"


def test_clusterer_groups_a_run() -> None:
    cl = Clusterer()
    for i in range(5):
        cl.add(
            msg(f"AAAAAA{i}", subject=f"Parcel {100 + i} for u{i}@example.com"),
            f"go http://t{i}.claims.example/",
        )
    cl.add(msg("BBBBBB1", account="alice@lab.test", subject="Minutes"), "see you")
    top = cl.top(5)
    assert [c.messages for c in top] == [5, 1]
    assert top[0].culprits.top(1) == [["account bob@lab.test", 5]]
    assert top[0].domains == ("claims.example",)


def test_summary_and_bounded_counter() -> None:
    s = Summary(now=NOW)
    s.add(msg(age=10))
    s.add(msg("AAAAAA2", age=7 * 86400, account=None, uid=33, script="contact.php", client=None))
    s.add(msg("AAAAAA3", queue="hold", account=None, client=None, reason=""))
    doc = s.to_dict()
    assert doc["totals"]["messages"] == 3  # type: ignore[index]
    assert doc["ages"] == {"<1h": 2, "1h-6h": 0, "6h-24h": 0, "1d-3d": 0, "3d-5d": 0, ">=5d": 1}
    assert doc["culprits"] == [["account bob@lab.test", 1], ["script contact.php (uid 33)", 1]]
    assert doc["unattributed"] == 1
    assert doc["scripts"] == [["33:contact.php", 1]]
    [reason] = doc["deferral_reasons"]  # type: ignore[misc]
    assert reason["reason"] == "rate-limited by example.com" and reason["recipients"] == 2
    assert age_bucket(3599) == "<1h" and age_bucket(10**9) == ">=5d"
    bc = BoundedCounter(limit=2)
    for k in ("a", "b", "c", "a"):
        bc.add(k)
    assert bc.top(5) == [["a", 2], ["b", 1]] and bc.dropped == 1
