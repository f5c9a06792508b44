"""Capture what a daemon sends to syslog(3), without touching the machine's ``/dev/log``.

Some MTAs (Sendmail, OpenSMTPD, Courier) log only through syslog(3): glibc sends each message as
one datagram ``<pri>Mon DD HH:MM:SS tag[pid]: msg`` to the unix socket ``/dev/log``. To read them
in a test:

* ``SyslogCapture`` binds OUR unix datagram socket in a temp dir (mode 0666: daemons log after
  dropping privileges too) and reads it from a thread; each datagram becomes an RFC 3164 line
  ``Mon DD HH:MM:SS <host> tag[pid]: msg`` (``<pri>`` stripped, a host name added), appended
  to a log file that mailwarden reads as a normal maillog;
* ``SyslogCapture.namespace_argv(argv)`` wraps a command so that it runs in a private mount
  namespace (``unshare --mount --propagation private``, util-linux; root only) in which that
  socket is bind-mounted over ``/dev/log``. Nothing is mounted outside that namespace, and the
  namespace disappears with its last process. When ``/dev/log`` does not exist (containers
  without a syslog daemon), ``/dev`` is first covered, inside the namespace only, by an overlayfs
  whose lower layer is the real ``/dev`` (all device nodes stay usable; submounts such as
  ``/dev/pts`` are hidden) and whose upper layer is in the temp dir, so the mount point
  ``/dev/log`` is created in the temp dir, never in the real ``/dev``; without overlayfs a
  tmpfs ``/dev`` holding bind mounts of null/zero/full/random/urandom/tty is used instead.
  Extra ``binds`` (``(source, target)``) can put test files over system paths the same way,
  e.g. a SASL config directory.

The wrapper ``exec``s the command, so the PID of the ``Popen`` is the daemon's own PID: stop it
with that PID. Stdlib only.
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

__all__ = ["SyslogCapture", "namespace_supported", "to_rfc3164"]

_DATAGRAM = re.compile(rb"^<(\d{1,3})>(?:([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) )?(.*)$", re.DOTALL)


def to_rfc3164(datagram: bytes, hostname: str, now: float | None = None) -> str:
    """``<pri>Mon DD HH:MM:SS tag[pid]: msg`` -> ``Mon DD HH:MM:SS host tag[pid]: msg``.

    A datagram without a timestamp gets the current local time; trailing NULs/newlines are
    dropped and embedded newlines become spaces (one log line per message)."""
    data = datagram.rstrip(b"\0\r\n")
    m = _DATAGRAM.match(data)
    if m is None:
        stamp, rest = None, data
    else:
        stamp = m.group(2).decode("ascii") if m.group(2) else None
        rest = m.group(3)
    if stamp is None:
        stamp = time.strftime("%b %e %H:%M:%S", time.localtime(now))
    text = rest.decode("utf-8", "replace").replace("\r", " ").replace("\n", " ")
    return f"{stamp} {hostname} {text}"


def namespace_supported() -> str | None:
    """None when namespace_argv() can work here, else the reason why not."""
    if os.geteuid() != 0:
        return "not root (a private mount namespace needs CAP_SYS_ADMIN)"
    if not os.access("/usr/bin/unshare", os.X_OK):
        return "/usr/bin/unshare (util-linux) not found"
    if not (os.access("/bin/mount", os.X_OK) or os.access("/usr/bin/mount", os.X_OK)):
        return "mount (util-linux) not found"
    return None


_NS_SCRIPT = r"""
set -eu
sock=$1; work=$2; shift 2
if [ -e /dev/log ]; then
    mount --bind "$sock" /dev/log
elif mkdir -p "$work/dev-upper" "$work/dev-work" &&
     mount -t overlay overlay -o "lowerdir=/dev,upperdir=$work/dev-upper,workdir=$work/dev-work" /dev 2>/dev/null; then
    rm -f /dev/log
    : > /dev/log
    mount --bind "$sock" /dev/log
