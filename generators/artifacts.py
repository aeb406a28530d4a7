"""Typed artifacts: the media files generators take and make, addressed by the SHA-256 of their bytes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the bytes, hex.")]


class Artifact(BaseModel):
    """Common fields. Media fields are probed from the bytes by the store, never taken on trust."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    artifact_type: ClassVar[str]

    sha256: Sha256
    storage_url: str = Field(description="Where the bytes live: file://, s3:// or http(s)://.")
    format: str = Field(description="Container or file format, lower-case: png, mp4, wav, txt…")
    size_bytes: int = Field(ge=0)
    parents: tuple[str, ...] = Field(default=(), description="sha256 of the artifacts this was made from.")
    generator: str | None = Field(default=None, description="Id of the generator that made it.")

    @property
    def short(self) -> str:
        return self.sha256[:12]


class ImageArtifact(Artifact):
    artifact_type: ClassVar[str] = "image"
    kind: Literal["image"] = "image"
    width: int = Field(gt=0)
    height: int = Field(gt=0)


class VideoArtifact(Artifact):
    artifact_type: ClassVar[str] = "video"
    kind: Literal["video"] = "video"
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    duration: float = Field(gt=0, description="Seconds.")
    fps: float = Field(gt=0)
    has_audio: bool = False


class AudioArtifact(Artifact):
    artifact_type: ClassVar[str] = "audio"
    kind: Literal["audio"] = "audio"
    duration: float = Field(gt=0, description="Seconds.")
    sample_rate: int = Field(gt=0)
    channels: int = Field(gt=0)


class TextArtifact(Artifact):
    artifact_type: ClassVar[str] = "text"
    kind: Literal["text"] = "text"
    content: str


class LoRAArtifact(Artifact):
    artifact_type: ClassVar[str] = "lora"
    kind: Literal["lora"] = "lora"
    base_model: str | None = None
    trigger_words: tuple[str, ...] = ()


AnyArtifact = Annotated[
    ImageArtifact | VideoArtifact | AudioArtifact | TextArtifact | LoRAArtifact,
    Field(discriminator="kind"),
]

ARTIFACT_CLASSES: dict[str, type[Artifact]] = {
    cls.artifact_type: cls for cls in (ImageArtifact, VideoArtifact, AudioArtifact, TextArtifact, LoRAArtifact)
}

_ANY_ARTIFACT: TypeAdapter[Artifact] = TypeAdapter(AnyArtifact)


def is_artifact(value: object) -> bool:
    """An artifact, or its JSON form (a mapping with `kind` and `sha256`)."""
    return isinstance(value, Artifact) or (isinstance(value, dict) and "kind" in value and "sha256" in value)


def as_artifact(value: Artifact | dict) -> Artifact:
    return value if isinstance(value, Artifact) else _ANY_ARTIFACT.validate_python(value)


def output_artifacts(outputs: Mapping[str, object]) -> list[tuple[str, int | None, Artifact]]:
    """(output name, index within a list output or None, artifact) for every artifact among `outputs`.

    The one walk over outputs that may be artifacts, lists of them, or plain values, in field order.
    """
    found: list[tuple[str, int | None, Artifact]] = []
    for name, value in outputs.items():
        items = list(enumerate(value)) if isinstance(value, list) else [(None, value)]
        for index, item in items:
            if is_artifact(item):
                found.append((name, index, as_artifact(item)))  # type: ignore[arg-type]
    return found
