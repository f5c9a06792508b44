"""The OpenSMTPD parser against the REAL daemon (Debian's ``opensmtpd`` 6.8, run on loopback).

Nothing is installed (see tests/integration/realmta/unpacked.py, which does the downloading,
unpacking, namespaces and the fake MX for all the real-daemon tests): a session fixture
downloads ``opensmtpd`` (plus any of its shared libraries this machine lacks), unpacks them
into a private root and runs that ``smtpd`` as our child.

Debian's build has compile-time paths and privilege-separation users (``opensmtpd`` and
``opensmtpq``, not OpenBSD's ``_smtpd``/``_smtpq``; there is no option to choose others):
``/var/spool/smtpd`` (queue), ``/var/lib/opensmtpd/empty`` (chroot), ``/var/run/smtpd.sock``
(control socket), ``/usr/libexec/opensmtpd`` (mail.maildir etc.). The daemon therefore runs in
a private mount namespace (``unshare --mount --propagation private``) in which temp dirs are
bind-mounted over ``/var/spool``, ``/var/lib``, ``/run`` and ``/usr/libexec`` and -- only when
the two users do not exist on the machine -- copies of ``/etc/passwd`` and ``/etc/group`` that
add them (free system uid/gids) over the real files. Nothing on the host is changed; the
mounts vanish with the process.

Logging: ``smtpd -d`` logs to stderr. OpenSMTPD's log.c (``vlog``) writes exactly the format
string it would give ``vsyslog`` (plus a newline) when in debug mode, and the daemon opens
syslog as ``openlog("smtpd", LOG_PID, LOG_MAIL)``; so stderr has the same message text as the
syslog lines but no time/host/tag. Each stderr line is therefore prefixed, as it is read, with
``Mon DD HH:MM:SS <host> smtpd[<pid>]: `` (the real time; ``<pid>`` is the PID of the parent
``smtpd`` we started: with syslog each privilege-separated child would log under its own PID,
which stderr does not tell). That file is what mailwarden reads.

Scenario: STARTTLS + AUTH PLAIN success (alice), AUTH failure with a wrong password (bob),
one message from alice to three remote recipients relayed to the fake MX (``unpacked.FakeMx``) that
answers 250 / ``554 5.7.1 ... blocked using zen.spamhaus.org`` / ``421 4.7.0 ...``, the bounce
of the 554 delivered locally to alice's maildir (``mail.maildir``, uid 65534) and an
unauthenticated relay attempt from 127.0.0.1 (refused). Then the parsed events are checked.

Known limitation: OpenSMTPD offers AUTH only after STARTTLS, and Debian 12's 6.8.0p2 cannot
finish a TLS handshake with OpenSSL 3 (``smtp disconnected reason="io-error: error:0A080006:SSL
routines::EVP lib"``; upstream issues #1171/#1239). Then the message is sent unauthenticated
through a second, trusted listener (``tag TRUSTED``) and the AUTH test skips with the reason.
``MAILWARDEN_KEEP_REAL_LOGS=1`` keeps the temp dir (log/smtpd.log, log/smtpd.stderr).
"""

from __future__ import annotations

import os
import pwd
import re
import smtplib
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from realmta import unpacked
from realmta.unpacked import FakeMx, bind

from mailwarden.model import (
    AuthFailed,
    AuthSucceeded,
    DeliveryAttempted,
    Event,
    MessageReceived,
    ReadStats,
    Rejected,
)
from mailwarden.pipeline import events_from

PACKAGE = "opensmtpd"
#: Shared libraries ``smtpd`` links against (downloaded too, only when not installed).
LIB_PACKAGES = ("libevent-2.1-7", "libdb5.3", "libssl3", "libcrypt1", "libpam0g", "zlib1g")
#: Debian's SMTPD_USER / SMTPD_QUEUE_USER (compile time).
PRIV_USERS = ("opensmtpd", "opensmtpq")
PREFERRED_PORT = 2526
HOSTNAME = "mx.lab.test"
USERS = {"alice@lab.test": "alice-secret", "bob@lab.test": "bob-secret"}
MAILBOX_UID = 65534

