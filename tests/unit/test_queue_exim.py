"""The Exim backend on outputs shaped from the Exim specification (no Exim on this machine):
``exim -bp`` ("Listing the queue": AGE SIZE ID <SENDER> [*** frozen ***], recipients indented,
``D`` before delivered ones) and the -H spool file that ``-Mvh`` prints ("Format of spool files":
id line, login/uid/gid, <sender>, time and warning count, ``-`` option lines, recipients, a blank
line, then each header as a three-digit length, a flag character and a space)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from mailwarden import _proc
from mailwarden.queues import QueueError
from mailwarden.queues.attribution import read_headers
from mailwarden.queues.exim import EximQueue, arrival_from_id, parse_bpr, parse_spool_header, valid_id

B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
T = 1_795_800_000


def b62(n: int, width: int = 6) -> str:
    out = ""
    for _ in range(width):
        n, r = divmod(n, 62)
        out = B62[r] + out
    return out


ID1 = f"{b62(T)}-000123-AB"
ID2 = f"{b62(T + 60)}-0000c8-00"
ID3 = f"{b62(T + 120)}-00ZZ01-1a"

BPR = f"""\
25m  2.9K {ID1} <bob@lab.test>
          rate1@example.com
        D done@example.org

24m   430 {ID2} <> *** frozen ***
          alice@lab.test

 4d  1.3M {ID3} <www-data@host.example>
          a@example.net
          b@example.net

"""


def spool_h(qid: str, headers: list[tuple[str, str]]) -> bytes:
    env = (
        f"{qid}-H\nDebian-exim 101 101\n<bob@lab.test>\n{T} 0\n-received_time_usec .123456\n"
        "-auth_id bob@lab.test\n-auth_sender bob@lab.test\n-helo_name pc\n-host_address 203.0.113.7.52334\n"
        "-interface_address 192.0.2.1.587\n-received_protocol esmtpsa\n-body_linecount 2\nXX\n1\nrate1@example.com\n\n"
    )
    return (env + "".join(f"{len(text):03d}{flag} {text}" for flag, text in headers)).encode()


HEADERS = [
    (
        "P",
        "Received: from [203.0.113.7] (helo=pc)\n\tby mx.example with esmtpsa (TLS1.3)\n\t(Exim 4.96)\n"
        f"\t(envelope-from <bob@lab.test>)\n\tid {ID1};\n\tFri, 27 Nov 2026 10:00:00 +0000\n",
    ),
    ("*", "X-Deleted: by a system filter\n"),
    ("F", "From: bob@lab.test\n"),
    ("T", "To: rate1@example.com\n"),
    (" ", "Subject: Parcel 4711\n"),
    ("I", f"Message-Id: <E{ID1}@mx.example>\n"),
]


def test_message_id_time_and_listing() -> None:
    assert valid_id(ID1) and not valid_id("ALL") and not valid_id(ID1 + "\n")
    assert arrival_from_id(ID1) == T
    problems: list[str] = []
    msgs = list(parse_bpr(BPR.splitlines(), problems))
    assert [m.id for m in msgs] == [ID1, ID2, ID3]
    assert [m.queue for m in msgs] == ["queue", "hold", "queue"]
    assert [m.arrival for m in msgs] == [T, T + 60, T + 120]
    assert msgs[0].size == int(2.9 * 1024) and msgs[1].size == 430 and msgs[2].size == int(1.3 * 1024**2)
    assert [r.address for r in msgs[0].recipients] == ["rate1@example.com"]  # the delivered one is left out
    assert msgs[1].sender == ""
    assert [r.address for r in msgs[2].recipients] == ["a@example.net", "b@example.net"]
    assert problems == []


def test_spool_header_file() -> None:
    block = parse_spool_header(spool_h(ID1, HEADERS))
    assert block.id == ID1
    assert block.envelope == {
        "sasl_username": "bob@lab.test",
        "client_address": "203.0.113.7",
        "helo_name": "pc",
    }
    assert b"X-Deleted" not in block.headers
    assert block.headers.startswith(b"Received: from [203.0.113.7] (helo=pc)\n\tby mx.example")
    assert block.headers.endswith(f"Message-Id: <E{ID1}@mx.example>\n".encode())
    facts = read_headers(block.headers, our_names=("mx.example",), envelope=block.envelope)
    a = facts.attribution
    assert (a.account, a.client, a.received_by, a.source) == (
        "bob@lab.test",
        "203.0.113.7",
        "mx.example",
        "envelope+received",
    )
    assert facts.subject == "Parcel 4711"


class FakeExim:
    def __init__(self) -> None:
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
        flag = argv[1]
        out = b""
        if flag == "-bpr":
            out = BPR.encode()
        elif flag == "-Mvh":
            out = spool_h(argv[2], HEADERS)
        elif flag == "-Mvb":
            out = f"{argv[2]}-D\nYour parcel: http://t1.parcel-claims.example/\n".encode()
        elif flag in ("-Mf", "-Mt", "-Mrm"):
            verb = {"-Mf": "is now frozen", "-Mt": "is no longer frozen", "-Mrm": "has been removed"}[flag]
            out = "".join(f"Message {q} {verb}\n" for q in argv[2:] if q != ID3).encode()
        return _proc.Result(tuple(argv), 0, out, b"")


@pytest.fixture
def exim(monkeypatch: pytest.MonkeyPatch) -> tuple[EximQueue, FakeExim]:
    fake = FakeExim()
    monkeypatch.setattr(_proc, "run", fake)
    return EximQueue("/usr/sbin/exim4"), fake


def test_backend_commands(exim: tuple[EximQueue, FakeExim]) -> None:
    q, fake = exim
    assert len(list(q.list_messages())) == 3
    data = q.read(ID1)
    assert data.startswith(b"Received: from [203.0.113.7]") and data.endswith(
        b"\n\nYour parcel: http://t1.parcel-claims.example/\n"
    )
    [block] = list(q.read_headers([ID1, "not-an-id"]))
    assert block.envelope["sasl_username"] == "bob@lab.test"
    assert q.hold([ID1, ID3]) == [ID1]  # only what exim confirms
    assert q.release([ID2]) == [ID2]
    assert q.delete([ID1]) == [ID1]
    assert fake.calls[-1] == ["/usr/sbin/exim4", "-Mrm", ID1]
    with pytest.raises(QueueError):
        q.delete(["-bpr"])
