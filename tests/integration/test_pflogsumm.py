"""Our Postfix message totals agree with pflogsumm's Grand Totals on the same logs.

pflogsumm is the tool operators already trust for these numbers; where we
count differently it must be explained in docs/formats/postfix.md. Runs the
real pflogsumm (Debian package), on logs written by real Postfix daemons.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mailwarden.pipeline import triage

ROOT = Path(__file__).parents[2]
LOGS = [ROOT / "examples" / "incident" / "mail.log", ROOT / "tests" / "data" / "lab-postfix.log"]
FIELDS = ("received", "delivered", "forwarded", "deferred", "bounced", "rejected", "held")

pytestmark = pytest.mark.integration


def _pflogsumm() -> str:
    exe = shutil.which("pflogsumm")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("pflogsumm is not installed (scripts/install-test-deps.sh installs it)")
        pytest.skip("pflogsumm is not installed")
    return exe


def grand_totals(text: str) -> dict[str, int]:
    section = text.split("Grand Totals", 1)[1].split("Per-Hour", 1)[0]
    out: dict[str, int] = {}
    for name in FIELDS:
        m = re.search(rf"^\s*(\d+)\s+{name}\b", section, re.MULTILINE)
        assert m, f"pflogsumm printed no {name!r} total"
        out[name] = int(m.group(1))
    m = re.search(r"^\s*\d+\s+deferred\s+\(\s*(\d+)\s+deferrals\)", section, re.MULTILINE)
    assert m
    out["deferrals"] = int(m.group(1))
    return out


@pytest.mark.parametrize("log", LOGS, ids=[p.name for p in LOGS])
def test_totals_match_pflogsumm(log: Path) -> None:
    exe = _pflogsumm()
    run = subprocess.run([exe, str(log)], capture_output=True, text=True, timeout=120, check=True)
    theirs = grand_totals(run.stdout)
    ours = triage([str(log)]).totals.to_dict()
    assert {k: ours[k] for k in theirs} == theirs
    assert theirs["received"] > 0 and theirs["delivered"] > 0
