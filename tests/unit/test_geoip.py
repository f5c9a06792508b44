"""mailwarden.enrich: country and network of an address, offline.

Real public addresses are checked against the data the installed packages
ship (no network); documentation ranges against the lab database that the
demo incident uses, whose map is restated here as the contract.
"""

from __future__ import annotations

import gzip
import importlib.util
import ipaddress
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import mailwarden.enrich
from mailwarden.enrich import GeoError, GeoResolver, NetInfo, builtin
from mailwarden.enrich.builtin import NetworkTable

DATA = Path(__file__).resolve().parents[1] / "data"
LAB_DB = DATA / "lab-geo.mmdb"
EXAMPLE_DB = Path(__file__).resolve().parents[2] / "examples" / "lab-geo.mmdb"

# The lab map the demo incident relies on: CIDR -> (country, ASN, organisation).
LAB_CONTRACT = {
    "203.0.113.0/26": ("IN", 64500, "Example Telecom India"),
    "203.0.113.64/26": ("IT", 64501, "Esempio Rete IT"),
    "203.0.113.128/26": ("BR", 64502, "Exemplo Net BR"),
    "203.0.113.192/26": ("NG", 64503, "Example Lagos Net"),
    "198.51.100.0/25": ("RU", 64504, "Primer Set RU"),
    "198.51.100.128/25": ("CN", 64505, "Example Backbone CN"),
    "192.0.2.0/25": ("DE", 64496, "Beispiel Hosting DE"),
    "192.0.2.128/25": ("FR", 64497, "Exemple Mobile FR"),
    "2001:db8:bad::/48": ("NG", 64503, "Example Lagos Net"),
    "2001:db8:1::/48": ("DE", 64496, "Beispiel Hosting DE"),
}


@pytest.fixture(scope="module")
def resolver() -> GeoResolver:
    return GeoResolver()


@pytest.fixture(scope="module")
def lab() -> GeoResolver:
    return GeoResolver([str(LAB_DB)])


def write_mmdb(path: Path, entries: dict[str, object]) -> str:
    writer_mod = pytest.importorskip("mmdb_writer")
    netaddr = pytest.importorskip("netaddr")
    writer = writer_mod.MMDBWriter(
        ip_version=6,
        ipv4_compatible=True,
        database_type="Test",
        languages=["en"],
        description={"en": "test"},
    )
    for cidr, content in entries.items():
        writer.insert_network(netaddr.IPSet([cidr]), content)
    writer.to_db_file(str(path))
    return str(path)


# --- real built-in data ---------------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "country"),
    [
        ("8.8.8.8", "US"),
        ("81.2.69.142", "GB"),
        ("117.239.0.1", "IN"),  # BSNL
        ("151.1.1.1", "IT"),  # ITnet
        ("2001:4860:4860::8888", "US"),
        ("2001:b07:a3d:1::1", "IT"),  # Fastweb
    ],
)
def test_builtin_public_address(resolver: GeoResolver, ip: str, country: str) -> None:
    info = resolver.lookup(ip)
    assert info.scope == "public"
    assert info.country == country
    assert info.org
    assert info.asn is None  # geoip2fast has names, not numbers
    assert info.network is not None
    assert ipaddress.ip_address(ip) in ipaddress.ip_network(info.network)
    assert info.source == "iptocc+geoip2fast"
    assert info.label() == f"{country} {info.org}"


def test_mapped_ipv6_is_looked_up_as_ipv4(resolver: GeoResolver) -> None:
    mapped = resolver.lookup("::ffff:8.8.8.8")
    assert mapped == resolver.lookup("8.8.8.8")
    assert mapped.ip == "8.8.8.8"
    assert resolver.lookup("::ffff:10.1.2.3").scope == "private"


# --- scopes -----------------------------------------------------------------------


SCOPE_SAMPLES = {
    "private": "10.0.0.1 172.16.5.4 172.31.255.255 192.168.1.1 fd12:3456::1 ::ffff:192.168.0.1"
    " 100.64.0.1 100.127.255.254",  # the last two are CGNAT
    "loopback": "127.0.0.1 127.255.0.9 ::1 ::ffff:127.0.0.1",
    "link_local": "169.254.10.20 fe80::1 fe80::1%eth0",
    "documentation": "192.0.2.1 198.51.100.77 203.0.113.250 2001:db8::1 3fff::1",
    "reserved": "0.1.2.3 198.18.0.1 224.0.0.251 255.255.255.255 :: ff02::1 4000::1",
    "public": "172.32.0.1 100.128.0.1 8.8.8.8 2a00:1450:4001:800::200e",
}