REAL_LOG = Path(__file__).resolve().parents[2] / "data" / "real" / "opensmtpd.log"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# --------------------------------------------------------------------------------------------
# the daemon


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _syslog_prefix(now: datetime, host: str, pid: int) -> str:
    return f"{_MONTHS[now.month - 1]} {now.day:2d} {now:%H:%M:%S} {host} smtpd[{pid}]: "


class OpenSmtpd:
    """Debian's smtpd from an extracted .deb, in a private mount namespace, on 127.0.0.1."""

    def __init__(self, root: Path, workdir: Path, mx: FakeMx) -> None:
        self.root = root
        self.dir = workdir
        self.mx = mx
        self.port = PREFERRED_PORT if _port_free(PREFERRED_PORT) else unpacked.free_port()
        self.trusted_port = unpacked.free_port()
        self.host = socket.gethostname().split(".")[0] or "localhost"
        self.log_path = workdir / "log" / "smtpd.log"
        self.stderr_path = workdir / "log" / "smtpd.stderr"
        self.lines: list[str] = []
        self.raw: list[str] = []
        self.cert = workdir / "tls" / "cert.pem"
        self._cond = threading.Condition()
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self.users_overlay = False

    # ---- set-up
    def _write(self) -> None:
        d = self.dir
        for sub in ("etc", "tls", "log", "ns/var-spool", "ns/var-lib/opensmtpd/empty", "ns/run", "home"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        d.chmod(0o755)
        (d / "home").chmod(0o755)
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                "-subj", f"/CN={HOSTNAME}", "-addext", f"subjectAltName=DNS:{HOSTNAME},IP:127.0.0.1",
                "-keyout", str(d / "tls" / "key.pem"), "-out", str(self.cert),
            ],
            capture_output=True, timeout=60, check=True,
        )  # fmt: skip
        (d / "tls" / "key.pem").chmod(0o600)
        # credentials: crypt(3) hashes made by OpenSMTPD's own `smtpctl encrypt` helper
        creds = []
        for user, password in USERS.items():
            r = subprocess.run(
                [str(self.root / "usr/libexec/opensmtpd/encrypt"), password],
                capture_output=True, text=True, timeout=30, check=True, env=self.env(),
            )  # fmt: skip
            assert r.stdout.startswith("$"), r.stdout
            creds.append(f"{user}\t{r.stdout.strip()}\n")
        (d / "etc" / "creds").write_text("".join(creds))
        (d / "etc" / "creds").chmod(0o600)
        userbase = []
        for user in USERS:
            local = user.partition("@")[0]
            home = d / "home" / local
            home.mkdir(exist_ok=True)
            os.chown(home, MAILBOX_UID, MAILBOX_UID)
            userbase.append(f"{local}\t{MAILBOX_UID}:{MAILBOX_UID}:{home}\n")
        (d / "etc" / "userbase").write_text("".join(userbase))
        (d / "etc" / "smtpd.conf").write_text(
            f'pki {HOSTNAME} cert "{self.cert}"\n'
            f'pki {HOSTNAME} key "{d}/tls/key.pem"\n'
            f"table creds file:{d}/etc/creds\n"
            f"table users file:{d}/etc/userbase\n"
            f"listen on 127.0.0.1 port {self.port} tls pki {HOSTNAME} hostname {HOSTNAME} "
            "auth-optional <creds>\n"
            f"listen on 127.0.0.1 port {self.trusted_port} hostname {HOSTNAME} tag TRUSTED\n"
            'action "local" maildir "%{user.directory}/Maildir" userbase <users>\n'
            f'action "relay" relay host smtp://127.0.0.1:{self.mx.port} helo {HOSTNAME}\n'
            'match from any for domain "lab.test" action "local"\n'
            'match auth from any for any action "relay"\n'
            'match tag TRUSTED from any for any action "relay"\n'
        )
        # privilege-separation users: the host's if present, else a private passwd/group
        missing = [u for u in PRIV_USERS if not _user_exists(u)]
        if missing:
            self.users_overlay = True
            unpacked.users_overlay(d / "ns", [(u, "/var/lib/opensmtpd/empty") for u in PRIV_USERS])

    def env(self) -> dict[str, str]:
        env = unpacked.sys_env()
        libdir = self.root / "usr/lib/x86_64-linux-gnu"
        libs = [str(p) for p in (libdir, self.root / "lib/x86_64-linux-gnu") if p.is_dir()]
        if libs:
            env["LD_LIBRARY_PATH"] = ":".join(libs)
        return env

    def version(self) -> str:
        r = subprocess.run(
            [str(self.root / "usr/sbin/smtpd"), "-h"],
            capture_output=True, text=True, timeout=30, check=False, env=self.env(),
        )  # fmt: skip
        m = re.search(r"version: (OpenSMTPD \S+)", r.stderr + r.stdout)
        return m.group(1) if m else "unknown"

    def start(self) -> OpenSmtpd:
        self._write()
        ns = self.dir / "ns"
        mounts = unpacked.users_binds(ns) if self.users_overlay else []
        mounts += [
            bind(ns / "var-spool", "/var/spool"),
            bind(ns / "var-lib", "/var/lib"),
            bind(ns / "run", "/run"),
            bind(self.root / "usr/libexec", "/usr/libexec"),
        ]
        smtpd = [str(self.root / "usr/sbin/smtpd"), "-d", "-f", str(self.dir / "etc" / "smtpd.conf")]
        argv = unpacked.namespace_argv(mounts, smtpd, name="opensmtpd-ns")
        self._proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=self.env()
        )
        self._reader = threading.Thread(target=self._read, name="smtpd-stderr", daemon=True)
        self._reader.start()
        unpacked.wait_ready(
            "smtpd",
            lambda: unpacked.listening(self.port) and unpacked.listening(self.trusted_port),
            [self._proc],
            details=lambda: "\n".join(self.raw[-20:]),
        )
        return self

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        pid = self._proc.pid
        with open(self.log_path, "a", encoding="utf-8") as log, open(self.stderr_path, "ab") as raw:
            for chunk in self._proc.stdout:
                now = datetime.now()
                raw.write(chunk)
                raw.flush()
                text = chunk.decode("utf-8", "replace").rstrip("\r\n")
                line = _syslog_prefix(now, self.host, pid) + text
                log.write(line + "\n")
                log.flush()
                with self._cond:
                    self.raw.append(text)
                    self.lines.append(line)
                    self._cond.notify_all()

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        unpacked.terminate(proc)
        if self._reader is not None:
            self._reader.join(10)
        if proc.stdout is not None:
            proc.stdout.close()
        self._proc = proc  # keep returncode visible

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def wait_log(self, pattern: str, count: int = 1, timeout: float = 30) -> list[str]:
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [line for line in self.raw if rx.search(line)]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"{count}x /{pattern}/ not in smtpd log after {timeout}s:\n" + "\n".join(self.raw)
                    )
                self._cond.wait(left)

    # ---- clients
    def client(self, *, tls: bool = True, trusted: bool = False) -> smtplib.SMTP:
        port = self.trusted_port if trusted else self.port
        s = smtplib.SMTP("127.0.0.1", port, local_hostname="client.lab.test", timeout=30)
        try:
            s.ehlo()
            if tls:
                s.starttls(context=ssl.create_default_context(cafile=str(self.cert)))
                s.ehlo()
        except BaseException:
            s.close()
            raise
        return s


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _auth_plain(s: smtplib.SMTP, user: str, password: str) -> tuple[int, bytes]:
    """Exactly one AUTH PLAIN attempt (``login()`` would retry with other mechanisms)."""
    s.user, s.password = user, password
    try:
        return s.auth("PLAIN", s.auth_plain)
    except smtplib.SMTPAuthenticationError as exc:
        return exc.smtp_code, exc.smtp_error


