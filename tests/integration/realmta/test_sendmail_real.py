"""The Sendmail parser against a REAL Sendmail 8 daemon on loopback.

Nothing is installed (see ``unpacked.py`` next to this file, which does the downloading,
unpacking, namespaces and the fake MX for all the real-daemon tests): a session fixture
downloads ``sendmail-bin sendmail-base sendmail-cf m4 sasl2-bin``, unpacks them into a private
root, builds ``sendmail.cf`` from a minimal ``.mc`` with that root's ``m4`` and ``cf/`` files,
and runs ``sendmail -L sm-mta -bD`` (foreground daemon, our child, stopped by its own PID) on
``127.0.0.1:<free port>`` (``DaemonPortOptions``). Skipped (reason printed) only when not root
(or no mount namespace possible) or when ``apt-get download`` fails (no Debian mirror).

Sendmail logs only through syslog(3) (``/dev/log``): the daemon runs in a private mount
namespace where our datagram socket is ``/dev/log`` (``syslog_capture.SyslogCapture``); the
datagrams are written as RFC 3164 lines (host ``mx``) to ``maillog`` and read by mailwarden.

Scenario (swaks is the client, ``unpacked.FakeMx`` is the remote MX that ``SMART_HOST`` relays
to; it advertises PIPELINING, answers a pipelined DATA after refused recipients with 554 and
closes the connection after a 421, as real MXs do):

1. SMTP AUTH PLAIN alice@lab.test with the right password -> mail to friend@example.com
   (remote MX 250: ``stat=Sent``); AUTH LOGIN bob@lab.test with a wrong password;
2. unauthenticated from 127.0.0.1 to a local user (alice@lab.test, delivered by the local
   mailer), and an unauthenticated message that must be relayed (``Relaying denied``) -- sent
   from 127.0.0.2, see below;
3. authenticated mail to block-user@example.com (remote 554 5.7.1 ... zen.spamhaus.org: a
   bounce, and the DSN to alice delivered locally) and to rate-user@example.com (remote 421
   4.7.0: deferred).

Workarounds (all inside the test's temp dir or the daemon's private namespaces):

* ``My unqualified host name (vm) unknown; sleeping for retry`` (60 s sleep at start-up when
  gethostname() has no dot and does not resolve to a FQDN): the daemon gets a private UTS
  namespace (``unshare --uts``) with host name ``mx.lab.test``, and a private ``/etc/hosts``
  (``127.0.0.1 localhost`` + ``mx.lab.test mx``) and ``/etc/resolv.conf`` (``nameserver
  127.0.0.1``, so no query can leave the box) bind-mounted in its mount namespace. The .cf adds
  ``ServiceSwitchFile`` (hosts/aliases from files only), ``DontProbeInterfaces``,
  ``FEATURE(nocanonify)``, ``FEATURE(accept_unresolvable_domains)`` (else ``553 5.1.8 Domain of
  sender address ... does not exist``) and ``confBIND_OPTS=-DNSRCH -DEFNAMES``: no DNS at all.
* ``WARNING: World writable directory /tmp`` and ``Cannot create database for alias file``:
  the temp dir lives in /tmp (sticky, world-writable), so ``DontBlameSendmail=TrustStickyBit``.
  The dir itself (mkdtemp: 0700) and the queue dir (0700) are root's.
* smmsp / submit.cf / the MSP are not used at all: mail comes in over SMTP only. No system user
  is created: the daemon runs as root (as Debian's does), and so does the local mailer (its
  ``F=`` has ``S``). ``deliver.sh`` (our local mailer, replacing procmail/mail.local so nothing
  is written to /var/mail) stores each message under ``mbox/`` in the temp dir; the ``F=``
  flags drop ``w`` (no passwd entry needed), so ``alice`` is a mailbox without a Unix account.
* Cyrus SASL: sendmail-bin links libsasl2 (``Compiled with: ... SASLv2``). Its config
  ``Sendmail.conf`` (``pwcheck_method: auxprop``, ``auxprop_plugin: sasldb``, ``sasldb_path``
  = a temp sasldb made by the downloaded ``saslpasswd2 -f``, ``mech_list: PLAIN LOGIN``) is
  searched in ``/etc/sasl2:/etc/sasl:/usr/lib/<triplet>/sasl2:/usr/lib/sasl2`` and Sendmail
  clears the environment (no ``SASL_CONF_PATH``): a temp dir holding it is bind-mounted over
  the (empty, libsasl2-2's) ``/usr/lib/sasl2`` inside the namespace. The PLAIN/LOGIN and sasldb
  plugins come from the installed libsasl2-modules / libsasl2-modules-db. Plaintext AUTH is
  allowed without TLS (no ``AuthOptions=p``).
* Sendmail relays unauthenticated mail from 127.0.0.1 (checked: ``stat=Sent`` to the fake MX),
  so the relay attempts come from 127.0.0.2 and 127.0.0.3 (``swaks --local-interface``). The
  client's PTR is looked up via libc: with the machine's resolver config that gave ``450 4.4.0
  ... Relaying temporarily denied. Cannot resolve PTR record for 127.0.0.2``, so the namespace
  also gets a private ``/etc/nsswitch.conf`` (``hosts: files``); our ``/etc/hosts`` names
  127.0.0.2 ``relay-tester.example.net`` (``550 5.7.1 ... Relaying denied. Proper
  authentication required.``) and not 127.0.0.3 (``... Relaying denied. IP name lookup
  failed [127.0.0.3]``).
* ``RELAY_MAILER_ARGS=TCP $h <port>`` + ``SMART_HOST=relay:[127.0.0.1]``: all non-local mail to
  the fake MX on its free port, never to a real MX. ``confTO_QUEUERETURN=5d`` keeps the
  deferred message queued (nobody runs the queue: it dies with the temp dir).

The temp dir is removed when every test passed and ``MAILWARDEN_KEEP_REAL_LOGS`` is not set;
``MAILWARDEN_SAVE_REAL_LOGS=1`` copies the maillog to tests/data/real/sendmail.log.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

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

from . import unpacked
from .syslog_capture import SyslogCapture, namespace_supported
from .unpacked import FakeMx

DEBS = ("sendmail-bin", "sendmail-base", "sendmail-cf", "m4", "sasl2-bin")
SAVED = Path(__file__).resolve().parents[2] / "data" / "real" / "sendmail.log"
USERS = {"alice@lab.test": "alice-secret", "bob@lab.test": "bob-secret"}
SASL_CONF_DIR = Path("/usr/lib/sasl2")


# ---- packages -------------------------------------------------------------------------------


def _sasl_plugins() -> bool:
    """PLAIN, LOGIN and sasldb plugins of the installed libsasl2-modules(-db)."""
    return all(glob.glob(f"/usr/lib/*/sasl2/lib{p}.so*") for p in ("plain", "login", "sasldb"))


# ---- the Sendmail instance -----------------------------------------------------------------


@dataclass
class RealSendmail:
    dir: Path
    root: Path
    port: int
    mx_port: int
    capture: SyslogCapture
    version: str = ""
    auth: bool = False
    proc: subprocess.Popen[bytes] | None = None
    _files: list[object] = field(default_factory=list)

    @property
    def sendmail(self) -> Path:
        return self.root / "usr/libexec/sendmail/sendmail"

    @property
    def cf(self) -> Path:
        return self.dir / "sendmail.cf"

    @property
    def maillog(self) -> Path:
        return self.capture.log_file

    def _binds(self) -> list[tuple[Path, Path]]:
        binds = [(self.dir / "etc-hosts", Path("/etc/hosts"))]
        if Path("/etc/nsswitch.conf").exists():
            binds.append((self.dir / "etc-nsswitch.conf", Path("/etc/nsswitch.conf")))
        if Path("/etc/resolv.conf").exists():
            binds.append((self.dir / "etc-resolv.conf", Path("/etc/resolv.conf")))
        if self.auth:
            binds.append((self.dir / "sasl", SASL_CONF_DIR))
        return binds

    def ns_argv(self, *args: str) -> list[str]:
        return self.capture.namespace_argv(
            [str(self.sendmail), "-L", "sm-mta", "-C", str(self.cf), *args],
            self._binds(),
            hostname="mx.lab.test",
        )

    def configure(self) -> None:
        d = self.dir
        for sub in ("mbox", "sasl"):
            (d / sub).mkdir()
        (d / "mqueue").mkdir(mode=0o700)
        deliver = d / "deliver.sh"
        deliver.write_text(
            f'#!/bin/sh\n# deliver [-f sender] user\nfor u; do :; done\ncat > "{d}/mbox/$u.$$"\n'
        )
        os.chmod(deliver, 0o755)  # noqa: S103
        (d / "etc-hosts").write_text(
            "127.0.0.1\tlocalhost\n127.0.0.1\tmx.lab.test mx\n"
            "127.0.0.2\trelay-tester.example.net\n::1\tlocalhost\n"
        )
        (d / "etc-nsswitch.conf").write_text("hosts: files\n")
        (d / "etc-resolv.conf").write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
        (d / "service.switch").write_text("hosts\tfiles\naliases\tfiles\n")
        (d / "aliases").write_text("postmaster: root\nMAILER-DAEMON: postmaster\n")
        (d / "sasl" / "Sendmail.conf").write_text(
            f"pwcheck_method: auxprop\nauxprop_plugin: sasldb\nsasldb_path: {d}/sasldb2\n"
            "mech_list: PLAIN LOGIN\n"
        )
        self.auth = SASL_CONF_DIR.is_dir() and _sasl_plugins()
        if self.auth:
            for user, password in USERS.items():
                local, _, realm = user.partition("@")
                saslpasswd2 = str(self.root / "usr/sbin/saslpasswd2")
                subprocess.run(
                    [saslpasswd2, "-f", str(d / "sasldb2"), "-c", "-p", "-u", realm, local],
                    input=password.encode(),
                    check=True,
                    capture_output=True,
                    timeout=30,
                )
        mc = f"""divert(-1)
