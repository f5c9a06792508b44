"""A real, throw-away mail stack on loopback for integration tests and log generation.

``MailStack`` starts, in a temp dir and on kernel-chosen free ports on 127.0.0.1:

* a fake *remote* MX (this file run as a script, stdlib asyncio) that answers ``RCPT TO`` by the
  recipient's local part: ``block*`` 554 (Spamhaus-style blocklist), ``rate*`` 421 (rate limit;
  the connection stays open unless ``rate_close=True``), ``nouser*`` 550, ``full*`` 452,
  anything else 250;
* Dovecot (``dovecot -F``): IMAP + POP3, passwd-file users, SASL socket for Postfix, own
  ``log_path``, ``login_trusted_networks = 127.0.0.0/8`` (so IMAP ``ID x-originating-ip`` and POP3
  ``XCLIENT`` can claim a client address), auth penalty off, ``auth_failure_delay = 0``;
* Postfix (``master -s`` in the foreground, own ``config_directory`` + ``queue_directory``,
  postlogd writing to a file): port "smtp" and "submission" listeners that authorise ``XCLIENT``
  from 127.0.0.1, plus two listeners speaking the HAProxy PROXY protocol ("smtp-proxy",
  "submission-proxy") so a claimed client address is logged from the very ``connect from`` line
  on, exactly like a real remote client; SASL through Dovecot; everything not ``@lab.test`` is
  relayed to the fake MX; ``@lab.test`` is delivered to maildirs by virtual(8).

Nothing here touches /etc/postfix, /etc/dovecot or the system instances, nothing listens on or
talks to anything but 127.0.0.1, and ``stop()`` signals only the PIDs this object started
(Postfix first: its smtpd processes hold Dovecot's auth socket).

Stdlib only; every subprocess call uses an argv list and a timeout. Must run as root (Postfix and
Dovecot drop privileges themselves). See docs/testing.md.
"""

from __future__ import annotations

import atexit
import contextlib
import email.utils
import imaplib
import ipaddress
import json
import os
import poplib
import pwd
import random
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

DOMAIN = "lab.test"
MYHOSTNAME = "mx.lab.test"

#: Default mailbox users (passwd-file, ``{PLAIN}`` scheme): address -> password.
DEFAULT_USERS: dict[str, str] = {
    "alice@lab.test": "alice-secret",
    "bob@lab.test": "bob-secret",
    "carol@lab.test": "carol-secret",
    "dave@lab.test": "dave-secret",
    "erin@lab.test": "erin-secret",
    "mallory@lab.test": "mallory-secret",
    "news@lab.test": "news-secret",
}

POSTFIX_MASTER = "/usr/lib/postfix/sbin/master"
SENDMAIL = "/usr/sbin/sendmail"

#: Replies of the fake remote MX (``{ip}`` = the connecting Postfix address, 127.0.0.1).
REPLY_BLOCK = (
    "554 5.7.1 Service unavailable; Client host [{ip}] blocked using zen.spamhaus.org; "
    "https://www.spamhaus.org/query/ip/{ip}"
)
REPLY_RATE = (
    "421 4.7.0 [{ip}] Our system has detected an unusual rate of unsolicited mail originating "
    "from your IP address. To protect our users from spam, mail sent from your IP address has "
    "been temporarily rate limited."
)
REPLY_NOUSER = "550 5.1.1 The email account that you tried to reach does not exist."
REPLY_FULL = "452 4.2.2 The email account that you tried to reach is over quota."

# Queue names that mean "Postfix is still working on it" (deferred/hold are at rest).
_BUSY_QUEUES = {"active", "incoming", "maildrop"}

_LIVE_STACKS: set[MailStack] = set()


class MailStackError(RuntimeError):
    """The stack could not be started or a helper could not do its job."""


# --------------------------------------------------------------------------------------------
# environment checks


def _exe(name: str) -> str:
    """Absolute path of a program (sbin dirs included even if PATH lacks them)."""
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin:/usr/bin:/bin"
    found = shutil.which(name, path=path)
    if found is None:
        raise MailStackError(f"{name} not found")
    return found