# --------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="session")
def opensmtpd() -> Iterator[OpenSmtpd]:
    debs, _libs = unpacked.debs_or_skip(
        "opensmtpd",
        "real OpenSMTPD",
        [PACKAGE],
        LIB_PACKAGES,
        root_for="smtpd needs root; mount namespaces too",
        tools=("unshare", "mount", "openssl", "dpkg-deb"),
    )
    workdir = Path(tempfile.mkdtemp(prefix="mailwarden-opensmtpd."))
    root = unpacked.unpack(debs, workdir / "root")
    mx = FakeMx().start()
    daemon = OpenSmtpd(root, workdir, mx)
    print(f"\n[opensmtpd] {daemon.version()} (deb {unpacked.deb_field(debs[0])}) in {workdir}")
    ok = False
    try:
        daemon.start()
        yield daemon
        ok = True
    finally:
        daemon.stop()
        mx.stop()
        unpacked.keep_or_remove(workdir, ok, "opensmtpd")


@dataclass
class Played:
    """What the scenario did; ``tls_error`` is set when STARTTLS failed (no AUTH possible)."""

    daemon: OpenSmtpd
    tls_error: str = ""
    authenticated: bool = False


RECIPIENTS = ["friend@example.com", "blocked-user@example.net", "rate-limited@example.org"]
MESSAGE = b"From: alice@lab.test\r\nTo: friend@example.com\r\nSubject: real opensmtpd test\r\n\r\nhello\r\n"