@pytest.mark.parametrize(
    ("ip", "scope"),
    [(ip, scope) for scope, ips in SCOPE_SAMPLES.items() for ip in ips.split()],
)
def test_scope(resolver: GeoResolver, ip: str, scope: str) -> None:
    info = resolver.lookup(ip)
    assert info.scope == scope
    if scope != "public":
        assert info.country is None
        assert info.org is None
        assert info.source == "scope"
        assert info.label() == scope


def test_non_public_lookups_do_not_load_network_data(monkeypatch: pytest.MonkeyPatch) -> None:
    table = NetworkTable()
    monkeypatch.setattr(builtin, "NETWORK_TABLE", table)
    resolver = GeoResolver()
    for ip in ("10.0.0.1", "127.0.0.1", "203.0.113.9", "fe80::1", "bogus"):
        resolver.lookup(ip)
    assert not table.loaded
    assert resolver.describe()["builtin"]["network"]["loaded"] is False  # type: ignore[index]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "garbage",
        "1.2.3",
        "1.2.3.4.5",
        "300.1.1.1",
        " 8.8.8.8",
        "8.8.8.8/32",
        "::g",
        "x" * 100_000,
    ],
)
def test_invalid_never_raises(resolver: GeoResolver, text: str) -> None:
    info = resolver.lookup(text)
    assert info.scope == "invalid"
    assert info.network is None
    assert info.country is None
    assert len(info.ip) <= 64
    assert info.label() == "invalid"


def test_non_string_input_is_invalid(resolver: GeoResolver) -> None:
    assert resolver.lookup(None).scope == "invalid"  # type: ignore[arg-type]
    assert resolver.lookup(b"8.8.8.8").scope == "invalid"  # type: ignore[arg-type]


def test_network_fallback_without_builtin() -> None:
    resolver = GeoResolver(builtin=False)
    v4 = resolver.lookup("8.8.8.8")
    assert (v4.country, v4.org, v4.network, v4.source) == (None, None, "8.8.8.0/24", "none")
    assert v4.label() == "unknown"
    assert resolver.lookup("2a00:1450:4001:800::200e").network == "2a00:1450:4001::/48"
    assert resolver.lookup("10.9.8.7").network == "10.9.8.0/24"
    assert resolver.describe()["builtin"] is None


# --- user databases -------------------------------------------------------------


@pytest.mark.parametrize(("cidr", "expected"), list(LAB_CONTRACT.items()))
def test_lab_database_places_documentation_ranges(
    lab: GeoResolver, cidr: str, expected: tuple[str, int, str]
) -> None:
    country, asn, org = expected
    net = ipaddress.ip_network(cidr)
    for addr in (net[1], net[-2]):
        info = lab.lookup(str(addr))
        assert info.scope == "documentation"
        assert (info.country, info.asn, info.org) == (country, asn, org)
        assert info.network == cidr
        assert info.source == "mmdb"
        assert info.label() == f"{country} {org}"


def test_lab_database_mapped_and_unmapped(lab: GeoResolver) -> None:
    assert lab.lookup("::ffff:203.0.113.70").country == "IT"
    assert lab.lookup("2001:db8:2::1").source == "scope"  # documentation, not in the lab map
    assert lab.lookup("127.0.0.1").country is None


def test_committed_lab_files_match_the_script() -> None:
    maxminddb = pytest.importorskip("maxminddb")
    spec = importlib.util.spec_from_file_location("make_lab_mmdb", DATA / "make_lab_mmdb.py")
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(script)
    except ImportError:
        pytest.skip("mmdb-writer not installed")
    assert script.LAB_MAP == LAB_CONTRACT
    for path in (LAB_DB, EXAMPLE_DB):
        with maxminddb.open_database(str(path)) as reader:
            found = {}
            for stored, rec in reader:
                network = stored
                if stored.version == 6 and stored.subnet_of(ipaddress.ip_network("::/96")):
                    # ipv4_compatible databases keep IPv4 under ::/96
                    network = ipaddress.ip_network((int(stored.network_address), stored.prefixlen - 96))
                found[str(network)] = (
                    rec["country"]["iso_code"],
                    rec["autonomous_system_number"],
                    rec["autonomous_system_organization"],
                )
            assert found == LAB_CONTRACT, path


def as_record(country: str, asn: int, org: str) -> dict[str, object]:
    return {
        "country": {"iso_code": country},
        "autonomous_system_number": asn,
        "autonomous_system_organization": org,
    }


def fields(info: NetInfo) -> tuple[object, ...]:
    return (info.country, info.asn, info.org, info.network, info.source)


def test_user_database_wins_over_builtin(tmp_path: Path) -> None:
    path = write_mmdb(tmp_path / "o.mmdb", {"8.8.8.0/24": as_record("fr", 65000, "Test Org")})
    with GeoResolver([path]) as resolver:
        info = resolver.lookup("8.8.8.8")
    assert fields(info) == ("FR", 65000, "Test Org", "8.8.8.0/24", "mmdb")


