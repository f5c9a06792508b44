"""How fast is `mailwarden queue` on a big REAL Postfix queue?

Builds a queue of N messages (default 50,000) on a throw-away lab stack
(tests/integration/mailstack.py: own config dir, loopback only, the system Postfix untouched):
every message goes straight to the *hold* queue through a ``header_checks`` rule
(``/^Subject:/ HOLD``), so the queue manager never delivers or retries any of it. The mix is an
incident's: ~80 % spam from one cracked account over SMTP AUTH from a few claimed addresses,
~15 % from ordinary accounts, plus some mail from a web script through sendmail as www-data.
Messages go in over several parallel SMTP sessions (many messages per session).

Then it times, on the real queue:

* ``postqueue -j`` alone (the floor: Postfix's own listing);
* ``queue summary`` (postqueue -j + batched ``postcat -q -e -h`` + attribution + tallies);
* ``queue list --sender ...`` (envelope only, no message content read);
* ``queue cluster --no-body`` (headers only);
* ``queue cluster`` with bodies (read one ``postcat`` per message, 4 threads);
* the ``postqueue -j`` parser alone on the recorded output.

Run as root:  .venv/bin/python bench/bench_queue.py [--messages 50000] [--workers 4]
Prints one JSON document with the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
sys.path.insert(0, str(ROOT / "src"))

from mailstack import MailStack, make_message  # noqa: E402

import mailwarden.cli.main as cli_main  # noqa: E402
from mailwarden.queues.postfix import parse_postqueue_json  # noqa: E402

SPAM_IPS = ["203.0.113.7", "198.51.100.23", "192.0.2.99", "203.0.113.200"]
USERS = ["alice", "carol", "dave", "erin", "news"]


def fill(stack: MailStack, n: int, workers: int, web: int) -> float:
    """Put ``n`` messages into the queue; returns seconds taken."""
    t0 = time.monotonic()
    per = [n // workers + (1 if i < n % workers else 0) for i in range(workers)]
    errors: list[BaseException] = []

    def worker(w: int, count: int) -> None:
        rng = random.Random(w)
        try:
            sent = 0
            while sent < count:
                spam = rng.random() < 0.85
                user = "bob" if spam else rng.choice(USERS)
                with stack.smtp_session(claim_ip=rng.choice(SPAM_IPS) if spam else None) as s:
                    if not s.auth(f"{user}@lab.test", f"{user}-secret"):
                        raise RuntimeError("auth failed")
                    for _ in range(min(500, count - sent)):
                        if spam:
                            rcpt = f"rate{rng.randrange(10**6)}@example.{rng.choice(['com', 'net', 'org'])}"
                            subj = f"Parcel {rng.randrange(10**6)} for {rcpt} is on hold"
                            body = f"Your parcel: http://t{rng.randrange(999)}.parcel-claims.example/{sent}\n"
                        else:
                            rcpt = f"friend{rng.randrange(100)}@example.org"
                            subj, body = "Minutes", "See you on Monday.\n"
                        msg = make_message(f"{user}@lab.test", [rcpt], subj, body, rng=rng)
                        r = s.send(f"{user}@lab.test", [rcpt], msg)
                        if r.queue_id is None:
                            raise RuntimeError(f"not queued: {r}")
                        sent += 1
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i, c)) for i, c in enumerate(per)]
    for t in threads:
        t.start()
    for i in range(web):
        eml = make_message(
            "www-data@lab.test",
            [f"rate-web{i}@example.com"],
            f"Contact form #{i}",
            "cheap meds http://pills.example/\n",
            headers={"X-PHP-Originating-Script": "33:contact.php"},
        )
        stack.local_sendmail_as(eml)
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return time.monotonic() - t0


def wait_count(stack: MailStack, want: int, timeout: float = 600) -> int:
    hold = stack.queue_dir / "hold"
    deadline = time.monotonic() + timeout
    while True:
        have = sum(1 for _ in os.scandir(hold))
        if have >= want or time.monotonic() > deadline:
            return have
        time.sleep(0.5)


def timed_cli(argv: list[str]) -> tuple[float, int, str]:
    out = io.StringIO()
    t0 = time.monotonic()
    with contextlib.redirect_stdout(out):
        rc = cli_main.main(argv)
    return time.monotonic() - t0, rc, out.getvalue()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=50_000)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--web", type=int, default=200, help="of them, sent with sendmail as www-data")
    args = ap.parse_args()
    if "mailwarden.cli.queue" not in cli_main.COMMAND_MODULES:
        cli_main.COMMAND_MODULES = (*cli_main.COMMAND_MODULES, "mailwarden.cli.queue")
    checks = Path(tempfile.mkdtemp(prefix="mailwarden-bench-")) / "hold_checks"
    checks.write_text("/^Subject:/ HOLD\n/^X-PHP-Originating-Script:/ HOLD\n")
    os.chmod(checks.parent, 0o755)  # noqa: S103 - postfix's cleanup must read it
    stack = MailStack(postfix_extra={"header_checks": f"regexp:{checks}"})
    stack.start()
    figures: dict[str, object] = {"messages_requested": args.messages}
    try:
        smtp_n = args.messages - args.web
        figures["fill_seconds"] = round(fill(stack, smtp_n, args.workers, args.web), 1)
        figures["queued"] = wait_count(stack, args.messages)
        cfg = str(stack.postfix_config)
        t0 = time.monotonic()
        raw = subprocess.run(
            ["/usr/sbin/postqueue", "-c", cfg, "-j"], capture_output=True, check=True, timeout=600
        ).stdout
        figures["postqueue_j_seconds"] = round(time.monotonic() - t0, 2)
        figures["postqueue_j_bytes"] = len(raw)
        t0 = time.monotonic()
        n = sum(1 for _ in parse_postqueue_json(raw.split(b"\n")))
        figures["parse_postqueue_j_seconds"] = round(time.monotonic() - t0, 2)
        figures["parsed_messages"] = n
        for name, argv in (
            ("summary", ["queue", "summary", "--postfix-config", cfg, "--format", "json"]),
            (
                "list_by_sender",
                ["queue", "list", "--postfix-config", cfg, "--sender", "alice@lab.test", "--format", "json"],
            ),
            (
                "cluster_no_body",
                ["queue", "cluster", "--postfix-config", cfg, "--no-body", "--format", "json"],
            ),
        ):
            secs, rc, out = timed_cli(argv)
            figures[f"{name}_seconds"] = round(secs, 2)
            figures[f"{name}_exit"] = rc
            if name == "summary":
                doc = json.loads(out)
                figures["summary_messages"] = doc["totals"]["messages"]
                figures["summary_top_culprit"] = doc["culprits"][0]
        # bodies: one postcat per message (4 threads)
        secs, rc, out = timed_cli(["queue", "cluster", "--postfix-config", cfg, "--format", "json"])
        doc = json.loads(out)
        figures["cluster_with_bodies_seconds"] = round(secs, 2)
        figures["cluster_with_bodies_read"] = doc["scan"]["bodies_read"]
        figures["largest_cluster"] = {
            k: doc["clusters"][0][k] for k in ("messages", "subject_template", "culprits")
        }
    finally:
        stack.stop()
        checks.unlink(missing_ok=True)
        checks.parent.rmdir()
    print(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
