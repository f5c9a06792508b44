#!/usr/bin/env python3
"""Write the classic incident in every MTA's own log shapes, under examples/mta/<mta>/.

The real-stack sample (examples/incident) exists for Postfix + Dovecot only: the other
MTAs cannot run beside the system's Postfix on one machine. These samples come from the
scenario writers (tests/scenarios/writers), whose line shapes are copied from each
format's golden files, which cite their public sources (docs/formats/<format>.md). They are
labelled synthetic in examples/mta/README.md and pinned by tests/unit/test_mta_examples.py.

Usage: python tools/write_mta_examples.py [--out examples/mta]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.scenarios import plays  # noqa: E402
from tests.scenarios.writers import WRITERS  # noqa: E402

MTIME = datetime(2026, 11, 28, 12, 0, 0).timestamp()


def office_day(w: Any) -> None:
    """One ordinary day: the people who must not be flagged."""
    base = plays.T0 + timedelta(days=3)
    for h in range(9, 17):
        t = base.replace(hour=h, minute=7)
        w.imap_login(t, plays.OFFICE, "alice@example.com")
        w.smtp_auth_message(t + timedelta(minutes=3), plays.OFFICE, "alice@example.com",
                            [(f"client{h}@example.org", "sent")])  # fmt: skip
        w.inbound_message(t + timedelta(minutes=5), "198.51.100.200", f"partner{h}@example.org",
                          "alice@example.com")  # fmt: skip
    for k in range(3):
        w.imap_fail(base.replace(hour=10) + timedelta(seconds=20 * k), plays.OFFICE, "erin@example.com")
    w.imap_login(base.replace(hour=10, minute=2), plays.OFFICE, "erin@example.com")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "examples" / "mta"))
    args = ap.parse_args()
    out = Path(args.out)
    for name in sorted(WRITERS):
        if name == "postfix":
            continue  # examples/incident is the real-stack Postfix sample
        w = WRITERS[name](plays.T0)
        office_day(w)
        plays.compromised(w)
        target = out / name
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        paths = w.write(target, MTIME)
        print(f"{name}: {', '.join(str(p.relative_to(out)) for p in paths)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
