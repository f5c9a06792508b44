"""The Courier parser against REAL Courier-IMAP 5.0 / courier-authlib 0.71 daemons on loopback.

``apt-get install -s courier-imap`` would remove dovecot-imapd (both provide ``imap-server``),
which the other integration tests need, so nothing is installed (see
tests/integration/realmta/unpacked.py, which does the downloading, unpacking and namespace
mounts for all the real-daemon tests): a session fixture downloads ``courier-imap courier-pop
courier-base courier-authlib courier-authdaemon courier-authlib-userdb gamin`` (plus the shared
libraries this machine lacks: ``libcourier-unicode4 libgamin0 libidn12 libltdl7``), unpacks
them into a private root and runs the daemons from there, as Debian's init scripts do, but in
the foreground as our children:

* ``courierlogger -name=authdaemond authdaemond`` with ``authmodulelist="authuserdb"``;
* ``courierlogger -name=imapd couriertcpd -address=127.0.0.1 ... PORT imaplogin imapd Maildir``
  and the same for POP3 (``-name=pop3d``, ``courierpop3login courierpop3d``), with the
  environment of the packaged ``/etc/courier/imapd``/``imapd-ssl`` (``pop3d``/``pop3d-ssl``)
  sourced with ``set -a`` exactly like ``/usr/lib/courier/imapd``, except ``IMAP_STARTTLS=NO`` /
  ``POP3_STARTTLS=NO`` (no certificate is made; LOGIN without TLS is allowed by the packaged
  ``IMAP_TLS_REQUIRED=0``) and no ``-access=`` file.

Each is stopped with SIGTERM to its own PID (courierlogger passes it on to its child, and exits
when the child's stderr closes).

Paths the Debian build hard-codes (``strings`` of the binaries): ``/etc/courier/authdaemonrc``,
``/etc/courier/userdb.dat`` (authuserdb), the modules in ``/usr/lib/courier-authlib``, the libraries in
``/usr/lib`` and ``/usr/lib/x86_64-linux-gnu``, ``/usr/lib/courier/courier/imaplogin`` and the socket
``/run/courier/authdaemon/socket`` (libcourierauth). None of them exist here, and nothing may be
created on the host, so everything runs in ONE private mount namespace (``unshare --mount
--propagation private``) prepared by ``Courier._holder_argv``: read-only overlayfs mounts put the
extracted ``usr/lib`` over ``/usr/lib`` (lower layers ``<root>/usr/lib:/usr/lib``) and a temp
``etc``/``run`` holding an (empty) ``courier`` dir over ``/etc`` and ``/run``; then temp dirs are
bind-mounted, writable, over ``/etc/courier`` and ``/run/courier``. Inside that namespace
``SyslogCapture.namespace_argv`` (tests/integration/realmta/syslog_capture.py) makes ``/dev/log``
our datagram socket (done after our mounts, so a ``/dev/log`` symlink into ``/run`` would still
reach our socket). The namespace is held by a ``sleep infinity`` (our child); the daemons and the
userdb tools join it with ``nsenter -t <that pid> -m`` (nsenter execs: each Popen PID is the
program's own). Overlaying ``/etc`` hides mounts below it (e.g. a container's bind-mounted
``/etc/hosts``) from these processes only; couriertcpd runs with the packaged ``-nodnslookup
-noidentlookup``, so nothing is resolved.

Users: a userdb made with the unpacked ``userdb -f /etc/courier/userdb``, ``userdbpw -md5`` and
``makeuserdb -f /etc/courier/userdb`` (``alice@lab.test``/``alice-secret``,
``bob@lab.test``/``bob-secret``; uid/gid 65534, maildirs in the temp dir). No system user is
needed: couriertcpd and authdaemond run as root, imapd/pop3d as 65534 (from the userdb).

FAM: Debian's imapd 5.0.13 watches the maildir with libgamin at every login; without a
``gam_server`` it logs ``failed to find gam_server`` / ``Failed to create cache file:
maildirwatch`` / ``Check for proper operation and configuration of the File Access Monitor
daemon (famd).`` and stalls 2-3 s (a Debian install has it: courier-imap depends on gamin). So
the unpacked ``gam_server --notimeout <id>`` runs as 65534 (``setpriv``), our child, stopped by
PID, and the daemons get ``GAM_CLIENT_ID=<id>`` (libgamin connects to the abstract socket
``/tmp/fam-nobody-<id>`` instead of spawning a server that would outlive the test).

Scenario (Python's imaplib/poplib, 127.0.0.1 only): IMAP LOGIN alice (right password), SELECT,
LOGOUT; in parallel (Courier answers a failed login after 5 s) IMAP LOGIN bob with a wrong
password, IMAP LOGIN of an unknown user, POP3 USER/PASS bob with a wrong password; POP3 bob
(right password), STAT, RETR 1, QUIT. Courier listens on IPv6 sockets and writes
``ip=[::ffff:127.0.0.1]``; mailwarden must give ``127.0.0.1``.

``MAILWARDEN_KEEP_REAL_LOGS=1`` keeps the temp dir; ``MAILWARDEN_SAVE_REAL_LOGS=1`` copies the
captured log to tests/data/real/courier.log.
"""

