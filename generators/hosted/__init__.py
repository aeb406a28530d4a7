"""Generators for hosted models: one class per provider (generators/hosted/<provider>.py), one entry per model
(generators/catalogue/<provider>.yaml, plus any in the user catalogue folder)."""

from __future__ import annotations

from ..catalogue import Provider, shipped_entries
from ._base import HostedGenerator
from .elevenlabs import ElevenLabsGenerator
from .fal import FalGenerator
from .kie import KieGenerator
from .openai import OpenAIGenerator
from .replicate import ReplicateGenerator

PROVIDERS: list[Provider] = [
    Provider(name, cls, tuple(shipped_entries(name)))
    for name, cls in (
        ("fal", FalGenerator),
        ("replicate", ReplicateGenerator),
        ("openai", OpenAIGenerator),
        ("elevenlabs", ElevenLabsGenerator),
        ("kie", KieGenerator),
    )
]
HOSTED_GENERATORS: list[HostedGenerator] = [gen for provider in PROVIDERS for gen in provider.generators()]

__all__ = [
    "HOSTED_GENERATORS",
    "PROVIDERS",
    "ElevenLabsGenerator",
    "FalGenerator",
    "KieGenerator",
    "HostedGenerator",
    "OpenAIGenerator",
    "Provider",
    "ReplicateGenerator",
]
