"""Country and network of an address, offline, from user and built-in databases.

Precedence, per field: the user's ``.mmdb`` files in the order given, then the
built-in data (iptocc for the country, geoip2fast for the AS block), then the
/24 or /48 fallback for the network. A user database is asked about every
valid address, private and documentation ranges included, so a lab database
can place 203.0.113.0/24 in a country; the built-in data is asked only about
public addresses, where it has anything to say.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from types import TracebackType

from mailwarden.enrich import builtin as builtin_data
from mailwarden.enrich.mmdb import MmdbDatabase
from mailwarden.enrich.netinfo import GeoError, NetInfo
from mailwarden.enrich.scope import MAX_INPUT_LEN, classify, fallback_network, parse

DEFAULT_CACHE_SIZE = 65_536
"""Memoised answers per resolver. One entry costs about 0.45 KiB, so the bound
holds the cache near 30 MiB; 65,536 distinct clients covers a busy server's
day, and a botnet beyond that only costs re-lookups (~10 µs each), not memory."""


class GeoResolver:
    """Answers ``lookup(ip)`` from the configured databases; safe to share between threads.

    ``mmdb_paths`` are opened now and a bad one raises ``GeoError``.
    ``builtin=False`` skips iptocc and geoip2fast (user databases and scopes only).
    """

    def __init__(
        self,
        mmdb_paths: Sequence[str] = (),
        *,
        builtin: bool = True,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        if isinstance(mmdb_paths, str):
            raise TypeError("mmdb_paths is a sequence of paths, not one path")
        if cache_size < 0:
            raise ValueError("cache_size must be >= 0")
        self._use_builtin = builtin
        self._cache_size = cache_size
        self._databases: list[MmdbDatabase] = []
        try:
            for path in mmdb_paths:
                self._databases.append(MmdbDatabase(str(path)))
        except GeoError:
            self.close()
            raise
        self._cached = functools.lru_cache(maxsize=cache_size)(self._resolve)

    def lookup(self, ip: str) -> NetInfo:
        """Where ``ip`` is. Never raises for bad input (scope ``invalid``).

        Memoised in an LRU of ``cache_size`` entries (``DEFAULT_CACHE_SIZE``).
        Inputs longer than any address are answered without parsing or caching,
        so junk cannot push real addresses out of the cache.
        """
        if not isinstance(ip, str) or len(ip) > MAX_INPUT_LEN:
            return _invalid(ip)
        return self._cached(ip)

    def _resolve(self, ip: str) -> NetInfo:
        addr = parse(ip)
        if addr is None:
            return _invalid(ip)
        scope = classify(addr)
        country: str | None = None
        asn: int | None = None
        org: str | None = None
        network: str | None = None
        sources: list[str] = []
        for database in self._databases:
            answer = database.lookup(addr)
            if answer is None:
                continue
            if country is None and answer.country is not None:
                country = answer.country
                _add(sources, "mmdb")
            if asn is None and org is None and (answer.asn is not None or answer.org):
                asn, org, network = answer.asn, answer.org, answer.network
                _add(sources, "mmdb")
        if scope == "public" and self._use_builtin:
            if country is None:
                country = builtin_data.country(addr)
                if country is not None:
                    sources.append("iptocc")
            if asn is None and org is None:
                org, network = builtin_data.NETWORK_TABLE.lookup(addr)
                if org is not None:
                    sources.append("geoip2fast")
        nobody = "scope" if scope != "public" else "none"
        return NetInfo(
            ip=str(addr),
            scope=scope,
            country=country,
            asn=asn,
            org=org,
            network=network or fallback_network(addr),
            source="+".join(sources) or nobody,
        )

    def describe(self) -> dict[str, object]:
        """Which databases answer and how old they are, for the report's sources section.

        Does not load the built-in network table: ``loaded`` says whether any
        public address needed it, and its data date is known only once loaded.
        """
        info = self._cached.cache_info()
        out: dict[str, object] = {
            "mmdb": [database.describe() for database in self._databases],
            "builtin": None,
            "cache": {
                "max_entries": self._cache_size,
                "entries": info.currsize,
                "hits": info.hits,
                "misses": info.misses,
                "evicted": max(0, info.misses - info.currsize) if self._cache_size else 0,
            },
        }
        if self._use_builtin:
            out["builtin"] = {
                "country": builtin_data.describe_country_data(),
                "network": builtin_data.NETWORK_TABLE.describe(),
            }
        return out

    def cache_clear(self) -> None:
        """Forget memoised answers (after swapping a database file, say)."""
        self._cached.cache_clear()

    def close(self) -> None:
        """Release the ``.mmdb`` files (their maps and descriptors)."""
        for database in self._databases:
            database.close()

    def __enter__(self) -> GeoResolver:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _add(sources: list[str], name: str) -> None:
    if name not in sources:
        sources.append(name)


def _invalid(ip: object) -> NetInfo:
    text = ip if isinstance(ip, str) else repr(ip)
    return NetInfo(
        ip=text[:MAX_INPUT_LEN],
        scope="invalid",
        country=None,
        asn=None,
        org=None,
        network=None,
        source="scope",
    )


__all__ = ["DEFAULT_CACHE_SIZE", "GeoError", "GeoResolver", "NetInfo"]
