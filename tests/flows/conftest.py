"""Fixtures for the Prefect layer: a data folder and a registry per test (the harness is in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

import flows  # noqa: F401  (offline Prefect defaults before prefect is imported)
import generators.registry
from generators import builtin
from generators.registry import Registry
from generators.storage import LocalStore


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh BOARDFLOW_DATA_DIR: its own artifact store, result index, Prefect cache records and locks."""
    path = tmp_path / "data"
    monkeypatch.setenv("BOARDFLOW_DATA_DIR", str(path))
    return path


@pytest.fixture
def data_store(data_dir: Path) -> LocalStore:
    """The artifact store a pipeline run in `data_dir` uses by default."""
    return LocalStore(data_dir / "store")


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Registry:
    """A fresh registry of the built-in generators that `get_registry()` returns; tests add their own."""
    fresh = Registry()
    for gen in builtin.generators():
        fresh.register(gen)
    monkeypatch.setattr(generators.registry, "_default", fresh)
    return fresh
