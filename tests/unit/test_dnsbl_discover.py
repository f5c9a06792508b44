"""Finding this server's own addresses and mail domains (postconf, ip -j addr), with fake programs."""

from __future__ import annotations

import json
from collections.abc import Sequence

from mailwarden import _proc
from mailwarden.intel.dnsbl.discover import discover, parse_domain_list, parse_ip_json

IP_JSON = json.dumps(
    [
        {"ifname": "lo", "addr_info": [
            {"family": "inet", "local": "127.0.0.1", "scope": "host"},
            {"family": "inet6", "local": "::1", "scope": "host"}]},
        {"ifname": "eth0", "addr_info": [
            {"family": "inet", "local": "10.0.0.5", "scope": "global"},
            {"family": "inet", "local": "8.8.4.4", "scope": "global"},
            {"family": "inet", "local": "192.0.2.10", "scope": "global"},
            {"family": "inet6", "local": "2a00:1450:4001::25", "scope": "global"},
            {"family": "inet6", "local": "2a00:1450:4001::99", "scope": "global", "tentative": True},
            {"family": "inet6", "local": "fe80::1", "scope": "link"}]},
        {"ifname": "tun0", "addr_info": [{"family": "inet", "local": "100.64.1.1"}]},
    ]
)  # fmt: skip


class FakeRun:
    def __init__(self, outputs: dict[str, str], fail: set[str] | None = None) -> None:
        self.outputs = outputs
        self.fail = fail or set()
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str], *, timeout: float = 60.0) -> _proc.Result:
        argv = list(argv)
        self.calls.append(argv)
        prog = argv[0].rsplit("/", 1)[-1]
        if prog in self.fail:
            raise _proc.ProcError(f"{prog} exited 1: boom")
        key = prog if prog == "ip" else f"{prog} {argv[-1]}"
        return _proc.Result(tuple(argv), 0, self.outputs[key].encode(), b"")


def which(name: str) -> str | None:
    return f"/usr/sbin/{name}"


POSTCONF = {
    "postconf mydomain": "\n\nmx1.acme-mail.net\nacme-mail.net\n",
    "postconf mydestination": "acme-shop.org, hash:/etc/postfix/vdomains\nmx1.acme-mail.net, localhost.acme-mail.net, "
    "localhost, internal.lan, www.example.com\n",
    "ip": IP_JSON,
}


def test_discovers_public_addresses_and_domains() -> None:
    run = FakeRun(POSTCONF)
    found = discover(None, env={}, run=run, which=which)
    assert [t.text for t in found.targets] == [
        "mx1.acme-mail.net", "acme-mail.net", "acme-shop.org", "8.8.4.4", "2a00:1450:4001::25",
    ]  # fmt: skip
    assert found.sources["acme-shop.org"] == "postconf virtual_mailbox_domains"
    assert found.sources["8.8.4.4"] == "interface eth0"
    skipped = " ".join(found.skipped)
    for private in (
        "127.0.0.1",
        "10.0.0.5",
        "192.0.2.10",
        "fe80::1",
        "100.64.1.1",
        "internal.lan",
        "www.example.com",
    ):
        assert private in skipped
    assert "2a00:1450:4001::99" not in skipped  # tentative: not even considered
    assert run.calls[0] == [
        "/usr/sbin/postconf", "-xh", "smtp_bind_address", "smtp_bind_address6", "myhostname", "mydomain",
    ]  # fmt: skip
    assert run.calls[2] == ["/usr/sbin/ip", "-j", "addr", "show"]


def test_postfix_config_dir_and_mail_config_env() -> None:
    run = FakeRun(POSTCONF)
    discover("/etc/postfix-out", env={"MAIL_CONFIG": "/ignored"}, run=run, which=which)
    assert run.calls[0][1:3] == ["-c", "/etc/postfix-out"]
    run = FakeRun(POSTCONF)
    discover(None, env={"MAIL_CONFIG": "/etc/postfix-2"}, run=run, which=which)
    assert run.calls[0][1:3] == ["-c", "/etc/postfix-2"]


def test_bind_addresses_are_used() -> None:
    outputs = dict(POSTCONF)
    outputs["postconf mydomain"] = "203.0.113.0\n2001:4860::5\nmx.acme-mail.net\nacme-mail.net\n"
    found = discover(None, env={}, run=FakeRun(outputs), which=which)
    assert found.sources["2001:4860::5"] == "postconf smtp_bind_address6"
    assert "203.0.113.0 (postconf smtp_bind_address: private or documentation range)" in found.skipped


def test_missing_programs_and_failures_are_reported() -> None:
    found = discover(None, env={}, run=FakeRun({}, fail={"postconf", "ip"}), which=which)
    assert found.targets == []
    assert any("postconf" in p for p in found.problems) and any("ip:" in p for p in found.problems)
    found = discover(None, env={}, run=FakeRun({}), which=lambda name: None)
    assert len(found.problems) == 2


def test_parse_domain_list() -> None:
    assert parse_domain_list("$myhostname, localhost.$mydomain, localhost example.net\texample.org,,") == [
        "example.net",
        "example.org",
    ]


def test_parse_ip_json_garbage() -> None:
    assert parse_ip_json("[]") == []
    assert parse_ip_json('[{"ifname": "x", "addr_info": [{"family": "inet"}]}, 3]') == []