from __future__ import annotations

import imaplib
import os
import poplib
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from realmta import unpacked
from realmta.syslog_capture import SyslogCapture, namespace_supported
from realmta.unpacked import bind, ro_overlay, sys_env, wait_ready

from mailwarden.model import AuthFailed, AuthSucceeded, Connect, Disconnect, Event, ReadStats
from mailwarden.pipeline import events_from

PACKAGES = (
    "courier-imap",
    "courier-pop",
    "courier-base",
    "courier-authlib",
    "courier-authdaemon",
    "courier-authlib-userdb",
    "gamin",
)
#: Shared libraries of the binaries above that a machine with Postfix/Dovecot usually lacks;
#: downloaded only when not installed.
LIB_PACKAGES = ("libcourier-unicode4", "libgamin0", "libidn12", "libltdl7")
MAILBOX_ID = 65534  # uid/gid of the mailboxes (nobody:nogroup), from the userdb
USERS = {"alice@lab.test": "alice-secret", "bob@lab.test": "bob-secret"}
UNKNOWN_USER = "ghost@lab.test"
SAVED = Path(__file__).resolve().parents[2] / "data" / "real" / "courier.log"
_MAPPED = "::ffff:127.0.0.1"

# /usr/lib/courier/imapd and pop3d (Debian), in the foreground and on 127.0.0.1 only
_IMAPD = (
    "set -a; . /etc/courier/imapd; . /etc/courier/imapd-ssl; IMAP_STARTTLS=NO; "
    'exec "$0" $LOGGEROPTS "$1" -address=127.0.0.1 -maxprocs=$MAXDAEMONS -maxperip=$MAXPERIP '
    '$TCPDOPTS "$2" /usr/lib/courier/courier/imaplogin "$3" $MAILDIRPATH'
)
_POP3D = (
    "set -a; . /etc/courier/pop3d; . /etc/courier/pop3d-ssl; POP3_STARTTLS=NO; "
    'exec "$0" $LOGGEROPTS "$1" -address=127.0.0.1 -maxprocs=$MAXDAEMONS -maxperip=$MAXPERIP '
    '$TCPDOPTS "$2" /usr/lib/courier/courier/courierpop3login '
    "/usr/lib/courier/courier/courierpop3d $MAILDIRPATH"
)
# /usr/sbin/authdaemond start (Debian) in the foreground. -name= is required here: with a single
# argument courierlogger is a plain stdin-to-syslog logger named after it and runs nothing.
_AUTHDAEMOND = 'set -a; . /etc/courier/authdaemonrc; exec "$0" -name=authdaemond $LOGGEROPTS "$1"'

# a maildir file has plain LF line ends (pop3d sends CRLF)
_MESSAGE = (
    b"From: carol@example.org\nTo: bob@lab.test\nSubject: hello\n"
    b"Message-ID: <courier-real-1@example.org>\n\nA message for POP3 RETR.\n"
)


# ---- the daemons ----------------------------------------------------------------------------


def _abstract_socket(name: str) -> bool:
    """An abstract unix socket ``name`` is bound (gamin pads the name with NULs: ``@`` here)."""
    with open("/proc/net/unix", encoding="utf-8", errors="replace") as f:
        return any(line.rstrip("\n").rstrip("@").endswith(" @" + name) for line in f)


