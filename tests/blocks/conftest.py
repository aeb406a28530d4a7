"""Block tests: the fake provider server (the session's `prefect_api` harness is in tests/conftest.py)."""

from __future__ import annotations

import flows  # noqa: F401  (offline Prefect defaults before prefect is imported; registers the block key source)
from tests.fakes.fixtures import fake  # noqa: F401  (fixture)
