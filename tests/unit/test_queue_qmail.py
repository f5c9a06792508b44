"""The qmail backend on queue directories built in tmp_path the way qmail-queue builds them
(qmail INTERNALS, section 2-3): a file is created in pid/, its inode number becomes the message
number, it is linked as mess/(N % split)/N; qmail-queue writes intd/N and links todo/N; after
qmail-send's preprocessing there are info/S/N (F sender NUL), remote/S/N and local/S/N (T or D +
address + NUL) and maybe bounce/N. conf-split is qmail's default, 23. No qmail runs here, and the
host's /var/qmail is never touched."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

import pytest

import mailwarden.cli.main as cli_main
from mailwarden.cli import queue as queue_cli
from mailwarden.queues import NotSupported, QueueError, open_backend
from mailwarden.queues.qmail import QmailQueue, parse_envelope, qmail_facts
from mailwarden.queues.scan import scan
from mailwarden.queues.select import Criteria

SPLIT = 23
T = 1_795_800_000
OURS = ("mx.example",)

LOCAL_PHP = (
    b"Received: (qmail 4711 invoked by uid 33); 27 Nov 2026 10:00:00 -0000\n"
    b"To: rate1@example.com\n"
    b"Subject: Parcel 4711 is on hold\n"
    b"X-PHP-Originating-Script: 33:wp-content/uploads/mailer.php\n"
    # written by the script: a forged "authenticated" hop by our own name
    b"Received: from pc (pc [192.0.2.66]) (Authenticated sender: victim@example.com)\n"
    b"\tby mx.example (Postfix) with ESMTPA id 4ABC;\n\tFri, 27 Nov 2026 09:59:00 +0000\n"
    b"From: shop@example.com\n\nYour parcel: http://t1.parcel-claims.example/\n"
)
NET_AUTH = (
    b"Received: (qmail 5012 invoked from network); 27 Nov 2026 10:01:00 -0000\n"
    b"Received: from unknown (HELO pc) (bob@lab.test@203.0.113.7)\n"
    b"  by mx.example with ESMTPA; 27 Nov 2026 10:01:00 -0000\n"
    b"Received: from x (Authenticated sender: victim@example.com) by mx.example (Postfix) id Q;\n"
    b"X-PHP-Originating-Script: 0:framed.php\n"
    b"From: bob@lab.test\nSubject: Parcel 2\n\nhi\n"
)
NET_IDENT = (
    b"Received: (qmail 5013 invoked from network); 27 Nov 2026 10:02:00 -0000\n"
    b"Received: from relay.example (HELO relay.example) (admin@198.51.100.9)\n"
    b"  by mx.example with SMTP; 27 Nov 2026 10:02:00 -0000\n"
    b"From: a@relay.example\nSubject: hello\n\nhi\n"
)
BOUNCE = (
    b"Received: (qmail 6000 invoked for bounce); 27 Nov 2026 10:03:00 -0000\n"
    b"From: MAILER-DAEMON@mx.example\nSubject: failure notice\n\nsorry\n"
)


def make_queue(root: Path) -> Path:
    q = root / "queue"
    for d in ("mess", "info", "local", "remote"):
        for i in range(SPLIT):
            (q / d / str(i)).mkdir(parents=True)
    for d in ("todo", "intd", "bounce", "pid", "lock"):
        (q / d).mkdir(parents=True)
    (q / "lock" / "sendmutex").write_bytes(b"")
    (q / "lock" / "sendmutex").chmod(0o600)
    (root / "control").mkdir()
    (root / "control" / "me").write_bytes(b"mx.example\n")
    return q


def enqueue(
    q: Path,
    message: bytes,
    sender: str,
    remote: list[str] = (),  # type: ignore[assignment]
    local: list[str] = (),  # type: ignore[assignment]
    *,
    uid: int = 33,
    arrival: int = T,
    preprocessed: bool = True,
    bounce: bool = False,
) -> int:
    """Queue like qmail-queue (and, when ``preprocessed``, qmail-send): returns the message number.
    Recipients starting with 'D:' are marked done."""
    pid = q / "pid" / f"{os.getpid()}.{T}.{len(list(q.rglob('*')))}"
    pid.write_bytes(message)
    n = pid.stat().st_ino
    mess = q / "mess" / str(n % SPLIT) / str(n)
    os.link(pid, mess)
    pid.unlink()

    def rec(letter: str, addr: str) -> bytes:
        return (("D" + addr[2:]) if addr.startswith("D:") else (letter + addr)).encode() + b"\0"

    if preprocessed:
        (q / "info" / str(n % SPLIT) / str(n)).write_bytes(b"F" + sender.encode() + b"\0")
        if remote:
            (q / "remote" / str(n % SPLIT) / str(n)).write_bytes(b"".join(rec("T", a) for a in remote))
        if local:
            (q / "local" / str(n % SPLIT) / str(n)).write_bytes(b"".join(rec("T", a) for a in local))
        if bounce:
            (q / "bounce" / str(n)).write_bytes(b"<x@example.net>:\nno mailbox\n\n")
    else:
        env = f"u{uid}\0p4711\0F{sender}\0".encode() + b"".join(rec("T", a) for a in remote) + b"\0"
        (q / "intd" / str(n)).write_bytes(env)
        os.link(q / "intd" / str(n), q / "todo" / str(n))
    os.utime(mess, (arrival, arrival))
    return n


@pytest.fixture
def queue(tmp_path: Path) -> tuple[Path, dict[str, int]]:
    q = make_queue(tmp_path)
    ids = {
        "php": enqueue(q, LOCAL_PHP, "www-data@mx.example", ["rate1@example.com", "D:done@example.org"]),
        "bob": enqueue(q, NET_AUTH, "bob@lab.test", ["a@example.net"], ["bob@lab.test"], arrival=T + 60),
        "ident": enqueue(q, NET_IDENT, "a@relay.example", [], ["alice@lab.test"], arrival=T + 120),
        "bounce": enqueue(q, BOUNCE, "", [], ["D:x@lab.test"], arrival=T + 180, bounce=True),
        "todo": enqueue(q, LOCAL_PHP, "www-data@mx.example", ["b@example.net"], preprocessed=False),
    }
    return q, ids


def backend(q: Path, **kw: object) -> QmailQueue:
    proc = q.parent / "proc"
    proc.mkdir(exist_ok=True)
    return QmailQueue(q, proc_dir=proc, service_dirs=(), **kw)  # type: ignore[arg-type]


def files_of(q: Path, n: int) -> list[str]:
    return sorted(str(p.relative_to(q)) for p in q.rglob(str(n)))


def test_envelope_records() -> None:
    head, addrs = parse_envelope(b"u33\0p4711\0Fwww-data@mx.example\0Ta@x\0Db@y\0\0")
    assert head == {"u": "33", "p": "4711", "F": "www-data@mx.example"}
    assert addrs == [("T", "a@x"), ("D", "b@y")]


def test_listing(queue: tuple[Path, dict[str, int]]) -> None:
    q, ids = queue
    be = backend(q)
    msgs = {int(m.id): m for m in be.list_messages()}
    assert set(msgs) == set(ids.values())
    php, bob, ident, bounce, todo = (msgs[ids[k]] for k in ("php", "bob", "ident", "bounce", "todo"))
    assert (php.queue, php.sender, php.arrival, php.size) == (
        "remote",
        "www-data@mx.example",
        T,
        len(LOCAL_PHP),
    )
    assert [r.address for r in php.recipients] == ["rate1@example.com"]  # the D(one) one is left out
    assert bob.queue == "remote" and [r.address for r in bob.recipients] == ["a@example.net", "bob@lab.test"]
    assert ident.queue == "local" and ident.arrival == T + 120
    assert (bounce.queue, bounce.sender, bounce.recipients) == ("bounce", "", ())
    assert (todo.queue, [r.address for r in todo.recipients]) == ("todo", ["b@example.net"])
    assert be.problems == []
    info = be.describe()
    assert info.mta == "qmail" and info.our_names == OURS and "hold" not in info.can
    # fingerprints are stable between two listings (what verified deletion relies on)
    again = {int(m.id): m.fingerprint() for m in be.list_messages()}
    assert again == {k: v.fingerprint() for k, v in msgs.items()}


def test_qmail_received_is_ours_by_position() -> None:
    assert qmail_facts(LOCAL_PHP) == {"trusted_received": "0", "local_uid": "33"}
    assert qmail_facts(NET_AUTH) == {
        "trusted_received": "1",
        "client_address": "203.0.113.7",
        "helo_name": "pc",
        "sasl_username": "bob@lab.test",
    }
    # the ident answer (or a MAIL FROM AUTH= value) sits in the same slot: not a login without ESMTPA
    assert "sasl_username" not in qmail_facts(NET_IDENT)
    assert qmail_facts(NET_IDENT)["client_address"] == "198.51.100.9"
    assert qmail_facts(BOUNCE) == {"trusted_received": "0"}
    # a message whose top header is not qmail-queue's is not vouched for at all
    assert qmail_facts(b"Received: from x by mx.example with ESMTPA; d\nSubject: s\n\n") == {}


def test_attribution(queue: tuple[Path, dict[str, int]]) -> None:
    q, ids = queue
    found = {int(f.message.id): f.message for f in scan(backend(q), Criteria(), our_names=OURS)}
    php = found[ids["php"]].attribution
    assert php is not None
    assert (php.uid, php.script, php.account, php.client) == (33, "wp-content/uploads/mailer.php", None, None)
    assert php.culprit() == "script wp-content/uploads/mailer.php (uid 33)"
    bob = found[ids["bob"]].attribution
    assert bob is not None
    assert (bob.account, bob.client, bob.helo, bob.received_by, bob.uid, bob.script) == (
        "bob@lab.test",
        "203.0.113.7",
        "pc",
        "mx.example",
        None,
        None,
    )
    assert any("framed.php" in n for n in bob.notes)  # X-PHP on network mail: noted, not used
    ident = found[ids["ident"]].attribution
    assert ident is not None and (ident.account, ident.client) == (None, "198.51.100.9")
    bounce = found[ids["bounce"]].attribution
    assert bounce is not None and bounce.culprit() == ""
    # the filters work on qmail attribution like on any other
    crit = Criteria(uids=(33,), scripts=("mailer.php",))
    assert sorted(int(f.message.id) for f in scan(backend(q), crit, our_names=OURS)) == sorted(
        [ids["php"], ids["todo"]]
    )


def test_hold_is_not_supported(queue: tuple[Path, dict[str, int]]) -> None:
    q, ids = queue
    with pytest.raises(NotSupported, match="no hold"):
        backend(q).hold([str(ids["php"])])
    with pytest.raises(NotSupported):
        backend(q).release([str(ids["php"])])


def test_delete_refused_while_qmail_send_holds_its_lock(queue: tuple[Path, dict[str, int]]) -> None:
    q, ids = queue
    before = sorted(str(p) for p in q.rglob("*"))
    fd = os.open(q / "lock" / "sendmutex", os.O_WRONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what a running qmail-send holds
        with pytest.raises(QueueError, match="qmail-send is running"):
            backend(q, i_stopped_qmail_send=True).delete([str(ids["php"])])
    finally:
        os.close(fd)
    assert sorted(str(p) for p in q.rglob("*")) == before


def test_delete_refused_when_a_qmail_send_process_runs(queue: tuple[Path, dict[str, int]]) -> None:
    q, ids = queue
    be = backend(q, i_stopped_qmail_send=True)
    (be.proc_dir / "812").mkdir()
    (be.proc_dir / "812" / "comm").write_bytes(b"qmail-send\n")
    with pytest.raises(QueueError, match="process 812 is qmail-send"):
        be.delete([str(ids["php"])])
    assert (q / "mess" / str(ids["php"] % SPLIT) / str(ids["php"])).exists()


def test_delete_needs_the_flag_when_nothing_can_be_checked(queue: tuple[Path, dict[str, int]]) -> None:
    q, ids = queue
    (q / "lock" / "sendmutex").unlink()  # as if we could not open it
    n = str(ids["php"])
    with pytest.raises(QueueError, match="--i-stopped-qmail-send"):
        backend(q).delete([n])
    assert files_of(q, ids["php"])
    be = backend(q, i_stopped_qmail_send=True)
    assert be.delete([n]) == [n]
    assert files_of(q, ids["php"]) == []
    # qmail-send started between two batches: the next batch deletes nothing, and says why
    (be.proc_dir / "900").mkdir()
    (be.proc_dir / "900" / "comm").write_bytes(b"qmail-send\n")
    assert be.delete([str(ids["bob"])]) == []
    assert files_of(q, ids["bob"]) and "process 900 is qmail-send" in be.problems[-1]


def test_delete_removes_every_file_of_the_message(queue: tuple[Path, dict[str, int]]) -> None:
    q, ids = queue
    be = backend(q)  # lock/sendmutex can be taken: qmail-send is provably stopped
    n = ids["bounce"]
    assert files_of(q, n) == sorted(
        [f"bounce/{n}", *(f"{d}/{n % SPLIT}/{n}" for d in ("mess", "info", "local"))]
    )
    others = {k: files_of(q, n) for k, n in ids.items() if k not in ("bounce", "todo")}
    assert be.delete([str(ids["bounce"]), str(ids["todo"]), "999999999"]) == [
        str(ids["bounce"]),
        str(ids["todo"]),
    ]
    assert files_of(q, ids["bounce"]) == [] and files_of(q, ids["todo"]) == []
    assert {k: files_of(q, ids[k]) for k in others} == others  # nothing else touched
    assert be.delete([]) == []
    with pytest.raises(QueueError):
        be.delete(["../../etc/passwd"])
    # the lock stays taken until the backend is closed: qmail-send cannot start in between
    fd = os.open(q / "lock" / "sendmutex", os.O_WRONLY)
    try:
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        be.close()
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)


def test_symlinks_are_never_followed(queue: tuple[Path, dict[str, int]], tmp_path: Path) -> None:
    q, ids = queue
    secret = tmp_path / "secret"
    secret.write_bytes(b"Fsecret\0")
    n = ids["bob"]
    info = q / "info" / str(n % SPLIT) / str(n)
    info.unlink()
    info.symlink_to(secret)
    be = backend(q)
    assert str(n) not in {m.id for m in be.list_messages()}
    assert any("symlink" in p for p in be.problems)


def _cli_args(*argv: str) -> object:
    return cli_main.build_parser().parse_args(["queue", *argv])


def test_cli_options_and_end_to_end(
    queue: tuple[Path, dict[str, int]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    q, ids = queue
    be = open_backend(qmail_queue=str(q), i_stopped_qmail_send=True)  # --qmail-queue implies qmail
    assert isinstance(be, QmailQueue) and be.dir == q and be.i_stopped_qmail_send
    args = _cli_args("list", "--qmail-queue", str(q), "--uid", "33", "--format", "json")
    assert queue_cli.run(args, now=T + 600) == 0  # type: ignore[arg-type]
    doc = json.loads(capsys.readouterr().out)
    assert sorted(int(m["id"]) for m in doc["messages"]) == sorted([ids["php"], ids["todo"]])
    args = _cli_args(
        "delete",
        "--qmail-queue",
        str(q),
        "--script",
        "mailer.php",
        "--queue",
        "remote",
        "--yes",
        "--export-dir",
        str(tmp_path / "export"),
        "--audit-log",
        str(tmp_path / "audit.log"),
    )
    assert args.i_stopped_qmail_send is False  # type: ignore[attr-defined]
    be = backend(q)
    assert queue_cli.run(args, backend=be, now=T + 600) == 0  # type: ignore[arg-type]
    be.close()
    out = capsys.readouterr().out
    assert "1 message(s) deleted." in out
    assert files_of(q, ids["php"]) == [] and files_of(q, ids["todo"])
    assert (tmp_path / "export" / f"{ids['php']}.eml").read_bytes() == LOCAL_PHP
    audit = [json.loads(line) for line in (tmp_path / "audit.log").read_text().splitlines()]
    assert audit[-1]["ids"] == [str(ids["php"])] and audit[-1]["mta"] == "qmail"
    # hold: a clear refusal, exit 2
    args = _cli_args(
        "hold", "--qmail-queue", str(q), "--uid", "33", "--yes", "--audit-log", str(tmp_path / "a2")
    )
    assert queue_cli.run(args, backend=backend(q), now=T + 600) == 2  # type: ignore[arg-type]
    assert "qmail has no hold" in capsys.readouterr().err


def test_attribution_hints_are_additive() -> None:
    from mailwarden.queues.attribution import read_headers

    head = LOCAL_PHP.split(b"\n\n", 1)[0] + b"\n"
    plain = read_headers(head, our_names=OURS).attribution
    # without hints the by-name rule picks the forged lower hop (the reason qmail passes hints)
    assert plain.account == "victim@example.com"
    hinted = read_headers(head, our_names=OURS, envelope=qmail_facts(head)).attribution
    assert (hinted.account, hinted.uid, hinted.source) == (None, 33, "envelope+received")
    odd = read_headers(head, envelope={"trusted_received": "0", "local_uid": "48"}).attribution
    assert odd.uid == 48 and any("uid 48" in n and "uid 33" in n for n in odd.notes)
    # hints that make no sense are ignored: out of range, not a number
    for bad in (
        {"trusted_received": "7"},
        {"trusted_received": "-1"},
        {"local_uid": "x"},
        {"local_user": "a b"},
    ):
        a = read_headers(head, our_names=OURS, envelope=bad).attribution
        assert (a.account, a.uid, a.local_user) == ("victim@example.com", None, None)


def test_hostile_headers_stay_linear() -> None:
    junk = "(" * 30_000 + "a@" * 10_000 + "x" * 10_000
    msg = (
        b"Received: (qmail 1 invoked from network); d\n"
        + f"Received: from {junk} (HELO {junk}) ({junk}@1.2.3.4) by {junk} with ESMTPA; d\n".encode()
        + b"\nbody\n"
    )
    assert qmail_facts(msg) == {"trusted_received": "0"}
