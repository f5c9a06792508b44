#!/usr/bin/env python3
"""Synthetic Postfix 3.7 + Dovecot 2.3 mail-server logs for benchmarks and end-to-end tests.

Throughput and memory claims only mean something on millions of lines that stress the same
paths a real server does: sessions interleaved by pid, messages whose lines are hours apart
(deferred retries), bot noise that must be cheap to discard, and a few incidents that must
survive the noise. The lab sample (``/work/shared/samples/lab``) is the shape reference; every
template here copies a line that Postfix 3.7.11 / Dovecot 2.3.19 wrote on the lab machine or
that their sources write verbatim.

The output is a simulation, not a replay: a second-resolution clock, a ring of per-second
buckets into which each activity drops its future lines, and a flush that stamps and writes
each second in order. That keeps time monotonic across midnight and month ends without
sorting, and costs a few microseconds per line.

Only documentation address space (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,
2001:db8::/32) and example.com/.net/.org/.test names appear, so a generated file can be
published, attached to a bug, or fed to an enforcing daemon without harming anyone.

Usage::

    python bench/generate_logs.py --lines 1000000 --out /tmp/mail.log [--seed 1]
        [--start 2026-11-01T00:00:00] [--rate 10] [--dovecot-file /tmp/dovecot.log]
        [--manifest /tmp/mail.json]
"""

from __future__ import annotations

import argparse
import base64
import heapq
import ipaddress
import json
import math
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TextIO

Fire = Callable[[int], None]
Next = Callable[[float], float]
Table = tuple[tuple[float, Fire], ...]

RING = 1 << 15  # seconds of future the ring holds (~9 h); every offset used stays below it
MASK = RING - 1
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
HMS = [f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)]

HOST = "mx"  # the syslog host field, as on the lab machine
MYNAME = "mx.example.org"  # myhostname: appears in Postfix-made message-ids
LIP4 = "192.0.2.10"
LIP6 = "2001:db8::10"
LOCAL_LMTP = "example.org"  # delivered to Dovecot over LMTP
LOCAL_VIRTUAL = "branch.example.org"  # delivered by postfix/virtual to maildir, as in the lab
REMOTE_DOMAINS = (
    "example.com",
    "example.net",
    "mail.example.com",
    "corp.example.net",
    "shop.example.com",
    "freemail.test",
    "partner.test",
    "lists.example.net",
    "news.example.com",
    "bank.test",
    "school.example.net",
    "agency.test",
    "example.com",
    "example.net",
    "freemail.test",
)
SPAM_DOMAINS = (
    "cheap-meds.test",
    "win-big.test",
    "crypto-profit.test",
    "promo.example.net",
    "bulk.example.com",
    "seo-offers.test",
    "dating.test",
    "loans.example.net",
)
FIRST = (
    "anna",
    "ben",
    "carla",
    "david",
    "eva",
    "felix",
    "greta",
    "hans",
    "ines",
    "jonas",
    "katrin",
    "lukas",
    "maria",
    "niklas",
    "olga",
    "paul",
    "quinn",
    "rosa",
    "stefan",
    "tina",
    "uwe",
    "vera",
    "walter",
    "xenia",
    "yusuf",
    "zoe",
    "alice",
    "bob",
    "chris",
    "dana",
    "emil",
    "fatima",
    "georg",
    "hanna",
    "igor",
    "julia",
    "karl",
    "lena",
    "mehmet",
    "nina",
    "oskar",
    "petra",
    "rainer",
    "sara",
    "tom",
    "ulla",
    "viktor",
    "wanda",
    "yara",
    "zeynep",
    "adam",
    "birgit",
    "carsten",
    "doris",
    "erik",
    "frieda",
    "gustav",
    "helga",
    "ivan",
    "jana",
)
LAST = (
    "schmidt",
    "mueller",
    "meyer",
    "schulz",
    "wagner",
    "becker",
    "hoffmann",
    "koch",
    "richter",
    "klein",
    "wolf",
    "neumann",
    "schwarz",
    "braun",
    "zimmermann",
    "krueger",
    "hartmann",
    "lange",
    "werner",
    "krause",
    "lehmann",
    "koehler",
    "maier",
    "walter",
    "peters",
    "fischer",
    "weber",
    "keller",
    "frank",
    "berger",
    "jung",
    "vogel",
    "roth",
    "beck",
    "lorenz",
    "baumann",
    "franke",
    "albrecht",
    "schuster",
    "simon",
    "ludwig",
    "boehm",
    "winter",
    "kraus",
    "martin",
    "schumacher",
    "vogt",
    "stein",
    "jaeger",
    "otto",
    "sommer",
    "gross",
    "seidel",
    "heinrich",
    "brandt",
    "haas",
)
BOT_USERS = (
    "admin",
    "info",
    "test",
    "sales",
    "support",
    "office",
    "contact",
    "postmaster",
    "webmaster",
    "user",
    "mail",
    "marketing",
    "hr",
    "billing",
    "noreply",
    "root",
    "guest",
    "backup",
    "demo",
    "scanner",
    "printer",
    "accounts",
    "service",
    "abuse",
    "newsletter",
)
HUMAN_DIURNAL = (
    0.25,
    0.18,
    0.15,
    0.14,
    0.15,
    0.22,
    0.45,
    0.9,
    1.5,
    1.8,
    1.85,
    1.8,
    1.6,
    1.7,
    1.8,
    1.75,
    1.6,
    1.35,
    1.1,
    0.95,
    0.85,
    0.7,
    0.5,
    0.35,
)
TLS13 = (
    "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 "
    "server-signature RSA-PSS (2048 bits) server-digest SHA256"
)
TLS12 = "TLSv1.2 with cipher ECDHE-RSA-AES256-GCM-SHA384 (256/256 bits)"
TLS_OUT = (
    "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 "
    "server-signature ECDSA (P-256) server-digest SHA256"
)
RATE_LIMIT = (
    "Our system has detected an unusual rate of unsolicited mail originating from your IP "
    "address. To protect our users from spam, mail sent from your IP address has been "
    "temporarily rate limited."
)


def fmt_delay(x: float) -> str:
    """Render a delay the way Postfix's log_adhoc does: two significant digits, 0 below 10 ms.

    Parsers that split ``delays=a/b/c/d`` on ``/`` and read floats must cope with ``0``,
    ``0.5`` and ``1834`` alike, so the generator reproduces all three shapes.
    """
    if x < 0.01:
        return "0"
    if x < 1:
        return f"{x:.2f}".rstrip("0").rstrip(".")
    if x < 10:
        return f"{x:.1f}".rstrip("0").rstrip(".")
    return str(int(x))


@dataclass(slots=True)
class Client:
    """A network peer: address as the server prints it, PTR name, packed bytes for session ids."""

    ip: str
    host: str
    packed: bytes


@dataclass(slots=True)
class User:
    """A mailbox owner; ``clients`` are the few places this person really connects from."""

    addr: str
    lmtp: bool
    clients: list[Client]


@dataclass(slots=True)
class SessionPool:
    """Idle smtpd processes of one master.cf service, so one pid never serves two sessions.

    A correlator that assembles sessions by pid would be misled by overlapping sessions on
    one pid, which real Postfix never writes; processes are handed out LIFO like master(8)
    and exit after roughly ``max_use`` sessions.
    """

    tag: str
    idle: list[str] = field(default_factory=list)


@dataclass
class Incidents:
    """Ground truth of the embedded incidents, written to the manifest for scenario tests."""

    compromised_user: str = ""
    compromised_clients: list[str] = field(default_factory=list)
    burst_start: str = ""
    burst_end: str = ""
    burst_messages: int = 0
    burst_recipients: int = 0
    probe_login: str = ""
    bruteforce_ip: str = ""
    bruteforce_start: str = ""
    bruteforce_end: str = ""
    bruteforce_attempts: int = 0
    bruteforce_targets: list[str] = field(default_factory=list)


