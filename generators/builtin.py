"""The generators and hosted providers that ship with boardflow."""

from __future__ import annotations

from .base import BaseGenerator
from .catalogue import Provider


def generators() -> list[BaseGenerator]:
    """The local generators, then one per shipped catalogue entry of each hosted provider."""
    from .local import LOCAL_GENERATORS

    gens: list[BaseGenerator] = [cls() for cls in LOCAL_GENERATORS]
    gens.extend(gen for provider in providers() for gen in provider.generators())
    return gens


def providers() -> list[Provider]:
    """The hosted providers boardflow ships: fal, Replicate, OpenAI, ElevenLabs."""
    from .hosted import PROVIDERS

    return list(PROVIDERS)
