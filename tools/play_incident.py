#!/usr/bin/env python3
"""Play a scripted mail-abuse incident against a real, fresh Postfix + Dovecot stack and keep the
logs the daemons wrote.

    python tools/play_incident.py --out examples/incident                       # the sample
    python tools/play_incident.py --scenario injection --out examples/injection

Needs root and the Debian packages from scripts/install-test-deps.sh. Everything runs on
127.0.0.1 (see tests/integration/mailstack.py); client addresses are *claimed* (HAProxy PROXY
header for SMTP, IMAP ``ID x-originating-ip``, POP3 ``XCLIENT``), so the logs look as if the
clients came from the TEST-NET addresses below. ``examples/lab-geo.mmdb`` maps them to
countries. The content is deterministic for a given ``--seed`` (timestamps, PIDs, queue ids and
the interleaving of concurrent clients are not).

Writes OUT/mail.log (Postfix, postlogd), OUT/dovecot.log (Dovecot log_path) exactly as written,
and OUT/truth.json: what was played (actors, addresses, logins, messages, recipients by kind) --
the ground truth for tests of the detectors.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from mailstack import MailStack, make_message  # noqa: E402

USERS: dict[str, str] = {
    "alice@lab.test": "alice-secret",
    "bob@lab.test": "bob-secret",
    "carol@lab.test": "carol-secret",
    "dave@lab.test": "dave-secret",
    "erin@lab.test": "erin-secret",
    "mallory@lab.test": "mallory-secret",
    "news@lab.test": "news-secret",
}

#: Lab geo db (examples/lab-geo.mmdb): prefix -> country.
GEO: dict[str, str] = {
    "203.0.113.0/26": "IN",
    "203.0.113.64/26": "IT",
    "203.0.113.128/26": "BR",
    "203.0.113.192/26": "NG",
    "198.51.100.0/25": "RU",
    "198.51.100.128/25": "CN",
    "192.0.2.0/25": "DE",
    "192.0.2.128/25": "FR",
    "2001:db8:bad::/48": "NG",
}

OFFICE_ALICE = "192.0.2.10"
OFFICE_ALICE_2 = "192.0.2.11"
OFFICE_BOB = "192.0.2.10"
OFFICE_DAVE = "192.0.2.20"
OFFICE_ERIN = "192.0.2.12"
OFFICE_NEWS = "192.0.2.30"
DAVE_MOBILE_FR = "192.0.2.140"
BRUTE_RU = "198.51.100.23"
SPRAY_CN = "198.51.100.150"
BOB_FIRST_IN = "203.0.113.10"
BOB_SPAM = [  # (address, country, SMTP sessions, port)
    ("203.0.113.10", "IN", 2, "submission"),
    ("203.0.113.70", "IT", 4, "submission"),
    ("203.0.113.140", "BR", 5, "smtp"),
    ("203.0.113.200", "NG", 5, "submission"),
    ("2001:db8:bad::25", "NG", 4, "submission"),
]

FIRST = [
    "anna",
    "ben",
    "carla",
    "dmitri",
    "elena",
    "farid",
    "grace",
    "hugo",
    "ines",
    "jonas",
    "kofi",
    "lena",
    "marco",
    "nadia",
    "omar",
    "paula",
    "quentin",
    "rosa",
    "sven",
    "tariq",
    "ursula",
    "viktor",
    "wendy",
    "xavier",
    "yara",
    "zoe",
    "li",
    "mei",
    "raj",
    "sofia",
]
LAST = [
    "schmidt",
    "garcia",
    "rossi",
    "silva",
    "okafor",
    "kumar",
    "novak",
    "dubois",
    "jensen",
    "tanaka",
    "smith",
    "moreau",
    "costa",
    "adeyemi",
    "weber",
    "ivanova",
    "haddad",
    "lopez",
]
EXT_DOMAINS = [
    "example.com",
    "example.net",
    "example.org",
    "mx1.example.com",
    "mail.example.net",
    "post.example.org",
    "shop.example.com",
    "users.example.net",
    "webmail.example.org",
    "eu.example.com",
    "customers.example.net",
    "members.example.org",
    "inbox.example.com",
    "mail2.example.net",
    "corp.example.org",
    "home.example.com",
    "students.example.net",
    "alumni.example.org",
    "isp1.example.com",
    "isp2.example.net",
    "cloud.example.org",
    "mx2.example.com",
    "online.example.net",
    "club.example.org",
]
SPAM_SUBJECTS = [
    "Your invoice #{n} is overdue",
    "Payment confirmation {n}",
    "Re: Order {n}",
    "Urgent: verify your account",
    "You have (1) pending parcel",
    "Final notice {n}",
    "Congratulations! You were selected",
    "Document shared with you",
    "Re: Re: contract {n}",
    "Unusual sign-in activity",
    "Your mailbox is almost full",
    "Bonus payout {n}",
]
SPAM_LINKS = [
    "https://pay-verify.example/i/{n}",
    "https://parcel-track.example/{n}",
    "https://docs-share.example/view?id={n}",
    "https://bonus-claim.example/{n}",
]
BRUTE_PASSWORDS = [
    "123456",
    "password",
    "carol123",
    "Carol2024",
    "qwerty",
    "letmein",
    "welcome1",
    "Passw0rd!",
    "carol",
    "lab.test2024",
    "iloveyou",
    "111111",
    "abc123",
    "Summer2024",
    "dragon",
    "monkey",
    "football",
    "carol!",
    "master",
    "sunshine",
    "admin",
    "admin123",
    "Welcome1",
    "changeme",
    "princess",
]
FORGED_DOMAINS = ["paypa1.example", "dhl-parcel.example", "bank-secure.example"]
SPRAY_ACCOUNTS = [
    "admin",
    "info",
    "sales",
    "support",
    "office",
    "contact",
    "webmaster",
    "billing",
    "hr",
    "test",
    "alice",
    "mallory",
]
SPRAY_PASSWORDS = ["Welcome2024!", "Lab.test123"]


class Player:
    """Runs the actors against a started MailStack and records what it did (truth)."""

    def __init__(self, stack: MailStack, seed: int) -> None:
        self.stack = stack
        self.seed = seed
        self.lock = threading.Lock()
        self.actors: dict[str, dict[str, Any]] = {}
        self.counts: dict[str, Counter[str]] = defaultdict(Counter)
        self.ips: dict[str, set[str]] = defaultdict(set)
        self.by_ip: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
        self.log: list[str] = []

    def rng(self, name: str) -> random.Random:
        return random.Random(f"{self.seed}:{name}")  # noqa: S311 - test data, not crypto

    def actor(self, name: str, role: str, flag: bool, story: str) -> None:
        self.actors[name] = {"role": role, "should_be_flagged": flag, "story": story}

    def note(self, actor: str, ip: str | None, **counts: int) -> None:
        with self.lock:
            self.counts[actor].update(counts)
            self.by_ip[actor][ip or "local"].update(counts)
            if ip:
                self.ips[actor].add(ip)

    def phase(self, title: str) -> None:
        self.log.append(f"{time.strftime('%H:%M:%S')} {title}")
        print(f"[play] {title}", file=sys.stderr, flush=True)

    # ---- primitives ---------------------------------------------------------------------
    def smtp_fail(
        self,
        actor: str,
        ip: str,
        user: str,
        passwords: Sequence[str],
        *,
        port: str = "submission",
        mech: str = "LOGIN",
        helo: str = "User",
    ) -> None:
        """One SMTP connection, one AUTH attempt per password, all expected to fail."""
        with self.stack.smtp_session(claim_ip=ip, port=port, helo=helo) as s:
            for pw in passwords:
                if s.auth(user, pw, mech):
                    raise RuntimeError(f"{actor}: unexpected AUTH success for {user}")
                self.note(actor, ip, smtp_auth_failed=1)

    def imap_fail(self, actor: str, ip: str, user: str, passwords: Sequence[str]) -> None:
        if self.stack.imap_try(user, passwords, ip) is not None:
            raise RuntimeError(f"{actor}: unexpected IMAP success for {user}")
        self.note(actor, ip, imap_failed=len(passwords))

    def imap_ok(self, actor: str, ip: str, user: str) -> None:
        if not self.stack.imap_login(user, USERS[user], ip):
            raise RuntimeError(f"{actor}: IMAP login failed for {user}")
        self.note(actor, ip, imap_ok=1)

    def pop3_ok(self, actor: str, ip: str, user: str) -> None:
        if not self.stack.pop3_login(user, USERS[user], ip):
            raise RuntimeError(f"{actor}: POP3 login failed for {user}")
        self.note(actor, ip, pop3_ok=1)

    def send_session(
        self,
        actor: str,
        ip: str,
        user: str,
        messages: Sequence[tuple[str, list[str], bytes]],
        *,
        port: str = "submission",
        mech: str = "PLAIN",
        helo: str = "client.example",
    ) -> list[str]:
        """One authenticated SMTP session sending ``messages`` (sender, rcpts, bytes)."""
        qids = []
        with self.stack.smtp_session(claim_ip=ip, port=port, helo=helo) as s:
            if not s.auth(user, USERS[user], mech):
                raise RuntimeError(f"{actor}: AUTH failed for {user}")
            self.note(actor, ip, smtp_auth_ok=1)
            for sender, rcpts, data in messages:
                r = s.send(sender, rcpts, data)
                if r.queue_id is None:
                    raise RuntimeError(f"{actor}: message refused: {r}")
                qids.append(r.queue_id)
                kinds = Counter(_kind(x) for x in rcpts)
                self.note(
                    actor,
                    ip,
                    messages=1,
                    recipients=len(rcpts),
                    **{f"rcpt_{k}": v for k, v in kinds.items()},
                )
        return qids


def _kind(addr: str) -> str:
    local, _, domain = addr.partition("@")
    if domain == "lab.test":
        return "local"
    for k in ("block", "rate", "nouser", "full"):
        if local.startswith(k):
            return k
    return "ok"


def _person(r: random.Random) -> str:
    f, last = r.choice(FIRST), r.choice(LAST)
    return r.choice([f"{f}.{last}", f"{f[0]}.{last}", f"{f}{last[0]}", f"{f}.{last}{r.randint(1, 99)}"])


def spam_recipients(r: random.Random, n: int) -> list[str]:
    out: list[str] = []
    while len(out) < n:
        x = r.random()
        local = _person(r)
        if x < 0.08:
            local = "block-" + local
        elif x < 0.12:
            local = "rate-" + local
        elif x < 0.18:
            local = "nouser-" + local
        elif x < 0.19:
            local = "full-" + local
        addr = f"{local}@{r.choice(EXT_DOMAINS)}"
        if addr not in out:
            out.append(addr)
    return out


def spam_message(r: random.Random, sender: str, rcpts: list[str]) -> bytes:
    n = r.randint(10000, 99999)
    subject = r.choice(SPAM_SUBJECTS).format(n=n)
    link = r.choice(SPAM_LINKS).format(n=n)
    body = (
        f"Dear customer,\n\nplease review the attached notice and confirm within 24 hours:\n"
        f"{link}\n\nKind regards,\nAccounts Department\n"
    )
    return make_message(
        sender,
        rcpts,
        subject,
        body,
        rng=r,
        msgid_domain=r.choice(["lab.test", "mail.example.org", "localhost"]),
    )


def office_message(r: random.Random, sender: str, rcpts: list[str], subject: str) -> bytes:
    name = sender.split("@", maxsplit=1)[0].title()
    body = f"Hi,\n\n{subject.lower()} -- see you tomorrow.\n\nBest,\n{name}\n"
    return make_message(sender, rcpts, subject, body, rng=r)


def _parallel(jobs: Sequence[Callable[[], Any]], workers: int) -> list[Any]:
    with ThreadPoolExecutor(max_workers=workers) as ex:
        futures = [ex.submit(j) for j in jobs]
        return [f.result() for f in futures]


# ---- the sample incident -------------------------------------------------------------------


def play_sample(p: Player) -> None:
    p.actor(
        "alice",
        "employee, office DE",
        False,
        "IMAP + POP3 from the office (192.0.2.10/.11), a few messages",
    )
    p.actor(
        "bob",
        "employee, CRACKED",
        True,
        "office mail from 192.0.2.10, then failed logins, a success and spam bursts from "
        "IN, IT, BR, NG (v4 + v6)",
    )
    p.actor(
        "carol",
        "employee, brute-force target",
        False,
        "never logs in herself; ~18 wrong passwords against her from 198.51.100.23",
    )
    p.actor(
        "dave",
        "employee, traveller",
        False,
        "office 192.0.2.20, later 192.0.2.140 (FR, mobile): one new country",
    )
    p.actor("erin", "employee, typos", False, "3 wrong passwords from the office, then success")
    p.actor(
        "news",
        "newsletter sender",
        False,
        "60 messages from the office 192.0.2.30, 2 unknown recipients",
    )
    p.actor(
        "brute-ru",
        "attacker 198.51.100.23 (RU)",
        True,
        "25 wrong passwords, SMTP AUTH + IMAP, carol and a few others; never succeeds",
    )
    p.actor(
        "spray-cn",
        "attacker 198.51.100.150 (CN)",
        True,
        "1-2 passwords each against 12 accounts (mostly unknown); never succeeds",
    )

    # -- 1. a normal morning at the office ------------------------------------------------
    p.phase("1 office morning: alice, bob, dave, erin, newsletter")

    def alice_morning() -> None:
        r = p.rng("alice")
        p.imap_ok("alice", OFFICE_ALICE, "alice@lab.test")
        p.pop3_ok("alice", OFFICE_ALICE_2, "alice@lab.test")
        msgs = []
        for subj, rc in (
            ("Quarterly figures", ["j.novak@example.com"]),
            ("Lunch?", ["bob@lab.test"]),
            ("Meeting notes", ["paula.costa@example.net", "dave@lab.test"]),
        ):
            msgs.append(("alice@lab.test", rc, office_message(r, "alice@lab.test", rc, subj)))
        p.send_session("alice", OFFICE_ALICE, "alice@lab.test", msgs, helo="[192.0.2.10]")

    def bob_morning() -> None:
        r = p.rng("bob-office")
        p.imap_ok("bob", OFFICE_BOB, "bob@lab.test")
        for subj, rc in (
            ("Re: Lunch?", ["alice@lab.test"]),
            ("Offer 2291", ["sales@example.org"]),
            ("Delivery date", ["l.weber@example.com", "ines.silva@example.net"]),
        ):
            p.send_session(
                "bob",
                OFFICE_BOB,
                "bob@lab.test",
                [("bob@lab.test", rc, office_message(r, "bob@lab.test", rc, subj))],
                helo="bob-pc.lab.test",
            )

    def dave_office() -> None:
        r = p.rng("dave")
        p.imap_ok("dave", OFFICE_DAVE, "dave@lab.test")
        for subj, rc in (
            ("Travel plan", ["alice@lab.test"]),
            ("Hotel booking", ["reservations@example.org"]),
        ):
            p.send_session(
                "dave",
                OFFICE_DAVE,
                "dave@lab.test",
                [("dave@lab.test", rc, office_message(r, "dave@lab.test", rc, subj))],
                helo="dave-laptop.lab.test",
            )

    def erin_typos() -> None:
        r = p.rng("erin")
        for typo in ("erin-secert", "Erin-secret", "erin-secret1"):
            p.imap_fail("erin", OFFICE_ERIN, "erin@lab.test", [typo])
        p.imap_ok("erin", OFFICE_ERIN, "erin@lab.test")
        rc = ["marco.rossi@example.com"]
        p.send_session(
            "erin",
            OFFICE_ERIN,
            "erin@lab.test",
            [("erin@lab.test", rc, office_message(r, "erin@lab.test", rc, "Invoice"))],
            helo="[192.0.2.12]",
        )

    def newsletter() -> None:
        r = p.rng("news")
        subscribers: list[str] = []
        while len(subscribers) < 58:
            a = f"{_person(r)}@{r.choice(EXT_DOMAINS)}"
            if a not in subscribers:
                subscribers.append(a)
        subscribers.insert(17, "nouser-old.subscriber@example.net")
        subscribers.insert(41, "nouser-k.meyer@mail.example.net")
        for chunk in (subscribers[:20], subscribers[20:40], subscribers[40:]):
            msgs = []
            for rcpt in chunk:
                body = (
                    "Lab Test GmbH newsletter, November edition.\n\nTo unsubscribe: https://news.lab.test/u\n"
                )
                msgs.append(
                    (
                        "news@lab.test",
                        [rcpt],
                        make_message(
                            "news@lab.test",
                            [rcpt],
                            "Lab Test news - November",
                            body,
                            rng=r,
                            headers={"List-Unsubscribe": "<https://news.lab.test/u>"},
                        ),
                    )
                )
            p.send_session("news", OFFICE_NEWS, "news@lab.test", msgs, helo="newsletter.lab.test")

    _parallel([alice_morning, bob_morning, dave_office, erin_typos, newsletter], workers=5)

    # -- 2. brute force and password spraying ----------------------------------------------
    p.phase("2 brute force 198.51.100.23 (RU) + password spraying 198.51.100.150 (CN)")
    r = p.rng("brute-ru")
    pw = list(BRUTE_PASSWORDS)
    r.shuffle(pw)
    brute_jobs: list[Callable[[], None]] = []
    smtp_brute = partial(p.smtp_fail, "brute-ru", BRUTE_RU, port="smtp", helo="ylmf-pc")
    imap_brute = partial(p.imap_fail, "brute-ru", BRUTE_RU)
    # carol: 12 SMTP AUTH (4 connections x 3 attempts, port 25, LOGIN), 6 IMAP (3 x 2)
    for i in range(4):
        brute_jobs.append(partial(smtp_brute, "carol@lab.test", pw[i * 3 : (i + 1) * 3]))
    for i in range(3):
        brute_jobs.append(partial(imap_brute, "carol@lab.test", pw[12 + i * 2 : 14 + i * 2]))
    # a few others: admin (3 SMTP), info (2 SMTP), alice (2 IMAP)
    brute_jobs.append(partial(smtp_brute, "admin@lab.test", pw[18:21]))
    brute_jobs.append(partial(smtp_brute, "info@lab.test", pw[21:23]))
    brute_jobs.append(partial(imap_brute, "alice@lab.test", pw[23:25]))

    spray_jobs: list[Callable[[], None]] = []
    rs = p.rng("spray-cn")
    for k, acct in enumerate(SPRAY_ACCOUNTS):
        user = f"{acct}@lab.test"
        tries = SPRAY_PASSWORDS if k % 2 == 0 else SPRAY_PASSWORDS[:1]
        for t in tries:
            if k % 4 == 3:
                spray_jobs.append(partial(p.imap_fail, "spray-cn", SPRAY_CN, user, [t]))
            else:
                spray_jobs.append(
                    partial(
                        p.smtp_fail,
                        "spray-cn",
                        SPRAY_CN,
                        user,
                        [t],
                        port="submission",
                        mech="PLAIN",
                        helo=f"[{SPRAY_CN}]",
                    )
                )
    rs.shuffle(spray_jobs)
    # each attacker uses 3 parallel connections; both attackers at the same time
    _parallel([partial(_parallel, brute_jobs, 3), partial(_parallel, spray_jobs, 3)], workers=2)

    # -- 3. bob's account is cracked ------------------------------------------------------
    p.phase("3 bob: failed logins from 203.0.113.10 (IN), then success")
    p.imap_fail("bob", BOB_FIRST_IN, "bob@lab.test", ["bob2024"])
    p.smtp_fail(
        "bob",
        BOB_FIRST_IN,
        "bob@lab.test",
        ["Bob-secret"],
        port="submission",
        mech="PLAIN",
        helo="DESKTOP-7Q2M1KD",
    )
    p.imap_fail("bob", BOB_FIRST_IN, "bob@lab.test", ["bob-s3cret"])
    p.imap_ok("bob", BOB_FIRST_IN, "bob@lab.test")

    # -- 4. spam bursts from several countries; normal users go on -------------------------
    p.phase("4 spam bursts with bob's password from IN, IT, BR, NG (v4+v6); dave travels")

    def burst(ip: str, cc: str, sessions: int, port: str) -> None:
        r = p.rng(f"burst-{ip}")
        forged = ip == "203.0.113.200"
        helo = {"IN": "DESKTOP-7Q2M1KD", "IT": "[203.0.113.70]", "BR": "User", "NG": "localhost"}[cc]
        for _ in range(sessions):
            msgs = []
            for _ in range(r.randint(8, 12)):
                rcpts = spam_recipients(r, r.randint(1, 10))
                sender = "bob@lab.test"
                if forged and r.random() < 0.5:
                    box = r.choice(["billing", "service", "noreply", "support"])
                    sender = f"{box}@{r.choice(FORGED_DOMAINS)}"
                msgs.append((sender, rcpts, spam_message(r, sender, rcpts)))
            p.send_session("bob", ip, "bob@lab.test", msgs, port=port, mech="LOGIN", helo=helo)

    def dave_travels() -> None:
        r = p.rng("dave-fr")
        p.imap_ok("dave", DAVE_MOBILE_FR, "dave@lab.test")
        rc = ["reservations@example.org"]
        p.send_session(
            "dave",
            DAVE_MOBILE_FR,
            "dave@lab.test",
            [("dave@lab.test", rc, office_message(r, "dave@lab.test", rc, "Re: Hotel booking"))],
            helo="[10.23.4.5]",
        )

    def alice_afternoon() -> None:
        r = p.rng("alice-pm")
        p.imap_ok("alice", OFFICE_ALICE, "alice@lab.test")
        rc = ["grace.okafor@example.org"]
        p.send_session(
            "alice",
            OFFICE_ALICE,
            "alice@lab.test",
            [("alice@lab.test", rc, office_message(r, "alice@lab.test", rc, "Signed contract"))],
            helo="[192.0.2.10]",
        )

    jobs: list[Callable[[], None]] = [partial(burst, *b) for b in BOB_SPAM]
    jobs += [dave_travels, alice_afternoon]
    _parallel(jobs, workers=len(jobs))


# ---- the injection scenario ----------------------------------------------------------------


def play_injection(p: Player) -> None:
    p.actor("alice", "employee, office DE", False, "normal mail from 192.0.2.10")
    p.actor(
        "www-data",
        "web server user, compromised contact form",
        True,
        "sendmail as www-data with X-PHP-Originating-Script: 33:contact.php, ~40 messages",
    )
    p.actor(
        "local-smtp",
        "unauthenticated SMTP from 127.0.0.1 (mynetworks)",
        True,
        "a local script/bot speaking SMTP to localhost:25, forged senders, ~25 messages",
    )
    p.actor(
        "relay-probe",
        "open-relay probe 198.51.100.77 (RU)",
        True,
        "unauthenticated relay attempts from outside, all refused",
    )

    p.phase("1 office: alice")
    r = p.rng("alice")
    p.imap_ok("alice", OFFICE_ALICE, "alice@lab.test")
    rc = ["j.novak@example.com"]
    p.send_session(
        "alice",
        OFFICE_ALICE,
        "alice@lab.test",
        [("alice@lab.test", rc, office_message(r, "alice@lab.test", rc, "Figures"))],
    )

    p.phase("2 web path: www-data sendmail (contact.php)")
    r = p.rng("www-data")
    for i in range(40):
        rcpts = spam_recipients(r, r.randint(1, 3))
        script = "33:contact.php" if i % 8 else "33:wp-content/uploads/2024/11/xl.php"
        eml = make_message(
            "Contact form <www-data@lab.test>",
            rcpts,
            r.choice(SPAM_SUBJECTS).format(n=r.randint(1000, 9999)),
            "Click here: https://bonus-claim.example/x\n",
            rng=r,
            headers={"X-PHP-Originating-Script": script},
        )
        p.stack.local_sendmail_as(eml)
        kinds = Counter(_kind(x) for x in rcpts)
        p.note(
            "www-data",
            None,
            messages=1,
            recipients=len(rcpts),
            **{f"rcpt_{k}": v for k, v in kinds.items()},
        )

    p.phase("3 telnet path: unauthenticated SMTP from 127.0.0.1")
    r = p.rng("local-smtp")
    for i in range(25):
        rcpts = spam_recipients(r, r.randint(1, 4))
        sender = f"security@{r.choice(['paypa1.example', 'bank-secure.example'])}"
        data = spam_message(r, sender, rcpts)
        if i % 5 == 0:
            # a dumb bot that writes everything at once -> "improper command pipelining"
            lines = [
                "HELO localhost",
                f"MAIL FROM:<{sender}>",
                *[f"RCPT TO:<{x}>" for x in rcpts],
                "DATA",
                *data.decode().replace("\r\n", "\n").rstrip("\n").split("\n"),
                ".",
                "QUIT",
            ]
            reply = p.stack.smtp_raw(lines)
            if "queued as" not in reply:
                raise RuntimeError(f"raw SMTP not queued: {reply!r}")
        else:
            res = p.stack.smtp_unauth_send(sender, rcpts, message=data, helo="localhost")
            if res.queue_id is None:
                raise RuntimeError(f"unauth send refused: {res}")
        kinds = Counter(_kind(x) for x in rcpts)
        p.note(
            "local-smtp",
            "127.0.0.1",
            messages=1,
            recipients=len(rcpts),
            **{f"rcpt_{k}": v for k, v in kinds.items()},
        )

    p.phase("4 open-relay probes from 198.51.100.77 (refused)")
    for i in range(5):
        res = p.stack.smtp_relay_attempt(
            "198.51.100.77",
            f"probe{i}@spam.example",
            f"relaytest{i}@example.com",
            helo="[198.51.100.77]",
        )
        if res.queue_id is not None:
            raise RuntimeError("relay was accepted")
        p.note("relay-probe", "198.51.100.77", relay_denied=1)


SCENARIOS: dict[str, Callable[[Player], None]] = {
    "sample": play_sample,
    "injection": play_injection,
}


# ---- log summary ---------------------------------------------------------------------------


def summarize_logs(mail_log: Path, dovecot_log: Path) -> dict[str, Any]:
    """Counts as seen in the logs (simple substring counts, for the README and truth.json)."""
    pf = mail_log.read_text(errors="replace").splitlines()
    dv = dovecot_log.read_text(errors="replace").splitlines()

    def c(lines: list[str], needle: str) -> int:
        return sum(needle in ln for ln in lines)

    return {
        "postfix_lines": len(pf),
        "dovecot_lines": len(dv),
        "accepted_messages_smtpd": sum(": client=" in ln and "smtpd[" in ln for ln in pf),
        "accepted_messages_pickup": sum("postfix/pickup[" in ln and " uid=" in ln for ln in pf),
        "sasl_authenticated_messages": sum(": client=" in ln and "sasl_username=" in ln for ln in pf),
        "sasl_failures": sum("SASL" in ln and "authentication failed" in ln for ln in pf),
        "status_sent_remote": sum("status=sent" in ln and "relay=127.0.0.1" in ln for ln in pf),
        "status_sent_local": sum("status=sent" in ln and "relay=virtual" in ln for ln in pf),
        "status_bounced": c(pf, "status=bounced"),
        "status_deferred": c(pf, "status=deferred"),
        "bounced_554_blocklist": sum("status=bounced" in ln and " 554 5.7.1" in ln for ln in pf),
        "bounced_550_nouser": sum("status=bounced" in ln and " 550 5.1.1" in ln for ln in pf),
        "deferred_421_rate": sum("status=deferred" in ln and " 421 4.7.0" in ln for ln in pf),
        "deferred_452_full": sum("status=deferred" in ln and " 452 4.2.2" in ln for ln in pf),
        "non_delivery_notifications": c(pf, "sender non-delivery notification"),
        "relay_access_denied": c(pf, "Relay access denied"),
        "dovecot_password_mismatch": c(dv, "Password mismatch"),
        "dovecot_unknown_user": c(dv, "unknown user"),
        "imap_logins": c(dv, "imap-login: Info: Login:"),
        "pop3_logins": c(dv, "pop3-login: Info: Login:"),
        "imap_auth_failed_disconnects": sum("imap-login" in ln and "auth failed" in ln for ln in dv),
    }


# ---- driver --------------------------------------------------------------------------------


def run(scenario: str, out: Path, seed: int = 1, keep_stack: bool = False) -> dict[str, Any]:
    t0 = time.monotonic()
    stack = MailStack(users=USERS, claim_via="proxy", seed=seed, keep=True)
    stack.start()
    player = Player(stack, seed)
    try:
        SCENARIOS[scenario](player)
        player.phase("5 flush the queue, wait for bounces and deferrals")
        final_queue = stack.flush_and_settle(timeout=60)
        time.sleep(0.3)  # let postlogd write the last lines
    except BaseException:
        print(f"[play] failed; the stack's logs are kept in {stack.log_dir}", file=sys.stderr)
        keep_stack = True
        raise
    finally:
        stack.stop()
    out.mkdir(parents=True, exist_ok=True)
    mail_log, dovecot_log = stack.copy_logs(out)
    if not keep_stack:
        shutil.rmtree(stack.dir, ignore_errors=True)
    summary = summarize_logs(mail_log, dovecot_log)
    truth = {
        "scenario": scenario,
        "seed": seed,
        "domain": "lab.test",
        "geo": GEO,
        "users": sorted(USERS),
        "actors": {
            name: {
                **meta,
                "ips": sorted(player.ips.get(name, ())),
                "counts": dict(sorted(player.counts.get(name, Counter()).items())),
                "by_ip": {
                    ip: dict(sorted(c.items())) for ip, c in sorted(player.by_ip.get(name, {}).items())
                },
            }
            for name, meta in player.actors.items()
        },
        "left_in_queue": {
            "messages": len(final_queue),
            "by_queue": dict(Counter(m["queue_name"] for m in final_queue)),
        },
        "log_counts": summary,
        "phases": [ln.split(" ", 1)[1] for ln in player.log],
        "timings_s": {
            "play": round(time.monotonic() - t0, 2),
            "stack_start": round(stack.timings.get("start", 0), 3),
            "stack_stop": round(stack.timings.get("stop", 0), 3),
        },
    }
    (out / "truth.json").write_text(json.dumps(truth, indent=2) + "\n")
    return truth


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="output dir (mail.log, dovecot.log)")
    ap.add_argument("--scenario", choices=sorted(SCENARIOS), default="sample")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep-stack", action="store_true", help="keep the stack's temp dir")
    args = ap.parse_args(argv)
    truth = run(args.scenario, args.out, args.seed, args.keep_stack)
    print(json.dumps({"out": str(args.out), **truth["log_counts"], **truth["timings_s"]}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
