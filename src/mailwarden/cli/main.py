"""``mailwarden`` command line.

Exit status (triage): 0 nothing found, 1 incidents found, 2 usage error or
unreadable input — so scripts and monitoring can act on the result.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mailwarden import __version__
from mailwarden.cli.timespec import parse_time
from mailwarden.correlate.messages import DEFAULT_MYNETWORKS
from mailwarden.enrich import GeoError
from mailwarden.model import ReadStats
from mailwarden.report.safe import clean
from mailwarden.sources import SourceError, default_log_paths

EXIT_CLEAN, EXIT_FOUND, EXIT_USAGE = 0, 1, 2

# Subcommands beyond triage/events, one module each (see _command_modules).
COMMAND_MODULES: tuple[str, ...] = ("mailwarden.cli.dnsbl", "mailwarden.cli.queue")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="log files, rotated series, directories or '-' for stdin "
        "(default: the usual mail log locations)",
    )
    p.add_argument("--since", help="only lines at or after this time (ISO 8601, or 24h / 7d ago)")
    p.add_argument("--until", help="only lines before this time")
    p.add_argument(
        "--timezone",
        metavar="ZONE",
        help="time zone of log time stamps that carry none, e.g. Europe/Berlin (default: this machine's)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mailwarden", description="Find, explain and stop the abuse of a mail server.")
    parser.add_argument("--version", action="version", version=f"mailwarden {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    tri = sub.add_parser("triage", help="read mail logs and report abuse: verdict, evidence, next steps")
    _common(tri)
    tri.add_argument("--format", choices=("text", "json"), default="text")
    tri.add_argument(
        "--geoip-db",
        action="append",
        default=[],
        metavar="FILE",
        help="a MaxMind .mmdb (GeoLite2 Country/City/ASN); repeatable; wins over the built-in data",
    )
    tri.add_argument(
        "--mynetworks",
        default=",".join(DEFAULT_MYNETWORKS),
        metavar="CIDR,...",
        help="networks allowed to send without AUTH, as in Postfix's mynetworks (default: %(default)s)",
    )
    tri.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    tri.add_argument(
        "--queue",
        action="store_true",
        help="also read the mail queue (read-only) and show what of each incident is still queued",
    )
    tri.add_argument("--mta", help="queue backend for --queue (default: detected)")
    tri.add_argument(
        "--postfix-config", metavar="DIR", help="Postfix config dir for --queue (like postqueue -c)"
    )
    ev = sub.add_parser(
        "events", help="print the parsed events as JSON lines (to see how each line was read)"
    )
    _common(ev)
    ev.add_argument("--stats", action="store_true", help="print read statistics (JSON) to stderr at the end")
    ev.add_argument(
        "-q", "--quiet", action="store_true", help="no summary of the formats recognised on stderr"
    )
    ev.add_argument(
        "--unparsed",
        action="store_true",
        help="after the events, print the lines a format claimed but did not understand "
        '(type "unparsed", first 1000)',
    )
    for module in _command_modules():
        module.add_parser(sub)
    return parser


def _command_modules() -> list[Any]:
    """Further commands, registered explicitly: each module has ``add_parser(sub)``.

    ``add_parser`` must ``set_defaults(func=run)`` where ``run(args) -> int``
    returns the exit status. Imported lazily so ``triage`` does not pay for
    the others' dependencies.
    """
    import importlib

    modules = []
    for name in COMMAND_MODULES:
        modules.append(importlib.import_module(name))
    return modules


def _paths(args: argparse.Namespace) -> list[str]:
    if args.paths:
        return list(args.paths)
    found = default_log_paths()
    if not found:
        raise SourceError(
            "no PATH given and no mail log found in the usual places "
            "(/var/log/mail.log, /var/log/maillog, ...)"
        )
    return found


def _window(args: argparse.Namespace) -> tuple[datetime | None, datetime | None]:
    since = parse_time(args.since) if args.since else None
    until = parse_time(args.until) if args.until else None
    return since, until


def _tz(args: argparse.Namespace) -> tzinfo | None:
    if not args.timezone:
        return None
    try:
        return ZoneInfo(args.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"--timezone: unknown time zone {args.timezone!r}") from exc


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        func = getattr(args, "func", None)
        if func is not None:
            return int(func(args))
        since, until = _window(args)
        if args.command == "events":
            return _events(args, since, until)
        return _triage(args, since, until)
    except (ValueError, SourceError, GeoError) as exc:
        print(f"mailwarden: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        sys.stderr.close()
        return EXIT_CLEAN
    except KeyboardInterrupt:
        return 130


def _events(args: argparse.Namespace, since: datetime | None, until: datetime | None) -> int:
    from mailwarden.pipeline import events_from

    stats = ReadStats()
    out = sys.stdout
    dumps = json.dumps
    for event in events_from(_paths(args), stats, since=since, until=until, tz=_tz(args)):
        out.write(dumps(event.to_dict(), ensure_ascii=True) + "\n")
    if args.unparsed:
        for rec in stats.unparsed_samples:
            row = {
                "type": "unparsed",
                "ts": rec.ts.isoformat(),
                "program": rec.program,
                "message": rec.message,
                "source": rec.source.to_dict(),
            }
            out.write(dumps(row, ensure_ascii=True) + "\n")
    if args.stats:
        print(json.dumps(stats.to_dict()), file=sys.stderr)
    elif not args.quiet:
        print("mailwarden: " + clean(stats.formats_line(), 600), file=sys.stderr)
    return EXIT_CLEAN


def _triage(args: argparse.Namespace, since: datetime | None, until: datetime | None) -> int:
    from rich.console import Console

    from mailwarden.pipeline import triage
    from mailwarden.report import json_report, text

    paths = _paths(args)
    nets = [n.strip() for n in args.mynetworks.split(",") if n.strip()]
    import ipaddress

    for n in nets:
        try:
            ipaddress.ip_network(n, strict=False)
        except ValueError as exc:
            raise ValueError(f"--mynetworks: {exc}") from exc
    progress = None
    if not args.no_progress and sys.stderr.isatty():
        from mailwarden.cli.progress import LineProgress

        progress = LineProgress()
    try:
        result = triage(
            paths,
            since=since,
            until=until,
            geoip_paths=args.geoip_db,
            mynetworks=nets,
            tz=_tz(args),
            on_event=progress.update if progress else None,
        )
    finally:
        if progress:
            progress.stop()
    picture = _queue_picture(args, result.incidents) if args.queue else None
    if args.format == "json":
        doc = json_report.to_dict(result)
        if picture is not None:
            doc["queue"] = picture
        json.dump(doc, sys.stdout, indent=2, ensure_ascii=True)
        sys.stdout.write("\n")
    else:
        console = Console(highlight=False, soft_wrap=False)
        text.render(result, console)
        if picture is not None:
            from mailwarden.queues.triage_view import render_queue_picture

            render_queue_picture(console, picture)
    if result.stats.lines_read == 0 and result.stats.problems:
        return EXIT_USAGE
    return EXIT_FOUND if result.incidents else EXIT_CLEAN


def _queue_picture(args: argparse.Namespace, incidents: list[Any]) -> dict[str, object] | None:
    """The queue's view of the incidents; a queue we cannot read is reported, not fatal."""
    from mailwarden.queues import QueueError, open_backend
    from mailwarden.queues.triage_view import queue_picture

    try:
        return queue_picture(open_backend(args.mta, postfix_config=args.postfix_config), incidents)
    except (QueueError, OSError) as exc:
        print(f"mailwarden: queue: {exc}", file=sys.stderr)
        return None
