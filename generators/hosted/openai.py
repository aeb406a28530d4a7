"""OpenAI media models (image generation and edits, speech, transcription) as one generator class.

The models are entries in generators/catalogue/openai.yaml; an entry's `endpoint` picks the API path.
These endpoints are synchronous: one request, one answer, no job id. There is nothing to journal or
rejoin, so unlike fal and Replicate a retry after a connection dropped mid-answer may pay twice.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from ..artifacts import ImageArtifact
from ..context import GeneratorContext
from ..providers.http import mime_type
from ..providers.openai import ImagesResponse, OpenAIClient, Transcription
from ._base import HostedGenerator, output_for


class OpenAIGenerator(HostedGenerator):
    client_class = OpenAIClient

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
                body = inputs.model_dump(exclude_none=True) | {"model": self.spec.model}
                await self.submit_once(
                    context, lambda: openai.speech(body, dest, max_bytes=context.fetch_policy.max_bytes)
                )
                artifacts = [await context.store_audio_result(dest)]
            else:
                fields = inputs.model_dump(exclude={"file"}, exclude_none=True) | {"model": self.spec.model}
                path, mime = await self._file(inputs.file, context)
                text = await self.submit_once(context, lambda: openai.transcribe(path, mime, fields))
                self._record_transcription(text, context)
                artifacts = [await context.store_text_result(text.text)]
            await context.clear_job()
        return output_for(self.artifact_type, artifacts)

    def _record_transcription(self, text: Transcription, context: GeneratorContext) -> None:
        # The `usage` block (duration seconds for whisper-1, tokens for its successors) is what OpenAI bills.
        seconds = text.billed_seconds()
        if seconds is None:
            return
        actual = self.spec.pricing.reported({"audio_minutes": Decimal(str(seconds)) / 60})
        if actual is not None:
            context.record_cost(actual)

    async def _store_images(self, answer: ImagesResponse, context: GeneratorContext) -> list[ImageArtifact]:
        if answer.usage is not None:
            details = answer.usage.input_tokens_details
            reported = {
                "text_tokens": details.text_tokens,
                "image_tokens": details.image_tokens,
                "output_tokens": answer.usage.output_tokens,
            }
            if (actual := self.spec.pricing.reported(reported)) is not None:
                context.record_cost(actual)
        return [await context.store_image_result(data) for data in answer.image_bytes()]

    @staticmethod
    async def _file(artifact: Any, context: GeneratorContext) -> tuple[Any, str]:
        return await context.resolve_artifact(artifact), mime_type(artifact.format, artifact.artifact_type)
