"""The blocklist catalogue: which DNS zones we ask, and what their answers mean.

The curated data lives in ``mailwarden/data/dnsbl_zones.toml`` (format in
``docs/dnsbl.md``); ``--zones FILE`` adds lists or replaces them by name.
Validation is strict -- an unknown key is an error with a "did you mean"
hint -- because a misspelt ``errors`` table would silently turn "your resolver
is blocked" into "listed", which is exactly the mistake this module exists to
prevent.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, cast

from mailwarden.intel.dnsbl.errors import ZoneFileError

Kind = Literal["ip", "domain", "any"]
Match = Literal["exact", "bitmask"]
ErrorKind = Literal["error", "resolver_blocked", "rate_limited"]

SCHEMA = 1
ERROR_KINDS: tuple[ErrorKind, ...] = ("error", "resolver_blocked", "rate_limited")
_TOP_KEYS = ("schema", "list")
_LIST_KEYS = (
    "name",
    "title",
    "operator",
    "zone",
    "kind",
    "ipv6",
    "match",
    "severity",
    "codes",
    "errors",
    "lookup",
    "delisting",
    "docs",
    "reply_patterns",
    "retired",
    "retired_note",
)
_REQUIRED = ("name", "zone", "kind", "severity")
_CODE_KEYS = ("meaning", "severity", "delisting")
_ERROR_KEYS = ("kind", "meaning")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


@dataclass(frozen=True, slots=True)
class CodeInfo:
    """One documented listing answer (an A record in 127.0.0.0/8) and what it means."""

    address: str
    meaning: str
    severity: int | None = None
    delisting: str | None = None


@dataclass(frozen=True, slots=True)
class ErrorCode:
    """An answer that is not a listing but a refusal or error from the list operator."""

    address: str
    kind: ErrorKind
    meaning: str


@dataclass(frozen=True, slots=True)
class ZoneInfo:
    """One blocklist: its zone, how to query it and how to read its answers."""

    name: str
    zone: str
    kind: Kind
    severity: int
    title: str = ""
    operator: str = ""
    ipv6: bool = False
    match: Match = "exact"
    codes: tuple[CodeInfo, ...] = ()
    errors: tuple[ErrorCode, ...] = ()
    lookup: str | None = None
    delisting: str = ""
    docs: str | None = None
    reply_patterns: tuple[str, ...] = ()
    retired: bool = False
    retired_note: str = ""
    adhoc: bool = False

    @property
    def label(self) -> str:
        return self.title or self.name

    def code(self, address: str) -> CodeInfo | None:
        for c in self.codes:
            if c.address == address:
                return c
        return None

    def error(self, address: str) -> ErrorCode | None:
        for e in self.errors:
            if e.address == address:
                return e
        return None

    def applies_to(self, target_kind: str) -> bool:
        """Whether a target of this kind (``ip4``, ``ip6``, ``domain``) is looked up in this zone."""
        if self.kind == "any":
            return True
        if self.kind == "domain":
            return target_kind == "domain"
        if target_kind == "ip6":
            return self.ipv6
        return target_kind == "ip4"

    def lookup_url(self, target: str) -> str | None:
        if not self.lookup:
            return None
        return self.lookup.replace("{target}", target)


@dataclass(frozen=True, slots=True)
class Catalogue:
    """The lists in force: the bundled data plus any ``--zones`` files, in file order."""

    lists: tuple[ZoneInfo, ...] = field(default=())

    def active(self) -> tuple[ZoneInfo, ...]:
        return tuple(z for z in self.lists if not z.retired)

    def find(self, name_or_zone: str) -> ZoneInfo | None:
        key = name_or_zone.strip().lower().rstrip(".")
        for z in self.lists:
            if key in (z.name, z.zone):
                return z
        return None

    def merged(self, extra: Iterable[ZoneInfo]) -> Catalogue:
        """A catalogue with ``extra`` lists added, replacing same-named (or same-zone) ones in place."""
        lists = list(self.lists)
        for z in extra:
            for i, old in enumerate(lists):
                if old.name == z.name or old.zone == z.zone:
                    lists[i] = z
                    break
            else:
                lists.append(z)
        return Catalogue(tuple(lists))


def bundled_text() -> str:
    return (resources.files("mailwarden") / "data" / "dnsbl_zones.toml").read_text(encoding="utf-8")


def load_catalogue(extra_files: Sequence[str | Path] = ()) -> Catalogue:
    """The bundled lists, then each ``--zones`` file merged over them."""
    cat = Catalogue(parse_zones(bundled_text(), "dnsbl_zones.toml (bundled)"))
    for path in extra_files:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ZoneFileError(f"{path}: cannot read: {exc}") from exc
        cat = cat.merged(parse_zones(text, str(path)))
    return cat


def adhoc_zone(zone: str) -> ZoneInfo:
    """A zone given with ``--zone`` that the catalogue does not know: any target kind, generic reading."""
    name = normalise_zone(zone, "--zone")
    return ZoneInfo(name=name, zone=name, kind="any", ipv6=True, severity=5, title=name, adhoc=True)


def normalise_zone(zone: str, where: str) -> str:
    z = zone.strip().lower().rstrip(".")
    labels = z.split(".")
    if len(z) > 200 or len(labels) < 2 or not all(_LABEL.fullmatch(lb) for lb in labels):
        raise ZoneFileError(f"{where}: {zone!r} is not a valid DNS zone name")
    return z


def parse_zones(text: str, source: str) -> tuple[ZoneInfo, ...]:
    """Parse and validate one zones file; raise ZoneFileError naming the file, list and key."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ZoneFileError(f"{source}: not valid TOML: {exc}") from exc
    _check_keys(doc, _TOP_KEYS, source)
    if doc.get("schema") != SCHEMA:
        raise ZoneFileError(f"{source}: 'schema = {SCHEMA}' is required (found {doc.get('schema')!r})")
    raw = doc.get("list", [])
    if not isinstance(raw, list):
        raise ZoneFileError(f"{source}: 'list' must be an array of tables ([[list]])")
    out: list[ZoneInfo] = []
    seen: dict[str, str] = {}
    for i, item in enumerate(raw):
        where = f"{source}: list #{i + 1}"
        if not isinstance(item, dict):
            raise ZoneFileError(f"{where}: must be a table")
        if isinstance(item.get("name"), str):
            where += f" ({item['name']!r})"
        z = _parse_list(item, where)
        for key in (z.name, z.zone):
            if key in seen:
                raise ZoneFileError(f"{where}: {key!r} already defined by {seen[key]}")
            seen[key] = where
        out.append(z)
    return tuple(out)


