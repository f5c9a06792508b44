"""Are we listed, where, why -- and how to get off (DNS blocklists).

Modules, each small and, except ``check``/``discover``/``history``, free of I/O:

* ``zones``    -- the curated catalogue (``data/dnsbl_zones.toml``) and its strict validation
* ``targets``  -- targets and query names (reversed IPv4 octets, IPv6 nibbles, IDNA domains)
* ``answers``  -- what an answer means: listed / not listed / unknown
* ``model``    -- result dataclasses
* ``check``    -- the concurrent lookup engine (dns.asyncresolver, per-query timeout, deadline)
* ``discover`` -- this server's own addresses and domains (postconf, ``ip -j addr``)
* ``history``  -- SQLite history of checks and notes
* ``replies``  -- which list a remote rejection cites
* ``report``   -- terminal rendering; ``commands`` -- what the CLI sub-commands do

The names below are the public API. They are loaded on first use, so that
importing the package (as the CLI does to build its parser) costs nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mailwarden.intel.dnsbl.answers import Outcome, interpret
    from mailwarden.intel.dnsbl.check import CheckOptions, ResolverAddress, check, check_async, parse_resolver
    from mailwarden.intel.dnsbl.errors import (
        DnsblError,
        HistoryError,
        ResolverError,
        TargetError,
        ZoneFileError,
    )
    from mailwarden.intel.dnsbl.model import CheckReport, Problem, Status, ZoneResult
    from mailwarden.intel.dnsbl.replies import zone_for_reply
    from mailwarden.intel.dnsbl.targets import Target, parse_target, query_name
    from mailwarden.intel.dnsbl.zones import Catalogue, CodeInfo, ErrorCode, ZoneInfo, load_catalogue

_WHERE = {
    "answers": ("Outcome", "interpret"),
    "check": ("CheckOptions", "ResolverAddress", "check", "check_async", "parse_resolver"),
    "errors": ("DnsblError", "HistoryError", "ResolverError", "TargetError", "ZoneFileError"),
    "model": ("CheckReport", "Problem", "Status", "ZoneResult"),
    "replies": ("zone_for_reply",),
    "targets": ("Target", "parse_target", "query_name"),
    "zones": ("Catalogue", "CodeInfo", "ErrorCode", "ZoneInfo", "load_catalogue"),
}
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names}

__all__ = [
    "Catalogue",
    "CheckOptions",
    "CheckReport",
    "CodeInfo",
    "DnsblError",
    "ErrorCode",
    "HistoryError",
    "Outcome",
    "Problem",
    "ResolverAddress",
    "ResolverError",
    "Status",
    "Target",
    "TargetError",
    "ZoneFileError",
    "ZoneInfo",
    "ZoneResult",
    "check",
    "check_async",
    "interpret",
    "load_catalogue",
    "parse_resolver",
    "parse_target",
    "query_name",
    "zone_for_reply",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
