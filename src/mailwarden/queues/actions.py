"""Changing the queue: hold, release, export, verified delete, reinject.

Deletion is the one step that cannot be undone by mailwarden, so it goes:

1. read each selected message and take its SHA-256 -- writing it to the export unless
   ``--no-export``; the export's manifest is complete before anything is deleted;
2. list the queue again, and in batches: check each id still names the *same* message --
   arrival time, envelope sender and size as when it was selected (queue ids are reused:
   postsuper(1) warns that an id may name a different message later) -- and read it again
   and compare its SHA-256 with step 1;
3. delete exactly the ids that passed, and read back which ones the MTA removed.

Anything that fails a check is left alone and reported as skipped, with the reason. The window
between step 2's reread and the MTA's delete of the same batch is a few milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from mailwarden.queues.base import MessageNotFound, QueueBackend, QueuedMessage
from mailwarden.queues.export import Exporter, ExportError, sha256

VERIFY_BATCH = 200
READ_WORKERS = 4


@dataclass(slots=True)
class Outcome:
    """What an action did: the ids acted on, the ones left alone (and why), the export."""

    action: str
    acted: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    export: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "action": self.action,
            "acted": list(self.acted),
            "skipped": dict(self.skipped),
            "export": self.export,
        }


def _read_all(backend: QueueBackend, ids: Sequence[str]) -> list[bytes | None]:
    def one(qid: str) -> bytes | None:
        try:
            return backend.read(qid)
        except MessageNotFound:
            return None

    with ThreadPoolExecutor(max_workers=READ_WORKERS) as pool:
        return list(pool.map(one, ids))


def hold(backend: QueueBackend, messages: Sequence[QueuedMessage]) -> Outcome:
    out = Outcome("hold")
    ids = [m.id for m in messages if m.queue != "hold"]
    for m in messages:
        if m.queue == "hold":
            out.skipped[m.id] = "already on hold"
    out.acted = backend.hold(ids)
    for qid in set(ids) - set(out.acted):
        out.skipped[qid] = "not put on hold (gone, or already held)"
    return out


def release(backend: QueueBackend, messages: Sequence[QueuedMessage]) -> Outcome:
    out = Outcome("release")
    ids = [m.id for m in messages if m.queue == "hold"]
    for m in messages:
        if m.queue != "hold":
            out.skipped[m.id] = f"not on hold (in {m.queue})"
    out.acted = backend.release(ids)
    for qid in set(ids) - set(out.acted):
        out.skipped[qid] = "not released (gone, or no longer on hold)"
    return out


def export(
    backend: QueueBackend, messages: Sequence[QueuedMessage], exporter: Exporter
) -> tuple[Outcome, dict[str, str]]:
    """Write each message to ``exporter``; returns the outcome and id -> SHA-256 of what was read."""
    out = Outcome("export", export=str(exporter.dir))
    hashes: dict[str, str] = {}
    try:
        for start in range(0, len(messages), VERIFY_BATCH):
            batch = messages[start : start + VERIFY_BATCH]
            for m, data in zip(batch, _read_all(backend, [m.id for m in batch]), strict=True):
                if data is None:
                    out.skipped[m.id] = "gone before it could be read"
                    continue
                item = exporter.add(m, data)
                hashes[m.id] = item.sha256
                out.acted.append(m.id)
        exporter.close()
    except BaseException:
        exporter.abort()
        raise
    return out, hashes


def fingerprint_change(planned: QueuedMessage, now: QueuedMessage | None) -> str:
    """'' when ``now`` is still the message that was selected, else what differs."""
    if now is None:
        return "gone (delivered, expired or deleted meanwhile)"
    diffs = [
        f"{name} {a!r} -> {b!r}"
        for name, a, b in (
            ("arrival", planned.arrival, now.arrival),
            ("sender", planned.sender, now.sender),
            ("size", planned.size, now.size),
        )
        if a != b
    ]
    return ("queue id reused by another message: " + ", ".join(diffs)) if diffs else ""


def delete_verified(
    backend: QueueBackend,
    messages: Sequence[QueuedMessage],
    exporter: Exporter | None,
    *,
    on_batch: Callable[[int, int], None] | None = None,
) -> Outcome:
    """Export (unless ``exporter`` is None), verify, delete; see the module docstring."""
    out = Outcome("delete")
    if exporter is not None:
        exp, hashes = export(backend, messages, exporter)
        out.export = exp.export
        out.skipped.update(exp.skipped)
    else:
        hashes = {}
        for start in range(0, len(messages), VERIFY_BATCH):
            batch = messages[start : start + VERIFY_BATCH]
            for m, data in zip(batch, _read_all(backend, [m.id for m in batch]), strict=True):
                if data is None:
                    out.skipped[m.id] = "gone before it could be read"
                else:
                    hashes[m.id] = sha256(data)
    if exporter is not None and not exporter.closed:
        raise ExportError("export not complete; nothing deleted")
    current = {m.id: m for m in backend.list_messages()}
    todo = [m for m in messages if m.id in hashes]
    for start in range(0, len(todo), VERIFY_BATCH):
        batch = todo[start : start + VERIFY_BATCH]
        ok: list[str] = []
        candidates = []
        for m in batch:
            change = fingerprint_change(m, current.get(m.id))
            if change:
                out.skipped[m.id] = change
            else:
                candidates.append(m)
        for m, data in zip(candidates, _read_all(backend, [m.id for m in candidates]), strict=True):
            if data is None:
                out.skipped[m.id] = "gone (delivered, expired or deleted meanwhile)"
            elif sha256(data) != hashes[m.id]:
                out.skipped[m.id] = "content differs from what was exported: queue id reused?"
            else:
                ok.append(m.id)
        removed = backend.delete(ok)
        out.acted.extend(removed)
        for qid in set(ok) - set(removed):
            out.skipped[qid] = "the MTA did not remove it (gone meanwhile?)"
        if on_batch:
            on_batch(len(out.acted), len(todo))
    return out
