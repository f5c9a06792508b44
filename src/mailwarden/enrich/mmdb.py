"""A user-supplied MaxMind DB (``.mmdb``): GeoLite2/GeoIP2 Country, City or ASN.

The file is opened when the resolver is built, not at the first lookup, so a
wrong ``--geoip-db`` path stops the run before any log is read (CLI exit 2)
instead of half-way through a report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import maxminddb
from maxminddb.errors import InvalidDatabaseError

from mailwarden.enrich.netinfo import GeoError, normalise_country
from mailwarden.enrich.scope import Address, network_of

_PROBES = ("8.8.8.8", "1.1.1.1", "203.0.113.1", "2001:db8::1", "2a00:1450::1")
"""Looked up once at open: a corrupt search tree fails here rather than mid-run.
The C reader checks the metadata on open but walks the tree only on lookup."""


@dataclass(frozen=True, slots=True)
class MmdbAnswer:
    """The fields one database knew for one address; ``network`` goes with the AS."""

    country: str | None
    asn: int | None
    org: str | None
    network: str | None


class MmdbDatabase:
    """One open ``.mmdb`` file; reads MaxMind field names and IPinfo's flat ones."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self._reader = maxminddb.open_database(path, maxminddb.MODE_AUTO)
        except FileNotFoundError:
            raise GeoError(f"GeoIP database {path}: no such file") from None
        except PermissionError:
            raise GeoError(f"GeoIP database {path}: permission denied") from None
        except (InvalidDatabaseError, OSError, ValueError) as exc:
            raise GeoError(f"GeoIP database {path}: {_why_invalid(path, exc)}") from None
        try:
            for probe in _PROBES:
                self._get(probe)
        except GeoError:
            self._reader.close()
            raise

    def _get(self, ip: str) -> tuple[object, int] | None:
        try:
            return self._reader.get_with_prefix_len(ip)
        except ValueError:
            return None  # an IPv6 address asked of an IPv4-only database
        except InvalidDatabaseError as exc:
            raise GeoError(f"GeoIP database {self.path} is corrupt: {exc}") from None

    def lookup(self, addr: Address) -> MmdbAnswer | None:
        """What this database says about ``addr``; raises ``GeoError`` if the file is corrupt."""
        found = self._get(str(addr))
        if found is None:
            return None
        record, prefix_len = found
        if not isinstance(record, Mapping):
            return None
        country = _country(record)
        asn, org = _autonomous_system(record)
        if country is None and asn is None and org is None:
            return None
        network = network_of(addr, prefix_len) if asn is not None or org is not None else None
        return MmdbAnswer(country=country, asn=asn, org=org, network=network)

    def describe(self) -> dict[str, object]:
        """Type, build date and shape of the file, for the report's sources section."""
        meta = self._reader.metadata()
        description = meta.description.get("en") if isinstance(meta.description, dict) else None
        return {
            "path": self.path,
            "database_type": meta.database_type,
            "built": datetime.fromtimestamp(meta.build_epoch, UTC).isoformat(),
            "ip_version": meta.ip_version,
            "description": description,
            "node_count": meta.node_count,
        }

    def close(self) -> None:
        self._reader.close()


def _why_invalid(path: str, exc: Exception) -> str:
    """Turn the reader's generic complaint into a hint for the usual mistakes."""
    target = Path(path)
    if target.is_dir():
        return "is a directory, not a .mmdb file"
    try:
        with target.open("rb") as fh:
            head = fh.read(4)
    except OSError as err:
        return f"cannot read: {err.strerror or err}"
    if not head:
        return "file is empty"
    if head[:2] == b"\x1f\x8b":
        return "is gzip-compressed (a GeoLite2 .tar.gz?); extract the .mmdb file from it"
    if isinstance(exc, InvalidDatabaseError):
        return "not a valid MaxMind DB (.mmdb) file"
    return str(exc)


def _country(record: Mapping[str, object]) -> str | None:
    """Where the block is (``country``), else where it is registered."""
    for key in ("country", "registered_country"):
        value = record.get(key)
        if isinstance(value, Mapping):
            code = normalise_country(value.get("iso_code"))
            if code:
                return code
    return normalise_country(record.get("country_code"))  # IPinfo-style flat records


def _autonomous_system(record: Mapping[str, object]) -> tuple[int | None, str | None]:
    asn_value = record.get("autonomous_system_number", record.get("asn"))
    asn: int | None = None
    if isinstance(asn_value, int) and not isinstance(asn_value, bool) and asn_value > 0:
        asn = asn_value
    elif isinstance(asn_value, str):
        digits = asn_value.upper().removeprefix("AS")
        ok = digits.isascii() and digits.isdigit() and len(digits) <= 10
        asn = int(digits) if ok else None
    org_value = record.get("autonomous_system_organization", record.get("as_name"))
    org = org_value.strip() if isinstance(org_value, str) and org_value.strip() else None
    return asn, org
