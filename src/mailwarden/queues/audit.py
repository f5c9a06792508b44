"""The audit log: one JSON line per queue change (who, when, what, which ids, where the export is).

Default place: ``/var/log/mailwarden/audit.log`` when run as root, else
``$XDG_STATE_HOME/mailwarden/audit.log`` (``~/.local/state/mailwarden/audit.log``). The file is
opened for appending *before* anything is changed, so a change that cannot be logged is not made.
"""

from __future__ import annotations

import json
import os
import pwd
import socket
import time
from pathlib import Path
from typing import IO

from mailwarden import __version__


def state_dir() -> Path:
    """Where mailwarden keeps state: /var/lib/mailwarden as root, else the XDG state dir."""
    if os.geteuid() == 0:
        return Path("/var/lib/mailwarden")
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "mailwarden"


def default_audit_path() -> Path:
    if os.geteuid() == 0:
        return Path("/var/log/mailwarden/audit.log")
    return state_dir() / "audit.log"


def _who() -> dict[str, object]:
    uid = os.geteuid()
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = str(uid)
    out: dict[str, object] = {"user": name, "uid": uid, "host": socket.gethostname(), "pid": os.getpid()}
    if os.environ.get("SUDO_USER"):
        out["sudo_user"] = os.environ["SUDO_USER"]
    return out


class AuditLog:
    """An append-only JSON-lines file, opened up front."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path else default_audit_path()
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        self._f: IO[bytes] = os.fdopen(fd, "ab")

    def write(self, action: str, **fields: object) -> dict[str, object]:
        entry: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "action": action,
            **_who(),
            "mailwarden": __version__,
            **fields,
        }
        self._f.write(json.dumps(entry, ensure_ascii=True, sort_keys=False).encode() + b"\n")
        self._f.flush()
        os.fsync(self._f.fileno())
        return entry

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
