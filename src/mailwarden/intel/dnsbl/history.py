"""Check history in SQLite: when each listing appeared and disappeared, and what was done.

Every ``dnsbl check`` stores its results; ``dnsbl note`` stores what the
operator did (a delisting request, a ticket number). ``timeline`` turns the
stored checks into listing periods per (target, list):

* a period *appears* at the first check that saw the target listed -- it was
  clean at the check before (``clean_before``), so it appeared in between;
* it *disappears* at the first later check that saw it not listed;
* ``unknown`` results change nothing: a timeout is not a delisting.

The schema is versioned with ``PRAGMA user_version``; a database written by a
newer mailwarden is refused rather than misread.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from mailwarden.intel.dnsbl.errors import HistoryError
from mailwarden.intel.dnsbl.model import CheckReport, Status

SCHEMA_VERSION = 1

_SCHEMA_V1 = """
CREATE TABLE checks (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    resolver TEXT NOT NULL
);
CREATE TABLE results (
    check_id INTEGER NOT NULL REFERENCES checks(id) ON DELETE CASCADE,
    target TEXT NOT NULL,
    zone TEXT NOT NULL,
    list TEXT NOT NULL,
    status TEXT NOT NULL,
    codes TEXT NOT NULL,
    txt TEXT NOT NULL,
    problem TEXT
);
CREATE INDEX results_by_pair ON results (target, zone, check_id);
CREATE TABLE notes (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    target TEXT NOT NULL,
    zone TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX notes_by_pair ON notes (target, zone);
"""


def default_db_path(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_STATE_HOME/mailwarden/dnsbl.sqlite``, else ``~/.local/state/mailwarden/dnsbl.sqlite``."""
    env = os.environ if env is None else env
    base = env.get("XDG_STATE_HOME") or ""
    root = Path(base) if os.path.isabs(base) else Path.home() / ".local" / "state"
    return root / "mailwarden" / "dnsbl.sqlite"


@dataclass(frozen=True, slots=True)
class Note:
    at: datetime
    target: str
    zone: str
    text: str

    def to_dict(self) -> dict[str, object]:
        return {"at": self.at.isoformat(), "target": self.target, "zone": self.zone, "text": self.text}


@dataclass(slots=True)
class ListingPeriod:
    """One continuous listing of a target on a list, as seen by the stored checks."""

    target: str
    zone: str
    list_name: str
    appeared: datetime
    last_seen: datetime
    clean_before: datetime | None = None  # the last check before ``appeared`` that saw it clean
    disappeared: datetime | None = None
    codes: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "target": self.target,
            "zone": self.zone,
            "list": self.list_name,
            "appeared": self.appeared.isoformat(),
            "clean_before": self.clean_before.isoformat() if self.clean_before else None,
            "last_seen": self.last_seen.isoformat(),
            "disappeared": self.disappeared.isoformat() if self.disappeared else None,
            "codes": list(self.codes),
            "txt": list(self.reasons),
            "notes": [n.to_dict() for n in self.notes],
        }


