"""The Prefect layer's tests: the harness, data folder and registry fixtures are in tests/conftest.py."""

from __future__ import annotations

import flows  # noqa: F401  (offline Prefect defaults before prefect is imported)
