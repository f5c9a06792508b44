"""qmail format: what the golden files cannot show (state bounds, id reuse, uid learning, fuzzing)."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta

from mailwarden.formats import _qmail_fields
from mailwarden.formats import qmail as qmail_module
from mailwarden.formats.qmail import QmailFormat
from mailwarden.model import (
    BounceNotification,
    DeliveryAttempted,
    LocalSubmission,
    MessageReceived,
    MessageRemoved,
    Record,
    Source,
)

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def rec(msg: str, program: str = "qmail", seconds: float = 0) -> Record:
    return Record(T0 + timedelta(seconds=seconds), "mx", program, None, msg, Source("t", 1))


def feed(fmt: QmailFormat, *lines: str, program: str = "qmail") -> list[object]:
    out: list[object] = []
    for line in lines:
        got = fmt.parse(rec(line, program))
        assert got is not None, line
        out.extend(got)
    return out


def test_reused_inode_starts_a_new_lifecycle() -> None:
    fmt = QmailFormat()
    assert feed(fmt, "new msg 42") == []
    events = feed(fmt, "new msg 42")
    assert [type(e) for e in events] == [MessageRemoved]
    feed(fmt, "end msg 42")
    assert feed(fmt, "new msg 42") == []


def test_delivery_numbers_join_and_are_forgotten() -> None:
    fmt = QmailFormat()
    feed(fmt, "starting delivery 7: msg 42 to remote a@example.net")
    (ev,) = feed(fmt, "delivery 7: deferral: Sorry,_I_wasn't_able_to_establish_an_SMTP_connection._(#4.4.1)/")
    assert isinstance(ev, DeliveryAttempted) and ev.queue_id == "42" and ev.status == "deferred"
    assert feed(fmt, "delivery 7: success: did_0+0+1/") == []  # already answered: no guess


def test_state_is_bounded() -> None:
    fmt = QmailFormat()
    qmail_module_caps = (qmail_module._MAX_DELIVERIES, qmail_module._MAX_LIVE)
    try:
        qmail_module._MAX_DELIVERIES = 100
        qmail_module._MAX_LIVE = 100
        for n in range(1000):
            feed(fmt, f"starting delivery {n}: msg {n} to remote a@example.net", f"new msg {n}")
        assert len(fmt._deliveries) == 100 and len(fmt._live) == 100
        assert fmt.dropped == 1800
    finally:
        qmail_module._MAX_DELIVERIES, qmail_module._MAX_LIVE = qmail_module_caps


def test_bounce_links_by_qp_and_learns_qmails() -> None:
    fmt = QmailFormat()
    feed(fmt, "bounce msg 42 qp 900")
    events = feed(fmt, "info msg 43: bytes 10 from <> qp 900 uid 1012")
    assert isinstance(events[0], BounceNotification) and events[0].queue_id == "42"
    assert events[0].notice_queue_id == "43"
    assert 1012 in fmt.daemon_uids
    # a later message queued by the same uid is not a local submission
    assert not any(
        isinstance(e, LocalSubmission) for e in feed(fmt, "info msg 44: bytes 1 from <> qp 901 uid 1012")
    )


def test_configured_daemon_uids() -> None:
    fmt = QmailFormat(daemon_uids=[1004])
    events = feed(fmt, "info msg 1: bytes 10 from <a@example.com> qp 5 uid 1004")
    assert not any(isinstance(e, LocalSubmission) for e in events)
    events = feed(fmt, "info msg 2: bytes 10 from <www@example.com> qp 6 uid 33")
    assert any(isinstance(e, LocalSubmission) and e.uid == 33 for e in events)


def test_tcpserver_session_links_three_times_before_learning() -> None:
    fmt = QmailFormat()
    for k in range(3):
        pid = 1000 + 10 * k
        feed(fmt, f"tcpserver: ok {pid} mx.example.com:192.0.2.2:25 :198.51.100.7::5000{k}")
        events = feed(fmt, f"info msg {k}: bytes 10 from <a@example.org> qp {pid + 2} uid 1004")
        received = [e for e in events if isinstance(e, MessageReceived)]
        assert received and received[0].client == "198.51.100.7"
        assert (1004 in fmt.daemon_uids) == (k == 2)
        feed(fmt, f"tcpserver: end {pid} status 0")


def test_plesk_session_is_used_once_and_not_after_a_failed_auth() -> None:
    fmt = QmailFormat()
    feed(fmt, "/var/qmail/bin/relaylock: mail from 203.0.113.5:1000 (unknown)", program="relaylock")
    feed(fmt, "smtp_auth: FAILED: bob - password incorrect  from unknown@ [203.0.113.5]", program="smtp_auth")
    events = feed(fmt, "info msg 1: bytes 10 from <www@example.com> qp 5 uid 33")
    assert any(isinstance(e, LocalSubmission) for e in events)


_SHAPES = [
    "new msg 1", "end msg 1", "info msg 1: bytes 2 from <a> qp 3 uid 4", "bounce msg 1 qp 2",
    "starting delivery 1: msg 2 to remote a@b", "delivery 1: success: x_accepted_message./",
    "tcpserver: ok 1 a:192.0.2.1:25 b:198.51.100.1::2", "tcpserver: end 1 status 0",
    "rblsmtpd: 192.0.2.1 pid 1: 451 x", "qmail-smtpd: 421 badiprbl: ip 192.0.2.1 rbl: x",
    "qlogreceived: result=accepted code=250 reason=queueaccept detail= helo= mailfrom= rcptto= relay=no "
    "rcpthosts= size= authuser=a authtype=login encrypted= sslverified=no localip=1 localport=25 "
    "remoteip=192.0.2.1 remoteport=1 remotehost= qp=2 pid=1",
    "vchkpw-smtp: password fail (pass: 'x') a@b:192.0.2.1", "vchkpw-pop3: (PLAIN) login success a@b:::1",
    "1795798801.123456 new msg 9",
]  # fmt: skip
_PROGRAMS = [
    "qmail",
    "vpopmail",
    "smtp_auth",
    "relaylock",
    "qmail-queue-handlers",
    "vchkpw-imap",
    "tcpserver",
]


def test_fuzz_never_raises() -> None:
    rnd = random.Random(1)
    alphabet = " :<>[]()_/.,=@'\"-0123456789abcdefqpuid\x00\t\u202e"
    fmt = QmailFormat()
    for _ in range(20000):
        base = rnd.choice(_SHAPES)
        cut = rnd.randrange(len(base) + 1)
        noise = "".join(rnd.choice(alphabet) for _ in range(rnd.randrange(12)))
        pos = rnd.randrange(cut + 1)
        msg = base[:pos] + noise + base[pos:cut]
        fmt.parse(rec(msg, rnd.choice(_PROGRAMS)))


def test_hostile_long_lines_are_linear() -> None:
    fmt = QmailFormat()
    big = "a" * 65536
    quotes = "') " * 10000
    lines = [
        f"delivery 1: failure: {'Remote_host_said:_' * 3000}{big}",
        f"info msg 1: bytes 1 from <{'> qp ' * 10000}> qp 1 uid 1",
        f"qlogenvelope: result=rejected code=1 reason=x detail= {' remoteip=' * 6000} qp=",
        f"rblsmtpd: {' pid ' * 10000}",
        f"vchkpw-smtp: password fail (pass: '{quotes}') {big}:{big}",
    ]
    fmt.parse(rec("starting delivery 1: msg 1 to remote a@b"))
    start = time.perf_counter()
    for line in lines:
        fmt.parse(rec(line))
    assert time.perf_counter() - start < 1.0


def test_report_reader() -> None:
    relay, dsn, reply = _qmail_fields.read_report(
        "192.0.2.9_does_not_like_recipient./Remote_host_said:_550-5.1.1_first/550_5.1.1_second/"
        "Giving_up_on_192.0.2.9./",
        True,
    )
    assert (relay, dsn, reply) == ("192.0.2.9", "5.1.1", "550-5.1.1 first 550 5.1.1 second")
    assert _qmail_fields.vpopmail_tail("u:x:2001:db8::1") == ("u:x:2001:db8:", None)
    assert _qmail_fields.vpopmail_tail("u@example.com:::ffff:192.0.2.7") == ("u@example.com", "192.0.2.7")