class History:
    """The history database; use as a context manager."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path)
        except (OSError, sqlite3.Error) as exc:
            raise HistoryError(f"{self.path}: cannot open: {exc}") from exc
        try:
            self.db.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except sqlite3.Error as exc:
            self.db.close()
            raise HistoryError(f"{self.path}: {exc}") from exc
        except HistoryError:
            self.db.close()
            raise

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()

    def _migrate(self) -> None:
        (version,) = self.db.execute("PRAGMA user_version").fetchone()
        if version > SCHEMA_VERSION:
            raise HistoryError(
                f"{self.path}: written by a newer mailwarden "
                f"(schema {version} > {SCHEMA_VERSION}); not touched"
            )
        if version == 0:
            tables = self.db.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
            if tables:
                raise HistoryError(f"{self.path}: not a mailwarden dnsbl history (unknown tables)")
            with self.db:
                self.db.executescript(_SCHEMA_V1)
                self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        # Later versions: `if version < 2: ...` steps here, each in one transaction.

    def record(self, report: CheckReport) -> int:
        """Store one check; return its id."""
        try:
            with self.db:
                cur = self.db.execute(
                    "INSERT INTO checks (at, resolver) VALUES (?, ?)",
                    (_iso(report.started), report.resolver),
                )
                check_id = int(cur.lastrowid or 0)
                self.db.executemany(
                    "INSERT INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            check_id,
                            r.target.text,
                            r.zone.zone,
                            r.zone.name,
                            r.status.value,
                            json.dumps([c.address for c in r.codes]),
                            json.dumps(list(r.txt), ensure_ascii=False),
                            r.problem.value if r.problem else None,
                        )
                        for r in report.results
                    ],
                )
        except sqlite3.Error as exc:
            raise HistoryError(f"{self.path}: cannot record the check: {exc}") from exc
        return check_id

    def note(self, target: str, zone: str, text: str, at: datetime | None = None) -> Note:
        note = Note(at or datetime.now(UTC), target, zone, text)
        try:
            with self.db:
                self.db.execute(
                    "INSERT INTO notes (at, target, zone, text) VALUES (?, ?, ?, ?)",
                    (_iso(note.at), target, zone, text),
                )
        except sqlite3.Error as exc:
            raise HistoryError(f"{self.path}: cannot store the note: {exc}") from exc
        return note

    def notes(self, target: str | None = None) -> list[Note]:
        sql = "SELECT at, target, zone, text FROM notes"
        args: tuple[str, ...] = ()
        if target is not None:
            sql, args = sql + " WHERE target = ?", (target,)
        rows = self.db.execute(sql + " ORDER BY at, id", args).fetchall()
        return [Note(_dt(at), t, z, text) for at, t, z, text in rows]

    def checks(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM checks").fetchone()[0])

    def timeline(self, target: str | None = None) -> list[ListingPeriod]:
        """Listing periods (oldest first within each pair), with each pair's notes attached."""
        periods: list[ListingPeriod] = []
        open_: dict[tuple[str, str], ListingPeriod] = {}
        last_clean: dict[tuple[str, str], datetime] = {}
        for at, t, zone, name, status, codes, txt in self._rows(target):
            key = (t, zone)
            if status == Status.LISTED:
                period = open_.get(key)
                if period is None:
                    period = ListingPeriod(t, zone, name, at, at, clean_before=last_clean.get(key))
                    open_[key] = period
                    periods.append(period)
                period.last_seen = at
                for c in json.loads(codes):
                    if c not in period.codes:
                        period.codes.append(c)
                for line in json.loads(txt):
                    if line not in period.reasons:
                        period.reasons.append(line)
            elif status == Status.NOT_LISTED:
                period = open_.pop(key, None)
                if period is not None:
                    period.disappeared = at
                last_clean[key] = at
        by_pair: dict[tuple[str, str], list[Note]] = {}
        for n in self.notes(target):
            by_pair.setdefault((n.target, n.zone), []).append(n)
        for p in periods:
            p.notes = by_pair.get((p.target, p.zone), [])
        return periods

    def _rows(self, target: str | None) -> Iterator[tuple[datetime, str, str, str, str, str, str]]:
        sql = (
            "SELECT c.at, r.target, r.zone, r.list, r.status, r.codes, r.txt "
            "FROM results r JOIN checks c ON c.id = r.check_id"
        )
        args: tuple[str, ...] = ()
        if target is not None:
            sql, args = sql + " WHERE r.target = ?", (target,)
        try:
            for at, *rest in self.db.execute(sql + " ORDER BY c.at, c.id", args):
                yield (_dt(at), *rest)
        except sqlite3.Error as exc:
            raise HistoryError(f"{self.path}: {exc}") from exc


def _iso(dt: datetime) -> str:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).isoformat(timespec="seconds")


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text)
