"""Terminal output of ``dnsbl check`` and ``dnsbl history``.

TXT records are written by list operators -- and by anyone who controls a
zone given with ``--zone`` or a resolver in the path -- so every TXT string
(and, to be safe, every other value that came from outside) passes through
``report.safe.clean`` and is rendered as plain ``Text``, never as markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from rich.console import Console
from rich.table import Table
from rich.text import Text

from mailwarden.intel.dnsbl.history import ListingPeriod, Note
from mailwarden.intel.dnsbl.model import CheckReport, ZoneResult
from mailwarden.report.safe import clean

_SEV_STYLE = ((9, "bold white on red"), (7, "bold red"), (4, "yellow"), (0, "cyan"))


def _sev_style(sev: int) -> str:
    return next(style for floor, style in _SEV_STYLE if sev >= floor)


def render_check(report: CheckReport, console: Console, sources: dict[str, str] | None = None) -> None:
    listed, unknown = report.listed, report.unknown
    if listed:
        names = sorted({r.zone.label for r in listed})
        head = Text(f"LISTED on {len(names)} list(s): ", style="bold red")
        head.append(", ".join(names))
    elif report.answered == 0:
        head = Text("NOTHING COULD BE CHECKED: no list gave a usable answer.", style="bold yellow")
    elif unknown:
        head = Text(
            f"Not listed where we could check; {len(unknown)} lookup(s) UNKNOWN (not clean).",
            style="bold yellow",
        )
    else:
        head = Text("Not listed on any checked list.", style="bold green")
    console.print(head)
    console.print(
        Text(
            f"{len(report.targets)} target(s) × lists = {len(report.results)} lookups via resolver "
            f"{clean(report.resolver)} in {report.elapsed:.2f}s",
            style="dim",
        )
    )
    if sources:
        for target, where in sources.items():
            console.print(Text(f"  {clean(target)}  (from {clean(where)})", style="dim"))
    for w in report.warnings:
        console.print(Text("WARNING: ", style="bold yellow") + Text(clean(w, limit=600)))
    if listed:
        console.print(_listed_table(listed))
    if unknown:
        console.print(_unknown_table(unknown))
    ok: dict[str, list[str]] = {}
    for r in report.not_listed:
        ok.setdefault(r.target.display, []).append(r.zone.name)
    for target, names in sorted(ok.items()):
        line = Text(f"{clean(target)}", style="green")
        line.append(f" not listed on: {', '.join(sorted(names))}")
        console.print(line)


def _listed_table(results: Sequence[ZoneResult]) -> Table:
    table = Table(title="Listings (worst first)", show_lines=True, expand=False)
    for col in ("Sev", "Target", "List", "Why", "How to get off"):
        table.add_column(col, overflow="fold")
    for r in results:
        why = Text()
        for c in r.codes:
            why.append(f"{c.address}: ", style="bold")
            why.append(clean(c.meaning) + "\n")
        for line in r.txt:
            why.append("TXT: ", style="dim")
            why.append(clean(line) + "\n")
        if r.detail:
            why.append(clean(r.detail), style="dim")
        why.rstrip()
        steps = Text(clean(r.delisting, limit=1200))
        url = r.zone.lookup_url(r.target.text)
        if url:
            steps.append("\nLook up: ", style="bold")
            steps.append(clean(url))
        table.add_row(
            Text(str(r.severity), style=_sev_style(r.severity)),
            Text(clean(r.target.display)),
            Text(clean(f"{r.zone.label}\n{r.zone.zone}")),
            why if why.plain else Text("-"),
            steps,
        )
    return table


def _unknown_table(results: Sequence[ZoneResult]) -> Table:
    table = Table(title="Could not check (unknown -- neither listed nor clean)", expand=False)
    for col in ("Target", "List", "Problem", "Detail"):
        table.add_column(col, overflow="fold")
    for r in results:
        detail = Text(clean(r.detail, limit=400))
        for line in r.txt:
            detail.append("\nTXT: ", style="dim")
            detail.append(clean(line))
        table.add_row(
            Text(clean(r.target.display)),
            Text(clean(r.zone.label)),
            Text(r.problem.value if r.problem else "?", style="yellow"),
            detail,
        )
    return table


def _when(dt: datetime | None) -> str:
    return dt.isoformat(sep=" ", timespec="seconds").replace("+00:00", "Z") if dt else "-"


def render_history(periods: Sequence[ListingPeriod], notes: Sequence[Note], console: Console) -> None:
    if not periods and not notes:
        console.print(Text("No listing recorded.", style="green"))
        return
    if periods:
        table = Table(title="Listings seen by past checks", show_lines=True)
        for col in ("Target", "List", "Appeared", "Disappeared", "Codes / reason", "Notes"):
            table.add_column(col, overflow="fold")
        for p in periods:
            appeared = Text(_when(p.appeared))
            appeared.append(
                f"\n(clean at {_when(p.clean_before)})" if p.clean_before else "\n(first check)", style="dim"
            )
            gone = Text(_when(p.disappeared)) if p.disappeared else Text("still listed", style="bold red")
            if not p.disappeared:
                gone.append(f"\n(last seen {_when(p.last_seen)})", style="dim")
            why = Text(", ".join(p.codes))
            for line in p.reasons[:3]:
                why.append("\n" + clean(line), style="dim")
            table.add_row(
                Text(clean(p.target)),
                Text(clean(f"{p.list_name}\n{p.zone}")),
                appeared,
                gone,
                why,
                Text("\n".join(f"{_when(n.at)}: {clean(n.text)}" for n in p.notes)),
            )
        console.print(table)
    listed_pairs = {(p.target, p.zone) for p in periods}
    orphans = [n for n in notes if (n.target, n.zone) not in listed_pairs]
    if orphans:
        console.print(Text("Notes on lists where no listing was recorded:", style="bold"))
        for n in orphans:
            console.print(Text(f"  {_when(n.at)}  {clean(n.target)}  {clean(n.zone)}: {clean(n.text)}"))
