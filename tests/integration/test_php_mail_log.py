"""The real php-cli writes mail.log; mailwarden reads it back as ScriptMail events.

PHP runs with ``-n`` (no php.ini), ``mail.log`` pointing into the test's temp dir and a
``sendmail_path`` that swallows the message, so nothing leaves the machine. The script is
a file, so PHP logs its path and the line of the ``mail()`` call. Needs ``php`` (Debian:
php-cli); skipped without it, failed when ``CI`` is set.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from mailwarden.model import ReadStats, ScriptMail
from mailwarden.pipeline import events_from

pytestmark = pytest.mark.integration

SCRIPT = """<?php
mail("victim@example.org", "Hello", "body", "From: a@example.com");
mail("x@example.org, y@[192.0.2.66]", "Re: -- Headers: fake", "body", "From: b@example.com\\r\\nBcc: many@example.net");
"""


def _php() -> str:
    php = shutil.which("php")
    if php is None:
        reason = "php-cli not installed (Debian package php-cli)"
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
            pytest.fail("CI is set, refusing to skip: " + reason, pytrace=False)
        pytest.skip(reason)
    return php


def test_real_php_mail_log_becomes_script_mail(tmp_path: Path) -> None:
    php = _php()
    sink = tmp_path / "sendmail"
    sink.write_text("#!/bin/sh\ncat > /dev/null\n", encoding="utf-8")
    sink.chmod(0o755)
    script = tmp_path / "www" / "contact form.php"
    script.parent.mkdir()
    script.write_text(SCRIPT, encoding="utf-8")
    log = tmp_path / "mail.log"
    subprocess.run(
        [
            php,
            "-n",
            "-d",
            f"mail.log={log}",
            "-d",
            f"sendmail_path={sink}",
            "-d",
            "date.timezone=UTC",
            str(script),
        ],
        check=True,
        timeout=30,
        capture_output=True,
    )
    stats = ReadStats()
    events = [e for e in events_from([str(log)], stats) if isinstance(e, ScriptMail)]
    assert stats.unparsed.total() == 0, stats.unparsed
    assert [(e.script, e.script_line, e.to) for e in events] == [
        (str(script), 2, "victim@example.org"),
        (str(script), 3, "x@example.org, y@[192.0.2.66]"),
    ]
    assert events[0].subject == "Hello"
    assert events[0].headers == "From: a@example.com"
    assert events[1].client is None
    assert "Bcc: many@example.net" in events[1].headers
