"""Offline generators that do real media work with no key and no network."""

from __future__ import annotations

LOCAL_GENERATORS: list[type] = []
