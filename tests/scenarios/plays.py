"""Scenario timelines, written through any MTA's writer (see writers/): the same play on
every log format must give the same incidents.

The writers share the LogWriter interface (tests/scenarios/logwriter.py); the
plays use only that interface, never a format's own lines.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

T0 = datetime(2026, 11, 10, 8, 0, 0)
OFFICE = "192.0.2.10"  # DE in the lab database
ATTACKER_IPS = ["203.0.113.10", "203.0.113.70", "203.0.113.140", "203.0.113.200"]  # IN IT BR NG


def benign(w: Any) -> None:
    """Normal life of a small company: must never produce a finding."""
    rnd = random.Random(7)
    for day in range(4):
        base = T0 + timedelta(days=day)
        for h in range(9, 18):
            t = base.replace(hour=h, minute=rnd.randrange(60))
            w.imap_login(t, OFFICE, "alice@example.com")
            w.smtp_auth_message(
                t + timedelta(minutes=3),
                OFFICE,
                "alice@example.com",
                [(f"client{h}@example.org", "sent")],
            )
            w.inbound_message(
                t + timedelta(minutes=5),
                "198.51.100.200",
                f"partner{h}@example.org",
                "alice@example.com",
            )
        # the newsletter: a few hundred messages a day, a couple of stale addresses
        for i in range(150):
            t = base.replace(hour=10) + timedelta(seconds=20 * i)
            outcome = "nouser" if i % 97 == 5 else "sent"
            w.smtp_auth_message(
                t, OFFICE, "news@example.com", [(f"reader{i}@list{i % 40}.example.net", outcome)]
            )
        # webmail logs in for many users from localhost
        for u in range(12):
            w.imap_login(base.replace(hour=11, minute=u), "127.0.0.1", f"user{u}@example.com")
    # dave travels: office for days, then France, one new country
    for day in range(3):
        w.imap_login(T0 + timedelta(days=day, hours=2), "192.0.2.20", "dave@example.com")
        w.smtp_auth_message(
            T0 + timedelta(days=day, hours=2, minutes=5),
            "192.0.2.20",
            "dave@example.com",
            [("boss@example.org", "sent")],
        )
    for k in range(4):
        t = T0 + timedelta(days=3, hours=6 + k)
        w.imap_login(t, "192.0.2.140", "dave@example.com")
        w.smtp_auth_message(
            t + timedelta(minutes=1),
            "192.0.2.140",
            "dave@example.com",
            [("boss@example.org", "sent")],
        )
    # erin mistypes her password three times, then gets it right
    t = T0 + timedelta(days=1, hours=1)
    for k in range(3):
        w.imap_fail(t + timedelta(seconds=20 * k), OFFICE, "erin@example.com")
    w.imap_login(t + timedelta(minutes=2), OFFICE, "erin@example.com")
    # cron mail to the admin over localhost: two a day
    for day in range(4):
        w.unauth_message(
            T0 + timedelta(days=day, hours=-2),
            "127.0.0.1",
            "root@mx.example.com",
            [("admin@example.org", "sent")],
        )


def compromised(w: Any) -> None:
    """bob's password is cracked: failed logins, then logins and spam from four countries."""
    # bob's normal life: office, a few messages a day
    for day in range(3):
        w.imap_login(T0 + timedelta(days=day, hours=1), OFFICE, "bob@example.com")
        w.smtp_auth_message(
            T0 + timedelta(days=day, hours=1, minutes=10),
            OFFICE,
            "bob@example.com",
            [("customer@example.org", "sent")],
        )
    t = T0 + timedelta(days=3, hours=2)
    for k in range(3):
        w.smtp_auth_fail(t + timedelta(seconds=30 * k), "203.0.113.10", "bob@example.com")
    outcomes = ["sent"] * 13 + ["block"] * 4 + ["rate"] * 2 + ["nouser"]
    rnd = random.Random(3)
    for n, ip in enumerate(ATTACKER_IPS):
        start = t + timedelta(minutes=5 + 40 * n)
        w.imap_login(start, ip, "bob@example.com")
        for m in range(30):
            rcpts = [
                (f"target{n}-{m}-{r}@d{rnd.randrange(500)}.example.com", rnd.choice(outcomes))
                for r in range(5)
            ]
            w.smtp_auth_message(
                start + timedelta(seconds=20 * m + 5),
                ip,
                "bob@example.com",
                rcpts,
                sender="invoice@example.org",
            )


def brute_force(w: Any) -> None:
    t = T0 + timedelta(days=2, hours=3)
    for k in range(30):
        w.smtp_auth_fail(t + timedelta(seconds=40 * k), "198.51.100.23", "carol@example.com")


def password_spray(w: Any) -> None:
    t = T0 + timedelta(days=2, hours=4)
    for k in range(12):
        w.imap_fail(t + timedelta(seconds=60 * k), "198.51.100.150", f"user{k}@example.com")


def distributed_attack(w: Any) -> None:
    """dave's password tried from eight addresses in four countries, three rounds."""
    t = T0 + timedelta(days=2, hours=5)
    ips = [f"203.0.113.{i}" for i in (11, 75, 141, 201, 12, 76, 142, 202)]
    for k in range(3):
        for j, ip in enumerate(ips):
            w.smtp_auth_fail(t + timedelta(minutes=10 * k, seconds=7 * j), ip, "dave@example.com")


def injection(w: Any) -> None:
    t = T0 + timedelta(days=2, hours=6)
    for k in range(20):
        w.unauth_message(
            t + timedelta(seconds=15 * k),
            "127.0.0.1",
            "security@paypa1.example",
            [(f"victim{k}@example.net", "block" if k % 5 == 0 else "sent")],
        )


def web_script(w: Any) -> None:
    t = T0 + timedelta(days=2, hours=7)
    for k in range(25):
        w.pickup_message(
            t + timedelta(seconds=30 * k), 33, "contact.php", [(f"winner{k}@example.org", "sent")]
        )
