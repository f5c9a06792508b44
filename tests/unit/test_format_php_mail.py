"""PHP mail.log format: claims, attacker text kept verbatim and short, no input raising."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailwarden.formats import FormatSet
from mailwarden.formats.php_mail import PhpMailFormat
from mailwarden.model import Record, ScriptMail, Source

TS = datetime(2026, 11, 27, 17, 34, 14, tzinfo=UTC)
FMT = PhpMailFormat()


def _record(program: str, message: str) -> Record:
    return Record(TS, "web", program, None, message, Source("mail.log", 1))


@pytest.mark.parametrize("program", ["php-mail", "php", "php-fpm", "php-fpm8.2", "php8.2", "php7.4"])
def test_claims(program: str) -> None:
    fmt = FormatSet().format_for(program)
    assert fmt is not None and fmt.name == "php_mail"


@pytest.mark.parametrize("program", ["phpmyadmin", "apache2", "php-cgi-wrapper-x", "phpx"])
def test_does_not_claim(program: str) -> None:
    assert not FMT.claims(program)


@settings(max_examples=300, deadline=None)
@given(to=st.text(max_size=300), subject=st.text(max_size=300))
def test_attacker_text_is_verbatim_and_short(to: str, subject: str) -> None:
    line = f"mail() on [/var/www/x.php:12]: To: {to} -- Headers: From: a@example.com -- Subject: {subject}"
    events = FMT.parse(_record("php-mail", line))
    assert events is not None
    (event,) = events
    assert isinstance(event, ScriptMail)
    assert event.script == "/var/www/x.php" and event.script_line == 12
    assert event.client is None
    assert len(event.to) <= 200 and len(event.subject) <= 200 and len(event.headers) <= 200
    if " -- Headers: " not in to and not to.endswith(" -- Headers:"):
        assert event.to == to[:200]


_PIECES = ["mail() on [", "]: To: ", " -- Headers: ", " -- Subject: ", ":", "12", "[", "] ", "/var/www/",
           "PHP Warning:", "\x00", "\udcff", " "]  # fmt: skip


@settings(max_examples=1000, deadline=None)
@given(
    program=st.sampled_from(["php-mail", "php", "php-fpm8.2"]),
    parts=st.lists(st.sampled_from(_PIECES) | st.text(max_size=8), max_size=14),
)
def test_hostile_lines_never_raise(program: str, parts: list[str]) -> None:
    FMT.parse(_record(program, "".join(parts)))


def test_long_hostile_line_is_fast() -> None:
    line = "mail() on [" + ":1]: To: x" * 6500  # ~64 KiB, the separator everywhere
    start = time.perf_counter()
    for _ in range(10):
        FMT.parse(_record("php-mail", line))
    assert time.perf_counter() - start < 0.5
