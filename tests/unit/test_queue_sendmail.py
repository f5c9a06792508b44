"""The Sendmail backend on queue files shaped from the Sendmail Installation and Operation Guide
("Queue file formats": qf/hf/Qf/df/xf, the V T K N P I M F $ S A R H lines, continuation lines,
the "." terminator; "Quarantined Queue Items": hf files, the q line, sendmail -Q) and from
queueup() in sendmail/queue.c (line order; per-recipient M lines before their R line; persistent
macros $_ $r $s ${if_addr} ${daemon_flags}). No Sendmail runs here: the binary is a fake that
renames qf <-> hf files the way quarantine_queue_item() does, including -qI's substring match."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

import mailwarden.cli.main as cli_main
from mailwarden import _proc
from mailwarden.cli import queue as queue_cli
from mailwarden.queues import QueueError, open_backend
from mailwarden.queues.attribution import read_headers
from mailwarden.queues.scan import scan
from mailwarden.queues.select import Criteria
from mailwarden.queues.sendmail import SendmailQueue, parse_control, sendmail_facts, xtext_decode

T = 1_795_800_000
OURS = ("mx.example",)
AUTH_ID = "5ARAAAAA012345"
LOCAL_ID = "5ARABBBB012346"
HELD_ID = "5ARACCCC012347"
LOST_ID = "5ARADDDD012348"
SHORT_ID = "5ARAEEEE01234"  # pid 1234 (5 digits, zero padded) ...
LONG_ID = "5ARAEEEE012345"  # ... is a substring of the id of pid 12345 in the same second
GMAIL = (
    "Deferred: 421-4.7.28 Our system has detected an unusual rate of unsolicited mail "
    "originating from your IP address (gsmtp)"
)

AUTH_QF = f"""V8
T{T}
K{T + 600}
N2
P120000
I8/1/123456
MDeferred: Connection timed out with mx.example.org.
Fbs
$_pc.example [203.0.113.7] (may be forged)
$rESMTPSA
$spc
${{daemon_flags}}
${{if_addr}}192.0.2.1
S<bob@lab.test>
Abob+40lab.test
M{GMAIL}
rRFC822; rate1@gmail.com
RPFD:rate1@gmail.com
RPFD:rate2@example.org
H?P?Return-Path: <\x81g>
H??Received: from pc (pc.example [203.0.113.7] (may be forged))
\t(authenticated bits=0)
\tby mx.example (8.17.1/8.17.1) with ESMTPSA id {AUTH_ID}
\t(version=TLSv1.3 cipher=TLS_AES_256_GCM_SHA384 bits=256 verify=NO)
\tfor <rate1@gmail.com>; Fri, 27 Nov 2026 10:00:00 +0000
H??Received: from x (x [192.0.2.66]) (Authenticated sender: victim@example.com)
\tby mx.example (Postfix) with ESMTPA id 4ABC; Fri, 27 Nov 2026 09:59:00 +0000
H?D?Date: Fri, 27 Nov 2026 10:00:00 +0000
H?F?From: bob@lab.test
H?x?Full-name: Bob
H??Subject: Parcel 4711 is on hold
H??To: rate1@gmail.com, rate2@example.org
.
"""
LOCAL_QF = f"""V8
T{T + 60}
K0
N0
P30
$_www-data@localhost
Swww-data@mx.example
Awww-data+40mx.example
RPFD:friend@example.net
H?P?Return-Path: <\x81g>
H??Received: (from www-data@localhost)
\tby mx.example (8.17.1/8.17.1/Submit) id {LOCAL_ID};
\tFri, 27 Nov 2026 10:01:00 +0000
H??X-PHP-Originating-Script: 33:contact.php
H??Subject: Contact form
.
"""


def qf(qid: str, sender: str, rcpt: str, arrival: int, extra: str = "") -> str:
    return (
        f"V8\nT{arrival}\nK0\nN0\nP30\n{extra}$_host.example [198.51.100.9]\n$rESMTP\nS<{sender}>\n"
        f"RPFD:{rcpt}\nH??Received: from h (host.example [198.51.100.9])\n"
        f"\tby mx.example (8.17.1/8.17.1) with ESMTP id {qid}; date\nH??Subject: s {qid}\n.\n"
    )


def make_queue(root: Path) -> Path:
    q = root / "mqueue"
    q.mkdir()
    files = {
        f"qf{AUTH_ID}": AUTH_QF,
        f"df{AUTH_ID}": "Your parcel: http://t1.parcel-claims.example/\n",
        f"xf{AUTH_ID}": "transcript\n",
        f"qf{LOCAL_ID}": LOCAL_QF,
        f"df{LOCAL_ID}": "Name: x\n",
        f"hf{HELD_ID}": qf(HELD_ID, "carol@lab.test", "c@example.com", T + 120, "qspam run\n"),
        f"df{HELD_ID}": "held\n",
        f"Qf{LOST_ID}": qf(LOST_ID, "dave@lab.test", "d@example.com", T + 180),
        f"df{LOST_ID}": "lost\n",
        f"qf{SHORT_ID}": qf(SHORT_ID, "e@lab.test", "e@example.com", T + 240),
        f"df{SHORT_ID}": "short\n",
        f"qf{LONG_ID}": qf(LONG_ID, "f@lab.test", "f@example.com", T + 240),
        f"df{LONG_ID}": "long\n",
        "tfZZZZZZZZ99999": "being written\n",
        "README": "not a queue file\n",
    }
    for name, text in files.items():
        (q / name).write_bytes(text.encode("latin-1"))
        (q / name).chmod(0o600)
    return q


class FakeSendmail:
    """sendmail -d0.1 -bt (version) and -Q quarantining as quarantine_queue() does it."""

    def __init__(self, queue: Path) -> None:
        self.queue = queue
        self.calls: list[list[str]] = []

    def __call__(
        self,
        argv: Sequence[str],
        *,
        timeout: float = 60,
        env: Any = None,
        stdin: bytes | None = None,
        check: bool = True,
    ) -> _proc.Result:
        argv = list(argv)
        self.calls.append(argv)
        if argv[1:] == ["-d0.1", "-bt"]:
            return _proc.Result(tuple(argv), 0, b"Version 8.17.1\n Compiled with: DNSMAP LOG\n", b"")
        quarantined = "-qQ" in argv
        reason = next(a[2:] for a in argv if a.startswith("-Q"))
        subs = [a[3:] for a in argv if a.startswith("-qI")]
        for path in sorted(self.queue.iterdir()):
            name = path.name
            if name[:2] != ("hf" if quarantined else "qf") or not any(s in name[2:] for s in subs):
                continue
            text = path.read_text("latin-1")
            if reason:  # quarantine: q line, hf name
                text = text.replace("\nS", f"\nq{reason}\nS", 1)
                path.rename(self.queue / f"hf{name[2:]}")
            else:  # unquarantine
                text = "".join(line for line in text.splitlines(True) if not line.startswith("q"))
                path.rename(self.queue / f"qf{name[2:]}")
            (self.queue / f"{'hf' if reason else 'qf'}{name[2:]}").write_text(text, "latin-1")
        return _proc.Result(tuple(argv), 0, b"", b"")


@pytest.fixture
def mq(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[SendmailQueue, Path, FakeSendmail]:
    q = make_queue(tmp_path)
    fake = FakeSendmail(q)
    monkeypatch.setattr(_proc, "run", fake)
    return SendmailQueue(q, binary="/usr/sbin/sendmail"), q, fake


def test_control_file_lines() -> None:
    cf = parse_control(AUTH_QF.encode("latin-1"), AUTH_ID)
    assert (cf.version, cf.ctime, cf.last_attempt, cf.tries, cf.sender) == (8, T, T + 600, 2, "bob@lab.test")
    assert cf.complete and cf.auth_param == "bob+40lab.test" and xtext_decode(cf.auth_param) == "bob@lab.test"
    assert cf.macros == {
        "_": "pc.example [203.0.113.7] (may be forged)",
        "r": "ESMTPSA",
        "s": "pc",
        "daemon_flags": "",
        "if_addr": "192.0.2.1",
    }
    # the M line before S is the envelope's; one after S belongs to the next R line only
    assert [(r.address, r.delay_reason) for r in cf.recipients] == [
        ("rate1@gmail.com", GMAIL),
        ("rate2@example.org", "Deferred: Connection timed out with mx.example.org."),
    ]
    heads = cf.header_bytes()
    assert b"Return-Path" not in heads  # built at delivery time (unexpanded \201g)
    assert heads.startswith(b"Received: from pc (pc.example [203.0.113.7] (may be forged))\n\t(authenticated")
    assert heads.endswith(b"Subject: Parcel 4711 is on hold\nTo: rate1@gmail.com, rate2@example.org\n")


def test_facts_and_attribution() -> None:
    cf = parse_control(AUTH_QF.encode("latin-1"), AUTH_ID)
    facts = sendmail_facts(cf)
    assert facts == {
        "trusted_received": "0",
        "client_address": "203.0.113.7",
        "sasl_username": "bob@lab.test",
        "helo_name": "pc",
    }
    a = read_headers(cf.header_bytes(), our_names=OURS, envelope=facts).attribution
    assert (a.account, a.client, a.source) == ("bob@lab.test", "203.0.113.7", "envelope+received")
    assert a.notes == ()  # the forged "Authenticated sender: victim" hop below ours is never read
    local = parse_control(LOCAL_QF.encode("latin-1"), LOCAL_ID)
    facts = sendmail_facts(local)
    # A is "$f@$j" for a command-line submission, not a login: no ESMTPA, so not used
    assert facts == {"trusted_received": "0", "local_user": "www-data"}
    a = read_headers(local.header_bytes(), our_names=OURS, envelope=facts).attribution
    assert (a.local_user, a.script, a.account) == ("www-data", "contact.php", None)
    # a ${auth_authen} the site chose to persist wins; an untrusted A=<> is nothing
    cf2 = parse_control(AUTH_QF.replace("Abob+40lab.test", "A<>").encode("latin-1"), AUTH_ID)
    assert "sasl_username" not in sendmail_facts(cf2)
    cf3 = parse_control(AUTH_QF.replace("$spc\n", "$spc\n${auth_authen}bob\n").encode("latin-1"), AUTH_ID)
    assert sendmail_facts(cf3)["sasl_username"] == "bob"


def test_listing_and_reading(mq: tuple[SendmailQueue, Path, FakeSendmail]) -> None:
    be, _, _ = mq
    msgs = {m.id: m for m in be.list_messages()}
    assert sorted(msgs) == sorted([AUTH_ID, LOCAL_ID, HELD_ID, LOST_ID, SHORT_ID, LONG_ID])
    assert (msgs[AUTH_ID].queue, msgs[HELD_ID].queue, msgs[LOST_ID].queue) == ("queue", "hold", "lost")
    m = msgs[AUTH_ID]
    assert (m.arrival, m.sender, m.size) == (
        T,
        "bob@lab.test",
        len("Your parcel: http://t1.parcel-claims.example/\n"),
    )
    assert [r.address for r in m.recipients] == ["rate1@gmail.com", "rate2@example.org"]
    data = be.read(AUTH_ID)
    assert data.endswith(
        b"To: rate1@gmail.com, rate2@example.org\n\nYour parcel: http://t1.parcel-claims.example/\n"
    )
    found = {f.message.id: f.message for f in scan(be, Criteria(), our_names=OURS)}
    auth, local = found[AUTH_ID].attribution, found[LOCAL_ID].attribution
    assert auth is not None and local is not None
    assert auth.culprit() == "account bob@lab.test"
    assert found[AUTH_ID].subject == "Parcel 4711 is on hold"
    assert local.culprit() == "script contact.php (local)"
    assert be.problems == []
    info = be.describe()
    assert (info.mta, info.version, sorted(info.can)) == (
        "sendmail",
        "8.17.1",
        ["delete", "hold", "read", "release"],
    )


def test_hold_and_release_through_sendmail_q(mq: tuple[SendmailQueue, Path, FakeSendmail]) -> None:
    be, q, fake = mq
    assert be.hold([AUTH_ID, HELD_ID]) == [AUTH_ID]  # HELD_ID is held already: not asked for
    assert fake.calls[-1] == [
        "/usr/sbin/sendmail",
        f"-OQueueDirectory={q}",
        "-Qheld by mailwarden",
        f"-qI{AUTH_ID}",
    ]
    assert (q / f"hf{AUTH_ID}").exists() and not (q / f"qf{AUTH_ID}").exists()
    assert {m.id: m.queue for m in be.list_messages()}[AUTH_ID] == "hold"
    assert be.release([AUTH_ID, HELD_ID]) == [AUTH_ID, HELD_ID]
    assert fake.calls[-1][1:4] == [f"-OQueueDirectory={q}", "-qQ", "-Q"]
    assert not list(q.glob("hf*"))
    # -qI matches substrings: SHORT_ID would take LONG_ID along, so it is left alone
    assert be.hold([SHORT_ID]) == []
    assert any("substring" in p for p in be.problems)
    assert be.hold([LONG_ID]) == [LONG_ID] and (q / f"qf{SHORT_ID}").exists()
    with pytest.raises(QueueError):
        be.hold(["-bd"])


def test_hold_refused_without_sendmail_binary(mq: tuple[SendmailQueue, Path, FakeSendmail]) -> None:
    _, q, _ = mq
    be = SendmailQueue(q, binary="")
    with pytest.raises(QueueError, match="not Sendmail's binary"):
        be.hold([AUTH_ID])
    assert "hold" not in be.describe().can and (q / f"qf{AUTH_ID}").exists()


def test_delete_removes_qf_df_xf(mq: tuple[SendmailQueue, Path, FakeSendmail]) -> None:
    be, q, _ = mq
    before = sorted(p.name for p in q.iterdir())
    assert be.delete([AUTH_ID, HELD_ID, "5ARAZZZZ099999"]) == [AUTH_ID, HELD_ID]
    gone = {f"qf{AUTH_ID}", f"df{AUTH_ID}", f"xf{AUTH_ID}", f"hf{HELD_ID}", f"df{HELD_ID}"}
    assert sorted(p.name for p in q.iterdir()) == sorted(set(before) - gone)
    with pytest.raises(QueueError):
        be.delete(["../../etc/passwd"])


def test_delete_leaves_flocked_messages_alone(mq: tuple[SendmailQueue, Path, FakeSendmail]) -> None:
    be, q, _ = mq
    fd = os.open(q / f"qf{AUTH_ID}", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # Sendmail built with HASFLOCK
        assert be.delete([AUTH_ID, LOCAL_ID]) == [LOCAL_ID]
    finally:
        os.close(fd)
    assert (q / f"qf{AUTH_ID}").exists() and (q / f"df{AUTH_ID}").exists()
    assert any("locked" in p for p in be.problems)


def test_delete_leaves_fcntl_locked_messages_alone(mq: tuple[SendmailQueue, Path, FakeSendmail]) -> None:
    be, q, _ = mq
    # Sendmail on Linux locks with fcntl(F_SETLK): such locks only conflict between processes
    code = (
        "import fcntl, os, sys\n"
        f"fd = os.open({str(q / ('qf' + AUTH_ID))!r}, os.O_RDWR)\n"
        "fcntl.lockf(fd, fcntl.LOCK_EX)\n"
        "print('locked', flush=True)\n"
        "sys.stdin.read()\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None and child.stdout.readline() == b"locked\n"
        assert be.delete([AUTH_ID]) == []
        assert (q / f"qf{AUTH_ID}").exists()
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=10)
        if child.stdout is not None:
            child.stdout.close()
    assert be.delete([AUTH_ID]) == [AUTH_ID]


def test_cli_options(
    mq: tuple[SendmailQueue, Path, FakeSendmail], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, q, _ = mq
    be = open_backend(sendmail_queue=str(q))  # --sendmail-queue implies --mta sendmail
    assert isinstance(be, SendmailQueue) and be.dir == q and be.explicit_dir
    args = cli_main.build_parser().parse_args(
        ["queue", "list", "--sendmail-queue", str(q), "--account", "bob@*", "--format", "json"]
    )
    assert queue_cli.run(args, now=T + 3600) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [m["id"] for m in doc["messages"]] == [AUTH_ID]
    assert doc["messages"][0]["attribution"]["client"] == "203.0.113.7"
    args = cli_main.build_parser().parse_args(
        ["queue", "summary", "--mta", "sendmail", "--sendmail-queue", str(q), "--format", "json"]
    )
    assert queue_cli.run(args, now=T + 3600) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["totals"]["queues"]["hold"]["messages"] == 1
    assert any(r["reason"] == "rate-limited by Gmail" for r in doc["deferral_reasons"])


def test_hostile_control_file_stays_linear() -> None:
    junk = "[" * 20_000 + "(may be forged) " * 2_000 + "id " * 5_000
    data = f"V8\nT{T}\n$_{junk}\nS<{junk}>\nR{'P' * 30_000}:{junk}\nH??Received: {junk}\n\t{junk}\n.\n"
    cf = parse_control(data.encode(), AUTH_ID)
    assert cf.complete and len(cf.recipients) == 1 and len(cf.sender) <= 1000
    assert sendmail_facts(cf) == {}
