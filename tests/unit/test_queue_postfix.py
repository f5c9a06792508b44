"""The Postfix backend on recorded tool output (Postfix 3.7.11, the lab stack), and the argv it
builds: -c DIR, ids on standard input, never a shell, never the ALL keyword."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from mailwarden import _proc
from mailwarden.queues import QueueError, open_backend
from mailwarden.queues.base import MessageNotFound, split_headers
from mailwarden.queues.postfix import PostfixQueue, parse_postcat_batch, parse_postqueue_json, valid_id

# recorded `postqueue -j` (shared/samples/lab/queue.json) plus a held message
POSTQUEUE_J = b"""\
{"queue_name": "deferred", "queue_id": "3063720C6F3", "arrival_time": 1795800862, "message_size": 430, "forced_expire": false, "sender": "alice@lab.test", "recipients": [{"address": "full-box@example.net", "delay_reason": "host 127.0.0.1[127.0.0.1] said: 452 4.2.2 The email account that you tried to reach is over quota. (in reply to RCPT TO command)"}]}
{"queue_name": "deferred", "queue_id": "0BE7520C6A2", "arrival_time": 1795800862, "message_size": 353, "forced_expire": false, "sender": "www-data@lab.test", "recipients": [{"address": "rate-limited1@example.com", "delay_reason": "host 127.0.0.1[127.0.0.1] said: 421 4.7.0 [127.0.0.1] Our system has detected an unusual rate of unsolicited mail originating from your IP address. To protect our users from spam, mail sent from your IP address has been temporarily rate limited. (in reply to RCPT TO command)"}]}
{"queue_name": "hold", "queue_id": "6A22A20D5B8", "arrival_time": 1795804106, "message_size": 472, "forced_expire": false, "sender": "", "recipients": [{"address": "rate0@example.com"}]}
not json at all
{"queue_name": "deferred"}
"""

# recorded `postcat -q -e -h 6A22A20D5B8 6C2AB20D5B9` (trimmed envelope)
POSTCAT_BATCH = b"""\
*** ENVELOPE RECORDS deferred/6/6A22A20D5B8 ***
message_size:             472             715               1               0             472               0
message_arrival_time: Fri Nov 27 18:28:26 2026
named_attribute: sasl_method=PLAIN
named_attribute: sasl_username=bob@lab.test
sender: bob@lab.test
named_attribute: log_client_address=203.0.113.7
named_attribute: client_address=203.0.113.7
named_attribute: helo_name=client.example
recipient: rate0@example.com
*** MESSAGE CONTENTS deferred/6/6A22A20D5B8 ***
Received: from client.example (unknown [203.0.113.7])
\t(Authenticated sender: bob@lab.test)
\tby mx.lab.test (Postfix) with ESMTPA id 6A22A20D5B8
\tfor <rate0@example.com>; Fri, 27 Nov 2026 18:28:26 +0000 (UTC)
Subject: Win 0 now
*** HEADER EXTRACTED deferred/6/6A22A20D5B8 ***
*** MESSAGE FILE END deferred/6/6A22A20D5B8 ***
*** ENVELOPE RECORDS hold/6C2AB20D5B9 ***
message_arrival_time: Fri Nov 27 18:28:26 2026
rewrite_context: local
sender_fullname: www-data
sender: www-data@lab.test
*** MESSAGE CONTENTS hold/6C2AB20D5B9 ***
Received: by mx.lab.test (Postfix, from userid 33)
\tid 6C2AB20D5B9; Fri, 27 Nov 2026 18:28:26 +0000 (UTC)
Subject: Contact
*** HEADER EXTRACTED hold/6C2AB20D5B9 ***
named_attribute: dsn_orig_rcpt=rfc822;x@example.net
*** MESSAGE FILE END hold/6C2AB20D5B9 ***
"""


def test_parse_postqueue_json() -> None:
    problems: list[str] = []
    msgs = list(parse_postqueue_json(POSTQUEUE_J.split(b"\n"), problems))
    assert [m.id for m in msgs] == ["3063720C6F3", "0BE7520C6A2", "6A22A20D5B8"]
    assert msgs[0].queue == "deferred" and msgs[0].size == 430 and msgs[0].arrival == 1795800862
    assert msgs[0].recipients[0].domain == "example.net"
    assert "over quota" in msgs[0].recipients[0].delay_reason
    assert msgs[2].sender == "" and msgs[2].recipients[0].delay_reason == ""
    assert len(problems) == 2


def test_parse_postcat_batch() -> None:
    blocks = list(parse_postcat_batch(POSTCAT_BATCH, ["6A22A20D5B8", "6C2AB20D5B9"]))
    assert [b.id for b in blocks] == ["6A22A20D5B8", "6C2AB20D5B9"]
    a, b = blocks
    assert a.envelope["sasl_username"] == "bob@lab.test"
    assert a.envelope["client_address"] == "203.0.113.7"
    assert a.headers.startswith(b"Received: from client.example") and a.headers.endswith(
        b"Subject: Win 0 now\n"
    )
    assert "sasl_username" not in b.envelope and b.envelope["sender_fullname"] == "www-data"
    assert b"from userid 33" in b.headers
    # a marker for an id nobody asked for is content, not structure
    assert [x.id for x in parse_postcat_batch(POSTCAT_BATCH, ["6A22A20D5B8"])] == ["6A22A20D5B8"]


def test_valid_id() -> None:
    assert valid_id("3063720C6F3") and valid_id("4Xz9Lm1kTQzQQ")
    for bad in ("ALL", "all", "-d", "a b", "", "x" * 40, "ABC/../x", "3063720C6F3\n"):
        assert not valid_id(bad)


def test_split_headers() -> None:
    assert split_headers(b"A: 1\nB: 2\n\nbody\n\nmore") == (b"A: 1\nB: 2\n", b"body\n\nmore")
    assert split_headers(b"A: 1\r\n\r\nbody") == (b"A: 1\r\n", b"body")
    assert split_headers(b"A: 1\n") == (b"A: 1\n", b"")
    assert split_headers(b"\nbody") == (b"", b"body")


class FakeRun:
    """Stands in for _proc.run: records argv/stdin, answers from a script."""

    def __init__(self, answers: dict[str, tuple[int, bytes, bytes]]) -> None:
        self.answers = answers
        self.calls: list[tuple[list[str], bytes | None]] = []

    def __call__(
        self,
        argv: Sequence[str],
        *,
        timeout: float = 60,
        env: Any = None,
        stdin: bytes | None = None,
        check: bool = True,
    ) -> _proc.Result:
        assert not isinstance(argv, str)
        self.calls.append((list(argv), stdin))
        tool = argv[0].rsplit("/", 1)[-1]
        key = next(
            (k for k in self.answers if k == tool or (k.startswith(tool) and k.split()[1] in argv)), tool
        )
        rc, out, err = self.answers.get(key, (0, b"", b""))
        if check and rc:
            raise _proc.ProcError(f"{tool} exited {rc}")
        return _proc.Result(tuple(argv), rc, out, err)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeRun:
    f = FakeRun(
        {
            "postqueue": (0, POSTQUEUE_J, b""),
            "postconf": (0, b"3.7.11\nmx.lab.test\n/var/spool/postfix\n", b""),
            "postsuper -h": (
                0,
                b"",
                b"postsuper: 3063720C6F3: placed on hold\npostsuper: Placed on hold: 1 message\n",
            ),
            "postsuper -H": (
                0,
                b"",
                b"postsuper: 6A22A20D5B8: released from hold\npostsuper: Released from hold: 1 message\n",
            ),
            "postsuper -d": (
                0,
                b"",
                b"postsuper: 3063720C6F3: removed\npostsuper: 0BE7520C6A2: removed\n"
                b"postsuper: FFFFFFFFFFF: removed\npostsuper: Deleted: 3 messages\n",
            ),
            "postcat": (0, POSTCAT_BATCH, b""),
        }
    )
    monkeypatch.setattr(_proc, "run", f)
    monkeypatch.setattr(_proc, "which", lambda name: f"/usr/sbin/{name}")
    return f


def test_config_dir_is_passed_to_every_tool(fake: FakeRun, monkeypatch: pytest.MonkeyPatch) -> None:
    q = PostfixQueue("/srv/pf")
    assert [m.id for m in q.list_messages()] == ["3063720C6F3", "0BE7520C6A2", "6A22A20D5B8"]
    info = q.describe()
    assert (info.version, info.our_names, info.config) == ("3.7.11", ("mx.lab.test",), "/srv/pf")
    q.hold(["3063720C6F3"])
    list(q.read_headers(["6A22A20D5B8"]))
    for argv, _ in fake.calls:
        assert argv[1:3] == ["-c", "/srv/pf"], argv
    monkeypatch.setenv("MAIL_CONFIG", "/srv/other")
    assert PostfixQueue().config_dir == "/srv/other"
    monkeypatch.delenv("MAIL_CONFIG")
    fake.calls.clear()
    list(PostfixQueue().list_messages())
    assert fake.calls[0][0] == ["/usr/sbin/postqueue", "-j"]


def test_postsuper_ids_on_stdin_and_results_read_back(fake: FakeRun) -> None:
    q = PostfixQueue("/srv/pf")
    assert q.hold(["3063720C6F3", "0BE7520C6A2"]) == ["3063720C6F3"]
    argv, stdin = fake.calls[-1]
    assert argv == ["/usr/sbin/postsuper", "-c", "/srv/pf", "-h", "-"]
    assert stdin == b"3063720C6F3\n0BE7520C6A2\n"
    assert q.release(["6A22A20D5B8"]) == ["6A22A20D5B8"]
    # only ids we asked for count, even if postsuper reports more
    assert q.delete(["3063720C6F3", "0BE7520C6A2"]) == ["3063720C6F3", "0BE7520C6A2"]
    assert q.delete([]) == []
    for bad in (["ALL"], ["-r ALL"], ["3063720C6F3\nALL"]):
        with pytest.raises(QueueError):
            q.delete(bad)


def test_read_missing_message(fake: FakeRun) -> None:
    fake.answers["postcat"] = (
        1,
        b"",
        b"postcat: fatal: open queue file 3063720C6F3: No such file or directory\n",
    )
    with pytest.raises(MessageNotFound):
        PostfixQueue().read("3063720C6F3")
    with pytest.raises(QueueError):
        PostfixQueue().read("ALL")


def test_read_headers_continues_after_a_vanished_message(fake: FakeRun) -> None:
    first = POSTCAT_BATCH.split(b"*** ENVELOPE RECORDS hold/")[0]
    second = b"*** ENVELOPE RECORDS hold/" + POSTCAT_BATCH.split(b"*** ENVELOPE RECORDS hold/")[1]
    answers = [
        (1, first, b"postcat: fatal: open queue file 0000000GONE: No such file or directory\n"),
        (0, second, b""),
    ]

    def run(argv: Sequence[str], **kw: Any) -> _proc.Result:
        fake.calls.append((list(argv), None))
        rc, out, err = answers.pop(0)
        return _proc.Result(tuple(argv), rc, out, err)

    import mailwarden.queues.postfix as pf

    pf._proc.run = run  # type: ignore[assignment]  # the fixture's monkeypatch restores it
    got = list(PostfixQueue().read_headers(["6A22A20D5B8", "0000000GONE", "6C2AB20D5B9"]))
    assert [b.id for b in got] == ["6A22A20D5B8", "6C2AB20D5B9"]
    assert fake.calls[-1][0][-1:] == ["6C2AB20D5B9"]


def test_open_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_proc, "which", lambda name: "/usr/sbin/postconf" if name == "postconf" else None)
    assert isinstance(open_backend(postfix_config="/x"), PostfixQueue)
    with pytest.raises(QueueError):
        open_backend("smail")
