"""Scenario writers, one per MTA family, registered explicitly.

Each writes the same plays (tests/scenarios/plays.py) in its MTA's own log
shapes, taken from that format's golden samples; ``write(directory, mtime)``
puts down the files that MTA writes and returns the paths to triage.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from tests.scenarios.logwriter import LogWriter
from tests.scenarios.writers.exim import EximLogWriter
from tests.scenarios.writers.plesk_qmail import PleskQmailLogWriter
from tests.scenarios.writers.qmail_multilog import QmailMultilogWriter
from tests.scenarios.writers.sendmail import SendmailWriter

WRITERS: dict[str, Callable[[datetime], Any]] = {
    "postfix": LogWriter,
    "exim": EximLogWriter,
    "plesk_qmail": PleskQmailLogWriter,
    "qmail_multilog": QmailMultilogWriter,
    "sendmail": SendmailWriter,
}
