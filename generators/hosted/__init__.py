"""Generators for hosted models, built on generators/providers/ (data-driven: one class per provider)."""

from __future__ import annotations

HOSTED_GENERATORS: list = []
