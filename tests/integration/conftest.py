"""Fixtures that start a real Postfix + Dovecot + fake remote MX on loopback (see mailstack.py
and docs/testing.md).

* ``mailstack``: a fresh stack for one test (start ~0.1 s, stop ~1.2 s: Dovecot's master sleeps
  1 s on shutdown).
* ``mailstack_module``: one stack shared by the tests of a module (logs accumulate).
* ``make_mailstack``: factory, ``make_mailstack(users=..., claim_via="proxy", ...)``.

If Postfix/Dovecot (or root) are missing the tests are skipped with the reason -- unless the
``CI`` environment variable is set (CI=true, as .ci/run gets it): then they fail, so CI cannot
silently skip the real-stack tests. ``scripts/install-test-deps.sh`` installs what is needed.
On a failing test the stack's temp dir (logs!) is kept and its path printed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from mailstack import MailStack, require_mailstack


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    rep = yield
    setattr(item, f"_mailstack_rep_{rep.when}", rep)
    return rep


def _failed(node: pytest.Item) -> bool:
    return any(
        getattr(getattr(node, f"_mailstack_rep_{w}", None), "failed", False) for w in ("setup", "call")
    )


def _finish(stack: MailStack, failed: bool) -> None:
    if failed:
        stack.keep = True
    stack.stop()
    if failed:
        print(f"\n[mailstack] test failed; logs kept in {stack.log_dir}")


@pytest.fixture
def make_mailstack(request: pytest.FixtureRequest) -> Iterator[Callable[..., MailStack]]:
    require_mailstack()
    stacks: list[MailStack] = []

    def factory(**kwargs: Any) -> MailStack:
        stack = MailStack(**kwargs)
        stacks.append(stack)
        return stack.start()

    yield factory
    for stack in reversed(stacks):
        _finish(stack, _failed(request.node))


@pytest.fixture
def mailstack(make_mailstack: Callable[..., MailStack]) -> MailStack:
    return make_mailstack()


@pytest.fixture(scope="module")
def mailstack_module(request: pytest.FixtureRequest) -> Iterator[MailStack]:
    require_mailstack()
    stack = MailStack().start()
    yield stack
    failed = request.session.testsfailed > 0
    _finish(stack, failed)
