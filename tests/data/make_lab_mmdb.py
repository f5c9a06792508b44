#!/usr/bin/env python3
"""Build the lab GeoIP database: documentation ranges placed in countries and ASes.

No real database knows 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24 or
2001:db8::/32, which is exactly why tests and the demo incident use them: a
lab Postfix can be told (XCLIENT) that a login came from 203.0.113.70, and
this database then says "Italy, AS64501" without touching a real customer's
address. Country and AS fields live in one GeoLite2-City-shaped record so a
single ``--geoip-db`` serves both.

The output is byte-for-byte reproducible (fixed build date), so the committed
copies (``examples/lab-geo.mmdb``, ``tests/data/lab-geo.mmdb``) can be checked
against this script by a test.

usage: make_lab_mmdb.py OUT.mmdb   (needs the test extras: mmdb-writer, netaddr)
"""

from __future__ import annotations

import argparse
from typing import Any

from mmdb_writer import MmdbU32, MMDBWriter
from netaddr import IPSet

BUILD_EPOCH = 1767225600  # 2026-01-01T00:00:00Z: fixed so rebuilding changes no byte

COUNTRY_NAMES = {
    "BR": "Brazil",
    "CN": "China",
    "DE": "Germany",
    "FR": "France",
    "IN": "India",
    "IT": "Italy",
    "NG": "Nigeria",
    "RU": "Russia",
}

# CIDR -> (country, ASN, AS organisation). The demo incident depends on this exact map.
LAB_MAP: dict[str, tuple[str, int, str]] = {
    "203.0.113.0/26": ("IN", 64500, "Example Telecom India"),
    "203.0.113.64/26": ("IT", 64501, "Esempio Rete IT"),
    "203.0.113.128/26": ("BR", 64502, "Exemplo Net BR"),
    "203.0.113.192/26": ("NG", 64503, "Example Lagos Net"),
    "198.51.100.0/25": ("RU", 64504, "Primer Set RU"),
    "198.51.100.128/25": ("CN", 64505, "Example Backbone CN"),
    "192.0.2.0/25": ("DE", 64496, "Beispiel Hosting DE"),  # the company's own ISP
    "192.0.2.128/25": ("FR", 64497, "Exemple Mobile FR"),
    "2001:db8:bad::/48": ("NG", 64503, "Example Lagos Net"),
    "2001:db8:1::/48": ("DE", 64496, "Beispiel Hosting DE"),
}


class _ReproducibleWriter(MMDBWriter):
    """mmdb-writer stamps ``time.time()`` into the metadata; pin it instead."""

    def _build_meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = super()._build_meta()
        meta["build_epoch"] = BUILD_EPOCH
        return meta


def record(country: str, asn: int, org: str) -> dict[str, Any]:
    """A GeoLite2-City-like record plus the GeoLite2-ASN fields."""
    place = {"iso_code": country, "names": {"en": COUNTRY_NAMES[country]}}
    return {
        "country": place,
        "registered_country": place,
        "autonomous_system_number": MmdbU32(asn),
        "autonomous_system_organization": org,
    }


def build(out: str) -> None:
    writer = _ReproducibleWriter(
        ip_version=6,
        ipv4_compatible=True,
        database_type="mailwarden-Lab-City-ASN",
        languages=["en"],
        description={"en": "mailwarden lab database: documentation ranges only, not real data"},
    )
    for cidr, (country, asn, org) in LAB_MAP.items():
        writer.insert_network(IPSet([cidr]), record(country, asn, org))
    writer.to_db_file(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("out", help="where to write the .mmdb file")
    build(parser.parse_args().out)


if __name__ == "__main__":
    main()
