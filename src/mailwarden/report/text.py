"""The terminal report: verdict first, then evidence, then next steps.

Written for the operator who is in the middle of an incident: the first
lines must say whether the server is being abused and by whom; details
follow for those who need to convince themselves. Every log-derived string
goes through ``safe.clean`` and is rendered as plain ``Text`` (never as rich
markup), so attacker-written text cannot style or rewrite the terminal.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from mailwarden.model.findings import Incident
from mailwarden.pipeline import TriageResult
from mailwarden.report.safe import clean

_STYLE = {"critical": "bold white on red", "high": "bold red", "medium": "yellow", "low": "cyan"}
_KIND = {
    "compromised_account": "Compromised account",
    "brute_force": "Brute force",
    "distributed_attack": "Distributed attack on one account",
    "password_spray": "Password spraying",
    "unauthenticated_injection": "Unauthenticated SMTP injection",
    "web_script": "Web script sending mail",
    "open_relay": "Open relay",
}


def _subject(inc: Incident) -> str:
    s = inc.subject
    if "account" in s:
        return str(s["account"])
    if "uid" in s:
        return f"uid {s['uid']}" + (f" ({s['script']})" if s.get("script") else "")
    return str(s.get("ip", ""))


def _ts(inc_ts: object) -> str:
    return str(inc_ts)[:19].replace("T", " ")


def render(result: TriageResult, console: Console) -> None:
    incs = result.incidents
    if not incs:
        console.print(Text("VERDICT: no abuse found in these logs.", style="bold green"))
    else:
        worst = incs[0].severity.upper()
        line = Text(f"VERDICT: {worst} — {len(incs)} incident(s). ", style="bold")
        line.append(clean(incs[0].summary))
        console.print(line)
    if result.first_ts and result.last_ts:
        console.print(
            Text(
                f"Logs cover {_ts(result.first_ts.isoformat())} → {_ts(result.last_ts.isoformat())} (UTC)",
                style="dim",
            )
        )
    for n, inc in enumerate(incs, 1):
        _incident(console, n, inc)
    _totals(console, result)


def _incident(console: Console, n: int, inc: Incident) -> None:
    console.print()
    head = Text(f"{n}. ")
    head.append(f" {inc.severity.upper()} ", style=_STYLE.get(inc.severity, ""))
    head.append(f" {_KIND.get(inc.kind, inc.kind)}: ", style="bold")
    head.append(clean(_subject(inc)), style="bold")
    head.append(f"  via {inc.path}", style="dim")
    console.print(head)
    console.print(Text("   " + clean(inc.summary, 500)))
    console.print(
        Text(
            f"   When: {_ts(inc.first_seen.isoformat())} → {_ts(inc.last_seen.isoformat())}",
            style="dim",
        )
    )
    if inc.countries:
        console.print(Text("   Countries: " + ", ".join(inc.countries)))
    counts = []
    for label, value in (
        ("messages", inc.messages),
        ("recipients", inc.recipients),
        ("bounced", inc.bounced),
        ("deferred", inc.deferred),
        ("failed logins", inc.failed_logins),
        ("still queued", len(inc.queued_ids)),
    ):
        if value:
            counts.append(f"{value} {label}")
    if counts:
        console.print(Text("   Counts: " + ", ".join(counts)))
    if inc.reasons:
        console.print(Text("   Why:", style="bold"))
        for r in inc.reasons:
            console.print(Text("    - " + clean(r)))
    if inc.timeline:
        console.print(Text("   Timeline:", style="bold"))
        for ev in inc.timeline:
            console.print(
                Text(
                    f"    {_ts(ev.ts.isoformat())}  {clean(ev.what, 160)}  "
                    f"[{clean(ev.source.file, 80)}:{ev.source.line}]"
                )
            )
    if inc.addresses and inc.kind in ("compromised_account", "distributed_attack", "open_relay"):
        table = Table(show_edge=False, pad_edge=False, box=None, padding=(0, 1))
        for col in ("address", "country", "network", "logins", "messages"):
            table.add_column(col)
        for a in inc.addresses[:12]:
            table.add_row(
                clean(str(a.get("ip", "")), 45),
                str(a.get("country") or "-"),
                clean(str(a.get("org") or "-"), 40),
                str(a.get("logins", "")),
                str(a.get("messages", "")),
            )
        console.print(Text("   Addresses:", style="bold"))
        console.print(table)
    ev_other = [e for e in inc.evidence if e not in inc.timeline][:5]
    if ev_other:
        console.print(Text("   More evidence:", style="bold"))
        for ev in ev_other:
            console.print(Text(f"    {clean(ev.source.file, 80)}:{ev.source.line}  {clean(ev.what, 160)}"))
    console.print(Text("   Next steps:", style="bold"))
    for i, step in enumerate(inc.recommended_actions, 1):
        console.print(Text(f"    {i}. " + clean(step, 600)))


def _totals(console: Console, result: TriageResult) -> None:
    console.print()
    t = result.totals
    console.print(
        Text(
            f"Mail: {t.received} received, {t.delivered} delivered, {t.deferred} deferred "
            f"({t.deferrals} deferrals), {t.bounced} bounced, {t.rejected} rejected; "
            f"{result.still_queued} still queued at the end of the logs.",
            style="dim",
        )
    )
    s = result.stats
    skipped = ", ".join(f"{k}={v}" for k, v in sorted(s.skipped.items())) or "none"
    unparsed = sum(s.unparsed.values())
    console.print(
        Text(
            f"Input: {len(s.files)} file(s), {s.lines_read} lines, {s.parsed} understood, "
            f"{unparsed} not understood, {sum(s.unclaimed.values())} from other programs; "
            f"skipped: {skipped}.",
            style="dim",
        )
    )
    console.print(Text(clean(s.formats_line(), 600), style="dim"))
    for p in s.problems[:10]:
        console.print(Text("Problem: " + clean(p), style="yellow"))
