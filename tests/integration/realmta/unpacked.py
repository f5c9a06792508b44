"""Shared infrastructure for the tests that run REAL mail daemons unpacked from Debian packages.

Debian's MTA / IMAP packages conflict with the ``postfix`` / ``dovecot-imapd`` packages the other
integration tests need (``apt-get install -s`` would remove them), so nothing is installed:

* ``download_debs(packages)`` ``apt-get download``s the ``.deb``s into ``cache_dir()`` =
  ``$XDG_CACHE_HOME/mailwarden-tests/debs`` (``~/.cache/...``), reused when present (the newest
  ``<package>_*.deb`` there); a failure raises ``Unavailable`` with apt's last lines.
  ``missing_packages(libs)`` keeps the shared-library packages this machine lacks
  (``dpkg-query``): only those are downloaded and unpacked along with the daemon.
* ``unpack(debs, root)`` / ``unpacked_root(debs, prefix)`` ``dpkg-deb -x`` them into a private
  root (mode 0755: daemons exec binaries from it after dropping privileges); the temp root is
  removed afterwards -- never leave a setuid-root binary lying around in /tmp.
* ``debs_or_skip(...)`` is the session-fixture preamble: root, the tools, extra checks, the
  download; anything missing becomes ``pytest.skip`` with the reason, printed as
  ``[<tag>] SKIP: ...`` (``skip()``), so a machine without root or without a Debian mirror skips.

The daemons run as our children, on 127.0.0.1 only, in a private mount namespace
(``namespace_argv(mounts, cmd)``: ``unshare --mount --propagation private`` + ``/bin/sh`` that
performs ``mounts`` and ``exec``s ``cmd``, so the Popen PID is the command's own: stop it with that
PID, ``terminate()``). Debian builds hard-code their paths (spool, config, sockets, libexec); the
tests ``bind()`` temp dirs over them or put read-only overlayfs mounts (``ro_overlay()``) over
directories whose contents must stay visible. Nothing on the host is changed; the mounts vanish
with the namespace's last process. Helpers for what those builds insist on:

* compiled-in system users: ``users_overlay(ns, users)`` writes copies of ``/etc/passwd`` and
  ``/etc/group`` adding them (free system uid = gid, ``free_ids()``) to ``ns/passwd``,
  ``ns/group``; ``users_binds(ns)`` mounts them over the real files (only when a user is
  missing on the machine);
* setuid binaries: the loader ignores ``LD_LIBRARY_PATH`` for them, so ``ld_cache(ns, dirs)``
  makes an ``ld.so.cache`` that also lists the unpacked library dirs (``ldconfig -X -C -f``:
  no symlink touched), to be bind-mounted over ``/etc/ld.so.cache``.

``FakeMx`` is the remote MX the MTAs relay to (asyncio in a thread of the test process, loopback):
RCPT answered by local part (``mailstack.rcpt_reply``): ``block*`` 554 5.7.1 ... zen.spamhaus.org,
``rate*`` 421 4.7.0, else 250. ``listening(port)`` reads ``/proc/net/tcp{,6}`` (a probe
connection would be logged by the daemon), ``wait_ready()`` polls it while watching our PIDs.

Environment: ``MAILWARDEN_KEEP_REAL_LOGS=1`` keeps the temp dirs (``keep_or_remove()``);
``MAILWARDEN_SAVE_REAL_LOGS=1`` copies the captured log to tests/data/real/ (``save_real_log()``).
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import NoReturn

import pytest
from mailstack import rcpt_reply

SYS_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
KEEP_ENV = "MAILWARDEN_KEEP_REAL_LOGS"
SAVE_ENV = "MAILWARDEN_SAVE_REAL_LOGS"


class Unavailable(Exception):
    """This machine cannot run the real daemon (the tests skip with this reason)."""


def skip(tag: str, reason: str) -> NoReturn:
    """``pytest.skip(reason)``, the reason also printed (``-s``) as ``[tag] SKIP: reason``."""
    print(f"\n[{tag}] SKIP: {reason}")
    pytest.skip(reason)


def sys_env(**extra: str) -> dict[str, str]:
    """A minimal environment for the daemons and tools: system PATH, ``LANG=C``, our ``TZ``."""
    env = {"PATH": SYS_PATH, "LANG": "C", **extra}
    if os.environ.get("TZ"):
        env["TZ"] = os.environ["TZ"]
    return env


# ---- packages -------------------------------------------------------------------------------


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mailwarden-tests" / "debs"


def installed(package: str) -> bool:
    r = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True, timeout=30, check=False
    )
    return r.returncode == 0 and r.stdout.startswith("install ok installed")


def missing_packages(packages: Sequence[str]) -> list[str]:
    """The packages of ``packages`` that are not installed on this machine."""
    return [p for p in packages if not installed(p)]


def download_debs(packages: Sequence[str]) -> list[Path]:
    """The ``.deb`` of each package, from the cache or ``apt-get download`` (raises Unavailable)."""
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)

    def cached(pkg: str) -> Path | None:
        hits = sorted(cache.glob(f"{pkg}_*.deb"))
        return hits[-1] if hits else None

    missing = [p for p in packages if cached(p) is None]
    if missing:
        if shutil.which("apt-get") is None:
            raise Unavailable("apt-get not found (not a Debian-like system)")
        try:
            r = subprocess.run(
                ["apt-get", "download", *missing],
                cwd=cache,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise Unavailable(f"apt-get download {' '.join(missing)} failed: {exc}") from exc
        if r.returncode != 0 or any(cached(p) is None for p in missing):
            tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
            raise Unavailable(
                f"apt-get download {' '.join(missing)} failed (exit {r.returncode}): {' | '.join(tail)}"
            )
    debs = [cached(p) for p in packages]
    return [d for d in debs if d is not None]


def deb_field(deb: Path, name: str = "Version") -> str:
    r = subprocess.run(
        ["dpkg-deb", "-f", str(deb), name], capture_output=True, text=True, timeout=30, check=True
    )
    return r.stdout.strip()


def unpack(debs: Sequence[Path], root: Path) -> Path:
    """``dpkg-deb -x`` each .deb into ``root`` (created, mode 0755); returns ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)
    for deb in debs:
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True, timeout=120, capture_output=True)
    return root


