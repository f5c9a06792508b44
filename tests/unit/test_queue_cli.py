"""`mailwarden queue` on an in-memory backend: safety of deletion, dry runs, audit, terminal output."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

import mailwarden.cli.main as cli_main
from mailwarden.cli import queue as queue_cli
from mailwarden.queues.base import (
    BackendInfo,
    HeaderBlock,
    MessageNotFound,
    QueueBackend,
    QueuedMessage,
    Recipient,
    split_headers,
)
from mailwarden.queues.export import load

NOW = 1_795_800_000
RATE = (
    "host 127.0.0.1[127.0.0.1] said: 421 4.7.0 unusual rate of unsolicited mail (in reply to RCPT TO command)"
)
HOSTILE = "Win \x1b]0;owned\x07\x1b[2J\x9b31m \u202eevil\u202c"


def eml(qid: str, account: str | None, subject: str, uid: int | None = None, body: str = "hi\n") -> bytes:
    if uid is not None:
        rec = f"Received: by mx.lab.test (Postfix, from userid {uid})\n\tid {qid}; date\n"
        extra = "X-PHP-Originating-Script: 33:contact.php\n"
    else:
        auth = f"\t(Authenticated sender: {account})\n" if account else ""
        rec = f"Received: from pc (unknown [203.0.113.7])\n{auth}\tby mx.lab.test (Postfix) with ESMTPA id {qid};\n\tdate\n"
        extra = ""
    return (rec + extra + f"From: x@lab.test\nSubject: {subject}\n\n{body}").encode()


class FakeQueue:
    """An in-memory QueueBackend; ``after_first_list`` mutates the queue before any later listing
    (to play id reuse and concurrent delivery between selection/export and deletion)."""

    def __init__(self) -> None:
        self.msgs: dict[str, tuple[QueuedMessage, bytes]] = {}
        self.lists = 0
        self.after_first_list: Any = None
        self.deleted: list[str] = []

    def put(
        self,
        qid: str,
        sender: str,
        data: bytes,
        *,
        queue: str = "deferred",
        arrival: int = NOW - 600,
        rcpt: str = "rate1@example.com",
    ) -> None:
        m = QueuedMessage(qid, queue, arrival, len(data), sender, (Recipient(rcpt, RATE),))
        self.msgs[qid] = (m, data)

    def describe(self) -> BackendInfo:
        return BackendInfo(
            "fake",
            "1",
            "/fake",
            our_names=("mx.lab.test",),
            can=frozenset({"read", "hold", "release", "delete"}),
        )

    def list_messages(self) -> Iterator[QueuedMessage]:
        self.lists += 1
        if self.lists == 2 and self.after_first_list:
            self.after_first_list(self)
        yield from [m for m, _ in self.msgs.values()]

    def read(self, qid: str) -> bytes:
        if qid not in self.msgs:
            raise MessageNotFound(qid)
        return self.msgs[qid][1]

    def read_headers(self, ids: Sequence[str]) -> Iterator[HeaderBlock]:
        for qid in ids:
            if qid in self.msgs:
                yield HeaderBlock(qid, split_headers(self.msgs[qid][1])[0], {})

    def _move(self, ids: Sequence[str], frm: str | None, to: str) -> list[str]:
        done = []
        for qid in ids:
            if (
                qid in self.msgs
                and (frm is None or self.msgs[qid][0].queue == frm)
                and self.msgs[qid][0].queue != to
            ):
                m, d = self.msgs[qid]
                self.msgs[qid] = (dataclasses.replace(m, queue=to), d)
                done.append(qid)
        return done

    def hold(self, ids: Sequence[str]) -> list[str]:
        return self._move(ids, None, "hold")

    def release(self, ids: Sequence[str]) -> list[str]:
        return self._move(ids, "hold", "deferred")

    def delete(self, ids: Sequence[str]) -> list[str]:
        done = [q for q in ids if self.msgs.pop(q, None) is not None]
        self.deleted.extend(done)
        return done


@pytest.fixture(autouse=True)
def _no_system_paths(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Defaults (/var/log/mailwarden, /var/lib/mailwarden as root) must never be touched by tests."""
    from mailwarden.queues import audit

    monkeypatch.setattr(audit, "default_audit_path", lambda: tmp_path / "default-audit.log")
    monkeypatch.setattr(audit, "state_dir", lambda: tmp_path / "state")
    monkeypatch.setattr(queue_cli, "state_dir", lambda: tmp_path / "state")


