"""``mailwarden dnsbl``: are we listed, where, why -- and how to get off.

    mailwarden dnsbl check [TARGET ...]   look up addresses/domains (default: this server's own)
    mailwarden dnsbl history [TARGET]     when each listing appeared and disappeared, with notes
    mailwarden dnsbl note TARGET LIST TEXT  record what was done (e.g. a delisting request)

Exit status of ``check``: 0 not listed anywhere we could check, 1 listed
somewhere, 2 usage error or nothing could be checked.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from mailwarden.intel.dnsbl.errors import DnsblError

EXIT_USAGE = 2


def add_parser(sub: Any) -> None:
    """Register ``dnsbl`` and its sub-commands on the main parser's subparsers."""
    p = sub.add_parser(
        "dnsbl",
        help="DNS blocklists: are we listed, where, why -- and how to get off",
        description="Check this server's addresses and domains against DNS blocklists, keep a history "
        "of listings, and record delisting requests.",
    )
    p.set_defaults(func=run)
    dsub = p.add_subparsers(dest="dnsbl_command", required=True, metavar="{check,history,note}")

    c = dsub.add_parser("check", help="look targets up on the blocklists (default: this server's own)")
    c.add_argument(
        "targets",
        nargs="*",
        metavar="TARGET",
        help="IPv4/IPv6 addresses or domains (default: the addresses and mail domains in the Postfix "
        "configuration and the host's public interface addresses)",
    )
    c.add_argument(
        "--zones",
        action="append",
        default=[],
        metavar="FILE",
        help="a TOML file of lists that adds to or replaces the bundled ones (repeatable; docs/dnsbl.md)",
    )
    c.add_argument(
        "--zone",
        action="append",
        default=[],
        metavar="NAME",
        help="check only this list: a list name, a known zone or any DNS zone (repeatable)",
    )
    c.add_argument("--resolver", metavar="HOST[:PORT]", help="ask this resolver (default: the system's)")
    c.add_argument("--timeout", type=float, default=4.0, metavar="S", help="per lookup (default: 4)")
    c.add_argument("--deadline", type=float, default=10.0, metavar="S", help="whole check (default: 10)")
    c.add_argument("--concurrency", type=int, default=32, metavar="N", help="lookups in flight (default: 32)")
    c.add_argument(
        "--no-txt", action="store_true", help="skip the TXT reason of listings (one round trip less)"
    )
    c.add_argument("--format", choices=("text", "json"), default="text")
    c.add_argument(
        "--postfix-config", metavar="DIR", help="Postfix configuration directory (default: $MAIL_CONFIG)"
    )
    _db(c)
    c.add_argument("--no-history", action="store_true", help="do not record this check in the history")

    h = dsub.add_parser("history", help="when each listing appeared and disappeared, with notes")
    h.add_argument("target", nargs="?", metavar="TARGET", help="only this address or domain")
    h.add_argument("--format", choices=("text", "json"), default="text")
    _db(h)

    n = dsub.add_parser("note", help="record what was done about a listing (e.g. a delisting request)")
    n.add_argument("target", metavar="TARGET")
    n.add_argument("zone", metavar="LIST", help="list name (spamhaus-zen) or zone (zen.spamhaus.org)")
    n.add_argument("text", metavar="TEXT", nargs="+")
    n.add_argument("--zones", action="append", default=[], metavar="FILE", help=argparse.SUPPRESS)
    _db(n)


def _db(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db",
        metavar="FILE",
        help="history database (default: $XDG_STATE_HOME/mailwarden/dnsbl.sqlite or "
        "~/.local/state/mailwarden/dnsbl.sqlite)",
    )


def run(args: argparse.Namespace) -> int:
    """Run the chosen ``dnsbl`` sub-command; return the exit status."""
    # Loaded here, not at import: building the parser must not pay for dnspython and rich.
    from mailwarden.intel.dnsbl import commands  # noqa: PLC0415

    try:
        if args.dnsbl_command == "check":
            return commands.check(args)
        if args.dnsbl_command == "history":
            return commands.history(args)
        return commands.note(args)
    except DnsblError as exc:
        print(f"mailwarden dnsbl: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
