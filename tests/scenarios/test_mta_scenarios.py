"""The same plays through every MTA's logs: every detector must work on each as on Postfix.

A writer per family (writers/) renders the plays in that MTA's log shapes;
triage reads them with the real framers and parsers. The assertions are
the contract fields of the JSON output, the same for every MTA; where an MTA
cannot log something (a numeric uid, a script path), the test says so.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from mailwarden.pipeline import triage
from mailwarden.report.json_report import to_dict
from tests.scenarios import plays
from tests.scenarios.expect import compromised_incident
from tests.scenarios.writers import WRITERS

GEO = str(Path(__file__).parents[1] / "data" / "lab-geo.mmdb")
MTIME = datetime(2026, 11, 28, 12, 0, 0).timestamp()

MTAS = sorted(WRITERS)


def run(tmp_path: Path, w: Any) -> dict[str, Any]:
    paths = w.write(tmp_path, MTIME)
    doc = to_dict(triage([str(p) for p in paths], geoip_paths=[GEO]))
    stats = doc["stats"]
    assert stats["unparsed"] == {}, stats["unparsed"]
    assert stats["unclaimed"] == {}, stats["unclaimed"]
    assert stats["skipped"] == {}, stats["skipped"]
    return doc


def kinds(doc: dict[str, Any]) -> list[str]:
    return [i["kind"] for i in doc["incidents"]]


def played(
    tmp_path: Path, mta: str, scene: Callable[[Any], None] | None = None
) -> tuple[Any, dict[str, Any]]:
    """The benign corpus plus ``scene``, written by ``mta``'s writer and triaged."""
    w = WRITERS[mta](plays.T0)
    plays.benign(w)
    if scene is not None:
        scene(w)
    return w, run(tmp_path, w)


@pytest.mark.parametrize("mta", MTAS)
def test_benign_corpus_is_silent(tmp_path: Path, mta: str) -> None:
    _, doc = played(tmp_path, mta)
    assert doc["incidents"] == [], [i["summary"] for i in doc["incidents"]]
    assert doc["verdict"] == "clean"
    news = next(a for a in doc["accounts"] if a["account"] == "news@example.com")
    assert news["messages"] == 600


@pytest.mark.parametrize("mta", MTAS)
def test_compromised_account(tmp_path: Path, mta: str) -> None:
    compromised_incident(played(tmp_path, mta, plays.compromised)[1])


@pytest.mark.parametrize("mta", MTAS)
def test_brute_force(tmp_path: Path, mta: str) -> None:
    _, doc = played(tmp_path, mta, plays.brute_force)
    assert kinds(doc) == ["brute_force"]
    inc = doc["incidents"][0]
    assert inc["subject"]["ip"] == "198.51.100.23"
    assert inc["failed_logins"] == 30  # each try counted once, however many layers log it
    assert inc["countries"] == ["RU"]


@pytest.mark.parametrize("mta", MTAS)
def test_password_spray(tmp_path: Path, mta: str) -> None:
    _, doc = played(tmp_path, mta, plays.password_spray)
    assert kinds(doc) == ["password_spray"]
    inc = doc["incidents"][0]
    assert inc["subject"]["ip"] == "198.51.100.150"
    assert len(inc["subject"]["accounts"]) == 12
    assert inc["countries"] == ["CN"]


@pytest.mark.parametrize("mta", MTAS)
def test_distributed_attack(tmp_path: Path, mta: str) -> None:
    _, doc = played(tmp_path, mta, plays.distributed_attack)
    assert kinds(doc) == ["distributed_attack"]
    inc = doc["incidents"][0]
    assert inc["subject"]["account"] == "dave@example.com"
    assert inc["failed_logins"] == 24
    assert set(inc["countries"]) == {"IN", "IT", "BR", "NG"}


@pytest.mark.parametrize("mta", MTAS)
def test_unauthenticated_injection(tmp_path: Path, mta: str) -> None:
    _, doc = played(tmp_path, mta, plays.injection)
    assert kinds(doc) == ["unauthenticated_injection"]
    inc = doc["incidents"][0]
    assert inc["subject"]["ip"] == "127.0.0.1"
    assert inc["path"] == "unauthenticated_smtp"
    assert inc["messages"] == 20 and inc["recipients"] == 20 and inc["bounced"] == 4


@pytest.mark.parametrize("mta", MTAS)
def test_web_script(tmp_path: Path, mta: str) -> None:
    w, doc = played(tmp_path, mta, plays.web_script)
    assert kinds(doc) == ["web_script"]
    inc = doc["incidents"][0]
    subject = inc["subject"]
    # the uid where the MTA logs numbers (Postfix, qmail, Sendmail), the login name where it logs names (Exim)
    assert subject.get("uid") == 33 or subject.get("user") == "www-data", subject
    if getattr(w, "carries_script", False):  # the writer's MTA (or PHP's mail.log beside it) names the script
        assert str(subject.get("script")).endswith("contact.php"), subject
    assert inc["path"] == "local_submission"
    assert inc["messages"] == 25
