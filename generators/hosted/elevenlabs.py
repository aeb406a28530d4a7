"""ElevenLabs models (Multilingual v2 and Flash v2.5 speech, sound effects) as one class and a spec table.

Both endpoints are synchronous (one request, one audio answer, no job id), so there is nothing to journal
or rejoin; a retry after a connection dropped mid-answer may pay twice.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from ..context import GeneratorContext
from ..pricing.elevenlabs import ELEVENLABS_PRICES
from ..providers.elevenlabs import ElevenLabsClient
from ._base import HostedGenerator, HostedSpec, output_for

# mp3 and opus only: pcm/ulaw answers are raw samples with no container the store could probe.
OutputFormat = Literal[
    "mp3_22050_32", "mp3_44100_64", "mp3_44100_96", "mp3_44100_128", "mp3_44100_192", "opus_48000_64", "opus_48000_128"
]
DEFAULT_VOICE = "JBFqnCBsd6RMkjVDRZzb"  # "George", the voice ElevenLabs' API reference uses


class VoiceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stability: float = Field(default=0.5, ge=0, le=1, description="Lower is more expressive, higher more even.")
    similarity_boost: float = Field(default=0.75, ge=0, le=1)
    style: float = Field(default=0, ge=0, le=1)
    use_speaker_boost: bool = True
    speed: float = Field(default=1.0, ge=0.7, le=1.2)


class _SpeechBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    voice_id: str = Field(DEFAULT_VOICE, min_length=1, description="A voice from your ElevenLabs voice library.")
    output_format: OutputFormat = "mp3_44100_128"
    voice_settings: VoiceSettings = VoiceSettings()
    seed: int | None = Field(None, ge=0, le=4294967295)
    language_code: str | None = Field(None, min_length=2, max_length=3, description="ISO 639-1, to force a language.")


def speech_input(name: str, max_chars: int) -> type[BaseModel]:
    """The speech schema for a model whose text limit is `max_chars` (10,000 for v2, 40,000 for Flash)."""
    return create_model(name, __base__=_SpeechBase, text=(str, Field(min_length=1, max_length=max_chars)))


MultilingualV2Input = speech_input("MultilingualV2Input", 10_000)
FlashV25Input = speech_input("FlashV25Input", 40_000)


class SoundEffectInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, description="The sound to make, e.g. 'rain on a tin roof'.")
    duration_seconds: float | None = Field(None, ge=0.5, le=30, description="Leave empty to let the model choose.")
    prompt_influence: float = Field(0.3, ge=0, le=1, description="Higher follows the text more closely.")
    loop: bool = Field(False, description="Make a sound that loops seamlessly.")
    output_format: OutputFormat = "mp3_44100_128"


@dataclass(frozen=True)
class ElevenLabsSpec(HostedSpec):
    endpoint: Literal["text-to-speech", "sound-generation"] = "text-to-speech"


class ElevenLabsGenerator(HostedGenerator):
    client_class = ElevenLabsClient
    spec: ElevenLabsSpec

    async def generate(self, inputs: Any, context: GeneratorContext) -> BaseModel:
        # Synchronous API: no job id to rejoin (see module docstring). Its history (GET /v1/history, each
        # generation with its text, voice and date: https://elevenlabs.io/docs/api-reference/history/list,
        # 2026-12-03) could find a generation whose answer was lost; not used yet, so such a resubmission is
        # counted as a possible duplicate charge.
        dest = context.temp_path(f".{inputs.output_format.split('_')[0]}")
        audio = {"output_format": inputs.output_format, "dest": dest, "max_bytes": context.fetch_policy.max_bytes}
        async with self.client() as eleven:
            if self.spec.endpoint == "text-to-speech":
                body = inputs.model_dump(exclude={"voice_id", "output_format"}, exclude_none=True)
                speak = functools.partial(eleven.text_to_speech, inputs.voice_id, body | {"model_id": self.spec.model})
                answer = await self.submit_once(context, lambda: speak(**audio))
                if answer.credits is not None:  # the credits actually charged, from the character-cost header
                    context.record_cost(ELEVENLABS_PRICES["credit"].times(answer.credits))
            else:
                body = inputs.model_dump(exclude={"output_format"}) | {"model_id": self.spec.model}
                answer = await self.submit_once(context, lambda: eleven.sound_effect(body, **audio))
            stored = await context.store_audio_result(answer.path)
            await context.clear_job()
        return output_for(self.artifact_type, [stored])


ELEVENLABS_SPECS = [
    ElevenLabsSpec(
        "elevenlabs/multilingual-v2",
        "eleven_multilingual_v2",
        "audio",
        "ElevenLabs Multilingual v2: lifelike speech in 29 languages.",
        MultilingualV2Input,
        ELEVENLABS_PRICES["eleven_multilingual_v2"],
        lambda i: len(i.text),
    ),
    ElevenLabsSpec(
        "elevenlabs/flash-v2.5",
        "eleven_flash_v2_5",
        "audio",
        "ElevenLabs Flash v2.5: fast, low-cost speech in 32 languages.",
        FlashV25Input,
        ELEVENLABS_PRICES["eleven_flash_v2_5"],
        lambda i: len(i.text),
    ),
    ElevenLabsSpec(
        "elevenlabs/sound-effects",
        "eleven_text_to_sound_v2",
        "audio",
        "ElevenLabs sound effects from a text description (0.5-30 s).",
        SoundEffectInput,
        ELEVENLABS_PRICES["sound-effects"],
        lambda i: 1,
        endpoint="sound-generation",
    ),
]
