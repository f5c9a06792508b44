"""`mailwarden queue` against a REAL Postfix queue (tests/integration/mailstack.py).

The queue is filled the way an incident fills it: a cracked account (bob) spamming through
SMTP AUTH from claimed outside addresses, a web script sending through sendmail as www-data
with X-PHP-Originating-Script, ordinary users' mail, all deferred by the fake remote MX
(``rate*`` -> 421 rate limit, ``full*`` -> 452 over quota), and one legitimate message put on
hold. One spam message carries a forged lower Received header naming a victim, and one an
X-PHP-Originating-Script header sent over SMTP: neither may be believed.

Every command gets ``--postfix-config`` of the test stack: the system Postfix is never touched.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from mailstack import MailStack, _exe, make_message

import mailwarden.cli.main as cli_main
from mailwarden.queues.export import load

pytestmark = pytest.mark.integration

SPAM_IPS = ("203.0.113.7", "198.51.100.23", "192.0.2.99")
N_SPAM = 9
N_WEB = 3
SCRIPT = "wp-content/plugins/forms/send.php"


@pytest.fixture(autouse=True)
def _queue_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """Until the lead registers it in COMMAND_MODULES."""
    if "mailwarden.cli.queue" not in cli_main.COMMAND_MODULES:
        monkeypatch.setattr(cli_main, "COMMAND_MODULES", (*cli_main.COMMAND_MODULES, "mailwarden.cli.queue"))


def cli(stack: MailStack, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    """Run ``mailwarden queue ...`` against the stack; JSON output parsed."""
    sub, rest = argv[0], list(argv[1:])
    rc = cli_main.main(
        ["queue", sub, "--postfix-config", str(stack.postfix_config), "--format", "json", *rest]
    )
    out = capsys.readouterr().out
    return rc, json.loads(out) if out.strip() else None


def populate(stack: MailStack) -> dict[str, set[str]]:
    ids: dict[str, set[str]] = {"spam": set(), "web": set(), "legit": set(), "held": set()}
    for i in range(N_SPAM):
        rcpt = f"rate{i}@example.com" if i % 3 else f"full{i}@example.net"
        body = f"Dear customer,\nyour parcel {1000 + i} is waiting: http://trk{i}.parcel-claims.example/p?id={i:08x}\n"
        r = stack.smtp_auth_send(
            "bob@lab.test",
            "bob-secret",
            "bob@lab.test",
            [rcpt],
            claim_ip=SPAM_IPS[i % 3],
            subject=f"Parcel {4711 + i * 13} for {rcpt} is on hold",
            body=body,
        )
        assert r.queue_id, r
        ids["spam"].add(r.queue_id)
    # forged: a lower Received header naming a victim, and a PHP header over SMTP
    forged = (
        b"Received: from evil (evil [198.51.100.66])\n\t(Authenticated sender: victim@lab.test)\n"
        b"\tby mx.lab.test (Postfix) with ESMTPA id 1234567890;\n\tFri, 27 Nov 2026 10:00:00 +0000 (UTC)\n"
        b"X-PHP-Originating-Script: 33:framed.php\n"
        + make_message(
            "bob@lab.test",
            ["rate-forged@example.com"],
            "Parcel 99999 for rate-forged@example.com is on hold",
            "Dear customer,\nyour parcel 1 is waiting: http://x.parcel-claims.example/p\n",
        )
    )
    r = stack.smtp_auth_send(
        "bob@lab.test",
        "bob-secret",
        "bob@lab.test",
        ["rate-forged@example.com"],
        claim_ip=SPAM_IPS[0],
        message=forged,
    )
    assert r.queue_id
    ids["spam"].add(r.queue_id)
    ids["forged"] = {r.queue_id}
    for i in range(N_WEB):
        eml = make_message(
            "www-data@lab.test",
            [f"rate-web{i}@example.org"],
            f"Contact form message #{i}",
            f"Name: x{i}\nMessage: cheap meds http://shop{i}.pills.example/{i}\n",
            headers={"X-PHP-Originating-Script": f"33:{SCRIPT}"},
        )
        stack.local_sendmail_as(eml)
    r = stack.smtp_auth_send(
        "alice@lab.test",
        "alice-secret",
        "alice@lab.test",
        ["full-box@example.net"],
        subject="Minutes of Monday",
        body="Hi, the minutes are attached.\n",
    )
    ids["legit"].add(r.queue_id or "")
    r = stack.smtp_auth_send(
        "carol@lab.test",
        "carol-secret",
        "carol@lab.test",
        ["rate-friend@example.org"],
        subject="Lunch?",
        body="Lunch on Friday?\n",
    )
    ids["legit"].add(r.queue_id or "")
    queue = stack.wait_queue_settled()
    ids["web"] = {m["queue_id"] for m in queue if m["sender"] == "www-data@lab.test"}
    assert len(ids["web"]) == N_WEB
    # one legitimate message on hold, the way an operator would have put it there
    held = next(iter(sorted(ids["legit"])))
    subprocess.run(
        [_exe("postsuper"), "-c", str(stack.postfix_config), "-h", held],
        check=True,
        capture_output=True,
        timeout=30,
    )
    ids["held"] = {held}
    queue = {m["queue_id"]: m for m in stack.postqueue_json()}
    assert set(queue) == ids["spam"] | ids["web"] | ids["legit"], queue
    assert queue[held]["queue_name"] == "hold"
    return ids


def queue_state(stack: MailStack) -> dict[str, tuple[str, int, str, int]]:
    return {
        m["queue_id"]: (m["queue_name"], m["arrival_time"], m["sender"], m["message_size"])
        for m in stack.postqueue_json()
    }


def test_summary_and_cluster_name_the_culprits(
    mailstack: MailStack, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = populate(mailstack)
    rc, doc = cli(mailstack, capsys, "summary")
    assert rc == 0
    total = N_SPAM + 1 + N_WEB + 2
    assert doc["totals"]["messages"] == total
    assert doc["totals"]["queues"]["hold"]["messages"] == 1
    assert doc["totals"]["queues"]["deferred"]["messages"] == total - 1
    culprits = dict(doc["culprits"])
    assert doc["culprits"][0] == ["account bob@lab.test", N_SPAM + 1]
    assert culprits[f"script {SCRIPT} (uid 33)"] == N_WEB
    assert culprits["account alice@lab.test"] == 1
    assert not any("victim" in k for k in culprits), culprits
    assert dict(doc["accounts"])["bob@lab.test"] == N_SPAM + 1
    assert dict(doc["scripts"]) == {f"33:{SCRIPT}": N_WEB}  # framed.php over SMTP is not believed
    assert set(dict(doc["clients"])) >= set(SPAM_IPS)
    reasons = {r["reason"]: r for r in doc["deferral_reasons"]}
    rate = [r for k, r in reasons.items() if k.startswith("rate-limited by")]
    assert sum(r["recipients"] for r in rate) == 6 + 1 + N_WEB + 1  # bob's rate*, forged, web, carol
    assert reasons["mailbox full"]["recipients"] == 3 + 1  # bob's full*, alice
    assert doc["ages"]["<1h"] == total

    rc, doc = cli(mailstack, capsys, "cluster")
    assert rc == 0
    top = doc["clusters"][0]
    assert top["messages"] == N_SPAM + 1  # one run, though subjects, links and recipients all differ
    assert top["culprits"] == [["account bob@lab.test", N_SPAM + 1]]
    assert top["url_domains"] == ["parcel-claims.example"]
    assert top["subject_template"] == "parcel <n> for <email> is on hold"
    web = next(c for c in doc["clusters"] if c["subject_template"] == "contact form message #<n>")
    assert web["culprits"] == [[f"script {SCRIPT} (uid 33)", N_WEB]]

    # the forged message: attributed to the real login, the forgery only noted
    [forged] = ids["forged"]
    rc, doc = cli(mailstack, capsys, "show", forged)
    assert rc == 0
    att = doc["message"]["attribution"]
    assert att["account"] == "bob@lab.test"
    assert att["client"] == SPAM_IPS[0]
    assert att["script"] is None
    assert any("X-PHP-Originating-Script" in n for n in att["notes"])


def test_delete_culprit_exports_verifies_and_repeat_is_noop(
    mailstack: MailStack, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ids = populate(mailstack)
    before = queue_state(mailstack)
    audit = tmp_path / "audit.log"
    export_dir = tmp_path / "export"
    rc, doc = cli(
        mailstack,
        capsys,
        "delete",
        "--account",
        "bob@lab.test",
        "--yes",
        "--export-dir",
        str(export_dir),
        "--audit-log",
        str(audit),
    )
    assert rc == 0, doc
    assert set(doc["outcome"]["acted"]) == ids["spam"]
    assert doc["outcome"]["skipped"] == {}
    after = queue_state(mailstack)
    assert set(after) == set(before) - ids["spam"]
    assert all(after[q] == before[q] for q in after)  # everything else untouched

    _manifest, messages = load(export_dir)
    loaded = list(messages)  # load() checks every SHA-256
    assert {m.item.id for m in loaded} == ids["spam"]
    for m in loaded:
        assert b"Authenticated sender: bob@lab.test" in m.data
        assert m.item.sender == "bob@lab.test"
        assert (m.item.arrival, m.item.size) == (before[m.item.id][1], before[m.item.id][3])
    sums = subprocess.run(
        ["sha256sum", "-c", "SHA256SUMS"], check=False, cwd=export_dir, capture_output=True, timeout=30
    )
    assert sums.returncode == 0, sums.stdout
    [entry] = [json.loads(line) for line in audit.read_text().splitlines()]
    assert entry["action"] == "delete"
    assert set(entry["ids"]) == ids["spam"]
    assert entry["export"] == str(export_dir)
    assert entry["criteria"] == {"accounts": ["bob@lab.test"]}

    # a repeat run finds nothing, exports nothing, logs nothing
    rc, doc = cli(
        mailstack,
        capsys,
        "delete",
        "--account",
        "bob@lab.test",
        "--yes",
        "--export-dir",
        str(tmp_path / "export2"),
        "--audit-log",
        str(audit),
    )
    assert rc == 0
    assert doc["selected"] == [] and doc["outcome"] is None
    assert not (tmp_path / "export2").exists()
    assert len(audit.read_text().splitlines()) == 1
    assert queue_state(mailstack) == after

    # and the export brings them back
    rc, doc = cli(mailstack, capsys, "reinject", str(export_dir), "--yes", "--audit-log", str(audit))
    assert rc == 0, doc
    queue = mailstack.wait_queue_settled()
    back = [m for m in queue if m["sender"] == "bob@lab.test"]
    assert len(back) == len(ids["spam"])
    assert {r["address"] for m in back for r in m["recipients"]} == {
        r for m in loaded for r in m.item.recipients
    }


def test_delete_by_explicit_ids_and_subject_regex(
    mailstack: MailStack, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ids = populate(mailstack)
    web = sorted(ids["web"])
    rc, doc = cli(
        mailstack,
        capsys,
        "delete",
        web[0],
        "NOSUCHID123",
        "--subject",
        r"^contact form",
        "--yes",
        "--no-export",
        "--audit-log",
        str(tmp_path / "a.log"),
    )
    assert rc == 0
    assert doc["outcome"]["acted"] == [web[0]]
    assert doc["ids_not_selected"] == ["NOSUCHID123"]
    assert set(queue_state(mailstack)) == (ids["spam"] | ids["web"] | ids["legit"]) - {web[0]}


def test_hold_release_round_trip(
    mailstack: MailStack, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ids = populate(mailstack)
    before = queue_state(mailstack)
    audit = str(tmp_path / "audit.log")
    rc, doc = cli(mailstack, capsys, "hold", "--script", "*send.php", "--yes", "--audit-log", audit)
    assert rc == 0
    assert set(doc["outcome"]["acted"]) == ids["web"]
    held = queue_state(mailstack)
    assert {q for q, v in held.items() if v[0] == "hold"} == ids["web"] | ids["held"]
    rc, doc = cli(mailstack, capsys, "release", "--script", "*send.php", "--yes", "--audit-log", audit)
    assert rc == 0
    assert set(doc["outcome"]["acted"]) == ids["web"]
    after = queue_state(mailstack)
    assert {q for q, v in after.items() if v[0] == "hold"} == ids["held"]  # the operator's hold stays
    assert {q: v[1:] for q, v in after.items()} == {q: v[1:] for q, v in before.items()}
    assert [json.loads(x)["action"] for x in Path(audit).read_text().splitlines()] == ["hold", "release"]


def test_dry_run_changes_nothing(
    mailstack: MailStack, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ids = populate(mailstack)
    before = queue_state(mailstack)
    audit = tmp_path / "audit.log"
    for action in ("hold", "delete", "export"):
        rc, doc = cli(
            mailstack,
            capsys,
            action,
            "--account",
            "bob@lab.test",
            "--audit-log",
            str(audit),
            *(["--export-dir", str(tmp_path / action)] if action != "hold" else []),
        )
        assert rc == 0
        assert doc["dry_run"] is True and "outcome" not in doc
        assert {m["id"] for m in doc["selected"]} == ids["spam"]
        assert all("account bob@lab.test" in m["why"] for m in doc["selected"])
        assert not (tmp_path / action).exists()
    rc = cli_main.main(["queue", "release", "--postfix-config", str(mailstack.postfix_config), "--all"])
    assert rc == 0
    assert "DRY RUN: would release 1 message(s)" in capsys.readouterr().out
    assert not audit.exists()
    assert queue_state(mailstack) == before
    # acting on everything needs --all
    rc = cli_main.main(["queue", "delete", "--postfix-config", str(mailstack.postfix_config), "--yes"])
    assert rc == 2
    assert "--all" in capsys.readouterr().err
    assert queue_state(mailstack) == before


def test_text_output_is_safe_and_list_filters(
    mailstack: MailStack, capsys: pytest.CaptureFixture[str]
) -> None:
    r = mailstack.smtp_auth_send(
        "mallory@lab.test",
        "mallory-secret",
        "mallory@lab.test",
        ["rate-x@example.com"],
        subject="\x1b]0;pwned\x07\x1b[2J hello \u202e",
        body="x\n",
    )
    assert r.queue_id
    mailstack.wait_queue_settled()
    cfg = str(mailstack.postfix_config)
    for sub in ("list", "summary", "cluster"):
        assert cli_main.main(["queue", sub, "--postfix-config", cfg]) == 0
        out = capsys.readouterr().out
        assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert cli_main.main(["queue", "show", r.queue_id, "--postfix-config", cfg]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\\x1b]0;pwned" in out
    rc = cli_main.main(
        ["queue", "list", "--postfix-config", cfg, "--reason", "rate_limit", "--older-than", "1h"]
    )
    assert rc == 0
    assert "(0 of 1 queued" in capsys.readouterr().out


def test_triage_with_queue_names_what_is_still_queued(
    mailstack: MailStack, capsys: pytest.CaptureFixture[str]
) -> None:
    """`triage --queue`: the incidents found in the real logs, matched against the real queue."""
    ids = populate(mailstack)
    geo = str(Path(__file__).resolve().parents[3] / "examples" / "lab-geo.mmdb")
    rc = cli_main.main(
        [
            "triage",
            str(mailstack.postfix_log),
            str(mailstack.dovecot_log),
            "--geoip-db",
            geo,
            "--format",
            "json",
            "--queue",
            "--postfix-config",
            str(mailstack.postfix_config),
        ]
    )
    doc = json.loads(capsys.readouterr().out)
    assert rc == 1
    kinds = {i["kind"]: n for n, i in enumerate(doc["incidents"])}
    assert "compromised_account" in kinds  # three countries: IN, RU, DE in the lab database
    assert doc["incidents"][kinds["compromised_account"]]["subject"] == {"account": "bob@lab.test"}
    picture = doc["queue"]
    assert picture["summary"]["messages"] == len(ids["spam"] | ids["web"] | ids["legit"])
    bob = picture["incidents"][str(kinds["compromised_account"])]
    assert bob["queued"] == N_SPAM + 1
    assert set(bob["queue_ids"]) == ids["spam"]
