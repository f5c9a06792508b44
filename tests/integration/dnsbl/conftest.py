"""A real rbldnsd on 127.0.0.1 serving the bundled blocklists' zone names with test data.

The zones keep their real names (zen.spamhaus.org, ...): every query goes to
127.0.0.1:<port> through an explicit resolver, never to the Internet (data in
dnsbl_testdata.py). rbldnsd is started per module (``rbldnsd``) or per test
(``fresh_rbldnsd``, for tests that change the data) and stopped through its
recorded PID. Skipped when rbldnsd is missing, unless ``CI`` is set: then failed.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dnsbl_testdata import bundled_datasets
from rbldnsd_server import Rbldnsd, require_rbldnsd


@pytest.fixture(scope="module")
def rbldnsd() -> Iterator[Rbldnsd]:
    require_rbldnsd()
    with Rbldnsd(bundled_datasets()) as server:
        yield server


@pytest.fixture
def fresh_rbldnsd() -> Iterator[Rbldnsd]:
    """A private rbldnsd whose data a test may change (history tests)."""
    require_rbldnsd()
    with Rbldnsd(bundled_datasets()) as server:
        yield server