@dataclass
class ExtractedCourier:
    root: Path
    versions: dict[str, str]
    extra_libs: list[str]


class Courier:
    """authdaemond + IMAP + POP3 (+ gam_server) from the extracted root, in one mount namespace."""

    def __init__(self, ex: ExtractedCourier, workdir: Path) -> None:
        self.ex = ex
        self.dir = workdir
        self.ns = workdir / "ns"
        self.log = workdir / "log" / "maillog"
        self.imap_port = unpacked.free_port()
        self.pop3_port = unpacked.free_port()
        self.gam_id = "mailwarden" + secrets.token_hex(6)
        self.capture = SyslogCapture(workdir / "syslog", self.log)
        self._holder: subprocess.Popen[bytes] | None = None
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._stderr: dict[str, Path] = {}

    # ---- set-up
    def _write(self) -> None:
        self.dir.chmod(0o755)  # uid 65534 (imapd, pop3d, gam_server) walks to the maildirs
        etc = self.ns / "etc" / "courier"
        authdir = self.ns / "run" / "courier" / "authdaemon"
        for d in (etc, authdir, self.dir / "log"):
            d.mkdir(parents=True, exist_ok=True)
        packaged = self.ex.root / "etc" / "courier"
        for name in ("imapd", "imapd-ssl", "pop3d", "pop3d-ssl"):
            shutil.copyfile(packaged / name, etc / name)
        rc = (packaged / "authdaemonrc").read_text()
        rc, n = re.subn(r"(?m)^authmodulelist=.*$", 'authmodulelist="authuserdb"', rc)
        assert n == 1, "authmodulelist= not found in the packaged authdaemonrc"
        (etc / "authdaemonrc").write_text(rc)
        for user in USERS:
            maildir = self.maildir(user)
            for sub in ("cur", "new", "tmp"):
                (maildir / sub).mkdir(parents=True, exist_ok=True)
        (self.maildir("bob@lab.test") / "new" / "1700000000.M1P1.mx").write_bytes(_MESSAGE)
        for path in (self.dir / "mail").rglob("*"):
            os.chown(path, MAILBOX_ID, MAILBOX_ID)
        (self.dir / "mail").chmod(0o755)

    def maildir(self, user: str) -> Path:
        return self.dir / "mail" / user.split("@", maxsplit=1)[0] / "Maildir"

    def _holder_argv(self) -> list[str]:
        """The namespace holder: our mounts, then SyslogCapture's (which then execs ``sleep``)."""
        root, ns = self.ex.root, self.ns
        mounts = [
            ro_overlay("/usr/lib", root / "usr/lib", "/usr/lib"),
            ro_overlay("/etc", ns / "etc", "/etc"),
            bind(ns / "etc/courier", "/etc/courier"),
            ro_overlay("/run", ns / "run", "/run"),
            bind(ns / "run/courier", "/run/courier"),
        ]
        inner = self.capture.namespace_argv(["sleep", "infinity"])
        return unpacked.namespace_argv(mounts, inner, name="courier-ns")

    def ns_argv(self, *cmd: str) -> list[str]:
        """``cmd`` in the daemons' mount namespace (nsenter execs it: same PID)."""
        assert self._holder is not None
        return ["nsenter", "-t", str(self._holder.pid), "-m", "--", *cmd]

    def run(self, *cmd: str, stdin: str = "") -> str:
        r = subprocess.run(
            self.ns_argv(*cmd),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=sys_env(),
        )
        if r.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} rc={r.returncode}: {r.stdout}{r.stderr}")
        return r.stdout

    def _make_userdb(self) -> None:
        bin_ = self.ex.root / "usr" / "sbin"
        for user, password in USERS.items():
            home = self.maildir(user).parent
            self.run(
                str(bin_ / "userdb"), "-f", "/etc/courier/userdb", user, "set",
                f"uid={MAILBOX_ID}", f"gid={MAILBOX_ID}", f"home={home}", f"mail={home}/Maildir",
            )  # fmt: skip
            crypted = self.run(str(bin_ / "userdbpw"), "-md5", stdin=f"{password}\n{password}\n").strip()
            assert crypted.startswith("$1$"), crypted
            self.run(str(bin_ / "userdb"), "-f", "/etc/courier/userdb", user, "set", f"systempw={crypted}")
        (self.ns / "etc" / "courier" / "userdb").chmod(0o600)  # makeuserdb insists
        self.run(str(bin_ / "makeuserdb"), "-f", "/etc/courier/userdb")
        assert (self.ns / "etc" / "courier" / "userdb.dat").exists()

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        self._stderr[name] = self.dir / "log" / f"{name}.stderr"
        with open(self._stderr[name], "wb") as err:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=subprocess.STDOUT,
                env=sys_env(GAM_CLIENT_ID=self.gam_id),
            )
        self._procs[name] = proc
        return proc

    def start(self) -> Courier:
        self._write()
        self.capture.start()
        with open(self.dir / "log" / "namespace.stderr", "wb") as err:
            self._holder = subprocess.Popen(
                self._holder_argv(),
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=subprocess.STDOUT,
                env=sys_env(),
            )
        holder = self._holder
        comm = Path(f"/proc/{holder.pid}/comm")
        wait_ready("mount namespace", lambda: comm.read_text().strip() == "sleep", [holder], 20)
        root, sbin = self.ex.root, str(self.ex.root / "usr" / "sbin")
        self._make_userdb()
        gam = self._spawn(
            "gam_server",
            self.ns_argv(
                "setpriv", f"--reuid={MAILBOX_ID}", f"--regid={MAILBOX_ID}", "--clear-groups",
                str(root / "usr" / "libexec" / "gam_server"), "--notimeout", self.gam_id,
            ),
        )  # fmt: skip
        wait_ready(
            "gam_server", lambda: _abstract_socket(f"/tmp/fam-nobody-{self.gam_id}"), [holder, gam], 20
        )
        auth = self._spawn(
            "authdaemond",
            self.ns_argv(
                "/bin/sh", "-c", _AUTHDAEMOND, f"{sbin}/courierlogger",
                "/usr/lib/courier/courier-authlib/authdaemond",
            ),
        )  # fmt: skip
        sock = self.ns / "run" / "courier" / "authdaemon" / "socket"
        wait_ready("authdaemond", sock.exists, [holder, auth], 20)
        self.capture.wait_for(r" authdaemond: Installation complete: authuserdb$", timeout=20)
        imapd = self._spawn(
            "imapd",
            self.ns_argv(
                "/bin/sh", "-c", _IMAPD, f"{sbin}/courierlogger", f"{sbin}/couriertcpd",
                str(self.imap_port), str(root / "usr" / "bin" / "imapd"),
            ),
        )  # fmt: skip
        pop3d = self._spawn(
            "pop3d",
            self.ns_argv(
                "/bin/sh", "-c", _POP3D, f"{sbin}/courierlogger", f"{sbin}/couriertcpd", str(self.pop3_port)
            ),
        )
        wait_ready("imapd", lambda: unpacked.listening(self.imap_port), [holder, imapd], 20)
        wait_ready("pop3d", lambda: unpacked.listening(self.pop3_port), [holder, pop3d], 20)
        return self

    def stop(self) -> dict[str, int | None]:
        """SIGTERM to each of our PIDs (listeners first, the namespace holder last); exit codes."""
        codes: dict[str, int | None] = {}
        order = [n for n in ("imapd", "pop3d", "authdaemond", "gam_server") if n in self._procs]
        procs = [(n, self._procs.pop(n)) for n in order]
        if self._holder is not None:
            procs.append(("namespace", self._holder))
            self._holder = None
        for name, proc in procs:
            # 15 s: courierlogger kills its child after 8 s at the latest
            codes[name] = unpacked.terminate(proc, 15)
        self.capture.stop()
        return codes

    def stderr_text(self) -> str:
        return "".join(
            f"--- {name}:\n{path.read_text(errors='replace')}"
            for name, path in self._stderr.items()
            if path.exists()
        )


