"""What ``mailwarden dnsbl check|history|note`` do (the parser is in ``cli/dnsbl.py``).

Exit status of ``check``: 0 not listed anywhere we could check, 1 listed
somewhere, 2 usage error or nothing could be checked.
"""

from __future__ import annotations

import argparse
import json
import sys

from rich.console import Console

from mailwarden.intel.dnsbl.check import CheckOptions, parse_resolver
from mailwarden.intel.dnsbl.check import check as run_check
from mailwarden.intel.dnsbl.discover import discover
from mailwarden.intel.dnsbl.errors import DnsblError
from mailwarden.intel.dnsbl.history import History, default_db_path
from mailwarden.intel.dnsbl.report import render_check, render_history
from mailwarden.intel.dnsbl.targets import Target, parse_target
from mailwarden.intel.dnsbl.zones import adhoc_zone, load_catalogue, normalise_zone
from mailwarden.report.safe import clean

EXIT_CLEAN, EXIT_LISTED, EXIT_USAGE = 0, 1, 2


def _console() -> Console:
    return Console(highlight=False, soft_wrap=False)


def _db_path(args: argparse.Namespace) -> str:
    return str(args.db) if args.db else str(default_db_path())


def _targets(args: argparse.Namespace) -> tuple[list[Target], dict[str, str], list[str]]:
    if args.targets:
        return [parse_target(t) for t in args.targets], {}, []
    found = discover(args.postfix_config)
    notes = found.problems + [f"skipped {s}" for s in found.skipped]
    if not found.targets:
        raise DnsblError(
            f"no TARGET given and no public address or mail domain found ({'; '.join(notes) or 'nothing'}); "
            "name the server's public address(es) and mail domains as TARGETs"
        )
    return found.targets, found.sources, notes


def check(args: argparse.Namespace) -> int:
    try:
        options = CheckOptions(
            timeout=args.timeout, deadline=args.deadline, concurrency=args.concurrency, txt=not args.no_txt
        )
    except ValueError as exc:
        raise DnsblError(str(exc)) from exc
    catalogue = load_catalogue(args.zones)
    zones = [catalogue.find(z) or adhoc_zone(z) for z in args.zone] if args.zone else list(catalogue.active())
    resolver = parse_resolver(args.resolver) if args.resolver else None
    targets, sources, notes = _targets(args)
    report = run_check(targets, zones, resolver=resolver, options=options)
    if not args.no_history:
        with History(_db_path(args)) as hist:
            hist.record(report)
    if args.format == "json":
        doc = report.to_dict()
        if sources or notes:
            doc["discovered"] = {"sources": sources, "notes": notes}
        json.dump(doc, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        render_check(report, _console(), sources)
        for line in notes:
            print(f"  note: {clean(line)}", file=sys.stderr)
    if report.listed:
        return EXIT_LISTED
    if report.answered == 0:
        print("mailwarden dnsbl: nothing could be checked (no usable answer)", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_CLEAN


def history(args: argparse.Namespace) -> int:
    target = parse_target(args.target).text if args.target else None
    with History(_db_path(args)) as hist:
        periods = hist.timeline(target)
        notes = hist.notes(target)
    if args.format == "json":
        doc = {
            "schema": "mailwarden.dnsbl.history/1",
            "listings": [p.to_dict() for p in periods],
            "notes": [n.to_dict() for n in notes],
        }
        json.dump(doc, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        render_history(periods, notes, _console())
    return EXIT_CLEAN


def note(args: argparse.Namespace) -> int:
    target = parse_target(args.target).text
    known = load_catalogue(args.zones).find(args.zone)
    zone = known.zone if known else normalise_zone(args.zone, "LIST")
    text = " ".join(args.text).strip()
    if not text:
        raise DnsblError("the note is empty")
    with History(_db_path(args)) as hist:
        saved = hist.note(target, zone, text)
    print(f"noted for {clean(target)} on {clean(zone)} at {saved.at.isoformat(timespec='seconds')}")
    return EXIT_CLEAN
