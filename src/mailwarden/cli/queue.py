"""``mailwarden queue``: see what is stuck, name the culprit, hold, export and delete safely.

Subcommands: summary, list, show, cluster (read only); hold, release, export, delete, reinject
(dry run unless ``--yes``). Exit status: 0 done (or nothing to do), 1 some selected messages
were left alone (changed, gone) or a regex ran out of time, 2 usage error or a queue tool failed.
See docs/queue.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mailwarden.cli.timespec import parse_time
from mailwarden.queues import MTAS, QueueBackend, QueueError, actions, open_backend
from mailwarden.queues.attribution import read_headers
from mailwarden.queues.audit import AuditLog, state_dir
from mailwarden.queues.base import MessageNotFound, QueuedMessage, split_headers
from mailwarden.queues.cluster import Clusterer
from mailwarden.queues.export import FORMATS, Exporter, ExportError, load
from mailwarden.queues.render import age, c, list_header, message_row, show_lines, size, summary_lines, when
from mailwarden.queues.scan import ScanStats, body_text, scan
from mailwarden.queues.select import BoundedRegex, Criteria, PatternError, parse_header_filter
from mailwarden.queues.summary import Summary
from mailwarden.report.safe import clean

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE = 0, 1, 2
ACTIONS = ("hold", "release", "export", "delete")


def _common(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("queue")
    g.add_argument("--mta", choices=MTAS, help="which MTA's queue (default: detected)")
    g.add_argument(
        "--postfix-config",
        metavar="DIR",
        help="Postfix config directory (passed as -c DIR; default: $MAIL_CONFIG or /etc/postfix)",
    )
    g.add_argument(
        "--qmail-queue",
        metavar="DIR",
        help="qmail's queue directory (default: /var/qmail/queue; implies --mta qmail)",
    )
    g.add_argument(
        "--sendmail-queue",
        metavar="DIR",
        help="Sendmail's queue directory (default: /var/spool/mqueue; implies --mta sendmail)",
    )
    g.add_argument(
        "--hostname",
        action="append",
        default=[],
        metavar="NAME",
        help="a name this server writes in its Received headers (default: the MTA's own, e.g. myhostname)",
    )
    g.add_argument("--format", choices=("text", "json"), default="text")


def _filters(p: argparse.ArgumentParser, with_ids: bool) -> None:
    g = p.add_argument_group("filters (all must match)")
    if with_ids:
        g.add_argument("ids", nargs="*", metavar="ID", help="queue ids (combined with the filters)")
    g.add_argument(
        "--queue", action="append", default=[], metavar="NAME", help="deferred, hold, active, incoming, ..."
    )
    g.add_argument(
        "--sender", action="append", default=[], metavar="GLOB", help="envelope sender ('<>' = bounces)"
    )
    g.add_argument(
        "--account", action="append", default=[], metavar="GLOB", help="SASL login (trusted sources only)"
    )
    g.add_argument("--uid", action="append", default=[], type=int, metavar="N", help="local submitter uid")
    g.add_argument(
        "--script", action="append", default=[], metavar="GLOB", help="X-PHP-Originating-Script script"
    )
    g.add_argument("--client", action="append", default=[], metavar="IP/CIDR", help="client address")
    g.add_argument("--recipient-domain", action="append", default=[], metavar="DOMAIN")
    g.add_argument("--older-than", metavar="AGE", help="e.g. 2h, 3d, or an ISO time")
    g.add_argument(
        "--reason",
        action="append",
        default=[],
        metavar="WHAT",
        help="deferral group: blocklist, spam, rate_limit, unknown_user, mailbox_full, connection, "
        "or words of its label",
    )
    g.add_argument("--subject", metavar="REGEX")
    g.add_argument("--header", action="append", default=[], metavar="'NAME: REGEX'")
    g.add_argument("--body", metavar="REGEX", help="search decoded body text (reads every candidate's body)")
    g.add_argument(
        "--body-max", type=int, default=64 * 1024, metavar="BYTES", help="body text searched (%(default)s)"
    )


def _acting(p: argparse.ArgumentParser, action: str) -> None:
    g = p.add_argument_group("acting")
    g.add_argument("--yes", action="store_true", help=f"really {action} (default: dry run, nothing changes)")
    g.add_argument(
        "--all", action="store_true", help="allow selecting every message when no filter or id is given"
    )
    g.add_argument(
        "--audit-log", metavar="FILE", help="audit log (default: /var/log/mailwarden/audit.log as root)"
    )
    if action in ("export", "delete"):
        g.add_argument(
            "--export-dir", metavar="DIR", help="new directory for the export (default: under the state dir)"
        )
        g.add_argument(
            "--export-format", choices=FORMATS, default="eml", help="eml files or one mbox (%(default)s)"
        )
    if action == "delete":
        g.add_argument(
            "--no-export", action="store_true", help="delete without exporting first (no way back!)"
        )
        g.add_argument(
            "--i-stopped-qmail-send",
            action="store_true",
            help="qmail: I stopped qmail-send (needed only when mailwarden cannot check it itself)",
        )


def add_parser(sub: Any) -> None:
    """Register ``queue`` and its subcommands on the top-level subparsers."""
    q = sub.add_parser("queue", help="inspect and clean the mail queue: who is stuck, why, and who sent it")
    qsub = q.add_subparsers(dest="queue_command", required=True, parser_class=type(q))
    s = qsub.add_parser("summary", help="totals, ages, culprits, deferral reasons")
    _common(s)
    _filters(s, with_ids=False)
    s.add_argument("--top", type=int, default=10)
    ls = qsub.add_parser("list", help="one line per message, with filters")
    _common(ls)
    _filters(ls, with_ids=True)
    ls.add_argument("--limit", type=int, default=0, help="stop after N messages (0 = all)")
    sh = qsub.add_parser("show", help="one message: envelope, headers, body excerpt, attribution")
    _common(sh)
    sh.add_argument("id", metavar="ID")
    sh.add_argument("--body-lines", type=int, default=40)
    cl = qsub.add_parser("cluster", help="group by template so a spam run shows as one cluster")
    _common(cl)
    _filters(cl, with_ids=False)
    cl.add_argument("--top", type=int, default=20)
    cl.add_argument("--no-body", action="store_true", help="group by subject only (reads no bodies; faster)")
    for action in ACTIONS:
        helps = {
            "hold": "stop delivery of the selected messages (undo with release)",
            "release": "let held messages be delivered again",
            "export": "copy the selected messages to eml files or an mbox, with a SHA-256 manifest",
            "delete": "export, verify and delete the selected messages",
        }
        a = qsub.add_parser(action, help=helps[action])
        _common(a)
        _filters(a, with_ids=True)
        _acting(a, action)
    ri = qsub.add_parser("reinject", help="put exported messages back into the queue (undoes delete)")
    _common(ri)
    ri.add_argument("export", metavar="EXPORT_DIR")
    ri.add_argument("--yes", action="store_true", help="really reinject (default: dry run)")
    ri.add_argument("--audit-log", metavar="FILE")
    for p in (q, *qsub.choices.values()):
        p.set_defaults(func=run)


# ----------------------------------------------------------------------------------------------


def _criteria(args: argparse.Namespace, now: float) -> Criteria:
    cutoff = None
    if args.older_than:
        cutoff = int(parse_time(args.older_than, now=_utc(now)).timestamp())
    if args.body_max <= 0 or args.body_max > 16 * 1024 * 1024:
        raise ValueError("--body-max must be between 1 and 16777216")
    return Criteria(
        ids=frozenset(getattr(args, "ids", ()) or ()),
        queues=tuple(args.queue),
        senders=tuple(args.sender),
        accounts=tuple(args.account),
        uids=tuple(args.uid),
        scripts=tuple(args.script),
        clients=tuple(args.client),
        recipient_domains=tuple(d.lower() for d in args.recipient_domain),
        arrived_before=cutoff,
        older_than_text=args.older_than or "",
        reasons=tuple(args.reason),
        subject=BoundedRegex.compile(args.subject) if args.subject else None,
        headers=tuple(parse_header_filter(h) for h in args.header),
        body=BoundedRegex.compile(args.body) if args.body else None,
        body_max=args.body_max,
    )


def _utc(epoch: float) -> Any:
    return datetime.fromtimestamp(epoch, UTC)


def _emit(args: argparse.Namespace, doc: dict[str, object], lines: Sequence[str]) -> None:
    if args.format == "json":
        sys.stdout.write(json.dumps(doc, indent=1, ensure_ascii=True) + "\n")
    else:
        sys.stdout.write("".join(line + "\n" for line in lines))


def _names(backend: QueueBackend, args: argparse.Namespace) -> tuple[str, ...]:
    return tuple(n.lower() for n in args.hostname) + backend.describe().our_names


def run(args: argparse.Namespace, *, backend: QueueBackend | None = None, now: float | None = None) -> int:
    """Entry point for ``mailwarden queue ...``; ``backend``/``now`` are for tests."""
    t = time.time() if now is None else now
    try:
        be = backend or open_backend(
            args.mta,
            postfix_config=args.postfix_config,
            qmail_queue=getattr(args, "qmail_queue", None),
            sendmail_queue=getattr(args, "sendmail_queue", None),
            i_stopped_qmail_send=getattr(args, "i_stopped_qmail_send", False),
        )
        cmd = args.queue_command
        if cmd == "summary":
            return _summary(args, be, t)
        if cmd == "list":
            return _list(args, be, t)
        if cmd == "show":
            return _show(args, be, t)
        if cmd == "cluster":
            return _cluster(args, be, t)
        if cmd == "reinject":
            return _reinject(args, be)
        return _act(args, be, t)
    except (PatternError, ValueError, QueueError, ExportError, OSError) as exc:
        print(f"mailwarden queue: error: {clean(str(exc), 500)}", file=sys.stderr)
        return EXIT_USAGE


def _scan(args: argparse.Namespace, be: QueueBackend, crit: Criteria, *, want_body: bool = False) -> Any:

    stats = ScanStats()
    return scan(be, crit, our_names=_names(be, args), want_body=want_body, stats=stats), stats


def _header(be: QueueBackend) -> str:
    info = be.describe()
    return f"Queue ({info.mta} {info.version}, {info.config})".replace(" )", ")")


def _summary(args: argparse.Namespace, be: QueueBackend, now: float) -> int:

    found, stats = _scan(args, be, _criteria(args, now))
    summ = Summary(now=int(now))
    for f in found:
        summ.add(f.message)
    doc = summ.to_dict(top=args.top)
    doc["backend"] = be.describe().to_dict()
    doc["scan"] = stats.to_dict()
    _emit(args, doc, summary_lines(doc, _header(be)))
    return EXIT_PARTIAL if stats.regex_timeouts else EXIT_OK


def _list(args: argparse.Namespace, be: QueueBackend, now: float) -> int:

    found, stats = _scan(args, be, _criteria(args, now))
    rows: list[dict[str, object]] = []
    lines = [list_header()]
    for n, f in enumerate(found):
        if args.limit and n >= args.limit:
            break
        rows.append({**f.message.to_dict(), "why": list(f.why)})
        lines.append(message_row(f.message, int(now)))
    lines.append(f"({len(rows)} of {stats.listed} queued message(s))")
    _emit(args, {"messages": rows, "scan": stats.to_dict()}, lines)
    return EXIT_PARTIAL if stats.regex_timeouts else EXIT_OK


def _show(args: argparse.Namespace, be: QueueBackend, now: float) -> int:

    listed = next((m for m in be.list_messages() if m.id == args.id), None)
    if listed is None:
        raise QueueError(f"{args.id}: not in the queue")
    try:
        data = be.read(args.id)
    except MessageNotFound as exc:
        raise QueueError(f"{args.id}: not in the queue (gone meanwhile)") from exc
    env: dict[str, str] = {}
    for block in be.read_headers([args.id]):
        env = dict(block.envelope)
    head, _ = split_headers(data)
    facts = read_headers(head, our_names=_names(be, args), envelope=env)
    m = QueuedMessage(
        listed.id,
        listed.queue,
        listed.arrival,
        listed.size,
        listed.sender,
        listed.recipients,
        facts.subject,
        facts.attribution,
    )
    text = body_text(data, 64 * 1024)
    excerpt = "\n".join(text.splitlines()[: args.body_lines])
    doc: dict[str, object] = {
        "message": m.to_dict(),
        "headers": [[k, v] for k, v in facts.headers],
        "body_excerpt": excerpt,
        "envelope": env,
    }
    _emit(args, doc, show_lines(doc, facts.headers, text, args.body_lines))
    return EXIT_OK


def _cluster(args: argparse.Namespace, be: QueueBackend, now: float) -> int:

    found, stats = _scan(args, be, _criteria(args, now), want_body=not args.no_body)
    cl = Clusterer()
    for f in found:
        cl.add(f.message, f.body)
    top = cl.top(args.top)
    doc: dict[str, object] = {
        "clusters": [x.to_dict() for x in top],
        "total_clusters": len(cl.clusters),
        "dropped": cl.dropped,
        "scan": stats.to_dict(),
    }
    lines = [f"{len(cl.clusters)} cluster(s) in {stats.selected} message(s); largest first:"]
    for i, x in enumerate(top, 1):
        culprits = ", ".join(f"{c(k, 80)} ({v})" for k, v in x.culprits.top(3))
        lines += [
            f"{i:>3}. {x.messages} message(s), {x.recipients} recipient(s), {size(x.bytes)}; "
            f"{when(x.first)} .. {when(x.last)} ({age(now - (x.first or now))} old)",
            f"     subject:  {c(x.subject_template, 120)}   e.g. {c(x.sample_subject, 100)}",
            f"     sent by:  {culprits}",
            f"     links:    {c(', '.join(x.domains) or '-', 200)}   shape: {c(x.shape)}",
            f"     ids:      {c(' '.join(x.ids[:8]), 200)}" + (" ..." if x.messages > 8 else ""),
        ]
    _emit(args, doc, lines)
    return EXIT_PARTIAL if stats.regex_timeouts else EXIT_OK


def _default_export_dir() -> Path:

    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return state_dir() / "exports" / f"export-{stamp}"


def _act(args: argparse.Namespace, be: QueueBackend, now: float) -> int:

    action = args.queue_command
    crit = _criteria(args, now)
    if crit.empty and not args.all:
        raise ValueError(f"{action}: give queue ids or filters (or --all to select every message)")
    found, stats = _scan(args, be, crit)
    selected = list(found)
    missing = sorted(crit.ids - {f.message.id for f in selected}) if crit.ids else []
    # hold acts on what is not held yet, release on what is held: the rest is no news
    ignored = 0
    if action in ("hold", "release"):
        keep = [f for f in selected if (f.message.queue == "hold") == (action == "release")]
        ignored, selected = len(selected) - len(keep), keep
    doc: dict[str, object] = {
        "action": action,
        "dry_run": not args.yes,
        "criteria": crit.describe(),
        "selected": [{**f.message.to_dict(), "why": list(f.why)} for f in selected],
        "ids_not_selected": missing,
        "scan": stats.to_dict(),
    }
    lines: list[str] = []
    if ignored:
        state = "already on hold" if action == "hold" else "not on hold"
        lines.append(f"{ignored} matching message(s) {state}: left as they are")
        doc["ignored"] = ignored
    if missing:
        lines.append(f"not in the queue or not matching the filters: {' '.join(missing)}")
    if not selected:
        lines.append(f"nothing matches; nothing to {action}.")
        doc["outcome"] = None
        _emit(args, doc, lines)
        return EXIT_OK
    rows = [list_header(why=True)] + [message_row(f.message, int(now), f.why) for f in selected]
    if not args.yes:
        extra = ""
        if action == "delete":
            extra = " (after exporting them)" if not args.no_export else " (WITHOUT an export)"
        lines.append(f"DRY RUN: would {action} {len(selected)} message(s){extra}; add --yes to do it.")
        _emit(args, doc, lines + rows)
        return EXIT_OK
    messages = [f.message for f in selected]
    with AuditLog(args.audit_log) as audit:  # opened first: no change that cannot be logged
        exporter = None
        if action in ("export", "delete") and not getattr(args, "no_export", False):
            info = be.describe()
            exporter = Exporter(
                args.export_dir or _default_export_dir(),
                args.export_format,
                meta={"mta": info.mta, "config": info.config, "criteria": crit.describe()},
            )
        if action == "hold":
            outcome = actions.hold(be, messages)
        elif action == "release":
            outcome = actions.release(be, messages)
        elif action == "export":
            if exporter is None:
                raise ValueError("export: nothing to export to")
            outcome, _ = actions.export(be, messages, exporter)
        else:
            outcome = actions.delete_verified(be, messages, exporter)
        if action != "export" or outcome.acted:
            audit.write(
                action,
                mta=be.describe().mta,
                config=be.describe().config,
                criteria=crit.describe(),
                ids=outcome.acted,
                skipped=outcome.skipped,
                export=outcome.export,
                argv=sys.argv[1:],
            )
    doc["outcome"] = outcome.to_dict()
    doc["audit_log"] = str(audit.path)
    verb = {"hold": "put on hold", "release": "released", "export": "exported", "delete": "deleted"}[action]
    lines.append(f"{len(outcome.acted)} message(s) {verb}.")
    if outcome.export:
        lines.append(f"export: {outcome.export} (manifest.json, SHA256SUMS)")
    for qid, why in sorted(outcome.skipped.items()):
        lines.append(f"  left alone: {qid}: {why}")
    lines.append(f"audit log: {audit.path}")
    _emit(args, doc, lines + rows)
    return EXIT_PARTIAL if outcome.skipped else EXIT_OK


def _reinject(args: argparse.Namespace, be: QueueBackend) -> int:

    _manifest, messages = load(args.export)
    items = list(messages)  # every hash checked before anything is submitted
    reinject = getattr(be, "reinject", None)
    if reinject is None:
        raise QueueError(f"the {be.describe().mta} backend cannot reinject")
    doc: dict[str, object] = {
        "action": "reinject",
        "dry_run": not args.yes,
        "export": str(args.export),
        "messages": [i.item.to_dict() for i in items],
    }
    verb = "DRY RUN: would reinject" if not args.yes else "reinjecting"
    lines = [f"{verb} {len(items)} message(s) from {args.export}"]
    if not args.yes:
        lines += [
            f"  {i.item.id}  from {i.item.sender or '<>'} to {len(i.item.recipients)} recipient(s)"
            for i in items
        ]

        _emit(args, doc, [c(x, 400) for x in lines])
        return EXIT_OK
    done: list[str] = []
    failed: dict[str, str] = {}
    with AuditLog(args.audit_log) as audit:
        for i in items:
            try:
                reinject(i.data, i.item.sender, i.item.recipients)
                done.append(i.item.id)
            except QueueError as exc:
                failed[i.item.id] = str(exc)
        audit.write(
            "reinject",
            mta=be.describe().mta,
            export=str(args.export),
            ids=done,
            skipped=failed,
            argv=sys.argv[1:],
        )
    doc["outcome"] = {"acted": done, "skipped": failed}
    doc["audit_log"] = str(audit.path)
    lines.append(f"{len(done)} message(s) reinjected (original ids; the MTA gives them new ones)")
    lines += [f"  failed: {k}: {v}" for k, v in failed.items()]

    _emit(args, doc, [c(x, 400) for x in lines])
    return EXIT_PARTIAL if failed else EXIT_OK
