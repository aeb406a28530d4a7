"""The hosted catalogue: entries as YAML (shipped here, or in a user folder), and providers as registered units.

A `Provider` is everything one hosted service needs: its generator class (which knows the client and the
credential) and its entries (which carry the schemas and prices). boardflow ships five; a package can
ship another through the `boardflow.generators` entry point by pointing it at a `Provider`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigurationError
from .entry import HostedSpec, Lifecycle, PriceRule, parse_entry

SHIPPED = Path(__file__).parent
# libyaml's loader when it is built in (ten times faster on the shipped catalogue), else the pure-Python one.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_entries(path: Path) -> list[HostedSpec]:
    """The entries of one YAML file: a list of entries, or `{entries: [...]}`."""
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506  (a safe loader)
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"{path}: cannot read this catalogue file ({exc}).") from None
    items = raw.get("entries") if isinstance(raw, dict) and "entries" in raw else raw
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ConfigurationError(f"{path}: a catalogue file holds a list of entries (mappings).")
    return [parse_entry(item, str(path)) for item in items]


@functools.cache
def _shipped() -> tuple[HostedSpec, ...]:
    return tuple(e for path in sorted(SHIPPED.glob("*.yaml")) for e in read_entries(path))


def shipped_entries(provider: str) -> list[HostedSpec]:
    """The entries boardflow ships for `provider` (every generators/catalogue/*.yaml entry naming it)."""
    return [e for e in _shipped() if e.provider == provider]


@dataclass(frozen=True)
class Provider:
    """One hosted service as a unit: its generator class (client + credential) and its catalogue entries."""

    name: str
    generator_class: type[Any]  # a HostedGenerator subclass (generators/hosted/ builds on this package)
    entries: tuple[HostedSpec, ...]

    def generators(self, extra: Iterable[HostedSpec] = ()) -> list[Any]:
        specs = [*self.entries, *(e for e in extra if e.provider == self.name)]
        return [self.generator_class(spec) for spec in specs]


def user_entries(folder: Path) -> list[HostedSpec]:
    """Entries in a user catalogue folder (`boardflow generators import` writes there): every *.yaml file."""
    if not folder.is_dir():
        return []
    found: list[HostedSpec] = []
    for path in sorted(folder.glob("*.yaml")):
        found += read_entries(path)
    return found


def dump_entry(doc: dict[str, Any]) -> str:
    """An entry as the YAML boardflow writes (the importer, `generators show --entry`)."""
    return yaml.safe_dump([doc], sort_keys=False, allow_unicode=True, width=100)


__all__ = ["HostedSpec", "Lifecycle", "PriceRule", "Provider", "dump_entry", "read_entries", "user_entries"]