def test_country_only_database_keeps_builtin_network(tmp_path: Path) -> None:
    path = write_mmdb(tmp_path / "c.mmdb", {"8.8.0.0/16": {"country": {"iso_code": "JP"}}})
    with GeoResolver([path]) as resolver:
        info = resolver.lookup("8.8.8.8")
    assert (info.country, info.source) == ("JP", "mmdb+geoip2fast")
    assert info.org


def test_first_database_wins_per_field(tmp_path: Path) -> None:
    first = write_mmdb(tmp_path / "c.mmdb", {"203.0.113.0/24": {"country": {"iso_code": "SE"}}})
    second = write_mmdb(tmp_path / "a.mmdb", {"203.0.113.0/25": as_record("NO", 65001, "Second")})
    with GeoResolver([first, second], builtin=False) as resolver:
        info = resolver.lookup("203.0.113.5")
    assert fields(info) == ("SE", 65001, "Second", "203.0.113.0/25", "mmdb")


def test_unknown_country_codes_and_flat_records(tmp_path: Path) -> None:
    path = write_mmdb(
        tmp_path / "odd.mmdb",
        {
            "127.0.0.0/8": {"country": {"iso_code": "ZZ"}},
            "192.0.2.0/24": {"country_code": "DK", "asn": "AS64510", "as_name": "Flat Net"},
            "198.51.100.0/24": {"country": {"iso_code": "not a code"}},
        },
    )
    with GeoResolver([path], builtin=False) as resolver:
        loop, flat, odd = (resolver.lookup(ip) for ip in ("127.0.0.1", "192.0.2.9", "198.51.100.9"))
    assert fields(loop) == (None, None, None, "127.0.0.0/24", "scope")
    assert fields(flat) == ("DK", 64510, "Flat Net", "192.0.2.0/24", "mmdb")
    assert fields(odd) == (None, None, None, "198.51.100.0/24", "scope")


# --- bad databases --------------------------------------------------------------