@contextlib.contextmanager
def unpacked_root(debs: Sequence[Path], prefix: str) -> Iterator[Path]:
    """The .debs unpacked into a new temp dir (``prefix``), removed on exit."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield unpack(debs, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def debs_or_skip(
    tag: str,
    what: str,
    packages: Sequence[str],
    lib_packages: Sequence[str] = (),
    *,
    root_for: str,
    tools: Sequence[str] = (),
    checks: Sequence[Callable[[], str | None]] = (),
) -> tuple[list[Path], list[str]]:
    """(the .debs of ``packages`` + the missing ``lib_packages``, those missing lib packages), or
    ``skip(tag, "<what> unavailable: ...")`` when not root (``root_for``: why root is needed), a
    tool is not on the system PATH, a check returns a reason, or the download fails."""
    try:
        if os.geteuid() != 0:
            raise Unavailable(f"not root ({root_for})")
        for check in checks:
            why = check()
            if why:
                raise Unavailable(why)
        for tool in tools:
            if shutil.which(tool, path=SYS_PATH) is None:
                raise Unavailable(f"{tool} not found")
        libs = missing_packages(lib_packages)
        return download_debs([*packages, *libs]), libs
    except Unavailable as exc:
        skip(tag, f"{what} unavailable: {exc}")


# ---- the private mount namespace ---------------------------------------------------------------


def bind(source: Path | str, target: Path | str) -> str:
    """The shell command that bind-mounts ``source`` over ``target`` (both must exist)."""
    return f"mount --bind {shlex.quote(str(source))} {shlex.quote(str(target))}"


def ro_overlay(target: Path | str, *lower: Path | str) -> str:
    """The shell command that mounts a read-only overlayfs of the ``lower`` dirs (first on top)
    over ``target`` (usually ``target`` itself is the last layer)."""
    opts = "lowerdir=" + ":".join(str(p) for p in lower)
    return f"mount -t overlay overlay -o {shlex.quote(opts)} {shlex.quote(str(target))}"


def namespace_argv(mounts: Sequence[str], cmd: Sequence[str], *, name: str = "mailwarden-ns") -> list[str]:
    """``cmd`` run in a fresh private mount namespace after the shell commands ``mounts``
    (``bind()``, ``ro_overlay()``). unshare and sh ``exec``: the PID is ``cmd``'s all along."""
    script = "set -eu\n" + "".join(f"{m}\n" for m in mounts) + 'exec "$@"\n'
    return ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", script, name, *cmd]