@pytest.fixture
def fq() -> FakeQueue:
    q = FakeQueue()
    for i in range(4):
        q.put(f"SPAM0000{i}", "bob@lab.test", eml(f"SPAM0000{i}", "bob@lab.test", f"Parcel {i} waiting"))
    q.put("WEB000001", "www-data@lab.test", eml("WEB000001", None, "Contact", uid=33))
    q.put("HOSTILE01", "mallory@lab.test", eml("HOSTILE01", "mallory@lab.test", HOSTILE))
    q.put("LEGIT0001", "alice@lab.test", eml("LEGIT0001", "alice@lab.test", "Minutes"), queue="hold")
    return q


def run(fq: QueueBackend, *argv: str, monkeypatch: pytest.MonkeyPatch | None = None) -> int:
    if "mailwarden.cli.queue" not in cli_main.COMMAND_MODULES:
        cli_main.COMMAND_MODULES = (*cli_main.COMMAND_MODULES, "mailwarden.cli.queue")
        try:
            args = cli_main.build_parser().parse_args(["queue", *argv])
        finally:
            cli_main.COMMAND_MODULES = tuple(
                m for m in cli_main.COMMAND_MODULES if m != "mailwarden.cli.queue"
            )
    else:
        args = cli_main.build_parser().parse_args(["queue", *argv])
    return queue_cli.run(args, backend=fq, now=NOW)


