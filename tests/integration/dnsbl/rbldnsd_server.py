"""A real rbldnsd on 127.0.0.1 (or ::1), and a UDP "resolver" that never answers, for tests and the benchmark.

Only loopback is used. Zone names may be the real blocklists' names (the
bundled catalogue is served as-is): the queries go to 127.0.0.1:PORT only,
never to the Internet. rbldnsd drops privileges to user ``rbldns`` when run
as root, so its directory is world-readable (reference README section 7).
The daemon is stopped through the ``Popen`` object that started it (its own
recorded PID), never by name.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode

RBLDNSD_CANDIDATES = ("/usr/sbin/rbldnsd", "/usr/local/sbin/rbldnsd")


def rbldnsd_path() -> str | None:
    found = shutil.which("rbldnsd")
    if found:
        return found
    return next((p for p in RBLDNSD_CANDIDATES if os.access(p, os.X_OK)), None)


def require_rbldnsd() -> str:
    """For pytest: the rbldnsd path; skip when missing -- or fail when ``CI`` is set."""
    import pytest

    path = rbldnsd_path()
    if path:
        return path
    reason = "rbldnsd not installed (apt-get install rbldnsd; scripts/install-test-deps.sh)"
    if os.environ.get("CI"):
        pytest.fail("CI is set, refusing to skip: " + reason, pytrace=False)
    pytest.skip(reason)
    raise AssertionError("unreachable")


def free_udp_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Dataset:
    zone: str
    kind: str  # ip4set, ip6trie, dnset, ...
    file: str
    text: str


class Rbldnsd:
    """rbldnsd serving ``datasets`` on 127.0.0.1:<free port>; ``start()``/``stop()`` or ``with``."""

    def __init__(
        self, datasets: Sequence[Dataset], binary: str | None = None, host: str = "127.0.0.1"
    ) -> None:
        self.datasets = list(datasets)
        self.host = host
        self.binary = binary or rbldnsd_path() or "rbldnsd"
        self.dir = Path(tempfile.mkdtemp(prefix="mailwarden-rbldnsd."))
        self.dir.chmod(0o755)
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.dir / "rbldnsd.log"

    @property
    def resolver(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def __enter__(self) -> Rbldnsd:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def write(self, file: str, text: str) -> None:
        path = self.dir / file
        old = path.stat().st_mtime if path.exists() else None
        path.write_bytes(text.encode("utf-8"))
        path.chmod(0o644)
        if old is not None:  # rbldnsd compares whole-second mtimes: make the change visible
            bumped = max(time.time(), old + 2)
            os.utime(path, (bumped, bumped))

    def start(self) -> Rbldnsd:
        for ds in self.datasets:
            self.write(ds.file, ds.text)
        argv = [self.binary, "-n", "-w", str(self.dir), "-t", "1"]
        if os.geteuid() == 0:
            argv += ["-u", "rbldns"]
        specs = [f"{ds.zone}:{ds.kind}:{ds.file}" for ds in self.datasets]
        for _attempt in range(5):
            self.port = free_udp_port(self.host)
            with open(self.log, "ab") as log:
                self.proc = subprocess.Popen(
                    [*argv, "-b", f"{self.host}/{self.port}", *specs],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            if self._wait_ready():
                return self
            self.stop(remove=False)
        raise RuntimeError(f"rbldnsd did not start; log:\n{self.log.read_text(errors='replace')}")

    def _wait_ready(self, timeout: float = 5.0) -> bool:
        zone = self.datasets[0].zone
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc is None or self.proc.poll() is not None:
                return False
            try:
                q = dns.message.make_query(f"{zone}.", "A")
                dns.query.udp(q, self.host, port=self.port, timeout=0.2)
                return True
            except (dns.exception.Timeout, OSError):
                time.sleep(0.05)
        return False

    def reload(self, timeout: float = 5.0) -> None:
        """SIGHUP our rbldnsd (by its recorded PID) and wait until it logged the reload."""
        assert self.proc is not None
        before = self._reloads()
        self.proc.send_signal(signal.SIGHUP)
        end = time.monotonic() + timeout
        while self._reloads() <= before:
            if time.monotonic() > end:
                raise RuntimeError("rbldnsd did not reload")
            time.sleep(0.02)

    def _reloads(self) -> int:
        try:
            return self.log.read_text(errors="replace").count("zones reloaded")
        except FileNotFoundError:
            return 0

    def stop(self, remove: bool = True) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if remove:
            shutil.rmtree(self.dir, ignore_errors=True)


class SilentResolver:
    """A UDP socket on 127.0.0.1 that reads every query and answers none (a dead resolver)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = int(self.sock.getsockname()[1])
        self.received = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, daemon=True)

    def __enter__(self) -> SilentResolver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()

    def _drain(self) -> None:
        while not self._stop.is_set():
            try:
                self.sock.recv(4096)
                self.received += 1
            except TimeoutError:
                continue
            except OSError:
                return


def rcode_of(port: int, qname: str) -> str:
    """The rcode rbldnsd gives for ``qname`` A (for assertions about the test data itself)."""
    resp = dns.query.udp(dns.message.make_query(qname, "A"), "127.0.0.1", port=port, timeout=1)
    return dns.rcode.to_text(resp.rcode())
