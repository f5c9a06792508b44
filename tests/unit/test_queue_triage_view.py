"""``queue_picture``/``render_queue_picture`` (the triage --queue section) on an in-memory backend."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

from rich.console import Console

from mailwarden.model.findings import Incident
from mailwarden.queues.base import (
    BackendInfo,
    HeaderBlock,
    MessageNotFound,
    QueuedMessage,
    Recipient,
    split_headers,
)
from mailwarden.queues.triage_view import MAX_IDS, queue_picture, render_queue_picture

NOW = 1_795_800_000
WHEN = datetime.fromtimestamp(NOW - 3600, UTC)
HOSTILE = "evil\x1b]0;owned\x07\u202e"


def auth(qid: str, account: str, ip: str = "203.0.113.7") -> bytes:
    return (
        f"Received: from pc (unknown [{ip}])\n\t(Authenticated sender: {account})\n"
        f"\tby mx.lab.test (Postfix) with ESMTPA id {qid};\n\tdate\nSubject: Parcel\n\nhi\n"
    ).encode()


def local(qid: str, uid: int, script: str) -> bytes:
    return (
        f"Received: by mx.lab.test (Postfix, from userid {uid})\n\tid {qid}; date\n"
        f"X-PHP-Originating-Script: {uid}:{script}\nSubject: Contact\n\nhi\n"
    ).encode()


def plain(qid: str, ip: str) -> bytes:
    return f"Received: from h (h [{ip}])\n\tby mx.lab.test (Postfix) with SMTP id {qid};\n\tdate\n\nhi\n".encode()


class FakeQueue:
    def __init__(self, messages: dict[str, bytes], can: frozenset[str] = frozenset({"read", "hold"})) -> None:
        self.data = messages
        self.can = can

    def describe(self) -> BackendInfo:
        return BackendInfo("postfix", "3.7.11", "/etc/postfix", our_names=("mx.lab.test",), can=self.can)

    def list_messages(self) -> Iterator[QueuedMessage]:
        for n, (qid, data) in enumerate(sorted(self.data.items())):
            queue = "hold" if qid.startswith("H") else "deferred"
            rcpts = (Recipient("a@example.com"), Recipient("b@example.net"))
            yield QueuedMessage(qid, queue, NOW - 600 + n, len(data), "x@lab.test", rcpts)

    def read(self, qid: str) -> bytes:
        if qid not in self.data:
            raise MessageNotFound(qid)
        return self.data[qid]

    def read_headers(self, ids: Sequence[str]) -> Iterator[HeaderBlock]:
        for qid in ids:
            if qid in self.data:
                yield HeaderBlock(qid, split_headers(self.data[qid])[0], {})

    def hold(self, ids: Sequence[str]) -> list[str]:
        return []

    def release(self, ids: Sequence[str]) -> list[str]:
        return []

    def delete(self, ids: Sequence[str]) -> list[str]:
        return []


def incident(kind: str, subject: dict[str, object], queued: Sequence[str] = ()) -> Incident:
    return Incident(
        kind=kind,
        subject=subject,
        path="smtp_auth",
        severity="high",
        first_seen=WHEN,
        last_seen=WHEN,
        summary="s",
        queued_ids=list(queued),
    )


def fixture() -> tuple[FakeQueue, list[Incident]]:
    msgs = {f"BOB{i:04d}": auth(f"BOB{i:04d}", "Bob@Lab.test") for i in range(MAX_IDS + 5)}
    msgs |= {
        "WEB0001": local("WEB0001", 33, "/var/www/site/contact.php"),
        "WEB0002": local("WEB0002", 33, "/var/www/site/other.php"),
        "INJ0001": plain("INJ0001", "198.51.100.9"),
        "HOLD001": auth("HOLD001", "alice@lab.test", "192.0.2.5"),
        "LOG0001": plain("LOG0001", "192.0.2.99"),
        "EVIL001": auth("EVIL001", HOSTILE),
    }
    incs = [
        incident("compromised_account", {"account": "bob@lab.test"}),
        incident("web_script", {"uid": 33, "script": "contact.php"}),
        incident("unauthenticated_injection", {"ip": "198.51.100.9", "senders": []}, queued=["LOG0001"]),
        incident("brute_force", {"ip": "192.0.2.200", "accounts": ["root"]}),
        incident("open_relay", {"ip": "192.0.2.1", "clients": ["192.0.2.5"]}),
        incident("compromised_account", {"account": HOSTILE}),
    ]
    return FakeQueue(msgs), incs


def test_picture_cross_references_incidents_with_the_queue() -> None:
    be, incs = fixture()
    pic = queue_picture(be, incs, now=NOW)
    json.dumps(pic)  # plain data: embeds in the JSON report as is
    summ = pic["summary"]
    assert isinstance(summ, dict)
    assert summ["messages"] == MAX_IDS + 11
    assert summ["queues"] == {
        "deferred": {"messages": MAX_IDS + 10, "bytes": summ["queues"]["deferred"]["bytes"]},
        "hold": {"messages": 1, "bytes": len(be.data["HOLD001"])},
    }
    assert summ["top_culprits"][0] == ["account Bob@Lab.test", MAX_IDS + 5]
    by = pic["incidents"]
    assert isinstance(by, dict) and sorted(by) == list(range(len(incs)))
    bob = by[0]
    assert (bob["queued"], bob["recipients"], len(bob["queue_ids"])) == (
        MAX_IDS + 5,
        2 * (MAX_IDS + 5),
        MAX_IDS,
    )
    assert bob["matched_by"] == {"account": MAX_IDS + 5} and bob["select"] == ["--account", "bob@lab.test"]
    assert bob["oldest_arrival"] == NOW - 600
    # uid 33 with contact.php: not the other script of the same uid
    assert by[1]["queue_ids"] == ["WEB0001"] and by[1]["select"] == ["--uid", "33", "--script", "contact.php"]
    # client address, and a queue id the logs saw queued
    assert sorted(by[2]["queue_ids"]) == ["INJ0001", "LOG0001"]
    assert by[2]["matched_by"] == {"client": 1, "queue id in the logs": 1}
    assert by[3]["queued"] == 0 and by[3]["queue_ids"] == []
    assert by[4]["queue_ids"] == ["HOLD001"]  # open relay: one of its clients
    assert by[4]["select"] == ["--client", "192.0.2.1", "--client", "192.0.2.5"]
    assert by[5]["queue_ids"] == ["EVIL001"]


def test_render_is_terminal_safe_and_quotes_commands() -> None:
    be, incs = fixture()
    pic = json.loads(json.dumps(queue_picture(be, incs, now=NOW)))  # as read back from JSON
    buf = io.StringIO()
    render_queue_picture(Console(file=buf, width=300, color_system=None), pic)
    out = buf.getvalue()
    for ch in ("\x1b", "\x07", "\u202e"):
        assert ch not in out
    lines = out.splitlines()
    assert lines[0].startswith(f"QUEUE now (postfix 3.7.11): {MAX_IDS + 11} message(s)")
    assert "deferred 60, hold 1" in lines[0]
    assert "#1 account bob@lab.test: 55 queued message(s), 110 recipient(s)" in out
    assert "mailwarden queue hold --mta postfix --account bob@lab.test" in out
    assert "mailwarden queue hold --mta postfix --uid 33 --script contact.php" in out
    assert "#4 " not in out  # nothing queued for the brute-force address
    assert "--account 'evil\\x1b]0;owned\\x07\\u202e'" in out  # escaped, and shell-quoted


def test_render_empty_queue_and_no_hold() -> None:
    be, incs = fixture()
    be.data = {"WEB0001": be.data["WEB0001"]}
    be.can = frozenset({"read", "delete"})
    buf = io.StringIO()
    render_queue_picture(Console(file=buf, width=300, color_system=None), queue_picture(be, incs, now=NOW))
    assert "mailwarden queue delete --mta postfix --uid 33" in buf.getvalue()
    # qmail/Sendmail read a directory: a non-default one is part of the command
    pic = queue_picture(be, incs, now=NOW)
    pic["backend"] = {"mta": "qmail", "queue_dir": "/srv/qmail/queue", "can": ["read", "delete"]}
    buf = io.StringIO()
    render_queue_picture(Console(file=buf, width=300, color_system=None), pic)
    assert "mailwarden queue delete --mta qmail --qmail-queue /srv/qmail/queue --uid 33" in buf.getvalue()
    be.data = {}
    buf = io.StringIO()
    pic = queue_picture(be, incs, now=NOW)
    render_queue_picture(Console(file=buf, width=300, color_system=None), pic)
    assert buf.getvalue().splitlines() == ["QUEUE now (postfix 3.7.11): 0 message(s), 0 B"]
