"""The generator registry: built-ins, entry-point plugins, availability, and enable/disable config."""

from __future__ import annotations

import difflib
import logging
import tomllib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

from .base import Availability, BaseGenerator
from .catalogue import Provider, user_entries
from .errors import ConfigurationError, GeneratorNotFoundError
from .settings import get_settings

log = logging.getLogger("boardflow")

ENTRY_POINT_GROUP = "boardflow.generators"


@dataclass(frozen=True)
class Listing:
    generator: BaseGenerator
    availability: Availability
    enabled: bool
    source: str  # "builtin" or the plugin distribution's entry point name

    @property
    def usable(self) -> bool:
        return self.enabled and self.availability.ok


class Registry:
    def __init__(self) -> None:
        self._generators: dict[str, BaseGenerator] = {}
        self._sources: dict[str, str] = {}
        self.plugin_errors: dict[str, str] = {}
        self.disabled: set[str] = set()
        self.enabled_only: set[str] | None = None
        self.providers: dict[str, Provider] = {}

    def register_builtins(self) -> Registry:
        """The generators and hosted providers boardflow ships (local ones, and one per catalogue entry)."""
        from . import builtin

        for gen in builtin.generators():
            self.register(gen)
        self.providers.update({p.name: p for p in builtin.providers()})
        return self

    def add_provider(self, provider: Provider, *, source: str = "builtin") -> None:
        """Register a hosted provider (client, credential, entries, prices) and every generator of its entries."""
        if provider.name in self.providers:
            raise ConfigurationError(f"A provider named {provider.name!r} is already registered.")
        self.providers[provider.name] = provider
        for gen in provider.generators():
            self.register(gen, source=source)

    def load_catalogue(self, folder: Path) -> None:
        """Register the entries of a user catalogue folder, each with its provider's generator class."""
        for spec in user_entries(folder):
            provider = self.providers.get(spec.provider)
            if provider is None:
                raise ConfigurationError(
                    f"{folder}: entry {spec.id} names provider {spec.provider!r}, which is not registered.",
                    hint=f"Known providers: {', '.join(sorted(self.providers))}; install the plugin that ships it.",
                )
            self.register(provider.generator_class(spec), source=f"catalogue {folder}")

    def register(self, generator: BaseGenerator, *, source: str = "builtin") -> BaseGenerator:
        name = generator.name
        if name in self._generators:
            raise ConfigurationError(
                f"A generator named {name!r} is already registered (from {self._sources[name]}).",
                hint="Generator ids must be unique; rename one of them.",
            )
        self._generators[name] = generator
        self._sources[name] = source
        return generator

    def get(self, name: str) -> BaseGenerator:
        try:
            return self._generators[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._generators, n=3, cutoff=0.5)
            raise GeneratorNotFoundError(name, close) from None

    def names(self) -> list[str]:
        return sorted(self._generators)

    def __contains__(self, name: str) -> bool:
        return name in self._generators

    def is_enabled(self, name: str) -> bool:
        if name in self.disabled:
            return False
        return self.enabled_only is None or name in self.enabled_only

    def list(self, artifact_type: str | None = None) -> list[Listing]:
        return [
            Listing(gen, gen.availability(), self.is_enabled(name), self._sources[name])
            for name, gen in sorted(self._generators.items())
            if artifact_type is None or gen.artifact_type == artifact_type
        ]

    def load_plugins(self) -> None:
        """Register generators from installed packages that declare the `boardflow.generators` entry point.

        An entry point may name a hosted `Provider` (its entries become generators), a BaseGenerator
        subclass, an instance, an iterable of either, or a callable taking the registry. A plugin that
        fails to load is recorded, not fatal.
        """
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            dist = f"{ep.dist.name} {ep.dist.version} " if ep.dist is not None else ""
            source = f"plugin {dist}({ep.value})"
            try:
                target = ep.load()
                if isinstance(target, Provider):
                    self.add_provider(target, source=source)
                elif isinstance(target, type) and issubclass(target, BaseGenerator):
                    self.register(target(), source=source)
                elif isinstance(target, BaseGenerator):
                    self.register(target, source=source)
                elif callable(target):
                    for gen in _as_generators(target(self)):
                        self.register(gen, source=source)
                else:
                    for gen in _as_generators(target):
                        self.register(gen, source=source)
            except Exception as exc:  # one broken plugin must not take the tool down
                self.plugin_errors[ep.name] = f"{type(exc).__name__}: {exc}"
                log.warning("boardflow plugin %s failed to load: %s", ep.value, exc)

    def apply_config(self, path: Path) -> None:
        """Read `[generators] enabled = [...]` / `disabled = [...]` from a TOML file, if it exists."""
        if not path.exists():
            return
        try:
            section = tomllib.loads(path.read_text(encoding="utf-8")).get("generators", {})
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"{path} is not valid TOML: {exc}.") from exc
        if extra := sorted(set(section) - {"enabled", "disabled"}):
            raise ConfigurationError(
                f"{path}: [generators] has unknown key(s) {', '.join(extra)}.",
                hint="Only `enabled = [ids…]` and `disabled = [ids…]` are read there.",
            )
        for key in ("enabled", "disabled"):
            ids = section.get(key, [])
            if not isinstance(ids, list) or not all(isinstance(n, str) for n in ids):
                raise ConfigurationError(
                    f"{path}: [generators] {key} must be a list of generator ids.",
                    hint=f'Write it as {key} = ["local/ken-burns", "fal/flux-dev"].',
                )
            unknown = [n for n in ids if n not in self._generators]
            if unknown:
                raise ConfigurationError(
                    f"{path}: [generators] {key} names unknown generator(s): {', '.join(unknown)}.",
                    hint="Run `boardflow generators list` for the ids.",
                )
        if "enabled" in section:
            self.enabled_only = set(section["enabled"])
        self.disabled = set(section.get("disabled", []))


def _as_generators(value) -> Iterable[BaseGenerator]:
    if value is None:
        return []
    items = value if isinstance(value, (list, tuple, set)) else [value]
    return [item() if isinstance(item, type) else item for item in items]


_default: Registry | None = None
_current: ContextVar[Registry | None] = ContextVar("boardflow_registry", default=None)


@contextmanager
def use_registry(registry: Registry) -> Iterator[Registry]:
    """Inside this block (and the tasks and flows it starts), `get_registry()` answers `registry`."""
    token = _current.set(registry)
    try:
        yield registry
    finally:
        _current.reset(token)


def get_registry() -> Registry:
    """The registry in use: the one `use_registry` set for this context, else the process-wide one
    (built-in generators, then plugins, then the config file)."""
    global _default
    if (current := _current.get()) is not None:
        return current
    if _default is None:
        registry = Registry().register_builtins()
        registry.load_plugins()
        registry.load_catalogue(get_settings().catalogue_dir)
        registry.apply_config(get_settings().config_file)
        _default = registry
    return _default


def reset_registry() -> None:
    """Forget the process-wide registry (tests, or after installing a plugin)."""
    global _default
    _default = None
