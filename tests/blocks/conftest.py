"""Block tests: a Prefect API for the blocks package, and the fake provider server.

tests/flows/conftest.py has the session's `prefect_api`, but fixtures of a sibling conftest are not
visible here, so this package starts its own harness (reusing one already running) and stops it when
the package is done. Hoisting `prefect_api` into tests/conftest.py would let both share one start.
"""

from __future__ import annotations

import pytest

import flows  # noqa: F401  (offline Prefect defaults before prefect is imported; registers the block key source)
from tests.fakes.fixtures import fake  # noqa: F401  (fixture)


@pytest.fixture(scope="package")
def prefect_api() -> str:
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    if PREFECT_API_URL.value():  # a harness of another test package is still up: use it
        yield PREFECT_API_URL.value()
        return
    with prefect_test_harness(server_startup_timeout=None):
        yield PREFECT_API_URL.value()