# ---- clients --------------------------------------------------------------------------------


def _imap_login(port: int, user: str, password: str) -> str:
    client = imaplib.IMAP4("127.0.0.1", port, timeout=30)
    try:
        try:
            client.login(user, password)
        except imaplib.IMAP4.error as exc:
            return f"NO {exc}"
        typ, data = client.select("INBOX")
        assert typ == "OK", data
        return "OK"
    finally:
        client.logout()


def _pop3_login(port: int, user: str, password: str) -> str:
    client = poplib.POP3("127.0.0.1", port, timeout=30)
    try:
        client.user(user)
        try:
            client.pass_(password)
        except poplib.error_proto as exc:
            return f"ERR {exc}"
        count, _size = client.stat()
        assert count == 1, count
        _resp, lines, _octets = client.retr(1)
        assert b"Subject: hello" in lines, lines
        client.quit()
        return "OK"
    finally:
        client.close()


@dataclass
class Played:
    courier: Courier
    results: dict[str, str] = field(default_factory=dict)
    exit_codes: dict[str, int | None] = field(default_factory=dict)

    def lines(self) -> list[str]:
        return self.courier.log.read_text(encoding="utf-8").splitlines()

    def read(self) -> tuple[list[Event], ReadStats]:
        stats = ReadStats()
        return list(events_from([str(self.courier.log)], stats)), stats


