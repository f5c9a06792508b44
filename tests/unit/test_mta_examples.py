"""The bundled per-MTA samples (examples/mta) give what their README promises."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.scenarios.expect import compromised_incident

from mailwarden.pipeline import triage
from mailwarden.report.json_report import to_dict

ROOT = Path(__file__).parents[2]
EXAMPLES = ROOT / "examples" / "mta"
GEO = str(ROOT / "examples" / "lab-geo.mmdb")
MTAS = sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir())


def test_every_mta_writer_has_an_example() -> None:
    from tests.scenarios.writers import WRITERS

    assert set(MTAS) == set(WRITERS) - {"postfix"}


@pytest.mark.parametrize("mta", MTAS)
def test_example_shows_the_cracked_account(mta: str) -> None:
    doc = to_dict(triage([str(EXAMPLES / mta)], geoip_paths=[GEO]))
    assert doc["stats"]["unparsed"] == {} and doc["stats"]["unclaimed"] == {}
    compromised_incident(doc)
