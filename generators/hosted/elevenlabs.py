"""ElevenLabs models (speech, sound effects) as one generator class; the models are entries in
generators/catalogue/elevenlabs.yaml, whose `endpoint` picks text-to-speech or sound-generation.

Both endpoints are synchronous (one request, one audio answer, no job id), so there is nothing to journal
or rejoin; a retry after a connection dropped mid-answer may pay twice.
"""

from __future__ import annotations

import functools
from typing import Any

from pydantic import BaseModel

from ..context import GeneratorContext
from ..providers.elevenlabs import ElevenLabsClient
from ._base import HostedGenerator, output_for


class ElevenLabsGenerator(HostedGenerator):
    client_class = ElevenLabsClient

    async def generate(self, inputs: Any, context: GeneratorContext) -> BaseModel:
        # Synchronous API: no job id to rejoin (see module docstring). Its history (GET /v1/history, each
        # generation with its text, voice and date: https://elevenlabs.io/docs/api-reference/history/list,
        # 2026-12-03) could find a generation whose answer was lost; not used yet, so such a resubmission is
        # counted as a possible duplicate charge.
        dest = context.temp_path(f".{inputs.output_format.split('_')[0]}")
        audio = {"output_format": inputs.output_format, "dest": dest, "max_bytes": context.fetch_policy.max_bytes}
        # Only what was given is sent: a voice_settings block sent by default would override the settings
        # saved with the voice (ElevenLabs applies a request's settings to that request).
        body = inputs.model_dump(exclude={"voice_id", "output_format"}, exclude_none=True)
        body |= {"model_id": self.spec.model}
        async with self.client() as eleven:
            if self.spec.endpoint == "text-to-speech":
                speak = functools.partial(eleven.text_to_speech, inputs.voice_id, body)
                answer = await self.submit_once(context, lambda: speak(**audio))
            else:
                answer = await self.submit_once(context, lambda: eleven.sound_effect(body, **audio))
            stored = await context.store_audio_result(answer.path)
            await context.clear_job()
        # The credits actually charged, from the character-cost header (absent: unknown, nothing recorded).
        credits = {"credits": answer.credits} if answer.credits is not None else {}
        if (actual := self.spec.pricing.reported(credits)) is not None:
            context.record_cost(actual)
        return output_for(self.artifact_type, [stored])
