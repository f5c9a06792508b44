"""Test data for the rbldnsd-served blocklists (the bundled zone names, served on 127.0.0.1 only).

Lists without data here are served empty, so they answer NXDOMAIN ("not listed").
"""

from __future__ import annotations

from rbldnsd_server import Dataset

from mailwarden.intel.dnsbl.zones import load_catalogue

ESC = "\x1b"
HOSTILE_TXT = f"{ESC}]0;pwned\x07{ESC}[2J\u202eevil{ESC}[31m red"

SBL = """\
:127.0.0.2:Listed in SBL, see https://check.spamhaus.org/sbl/query/SBLTEST for $
127.0.0.2
203.0.113.7
203.0.113.8
203.0.113.66 :127.255.255.254:Error: open resolver; see https://www.spamhaus.org/returnc/pub/
203.0.113.99 :192.0.2.55:redirected by a filtering resolver
203.0.113.120 :127.0.0.77:a code nobody documented
11.22.33.44
"""
XBL = ":127.0.0.4:$ is a known botnet host (XBL)\n203.0.113.8\n"
ZEN6 = ":127.0.0.2:IPv6 listed in SBL\n2001:db8:bad::/48\n"
DBL = f":127.0.1.2:DBL: spam domain\nbad.example\nspam-shop.net\nhostile.example :127.0.1.2:{HOSTILE_TXT}\n"
URIBL = """\
refused.example :127.0.0.1:127.0.0.1 -> Query Refused. See https://uribl.com/refused.shtml
both.example :127.0.0.6:black and grey
"""
SPAMCOP = ":127.0.0.2:Blocked - see https://www.spamcop.net/bl.shtml?$\n203.0.113.7\n"

DATA: dict[tuple[str, str], str] = {
    ("zen.spamhaus.org", "ip4set"): "",  # split into sbl + xbl below
    ("dbl.spamhaus.org", "dnset"): DBL,
    ("multi.uribl.com", "dnset"): URIBL,
    ("bl.spamcop.net", "ip4set"): SPAMCOP,
}


def bundled_datasets() -> list[Dataset]:
    """One dataset per bundled active list (empty unless we have test data), plus ZEN's extras."""
    out = [
        Dataset("zen.spamhaus.org", "ip4set", "zen-sbl", SBL),
        Dataset("zen.spamhaus.org", "ip4set", "zen-xbl", XBL),
        Dataset("zen.spamhaus.org", "ip6trie", "zen-v6", ZEN6),
    ]
    for z in load_catalogue().active():
        if z.zone == "zen.spamhaus.org":
            continue
        kind = "dnset" if z.kind == "domain" else "ip4set"
        out.append(Dataset(z.zone, kind, z.name, DATA.get((z.zone, kind), "")))
    return out