def _play(c: Courier) -> Played:
    played = Played(c)
    played.results["imap alice"] = _imap_login(c.imap_port, "alice@lab.test", USERS["alice@lab.test"])
    c.capture.wait_for(r" imapd: LOGOUT, user=alice@lab\.test, ")
    # Courier answers a failed login only after 5 s: the three failures run side by side
    failures: dict[str, Callable[[], str]] = {
        "imap bob wrong": lambda: _imap_login(c.imap_port, "bob@lab.test", "WRONG-password"),
        "imap unknown": lambda: _imap_login(c.imap_port, UNKNOWN_USER, "guess-123"),
        "pop3 bob wrong": lambda: _pop3_login(c.pop3_port, "bob@lab.test", "WRONG-password"),
    }
    errors: list[BaseException] = []

    def attempt(name: str, fn: Callable[[], str]) -> None:
        try:
            played.results[name] = fn()
        except BaseException as exc:  # re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=attempt, args=item) for item in failures.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if errors:
        raise errors[0]
    c.capture.wait_for(r" imapd: LOGOUT, ip=\[", count=2)
    c.capture.wait_for(r" pop3d: Disconnected, ip=\[")
    played.results["pop3 bob"] = _pop3_login(c.pop3_port, "bob@lab.test", USERS["bob@lab.test"])
    c.capture.wait_for(r" pop3d: LOGOUT, user=bob@lab\.test, ")
    return played


# ---- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def extracted_courier() -> Iterator[ExtractedCourier]:
    debs, libs = unpacked.debs_or_skip(
        "courier-real",
        "real Courier-IMAP",
        PACKAGES,
        LIB_PACKAGES,
        root_for="private mount namespaces and the daemons need root",
        tools=("unshare", "nsenter", "mount", "setpriv", "dpkg-deb", "dpkg-query", "apt-get", "perl"),
        checks=(namespace_supported,),
    )
    # the root is mode 0755: imapd/pop3d are exec'd as uid 65534
    with unpacked.unpacked_root(debs, "mailwarden-courier-root.") as root:
        versions = {unpacked.deb_field(d, "Package"): unpacked.deb_field(d) for d in debs}
        print(f"\n[courier-real] {versions} (extra libs: {libs or 'none'})")
        yield ExtractedCourier(root, versions, libs)


@pytest.fixture(scope="session")
def scenario(extracted_courier: ExtractedCourier) -> Iterator[Played]:
    workdir = Path(tempfile.mkdtemp(prefix="mailwarden-courier."))
    c = Courier(extracted_courier, workdir)
    ok = False
    try:
        try:
            c.start()
            print(f"\n[courier-real] imap :{c.imap_port}, pop3 :{c.pop3_port}, {workdir}")
            played = _play(c)
        except BaseException:
            c.stop()
            print(f"\n[courier-real] daemon output:\n{c.stderr_text()}")
            raise
        played.exit_codes = c.stop()
        unpacked.save_real_log(c.log, SAVED)
        ok = True
        yield played
    finally:
        c.stop()
        unpacked.keep_or_remove(workdir, ok, "courier-real")


