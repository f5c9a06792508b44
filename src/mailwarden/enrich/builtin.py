"""The data that ships with the installed packages: no download, no network.

Country comes from ``iptocc`` (RIR delegation files, republished with every
iptocc release) because it is fresh; network and organisation come from
``geoip2fast``'s GeoLite2-derived ASN table because iptocc has none. The
geoip2fast data is frozen at the package release (2024-06), which is good
enough for "which provider" but not for "which country".

geoip2fast needs taming, and all of it happens here:

* it keeps its tables in module globals, so every ``GeoIP2Fast`` object in a
  process shares the last file loaded; we load once per process (the data
  costs ~100 MiB) and share it between resolvers;
* given a bare file name it looks in the *current directory* first and
  unpickles what it finds there; we always pass the package's absolute path;
* it spawns ``ps`` twice per load to measure its own memory; we swap that
  probe out for the duration of the load (only ``_proc.py`` runs programs);
* importing it sets ``PYTHONWARNINGS=ignore`` in ``os.environ`` for every
  child process; we put the environment back;
* for IPv4 addresses with no AS it returns the *previous* AS block; we keep
  an AS block only if it contains the address.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import io
import json
import os
import threading
import time
from importlib import metadata
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import iptocc

from mailwarden.enrich.netinfo import normalise_country
from mailwarden.enrich.scope import Address

GEOIP2FAST_FILE = "geoip2fast-asn-ipv6.dat.gz"
"""Country+ASN, IPv4+IPv6: ~4.5 MB on disk, ~100 MiB resident, ~0.2 s to load.
The IPv4-only ASN file costs ~70 MiB, saving ~35 MiB, but leaves IPv6 clients without a network."""

IPTOCC_DATA = "RIR delegated-extended statistics (AFRINIC, APNIC, ARIN, LACNIC, RIPE NCC)"
_ENV_TOUCHED_ON_IMPORT = ("PYTHONWARNINGS", "PYTHONIOENCODING")


def country(addr: Address) -> str | None:
    """ISO code of the RIR delegation for a public address (where registered, not used)."""
    try:
        return normalise_country(iptocc.country_code(str(addr)))
    except (ValueError, TypeError):
        return None


def _no_memory_probe() -> float:
    return 0.0


class NetworkTable:
    """geoip2fast's AS table, loaded on first use and shared by the whole process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._db: Any = None
        self._tried = False
        self.error: str | None = None
        self.load_seconds: float | None = None
        self.data_version: str | None = None

    @property
    def loaded(self) -> bool:
        return self._db is not None

    def load(self) -> bool:
        """Load now (idempotent); ``False`` if the data is unusable, see ``error``.

        A failure is remembered rather than retried: a broken install would
        otherwise cost a full load attempt per address.
        """
        if self._tried:
            return self._db is not None
        with self._lock:
            if not self._tried:
                started = time.perf_counter()
                try:
                    self._db = _open_geoip2fast()
                    self.data_version = str(getattr(self._db, "source_info", "")) or None
                except Exception as exc:  # third-party loader: anything may come out
                    self.error = f"{type(exc).__name__}: {exc}"
                self.load_seconds = round(time.perf_counter() - started, 3)
                self._tried = True
        return self._db is not None

    def lookup(self, addr: Address) -> tuple[str | None, str | None]:
        """(organisation, AS block CIDR) for a public address, or ``(None, None)``."""
        if not self.load():
            return None, None
        try:
            detail = self._db.lookup(str(addr))
        except Exception:  # it traps its own errors; a daemon must not die if it misses one
            return None, None
        name = getattr(detail, "asn_name", "")
        cidr = getattr(detail, "asn_cidr", "")
        if not isinstance(name, str) or not isinstance(cidr, str) or not name or not cidr:
            return None, None
        block = _block(cidr)
        value = int(addr)
        if block is None or block[0] != addr.version or not block[1] <= value <= block[2]:
            return None, None  # geoip2fast's neighbour-block answer, see module docstring
        return name.strip() or None, block[3]

    def describe(self) -> dict[str, object]:
        return {
            "package": "geoip2fast",
            "version": _version("geoip2fast"),
            "file": GEOIP2FAST_FILE,
            "loaded": self.loaded,
            "data": self.data_version,
            "data_date": _date_suffix(self.data_version),
            "load_seconds": self.load_seconds,
            "error": self.error,
            "licence": "GeoLite2 data by MaxMind (GeoLite2 EULA, CC BY-SA 4.0 attribution)",
        }


@functools.lru_cache(maxsize=4096)
def _block(cidr: str) -> tuple[int, int, int, str] | None:
    """(version, first, last, canonical text) of a CIDR; cached because clients
    cluster in few provider blocks and parsing is half the cost of a lookup."""
    try:
        net = ip_network(cidr, strict=False)
    except ValueError:
        return None
    return net.version, int(net.network_address), int(net.broadcast_address), str(net)


def _open_geoip2fast() -> Any:
    saved = {name: os.environ.get(name) for name in _ENV_TOUCHED_ON_IMPORT}
    chatter = io.StringIO()
    try:
        with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter):
            module: Any = importlib.import_module("geoip2fast.geoip2fast")
            path = Path(str(module.__file__)).resolve().parent / GEOIP2FAST_FILE
            if not path.is_file():
                raise FileNotFoundError(f"{path} is missing from the geoip2fast install")
            real_probe = module.get_mem_usage
            module.get_mem_usage = _no_memory_probe
            try:
                return module.GeoIP2Fast(verbose=False, geoip2fast_data_file=str(path))
            finally:
                module.get_mem_usage = real_probe
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def describe_country_data() -> dict[str, object]:
    """iptocc's version and build time; its data is the RIR files of that day."""
    return {
        "package": "iptocc",
        "version": _version("iptocc"),
        "built": _iptocc_build_time(),
        "data": IPTOCC_DATA,
        "licence": "iptocc: MIT OR Apache-2.0; data: public RIR statistics files",
    }


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _iptocc_build_time() -> str | None:
    """Timestamp of the wheel's CycloneDX SBOM: the nearest thing to a data date it has.

    iptocc is rebuilt and released when the nightly RIR refresh changes its
    tables, so its build time bounds the age of its data.
    """
    try:
        dist = metadata.distribution("iptocc")
        for file in dist.files or ():
            if file.name.endswith(".cyclonedx.json"):
                sbom = json.loads(file.read_text(encoding="utf-8"))
                stamp = sbom.get("metadata", {}).get("timestamp")
                return str(stamp) if stamp else None
    except (metadata.PackageNotFoundError, OSError, ValueError, AttributeError):
        return None
    return None


def _date_suffix(version: str | None) -> str | None:
    """``...-20240618`` → ``2024-06-18`` (geoip2fast names its data after the GeoLite2 CSV)."""
    if not version:
        return None
    tail = version.rsplit("-", 1)[-1]
    if len(tail) != 8 or not tail.isdigit():
        return None
    return f"{tail[:4]}-{tail[4:6]}-{tail[6:]}"


NETWORK_TABLE = NetworkTable()
"""The one table per process (see module docstring for why not one per resolver)."""
