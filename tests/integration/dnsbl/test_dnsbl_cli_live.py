"""``mailwarden dnsbl`` end to end against rbldnsd on 127.0.0.1: exit codes, JSON, history, discovery."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from dnsbl_testdata import SBL
from rbldnsd_server import Rbldnsd, SilentResolver

from mailwarden import _proc
from mailwarden.cli import main as cli_main

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _dnsbl_registered(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(cli_main, "COMMAND_MODULES", ("mailwarden.cli.dnsbl",))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps at 80 columns when not on a terminal


def dnsbl(*argv: str) -> int:
    return cli_main.main(["dnsbl", *argv])


def test_listed_exit_1_and_json(rbldnsd: Rbldnsd, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = dnsbl("check", "203.0.113.8", "--resolver", rbldnsd.resolver, "--format", "json", "--no-history")
    assert rc == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "mailwarden.dnsbl.check/1"
    assert doc["resolver"] == rbldnsd.resolver
    first = doc["results"][0]
    assert (first["list"], first["status"], first["severity"]) == ("spamhaus-zen", "listed", 10)
    assert [c["code"] for c in first["codes"]] == ["127.0.0.2", "127.0.0.4"]
    assert first["delisting"] and first["lookup_url"].endswith("?query=203.0.113.8")
    assert doc["summary"]["listed"] == 1 and doc["summary"]["unknown"] == 0
    assert doc["summary"]["not_listed"] == doc["summary"]["lookups"] - 1


def test_clean_exit_0(rbldnsd: Rbldnsd, capsys: pytest.CaptureFixture[str]) -> None:
    assert dnsbl("check", "198.51.100.1", "good.example", "--resolver", rbldnsd.resolver, "--no-history") == 0
    out = capsys.readouterr().out
    assert "Not listed on any checked list." in out


def test_text_output_is_safe_and_explains(rbldnsd: Rbldnsd, capsys: pytest.CaptureFixture[str]) -> None:
    rc = dnsbl("check", "hostile.example", "203.0.113.66", "--resolver", rbldnsd.resolver, "--no-history")
    assert rc == 1
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u202e" not in out
    assert "\\x1b]0;pwned" in out
    assert "refuses this resolver" in out and "UNKNOWN, not clean" in out


def test_unknown_only_is_not_clean(rbldnsd: Rbldnsd, capsys: pytest.CaptureFixture[str]) -> None:
    rc = dnsbl(
        "check", "203.0.113.66", "--zone", "spamhaus-zen", "--resolver", rbldnsd.resolver, "--no-history"
    )
    assert rc == 2
    assert "nothing could be checked" in capsys.readouterr().err


def test_dead_resolver_exit_2_within_deadline(capsys: pytest.CaptureFixture[str]) -> None:
    with SilentResolver() as silent:
        t0 = time.monotonic()
        rc = dnsbl("check", "203.0.113.7", "--resolver", f"127.0.0.1:{silent.port}", "--deadline", "1",
                   "--format", "json", "--no-history")  # fmt: skip
        assert time.monotonic() - t0 < 2.0
    assert rc == 2
    doc = json.loads(capsys.readouterr().out)
    assert {r["status"] for r in doc["results"]} == {"unknown"}


def test_adhoc_zone_and_zones_file(
    rbldnsd: Rbldnsd, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = tmp_path / "mine.toml"
    extra.write_text(
        'schema = 1\n[[list]]\nname = "spamcop"\nzone = "bl.spamcop.net"\nkind = "ip"\nseverity = 3\n'
        '[list.codes]\n"127.0.0.2" = "listed (local override)"\n',
        encoding="utf-8",
    )
    rc = dnsbl("check", "203.0.113.7", "--zones", str(extra), "--zone", "spamcop", "--resolver",
               rbldnsd.resolver, "--format", "json", "--no-history")  # fmt: skip
    assert rc == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["lists"] == ["spamcop"]
    assert doc["results"][0]["codes"][0]["meaning"] == "listed (local override)"


def test_history_across_checks(
    fresh_rbldnsd: Rbldnsd, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "hist.sqlite")
    base = ["check", "203.0.113.7", "--resolver", fresh_rbldnsd.resolver, "--db", db, "--format", "json"]
    assert dnsbl(*base) == 1  # listed on ZEN and SpamCop
    assert (
        dnsbl("note", "203.0.113.7", "zen.spamhaus.org", "removal requested, ticket SBL-1", "--db", db) == 0
    )
    fresh_rbldnsd.write("zen-sbl", SBL.replace("203.0.113.7\n", ""))
    fresh_rbldnsd.reload()
    assert dnsbl(*base) == 1  # still on SpamCop
    capsys.readouterr()
    assert dnsbl("history", "203.0.113.7", "--db", db, "--format", "json") == 0
    doc = json.loads(capsys.readouterr().out)
    by_list = {p["list"]: p for p in doc["listings"]}
    zen, spamcop = by_list["spamhaus-zen"], by_list["spamcop"]
    assert zen["appeared"] and zen["disappeared"] and zen["disappeared"] >= zen["appeared"]
    assert zen["clean_before"] is None and zen["codes"] == ["127.0.0.2"]
    assert [n["text"] for n in zen["notes"]] == ["removal requested, ticket SBL-1"]
    assert spamcop["disappeared"] is None
    assert dnsbl("history", "--db", db) == 0
    out = capsys.readouterr().out
    assert "still listed" in out and "removal requested" in out


def test_auto_discovery_from_postfix_config(
    rbldnsd: Rbldnsd, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if _proc.which("postconf") is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set, refusing to skip: postconf (Postfix) not installed", pytrace=False)
        pytest.skip("postconf (Postfix) not installed")
    conf = tmp_path / "postfix"
    conf.mkdir()
    (conf / "main.cf").write_text(
        "compatibility_level = 3.6\nsmtp_bind_address = 11.22.33.44\nmyhostname = mx.spam-shop.net\n"
        "mydomain = spam-shop.net\nmydestination = $myhostname, localhost.$mydomain, localhost, lab.test\n",
        encoding="utf-8",
    )
    rc = dnsbl("check", "--postfix-config", str(conf), "--resolver", rbldnsd.resolver, "--format", "json",
               "--no-history")  # fmt: skip
    doc = json.loads(capsys.readouterr().out)
    sources = doc["discovered"]["sources"]
    assert sources["11.22.33.44"] == "postconf smtp_bind_address"
    assert sources["spam-shop.net"] == "postconf mydomain"
    assert sources["mx.spam-shop.net"] == "postconf myhostname"
    assert any("lab.test" in n for n in doc["discovered"]["notes"])
    listed = {(r["target"], r["list"]) for r in doc["results"] if r["status"] == "listed"}
    assert ("11.22.33.44", "spamhaus-zen") in listed and ("spam-shop.net", "spamhaus-dbl") in listed
    assert rc == 1