def free_ids(names: Sequence[str]) -> list[int]:
    """One free system id (unused as uid and as gid, 999 down to 101) per name."""
    used = {p.pw_uid for p in pwd.getpwall()} | {g.gr_gid for g in grp.getgrall()}
    free = [i for i in range(999, 100, -1) if i not in used]
    if len(free) < len(names):
        raise Unavailable(f"no free system uid/gid for {', '.join(names)}")
    return free[: len(names)]


def users_overlay(ns: Path, users: Sequence[tuple[str, str]]) -> list[int]:
    """Write ``ns/passwd`` and ``ns/group``: the machine's files plus a system user and group per
    ``(name, home)`` (uid = gid, free, shell nologin); returns their ids. Mount with
    ``users_binds(ns)``."""
    ids = free_ids([name for name, _home in users])
    passwd = Path("/etc/passwd").read_text()
    group = Path("/etc/group").read_text()
    for (name, home), i in zip(users, ids, strict=True):
        passwd += f"{name}:x:{i}:{i}::{home}:/usr/sbin/nologin\n"
        group += f"{name}:x:{i}:\n"
    ns.mkdir(parents=True, exist_ok=True)
    for name, text in (("passwd", passwd), ("group", group)):
        (ns / name).write_text(text)
        (ns / name).chmod(0o644)
    return ids


def users_binds(ns: Path) -> list[str]:
    """``users_overlay``'s copies over ``/etc/passwd`` and ``/etc/group``."""
    return [bind(ns / "passwd", "/etc/passwd"), bind(ns / "group", "/etc/group")]


def ld_cache(ns: Path, lib_dirs: Sequence[Path]) -> Path:
    """``ns/ld.so.cache``: the machine's libraries plus ``lib_dirs`` (for setuid binaries, which
    ignore ``LD_LIBRARY_PATH``); bind-mount it over ``/etc/ld.so.cache``."""
    conf = ns / "ld.so.conf"
    cache = ns / "ld.so.cache"
    conf.write_text("include /etc/ld.so.conf.d/*.conf\n" + "".join(f"{d}\n" for d in lib_dirs))
    # -X: do not touch any library symlinks; -C/-f: our own cache and conf only
    subprocess.run(
        ["ldconfig", "-X", "-C", str(cache), "-f", str(conf)], capture_output=True, timeout=60, check=True
    )
    cache.chmod(0o644)
    return cache


# ---- processes and ports -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening(port: int) -> bool:
    """127.0.0.1:port in LISTEN, on an IPv4 or (v4-mapped) IPv6 socket; read from /proc so that
    no probe connection is logged."""
    wanted = {f"0100007F:{port:04X}", f"0000000000000000FFFF00000100007F:{port:04X}"}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="ascii") as f:
                next(f)
                if any(p[1] in wanted and p[3] == "0A" for p in (line.split() for line in f)):
                    return True
        except FileNotFoundError:
            continue
    return False


def wait_ready(
    what: str,
    ready: Callable[[], bool],
    procs: Sequence[subprocess.Popen[bytes]],
    timeout: float = 20,
    details: Callable[[], str] | None = None,
) -> None:
    """Poll ``ready()``; RuntimeError (with ``details()``) if one of ``procs`` exits first or
    ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while not ready():
        dead = [p for p in procs if p.poll() is not None]
        if dead or time.monotonic() > deadline:
            codes = [p.returncode for p in procs]
            more = f":\n{details()}" if details is not None else ""
            raise RuntimeError(f"{what} not ready within {timeout} s (exit codes {codes}){more}")
        time.sleep(0.02)


def terminate(proc: subprocess.Popen[bytes], timeout: float = 15) -> int | None:
    """SIGTERM to our child's own PID, wait; SIGKILL after ``timeout`` s. Its exit code."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
    return proc.returncode


def swaks(port: int, *args: str, local: str | None = None) -> subprocess.CompletedProcess[str]:
    """swaks to 127.0.0.1:``port`` (HELO client.lab.test), from ``local`` if given."""
    source = ("--local-interface", local) if local else ()
    return subprocess.run(
        [
            "swaks", "--server", "127.0.0.1", "--port", str(port), *source,
            "--helo", "client.lab.test", "--timeout", "30", *args,
        ],
        capture_output=True, text=True, timeout=90, check=False, env=sys_env(),
    )  # fmt: skip


