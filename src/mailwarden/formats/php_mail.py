"""PHP's ``mail.log`` (the ``mail.log`` ini directive, PHP 5.3 and later) → ``ScriptMail``.

Every call of ``mail()`` is logged before the message goes to sendmail
(php-src ext/standard/mail.c):

* 5.3: ``mail() on [FILE:LINE]: To: TO -- Headers: HEADERS`` appended to the
  file, no date;
* later 5.x: the same with ``[dd-Mon-YYYY HH:MM:SS zone] `` in front, also when
  ``mail.log = syslog`` (the syslog message then starts with the date);
* 7.0 and later: `` -- Subject: SUBJECT`` appended; the date only in the file.

The file's date is read by ``sources.native`` (program ``php-mail``). With
``mail.log = syslog`` the line is tagged with PHP's ``syslog.ident`` (``php``,
7.3 and later) or, when PHP never opened the log itself, the process name
(``php-fpm8.2``, ``php``; ``apache2`` and others are not claimed, see
docs/formats/php_mail.md). CR and LF in the headers are logged as spaces.

Everything after ``To:`` was chosen by whoever drove the script (a form, a
spammer, a web shell) and the script path can be chosen too (a web shell names
itself): all are kept verbatim, cut to ``_MAX_TEXT`` characters, and nothing
is read out of them.
"""

from __future__ import annotations

from collections.abc import Sequence

from mailwarden.formats.base import Handler
from mailwarden.model import Event, Record, ScriptMail

__all__ = ["PhpMailFormat"]

_NOTHING: tuple[Event, ...] = ()
_MAX_TEXT = 200
_MAX_SCRIPT = 1024
_PREFIX = "mail() on ["
_TO = "]: To: "
_HEADERS = " -- Headers: "
_SUBJECT = " -- Subject: "
# PHP's own error_log = syslog lines under the same tag: understood, not about mail.
_PHP_ERRORS = (
    "PHP Warning:", "PHP Notice:", "PHP Fatal error:", "PHP Parse error:", "PHP Deprecated:",
    "PHP Stack trace:", "PHP   ", "PHP Startup:", "PHP Catchable fatal error:",
    "PHP Recoverable fatal error:",
)  # fmt: skip


def _cut(text: str) -> str:
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT]


def _is_php_program(program: str) -> bool:
    if program in ("php-mail", "php"):
        return True
    if program.startswith("php-fpm"):
        return True
    # Debian/Ubuntu process names: php8.2, php7.4 (php-cli run as "php8.2 script.php")
    return program.startswith("php") and program[3:4].isdigit() and len(program) <= 10


def parse_mail_line(record: Record, message: str, label: str) -> Sequence[Event] | None:
    """One ``mail() on [...]`` line; other lines of PHP's own programs are not ours to read."""
    text = message
    if text.startswith("[") and not text.startswith(_PREFIX):
        # later 5.x through syslog: the file's date is in the message
        close = text.find("] ", 1, 90)
        if close > 0:
            text = text[close + 2 :]
    if not text.startswith(_PREFIX):
        if label == "quiet" or (label == "syslog" and text.startswith(_PHP_ERRORS)):
            return _NOTHING
        return None
    script, line, rest = _script_and_line(text)
    if rest is None:
        return None
    to, sep, rest = rest.partition(_HEADERS)
    if not sep and to.endswith(_HEADERS[:-1]):  # no headers: the line ends "-- Headers:"
        to = to[: -len(_HEADERS) + 1]
    headers = subject = ""
    if sep:
        # headers are usually fixed by the script, the subject comes from a form: split early
        head, sep, tail = rest.partition(_SUBJECT)
        headers, subject = (head, tail) if sep else (rest, "")
    return (
        ScriptMail(
            ts=record.ts,
            source=record.source,
            host=record.host,
            script=script,
            script_line=line,
            to=_cut(to),
            subject=_cut(subject),
            headers=_cut(headers),
        ),
    )


def _script_and_line(text: str) -> tuple[str, int | None, str | None]:
    """(script, line, rest after ``To: ``); the first ``:DIGITS]: To: `` ends the script.

    A path can hold ``]: To: `` itself, so each occurrence is tried until the
    text before it ends in ``:`` and a line number; a path is never parsed further.
    """
    start = len(_PREFIX)
    at = text.find(_TO, start)
    while 0 <= at <= start + _MAX_SCRIPT:
        colon = text.rfind(":", start, at)
        digits = text[colon + 1 : at] if colon >= 0 else ""
        if digits.isascii() and digits.isdigit() and len(digits) <= 9:
            return text[start:colon], int(digits), text[at + len(_TO) :]
        at = text.find(_TO, at + 1)
    return "", None, None


class PhpMailFormat:
    """``mail()`` calls logged by PHP to its own file (program ``php-mail``) or to syslog."""

    name = "php_mail"

    def claims(self, program: str) -> bool:
        return _is_php_program(program)

    def route(self, program: str) -> tuple[Handler, str] | None:
        if not _is_php_program(program):
            return None
        # php-fpm's master logs pool events under the same tag: understood, not ours
        if program.startswith("php-fpm"):
            return parse_mail_line, "quiet"
        return parse_mail_line, "" if program == "php-mail" else "syslog"

    def parse(self, record: Record) -> Sequence[Event] | None:
        route = self.route(record.program)
        if route is None:
            return None
        return route[0](record, record.message, route[1])