def missing_requirements() -> list[str]:
    """What this machine lacks to run a MailStack (empty list = ready)."""
    missing = []
    if os.geteuid() != 0:
        missing.append("root privileges (Postfix/Dovecot must be started as root)")
    for exe in ("postfix", "dovecot", "postqueue", "postsuper", "runuser"):
        try:
            _exe(exe)
        except MailStackError:
            missing.append(exe)
    for path in (POSTFIX_MASTER, SENDMAIL, "/usr/lib/postfix/sbin/postlogd"):
        if not os.access(path, os.X_OK):
            missing.append(path)
    for user in ("postfix", "dovecot", "dovenull", "www-data", "nobody"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            missing.append(f"user {user}")
    try:
        _group_gid("postdrop")
    except KeyError:
        missing.append("group postdrop")
    for imap_pop in ("/usr/lib/dovecot/imap-login", "/usr/lib/dovecot/pop3-login"):
        if not os.access(imap_pop, os.X_OK):
            missing.append(imap_pop + " (dovecot-imapd/dovecot-pop3d)")
    return missing


def in_ci() -> bool:
    """True when the ``CI`` environment variable is set (and not "0"/"false"/"no")."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_mailstack() -> None:
    """For pytest: skip the calling test when this machine cannot run a MailStack -- or fail
    it when ``CI`` is set, so CI cannot silently skip the real-stack tests."""
    import pytest

    missing = missing_requirements()
    if not missing:
        return
    reason = (
        "real mail stack unavailable, missing: "
        + ", ".join(missing)
        + " (install with: bash scripts/install-test-deps.sh, as root)"
    )
    if in_ci():
        pytest.fail("CI is set, refusing to skip: " + reason, pytrace=False)
    pytest.skip(reason)


def free_ports(n: int) -> list[int]:
    """``n`` distinct free TCP ports on 127.0.0.1, chosen by the kernel."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _listening(port: int) -> bool:
    """True when 127.0.0.1:port is in LISTEN state (read from /proc, no probe connection,
    so the daemons do not log ``lost connection after CONNECT``)."""
    want = f"0100007F:{port:04X}"
    with open("/proc/net/tcp", encoding="ascii") as f:
        next(f)
        for line in f:
            parts = line.split()
            if parts[1] == want and parts[3] == "0A":
                return True
    return False


def _run(
    argv: Sequence[str],
    *,
    timeout: float = 30,
    check: bool = True,
    input_bytes: bytes | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run(
        list(argv),
        input=input_bytes,
        capture_output=True,
        timeout=timeout,
        check=False,
        env=env,
    )
    if check and proc.returncode != 0:
        raise MailStackError(
            f"{argv[0]} exited {proc.returncode}: {proc.stderr.decode(errors='replace').strip()}"
        )
    return proc


def _age(paths: Iterable[Path], seconds: float = 5.0) -> None:
    """Back-date files: Postfix programs sleep ("pausing to let main.cf cool down") while
    main.cf/master.cf are younger than ~1 s."""
    t = time.time() - seconds
    for p in paths:
        os.utime(p, (t, t))


def _xclient_addr(ip: str) -> str:
    addr = ipaddress.ip_address(ip)
    return f"IPV6:{addr.compressed}" if addr.version == 6 else str(addr)


# --------------------------------------------------------------------------------------------
# SMTP client side


class _ProxySMTP(smtplib.SMTP):
    """smtplib.SMTP that sends a HAProxy PROXY v1 header right after connecting, before the
    server greeting (Postfix ``smtpd_upstream_proxy_protocol = haproxy``)."""

    def __init__(self, proxy_line: bytes, *args: Any, **kwargs: Any) -> None:
        self._proxy_line = proxy_line
        super().__init__(*args, **kwargs)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock: socket.socket = super()._get_socket(host, port, timeout)  # type: ignore[misc]
        sock.sendall(self._proxy_line)
        return sock


@dataclass
class SmtpResult:
    """Outcome of one message transaction."""

    queue_id: str | None
    code: int
    reply: str
    refused: dict[str, tuple[int, str]] = field(default_factory=dict)


class SmtpSession:
    """One SMTP connection to the stack, optionally with a claimed client address.

    ``via="xclient"``: connect to the plain listener from 127.0.0.1, ``EHLO``, ``XCLIENT ADDR=``
    (fresh 220 greeting), ``EHLO`` again. Postfix logs ``connect from unknown[127.0.0.1]`` and
    then everything else (client=, SASL warnings, disconnect) with the claimed address.
    ``via="proxy"``: connect to the PROXY-protocol listener and announce the claimed address in
    the PROXY header: every line, ``connect from`` included, shows the claimed address.
    """

    def __init__(
        self,
        stack: MailStack,
        *,
        claim_ip: str | None = None,
        claim_name: str | None = None,
        port: str = "submission",
        helo: str = "client.example",
        via: str | None = None,
        timeout: float = 30,
    ) -> None:
        if port not in ("smtp", "submission"):
            raise ValueError("port must be 'smtp' or 'submission'")
        via = via or stack.claim_via
        if via not in ("xclient", "proxy"):
            raise ValueError("via must be 'xclient' or 'proxy'")
        self.stack, self.claim_ip, self.helo = stack, claim_ip, helo
        self.authenticated = False
        self._quit_sent = False
        if claim_ip is not None and via == "proxy":
            addr = ipaddress.ip_address(claim_ip)
            fam, dst = ("TCP6", "::1") if addr.version == 6 else ("TCP4", "127.0.0.1")
            sport = stack.rng.randint(32768, 60999)
            dport = 587 if port == "submission" else 25
            line = f"PROXY {fam} {addr.compressed} {dst} {sport} {dport}\r\n".encode()
            listen = stack.ports[f"{port}_proxy"]
            self.smtp: smtplib.SMTP = _ProxySMTP(
                line, "127.0.0.1", listen, local_hostname=helo, timeout=timeout
            )
        else:
            # local_hostname given explicitly: smtplib would otherwise call getfqdn() (DNS).
            self.smtp = smtplib.SMTP("127.0.0.1", stack.ports[port], local_hostname=helo, timeout=timeout)
        try:
            self._ehlo()
            if claim_ip is not None and via == "xclient":
                self._xclient(claim_ip, claim_name)
        except BaseException:
            self.close()
            raise

    def _xclient(self, claim_ip: str, claim_name: str | None) -> None:
        name = claim_name or "[UNAVAILABLE]"
        code, msg = self.smtp.docmd("XCLIENT", f"ADDR={_xclient_addr(claim_ip)} NAME={name}")
        if code != 220:
            raise MailStackError(f"XCLIENT refused: {code} {msg.decode(errors='replace')}")
        # a fresh session begins: forget the old EHLO state and greet again
        self.smtp.helo_resp = self.smtp.ehlo_resp = None
        self.smtp.esmtp_features = {}
        self.smtp.does_esmtp = False
        self._ehlo()

    def _ehlo(self) -> None:
        code, msg = self.smtp.ehlo(self.helo)
        if code != 250:
            raise MailStackError(f"EHLO refused: {code} {msg.decode(errors='replace')}")

    def auth(self, user: str, password: str, mechanism: str = "PLAIN") -> bool:
        """One AUTH attempt (exactly one: smtplib.login() would retry with other mechanisms)."""
        mech = mechanism.upper()
        self.smtp.user, self.smtp.password = user, password
        handler = {"PLAIN": self.smtp.auth_plain, "LOGIN": self.smtp.auth_login}[mech]
        try:
            self.smtp.auth(mech, handler)
        except smtplib.SMTPAuthenticationError:
            return False
        self.authenticated = True
        return True

    def send(self, sender: str, recipients: Sequence[str], message: bytes | str) -> SmtpResult:
        """MAIL/RCPT/DATA; returns the Postfix queue id (None if nothing was accepted)."""
        if isinstance(message, str):
            message = message.encode()
        code, msg = self.smtp.mail(sender)
        if code != 250:
            self.smtp.rset()
            return SmtpResult(None, code, msg.decode(errors="replace"))
        refused: dict[str, tuple[int, str]] = {}
        for rcpt in recipients:
            rc, rm = self.smtp.rcpt(rcpt)
            if rc not in (250, 251):
                refused[rcpt] = (rc, rm.decode(errors="replace"))
        if len(refused) == len(recipients):
            self.smtp.rset()
            first = next(iter(refused.values())) if refused else (0, "")
            return SmtpResult(None, first[0], first[1], refused)
        code, msg = self.smtp.data(message)
        text = msg.decode(errors="replace")
        m = re.search(r"queued as ([0-9A-Za-z]+)", text)
        return SmtpResult(m.group(1) if m else None, code, text, refused)

    def quit(self) -> None:
        if not self._quit_sent:
            self._quit_sent = True
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self.smtp.quit()
        self.close()

    def close(self) -> None:
        self.smtp.close()

    def __enter__(self) -> SmtpSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.quit()


def make_message(
    sender: str,
    recipients: Sequence[str],
    subject: str,
    body: str,
    *,
    headers: dict[str, str] | None = None,
    msgid_domain: str | None = None,
    rng: random.Random | None = None,
) -> bytes:
    """A small RFC 5322 message (headers the way a typical client writes them)."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Subject"] = subject
    msg["Date"] = email.utils.formatdate(localtime=False)
    r = rng or random.Random()
    domain = msgid_domain or (sender.rsplit("@", 1)[-1] if "@" in sender else DOMAIN)
    msg["Message-ID"] = f"<{r.getrandbits(64):016x}.{r.getrandbits(32):08x}@{domain}>"
    for k, v in (headers or {}).items():
        msg[k] = v
    msg.set_content(body)
    return msg.as_bytes()


# --------------------------------------------------------------------------------------------
# the stack


class MailStack:
    """Postfix + Dovecot + fake remote MX in a temp dir on loopback.

    Attributes after ``start()``: ``dir`` (temp dir), ``ports`` (dict: smtp, submission,
    smtp_proxy, submission_proxy, imap, pop3, remote), ``smtp_port``, ``submission_port``,
    ``imap_port``, ``pop3_port``, ``remote_port``, ``postfix_config`` (= MAIL_CONFIG),
    ``postfix_log``, ``dovecot_conf``, ``dovecot_log``, ``remote_log``, ``vmail_dir``,
    ``pids`` (name -> pid), ``timings`` (name -> seconds).
    """

    def __init__(
        self,
        base_dir: str | os.PathLike[str] | None = None,
        *,
        users: dict[str, str] | None = None,
        claim_via: str = "xclient",
        auth_penalty: bool = False,
        postfix_extra: dict[str, str] | None = None,
        dovecot_extra: str = "",
        rate_close: bool = False,
        seed: int | None = 0,
        keep: bool = False,
    ) -> None:
        self._base_dir = Path(base_dir) if base_dir is not None else None
        self.users = dict(DEFAULT_USERS if users is None else users)
        self.claim_via = claim_via
        self.auth_penalty = auth_penalty
        self.postfix_extra = dict(postfix_extra or {})
        self.dovecot_extra = dovecot_extra
        self.rate_close = rate_close
        self.keep = keep
        self.rng = random.Random(seed)
        self.ports: dict[str, int] = {}
        self.pids: dict[str, int] = {}
        self.timings: dict[str, float] = {}
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._files: list[Any] = []
        self.running = False
        self.dir = Path()

    # ---- paths ------------------------------------------------------------------------------
    @property
    def postfix_config(self) -> Path:
        return self.dir / "postfix" / "etc"

    @property
    def queue_dir(self) -> Path:
        return self.dir / "postfix" / "spool"

    @property
    def log_dir(self) -> Path:
        return self.dir / "log"

    @property
    def postfix_log(self) -> Path:
        return self.log_dir / "postfix.log"

    @property
    def dovecot_conf(self) -> Path:
        return self.dir / "dovecot" / "dovecot.conf"

    @property
    def dovecot_log(self) -> Path:
        return self.log_dir / "dovecot.log"

    @property
    def remote_log(self) -> Path:
        return self.log_dir / "remote.log"

    @property
    def vmail_dir(self) -> Path:
        return self.dir / "vmail"

    @property
    def auth_socket(self) -> Path:
        return self.dir / "dovecot" / "run" / "auth-postfix"

    @property
    def smtp_port(self) -> int:
        return self.ports["smtp"]

    @property
    def submission_port(self) -> int:
        return self.ports["submission"]

    @property
    def imap_port(self) -> int:
        return self.ports["imap"]

    @property
    def pop3_port(self) -> int:
        return self.ports["pop3"]

    @property
    def remote_port(self) -> int:
        return self.ports["remote"]

    def env(self) -> dict[str, str]:
        """Environment for Postfix commands against this instance."""
        return {**os.environ, "MAIL_CONFIG": str(self.postfix_config)}

    # ---- lifecycle ----------------------------------------------------------------------------
    def __enter__(self) -> MailStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> MailStack:
        """Start everything (~0.1 s). If a daemon lost the race for one of the free ports it
        was given (another process bound it in between), start again on new ports."""
        if self.running:
            raise MailStackError("already started")
        missing = missing_requirements()
        if missing:
            raise MailStackError("cannot start a mail stack, missing: " + ", ".join(missing))
        t_all = time.monotonic()
        for attempt in range(3):
            try:
                self._start_once()
                break
            except MailStackError:
                keep = self.keep
                self.keep = True  # stop() must leave the logs for now
                try:
                    self.stop()
                finally:
                    self.keep = keep
                self._procs.clear()
                self.pids.clear()
                retry = attempt < 2 and self._port_taken()
                if not retry:
                    print(f"[mailstack] start failed; logs in {self.log_dir}", file=sys.stderr)
                    raise
                shutil.rmtree(self.dir, ignore_errors=True)  # our own files; start afresh
        self.timings["start"] = time.monotonic() - t_all
        return self

    def _port_taken(self) -> bool:
        """After a failed start (our daemons stopped): is one of our ports held by someone
        else? (bind() only -- no packet is sent)."""
        for port in self.ports.values():
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    return True
        return False

    def _start_once(self) -> None:
        if self._base_dir is None:
            # /tmp: every parent must be traversable by the daemons' users (not so e.g. a
            # TMPDIR under /root); MAILWARDEN_STACK_TMPDIR overrides
            tmp = os.environ.get("MAILWARDEN_STACK_TMPDIR", "/tmp")
            self.dir = Path(tempfile.mkdtemp(prefix="mailwarden-stack.", dir=tmp))
        else:
            self.dir = self._base_dir
            if self.dir.exists() and any(self.dir.iterdir()):
                raise MailStackError(f"base_dir {self.dir} is not empty")
            self.dir.mkdir(parents=True, exist_ok=True)
        # postfix/dovenull/nobody must traverse the tree (mkdtemp gives 0700)
        os.chmod(self.dir, 0o755)  # noqa: S103 - daemons' users must traverse it
        names = ["smtp", "submission", "smtp_proxy", "submission_proxy", "imap", "pop3", "remote"]
        self.ports = dict(zip(names, free_ports(len(names)), strict=True))
        self.timings.clear()
        self.running = True
        _LIVE_STACKS.add(self)
        self._start_remote()
        self._write_dovecot()
        self._start_dovecot()
        self._write_postfix()
        self._wait_remote()
        self._wait_dovecot()
        self._start_postfix()

    def _spawn(self, name: str, argv: Sequence[str]) -> subprocess.Popen[bytes]:
        out = open(self.log_dir / f"{name}.stderr", "ab")  # noqa: SIM115 - closed in stop()
        self._files.append(out)
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        self._procs[name] = proc
        self.pids[name] = proc.pid
        return proc

    def _wait(
        self, what: str, ready: Any, proc: subprocess.Popen[bytes] | None, timeout: float = 10.0
    ) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if proc is not None and proc.poll() is not None:
                raise MailStackError(f"{what} exited with {proc.returncode}; see {self.log_dir}")
            if time.monotonic() > deadline:
                raise MailStackError(f"timeout waiting for {what}; see {self.log_dir}")
            time.sleep(0.005)

    # fake remote MX
    def _start_remote(self) -> None:
        (self.log_dir).mkdir(parents=True, exist_ok=True)
        self._t_remote = time.monotonic()
        self._spawn(
            "remote",
            [
                sys.executable,
                "-I",
                "-S",
                str(Path(__file__).resolve()),
                "fake-mx",
                str(self.remote_port),
                str(self.remote_log),
                "close" if self.rate_close else "keep",
            ],
        )

    def _wait_remote(self) -> None:
        self._wait("fake remote MX", lambda: _listening(self.remote_port), self._procs["remote"])
        self.timings["remote"] = time.monotonic() - self._t_remote

    # Dovecot
    def _write_dovecot(self) -> None:
        d = self.dir / "dovecot"
        d.mkdir(exist_ok=True)
        self.vmail_dir.mkdir(exist_ok=True)
        nobody = pwd.getpwnam("nobody")
        os.chown(self.vmail_dir, nobody.pw_uid, nobody.pw_gid)
        users = d / "users"
        users.write_text("".join(f"{u}:{{PLAIN}}{p}\n" for u, p in self.users.items()))
        dovecot_gid = pwd.getpwnam("dovecot").pw_gid
        os.chown(users, 0, dovecot_gid)
        os.chmod(users, 0o640)
        penalty = (
            ""
            if self.auth_penalty
            else (
                "# Dovecot delays auth replies for an IP with earlier failures by 2/4/8/15 s\n"
                "# (anvil auth penalty); Postfix SASL requests never carry no-penalty. Off:\n"
                "service anvil {\n  unix_listener anvil-auth-penalty {\n    mode = 0\n  }\n}\n"
            )
        )
        self.dovecot_conf.write_text(f"""\
# standalone config: nothing from /etc/dovecot is read
base_dir = {d}/run
state_dir = {d}/state
instance_name = dovecot-{self.dir.name}
log_path = {self.dovecot_log}
protocols = imap pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_verbose = yes
auth_failure_delay = 0
login_trusted_networks = 127.0.0.0/8
mail_location = maildir:{self.vmail_dir}/%d/%n
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {users}
}}
userdb {{
  driver = static
  args = uid={nobody.pw_uid} gid={nobody.pw_gid} home={self.vmail_dir}/%d/%n
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {self.pop3_port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service auth {{
  unix_listener auth-postfix {{
    mode = 0660
    user = postfix
    group = postfix
  }}
}}
{penalty}{self.dovecot_extra}
""")

    def _start_dovecot(self) -> None:
        self._t_dovecot = time.monotonic()
        self._spawn("dovecot", [_exe("dovecot"), "-F", "-c", str(self.dovecot_conf)])

    def _wait_dovecot(self) -> None:
        proc = self._procs["dovecot"]
        self._wait("dovecot imap listener", lambda: _listening(self.imap_port), proc)
        self._wait("dovecot pop3 listener", lambda: _listening(self.pop3_port), proc)
        self._wait("dovecot auth socket", self.auth_socket.exists, proc)
        self.timings["dovecot"] = time.monotonic() - self._t_dovecot

    # Postfix
    def _write_postfix(self) -> None:
        pf = self.postfix_config
        pf.mkdir(parents=True, exist_ok=True)
        data = self.dir / "postfix" / "data"
        data.mkdir(exist_ok=True)
        postfix_pw = pwd.getpwnam("postfix")
        os.chown(data, postfix_pw.pw_uid, postfix_pw.pw_gid)
        remote = f"smtp:[127.0.0.1]:{self.remote_port}"
        main = {
            "compatibility_level": "3.6",
            "queue_directory": str(self.queue_dir),
            "data_directory": str(data),
            "myhostname": MYHOSTNAME,
            "mydomain": DOMAIN,
            "myorigin": "$mydomain",
            "mydestination": "",
            "inet_interfaces": "127.0.0.1",
            # "all" is needed for XCLIENT ADDR=IPV6:... ("501 5.5.4 Bad ADDR syntax" otherwise)
            "inet_protocols": "all",
            "mynetworks": "127.0.0.0/8 [::1]/128",
            "alias_maps": "",
            "alias_database": "",
            "biff": "no",
            "smtputf8_enable": "no",
            "maillog_file": str(self.postfix_log),
            "maillog_file_prefixes": str(self.dir),
            # never touch DNS
            "smtpd_peername_lookup": "no",
            "smtp_dns_support_level": "disabled",
            "virtual_mailbox_domains": DOMAIN,
            "virtual_mailbox_base": str(self.vmail_dir),
            "virtual_mailbox_maps": f"texthash:{pf}/vmailbox",
            "virtual_uid_maps": f"static:{pwd.getpwnam('nobody').pw_uid}",
            "virtual_gid_maps": f"static:{pwd.getpwnam('nobody').pw_gid}",
            "default_transport": remote,
            "relay_transport": remote,
            "smtpd_sasl_auth_enable": "yes",
            "smtpd_sasl_type": "dovecot",
            "smtpd_sasl_path": str(self.auth_socket),
            "smtpd_sasl_security_options": "noanonymous",
            "smtpd_sasl_authenticated_header": "yes",
            "smtpd_tls_security_level": "none",
            "smtpd_relay_restrictions": (
                "permit_mynetworks permit_sasl_authenticated reject_unauth_destination"
            ),
            "smtpd_authorized_xclient_hosts": "127.0.0.1",
            "header_checks": f"regexp:{pf}/header_checks",
        }
        main.update(self.postfix_extra)
        (pf / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in main.items()))
        # every map named in main.cf must exist before mail arrives (else cleanup answers
        # "451 4.3.0 queue file write error")
        (pf / "header_checks").write_text("/^X-PHP-Originating-Script:/ INFO\n")
        boxes = sorted({*self.users, f"postmaster@{DOMAIN}"})
        lines = [f"{u} {DOMAIN}/{u.split('@')[0]}/\n" for u in boxes if u.endswith("@" + DOMAIN)]
        lines.append(f"MAILER-DAEMON@{DOMAIN} {DOMAIN}/postmaster/\n")
        # local senders' bounces (sendmail as www-data -> www-data@lab.test) have a home too
        lines.append(f"www-data@{DOMAIN} {DOMAIN}/www-data/\n")
        (pf / "vmailbox").write_text("".join(lines))
        p = self.ports
        sub_opts = (
            "  -o syslog_name=postfix/submission\n"
            "  -o smtpd_client_restrictions=permit_sasl_authenticated,reject\n"
        )
        proxy_opt = "  -o smtpd_upstream_proxy_protocol=haproxy\n"
        (pf / "master.cf").write_text(
            "# service type  private unpriv  chroot  wakeup  maxproc command + args\n"
            f"127.0.0.1:{p['smtp']} inet n - n - - smtpd\n"
            f"127.0.0.1:{p['submission']} inet n - n - - smtpd\n{sub_opts}"
            f"127.0.0.1:{p['smtp_proxy']} inet n - n - - smtpd\n{proxy_opt}"
            f"127.0.0.1:{p['submission_proxy']} inet n - n - - smtpd\n{sub_opts}{proxy_opt}"
            """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""
        )
        _age(pf.iterdir())
        # queue tree (owners/modes as in /etc/postfix/postfix-files); master does not create it
        q = self.queue_dir
        postdrop_gid = _group_gid("postdrop")
        q.mkdir(parents=True, exist_ok=True)
        os.chmod(q, 0o755)  # noqa: S103 - as /var/spool/postfix
        (q / "pid").mkdir(mode=0o755, exist_ok=True)
        for sub in (
            "active",
            "bounce",
            "corrupt",
            "defer",
            "deferred",
            "flush",
            "hold",
            "incoming",
            "private",
            "saved",
            "trace",
        ):
            path = q / sub
            path.mkdir(exist_ok=True)
            os.chown(path, postfix_pw.pw_uid, 0)
            os.chmod(path, 0o700)
        for sub, mode in (("maildrop", 0o730), ("public", 0o710)):
            path = q / sub
            path.mkdir(exist_ok=True)
            os.chown(path, postfix_pw.pw_uid, postdrop_gid)
            os.chmod(path, mode)

    def _start_postfix(self) -> None:
        t0 = time.monotonic()
        # master in the foreground (-s: like "postfix start-fg"; it still calls setsid(), so its
        # SIGTERM handler's kill(-pid) reaches exactly its own children). We own the PID and
        # wait() for it: no zombies, no re-parenting to PID 1.
        proc = self._spawn("postfix", [POSTFIX_MASTER, "-c", str(self.postfix_config), "-s"])
        for port in ("smtp", "submission", "smtp_proxy", "submission_proxy"):
            self._wait(f"postfix {port} listener", lambda p=port: _listening(self.ports[p]), proc)
        self.timings["postfix"] = time.monotonic() - t0

    def _terminate(self, name: str, timeout: float = 15.0) -> None:
        """SIGTERM the PID we started (and only that), wait for it; SIGKILL it after
        ``timeout``. For Postfix also wait (read-only) until the master's children, which it
        signals itself, are gone."""
        proc = self._procs.pop(name, None)
        if proc is None:
            return
        t0 = time.monotonic()
        if proc.poll() is None:
            # only ever the PID we started ourselves
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if name == "postfix":
            # master called setsid(): its children share process group == its PID
            _wait_group_gone(proc.pid, timeout=10)
        self.timings[f"stop_{name}"] = time.monotonic() - t0

    def stop(self) -> None:
        """Stop Postfix, then Dovecot and the fake MX (by their own PIDs). Idempotent."""
        if not self.running:
            return
        t0 = time.monotonic()
        try:
            self._terminate("postfix")
            # Dovecot's master takes ~1 s to stop; stop the fake MX meanwhile
            for name in ("dovecot", "remote"):
                proc = self._procs.get(name)
                if proc is not None and proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for name in ("dovecot", "remote"):
                self._terminate(name)
        finally:
            for f in self._files:
                f.close()
            self._files.clear()
            self.running = False
            _LIVE_STACKS.discard(self)
            self.timings["stop"] = time.monotonic() - t0
            if not self.keep and self._base_dir is None and self.dir != Path():
                # keep the logs of a test that wants them: callers copy before stop() or pass
                # keep=True
                shutil.rmtree(self.dir, ignore_errors=True)

    # ---- Postfix queue -------------------------------------------------------------------------
    def postqueue_json(self) -> list[dict[str, Any]]:
        """``postqueue -j``: one dict per queued message."""
        out = _run([_exe("postqueue"), "-c", str(self.postfix_config), "-j"], timeout=30).stdout
        return [json.loads(line) for line in out.decode().splitlines() if line.strip()]

    def flush_queue(self) -> None:
        """``postqueue -f``: retry deferred mail now."""
        _run([_exe("postqueue"), "-c", str(self.postfix_config), "-f"], timeout=30)

    def flush_and_settle(self, timeout: float = 30.0) -> list[dict[str, Any]]:
        """``postqueue -f``, then wait until every recipient that was deferred has been tried
        again (one new ``status=`` line each in the Postfix log) and the queue has settled.
        Returns the final ``postqueue -j`` listing."""
        self.wait_queue_settled(timeout=timeout)
        deferred = {
            m["queue_id"]: len(m.get("recipients", ()))
            for m in self.postqueue_json()
            if m.get("queue_name") == "deferred"
        }
        rx = re.compile(r": (\w+): to=<[^>]*>,.* status=\w+")

        def attempts() -> int:
            text = self.postfix_log.read_text(errors="replace") if self.postfix_log.exists() else ""
            return sum(1 for m in rx.finditer(text) if m.group(1) in deferred)

        want = attempts() + sum(deferred.values())
        self.flush_queue()
        deadline = time.monotonic() + timeout
        while deferred and attempts() < want:
            if time.monotonic() > deadline:
                raise MailStackError(f"flush: deferred mail not retried after {timeout}s")
            time.sleep(0.05)
        return self.wait_queue_settled(timeout=timeout)

    def wait_queue_settled(self, timeout: float = 30.0, interval: float = 0.1) -> list[dict[str, Any]]:
        """Wait until no message is in maildrop/incoming/active (deferred/hold may remain),
        seen twice in a row; return the final ``postqueue -j`` listing."""
        deadline = time.monotonic() + timeout
        quiet = 0
        while True:
            q = self.postqueue_json()
            busy = [m for m in q if m.get("queue_name") in _BUSY_QUEUES]
            quiet = 0 if busy else quiet + 1
            if quiet >= 2:
                return q
            if time.monotonic() > deadline:
                raise MailStackError(f"queue not settled after {timeout}s: {len(busy)} busy")
            time.sleep(interval)

    def wait_log(self, which: str, pattern: str, timeout: float = 10.0, count: int = 1) -> list[str]:
        """Wait until ``pattern`` (regex) matches ``count`` lines of the "postfix", "dovecot"
        or "remote" log; returns the matching lines."""
        path = {
            "postfix": self.postfix_log,
            "dovecot": self.dovecot_log,
            "remote": self.remote_log,
        }[which]
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            lines = path.read_text(errors="replace").splitlines() if path.exists() else []
            hits = [ln for ln in lines if rx.search(ln)]
            if len(hits) >= count:
                return hits
            if time.monotonic() > deadline:
                raise MailStackError(
                    f"{which} log: {len(hits)}/{count} lines match {pattern!r} after {timeout}s"
                )
            time.sleep(0.05)

    # ---- SMTP helpers ----------------------------------------------------------------------------
    def smtp_session(
        self,
        *,
        claim_ip: str | None = None,
        claim_name: str | None = None,
        port: str = "submission",
        helo: str = "client.example",
        via: str | None = None,
    ) -> SmtpSession:
        return SmtpSession(self, claim_ip=claim_ip, claim_name=claim_name, port=port, helo=helo, via=via)

    def smtp_auth_send(
        self,
        user: str,
        password: str,
        sender: str,
        recipients: Sequence[str],
        *,
        claim_ip: str | None = None,
        subject: str = "Hello",
        body: str = "Hello.\n",
        port: str = "submission",
        mechanism: str = "PLAIN",
        helo: str = "client.example",
        via: str | None = None,
        message: bytes | None = None,
    ) -> SmtpResult:
        """Authenticate (raises MailStackError if refused) and send one message."""
        with self.smtp_session(claim_ip=claim_ip, port=port, helo=helo, via=via) as s:
            if not s.auth(user, password, mechanism):
                raise MailStackError(f"AUTH as {user} failed")
            msg = message or make_message(sender, recipients, subject, body, rng=self.rng)
            return s.send(sender, recipients, msg)

    def smtp_auth_fail(
        self,
        user: str,
        wrong_password: str,
        claim_ip: str | None = None,
        *,
        port: str = "submission",
        mechanism: str = "PLAIN",
        helo: str = "client.example",
        via: str | None = None,
    ) -> bool:
        """One AUTH attempt that is expected to fail; returns True if it did fail."""
        with self.smtp_session(claim_ip=claim_ip, port=port, helo=helo, via=via) as s:
            return not s.auth(user, wrong_password, mechanism)

    def smtp_unauth_send(
        self,
        sender: str,
        recipients: Sequence[str],
        *,
        subject: str = "Hello",
        body: str = "Hello.\n",
        helo: str = "localhost",
        message: bytes | None = None,
    ) -> SmtpResult:
        """Unauthenticated SMTP from 127.0.0.1 (in mynetworks): the "telnet"/local script path."""
        with self.smtp_session(port="smtp", helo=helo) as s:
            msg = message or make_message(sender, recipients, subject, body, rng=self.rng)
            return s.send(sender, recipients, msg)

    def smtp_relay_attempt(
        self,
        claim_ip: str,
        sender: str = "spam@spam.example",
        recipient: str = "target@example.com",
        *,
        helo: str = "client.example",
        via: str | None = None,
    ) -> SmtpResult:
        """Unauthenticated relay attempt from an outside address: refused (554 Relay access
        denied); the result carries the RCPT reply."""
        with self.smtp_session(claim_ip=claim_ip, port="smtp", helo=helo, via=via) as s:
            msg = make_message(sender, [recipient], "relay test", "x\n", rng=self.rng)
            return s.send(sender, [recipient], msg)

    def smtp_raw(self, lines: Sequence[str], *, port: str = "smtp", timeout: float = 10) -> str:
        """Write all ``lines`` at once (a "telnet"/``printf | nc`` client that does not wait
        for replies; Postfix logs ``improper command pipelining``) from 127.0.0.1, then read
        until the server closes. Returns the server's replies."""
        payload = "".join(line + "\r\n" for line in lines).encode()
        chunks = []
        with socket.create_connection(("127.0.0.1", self.ports[port]), timeout=timeout) as sock:
            sock.sendall(payload)
            with contextlib.suppress(TimeoutError, OSError):
                while data := sock.recv(65536):
                    chunks.append(data)
        return b"".join(chunks).decode(errors="replace")

    # ---- IMAP / POP3 ----------------------------------------------------------------------------
    def imap_login(
        self,
        user: str,
        password: str,
        claim_ip: str | None = None,
        *,
        select: bool = True,
        timeout: float = 30,
    ) -> bool:
        """IMAP LOGIN; ``claim_ip`` is passed as ``ID x-originating-ip`` (honoured because
        127.0.0.0/8 is in login_trusted_networks). Returns True on success."""
        return self.imap_try(user, [password], claim_ip, select=select, timeout=timeout) == 0

    def imap_try(
        self,
        user: str,
        passwords: Sequence[str],
        claim_ip: str | None = None,
        *,
        select: bool = True,
        timeout: float = 30,
    ) -> int | None:
        """Several LOGIN attempts in ONE IMAP connection (Dovecot allows 3); returns the index of
        the password that worked, or None."""
        imaplib.Commands.setdefault("ID", ("NONAUTH", "AUTH", "SELECTED"))
        m = imaplib.IMAP4("127.0.0.1", self.imap_port, timeout=timeout)
        try:
            if claim_ip is not None:
                port = self.rng.randint(32768, 60999)
                m._simple_command(
                    "ID",
                    f'("name" "Thunderbird" "x-originating-ip" "{claim_ip}" "x-originating-port" "{port}")',
                )
            for i, pw in enumerate(passwords):
                try:
                    m.login(user, pw)
                except imaplib.IMAP4.error:
                    continue
                if select:
                    m.select("INBOX", readonly=True)
                return i
            return None
        finally:
            with contextlib.suppress(imaplib.IMAP4.error, OSError):
                m.logout()
            with contextlib.suppress(OSError):
                m.shutdown()

    def pop3_login(
        self, user: str, password: str, claim_ip: str | None = None, *, timeout: float = 30
    ) -> bool:
        """POP3 USER/PASS; ``claim_ip`` via Dovecot's ``XCLIENT ADDR=`` (trusted networks)."""
        p = poplib.POP3("127.0.0.1", self.pop3_port, timeout=timeout)
        try:
            if claim_ip is not None:
                port = self.rng.randint(32768, 60999)
                p._shortcmd(f"XCLIENT ADDR={claim_ip} PORT={port}")  # type: ignore[attr-defined]
            try:
                p.user(user)
                p.pass_(password)
            except poplib.error_proto:
                return False
            p.stat()
            return True
        finally:
            with contextlib.suppress(poplib.error_proto, OSError):
                p.quit()
            p.close()

    # ---- local injection ----------------------------------------------------------------------
    def local_sendmail_as(
        self, eml_bytes: bytes, user: str = "www-data", args: Sequence[str] = ("-t", "-i")
    ) -> None:
        """Submit a message with /usr/sbin/sendmail as a local user (like PHP's mail()).

        Runs ``runuser -u USER -g postdrop -- env MAIL_CONFIG=... sendmail -t -i``: with real
        gid postdrop the setgid postdrop does not refuse the non-default config directory."""
        argv = [
            _exe("runuser"),
            "-u",
            user,
            "-g",
            "postdrop",
            "--",
            "/usr/bin/env",
            f"MAIL_CONFIG={self.postfix_config}",
            SENDMAIL,
            *args,
        ]
        _run(argv, input_bytes=eml_bytes, timeout=30)

    # ---- logs ------------------------------------------------------------------------------------
    def copy_logs(
        self,
        out_dir: str | os.PathLike[str],
        postfix_name: str = "mail.log",
        dovecot_name: str = "dovecot.log",
    ) -> tuple[Path, Path]:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        a, b = out / postfix_name, out / dovecot_name
        shutil.copyfile(self.postfix_log, a)
        shutil.copyfile(self.dovecot_log, b)
        return a, b


def _group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group ``pgid`` -- read-only, for waiting only."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        # fields: state ppid pgrp ...
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            found.append(int(entry))
    return found


def _wait_group_gone(pgid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while _group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.01)


def _group_gid(name: str) -> int:
    import grp

    return grp.getgrnam(name).gr_gid


@atexit.register
def _stop_leftovers() -> None:
    for stack in list(_LIVE_STACKS):
        with contextlib.suppress(Exception):
            stack.stop()


# --------------------------------------------------------------------------------------------
# fake remote MX (run as: python mailstack.py fake-mx PORT LOGFILE)


def rcpt_reply(address: str, peer_ip: str, rate_close: bool = False) -> tuple[str, bool]:
    """(reply, close_after) for ``RCPT TO:<address>``.

    ``rate_close``: close the connection after the 421 (as big providers do). Postfix then
    defers every other recipient of that message with "lost connection with ... while sending
    RCPT TO" and retries them together forever; by default the connection stays open so each
    rate* recipient gets the 421 text and the others are delivered/bounced normally."""
    local = address.strip("<> ").split("@")[0].lower()
    if local.startswith("block"):
        return REPLY_BLOCK.format(ip=peer_ip), False
    if local.startswith("rate"):
        return REPLY_RATE.format(ip=peer_ip), rate_close
    if local.startswith("full"):
        return REPLY_FULL, False
    if local.startswith("nouser"):
        return REPLY_NOUSER, False
    return "250 2.1.5 OK", False


def _fake_mx_main(
    port: int, logfile: str, rate_close: bool
) -> None:  # pragma: no cover - runs in a subprocess
    import asyncio
    import itertools

    counter = itertools.count(1)
    log = open(logfile, "a", buffering=1, encoding="utf-8")  # noqa: SIM115

    def note(peer: str, line: str) -> None:
        log.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {peer} {line}\n")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")[0]

        async def send(s: str) -> None:
            note(peer, "> " + s)
            writer.write((s + "\r\n").encode())
            await writer.drain()

        await send("220 mx.fake-remote.test ESMTP fake")
        in_data = False
        try:
            while True:
                raw = await reader.readline()
                if not raw:
                    break
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if in_data:
                    if line == ".":
                        in_data = False
                        await send(f"250 2.0.0 Ok: queued as FAKE{next(counter):06d}")
                    continue
                note(peer, "< " + line)
                cmd = line[:4].upper()
                if cmd == "EHLO":
                    await send(
                        "250-mx.fake-remote.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES"
                    )
                elif cmd == "HELO":
                    await send("250 mx.fake-remote.test")
                elif cmd == "MAIL":
                    await send("250 2.1.0 OK")
                elif cmd == "RCPT":
                    reply, close = rcpt_reply(line.split(":", 1)[1] if ":" in line else "", peer, rate_close)
                    await send(reply)
                    if close:
                        break
                elif cmd == "DATA":
                    in_data = True
                    await send("354 End data with <CR><LF>.<CR><LF>")
                elif cmd == "QUIT":
                    await send("221 2.0.0 Bye")
                    break
                else:  # RSET, NOOP, ...
                    await send("250 2.0.0 OK")
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        srv = await asyncio.start_server(handle, "127.0.0.1", port)
        note("-", f"listening on 127.0.0.1:{port}")
        loop = asyncio.get_running_loop()
        stop = loop.create_future()
        loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
        async with srv:
            await stop

    asyncio.run(main())
    log.close()


if __name__ == "__main__":  # pragma: no cover
    if len(sys.argv) in (4, 5) and sys.argv[1] == "fake-mx":
        _fake_mx_main(int(sys.argv[2]), sys.argv[3], sys.argv[4:] == ["close"])
    else:
        sys.exit("usage: mailstack.py fake-mx PORT LOGFILE [close|keep]")
