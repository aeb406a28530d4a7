"""OpenAI models (gpt-image-1 generate and edit, tts-1 / tts-1-hd, whisper-1) as one class and a spec table.

These endpoints are synchronous: one request, one answer, no job id. There is nothing to journal or
rejoin, so unlike fal and Replicate a retry after a connection dropped mid-answer may pay twice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..artifacts import AudioArtifact, ImageArtifact
from ..context import GeneratorContext
from ..pricing.openai import IMAGE_INPUT_TOKENS_PER_IMAGE, IMAGE_OUTPUT_TOKENS, OPENAI_PRICES
from ..providers.http import mime_type
from ..providers.openai import ImagesResponse, ImageUsage, OpenAIClient
from ._base import HostedGenerator, HostedSpec, output_for

Size = Literal["1024x1024", "1536x1024", "1024x1536", "auto"]
Quality = Literal["low", "medium", "high", "auto"]


class _ImageOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, max_length=32000)
    n: int = Field(1, ge=1, le=10)
    size: Size = "auto"
    quality: Quality = "auto"
    background: Literal["transparent", "opaque", "auto"] = "auto"
    output_format: Literal["png", "jpeg", "webp"] = "png"
    output_compression: int | None = Field(None, ge=0, le=100, description="jpeg and webp only.")

    @model_validator(mode="after")
    def _transparency_needs_alpha(self):
        if self.background == "transparent" and self.output_format == "jpeg":
            raise ValueError("a transparent background needs output_format png or webp")
        return self


class ImageGenerateInput(_ImageOptions):
    moderation: Literal["low", "auto"] = "auto"


class ImageEditInput(_ImageOptions):
    image: list[ImageArtifact] = Field(min_length=1, max_length=16, description="Images to edit or combine.")
    mask: ImageArtifact | None = Field(None, description="Transparent areas mark where to edit (first image).")
    input_fidelity: Literal["high", "low"] = "low"


class SpeechInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: str = Field(min_length=1, max_length=4096, description="The text to speak.")
    voice: Literal["alloy", "ash", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer"] = "alloy"
    # pcm is left out: raw samples have no container the store could probe.
    response_format: Literal["mp3", "opus", "aac", "flac", "wav"] = "mp3"
    speed: float = Field(1.0, ge=0.25, le=4.0)


class TranscriptionInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    file: AudioArtifact = Field(description="Audio up to 25 MB: flac, mp3, mp4, m4a, ogg, wav or webm.")
    language: str | None = Field(None, min_length=2, max_length=2, description="ISO-639-1 code; improves accuracy.")
    prompt: str | None = Field(None, description="Text to guide the style or continue a previous segment.")
    temperature: float = Field(0, ge=0, le=1)


@dataclass(frozen=True)
class OpenAISpec(HostedSpec):
    endpoint: Literal["images/generations", "images/edits", "audio/speech", "audio/transcriptions"] = "audio/speech"


def _image_tokens(i: _ImageOptions) -> int:
    # "auto" lets OpenAI choose; estimate the dearest choice so a budget cap is never undershot.
    quality = "high" if i.quality == "auto" else i.quality
    tokens = IMAGE_OUTPUT_TOKENS[quality]
    return (max(tokens.values()) if i.size == "auto" else tokens[i.size]) * i.n


def estimate_image_cost(i: _ImageOptions) -> Decimal:
    """Output image tokens + prompt tokens (about four characters each) + input image tokens for edits."""
    cost = OPENAI_PRICES["gpt-image-1:image-output"].times(_image_tokens(i))
    cost += OPENAI_PRICES["gpt-image-1:text-input"].times(math.ceil(len(i.prompt) / 4))
    if isinstance(i, ImageEditInput):
        images = len(i.image) + (1 if i.mask else 0)
        cost += OPENAI_PRICES["gpt-image-1:image-input"].times(IMAGE_INPUT_TOKENS_PER_IMAGE * images)
    return cost


def usage_cost(usage: ImageUsage) -> Decimal:
    """What the tokens gpt-image-1 reported cost."""
    return (
        OPENAI_PRICES["gpt-image-1:text-input"].times(usage.input_tokens_details.text_tokens)
        + OPENAI_PRICES["gpt-image-1:image-input"].times(usage.input_tokens_details.image_tokens)
        + OPENAI_PRICES["gpt-image-1:image-output"].times(usage.output_tokens)
    )


class OpenAIGenerator(HostedGenerator):
    client_class = OpenAIClient
    spec: OpenAISpec

    async def estimate_cost(self, inputs: Any) -> Decimal:
        if isinstance(inputs, _ImageOptions):
            return estimate_image_cost(inputs)
        return await super().estimate_cost(inputs)

    async def generate(self, inputs: Any, context: GeneratorContext) -> BaseModel:
        # Synchronous API: no job id exists, so there is nothing to rejoin (see module docstring), and the API
        # documents no Idempotency-Key for these endpoints (https://platform.openai.com/docs/api-reference,
        # 2026-12-03): a call whose answer was lost and is sent again is counted as a possible duplicate charge.
        async with self.client() as openai:
            endpoint = self.spec.endpoint
            if endpoint == "images/generations":
                body = inputs.model_dump(exclude_none=True) | {"model": self.spec.model}
                answer = await self.submit_once(context, lambda: openai.generate_images(body))
                artifacts = await self._store_images(answer, context)
            elif endpoint == "images/edits":
                fields = inputs.model_dump(exclude={"image", "mask"}, exclude_none=True) | {"model": self.spec.model}
                images = [await self._file(a, context) for a in inputs.image]
                mask = await self._file(inputs.mask, context) if inputs.mask else None
                answer = await self.submit_once(context, lambda: openai.edit_images(fields, images, mask))
                artifacts = await self._store_images(answer, context)
            elif endpoint == "audio/speech":
                dest = context.temp_path(f".{inputs.response_format}")
                body = inputs.model_dump() | {"model": self.spec.model}
                await self.submit_once(
                    context, lambda: openai.speech(body, dest, max_bytes=context.fetch_policy.max_bytes)
                )
                artifacts = [await context.store_audio_result(dest)]
            else:
                fields = inputs.model_dump(exclude={"file"}, exclude_none=True)
                # verbose_json carries the audio's duration, which is what whisper-1 bills.
                fields |= {"model": self.spec.model, "response_format": "verbose_json"}
                path, mime = await self._file(inputs.file, context)
                text = await self.submit_once(context, lambda: openai.transcribe(path, mime, fields))
                if text.duration is not None:
                    context.record_cost(self.spec.price.times(Decimal(str(text.duration)) / 60))
                artifacts = [await context.store_text_result(text.text)]
            await context.clear_job()
        return output_for(self.artifact_type, artifacts)

    async def _store_images(self, answer: ImagesResponse, context: GeneratorContext) -> list[ImageArtifact]:
        if answer.usage is not None:
            context.record_cost(usage_cost(answer.usage))
        return [await context.store_image_result(data) for data in answer.image_bytes()]

    @staticmethod
    async def _file(artifact: Any, context: GeneratorContext) -> tuple[Any, str]:
        return await context.resolve_artifact(artifact), mime_type(artifact.format, artifact.artifact_type)


_image_price = OPENAI_PRICES["gpt-image-1:image-output"]
OPENAI_SPECS = [
    OpenAISpec(
        "openai/gpt-image-1",
        "gpt-image-1",
        "image",
        "GPT Image 1: text to image.",
        ImageGenerateInput,
        _image_price,
        _image_tokens,
        endpoint="images/generations",
    ),
    OpenAISpec(
        "openai/gpt-image-1-edit",
        "gpt-image-1",
        "image",
        "GPT Image 1: edit or combine images with a prompt.",
        ImageEditInput,
        _image_price,
        _image_tokens,
        endpoint="images/edits",
    ),
    OpenAISpec(
        "openai/tts-1",
        "tts-1",
        "audio",
        "OpenAI TTS: fast text to speech.",
        SpeechInput,
        OPENAI_PRICES["tts-1"],
        lambda i: len(i.input),
        endpoint="audio/speech",
    ),
    OpenAISpec(
        "openai/tts-1-hd",
        "tts-1-hd",
        "audio",
        "OpenAI TTS HD: higher quality text to speech.",
        SpeechInput,
        OPENAI_PRICES["tts-1-hd"],
        lambda i: len(i.input),
        endpoint="audio/speech",
    ),
    OpenAISpec(
        "openai/whisper-1",
        "whisper-1",
        "text",
        "Whisper: transcribe speech to text.",
        TranscriptionInput,
        OPENAI_PRICES["whisper-1"],
        lambda i: Decimal(str(i.file.duration)) / 60,
        endpoint="audio/transcriptions",
    ),
]
