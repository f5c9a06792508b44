"""The only place mailwarden runs another program.

Every call takes an argv list (never a shell string), a timeout, and an
explicit environment addition; output is captured as bytes and decoded by the
caller, since queue files and log lines are not guaranteed UTF-8. Keeping this
in one module makes "no shell, ever" checkable by grep and by a test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


class ProcError(Exception):
    """A program could not be run, timed out, or failed when success was required."""


@dataclass(frozen=True, slots=True)
class Result:
    argv: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: bytes

    def text(self) -> str:
        return self.stdout.decode("utf-8", "replace")


def which(name: str) -> str | None:
    """Absolute path of a program, looking in the sbin directories that root's PATH may miss."""
    found = shutil.which(name)
    if found:
        return found
    for d in ("/usr/sbin", "/usr/local/sbin", "/sbin", "/var/qmail/bin", "/usr/local/bin"):
        cand = os.path.join(d, name)
        if os.access(cand, os.X_OK):
            return cand
    return None


def run(
    argv: Sequence[str],
    *,
    timeout: float = 60.0,
    env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
    check: bool = True,
) -> Result:
    """Run ``argv`` without a shell; raise ProcError on failure when ``check``."""
    if isinstance(argv, str) or not argv:
        raise ProcError("argv must be a non-empty list of arguments, never a shell string")
    full_env = None
    if env:
        full_env = dict(os.environ)
        full_env.update(env)
    try:
        cp = subprocess.run(  # noqa: S603 - argv list, no shell
            list(argv),
            input=stdin,
            capture_output=True,
            timeout=timeout,
            env=full_env,
            check=False,
        )
    except FileNotFoundError as exc:
        raise ProcError(f"{argv[0]}: not found") from exc
    except subprocess.TimeoutExpired as exc:
        raise ProcError(f"{argv[0]}: no answer within {timeout:g}s") from exc
    except OSError as exc:
        raise ProcError(f"{argv[0]}: {exc}") from exc
    result = Result(tuple(argv), cp.returncode, cp.stdout, cp.stderr)
    if check and cp.returncode != 0:
        err = cp.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ProcError(f"{argv[0]} exited {cp.returncode}: {err[-1] if err else ''}")
    return result
