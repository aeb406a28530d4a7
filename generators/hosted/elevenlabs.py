"""ElevenLabs models (speech, sound effects) as one generator class; the models are entries in
generators/catalogue/elevenlabs.yaml, whose `endpoint` picks text-to-speech or sound-generation.

Both endpoints are synchronous (one request, one audio answer, no job id). Speech whose answer was lost is
looked up in the account's history and its audio downloaded from there instead of paying again; sound effects
are not in the history, so their resubmission is counted as a possible duplicate charge.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from pydantic import BaseModel

from ..context import GeneratorContext
from ..providers.elevenlabs import AudioAnswer, ElevenLabsClient
from ._base import HostedGenerator, JobRecord, output_for


class ElevenLabsGenerator(HostedGenerator):
    client_class = ElevenLabsClient

    async def generate(self, inputs: Any, context: GeneratorContext) -> BaseModel:
        dest = context.temp_path(f".{inputs.output_format.split('_')[0]}")
        audio = {"output_format": inputs.output_format, "dest": dest, "max_bytes": context.fetch_policy.max_bytes}
        # Only what was given is sent: a voice_settings block sent by default would override the settings
        # saved with the voice (ElevenLabs applies a request's settings to that request).
        body = inputs.model_dump(exclude={"voice_id", "output_format"}, exclude_none=True)
        body |= {"model_id": self.spec.model}
        async with self.client() as eleven:
            if self.spec.endpoint == "text-to-speech":
                speak = functools.partial(eleven.text_to_speech, inputs.voice_id, body)
                find = functools.partial(self._find_lost, eleven, inputs.voice_id, body, audio)
                # A billed request can be missing from the history (zero retention keeps none): not found
                # there, the resubmission is still counted.
                answer = await self.submit_once(context, lambda: speak(**audio), find, listing_complete=False)
            else:
                answer = await self.submit_once(context, lambda: eleven.sound_effect(body, **audio))
            stored = await context.store_audio_result(answer.path)
            await context.clear_job()
        # The credits actually charged, from the character-cost header (absent: unknown, nothing recorded).
        credits = {"credits": answer.credits} if answer.credits is not None else {}
        if (actual := self.spec.pricing.reported(credits)) is not None:
            context.record_cost(actual)
        return output_for(self.artifact_type, [stored])

    @staticmethod
    async def _find_lost(
        eleven: ElevenLabsClient, voice_id: str, body: dict[str, Any], audio: dict[str, Any], intent: JobRecord
    ) -> AudioAnswer | None:
        """The speech a request whose answer was lost made, from the account's history: this voice, model, text
        and output format, made since the intent was journaled; its audio is downloaded under the same cap."""
        if intent.intent_at is None:
            return None
        since = int(dt.datetime.fromisoformat(intent.intent_at).timestamp()) - 5  # clocks disagree a little
        async for item in eleven.history(voice_id, since):
            same = item.model_id == body["model_id"] and item.text == body["text"]
            if same and item.output_format in (None, audio["output_format"]):
                return await eleven.history_audio(item, dest=audio["dest"], max_bytes=audio["max_bytes"])
        return None