@pytest.fixture(scope="session")
def scenario(opensmtpd: OpenSmtpd) -> Played:
    """Play the whole scenario once; the tests check its log.

    OpenSMTPD offers AUTH only after STARTTLS. Debian 12's opensmtpd 6.8.0p2 cannot complete a
    TLS handshake with OpenSSL 3 (its privilege-separated RSA/ECDSA key engine fails: "EVP lib",
    upstream OpenSMTPD issues #1171 and #1239), so when the handshake fails the message goes
    through the second, trusted listener (tag TRUSTED, no AUTH) instead and the AUTH checks skip.
    """
    d = opensmtpd
    played = Played(d)
    try:
        s = d.client()
    except ssl.SSLError as exc:
        played.tls_error = f"{type(exc).__name__}: {exc}"
        d.wait_log(r"smtp disconnected reason=")
    else:
        # 1. AUTH success + one message to three remote recipients (250 / 554 / 421 at the MX)
        try:
            code, _ = _auth_plain(s, "alice@lab.test", "alice-secret")
            assert code == 235
            played.authenticated = True
            assert s.sendmail("alice@lab.test", RECIPIENTS, MESSAGE) == {}
            s.quit()
        finally:
            s.close()
        # 2. AUTH failure (wrong password)
        s = d.client()
        try:
            code, _ = _auth_plain(s, "bob@lab.test", "WRONG-password")
            assert code == 535
            s.quit()
        finally:
            s.close()
    if not played.authenticated:
        s = d.client(tls=False, trusted=True)
        try:
            assert s.sendmail("alice@lab.test", RECIPIENTS, MESSAGE) == {}
            s.quit()
        finally:
            s.close()
    # 3. unauthenticated relay attempt from 127.0.0.1 on the AUTH listener (no TLS, no AUTH)
    s = d.client(tls=False)
    try:
        code, _ = s.mail("spammer@example.org")
        assert code == 250
        code, reply = s.rcpt("victim@example.com")
        assert code == 550, reply
        s.quit()
    finally:
        s.close()
    # wait for the three relay results and the bounce's local delivery
    d.wait_log(r' mta delivery .* to=<friend@example\.com> .*result="?Ok')
    d.wait_log(r' mta delivery .* to=<blocked-user@example\.net> .*result="?PermFail')
    d.wait_log(r' mta delivery .* to=<rate-limited@example\.org> .*result="?TempFail')
    d.wait_log(r' mda delivery .* to=<alice@lab\.test> .*result="?Ok', timeout=60)
    d.wait_log(r"smtp disconnected", count=4 if played.authenticated else 3)
    return played


