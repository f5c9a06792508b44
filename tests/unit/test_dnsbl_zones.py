"""The blocklist data file: the bundled catalogue, and strict validation of --zones files."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailwarden.intel.dnsbl.errors import ZoneFileError
from mailwarden.intel.dnsbl.zones import adhoc_zone, load_catalogue, parse_zones

GOOD = """
schema = 1
[[list]]
name = "local-bl"
zone = "bl.example.net"
kind = "ip"
severity = 4
lookup = "https://bl.example.net/lookup?ip={target}"
[list.codes]
"127.0.0.2" = "listed locally"
"127.0.0.3" = { meaning = "listed for auth abuse", severity = 7, delisting = "mail abuse@example.net" }
[list.errors]
"127.0.0.1" = { kind = "resolver_blocked", meaning = "refused" }
"""


def test_bundled_catalogue_loads_and_is_sane() -> None:
    cat = load_catalogue()
    names = [z.name for z in cat.lists]
    for expected in ("spamhaus-zen", "spamhaus-dbl", "barracuda", "spamcop", "uceprotect-1", "uceprotect-2",
                     "uceprotect-3", "psbl", "mailspike-bl", "surbl-multi", "uribl-multi", "sorbs"):  # fmt: skip
        assert expected in names
    sorbs = cat.find("sorbs")
    assert sorbs and sorbs.retired and sorbs not in cat.active()
    zen = cat.find("zen.spamhaus.org")
    assert zen and zen.ipv6 and zen.kind == "ip"
    assert {e.address: e.kind for e in zen.errors} == {
        "127.255.255.252": "error",
        "127.255.255.254": "resolver_blocked",
        "127.255.255.255": "rate_limited",
    }
    uribl = cat.find("uribl-multi")
    assert uribl and uribl.match == "bitmask" and uribl.error("127.0.0.1")
    for z in cat.active():
        assert z.codes and z.delisting and 0 < z.severity <= 10


def test_good_file_parses() -> None:
    (z,) = parse_zones(GOOD, "good.toml")
    assert z.zone == "bl.example.net" and z.kind == "ip" and not z.ipv6
    assert z.code("127.0.0.2") and z.code("127.0.0.2").meaning == "listed locally"  # type: ignore[union-attr]
    c3 = z.code("127.0.0.3")
    assert c3 and c3.severity == 7 and c3.delisting
    assert z.lookup_url("192.0.2.1") == "https://bl.example.net/lookup?ip=192.0.2.1"
    assert z.reply_patterns == ("bl.example.net",)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("severity = 4", "serverity = 4"), "unknown key 'serverity' (did you mean 'severity'?)"),
        (("schema = 1", "schema = 2"), "'schema = 1' is required"),
        (('kind = "ip"', 'kind = "ipv4"'), "did you mean 'ip'?"),
        (("[list.errors]", "[list.erors]"), "unknown key 'erors' (did you mean 'errors'?)"),
        (('"127.0.0.2" = "listed locally"', '"10.0.0.2" = "x"'), "127.0.0.0/8"),
        (('"127.0.0.2" = "listed locally"', '"127.0.0.02" = "x"'), "not an IPv4 address"),
        (('meaning = "refused"', 'meening = "refused"'), "did you mean 'meaning'?"),
        (('kind = "resolver_blocked"', 'kind = "blocked"'), "must be one of"),
        (("{target}", "{ip}"), "unknown placeholder {ip}"),
        (('zone = "bl.example.net"', 'zone = "bl example"'), "not a valid DNS zone name"),
        (("severity = 4", "severity = 11"), "0 to 10"),
        (("severity = 4", "severity = true"), "0 to 10"),
        (('name = "local-bl"', 'name = "Local BL"'), "name must be"),
        (('"127.0.0.1" = { kind', '"127.0.0.2" = { kind'), "both a listing code and an error"),
        (('name = "local-bl"\n', ""), "missing required key 'name'"),
        (('kind = "ip"', 'kind = "domain"\nipv6 = true'), "ipv6 = true"),
    ],
)
def test_validation_errors(change: tuple[str, str], message: str) -> None:
    bad = GOOD.replace(*change, 1)
    assert bad != GOOD
    with pytest.raises(ZoneFileError) as err:
        parse_zones(bad, "bad.toml")
    assert message in str(err.value)
    assert "bad.toml" in str(err.value)


def test_not_toml() -> None:
    with pytest.raises(ZoneFileError, match="not valid TOML"):
        parse_zones("schema = = 1", "x.toml")


def test_top_level_typo() -> None:
    with pytest.raises(ZoneFileError, match="did you mean 'list'"):
        parse_zones(GOOD.replace("[[list]]", "[[lists]]").replace("[list.", "[lists."), "x.toml")


def test_bitmask_codes_must_be_single_bits() -> None:
    text = GOOD.replace("severity = 4", 'severity = 4\nmatch = "bitmask"').replace(
        '"127.0.0.3" = {', '"127.0.0.6" = {'
    )
    with pytest.raises(ZoneFileError, match="power of two"):
        parse_zones(text, "x.toml")


def test_duplicate_names_rejected() -> None:
    with pytest.raises(ZoneFileError, match="already defined"):
        parse_zones(GOOD + GOOD.split("schema = 1", 1)[1], "dup.toml")


def test_list_needs_codes_unless_retired() -> None:
    text = "schema = 1\n[[list]]\nname = 'x'\nzone = 'x.example'\nkind = 'ip'\nseverity = 1\n"
    with pytest.raises(ZoneFileError, match="at least one entry under 'codes'"):
        parse_zones(text, "x.toml")
    (z,) = parse_zones(text + "retired = true\n", "x.toml")
    assert z.retired


def test_zones_file_adds_and_replaces_by_name(tmp_path: Path) -> None:
    extra = tmp_path / "mine.toml"
    extra.write_text(
        GOOD
        + GOOD.split("schema = 1", 1)[1]
        .replace('"local-bl"', '"spamcop"')
        .replace("bl.example.net", "bl.spamcop.net"),
        encoding="utf-8",
    )
    base = load_catalogue()
    cat = load_catalogue([extra])
    assert len(cat.lists) == len(base.lists) + 1
    spamcop = cat.find("spamcop")
    assert spamcop and spamcop.severity == 4
    assert [z.name for z in cat.lists].index("spamcop") == [z.name for z in base.lists].index("spamcop")


def test_unreadable_zones_file(tmp_path: Path) -> None:
    with pytest.raises(ZoneFileError, match="cannot read"):
        load_catalogue([tmp_path / "missing.toml"])


def test_adhoc_zone() -> None:
    z = adhoc_zone("BL.Example.NET.")
    assert (z.zone, z.kind, z.adhoc) == ("bl.example.net", "any", True)
    assert z.applies_to("ip4") and z.applies_to("ip6") and z.applies_to("domain")
    with pytest.raises(ZoneFileError):
        adhoc_zone("not a zone")


def test_applies_to() -> None:
    cat = load_catalogue()
    zen, spamcop, dbl = cat.find("spamhaus-zen"), cat.find("spamcop"), cat.find("spamhaus-dbl")
    assert zen and spamcop and dbl
    assert zen.applies_to("ip6") and not spamcop.applies_to("ip6")
    assert dbl.applies_to("domain") and not dbl.applies_to("ip4")
