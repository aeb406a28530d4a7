"""Generators for hosted models, built on generators/providers/ (data-driven: one class per provider + a table)."""

from __future__ import annotations

from ._base import HostedGenerator
from .elevenlabs import ELEVENLABS_SPECS, ElevenLabsGenerator
from .fal import FAL_SPECS, FalGenerator
from .openai import OPENAI_SPECS, OpenAIGenerator
from .replicate import REPLICATE_SPECS, ReplicateGenerator

HOSTED_GENERATORS: list[HostedGenerator] = [
    *(FalGenerator(spec) for spec in FAL_SPECS),
    *(ReplicateGenerator(spec) for spec in REPLICATE_SPECS),
    *(OpenAIGenerator(spec) for spec in OPENAI_SPECS),
    *(ElevenLabsGenerator(spec) for spec in ELEVENLABS_SPECS),
]

__all__ = [
    "HOSTED_GENERATORS",
    "ElevenLabsGenerator",
    "FalGenerator",
    "HostedGenerator",
    "OpenAIGenerator",
    "ReplicateGenerator",
]
