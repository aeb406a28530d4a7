"""boardflow generators: the Prefect-free core (contract, artifacts, store, registry, local and hosted)."""

from .artifacts import AnyArtifact, Artifact, AudioArtifact, ImageArtifact, LoRAArtifact, TextArtifact, VideoArtifact
from .base import Availability, BaseGenerator, Credential, GeneratorResult
from .context import GeneratorContext
from .registry import Registry, get_registry

__all__ = [
    "AnyArtifact",
    "Artifact",
    "AudioArtifact",
    "Availability",
    "BaseGenerator",
    "Credential",
    "GeneratorContext",
    "GeneratorResult",
    "ImageArtifact",
    "LoRAArtifact",
    "Registry",
    "TextArtifact",
    "VideoArtifact",
    "get_registry",
]