else
    mkdir -p "$work/host-dev"
    mount --rbind /dev "$work/host-dev"
    mount -t tmpfs -o mode=0755 tmpfs /dev
    for n in null zero full random urandom tty; do
        if [ -e "$work/host-dev/$n" ]; then
            : > "/dev/$n"
            mount --bind "$work/host-dev/$n" "/dev/$n"
        fi
    done
    ln -s /proc/self/fd /dev/fd
    : > /dev/log
    mount --bind "$sock" /dev/log
fi
"""


class SyslogCapture:
    """Our ``/dev/log``: a unix datagram socket read by a thread, written to ``log_file``.

    Use as a context manager (or ``start()``/``stop()``); ``lines()`` and ``wait_for()`` give
    what arrived so far."""

    def __init__(self, work_dir: Path, log_file: Path, *, hostname: str = "mx") -> None:
        self.work_dir = Path(work_dir)
        self.log_file = Path(log_file)
        self.hostname = hostname
        self.socket_path = self.work_dir / "dev-log.sock"
        self._lines: list[str] = []
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle -----------------------------------------------------------------------------
    def start(self) -> SyslogCapture:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        if self.socket_path.exists():
            self.socket_path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.bind(str(self.socket_path))
            # daemons also log after dropping privileges (e.g. Sendmail's mailer children)
            os.chmod(self.socket_path, 0o666)  # noqa: S103 - must be writable like /dev/log
            sock.settimeout(0.1)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        self._stop.clear()
        self._thread = threading.Thread(target=self._reader, name="syslog-capture", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Read what is still queued on the socket, then stop the thread and close everything."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=10)
            self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self.socket_path.exists():
            self.socket_path.unlink()

    def __enter__(self) -> SyslogCapture:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _reader(self) -> None:
        assert self._sock is not None
        with open(self.log_file, "a", encoding="utf-8") as out:
            while True:
                try:
                    data = self._sock.recv(65536)
                except TimeoutError:
                    if self._stop.is_set():
                        return
                    continue
                except OSError:
                    return
                line = to_rfc3164(data, self.hostname)
                out.write(line + "\n")
                out.flush()
                with self._cond:
                    self._lines.append(line)
                    self._cond.notify_all()

    # ---- reading -------------------------------------------------------------------------------
    def lines(self) -> list[str]:
        with self._cond:
            return list(self._lines)

    def wait_for(self, pattern: str, *, timeout: float = 15.0, count: int = 1) -> list[str]:
        """Wait until at least ``count`` captured lines match ``pattern`` (re.search); return
        them. Raises TimeoutError with the lines seen so far."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [line for line in self._lines if rx.search(line)]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = "\n".join(self._lines[-40:])
                    raise TimeoutError(
                        f"{count} line(s) matching {pattern!r} not logged within {timeout} s; "
                        f"last lines:\n{seen}"
                    )
                self._cond.wait(min(left, 0.2))

    # ---- running a daemon with this /dev/log ---------------------------------------------------
    def namespace_argv(
        self,
        argv: Sequence[str],
        binds: Sequence[tuple[Path, Path]] = (),
        *,
        hostname: str | None = None,
    ) -> list[str]:
        """``argv`` run in a private mount namespace where ``/dev/log`` is our socket and each
        ``(source, target)`` of ``binds`` is bind-mounted over ``target`` (must exist).
        ``hostname``: also a private UTS namespace with that host name (gethostname()). The
        shell ``exec``s ``argv``: the child's PID is the daemon's."""
        script = _NS_SCRIPT
        for source, target in binds:
            script += f"mount --bind {shlex.quote(str(source))} {shlex.quote(str(target))}\n"
        if hostname is not None:
            script += f"echo {shlex.quote(hostname)} > /proc/sys/kernel/hostname\n"
        script += 'exec "$@"\n'
        return [
            "/usr/bin/unshare",
            "--mount",
            *(["--uts"] if hostname is not None else []),
            "--propagation",
            "private",
            "/bin/sh",
            "-c",
            script,
            "syslog-ns",
            str(self.socket_path),
            str(self.work_dir),
            *argv,
        ]
