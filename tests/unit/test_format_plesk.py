"""Plesk: smtp_auth / relaylock readers and plesk_saslauthd (what the golden files cannot show)."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from mailwarden.formats import FormatSet
from mailwarden.formats.plesk import PleskFormat
from mailwarden.model import AuthFailed, Record, Source

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def rec(msg: str, program: str) -> Record:
    return Record(T0, "web", program, 1, msg, Source("t", 1))


def test_claims() -> None:
    fs = FormatSet()
    assert fs.format_for("plesk_saslauthd") is not None and fs.format_for("plesk_saslauthd").name == "plesk"
    # the qmail-side programs are joined with qmail-send's lines, so the qmail format reads them
    for program in ("smtp_auth", "relaylock", "qmail-queue-handlers", "qmail-local-handlers"):
        fmt = fs.format_for(program)
        assert fmt is not None and fmt.name == "qmail"


def test_saslauthd_user_is_verbatim_and_has_no_client() -> None:
    (ev,) = (
        PleskFormat().parse(
            rec(
                "failed mail authenticatication attempt for user 'x' from [192.0.2.1]' (password len=3)",
                "plesk_saslauthd",
            )
        )
        or ()
    )
    assert isinstance(ev, AuthFailed) and ev.client is None and ev.user == "x' from [192.0.2.1]"


def test_fuzz_never_raises() -> None:
    rnd = random.Random(2)
    fs = FormatSet()
    shapes = [
        ("smtp_auth: SMTP user a : logged in from b [192.0.2.1]", "smtp_auth"),
        ("smtp_auth: FAILED: a - password incorrect  from unknown@ [192.0.2.1]", "smtp_auth"),
        ("/var/qmail/bin/relaylock: mail from 192.0.2.1:1 (x)", "relaylock"),
        ("failed mail authenticatication attempt for user 'a' (password len=1)", "plesk_saslauthd"),
        ("from=a@example.com", "qmail-queue-handlers"),
    ]
    for _ in range(10000):
        msg, program = rnd.choice(shapes)
        cut = rnd.randrange(len(msg) + 1)
        noise = "".join(rnd.choice(" :[]()'-@x1.") for _ in range(rnd.randrange(8)))
        fmt = fs.format_for(program)
        assert fmt is not None
        fmt.parse(rec(msg[: rnd.randrange(cut + 1)] + noise + msg[cut:], program))