def _parse_list(item: Mapping[str, Any], where: str) -> ZoneInfo:
    _check_keys(item, _LIST_KEYS, where)
    for key in _REQUIRED:
        if key not in item:
            raise ZoneFileError(f"{where}: missing required key {key!r}")
    name = _str(item, "name", where)
    if not _NAME.fullmatch(name):
        raise ZoneFileError(f"{where}: name must be lower-case letters, digits, '.', '_' or '-'")
    zone = normalise_zone(_str(item, "zone", where), f"{where}: zone")
    kind = _choice(item, "kind", ("ip", "domain"), where)
    match = _choice(item, "match", ("exact", "bitmask"), where, default="exact")
    ipv6 = _bool(item, "ipv6", where)
    if ipv6 and kind != "ip":
        raise ZoneFileError(f"{where}: 'ipv6 = true' only makes sense with kind = \"ip\"")
    retired = _bool(item, "retired", where)
    codes = _codes(item.get("codes", {}), match, f"{where}: codes")
    errors = _errors(item.get("errors", {}), f"{where}: errors")
    clash = {c.address for c in codes} & {e.address for e in errors}
    if clash:
        raise ZoneFileError(f"{where}: {sorted(clash)[0]} is both a listing code and an error")
    if not codes and not retired:
        raise ZoneFileError(f"{where}: a list needs at least one entry under 'codes'")
    lookup = _opt_str(item, "lookup", where)
    if lookup is not None:
        _check_url(lookup, f"{where}: lookup", placeholders=True)
    docs = _opt_str(item, "docs", where)
    if docs is not None:
        _check_url(docs, f"{where}: docs", placeholders=False)
    patterns = item.get("reply_patterns", [])
    if not isinstance(patterns, list) or not all(isinstance(p, str) and p.strip() for p in patterns):
        raise ZoneFileError(f"{where}: reply_patterns must be a list of non-empty strings")
    return ZoneInfo(
        name=name,
        zone=zone,
        kind=cast(Kind, kind),
        severity=_severity(item.get("severity"), f"{where}: severity"),
        title=_opt_str(item, "title", where) or "",
        operator=_opt_str(item, "operator", where) or "",
        ipv6=ipv6,
        match=cast(Match, match),
        codes=codes,
        errors=errors,
        lookup=lookup,
        delisting=_opt_str(item, "delisting", where) or "",
        docs=docs,
        reply_patterns=tuple(dict.fromkeys([zone, *(p.strip().lower() for p in patterns)])),
        retired=retired,
        retired_note=_opt_str(item, "retired_note", where) or "",
    )


