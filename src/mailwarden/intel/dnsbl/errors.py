"""The exceptions of ``mailwarden.intel.dnsbl``.

DnsblError                  anything the dnsbl commands report as a usage/setup error (exit 2)
├── ZoneFileError           a blocklist data file (TOML) is malformed or fails validation
├── TargetError             a TARGET is neither an IP address nor a domain name
├── ResolverError           a --resolver value cannot be parsed
└── HistoryError            the history database cannot be opened, is too new, or is corrupt
"""

from __future__ import annotations


class DnsblError(Exception):
    """A problem the operator must fix before a blocklist check can run."""


class ZoneFileError(DnsblError):
    """A blocklist data file is malformed or fails validation."""


class TargetError(DnsblError):
    """A target is neither an IP address nor a valid domain name."""


class ResolverError(DnsblError):
    """A resolver address cannot be parsed."""


class HistoryError(DnsblError):
    """The history database cannot be used."""