# ---- tests ----------------------------------------------------------------------------------


@pytest.mark.integration
def test_real_courier_clients_saw_the_expected_answers(scenario: Played) -> None:
    r = scenario.results
    assert r["imap alice"] == "OK"
    assert r["pop3 bob"] == "OK"
    assert r["imap bob wrong"].startswith("NO "), r
    assert "Login failed" in r["imap bob wrong"]
    assert r["imap unknown"].startswith("NO "), r
    assert r["pop3 bob wrong"].startswith("ERR "), r
    # stopped cleanly by SIGTERM to our own PIDs (courierlogger exits 0 after its child)
    assert set(scenario.exit_codes.values()) <= {0, -signal.SIGTERM}, scenario.exit_codes


@pytest.mark.integration
def test_real_courier_writes_v4_mapped_addresses(scenario: Played) -> None:
    """What the real daemons wrote: tags without a PID, the client as ``[::ffff:127.0.0.1]``."""
    lines = scenario.lines()
    assert any(f"imapd: LOGIN, user=alice@lab.test, ip=[{_MAPPED}], port=[" in x for x in lines), lines
    assert any(f"imapd: LOGIN FAILED, user={UNKNOWN_USER}, ip=[{_MAPPED}], port=[" in x for x in lines)
    assert any(f"pop3d: LOGIN, user=bob@lab.test, ip=[{_MAPPED}], port=[" in x for x in lines), lines
    assert any("authdaemond: Installation complete: authuserdb" in x for x in lines), lines
    # FAM works (gam_server is ours): none of the "famd" complaints
    assert not [x for x in lines if "gam_server" in x or "maildirwatch" in x], lines


@pytest.mark.integration
def test_real_courier_log_parses(scenario: Played) -> None:
    events, stats = scenario.read()
    assert events
    assert stats.unparsed == {}, f"unparsed real Courier lines: {[r.message for r in stats.unparsed_samples]}"


@pytest.mark.integration
def test_real_courier_auth_events(scenario: Played) -> None:
    events, _ = scenario.read()
    ok = sorted((e.service, e.user, e.client) for e in events if isinstance(e, AuthSucceeded))
    assert ok == [("imap", "alice@lab.test", "127.0.0.1"), ("pop3", "bob@lab.test", "127.0.0.1")]
    bad = sorted((e.service, e.user, e.client, e.reason) for e in events if isinstance(e, AuthFailed))
    assert bad == [
        ("imap", "bob@lab.test", "127.0.0.1", "auth_failed"),
        ("imap", UNKNOWN_USER, "127.0.0.1", "auth_failed"),
        ("pop3", "bob@lab.test", "127.0.0.1", "auth_failed"),
    ]


@pytest.mark.integration
def test_real_courier_connections(scenario: Played) -> None:
    events, _ = scenario.read()
    connects = sorted((e.service, e.client) for e in events if isinstance(e, Connect))
    disconnects = sorted((e.service, e.client) for e in events if isinstance(e, Disconnect))
    want = [("imap", "127.0.0.1")] * 3 + [("pop3", "127.0.0.1")] * 2
    assert connects == want
    assert disconnects == want


def test_saved_real_excerpt_parses() -> None:
    """tests/data/real/courier.log (captured from the real daemons) reads without unparsed lines."""
    if not SAVED.exists():
        pytest.skip(f"{SAVED} not captured yet")
    stats = ReadStats()
    events = list(events_from([str(SAVED)], stats))
    assert stats.unparsed == {}, [r.message for r in stats.unparsed_samples]
    assert f"ip=[{_MAPPED}]" in SAVED.read_text()
    ok = sorted((e.service, e.user, e.client) for e in events if isinstance(e, AuthSucceeded))
    assert ok == [("imap", "alice@lab.test", "127.0.0.1"), ("pop3", "bob@lab.test", "127.0.0.1")]
    bad = sorted((e.service, e.user, e.client) for e in events if isinstance(e, AuthFailed))
    assert bad == [
        ("imap", "bob@lab.test", "127.0.0.1"),
        ("imap", UNKNOWN_USER, "127.0.0.1"),
        ("pop3", "bob@lab.test", "127.0.0.1"),
    ]