class Simulator:
    """One mail server's day(s): activity streams feeding a ring of per-second line buckets."""

    def __init__(self, seed: int, start: datetime, rate: float, n_lines: int, split: bool):
        self.rng = random.Random(seed)
        self.r = self.rng.random
        self.start = start
        self.epoch0 = int((start - datetime(1970, 1, 1)).total_seconds())
        self.n_lines = n_lines
        self.split = split
        self.pf: list[list[str]] = [[] for _ in range(RING)]
        self.dv: list[list[str]] = [[] for _ in range(RING)] if split else self.pf
        self.release: list[list[tuple[SessionPool, str]]] = [[] for _ in range(RING)]
        self.now = 0
        self.emitted = 0
        self.counts: dict[str, int] = {}
        self.truth = Incidents()
        self._pid = 1100 + int(self.r() * 400)
        self._ino = int(self.r() * 0xFFFFF)
        self._day = -1
        self._day_pf = ""
        self._day_dv = ""
        self._cs_sec = -1
        self._cs = ""
        self._tokens = [f"{self.rng.getrandbits(48):012X}" for _ in range(4096)]
        self._b64tok = [
            base64.b64encode(self.rng.getrandbits(120).to_bytes(15, "big"))
            .decode()
            .replace("+", "x")
            .replace("/", "y")[:14]
            for _ in range(4096)
        ]
        self._lmtp_ids = [  # Dovecot LMTP session ids: 16 bytes, unpadded base64
            base64.b64encode(self.rng.getrandbits(128).to_bytes(16, "big")).decode()[:22] for _ in range(4096)
        ]
        self._sizes = [int(math.exp(self.rng.gauss(8.6, 1.1))) + 400 for _ in range(4096)]
        self._fast_delays = [self._delays(0.0) for _ in range(1024)]
        self._build_services()
        self._build_network()
        self._build_users()
        # Calibrated so that --rate is the mean number of lines per simulated second.
        self.human_rate = rate * 0.108
        self.noise_rate = rate * 0.0537
        self._hour_mult = [m * 24 / sum(HUMAN_DIURNAL) for m in HUMAN_DIURNAL]

    # ---------------------------------------------------------------- processes and ids

    def _newpid(self) -> int:
        self._pid += 1 + int(self.r() * 4)  # other processes on the host take pids too
        if self._pid >= 4194304:  # kernel.pid_max on 64-bit systemd hosts
            self._pid = 300 + int(self.r() * 100)
        return self._pid

    def _prefix(self, tag: str) -> str:
        return f"{HOST} {tag}[{self._newpid()}]: "

    def _build_services(self) -> None:
        p = self._prefix
        self.master = p("postfix/master")
        self.qmgr = p("postfix/qmgr")
        self.pickup_p = p("postfix/pickup")
        self.postscreen = p("postfix/postscreen")
        self.anvil_p = p("postfix/anvil")
        self.scache_p = p("postfix/scache")
        self.tlsmgr = p("postfix/tlsmgr")
        self.light: dict[str, list[str]] = {
            name: [p(f"postfix/{name}") for _ in range(n)]
            for name, n in (
                ("cleanup", 3),
                ("smtp", 8),
                ("lmtp", 3),
                ("virtual", 2),
                ("local", 1),
                ("bounce", 2),
            )
        }
        self.smtpd = SessionPool("postfix/smtpd")
        self.submission = SessionPool("postfix/submission/smtpd")
        self.submissions = SessionPool("postfix/submissions/smtpd")
        self.lmtp_dpid = [self._newpid() for _ in range(2)]

    def pick(self, name: str) -> str:
        """A delivery-agent or cleanup process; now and then one is replaced (max_idle/max_use)."""
        pool = self.light[name]
        i = int(self.r() * len(pool))
        if self.r() < 0.003:
            pool[i] = self._prefix(f"postfix/{name}")
        return pool[i]

    def acquire(self, pool: SessionPool) -> str:
        return pool.idle.pop() if pool.idle else self._prefix(pool.tag)

    def free(self, pool: SessionPool, prefix: str, t: int) -> None:
        if self.r() > 0.01:  # else the process reached max_use and exits
            self.release[(t + 1) & MASK].append((pool, prefix))

    def qid(self) -> str:
        """An 11-hex-digit short queue id: microseconds (5 digits) + inode (6 digits).

        The inode part advances through 2**20 values and only wraps after ~200k messages,
        far more than can be alive at once (the longest life here is ~3 h of retries), so
        ids are unique among live messages like Postfix guarantees.
        """
        self._ino = (self._ino + 1 + int(self.r() * 5)) & 0xFFFFF
        return f"{int(self.r() * 1000000):05X}{0x200000 | self._ino:06X}"

    def session(self, c: Client) -> str:
        """A Dovecot session id: base64 of 8 time bytes and the client address, as 2.3 does."""
        return base64.b64encode(self.rng.getrandbits(64).to_bytes(8, "big") + c.packed).decode()

    def compact(self, t: int) -> str:
        """YYYYmmddHHMMSS of second ``t``, for Postfix-made message-ids."""
        if t != self._cs_sec:
            self._cs_sec = t
            self._cs = (self.start + timedelta(seconds=t)).strftime("%Y%m%d%H%M%S")
        return self._cs

    def iso(self, t: float) -> str:
        return (self.start + timedelta(seconds=int(t))).isoformat()

    def _delays(self, queued: float) -> tuple[str, str]:
        r = self.r
        a = queued + r() * r() * 0.6
        b = r() * r() * 0.05
        c = r() * 0.9 + 0.02 if r() < 0.7 else 0.0
        d = r() * r() * 1.5 + 0.01
        parts = "/".join(fmt_delay(x) for x in (a, b, c, d))
        return fmt_delay(a + b + c + d), parts

    # ---------------------------------------------------------------- addresses and people

    def _client(self, ip: str, host: str) -> Client:
        return Client(ip, host, ipaddress.ip_address(ip).packed)

    def _build_network(self) -> None:
        r = self.r
        c = self._client
        # Clients of our users: home DSL/cable (v4 and v6), shared offices.
        self.user_v4 = [
            c(ip, "unknown" if r() < 0.5 else f"host-{ip.replace('.', '-')}.dsl.example.net")
            for ip in [f"192.0.2.{i}" for i in range(41, 255)] + [f"198.51.100.{i}" for i in range(1, 128)]
        ]
        self.offices = [c(f"192.0.2.{i}", f"gw{i}.office.example.com") for i in range(21, 41)]
        self.user_v6 = [
            c(
                f"2001:db8:{0x1000 + i:x}:{1 + int(r() * 0xFFFE):x}::{1 + int(r() * 0xFFFE):x}",
                "unknown" if r() < 0.8 else f"cpe-{i}.cable.example.com",
            )
            for i in range(3600)
        ]
        # Other mail servers: they send to us and receive from us.
        self.mtas = [
            c(
                f"198.51.100.{i}",
                f"{('mx', 'mail', 'smtp-out', 'mta')[i % 4]}{i - 127}.{REMOTE_DOMAINS[i % 15]}",
            )
            for i in range(128, 251)
        ] + [c(f"2001:db8:2000:{i:x}::25", f"mx{i}.{REMOTE_DOMAINS[i % 15]}") for i in range(1, 60)]
        # Spam senders, scanners and password guessers; 203.0.113.200+ is kept for incidents.
        self.bots = [c(f"203.0.113.{i}", "unknown") for i in range(1, 200)] + [
            c(f"2001:db8:bad:{1 + int(r() * 0xFFFE):x}::{1 + int(r() * 0xFFFE):x}", "unknown")
            for _ in range(400)
        ]

    def _build_users(self) -> None:
        r = self.r
        names: list[str] = []
        seen: set[str] = set()
        while len(names) < 2000:
            f, l_ = FIRST[int(r() * len(FIRST))], LAST[int(r() * len(LAST))]
            style = r()
            local = f"{f}.{l_}" if style < 0.6 else f"{f[0]}.{l_}" if style < 0.9 else f"{f}{l_}"
            if local not in seen:
                seen.add(local)
                names.append(local)
        # Home and mobile addresses are each person's own (dealt without replacement);
        # only office gateways are shared, as NAT makes them in real life.
        homes = self.user_v4 + self.user_v6
        self.rng.shuffle(homes)
        self.users: list[User] = []
        for i, local in enumerate(names):
            lmtp = i % 7 != 0
            clients = [homes.pop()]
            if r() < 0.5:
                clients.append(homes.pop())
            if r() < 0.3:
                clients.append(self.offices[int(r() * len(self.offices))])
            domain = LOCAL_LMTP if lmtp else LOCAL_VIRTUAL
            self.users.append(User(f"{local}@{domain}", lmtp, clients))
        self.user_set = {u.addr for u in self.users}
        # Bots' dictionary: role names, first names, name+digit and guessed first.last that
        # mostly do not exist here; hundreds of names, so no single one draws all the noise.
        self.bot_names = [*BOT_USERS, *FIRST, *(f"{f}{d}" for f in FIRST[:40] for d in (1, 2, 123))]
        self.bot_names += [f"{FIRST[int(r() * 60)]}.{LAST[int(r() * 56)]}" for _ in range(200)]
        # Skewed activity: a few heavy users (the busiest ~0.6 % of all), a long quiet tail.
        self.user_table = [int(len(self.users) * (r() ** 1.5)) for _ in range(8192)]

    def user(self) -> User:
        return self.users[self.user_table[int(self.r() * 8192)]]

    def remote_addr(self) -> str:
        r = self.r
        return (
            f"{FIRST[int(r() * 60)]}{('.', '_', '')[int(r() * 3)]}{LAST[int(r() * 56)]}"
            f"@{REMOTE_DOMAINS[int(r() * 15)]}"
        )

    def msgid(self, t: int, domain: str) -> str:
        r = self.r
        k = r()
        if k < 0.4:
            return f"<{self.compact(t)}.{self._tokens[int(r() * 4096)][:8]}@{domain}>"
        if k < 0.8:
            h = f"{self.rng.getrandbits(128):032x}"
            return f"<{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}@{domain}>"
        return f"<{self._b64tok[int(r() * 4096)]}{int(r() * 99999)}@mail.{domain}>"

    # ---------------------------------------------------------------- writing

    def put(self, t: int, line: str) -> None:
        self.pf[t & MASK].append(line)

    def dput(self, t: int, prefix: str, msg: str, level: str = "Info") -> None:
        """Dovecot lines: syslog drops the ``Info: `` prefix (failures.c), log_path keeps it."""
        if self.split:
            self.dv[t & MASK].append(f"{prefix}: {level}: {msg}")
        elif level == "Info":
            self.pf[t & MASK].append(f"{HOST} dovecot: {prefix}: {msg}")
        else:
            self.pf[t & MASK].append(f"{HOST} dovecot: {prefix}: {level}: {msg}")

    def _stamps(self, s: int) -> tuple[str, str]:
        abs_s = self.epoch0 + s
        day, sod = divmod(abs_s, 86400)
        if day != self._day:
            d = datetime(1970, 1, 1) + timedelta(days=day)
            mon = MONTHS[d.month - 1]
            self._day = day
            self._day_pf = f"{mon} {d.day:2d} "  # rsyslog traditional: space-padded day
            self._day_dv = f"{mon} {d.day:02d} "  # Dovecot log_timestamp "%b %d %H:%M:%S "
        hms = HMS[sod]
        return f"{self._day_pf}{hms} ", f"{self._day_dv}{hms} "

    def flush_until(self, sec: int, out: TextIO, dvout: TextIO | None) -> bool:
        """Write every second before ``sec``; True once ``n_lines`` have been written."""
        pf, dv, rel = self.pf, self.dv, self.release
        while self.now < sec:
            s = self.now & MASK
            for pool, prefix in rel[s]:
                pool.idle.append(prefix)
            rel[s].clear()
            b = pf[s]
            d = dv[s] if self.split else None
            if b or d:
                st_pf, st_dv = self._stamps(self.now)
                left = self.n_lines - self.emitted
                if b:
                    if len(b) >= left:
                        out.write(st_pf + ("\n" + st_pf).join(b[:left]) + "\n")
                        self.emitted += left
                        return True
                    out.write(st_pf + ("\n" + st_pf).join(b) + "\n")
                    self.emitted += len(b)
                    left -= len(b)
                    b.clear()
                if d and dvout is not None:
                    if len(d) >= left:
                        dvout.write(st_dv + ("\n" + st_dv).join(d[:left]) + "\n")
                        self.emitted += left
                        return True
                    dvout.write(st_dv + ("\n" + st_dv).join(d) + "\n")
                    self.emitted += len(d)
                    d.clear()
            self.now += 1
        return False

    def count(self, kind: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1

    # ---------------------------------------------------------------- message lifecycle

    def deliver(
        self,
        t: int,
        q: str,
        sender: str,
        rcpts: list[str],
        *,
        size: int,
        mid: str,
        spammy: bool = False,
        notify: bool = True,
    ) -> None:
        """Deliver ``rcpts`` of queued message ``q`` from second ``t``: sent, deferred or bounced.

        Deferred recipients come back on a retry minutes to hours later with a fresh
        ``(queue active)`` line, so a correlator must hold the message across that gap;
        ``removed`` is written only once every recipient is final.
        """
        r = self.r
        put = self.put
        bounced: list[tuple[str, str]] = []
        pending = rcpts
        tt = t
        attempt = 0
        while pending:
            later: list[str] = []
            if attempt:
                put(tt, f"{self.qmgr}{q}: from=<{sender}>, size={size}, nrcpt={len(rcpts)} (queue active)")
            for rc in pending:
                dom = rc.rsplit("@", 1)[1]
                if dom in (LOCAL_LMTP, LOCAL_VIRTUAL):
                    self.deliver_local(tt, q, rc, sender, mid)
                    continue
                mta = self.mtas[hash_dom(dom) % len(self.mtas)]
                relay = f"{mta.host}[{mta.ip}]:25"
                if attempt:
                    delay, delays = self._delays(float(tt - t))
                else:
                    delay, delays = self._fast_delays[int(r() * 1024)]
                smtp = self.pick("smtp")
                k = r()
                p_def, p_bnc = (0.22, 0.14) if spammy else (0.035, 0.012)
                if attempt >= 3 or k >= p_def + p_bnc:
                    reply = self.sent_reply(mta, size)
                    put(
                        tt,
                        f"{smtp}{q}: to=<{rc}>, relay={relay}, delay={delay}, "
                        f"delays={delays}, dsn=2.0.0, status=sent ({reply})",
                    )
                elif k < p_def:
                    later.append(rc)
                    self.deferral(tt, q, rc, mta, delay=delay, delays=delays, smtp=smtp, spammy=spammy)
                else:
                    dsn, text = self.bounce_reply(mta, rc, spammy)
                    put(
                        tt,
                        f"{smtp}{q}: to=<{rc}>, relay={relay}, delay={delay}, "
                        f"delays={delays}, dsn={dsn}, status=bounced ({text})",
                    )
                    bounced.append((rc, dsn))
            if bounced and sender and notify:
                self.ndr(tt, q, sender)
                bounced = []
            if not later:
                put(tt, f"{self.qmgr}{q}: removed")
                return
            attempt += 1
            pending = later
            tt += 300 * attempt + int(r() * 900 * attempt)
            if attempt >= 4:  # rare: give up early in the simulation, as if expired
                put(tt, f"{self.qmgr}{q}: from=<{sender}>, status=expired, returned to sender")
                if notify:
                    self.ndr(tt, q, sender)
                put(tt, f"{self.qmgr}{q}: removed")
                return

    def deferral(
        self, t: int, q: str, rc: str, mta: Client, *, delay: str, delays: str, smtp: str, spammy: bool
    ) -> None:
        r = self.r
        put = self.put
        k = r()
        if spammy or k < 0.35:
            dsn = "4.7.0"
            text = (
                f"host {mta.host}[{mta.ip}] said: 421 4.7.0 [{LIP4}] {RATE_LIMIT} "
                "(in reply to RCPT TO command)"
            )
            relay = f"{mta.host}[{mta.ip}]:25"
        elif k < 0.6:
            dsn = "4.2.0"
            text = (
                f"host {mta.host}[{mta.ip}] said: 450 4.2.0 <{rc}>: Recipient address "
                "rejected: Greylisted, see https://www.example.net/greylisting.html "
                "(in reply to RCPT TO command)"
            )
            relay = f"{mta.host}[{mta.ip}]:25"
        elif k < 0.75:
            dsn = "4.2.2"
            text = (
                f"host {mta.host}[{mta.ip}] said: 452 4.2.2 The email account that you "
                "tried to reach is over quota. (in reply to RCPT TO command)"
            )
            relay = f"{mta.host}[{mta.ip}]:25"
        elif k < 0.9:
            put(t, f"{smtp}connect to {mta.host}[{mta.ip}]:25: Connection timed out")
            dsn, relay = "4.4.1", "none"
            text = f"connect to {mta.host}[{mta.ip}]:25: Connection timed out"
        else:
            dom = rc.rsplit("@", 1)[1]
            dsn, relay = "4.4.3", "none"
            text = (
                f"Host or domain name not found. Name service error for name={dom} "
                "type=MX: Host not found, try again"
            )
        self.put(
            t,
            f"{smtp}{q}: to=<{rc}>, relay={relay}, delay={delay}, delays={delays}, "
            f"dsn={dsn}, status=deferred ({text})",
        )

    def sent_reply(self, mta: Client, size: int) -> str:
        r = self.r
        tok = self._tokens[int(r() * 4096)]
        k = r()
        if k < 0.45:
            return f"250 2.0.0 Ok: queued as {tok[:10]}"
        if k < 0.65:
            stamp = 1793500000 + int(r() * 9999999)
            return f"250 2.0.0 OK  {stamp} {self._b64tok[int(r() * 4096)]}.{int(r() * 999)} - esmtp"
        if k < 0.8:
            return f"250 OK id=1t{tok[:4]}-{tok[4:10]}-{tok[10:]}"
        if k < 0.92:
            return (
                f"250 2.6.0 <{tok}@{mta.host}> [InternalId={int(r() * 1e13)}, "
                f"Hostname={mta.host}] {size + 600} bytes in 0.{int(r() * 900) + 100}, "
                f"{round(r() * 900, 3)} KB/sec Queued mail for delivery"
            )
        return f"250 Requested mail action okay, completed: id={self._b64tok[int(r() * 4096)]}"

    def bounce_reply(self, mta: Client, rc: str, spammy: bool) -> tuple[str, str]:
        k = self.r()
        h = f"host {mta.host}[{mta.ip}] said:"
        if spammy and k < 0.5:
            return "5.7.1", (
                f"{h} 554 5.7.1 Service unavailable; Client host [{LIP4}] blocked "
                f"using zen.spamhaus.org; https://www.spamhaus.org/query/ip/{LIP4} "
                "(in reply to RCPT TO command)"
            )
        if k < 0.45:
            return "5.1.1", (
                f"{h} 550 5.1.1 <{rc}>: Recipient address rejected: User unknown "
                "in virtual mailbox table (in reply to RCPT TO command)"
            )
        if k < 0.75:
            return "5.1.1", (
                f"{h} 550 5.1.1 The email account that you tried to reach does "
                "not exist. (in reply to RCPT TO command)"
            )
        if k < 0.9:
            return "5.2.2", f"{h} 552 5.2.2 <{rc}>: mailbox full (in reply to end of DATA command)"
        return "5.7.1", f"{h} 550 5.7.1 Message rejected as spam (in reply to end of DATA command)"

    def deliver_local(self, t: int, q: str, rc: str, sender: str, mid: str) -> None:
        """Final delivery to one of our mailboxes, with Dovecot's side of LMTP when used."""
        r = self.r
        delay, delays = self._fast_delays[int(r() * 1024)]
        if rc.endswith("@" + LOCAL_VIRTUAL):
            self.put(
                t,
                f"{self.pick('virtual')}{q}: to=<{rc}>, relay=virtual, delay={delay}, "
                f"delays={delays}, dsn=2.0.0, status=sent (delivered to maildir)",
            )
            return
        lpid = self.lmtp_dpid[int(r() * 2)]
        if r() < 0.003:
            self.lmtp_dpid[int(r() * 2)] = lpid = self._newpid()
        sess = self._lmtp_ids[int(r() * 4096)]
        relay = f"{MYNAME}[private/dovecot-lmtp]"
        lmtp = self.pick("lmtp")
        if r() < 0.1:
            self.dput(t, f"lmtp({lpid})", "Connect from local")
        if sender and r() < 0.004:
            self.put(
                t,
                f"{lmtp}{q}: to=<{rc}>, relay={relay}, delay={delay}, delays={delays}, "
                f"dsn=5.2.2, status=bounced (host {relay} said: 552 5.2.2 <{rc}> Quota "
                "exceeded (mailbox for user is full) (in reply to end of DATA command))",
            )
            self.ndr(t, q, sender)
        else:
            if r() < 0.93:
                self.dput(t, f"lmtp({rc})<{lpid}><{sess}>", f"msgid={mid}: saved mail to INBOX")
            else:
                self.dput(
                    t, f"lmtp({rc})<{lpid}><{sess}>", f"sieve: msgid={mid}: stored mail into mailbox 'Junk'"
                )
            self.put(
                t,
                f"{lmtp}{q}: to=<{rc}>, relay={relay}, delay={delay}, delays={delays}, "
                f"dsn=2.0.0, status=sent (250 2.0.0 <{rc}> {sess} Saved)",
            )
        if r() < 0.1:
            self.dput(
                t, f"lmtp({lpid})", "Disconnect from local: Client has quit the connection (state=READY)"
            )

    def ndr(self, t: int, q: str, to: str) -> None:
        """A non-delivery notification: Postfix's own message from <>, to the original sender."""
        r = self.r
        nq = self.qid()
        mid = f"<{self.compact(t)}.{nq}@{MYNAME}>"
        self.put(t, f"{self.pick('cleanup')}{nq}: message-id={mid}")
        self.put(t, f"{self.pick('bounce')}{q}: sender non-delivery notification: {nq}")
        self.put(t, f"{self.qmgr}{nq}: from=<>, size={2200 + int(r() * 2500)}, nrcpt=1 (queue active)")
        if to.rsplit("@", 1)[1] in (LOCAL_LMTP, LOCAL_VIRTUAL):
            self.deliver_local(t, nq, to, "", mid)
            self.put(t, f"{self.qmgr}{nq}: removed")
        else:
            self.deliver(t + 1, nq, "", [to], size=2200, mid=mid, notify=False)
        self.count("ndr")

    # ---------------------------------------------------------------- human activity

    def inbound(self, t: int) -> None:
        """Mail from another MTA through postscreen and smtpd to one or more of our users."""
        r = self.r
        put = self.put
        mta = self.mtas[int(r() * len(self.mtas))]
        port = 1024 + int(r() * 64000)
        ps = self.postscreen
        put(t, f"{ps}CONNECT from [{mta.ip}]:{port} to [{LIP6 if ':' in mta.ip else LIP4}]:25")
        put(t, f"{ps}PASS {'OLD' if r() < 0.93 else 'NEW'} [{mta.ip}]:{port}")
        sp = self.acquire(self.smtpd)
        put(t, f"{sp}connect from {mta.host}[{mta.ip}]")
        tls = r() < 0.8
        if tls:
            put(
                t,
                f"{sp}Anonymous TLS connection established from {mta.host}[{mta.ip}]: "
                f"{TLS13 if r() < 0.8 else TLS12}",
            )
        q = self.qid()
        t1 = t + (1 if r() < 0.3 else 0)
        put(t1, f"{sp}{q}: client={mta.host}[{mta.ip}]")
        k = 1 if r() < 0.85 else 2 + int(r() * 3)
        rcpts = [self.user().addr for _ in range(k)]
        sender = self.remote_addr() if r() < 0.9 else ""
        size = self._sizes[int(r() * 4096)]
        mid = self.msgid(t1, sender.rsplit("@", 1)[1] if sender else mta.host)
        put(t1, f"{self.pick('cleanup')}{q}: message-id={mid}")
        t2 = t1 + (1 if r() < 0.3 else 0)
        qm = f"{self.qmgr}{q}: from=<{sender}>, size={size}, nrcpt={k} (queue active)"
        cmds = 5 + k + (2 if tls else 0)
        disc = (
            f"{sp}disconnect from {mta.host}[{mta.ip}] ehlo={2 if tls else 1} "
            f"{'starttls=1 ' if tls else ''}mail=1 rcpt={k} data=1 quit=1 commands={cmds}"
        )
        if r() < 0.5:
            put(t2, qm)
            put(t2, disc)
        else:
            put(t2, disc)
            put(t2, qm)
        self.free(self.smtpd, sp, t2)
        t3 = t2 + int(r() * 2)
        for rc in rcpts:
            self.deliver_local(t3, q, rc, sender, mid)
        put(t3, f"{self.qmgr}{q}: removed")
        self.count("inbound")

    def submit(self, t: int, u: User, c: Client, spammy: bool = False) -> int:
        """An authenticated submission on 587 or 465, delivered remotely (and locally)."""
        r = self.r
        put = self.put
        implicit = r() < 0.3
        pool = self.submissions if implicit else self.submission
        sp = self.acquire(pool)
        put(t, f"{sp}connect from {c.host}[{c.ip}]")
        put(t, f"{sp}Anonymous TLS connection established from {c.host}[{c.ip}]: {TLS13}")
        q = self.qid()
        t1 = t + (1 if r() < 0.4 else 0)
        method = "PLAIN" if r() < 0.7 else "LOGIN"
        put(t1, f"{sp}{q}: client={c.host}[{c.ip}], sasl_method={method}, sasl_username={u.addr}")
        if spammy:
            k = 8 + int(r() * 35)
            rcpts = [
                f"{self._b64tok[int(r() * 4096)][:7].lower()}@{REMOTE_DOMAINS[int(r() * 15)]}"
                for _ in range(k)
            ]
        else:
            k = 1 if r() < 0.7 else 2 + int(r() * 4)
            rcpts = [self.remote_addr() if r() < 0.75 else self.user().addr for _ in range(k)]
        size = self._sizes[int(r() * 4096)]
        mid = self.msgid(t1, u.addr.rsplit("@", 1)[1])
        put(t1, f"{self.pick('cleanup')}{q}: message-id={mid}")
        t2 = t1 + (1 if r() < 0.3 else 0)
        qm = f"{self.qmgr}{q}: from=<{u.addr}>, size={size}, nrcpt={k} (queue active)"
        ehlo = "ehlo=1" if implicit else "ehlo=2 starttls=1"
        cmds = 6 + k if implicit else 8 + k
        disc = (
            f"{sp}disconnect from {c.host}[{c.ip}] {ehlo} auth=1 mail=1 rcpt={k} data=1 "
            f"quit=1 commands={cmds}"
        )
        if r() < 0.5:
            put(t2, qm)
            put(t2, disc)
        else:
            put(t2, disc)
            put(t2, qm)
        self.free(pool, sp, t2)
        self.deliver(t2 + int(r() * 2), q, u.addr, rcpts, size=size, mid=mid, spammy=spammy)
        self.count("submission")
        return k

    def submission_human(self, t: int) -> None:
        u = self.user()
        self.submit(t, u, u.clients[int(self.r() * len(u.clients))])

    def imap(self, t: int, u: User | None = None, c: Client | None = None) -> None:
        """An IMAP or POP3 login and its logout seconds to half an hour later."""
        r = self.r
        if u is None:
            u = self.user()
        if c is None:
            c = u.clients[int(r() * len(u.clients))]
        pop = r() < 0.12
        proto = "pop3" if pop else "imap"
        mpid = self._newpid()
        sess = self.session(c)
        lip = LIP6 if ":" in c.ip else LIP4
        self.dput(
            t,
            f"{proto}-login",
            f"Login: user=<{u.addr}>, method=PLAIN, rip={c.ip}, "
            f"lip={lip}, mpid={mpid}, TLS, session=<{sess}>",
        )
        if pop:
            dur = 1 + int(r() * 8)
            n = int(r() * 12)
            self.dput(
                t + dur,
                f"pop3({u.addr})<{mpid}><{sess}>",
                f"Disconnected: Logged out top=0/0, retr={n}/{n * 23456}, del={n}/{n + 3}, "
                f"size={n * 23456 + 91234}",
            )
            self.count("pop3")
            return
        k = r()
        dur = 1 + int(r() * 30) if k < 0.5 else 30 + int(r() * 1800)
        counts = (
            f"in={200 + int(r() * 5000)} out={1000 + int(r() * 400000)} "
            f"deleted={int(r() * 3)} expunged={int(r() * 2)} trashed=0 "
            f"hdr_count={int(r() * 40)} hdr_bytes={int(r() * 90000)} "
            f"body_count={int(r() * 10)} body_bytes={int(r() * 900000)}"
        )
        if k < 0.6:
            why = "Logged out"
        elif k < 0.85:
            why = f"Connection closed (IDLE finished {r() * 1800:.3f} secs ago)"
        else:
            why = (
                f"Connection closed (IDLE running for 0.001 + waiting input for "
                f"{dur - 0.5:.3f} secs, 2 B in + 10 B out, state=wait-input)"
            )
        self.dput(t + dur, f"imap({u.addr})<{mpid}><{sess}>", f"Disconnected: {why} {counts}")
        self.count("imap")

    def typo(self, t: int) -> None:
        """A real user mistyping a password once, then succeeding: failures that are not attacks."""
        r = self.r
        u = self.user()
        c = u.clients[int(r() * len(u.clients))]
        sess = self.session(c)
        lip = LIP6 if ":" in c.ip else LIP4
        self.dput(t, "auth", f"passwd-file({u.addr},{c.ip},<{sess}>): Password mismatch")
        self.dput(
            t + 2,
            "imap-login",
            "Disconnected: Aborted login by logging out (auth failed, 1 attempts in 2 "
            f"secs): "
            f"user=<{u.addr}>, method=PLAIN, rip={c.ip}, lip={lip}, TLS, session=<{sess}>",
        )
        self.imap(t + 5 + int(r() * 30), u, c)
        self.count("typo")

    def pickup(self, t: int) -> None:
        """Local submission through sendmail(1): cron mail to root, web forms as www-data."""
        r = self.r
        put = self.put
        q = self.qid()
        web = r() < 0.6
        if web:
            put(t, f"{self.pickup_p}{q}: uid=33 from=<www-data>")
            cl = self.pick("cleanup")
            put(
                t,
                f"{cl}{q}: info: header X-PHP-Originating-Script: 33:contact.php from "
                f"local; from=<www-data@{MYNAME}>",
            )
            sender = f"www-data@{MYNAME}"
            # A contact form writes to the site's owners, never to arbitrary outsiders:
            # that is what the web-script injection detector keys on.
            rcpts = [self.users[(5, 9, 40)[int(r() * 3)]].addr]
        else:
            put(t, f"{self.pickup_p}{q}: uid=0 from=<root>")
            cl = self.pick("cleanup")
            sender = f"root@{MYNAME}"
            rcpts = []
        mid = f"<{self.compact(t)}.{q}@{MYNAME}>"
        put(t, f"{cl}{q}: message-id={mid}")
        size = 600 + int(r() * 3000)
        put(t, f"{self.qmgr}{q}: from=<{sender}>, size={size}, nrcpt=1 (queue active)")
        if rcpts:
            self.deliver(t + int(r() * 2), q, sender, rcpts, size=size, mid=mid, notify=False)
        else:
            delay, delays = self._fast_delays[int(r() * 1024)]
            put(
                t,
                f"{self.pick('local')}{q}: to=<postmaster@{LOCAL_LMTP}>, orig_to=<root>, "
                f"relay=local, delay={delay}, delays={delays}, dsn=2.0.0, status=sent "
                "(delivered to mailbox)",
            )
            put(t, f"{self.qmgr}{q}: removed")
        self.count("pickup")

    # ---------------------------------------------------------------- hostile background

    def bot(self) -> Client:
        return self.bots[int(self.r() * len(self.bots))]

    def postscreen_drop(self, t: int) -> None:
        """Zombies that never reach smtpd: DNSBL hits, pregreeting, early hangups."""
        r = self.r
        put = self.put
        b = self.bot()
        port = 1024 + int(r() * 64000)
        ps = self.postscreen
        put(t, f"{ps}CONNECT from [{b.ip}]:{port} to [{LIP6 if ':' in b.ip else LIP4}]:25")
        k = r()
        if k < 0.55:
            put(t, f"{ps}DNSBL rank {2 + int(r() * 5)} for [{b.ip}]:{port}")
            rc = self.user().addr if r() < 0.7 else f"{BOT_USERS[int(r() * 25)]}@{LOCAL_LMTP}"
            put(
                t + 1,
                f"{ps}NOQUEUE: reject: RCPT from [{b.ip}]:{port}: 550 5.7.1 Service "
                f"unavailable; client [{b.ip}] blocked using zen.spamhaus.org; "
                f"from=<{self.spam_sender()}>, to=<{rc}>, proto=ESMTP, helo=<{self.helo()}>",
            )
            put(t + 1, f"{ps}DISCONNECT [{b.ip}]:{port}")
        elif k < 0.8:
            put(
                t,
                f"{ps}PREGREET 11 after 0.{int(r() * 90) + 10} from [{b.ip}]:{port}: "
                r"EHLO User\r\n",
            )
            put(t + 1, f"{ps}DISCONNECT [{b.ip}]:{port}")
        elif k < 0.92:
            put(t, f"{ps}HANGUP after {r() * 3:.1f} from [{b.ip}]:{port} in tests before SMTP handshake")
            put(t, f"{ps}DISCONNECT [{b.ip}]:{port}")
        else:
            put(
                t,
                f"{ps}COMMAND PIPELINING from [{b.ip}]:{port} after EHLO: "
                r"MAIL FROM:<info@example.com>\r\n",
            )
            put(t, f"{ps}DISCONNECT [{b.ip}]:{port}")
        self.count("postscreen_drop")

    def spam_sender(self) -> str:
        r = self.r
        return f"{self._b64tok[int(r() * 4096)][:6].lower()}@{SPAM_DOMAINS[int(r() * 8)]}"

    def helo(self) -> str:
        k = self.r()
        return (
            "User"
            if k < 0.2
            else "ylmf-pc"
            if k < 0.3
            else f"[{self.bot().ip}]"
            if k < 0.5
            else f"mail.{SPAM_DOMAINS[int(self.r() * 8)]}"
        )

    def smtpd_reject(self, t: int) -> None:
        """NOQUEUE rejects at RCPT: relay attempts, RBL hits, dictionary attacks on users."""
        r = self.r
        put = self.put
        b = self.bot() if r() < 0.85 else self.mtas[int(r() * len(self.mtas))]
        sp = self.acquire(self.smtpd)
        put(t, f"{sp}connect from {b.host}[{b.ip}]")
        k = r()
        sender = self.spam_sender()
        helo = self.helo()
        if k < 0.35:
            rc = self.remote_addr()
            reply = (
                f"454 4.7.1 <{rc}>: Relay access denied"
                if r() < 0.3
                else f"554 5.7.1 <{rc}>: Relay access denied"
            )
        elif k < 0.6:
            rc = self.user().addr
            reply = (
                f"554 5.7.1 Service unavailable; Client host [{b.ip}] blocked using "
                f"zen.spamhaus.org; https://www.spamhaus.org/query/ip/{b.ip}"
            )
        elif k < 0.9:
            rc = f"{FIRST[int(r() * 60)]}{int(r() * 99)}@{LOCAL_LMTP}"
            reply = f"550 5.1.1 <{rc}>: Recipient address rejected: User unknown in virtual mailbox table"
        else:
            rc = self.user().addr
            reply = f"450 4.7.25 Client host rejected: cannot find your hostname, [{b.ip}]"
        t1 = t + int(r() * 2)
        put(
            t1,
            f"{sp}NOQUEUE: reject: RCPT from {b.host}[{b.ip}]: {reply}; from=<{sender}> "
            f"to=<{rc}> proto=ESMTP helo=<{helo}>",
        )
        if r() < 0.3:
            put(t1, f"{sp}lost connection after RCPT from {b.host}[{b.ip}]")
            disc = "ehlo=1 mail=1 rcpt=0/1 commands=2/3"
        else:
            disc = "ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4"
        put(t1, f"{sp}disconnect from {b.host}[{b.ip}] {disc}")
        self.free(self.smtpd, sp, t1)
        self.count("smtpd_reject")

    def sasl_fail(self, t: int, b: Client, username: str) -> None:
        """One failed SMTP AUTH session; Dovecot's auth logs its side of the same attempt."""
        r = self.r
        put = self.put
        k = r()
        pool = self.smtpd if k < 0.55 else self.submission if k < 0.85 else self.submissions
        sp = self.acquire(pool)
        put(t, f"{sp}connect from {b.host}[{b.ip}]")
        method = "LOGIN" if r() < 0.7 else "PLAIN"
        reason = "UGFzc3dvcmQ6" if method == "LOGIN" and r() < 0.4 else "(reason unavailable)"
        t1 = t + 1 + int(r() * 3)
        known = username in self.user_set
        self.dput(
            t1, "auth", f"passwd-file({username},{b.ip}): {'Password mismatch' if known else 'unknown user'}"
        )
        put(
            t1,
            f"{sp}warning: {b.host}[{b.ip}]: SASL {method} authentication failed: {reason}, "
            f"sasl_username={username}",
        )
        ehlo = "ehlo=2 starttls=1 " if pool is self.submission else "ehlo=1 "
        n = 3 if pool is self.submission else 1
        if r() < 0.5:
            put(t1, f"{sp}lost connection after AUTH from {b.host}[{b.ip}]")
            put(t1, f"{sp}disconnect from {b.host}[{b.ip}] {ehlo}auth=0/1 commands={n}/{n + 1}")
        else:
            put(t1, f"{sp}disconnect from {b.host}[{b.ip}] {ehlo}auth=0/1 quit=1 commands={n + 1}/{n + 2}")
        self.free(pool, sp, t1)

    def guess_name(self) -> str:
        """A login a bot tries: harvested real addresses (uniformly, bots don't know who is
        busy), role accounts, bare role names."""
        r = self.r
        k = r()
        if k < 0.45:
            return self.users[int(r() * len(self.users))].addr
        name = self.bot_names[int(r() * len(self.bot_names))]
        return f"{name}@{LOCAL_LMTP}" if k < 0.8 else name

    def guesser(self) -> Client:
        """An address of a password-guessing botnet: mostly one of ~60k IPv6 hosts, rarely IPv4.

        Real botnets rotate through far more addresses than the 199 IPv4 documentation
        addresses we can use, so each address makes only a few attempts a day; reusing a
        small pool would turn background noise into thousands of slow password sprays.
        """
        r = self.r
        if r() < 0.04:
            return self.bots[int(r() * 199)]
        k = int(r() * 60000)
        ip = f"2001:db8:{0x8000 + (k >> 4):x}:{(k * 40503) % 0xFFFE + 1:x}::{(k * 9973) % 0xFFFE + 1:x}"
        return self._client(ip, "unknown")

    def sasl_bot(self, t: int) -> None:
        """Low-and-slow distributed guessing: each bot address tries only a few times."""
        b = self.guesser()
        name = self.guess_name()  # one login per visit, several passwords
        for i in range(1 + int(self.r() * 3)):
            self.sasl_fail(t + i * 7, b, name)
        self.count("sasl_bot")

    def imap_bot(self, t: int) -> None:
        r = self.r
        b = self.guesser()
        sess = self.session(b)
        name = self.guess_name()
        n = 1 + int(r() * 3)
        for i in range(n):
            self.dput(
                t + i * 2,
                "auth",
                f"passwd-file({name},{b.ip},<{sess}>): "
                f"{'Password mismatch' if name in self.user_set else 'unknown user'}",
            )
        lip = LIP6 if ":" in b.ip else LIP4
        proto = "imap-login" if r() < 0.8 else "pop3-login"
        self.dput(
            t + n * 2,
            proto,
            f"Disconnected: Connection closed (auth failed, {n} attempts "
            f"in {n * 2} secs): user=<{name}>, method=PLAIN, rip={b.ip}, "
            f"lip={lip}, TLS, session=<{sess}>",
        )
        self.count("imap_bot")

    def scanner(self, t: int) -> None:
        """Port scanners and broken clients: the odd lines every real log carries."""
        r = self.r
        put = self.put
        b = self.bot()
        k = r()
        if k < 0.3:
            b4 = self.bots[int(r() * 199)]
            sess = self.session(b4)
            tls = (
                ("TLS handshaking: SSL_accept() failed: error:0A00006C:SSL routines::bad key share, ")
                if r() < 0.3
                else ""
            )
            self.dput(
                t,
                "imap-login",
                f"Disconnected: Connection closed (no auth attempts in "
                f"{int(r() * 3)} secs): user=<>, rip={b4.ip}, lip={LIP4}, "
                f"{tls}session=<{sess}>",
            )
            self.count("scanner")
            return
        pool = self.submission if k < 0.5 else self.smtpd
        sp = self.acquire(pool)
        if r() < 0.15:
            fake = f"mail.{SPAM_DOMAINS[int(r() * 8)]}"
            put(
                t,
                f"{sp}warning: hostname {fake} does not resolve to address {b.ip}: Name or service not known",
            )
        put(t, f"{sp}connect from {b.host}[{b.ip}]")
        k = r()
        if k < 0.35:
            put(t, f"{sp}lost connection after CONNECT from {b.host}[{b.ip}]")
            disc = "commands=0/0"
        elif k < 0.55:
            put(t, f"{sp}warning: non-SMTP command from {b.host}[{b.ip}]: GET / HTTP/1.1")
            disc = "unknown=0/1 commands=0/1"
        elif k < 0.75:
            put(t + 1, f"{sp}SSL_accept error from {b.host}[{b.ip}]: -1")
            put(
                t + 1,
                f"{sp}warning: TLS library problem: error:0A000102:SSL routines::"
                "unsupported protocol:../ssl/statem/statem_srvr.c:1657:",
            )
            put(t + 1, f"{sp}lost connection after STARTTLS from {b.host}[{b.ip}]")
            disc = "ehlo=1 starttls=0/1 commands=1/2"
        elif k < 0.9:
            put(
                t + 1,
                f"{sp}improper command pipelining after EHLO from {b.host}[{b.ip}]: "
                r"MAIL FROM:<>\r\nRCPT TO:<postmaster@" + LOCAL_LMTP + r">\r\n",
            )
            disc = "ehlo=1 commands=1"
        else:
            put(t + 30, f"{sp}timeout after EHLO from {b.host}[{b.ip}]")
            disc = "ehlo=1 commands=1"
            t += 29
        put(t + 1, f"{sp}disconnect from {b.host}[{b.ip}] {disc}")
        self.free(pool, sp, t + 1)
        self.count("scanner")

    def oddity(self, t: int) -> None:
        """Rare daemon chatter: restarts, limits, TLS and DNS warnings."""
        r = self.r
        k = r()
        if k < 0.2:
            self.put(
                t,
                f"{self.master}warning: process /usr/lib/postfix/sbin/smtpd pid "
                f"{self._newpid()} exit status 1",
            )
            self.put(
                t, f"{self.master}warning: /usr/lib/postfix/sbin/smtpd: bad command startup -- throttling"
            )
        elif k < 0.35:
            self.dput(
                t,
                "master",
                "service(imap-login): process_limit (100) reached, client connections are being dropped",
                "Warning",
            )
        elif k < 0.55:
            m = self.mtas[int(r() * len(self.mtas))]
            self.put(
                t,
                f"{self.pick('smtp')}warning: TLS library problem: error:0A000086:SSL "
                "routines::certificate verify failed:../ssl/statem/statem_clnt.c:1889:",
            )
            self.put(
                t,
                f"{self.pick('smtp')}Untrusted TLS connection established to {m.host}[{m.ip}]:25: {TLS_OUT}",
            )
        elif k < 0.7:
            self.put(
                t,
                f"{self.tlsmgr}warning: request to update table btree:/var/lib/postfix/"
                "smtpd_scache in non-postfix directory /var/lib/postfix",
            )
        elif k < 0.85:
            u = self.user()
            self.dput(
                t,
                f"imap({u.addr})<{self._newpid()}><{self._b64tok[int(r() * 4096)]}AA>",
                f"Maildir /var/vmail/{u.addr.split('@')[1]}/"
                f"{u.addr.split('@')[0]}/Maildir: Synchronization took {31 + int(r() * 60)} "
                "seconds (0 new msgs, 0 flag change attempts, 0 expunge attempts)",
                "Warning",
            )
        else:
            self.put(
                t,
                f"{self.pick('smtp')}warning: {self.mtas[0].host}[{self.mtas[0].ip}]:25 "
                "offered null AUTH mechanism list",
            )
        self.count("oddity")

    def anvil(self, t: int) -> None:
        """anvil(8) statistics every anvil_status_update_time (600 s) while clients come."""
        r = self.r
        hot = self.bf_active(t)
        b = self.bruteforce if hot else self.bot()
        at = self._stamps(t)[0].strip()
        p = self.anvil_p
        self.put(
            t,
            f"{p}statistics: max connection rate {(19 if hot else 2) + int(r() * 6)}/60s "
            f"for (smtp:{b.ip}) at {at}",
        )
        self.put(
            t,
            f"{p}statistics: max connection count {(3 if hot else 1) + int(r() * 2)} for "
            f"(smtp:{b.ip}) at {at}",
        )
        if hot:
            self.put(
                t, f"{p}statistics: max auth rate {14 + int(r() * 6)}/60s for (submission:{b.ip}) at {at}"
            )
        self.put(t, f"{p}statistics: max cache size {4 + int(r() * 30)} at {at}")
        if r() < 0.1:
            self.anvil_p = self._prefix("postfix/anvil")
        self.count("anvil")

    def scache(self, t: int) -> None:
        r = self.r
        p = self.scache_p
        at = self._stamps(t - 3600)[0].strip()
        self.put(t, f"{p}statistics: start interval {at}")
        h, m = int(r() * 40), 20 + int(r() * 200)
        self.put(t, f"{p}statistics: domain lookup hits={h} miss={m} success={100 * h // (h + m)}%")
        h, m = int(r() * 30), 20 + int(r() * 200)
        pct = 100 * h // (h + m)
        self.put(t, f"{p}statistics: address lookup hits={h} miss={m} success={pct}%")
        self.put(t, f"{p}statistics: max simultaneous domains=1 addresses=1 connection=1")
        self.count("scache")

    # ---------------------------------------------------------------- incidents

    def plan_incidents(self, span: float) -> None:
        """Place the two incidents at fixed fractions of the expected span.

        One address hammers SMTP AUTH for ~3 hours (25-35 % into the file); one account,
        whose password leaked, first gets a probing IMAP login and then sends a 45-minute
        spam burst from six addresses (60 % in). Short files get shorter incidents.
        """
        self.bruteforce = self._client("203.0.113.250", "unknown")
        self.bf_start = span * 0.25
        self.bf_end = self.bf_start + min(3 * 3600, span * 0.1)
        victim = self.users[self.user_table[17]]
        self.victim = victim
        self.attackers = [self._client(f"203.0.113.{i}", "unknown") for i in range(201, 206)]
        self.attackers.append(self._client("2001:db8:f00d:77::2", "unknown"))
        self.burst_start = span * 0.6
        self.burst_end = self.burst_start + min(45 * 60, span * 0.05)
        self.probe_at = max(1.0, self.burst_start - min(2 * 3600, span * 0.04))
        tr = self.truth
        tr.compromised_user = victim.addr
        tr.compromised_clients = [a.ip for a in self.attackers]
        tr.burst_start, tr.burst_end = self.iso(self.burst_start), self.iso(self.burst_end)
        tr.probe_login = self.iso(self.probe_at)
        tr.bruteforce_ip = self.bruteforce.ip
        tr.bruteforce_targets = [
            f"info@{LOCAL_LMTP}",
            f"admin@{LOCAL_LMTP}",
            f"sales@{LOCAL_LMTP}",
            *(self.users[i].addr for i in (3, 250, 1200)),
        ]
        tr.bruteforce_start, tr.bruteforce_end = self.iso(self.bf_start), self.iso(self.bf_end)

    def bf_active(self, t: float) -> bool:
        return self.bf_start <= t < self.bf_end

    def brute(self, t: int) -> None:
        """One address hammering a handful of accounts with a password list."""
        b = self.bruteforce
        targets = self.truth.bruteforce_targets
        self.sasl_fail(t, b, targets[int(self.r() * len(targets))])
        self.truth.bruteforce_attempts += 1
        self.count("bruteforce")

    def burst(self, t: int) -> None:
        c = self.attackers[int(self.r() * len(self.attackers))]
        self.truth.burst_recipients += self.submit(t, self.victim, c, spammy=True)
        self.truth.burst_messages += 1
        self.count("burst")

    def probe(self, t: int) -> None:
        self.imap(t, self.victim, self.attackers[0])
        self.count("probe")

    # ---------------------------------------------------------------- main loop

    def run(self, out: TextIO, dvout: TextIO | None, rate: float) -> None:
        """Fire activity streams in time order until ``n_lines`` lines are written.

        Each stream is (fire, next-arrival); a small heap merges them. Human traffic
        follows the clock (busy days, quiet nights); hostile traffic is flat, as bots do.
        """
        self.plan_incidents(self.n_lines / rate)
        r = self.r
        expo = self.rng.expovariate
        human: Table = (
            (0.42, self.inbound),
            (0.545, self.submission_human),
            (0.962, self.imap),
            (0.997, self.pickup),
            (1.0, self.typo),
        )
        noise: Table = (
            (0.26, self.postscreen_drop),
            (0.52, self.smtpd_reject),
            (0.73, self.sasl_bot),
            (0.86, self.imap_bot),
            (0.985, self.scanner),
            (1.0, self.oddity),
        )
        hour_mult = self._hour_mult
        epoch_hour = self.epoch0 // 3600

        def pick(table: Table) -> Fire:
            k = r()
            for bound, fn in table:
                if k < bound:
                    return fn
            return table[-1][1]

        def next_human(t: float) -> float:
            return t + expo(self.human_rate * hour_mult[(epoch_hour + int(t) // 3600) % 24])

        def next_noise(t: float) -> float:
            return t + expo(self.noise_rate)

        def periodic(period: float) -> Next:
            return lambda t: t + period + r() * 20

        def windowed(lo: float, hi: float, gap: float) -> Next:
            return lambda t: t if (t := max(t + 1 + r() * gap, lo)) < hi else math.inf

        def fire_human(t: int) -> None:
            pick(human)(t)

        def fire_noise(t: int) -> None:
            pick(noise)(t)

        streams: list[tuple[Fire, Next]] = [
            (fire_human, next_human),
            (fire_noise, next_noise),
            (self.anvil, periodic(600)),
            (self.scache, periodic(3600)),
            (self.brute, windowed(self.bf_start, self.bf_end, 5.0)),
            (self.burst, windowed(self.burst_start, self.burst_end, 6.0)),
            (self.probe, windowed(self.probe_at, self.probe_at + 1, 0.0)),
        ]
        heap = [(nxt(0.0), i) for i, (_, nxt) in enumerate(streams)]
        heap = [(t, i) for t, i in heap if t != math.inf]
        heapq.heapify(heap)
        while heap:
            t, i = heap[0]
            sec = int(t)
            if sec > self.now and self.flush_until(sec, out, dvout):
                return
            fire, nxt = streams[i]
            fire(sec)
            t = nxt(t)
            if t == math.inf:
                heapq.heappop(heap)
            else:
                heapq.heapreplace(heap, (t, i))


def hash_dom(dom: str) -> int:
    """A stable (non-randomised) hash, so a domain always has the same MX across runs."""
    h = 0
    for ch in dom:
        h = (h * 131 + ord(ch)) & 0xFFFFFFF
    return h


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=1_000_000, help="total lines to write")
    ap.add_argument("--out", type=Path, required=True, help="syslog file (Postfix + Dovecot)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--start",
        default="2026-11-01T00:00:00",
        help="time of the first line (local, naive); e.g. 2026-10-31T18:00:00 crosses a month end",
    )
    ap.add_argument(
        "--rate", type=float, default=10.0, help="mean lines per simulated second (10 => 1M lines span ~30 h)"
    )
    ap.add_argument(
        "--dovecot-file", type=Path, help="write Dovecot lines here in its own log_path format instead"
    )
    ap.add_argument("--manifest", type=Path, help="write incident ground truth + counts as JSON")
    args = ap.parse_args(argv)
    start = datetime.fromisoformat(args.start).replace(tzinfo=None)  # syslog has no zone
    sim = Simulator(args.seed, start, args.rate, args.lines, args.dovecot_file is not None)
    t0 = time.perf_counter()
    with open(args.out, "w", encoding="utf-8", buffering=1 << 20, newline="\n") as out:
        if args.dovecot_file is not None:
            with open(args.dovecot_file, "w", encoding="utf-8", buffering=1 << 20, newline="\n") as dvout:
                sim.run(out, dvout, args.rate)
        else:
            sim.run(out, None, args.rate)
    elapsed = time.perf_counter() - t0
    end = sim.start + timedelta(seconds=sim.now)
    summary = {
        "lines": sim.emitted,
        "seconds": round(elapsed, 3),
        "lines_per_second": int(sim.emitted / elapsed) if elapsed else None,
        "seed": args.seed,
        "first": sim.start.isoformat(),
        "last": end.isoformat(),
        "activities": dict(sorted(sim.counts.items())),
        "incidents": sim.truth.__dict__,
    }
    if args.manifest is not None:
        args.manifest.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(
        f"wrote {sim.emitted} lines ({sim.start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M}) in "
        f"{elapsed:.2f} s: {summary['lines_per_second']} lines/s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