def jrun(fq: QueueBackend, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    rc = run(fq, *argv, "--format", "json")
    out = capsys.readouterr().out
    assert out.isascii()  # ensure_ascii: no raw control or bidi characters even in JSON
    return rc, json.loads(out)


def assert_terminal_safe(text: str) -> None:
    for ch in ("\x1b", "\x07", "\x9b", "\u202e", "\u202c"):
        assert ch not in text


def test_text_output_never_carries_raw_escapes(
    fq: FakeQueue, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for argv in (
        ("summary",),
        ("list",),
        ("cluster",),
        ("show", "HOSTILE01"),
        ("hold", "--sender", "mallory*"),
        (
            "delete",
            "HOSTILE01",
            "--yes",
            "--audit-log",
            str(tmp_path / "a.log"),
            "--export-dir",
            str(tmp_path / "e"),
        ),
    ):
        assert run(fq, *argv) == 0, argv
        out = capsys.readouterr()
        assert_terminal_safe(out.out + out.err)
    rc, doc = jrun(fq, capsys, "list")
    assert rc == 0 and all(m["id"] != "HOSTILE01" for m in doc["messages"])


def test_delete_verifies_identity_before_deleting(
    fq: FakeQueue, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    def meanwhile(q: FakeQueue) -> None:
        # SPAM00000 delivered and its id reused by someone else's message; SPAM00001's content
        # changed under the same envelope; SPAM00002 simply delivered
        q.put("SPAM00000", "carol@lab.test", eml("SPAM00000", "carol@lab.test", "Hello"), arrival=NOW - 5)
        m, d = q.msgs["SPAM00001"]
        q.msgs["SPAM00001"] = (m, d.replace(b"Parcel 1", b"Parcel 9"))
        del q.msgs["SPAM00002"]

    fq.after_first_list = meanwhile
    audit = tmp_path / "audit.log"
    rc, doc = jrun(
        fq,
        capsys,
        "delete",
        "--account",
        "bob@lab.test",
        "--yes",
        "--audit-log",
        str(audit),
        "--export-dir",
        str(tmp_path / "exp"),
    )
    assert rc == 1  # some were left alone
    out = doc["outcome"]
    assert out["acted"] == ["SPAM00003"]
    assert "queue id reused" in out["skipped"]["SPAM00000"]
    assert "content differs" in out["skipped"]["SPAM00001"]
    assert "gone" in out["skipped"]["SPAM00002"]
    assert fq.deleted == ["SPAM00003"]
    assert "SPAM00000" in fq.msgs and fq.msgs["SPAM00000"][0].sender == "carol@lab.test"
    [entry] = [json.loads(x) for x in audit.read_text().splitlines()]
    assert entry["ids"] == ["SPAM00003"] and set(entry["skipped"]) == {"SPAM00000", "SPAM00001", "SPAM00002"}


def test_delete_exports_mbox_that_round_trips(
    fq: FakeQueue, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    m, d = fq.msgs["SPAM00000"]
    fq.msgs["SPAM00000"] = (m, d + b"From the desk of\n>From quoted\nno final newline")
    originals = {q: fq.msgs[q][1] for q in fq.msgs if q.startswith("SPAM")}
    exp = tmp_path / "mbox"
    rc, doc = jrun(
        fq,
        capsys,
        "delete",
        "--account",
        "bob@*",
        "--yes",
        "--export-format",
        "mbox",
        "--export-dir",
        str(exp),
        "--audit-log",
        str(tmp_path / "a.log"),
    )
    assert rc == 0 and sorted(doc["outcome"]["acted"]) == sorted(originals)
    assert b"\n>From the desk" in (exp / "messages.mbox").read_bytes()
    manifest, messages = load(exp)
    assert manifest["format"] == "mbox"
    assert {m.item.id: m.data for m in messages} == originals
    # a tampered export is refused
    (exp / "messages.mbox").write_bytes((exp / "messages.mbox").read_bytes().replace(b"Parcel", b"Parcxl"))
    with pytest.raises(Exception, match="SHA-256"):
        list(load(exp)[1])


def test_dry_run_and_repeat_are_noops(
    fq: FakeQueue, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    audit = tmp_path / "audit.log"
    before = dict(fq.msgs)
    rc, doc = jrun(fq, capsys, "delete", "--account", "bob@lab.test", "--audit-log", str(audit))
    assert rc == 0 and doc["dry_run"] and len(doc["selected"]) == 4
    assert fq.msgs == before and not audit.exists()
    assert (
        jrun(
            fq,
            capsys,
            "delete",
            "--account",
            "bob@lab.test",
            "--yes",
            "--no-export",
            "--audit-log",
            str(audit),
        )[0]
        == 0
    )
    rc, doc = jrun(
        fq, capsys, "delete", "--account", "bob@lab.test", "--yes", "--no-export", "--audit-log", str(audit)
    )
    assert rc == 0 and doc["selected"] == [] and doc["outcome"] is None
    assert len(audit.read_text().splitlines()) == 1


def test_nothing_changes_when_the_audit_log_cannot_be_written(
    fq: FakeQueue, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc = run(fq, "hold", "--account", "bob@lab.test", "--yes", "--audit-log", str(blocker / "audit.log"))
    assert rc == 2
    assert "error" in capsys.readouterr().err
    assert all(m.queue != "hold" for q, (m, _) in fq.msgs.items() if q.startswith("SPAM"))


def test_hold_release_select_only_what_they_change(
    fq: FakeQueue, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    audit = str(tmp_path / "a.log")
    rc, doc = jrun(fq, capsys, "release", "--all", "--yes", "--audit-log", audit)
    assert rc == 0 and doc["outcome"]["acted"] == ["LEGIT0001"] and doc["ignored"] == 6
    rc, doc = jrun(fq, capsys, "hold", "--uid", "33", "--yes", "--audit-log", audit)
    assert rc == 0 and doc["outcome"]["acted"] == ["WEB000001"]
    assert fq.msgs["WEB000001"][0].queue == "hold"
    rc, doc = jrun(fq, capsys, "release", "--script", "contact.php", "--yes", "--audit-log", audit)
    assert doc["outcome"]["acted"] == ["WEB000001"]


def test_export_only_and_refusals(fq: FakeQueue, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    exp = tmp_path / "exp"
    rc, doc = jrun(
        fq,
        capsys,
        "export",
        "--sender",
        "www-data@*",
        "--yes",
        "--export-dir",
        str(exp),
        "--audit-log",
        str(tmp_path / "a.log"),
    )
    assert rc == 0 and doc["outcome"]["acted"] == ["WEB000001"] and "WEB000001" in fq.msgs
    assert (exp / "WEB000001.eml").read_bytes() == fq.msgs["WEB000001"][1]
    assert (exp / "SHA256SUMS").read_text().endswith("  WEB000001.eml\n")
    assert oct((exp / "WEB000001.eml").stat().st_mode & 0o777) == "0o600"
    # an export directory is never reused
    assert (
        run(
            fq,
            "export",
            "--sender",
            "www-data@*",
            "--yes",
            "--export-dir",
            str(exp),
            "--audit-log",
            str(tmp_path / "a.log"),
        )
        == 2
    )
    # no filter, no --all: refused
    assert run(fq, "delete", "--yes") == 2
    assert "--all" in capsys.readouterr().err
    assert run(fq, "list", "--subject", "(a+)+$") == 2
    assert run(fq, "show", "NOPE00000") == 2


def test_show_and_summary_json(fq: FakeQueue, capsys: pytest.CaptureFixture[str]) -> None:
    rc, doc = jrun(fq, capsys, "show", "WEB000001")
    assert rc == 0
    assert doc["message"]["attribution"]["script"] == "contact.php"
    assert doc["body_excerpt"] == "hi"
    rc, doc = jrun(fq, capsys, "summary", "--top", "2")
    assert rc == 0
    assert doc["culprits"][0] == ["account bob@lab.test", 4]
    assert doc["backend"]["mta"] == "fake"
    rc, doc = jrun(fq, capsys, "cluster", "--no-body")
    assert doc["clusters"][0]["messages"] == 4
    rc, doc = jrun(fq, capsys, "list", "--body", "^hi", "--older-than", "5m", "--queue", "deferred")
    assert rc == 0 and len(doc["messages"]) == 6 and doc["scan"]["bodies_read"] == 6