# --------------------------------------------------------------------------------------------
# tests


def _read(paths: list[Path]) -> tuple[list[Event], ReadStats]:
    stats = ReadStats()
    events = list(events_from([str(p) for p in paths], stats))
    return events, stats


@pytest.mark.integration
def test_stderr_lines_are_syslog_shaped(scenario: Played) -> None:
    d = scenario.daemon
    prefix = re.compile(r"^[A-Z][a-z]{2} [ 123]\d \d\d:\d\d:\d\d \S+ smtpd\[\d+\]: ")
    assert d.lines
    assert all(prefix.match(line) for line in d.lines)
    # smtp-in session lines carry a 16-hex-digit session id, as in syslog
    assert any(re.match(r"[0-9a-f]{16} smtp connected address=127\.0\.0\.1 ", r) for r in d.raw)


@pytest.mark.integration
def test_real_opensmtpd_log_parses(scenario: Played) -> None:
    events, stats = _read([scenario.daemon.log_path])
    unparsed = [r.message for r in stats.unparsed_samples]
    assert stats.unparsed == {}, f"unparsed real lines: {unparsed}"

    received = [e for e in events if isinstance(e, MessageReceived)]
    sasl = "alice@lab.test" if scenario.authenticated else ""
    relayed = [e for e in received if e.client == "127.0.0.1" and e.sasl_username == sasl]
    # the relayed message (the bounce is generated locally: no client)
    assert len(relayed) == 1, received

    status = {e.recipient: e.status for e in events if isinstance(e, DeliveryAttempted)}
    assert status.get("friend@example.com") == "sent", status
    assert status.get("blocked-user@example.net") == "bounced", status
    assert status.get("rate-limited@example.org") == "deferred", status
    assert status.get("alice@lab.test") == "sent", status  # the bounce, delivered locally

    relay = [e for e in events if isinstance(e, Rejected) and e.recipient == "victim@example.com"]
    assert len(relay) == 1, relay
    assert relay[0].client == "127.0.0.1"
    assert relay[0].code == "550"


@pytest.mark.integration
def test_real_opensmtpd_auth_events(scenario: Played) -> None:
    if scenario.tls_error:
        pytest.skip(
            "OpenSMTPD offers AUTH only after STARTTLS, and this opensmtpd build cannot do TLS "
            f"with this OpenSSL ({scenario.tls_error}; upstream issues #1171/#1239)"
        )
    events, stats = _read([scenario.daemon.log_path])
    assert stats.unparsed == {}, [r.message for r in stats.unparsed_samples]
    ok = [e for e in events if isinstance(e, AuthSucceeded)]
    assert [(e.user, e.client) for e in ok] == [("alice@lab.test", "127.0.0.1")]
    bad = [e for e in events if isinstance(e, AuthFailed)]
    assert [(e.user, e.client) for e in bad] == [("bob@lab.test", "127.0.0.1")]


def test_saved_real_excerpt_parses() -> None:
    """tests/data/real/opensmtpd.log (captured from the real daemon) reads without unparsed lines."""
    if not REAL_LOG.exists():
        pytest.skip(f"{REAL_LOG} not captured yet")
    events, stats = _read([REAL_LOG])
    assert stats.unparsed == {}, [r.message for r in stats.unparsed_samples]
    status = {e.recipient: e.status for e in events if isinstance(e, DeliveryAttempted)}
    assert status.get("friend@example.com") == "sent", status
    assert status.get("blocked-user@example.net") == "bounced", status
    assert status.get("rate-limited@example.org") == "deferred", status
