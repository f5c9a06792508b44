"""Recommended actions per incident kind, from the established abuse playbook.

The steps are what an experienced postmaster does, in order: stop the
bleeding (credentials, injection path), clean the queue, repair reputation
(blocklists), then prevent a repeat. Values that came from logs (account
names, addresses) are attacker-influenced: wherever one appears inside a
command line it is shell-quoted, so copying a suggested command can never run
something an attacker typed.
"""

from __future__ import annotations

from collections.abc import Sequence
from shlex import quote


def _list(values: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


def _ban(ips: Sequence[str]) -> str:
    return (
        f"Ban {_list(ips)} at the firewall for a while (e.g. fail2ban's postfix-sasl/dovecot jails, "
        "or `nft add element inet filter blocklist { ADDR timeout 1d }`), after checking "
        "that none is your own office, VPN or webmail address."
    )


_QUEUE = (
    "Hold the queued mail of this incident, check a sample, then delete the spam: "
    "`postsuper -h ID` / `postsuper -d ID` for the queue ids listed in the JSON output "
    "(`queued_ids`), or by sender with `postqueue -j`."
)
_DNSBL = (
    "Check the server's outbound addresses on the DNS blocklists (Spamhaus ZEN, Barracuda, "
    "SpamCop, UCEPROTECT...) and request delisting once the abuse has stopped; "
    "check Gmail Postmaster Tools and Microsoft SNDS for reputation."
)


def _who(uid: int | str | None) -> str:
    """``uid 33`` for a number, the name itself for a login name or a description."""
    return f"uid {uid}" if isinstance(uid, int) else str(uid)


def actions_for(
    kind: str,
    *,
    account: str = "",
    ip: str = "",
    ips: Sequence[str] = (),
    accounts: Sequence[str] = (),
    cracked: Sequence[str] = (),
    uid: int | str | None = None,
    script: str = "",
    spam: bool = False,
    queued: int = 0,
    blocklists: Sequence[tuple[str, str]] = (),
) -> list[str]:
    """Ordered, concrete next steps for one incident."""
    steps: list[str] = []
    if kind == "compromised_account":
        steps.append(
            f"Change the password of {account} now to a new random one (16+ characters, "
            "not derived from the company name, the person's name or an old password), "
            f"and end its open sessions: `doveadm kick {quote(account)}`."
        )
        steps.append(
            "Tell the user: the password was used by someone else; check their devices for "
            "malware and their other accounts for the same password."
        )
        if queued or spam:
            steps.append(_QUEUE)
        if ips:
            steps.append(_ban(ips))
        if spam:
            steps.append(_DNSBL)
        steps.append(
            "Limit what one account can send (Postfix: a policy service or "
            "`smtpd_client_message_rate_limit`), so the next stolen password sends less."
        )
    elif kind in ("brute_force", "password_spray", "distributed_attack"):
        if cracked:
            steps.append(
                f"The attack succeeded for {_list(list(cracked))}: change those passwords now "
                "and treat them as compromised accounts."
            )
        steps.append(_ban([ip] if ip else list(ips)))
        targets = list(accounts) or ([account] if account else [])
        if targets:
            steps.append(
                f"Make sure the targeted accounts ({_list(targets)}) have strong, unique passwords; "
                "disable accounts that no longer exist in the user list."
            )
        steps.append(
            "Keep banning repeat offenders automatically (fail2ban-style: N failures in a window → "
            "ban for a while), with your own networks on the allowlist."
        )
    elif kind == "unauthenticated_injection":
        steps.append(
            f"Mail is injected over SMTP without authentication from {ip or 'a local address'} "
            "(mynetworks): find the process or host that connects there (`ss -tnp`, web "
            "application logs at the same time) and stop it."
        )
        steps.append(
            "Narrow `mynetworks` to what really needs to relay (often only 127.0.0.1), and require "
            "SMTP AUTH for everything else."
        )
        steps.append(_QUEUE)
        if spam:
            steps.append(_DNSBL)
    elif kind == "open_relay":
        steps.append(
            f"The server relayed mail for an unauthenticated outside client ({ip}): check "
            "`smtpd_relay_restrictions` (it must end in reject_unauth_destination), "
            "`mynetworks` and `relay_domains` now (`postconf -n`)."
        )
        steps.append(_QUEUE)
        steps.append(_DNSBL)
    elif kind == "web_script":
        where = f" (script {script})" if script else ""
        steps.append(
            f"A local program running as {_who(uid)}{where} sends mail: find it "
            "(PHP `mail.log` setting, `X-PHP-Originating-Script` headers, web server access logs "
            "for POSTs at the same times) and disable it or its form."
        )
        steps.append(
            "Look for uploaded web shells and outdated CMS plugins in that site; change the "
            "site's FTP/CMS passwords."
        )
        steps.append(_QUEUE)
        if spam:
            steps.append(_DNSBL)
    if blocklists:
        cited = "; ".join(f"{label} ({how.rstrip('.')})" if how else label for label, how in blocklists)
        steps.append(
            f"Remote servers rejected mail citing {cited}. Run `mailwarden dnsbl check` to see the "
            "current listings, and request delisting there once the spam has stopped "
            "(`mailwarden dnsbl note` records the request)."
        )
    return steps
