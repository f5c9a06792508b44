"""What to check when no TARGET is given: this server's own public addresses and mail domains.

Sources, all read through ``mailwarden._proc`` (argv lists, timeouts):

* ``postconf -xh smtp_bind_address smtp_bind_address6 myhostname mydomain`` and
  ``postconf -xh virtual_mailbox_domains mydestination`` (``-c DIR`` from
  ``--postfix-config`` or ``$MAIL_CONFIG``);
* ``ip -j addr``: every global address of the host's interfaces.

Only public things are kept: private, loopback, link-local, shared (CGNAT) and
documentation addresses, and names under reserved or internal TLDs, are
dropped (and said so), because no blocklist lists them and asking about them
leaks internal names to the list operator.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from mailwarden import _proc
from mailwarden.intel.dnsbl.errors import TargetError
from mailwarden.intel.dnsbl.targets import Target, parse_target

Runner = Callable[..., _proc.Result]

_PRIVATE_TLDS = frozenset(
    {"test", "example", "invalid", "localhost", "local", "localdomain", "lan", "internal", "home", "arpa",
     "corp", "intranet", "private"}
)  # fmt: skip
_DOC_DOMAINS = ("example.com", "example.net", "example.org")  # RFC 2606
_SPLIT = re.compile(r"[\s,]+")
_TIMEOUT = 10.0


@dataclass(slots=True)
class Discovery:
    """The targets found, where each came from, and what was left out and why."""

    targets: list[Target] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # target text -> where it was found
    skipped: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def add(self, value: str, where: str) -> None:
        value = value.strip()
        if not value:
            return
        try:
            target = parse_target(value)
        except TargetError:
            self.skipped.append(f"{value} ({where}: not an address or domain)")
            return
        why = _not_public(target)
        if why:
            self.skipped.append(f"{target.text} ({where}: {why})")
            return
        if target.text not in self.sources:
            self.targets.append(target)
            self.sources[target.text] = where


def discover(
    postfix_config: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    run: Runner = _proc.run,
    which: Callable[[str], str | None] = _proc.which,
) -> Discovery:
    """Find this server's outbound addresses and mail domains (see the module docstring)."""
    env = os.environ if env is None else env
    found = Discovery()
    config = postfix_config or env.get("MAIL_CONFIG") or None
    _from_postfix(found, config, run, which)
    _from_interfaces(found, run, which)
    return found


def _from_postfix(
    found: Discovery, config: str | None, run: Runner, which: Callable[[str], str | None]
) -> None:
    postconf = which("postconf")
    if postconf is None:
        found.problems.append("postconf not found: Postfix settings not read")
        return
    base = [postconf] + (["-c", config] if config else []) + ["-xh"]
    names = ("smtp_bind_address", "smtp_bind_address6", "myhostname", "mydomain")
    values = _postconf(found, run, [*base, *names], len(names))
    for name, value in zip(names, values, strict=False):
        found.add(value, f"postconf {name}")
    domains = ("virtual_mailbox_domains", "mydestination")
    values = _postconf(found, run, [*base, *domains], len(domains))
    for name, value in zip(domains, values, strict=False):
        for item in parse_domain_list(value):
            found.add(item, f"postconf {name}")


def _postconf(found: Discovery, run: Runner, argv: Sequence[str], n: int) -> list[str]:
    try:
        res = run(list(argv), timeout=_TIMEOUT)
    except _proc.ProcError as exc:
        found.problems.append(f"postconf: {exc}")
        return []
    lines = res.text().splitlines()
    return (lines + [""] * n)[:n]


def parse_domain_list(value: str) -> list[str]:
    """Domains in a Postfix list value, leaving out lookup tables, files and unexpanded $names."""
    out = []
    for item in _SPLIT.split(value.strip()):
        if not item or any(c in item for c in ":/$"):
            continue
        if item.lower().startswith("localhost"):
            continue
        out.append(item)
    return out


def _from_interfaces(found: Discovery, run: Runner, which: Callable[[str], str | None]) -> None:
    ip = which("ip")
    if ip is None:
        found.problems.append("ip (iproute2) not found: interface addresses not read")
        return
    try:
        res = run([ip, "-j", "addr", "show"], timeout=_TIMEOUT)
    except _proc.ProcError as exc:
        found.problems.append(f"ip: {exc}")
        return
    try:
        pairs = parse_ip_json(res.text())
    except ValueError as exc:
        found.problems.append(f"ip -j addr: unreadable output ({exc})")
        return
    for address, ifname in pairs:
        found.add(address, f"interface {ifname}")


def parse_ip_json(text: str) -> list[tuple[str, str]]:
    """(address, interface) of every usable address in ``ip -j addr`` output."""
    data = json.loads(text or "[]")
    if not isinstance(data, list):
        raise ValueError("expected a JSON list")
    out = []
    for iface in data:
        if not isinstance(iface, dict):
            continue
        name = str(iface.get("ifname", "?"))
        for info in iface.get("addr_info") or []:
            if not isinstance(info, dict) or info.get("family") not in ("inet", "inet6"):
                continue
            if info.get("tentative") or info.get("dadfailed") or info.get("deprecated"):
                continue
            local = info.get("local")
            if isinstance(local, str):
                out.append((local, name))
    return out


def _not_public(target: Target) -> str | None:
    if target.kind == "domain":
        tld = target.text.rsplit(".", 1)[-1]
        if tld in _PRIVATE_TLDS:
            return f"reserved/internal top-level domain .{tld}"
        if any(target.text == d or target.text.endswith("." + d) for d in _DOC_DOMAINS):
            return "documentation domain (RFC 2606)"
        return None
    ip = ipaddress.ip_address(target.text)
    if ip.is_global:
        return None
    for attr, why in (
        ("is_loopback", "loopback"),
        ("is_link_local", "link-local"),
        ("is_private", "private or documentation range"),
    ):
        if getattr(ip, attr):
            return why
    return "not a public address"
