"""Text rendering for the queue commands.

Everything a sender wrote -- subjects, addresses, header values, bodies, even queue ids read
back from tools -- goes through ``report.safe.clean`` before it reaches the terminal, so escape
sequences and bidi overrides show as visible ``\\x1b`` instead of acting on the screen.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from mailwarden.queues.base import QueuedMessage
from mailwarden.queues.reasons import explain
from mailwarden.report.safe import clean


def c(value: object, limit: int = 300) -> str:
    return clean("" if value is None else str(value), limit)


def age(seconds: float) -> str:
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d{(s % 86400) // 3600:02d}h"


def size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n = n / 1024  # type: ignore[assignment]
    return f"{n} B"


def when(epoch: int | None) -> str:
    if epoch is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(epoch))


def _top(title: str, rows: Sequence[Sequence[object]], width: int = 7) -> list[str]:
    if not rows:
        return []
    out = [f"{title}:"]
    out.extend(f"  {c(n):>{width}}  {c(k, 120)}" for k, n in rows)
    return out


def summary_lines(doc: dict[str, Any], header: str) -> list[str]:
    totals = doc["totals"]
    now = int(doc["now"])
    oldest = totals.get("oldest_arrival")
    lines = [
        f"{header}: {totals['messages']} message(s), {size(int(totals['bytes']))}, "
        f"{totals['recipients']} recipient(s) to deliver"
        + (f"; oldest {age(now - int(oldest))} old" if oldest is not None else "")
    ]
    queues = totals["queues"]
    if queues:
        lines.append(
            "  " + "   ".join(f"{c(q)} {v['messages']} ({size(v['bytes'])})" for q, v in queues.items())
        )
    ages = doc["ages"]
    if totals["messages"]:
        lines.append("Age: " + " | ".join(f"{k} {v}" for k, v in ages.items()))
        culprits = doc["culprits"]
        lines += _top("Who sent it (from our MTA's own records only)", culprits)
        if doc.get("unattributed"):
            lines.append(f"  {doc['unattributed']:>7}  (nothing trustworthy says who)")
        reasons = doc["deferral_reasons"]
        if reasons:
            lines.append("Why it is stuck (recipients / messages):")
            lines.extend(
                f"  {r['recipients']:>7} / {r['messages']:<5} {c(r['reason'], 120)}" for r in reasons
            )
        for key, title in (
            ("senders", "Top envelope senders"),
            ("accounts", "Top authenticated accounts"),
            ("local_uids", "Local submitters"),
            ("scripts", "Web scripts (X-PHP-Originating-Script, local mail only)"),
            ("clients", "Top client addresses"),
            ("recipient_domains", "Top recipient domains (recipients)"),
        ):
            rows = doc[key]
            lines += _top(title, rows)
    dropped = doc.get("dropped")
    if dropped:
        lines.append(f"(tallies full, not counted: {dropped})")
    return lines


def message_row(m: QueuedMessage, now: int, why: Sequence[str] = ()) -> str:
    culprit = m.attribution.culprit() if m.attribution else ""
    cols = [
        f"{c(m.id, 32):<12}",
        f"{c(m.queue, 10):<9}",
        f"{age(now - m.arrival):>7}",
        f"{m.size:>8}",
        f"{c(m.sender or '<>', 60):<28}",
        f"{c(culprit, 60):<30}",
    ]
    tail = c(m.subject, 80) if m.subject is not None else ""
    if why:
        tail = "why: " + c("; ".join(why), 200)
    return " ".join(cols) + " " + tail


def list_header(why: bool = False) -> str:
    return f"{'ID':<12} {'QUEUE':<9} {'AGE':>7} {'SIZE':>8} {'SENDER':<28} {'SENT BY':<30} " + (
        "WHY SELECTED" if why else "SUBJECT"
    )


def show_lines(
    doc: dict[str, Any], headers: Sequence[tuple[str, str]], body: str, body_lines: int
) -> list[str]:
    m = doc["message"]
    lines = [
        f"Queue id:  {c(m['id'])}   queue: {c(m['queue'])}   size: {m['size']}   arrived: {c(m['arrival'])}",
        f"Sender:    {c(m['sender'] or '<>')}",
        "Recipients still to deliver:",
    ]
    for r in m["recipients"]:
        d = explain(r["delay_reason"], r["address"].rpartition("@")[2])
        lines.append(f"  {c(r['address'])}" + (f"  [{c(d.label)}]" if r["delay_reason"] else ""))
        if r["delay_reason"]:
            lines.append(f"      {c(r['delay_reason'], 400)}")
    a = m.get("attribution")
    if isinstance(a, dict):
        lines.append("Attribution (trusted: our MTA's envelope and its own Received header):")
        for key in ("account", "uid", "local_user", "script", "client", "helo", "received_by", "source"):
            if a.get(key) not in (None, ""):
                lines.append(f"  {key:<12} {c(a[key])}")
        claimed = a.get("claimed")
        if isinstance(claimed, dict):
            for key, val in claimed.items():
                if val:
                    lines.append(f"  {key:<12} {c(val)}   (claimed by the sender)")
        for note in a.get("notes", []):
            lines.append(f"  note: {c(note, 300)}")
    lines.append("Headers:")
    for name, value in headers[:200]:
        lines.append(f"  {c(name, 80)}: {c(value, 300)}")
    if len(headers) > 200:
        lines.append(f"  ... {len(headers) - 200} more")
    lines.append(f"Body (first {body_lines} lines, decoded text):")
    blines = body.splitlines()
    for ln in blines[:body_lines]:
        lines.append("  " + c(ln, 200))
    if len(blines) > body_lines:
        lines.append(f"  ... {len(blines) - body_lines} more lines")
    return lines
