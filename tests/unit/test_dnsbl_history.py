"""History: listing periods from stored checks, notes, and the versioned schema."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mailwarden.intel.dnsbl.errors import HistoryError
from mailwarden.intel.dnsbl.history import SCHEMA_VERSION, History, default_db_path
from mailwarden.intel.dnsbl.model import CheckReport, Problem, Status, ZoneResult
from mailwarden.intel.dnsbl.targets import parse_target, query_name
from mailwarden.intel.dnsbl.zones import load_catalogue

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
_zen = load_catalogue().find("spamhaus-zen")
assert _zen is not None
ZEN = _zen
IP = parse_target("203.0.113.7")


def report(at: datetime, status: Status, problem: Problem | None = None) -> CheckReport:
    codes = (ZEN.code("127.0.0.2"),) if status is Status.LISTED else ()
    r = ZoneResult(
        IP, ZEN, query_name(IP, ZEN.zone), status, codes=tuple(c for c in codes if c),
        txt=("Listed in SBL",) if codes else (), problem=problem,
    )  # fmt: skip
    return CheckReport(at, 0.1, "127.0.0.1:5353", (IP,), (ZEN,), (r,))


def test_periods_appear_and_disappear_unknown_changes_nothing(tmp_path: Path) -> None:
    with History(tmp_path / "h.sqlite") as h:
        sequence = [
            Status.NOT_LISTED, Status.LISTED, Status.UNKNOWN, Status.LISTED, Status.NOT_LISTED,
            Status.UNKNOWN, Status.LISTED,
        ]  # fmt: skip
        for i, st in enumerate(sequence):
            h.record(report(T0 + timedelta(hours=i), st, Problem.TIMEOUT if st is Status.UNKNOWN else None))
        h.note(
            "203.0.113.7", "zen.spamhaus.org", "delisting requested, ticket 42", at=T0 + timedelta(hours=2)
        )
        periods = h.timeline()
        assert h.checks() == 7
    assert len(periods) == 2
    first, second = periods
    assert first.appeared == T0 + timedelta(hours=1)
    assert first.clean_before == T0
    assert first.last_seen == T0 + timedelta(hours=3)
    assert first.disappeared == T0 + timedelta(hours=4)
    assert first.codes == ["127.0.0.2"] and first.reasons == ["Listed in SBL"]
    assert [n.text for n in first.notes] == ["delisting requested, ticket 42"]
    assert second.appeared == T0 + timedelta(hours=6)
    assert second.clean_before == T0 + timedelta(hours=4)
    assert second.disappeared is None
    assert second.to_dict()["disappeared"] is None


def test_first_ever_check_listed_has_no_clean_before(tmp_path: Path) -> None:
    with History(tmp_path / "h.sqlite") as h:
        h.record(report(T0, Status.LISTED))
        (p,) = h.timeline("203.0.113.7")
        assert p.clean_before is None
        assert h.timeline("198.51.100.1") == []


def test_schema_version_set_and_newer_refused(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    History(path).close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(HistoryError, match="newer mailwarden"):
        History(path)


def test_foreign_database_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE x (y)")
    db.commit()
    db.close()
    with pytest.raises(HistoryError, match="not a mailwarden"):
        History(path)


def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "junk.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(HistoryError):
        History(path)


def test_default_path_honours_xdg_state_home(tmp_path: Path) -> None:
    assert default_db_path({"XDG_STATE_HOME": str(tmp_path)}) == tmp_path / "mailwarden" / "dnsbl.sqlite"
    relative = default_db_path({"XDG_STATE_HOME": "relative/ignored"})
    assert relative.parts[-4:] == (".local", "state", "mailwarden", "dnsbl.sqlite")
