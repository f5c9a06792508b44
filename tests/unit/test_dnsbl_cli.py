"""``mailwarden dnsbl``: registration, usage errors, notes/history, and terminal safety of TXT text.

No test here sends a DNS query: usage errors stop before any lookup, and the
rendering tests build their results by hand (the real lookups are in
tests/integration/dnsbl against rbldnsd on 127.0.0.1).
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console

from mailwarden.cli import main as cli_main
from mailwarden.intel.dnsbl.model import CheckReport, Status, ZoneResult
from mailwarden.intel.dnsbl.report import render_check
from mailwarden.intel.dnsbl.targets import parse_target, query_name
from mailwarden.intel.dnsbl.zones import load_catalogue

HOSTILE = "\x1b]0;pwned\x07\x1b[2J\u202eevil\x9b31m"


@pytest.fixture(autouse=True)
def _dnsbl_registered(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(cli_main, "COMMAND_MODULES", ("mailwarden.cli.dnsbl",))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


def hostile_report() -> CheckReport:
    dbl = load_catalogue().find("spamhaus-dbl")
    assert dbl is not None
    t = parse_target("hostile.example")
    r = ZoneResult(
        t, dbl, query_name(t, dbl.zone), Status.LISTED, answers=("127.0.1.2",),
        codes=(dbl.code("127.0.1.2"),), txt=(HOSTILE,), severity=9,  # type: ignore[arg-type]
    )  # fmt: skip
    return CheckReport(datetime(2026, 11, 27, tzinfo=UTC), 0.01, "127.0.0.1:5353", (t,), (dbl,), (r,))


def test_hostile_txt_is_shown_escaped() -> None:
    buf = io.StringIO()
    render_check(hostile_report(), Console(file=buf, width=200, color_system=None, force_terminal=False))
    out = buf.getvalue()
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out and "\x9b" not in out
    assert "\\x1b]0;pwned\\x07\\x1b[2J\\u202eevil\\x9b31m" in out
    assert "LISTED on 1 list(s): Spamhaus DBL" in out
    assert "https://check.spamhaus.org/results/?query=hostile.example" in out


def test_json_keeps_raw_txt_escaped_by_json() -> None:
    doc = json.loads(json.dumps(hostile_report().to_dict()))
    assert doc["schema"] == "mailwarden.dnsbl.check/1"
    (res,) = doc["results"]
    assert res["txt"] == [HOSTILE]
    assert res["codes"] == [{"code": "127.0.1.2", "meaning": "low-reputation (spam) domain"}]
    assert res["status"] == "listed" and res["delisting"]
    assert doc["summary"] == {"lookups": 1, "listed": 1, "not_listed": 0, "unknown": 0}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["dnsbl", "check", "not a target", "--resolver", "127.0.0.1:9"], "neither an IP address"),
        (["dnsbl", "check", "192.0.2.1", "--resolver", "dns.google"], "must be an IP address"),
        (["dnsbl", "check", "192.0.2.1", "--resolver", "127.0.0.1:99999"], "bad port"),
        (["dnsbl", "check", "192.0.2.1", "--resolver", "[::1:53"], "missing ']'"),
        (["dnsbl", "check", "192.0.2.1", "--resolver", "127.0.0.1", "--zones", "/nonexistent.toml"],
         "cannot read"),
        (["dnsbl", "check", "192.0.2.1", "--resolver", "127.0.0.1", "--zone", "not a zone"], "valid DNS zone"),
        (["dnsbl", "check", "192.0.2.1", "--resolver", "127.0.0.1", "--timeout", "0"], "must be > 0"),
    ],
)  # fmt: skip
def test_usage_errors_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main.main(argv) == 2
    assert message in capsys.readouterr().err


def test_subcommand_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli_main.main(["dnsbl"])
    assert exc.value.code == 2


def test_note_then_history(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "h.sqlite")
    assert cli_main.main(["dnsbl", "note", "203.0.113.7", "spamhaus-zen", "asked", "ISP", "--db", db]) == 0
    assert "noted for 203.0.113.7 on zen.spamhaus.org" in capsys.readouterr().out
    assert cli_main.main(["dnsbl", "note", "bad.example", "bl.example.net", "\x1b[2Jx", "--db", db]) == 0
    capsys.readouterr()
    assert cli_main.main(["dnsbl", "history", "--db", db, "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["listings"] == []
    assert [(n["target"], n["zone"], n["text"]) for n in doc["notes"]] == [
        ("203.0.113.7", "zen.spamhaus.org", "asked ISP"),
        ("bad.example", "bl.example.net", "\x1b[2Jx"),
    ]
    assert cli_main.main(["dnsbl", "history", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "asked ISP" in out and "\x1b[2J" not in out and "\\x1b[2Jx" in out


def test_default_db_under_xdg_state_home(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main.main(["dnsbl", "note", "203.0.113.7", "spamcop", "waiting 24h"]) == 0
    assert (tmp_path / "state" / "mailwarden" / "dnsbl.sqlite").is_file()


def test_parser_does_not_import_dnspython() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from mailwarden.cli import main as m; m.COMMAND_MODULES=('mailwarden.cli.dnsbl',); "
        "m.build_parser(); print('dns.asyncresolver' in sys.modules, 'rich.console' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