def _corrupt_variants(tmp_path: Path) -> dict[str, Path]:
    good = LAB_DB.read_bytes()
    tree_flipped = bytearray(good)
    for i in range(0, 600, 3):
        tree_flipped[i] ^= 0xFF
    files = {
        "empty": b"",
        "text": b"not a database\n" * 50,
        "truncated": good[: len(good) // 3],
        "gzip": gzip.compress(good),
        "tree": bytes(tree_flipped),
    }
    out = {}
    for name, content in files.items():
        out[name] = tmp_path / f"{name}.mmdb"
        out[name].write_bytes(content)
    out["directory"] = tmp_path
    out["missing"] = tmp_path / "nope.mmdb"
    return out


@pytest.mark.parametrize("kind", ["empty", "text", "truncated", "gzip", "tree", "directory", "missing"])
def test_bad_database_raises_geo_error(tmp_path: Path, kind: str) -> None:
    path = _corrupt_variants(tmp_path)[kind]
    with pytest.raises(GeoError) as err:
        GeoResolver([str(LAB_DB), str(path)])
    assert str(path) in str(err.value)
    if kind == "gzip":
        assert "extract" in str(err.value)


def test_corruption_found_mid_run_raises_geo_error() -> None:
    from maxminddb.errors import InvalidDatabaseError

    resolver = GeoResolver([str(LAB_DB)], builtin=False)

    def broken(ip: str) -> Any:
        raise InvalidDatabaseError("search tree is corrupt")

    fake = SimpleNamespace(get_with_prefix_len=broken, close=lambda: None)
    resolver._databases[0]._reader = fake  # type: ignore[assignment]
    with pytest.raises(GeoError, match="corrupt"):
        resolver.lookup("203.0.113.5")


def test_a_single_path_string_is_refused() -> None:
    with pytest.raises(TypeError):
        GeoResolver(str(LAB_DB))


# --- memo, built-in table behaviour, describe ----------------------------------------


def test_lru_is_bounded() -> None:
    resolver = GeoResolver(builtin=False, cache_size=8)
    for i in range(20):
        resolver.lookup(f"10.0.0.{i}")
    resolver.lookup("10.0.0.19")
    resolver.lookup("y" * 1000)  # never cached
    cache = resolver.describe()["cache"]
    assert cache == {"max_entries": 8, "entries": 8, "hits": 1, "misses": 20, "evicted": 12}


class _FakeGeoIP2Fast:
    def __init__(self, answers: dict[str, tuple[str, str]]) -> None:
        self.answers = answers
        self.source_info = "FAKE-20200101"

    def lookup(self, ip: str) -> SimpleNamespace:
        name, cidr = self.answers.get(ip, ("", ""))
        return SimpleNamespace(asn_name=name, asn_cidr=cidr)


def test_neighbour_block_answers_are_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _FakeGeoIP2Fast(
        {"145.183.88.74": ("SURF B.V.", "145.144.0.0/12"), "8.8.8.8": ("GOOGLE", "8.8.8.0/24")}
    )
    table = NetworkTable()
    monkeypatch.setattr(builtin, "_open_geoip2fast", lambda: fake)
    monkeypatch.setattr(builtin, "NETWORK_TABLE", table)
    resolver = GeoResolver()
    wrong = resolver.lookup("145.183.88.74")
    assert (wrong.org, wrong.network, wrong.source) == (None, "145.183.88.0/24", "iptocc")
    assert resolver.lookup("8.8.8.8").network == "8.8.8.0/24"
    assert table.describe()["data_date"] == "2020-01-01"


def test_lazy_load_happens_once_across_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def slow_open() -> _FakeGeoIP2Fast:
        calls.append(1)
        time.sleep(0.05)
        return _FakeGeoIP2Fast({f"8.8.8.{i}": ("GOOGLE", "8.8.8.0/24") for i in range(64)})

    monkeypatch.setattr(builtin, "_open_geoip2fast", slow_open)
    monkeypatch.setattr(builtin, "NETWORK_TABLE", NetworkTable())
    resolver = GeoResolver(cache_size=0)
    results: list[NetInfo] = []

    def work(n: int) -> None:
        results.extend(resolver.lookup(f"8.8.8.{(n * 7 + i) % 64}") for i in range(50))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert len(results) == 400
    assert all(r.org == "GOOGLE" and r.country == "US" for r in results)


def test_load_failure_degrades_to_country_only(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def broken_open() -> None:
        calls.append(1)
        raise FileNotFoundError("data file missing")

    table = NetworkTable()
    monkeypatch.setattr(builtin, "_open_geoip2fast", broken_open)
    monkeypatch.setattr(builtin, "NETWORK_TABLE", table)
    resolver = GeoResolver()
    first, second = resolver.lookup("8.8.8.8"), resolver.lookup("1.1.1.1")
    assert (first.country, first.org, first.source) == ("US", None, "iptocc")
    assert second.org is None
    assert len(calls) == 1
    assert "data file missing" in str(table.describe()["error"])


def test_describe(lab: GeoResolver) -> None:
    lab.lookup("8.8.8.8")
    info = lab.describe()
    json.dumps(info)  # must be JSON-ready for the report
    databases = info["mmdb"]
    assert isinstance(databases, list) and len(databases) == 1
    db = databases[0]
    assert db["path"] == str(LAB_DB)
    assert db["database_type"] == "mailwarden-Lab-City-ASN"
    assert db["built"] == "2026-01-01T00:00:00+00:00"
    country = info["builtin"]["country"]  # type: ignore[index]
    assert country["package"] == "iptocc"
    assert country["version"]
    network = info["builtin"]["network"]  # type: ignore[index]
    assert network["file"] == "geoip2fast-asn-ipv6.dat.gz"
    assert network["loaded"] is True
    assert network["error"] is None
    assert len(network["data_date"]) == 10


def test_builtin_load_is_silent_and_leaves_environment_alone() -> None:
    """geoip2fast sets PYTHONWARNINGS on import and spawns ``ps`` on load: neither may leak."""
    code = (
        "import os, subprocess\n"
        "started = []\n"
        "subprocess.check_output = lambda *a, **k: started.append(a)\n"
        "from mailwarden.enrich import GeoResolver\n"
        "info = GeoResolver().lookup('8.8.8.8')\n"
        "assert info.org, info\n"
        "assert not started, started\n"
        "assert 'PYTHONWARNINGS' not in os.environ\n"
        "assert 'PYTHONIOENCODING' not in os.environ\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONWARNINGS", "PYTHONIOENCODING")}
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


# --- value type and public API ------------------------------------------------------


def test_netinfo_is_frozen_and_serialisable() -> None:
    info = NetInfo("192.0.2.1", "documentation", "DE", 64496, "Beispiel", "192.0.2.0/25", "mmdb")
    with pytest.raises(AttributeError):
        info.country = "FR"  # type: ignore[misc]
    assert info.to_dict()["asn"] == 64496
    assert info.label() == "DE Beispiel"


def test_public_api() -> None:
    assert set(mailwarden.enrich.__all__) == {
        "DEFAULT_CACHE_SIZE",
        "SCOPES",
        "GeoError",
        "GeoResolver",
        "NetInfo",
    }