divert(0)dnl
OSTYPE(`linux')dnl
define(`confDONT_BLAME_SENDMAIL', `TrustStickyBit')dnl
define(`LOCAL_MAILER_PATH', `{deliver}')dnl
define(`LOCAL_MAILER_ARGS', `deliver $u')dnl
define(`_DEF_LOCAL_MAILER_FLAGS', `lsDFMA5:/|@q')dnl
define(`confDOMAIN_NAME', `mx.lab.test')dnl
define(`confSERVICE_SWITCH_FILE', `{d}/service.switch')dnl
define(`confDONT_PROBE_INTERFACES', `True')dnl
define(`confBIND_OPTS', `-DNSRCH -DEFNAMES')dnl
define(`ALIAS_FILE', `{d}/aliases')dnl
define(`QUEUE_DIR', `{d}/mqueue')dnl
define(`STATUS_FILE', `{d}/statistics')dnl
define(`confPID_FILE', `{d}/sendmail.pid')dnl
define(`confHOST_STATUS_DIRECTORY', `')dnl
define(`confDEAD_LETTER_DROP', `{d}/dead.letter')dnl
define(`confTO_QUEUERETURN', `5d')dnl
define(`confAUTH_MECHANISMS', `PLAIN LOGIN')dnl
TRUST_AUTH_MECH(`PLAIN LOGIN')dnl
define(`SMART_HOST', `relay:[127.0.0.1]')dnl
define(`RELAY_MAILER_ARGS', `TCP $h {self.mx_port}')dnl
DAEMON_OPTIONS(`Port={self.port}, Addr=127.0.0.1, Name=MTA')dnl
FEATURE(`no_default_msa')dnl
FEATURE(`nocanonify')dnl
FEATURE(`accept_unresolvable_domains')dnl
LOCAL_DOMAIN(`lab.test')dnl
MAILER(`local')dnl
MAILER(`smtp')dnl
"""
        (d / "sendmail.mc").write_text(mc)
        cfdir = self.root / "usr/share/sendmail/cf"
        with open(self.cf, "wb") as out:
            m4 = str(self.root / "usr/bin/m4")
            subprocess.run(
                [m4, f"-D_CF_DIR_={cfdir}/", str(cfdir / "m4/cf.m4"), str(d / "sendmail.mc")],
                stdout=out,
                check=True,
                timeout=60,
            )
        os.chmod(self.cf, 0o644)

    def start(self) -> None:
        # newaliases in the namespace too (it logs), then the daemon in the foreground
        subprocess.run(self.ns_argv("-bi"), check=True, capture_output=True, timeout=60)
        err = open(self.dir / "sendmail.stderr", "wb")  # noqa: SIM115 - closed in stop()
        self._files.append(err)
        self.proc = subprocess.Popen(
            self.ns_argv("-bD"),
            stdin=subprocess.DEVNULL,
            stdout=err,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        unpacked.wait_ready(
            f"sendmail on port {self.port}",
            lambda: unpacked.listening(self.port),
            [self.proc],
            30,
            details=lambda: f"see {self.dir}",
        )

    def stop(self) -> None:
        """SIGTERM the daemon (the PID we started), wait; then wait (read-only, /proc) until its
        process group -- its forked SMTP/delivery children -- is gone."""
        proc, self.proc = self.proc, None
        if proc is not None:
            unpacked.terminate(proc)
            deadline = time.monotonic() + 10
            while _group_members(proc.pid) and time.monotonic() < deadline:
                time.sleep(0.02)
        for f in self._files:
            f.close()  # type: ignore[attr-defined]
        self._files.clear()

    def swaks(self, *args: str, local: str = "127.0.0.1") -> subprocess.CompletedProcess[str]:
        return unpacked.swaks(self.port, *args, local=local)


def _group_members(pgid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                fields = f.read().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            found.append(int(entry))
    return found


@pytest.fixture(scope="session")
def real_sendmail(request: pytest.FixtureRequest) -> Iterator[RealSendmail]:
    debs, _libs = unpacked.debs_or_skip(
        "sendmail-real",
        "real Sendmail",
        DEBS,
        root_for="the real Sendmail needs root: mount namespace, port, queue",
        checks=(namespace_supported,),
    )
    if shutil.which("swaks") is None:
        pytest.fail("swaks not installed (bash scripts/install-test-deps.sh)", pytrace=False)
    work = Path(tempfile.mkdtemp(prefix="mailwarden-sendmail."))
    root = unpacked.unpack(debs, work / "root")
    version = unpacked.deb_field(debs[0])
    capture = SyslogCapture(work / "ns", work / "maillog", hostname="mx").start()
    # Sendmail pipelines (DATA even when every RCPT failed); a 421 closes the connection
    mx = FakeMx(close_after_421=True, pipelining=True).start()
    port = unpacked.free_port()
    sm = RealSendmail(dir=work, root=root, port=port, mx_port=mx.port, capture=capture, version=version)
    ok = False
    try:
        sm.configure()
        sm.start()
        yield sm
        ok = request.session.testsfailed == 0
    finally:
        sm.stop()
        time.sleep(0.2)  # last datagrams
        capture.stop()
        mx.stop()
        (work / "fake-mx.log").write_text("\n".join(mx.transcript) + "\n")
        unpacked.keep_or_remove(work, ok, "sendmail-real", shown=f"{work} (maillog, sendmail.cf, mbox/)")


@dataclass
class Played:
    lines: list[str]
    events: list[Event]
    stats: ReadStats


@pytest.fixture(scope="session")
def played(real_sendmail: RealSendmail) -> Played:
    """Run the whole scenario once; wait for every expected log line."""
    sm = real_sendmail
    cap = sm.capture
    auth = ("--auth-user", "alice@lab.test", "--auth-password", USERS["alice@lab.test"])
    if sm.auth:
        r = sm.swaks("--auth", "PLAIN", *auth, "--from", "alice@lab.test", "--to", "friend@example.com")
        assert r.returncode == 0, r.stdout + r.stderr
        r = sm.swaks(
            "--auth", "LOGIN", "--auth-user", "bob@lab.test", "--auth-password", "WRONG",
            "--from", "bob@lab.test", "--to", "friend@example.com",
        )  # fmt: skip
        assert r.returncode == 28, r.stdout + r.stderr  # swaks: AUTH failed
    # unauthenticated: local user (accepted), relay (refused)
    r = sm.swaks("--from", "carol@example.net", "--to", "alice@lab.test")
    assert r.returncode == 0, r.stdout + r.stderr
    for client in ("127.0.0.2", "127.0.0.3"):  # with / without a host name in our /etc/hosts
        r = sm.swaks("--from", "spammer@example.net", "--to", "victim@example.org", local=client)
        assert r.returncode == 24, r.stdout + r.stderr  # swaks: no recipient accepted
        assert "550 5.7.1 <victim@example.org>... Relaying denied" in r.stdout, r.stdout
    # remote MX: 554 blocklist (bounce + DSN to alice), 421 rate limit (deferred)
    sender = auth if sm.auth else ()
    for rcpt in ("block-user@example.com", "rate-user@example.com"):
        args = ("--auth", "PLAIN", *sender) if sm.auth else ()
        r = sm.swaks(*args, "--from", "alice@lab.test", "--to", rcpt)
        assert r.returncode == 0, r.stdout + r.stderr

    if sm.auth:
        cap.wait_for(r"to=<?friend@example\.com>?,.*stat=Sent")
        cap.wait_for(r"AUTH failure")
    cap.wait_for(r"to=<?alice@lab\.test>?,.*mailer=local.*stat=Sent")
    cap.wait_for(r"Relaying denied", count=2)
    cap.wait_for(r"to=<?block-user@example\.com>?,.*dsn=5\.7\.1")
    cap.wait_for(r"to=<?rate-user@example\.com>?,.*stat=Deferred")
    cap.wait_for(r"DSN: ")
    # the DSN itself goes to alice through the local mailer
    cap.wait_for(r"mailer=local.*stat=Sent", count=2)
    time.sleep(0.3)
    unpacked.save_real_log(sm.maillog, SAVED)
    stats = ReadStats()
    events = list(events_from([str(sm.maillog)], stats))
    return Played(lines=cap.lines(), events=events, stats=stats)


def _of(played: Played, kind: type[Event]) -> list[Event]:
    return [e for e in played.events if isinstance(e, kind)]


def _show(played: Played) -> str:
    unparsed = (
        "\n".join(f"{r.program}[{r.pid}]: {r.message}" for r in played.stats.unparsed_samples) or "(none)"
    )
    return "real log:\n" + "\n".join(played.lines) + "\n\nunparsed:\n" + unparsed


@pytest.mark.integration
def test_real_sendmail_lines_all_parsed(played: Played, real_sendmail: RealSendmail) -> None:
    print(f"\n[sendmail-real] Sendmail {real_sendmail.version}, AUTH={'on' if real_sendmail.auth else 'off'}")
    print("\n".join(played.lines))
    assert played.stats.formats.get("sendmail", 0) > 0, _show(played)
    assert played.stats.unparsed == {}, _show(played)
    assert not played.stats.unclaimed, _show(played)


@pytest.mark.integration
def test_real_sendmail_auth(played: Played, real_sendmail: RealSendmail) -> None:
    if not real_sendmail.auth:
        unpacked.skip("sendmail-real", "no SASL: /usr/lib/sasl2 or libsasl2-modules(-db) plugins missing")
    ok = [e for e in _of(played, AuthSucceeded) if e.user == "alice@lab.test"]  # type: ignore[attr-defined]
    assert ok, _show(played)
    assert all(e.client == "127.0.0.1" for e in ok), ok  # type: ignore[attr-defined]
    bad = _of(played, AuthFailed)
    assert [(e.user, e.client) for e in bad] == [("bob@lab.test", "127.0.0.1")], _show(played)  # type: ignore[attr-defined]
    received = [e for e in _of(played, MessageReceived) if e.sasl_username]  # type: ignore[attr-defined]
    assert {e.sasl_username for e in received} == {"alice@lab.test"}, _show(played)  # type: ignore[attr-defined]
    assert len(received) == 3, received
    assert all(e.client == "127.0.0.1" for e in received), received  # type: ignore[attr-defined]


@pytest.mark.integration
def test_real_sendmail_unauthenticated(played: Played) -> None:
    plain = [e for e in _of(played, MessageReceived) if not e.sasl_username]  # type: ignore[attr-defined]
    assert [e.client for e in plain] == ["127.0.0.1"], _show(played)  # type: ignore[attr-defined]
    rejected = _of(played, Rejected)
    assert [(e.client, e.category) for e in rejected] == [
        ("127.0.0.2", "relay_denied"),
        ("127.0.0.3", "relay_denied"),
    ], _show(played)  # type: ignore[attr-defined]


@pytest.mark.integration
def test_real_sendmail_deliveries(played: Played) -> None:
    got = {(e.recipient, e.status) for e in _of(played, DeliveryAttempted)}  # type: ignore[attr-defined]
    want = {
        ("alice@lab.test", "sent"),
        ("block-user@example.com", "bounced"),
        ("rate-user@example.com", "deferred"),
    }
    if any(isinstance(e, AuthSucceeded) for e in played.events) or "AUTH=server" in "".join(played.lines):
        want.add(("friend@example.com", "sent"))
    assert want <= got, (got, _show(played))


def test_saved_sendmail_excerpt_parses() -> None:
    """The saved real excerpt (tests/data/real/sendmail.log) reads without unparsed lines."""
    if not SAVED.exists():
        pytest.skip(f"{SAVED} not saved yet")
    stats = ReadStats()
    events = list(events_from([str(SAVED)], stats))
    assert stats.unparsed == {}, [f"{r.program}[{r.pid}]: {r.message}" for r in stats.unparsed_samples]
    assert any(isinstance(e, DeliveryAttempted) for e in events)