def _codes(raw: object, match: str, where: str) -> tuple[CodeInfo, ...]:
    if not isinstance(raw, dict):
        raise ZoneFileError(f'{where}: must be a table of "127.x.y.z" = {{ meaning = ... }}')
    out = []
    for addr, value in raw.items():
        at = f"{where}: {addr!r}"
        _check_answer(addr, at)
        if match == "bitmask":
            last = int(addr.rsplit(".", 1)[1])
            if not addr.startswith("127.0.0.") or last == 0 or last & (last - 1):
                raise ZoneFileError(f"{at}: a bitmask list's codes must be 127.0.0.N with N a power of two")
        spec = {"meaning": value} if isinstance(value, str) else value
        if not isinstance(spec, dict):
            raise ZoneFileError(f"{at}: must be a string or a table with 'meaning'")
        _check_keys(spec, _CODE_KEYS, at)
        meaning = spec.get("meaning")
        if not isinstance(meaning, str) or not meaning.strip():
            raise ZoneFileError(f"{at}: 'meaning' (a non-empty string) is required")
        sev = spec.get("severity")
        delisting = spec.get("delisting")
        if delisting is not None and not isinstance(delisting, str):
            raise ZoneFileError(f"{at}: 'delisting' must be a string")
        out.append(
            CodeInfo(
                address=addr,
                meaning=meaning.strip(),
                severity=None if sev is None else _severity(sev, f"{at}: severity"),
                delisting=delisting,
            )
        )
    return tuple(out)


def _errors(raw: object, where: str) -> tuple[ErrorCode, ...]:
    if not isinstance(raw, dict):
        raise ZoneFileError(f'{where}: must be a table of "127.x.y.z" = {{ kind = ..., meaning = ... }}')
    out = []
    for addr, value in raw.items():
        at = f"{where}: {addr!r}"
        _check_answer(addr, at)
        if not isinstance(value, dict):
            raise ZoneFileError(f"{at}: must be a table with 'kind' and 'meaning'")
        _check_keys(value, _ERROR_KEYS, at)
        kind = _choice(value, "kind", ERROR_KINDS, at)
        meaning = value.get("meaning")
        if not isinstance(meaning, str) or not meaning.strip():
            raise ZoneFileError(f"{at}: 'meaning' (a non-empty string) is required")
        out.append(ErrorCode(address=addr, kind=cast(ErrorKind, kind), meaning=meaning.strip()))
    return tuple(out)


def _check_keys(table: Mapping[str, Any], allowed: Sequence[str], where: str) -> None:
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (known keys: {', '.join(allowed)})"
            raise ZoneFileError(f"{where}: unknown key {key!r}{hint}")


def _check_answer(addr: str, where: str) -> None:
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        raise ZoneFileError(f"{where}: not an IPv4 address") from None
    if ip.version != 4 or ip not in _LOOPBACK or str(ip) != addr:
        raise ZoneFileError(f"{where}: DNSBL answers are IPv4 addresses in 127.0.0.0/8, written canonically")


def _check_url(url: str, where: str, *, placeholders: bool) -> None:
    if not url.startswith(("https://", "http://")) or any(c.isspace() for c in url):
        raise ZoneFileError(f"{where}: must be an http(s) URL without spaces")
    for ph in _PLACEHOLDER.findall(url):
        if not placeholders or ph != "target":
            raise ZoneFileError(f"{where}: unknown placeholder {{{ph}}} (only {{target}} is allowed)")


def _severity(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10:
        raise ZoneFileError(f"{where}: must be an integer from 0 to 10")
    return value


def _str(item: Mapping[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ZoneFileError(f"{where}: {key!r} must be a non-empty string")
    return value.strip()


def _opt_str(item: Mapping[str, Any], key: str, where: str) -> str | None:
    if key not in item:
        return None
    return _str(item, key, where)


def _bool(item: Mapping[str, Any], key: str, where: str) -> bool:
    value = item.get(key, False)
    if not isinstance(value, bool):
        raise ZoneFileError(f"{where}: {key!r} must be true or false")
    return value


def _choice(
    item: Mapping[str, Any], key: str, choices: Sequence[str], where: str, default: str | None = None
) -> str:
    value = item.get(key, default)
    if value not in choices:
        close = difflib.get_close_matches(str(value), choices, n=1, cutoff=0.5)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ZoneFileError(f"{where}: {key!r} must be one of {', '.join(choices)}; got {value!r}{hint}")
    return str(value)