# ---- logs ---------------------------------------------------------------------------------------


def keep_or_remove(workdir: Path, ok: bool, tag: str, shown: Path | str | None = None) -> None:
    """Remove ``workdir`` after a good run unless MAILWARDEN_KEEP_REAL_LOGS is set; else print
    where the logs are (``shown``, default ``workdir/log``)."""
    if ok and not os.environ.get(KEEP_ENV):
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"\n[{tag}] logs kept in {workdir / 'log' if shown is None else shown}")


def save_real_log(log: Path, saved: Path) -> None:
    """With MAILWARDEN_SAVE_REAL_LOGS set, copy the captured ``log`` to ``saved`` (tests/data/real)."""
    if os.environ.get(SAVE_ENV):
        saved.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(log, saved)


# ---- fake remote MX (asyncio, in a thread of the test process) ----------------------------------


class FakeMx:
    """The remote MX, on 127.0.0.1:``port`` (0: a free one, see ``.port`` after ``start()``).

    RCPT by local part (``mailstack.rcpt_reply``): ``block*`` -> 554 5.7.1 (Spamhaus),
    ``rate*`` -> 421 4.7.0 (``close_after_421``: then the connection is closed, as a 421 means),
    else 250; DATA without an accepted recipient -> 554 (for pipelining clients, ``pipelining``
    advertises it). ``transcript``: ``<time> > reply`` / ``<time> < command`` lines."""

    def __init__(self, port: int = 0, *, close_after_421: bool = False, pipelining: bool = False) -> None:
        self.port = port
        self.close_after_421 = close_after_421
        self.pipelining = pipelining
        self.transcript: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fake-mx", daemon=True)
        self._tasks: set[asyncio.Task[None]] = set()
        self._queued = 0

    def start(self) -> FakeMx:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fake MX did not start")
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", self.port))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            for task in list(self._tasks):
                task.cancel()
            self._loop.run_until_complete(
                asyncio.gather(server.wait_closed(), *self._tasks, return_exceptions=True)
            )
            self._loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._dialogue(reader, writer)
        except (OSError, asyncio.IncompleteReadError):  # TimeoutError is an OSError
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _dialogue(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")[0]

        async def send(*lines: str) -> None:
            self.transcript.extend(f"{time.time():.3f} > {line}" for line in lines)
            writer.write("".join(f"{line}\r\n" for line in lines).encode())
            await writer.drain()

        await send("220 mx.remote.test ESMTP fake")
        accepted = 0
        while True:
            raw = await asyncio.wait_for(reader.readline(), 60)
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            self.transcript.append(f"{time.time():.3f} < {line}")
            verb = line.split(" ", 1)[0].split(":", 1)[0].upper()
            if verb == "EHLO":
                extensions = ["250-PIPELINING"] if self.pipelining else []
                await send("250-mx.remote.test", *extensions, "250-8BITMIME", "250 ENHANCEDSTATUSCODES")
            elif verb == "HELO":
                await send("250 mx.remote.test")
            elif verb == "MAIL":
                await send("250 2.1.0 Ok")
            elif verb == "RCPT":
                reply, close = rcpt_reply(line.partition(":")[2], peer, rate_close=self.close_after_421)
                await send(reply)
                if close:
                    return
                accepted += reply.startswith("250")
            elif verb == "DATA":
                if not accepted:
                    await send("554 5.5.1 Error: no valid recipients")
                    continue
                await send("354 End data with <CR><LF>.<CR><LF>")
                while (chunk := await asyncio.wait_for(reader.readline(), 60)) not in (b".\r\n", b".\n"):
                    if not chunk:
                        return
                accepted = 0
                self._queued += 1
                await send(f"250 2.0.0 Ok: queued as FAKE{self._queued:04d}")
            elif verb == "QUIT":
                await send("221 2.0.0 Bye")
                return
            elif verb in ("RSET", "NOOP"):
                accepted = 0 if verb == "RSET" else accepted
                await send("250 2.0.0 Ok")
            else:
                await send("502 5.5.2 Error: command not recognized")
