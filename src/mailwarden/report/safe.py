"""Making attacker-written text harmless on an operator's terminal.

Subjects, user names and HELO names come from attackers; printed raw, an
escape sequence in one can rewrite the screen, hide lines or set the window
title. Every string shown on a terminal passes through ``clean`` first.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def clean(text: str, limit: int = 300) -> str:
    """Replace control, C1 and bidi-override characters with visible escapes; cap the length."""
    out = _CONTROL.sub(
        lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256 else f"\\u{ord(m.group()):04x}",
        text,
    )
    return out if len(out) <= limit else out[: limit - 1] + "…"
