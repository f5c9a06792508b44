"""Enrichment: what the pipeline knows about an address beyond the log line.

``GeoResolver(mmdb_paths).lookup(ip) -> NetInfo`` gives country, AS and
network offline; see ``docs/enrich.md`` for the data and its age.
"""

from mailwarden.enrich.geoip import DEFAULT_CACHE_SIZE, GeoResolver
from mailwarden.enrich.netinfo import SCOPES, GeoError, NetInfo

__all__ = ["DEFAULT_CACHE_SIZE", "SCOPES", "GeoError", "GeoResolver", "NetInfo"]
