"""Replicate models (FLUX schnell, Real-ESRGAN, MusicGen, Whisper, MiniMax video) as one class and a spec table.

Official models run by name and are priced per output; community models run by version id and are billed
per second of hardware time, so their actual cost is `metrics.predict_time` x the hardware's price.
Input schemas mirror each model's API page (replicate.com/<owner>/<name>/api).
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from ..artifacts import AudioArtifact, ImageArtifact
from ..context import GeneratorContext
from ..errors import JobFailedError, ProviderInputError
from ..pricing.replicate import REPLICATE_PRICES
from ..providers.http import parse_data, store_output
from ..providers.replicate import Prediction, ReplicateClient
from ._base import HostedGenerator, HostedSpec, JobRecord, output_for

AspectRatio = Literal["1:1", "16:9", "21:9", "3:2", "2:3", "4:5", "5:4", "3:4", "4:3", "9:16", "9:21"]


class FluxSchnellInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1)
    aspect_ratio: AspectRatio = "1:1"
    num_outputs: int = Field(1, ge=1, le=4)
    num_inference_steps: int = Field(4, ge=1, le=4)
    seed: int | None = None
    output_format: Literal["webp", "jpg", "png"] = "webp"
    output_quality: int = Field(80, ge=0, le=100)
    disable_safety_checker: bool = False
    go_fast: bool = True
    megapixels: Literal["1", "0.25"] = "1"


class VideoInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1)
    prompt_optimizer: bool = True
    first_frame_image: ImageArtifact | None = Field(None, description="Optional first frame: makes it image to video.")
    subject_reference: ImageArtifact | None = Field(None, description="Optional character reference.")


class RealEsrganInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image: ImageArtifact
    scale: float = Field(4, ge=0, le=10, description="Factor to scale the image by.")
    face_enhance: bool = False


class MusicGenInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, description="A description of the music to generate.")
    model_version: Literal["stereo-melody-large", "stereo-large", "melody-large", "large"] = "stereo-melody-large"
    input_audio: AudioArtifact | None = Field(None, description="A melody to follow, or audio to continue.")
    duration: int = Field(8, ge=1, le=30, description="Seconds of music.")
    continuation: bool = False
    normalization_strategy: Literal["loudness", "clip", "peak", "rms"] = "loudness"
    top_k: int = Field(250, ge=0)
    top_p: float = Field(0, ge=0, le=1)
    temperature: float = Field(1, ge=0)
    classifier_free_guidance: int = Field(3, ge=0)
    output_format: Literal["wav", "mp3"] = "wav"
    seed: int | None = None


class WhisperInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    audio: AudioArtifact
    transcription: Literal["plain text", "srt", "vtt"] = "plain text"
    translate: bool = Field(False, description="Translate the text to English.")
    language: str = Field("auto", description="Language code, or auto to detect it.")
    temperature: float = Field(0, ge=0, le=1)
    initial_prompt: str | None = None
    condition_on_previous_text: bool = True
    temperature_increment_on_fallback: float = 0.2
    compression_ratio_threshold: float = 2.4
    logprob_threshold: float = -1.0
    no_speech_threshold: float = 0.6


class Uri(RootModel[str]):
    def urls(self) -> list[str]:
        return [self.root]


class UriList(RootModel[list[str]]):
    def urls(self) -> list[str]:
        return self.root


class WhisperOutput(BaseModel):
    model_config = ConfigDict(extra="ignore")

    transcription: str
    detected_language: str | None = None

    def urls(self) -> list[str]:
        return []


@dataclass(frozen=True)
class ReplicateSpec(HostedSpec):
    version: str | None = None  # community models run by version id; official ones by name
    output: type[BaseModel] = Uri


class _ReplicateRecord(JobRecord):
    pass


class ReplicateGenerator(HostedGenerator):
    client_class = ReplicateClient
    spec: ReplicateSpec

    async def generate(self, inputs: Any, context: GeneratorContext) -> BaseModel:
        async with self.client() as replicate:
            prediction = await self._rejoin(replicate, context)
            if prediction is None:
                arguments = await self.provider_arguments(inputs, context, self._uploader(replicate))
                # No Prefer: wait here: the id must be journaled before any waiting (see ReplicateClient.create).
                if self.spec.version:
                    submit = functools.partial(replicate.create, version=self.spec.version, input=arguments)
                else:
                    submit = functools.partial(replicate.create, model=self.spec.model, input=arguments)
                find = functools.partial(self._find_lost, replicate, arguments)
                prediction = await self.submit_once(context, submit, find)
            await context.set_external_job_id(prediction.id, provider="replicate", model=self.spec.model)
            done = await replicate.wait(prediction, timeout=self.spec.max_wait_s, progress=context.publish_progress)
            if done.status != "succeeded":
                raise JobFailedError(
                    f"prediction {done.id} {done.status}: {done.error or 'no error given'}", provider="replicate"
                )
            output: Any = parse_data(self.spec.output, done.output, "replicate", f"{self.spec.model} output")
            context.publish_progress(0.9, "replicate: storing the output")
            if self.artifact_type == "text":
                artifacts = [await context.store_text_result(output.transcription)]
            else:
                artifacts = [await store_output(context, self.artifact_type, u) for u in output.urls()]
            self._record_compute(done, context)
            await context.clear_job()
        return output_for(self.artifact_type, artifacts)

    def _record_compute(self, done: Prediction, context: GeneratorContext) -> None:
        if self.spec.price.unit == "compute second" and done.metrics and done.metrics.predict_time is not None:
            context.record_compute_seconds(done.metrics.predict_time)
            context.record_cost(self.spec.price.times(done.metrics.predict_time))

    @staticmethod
    def _uploader(replicate: ReplicateClient):
        async def upload(path, mime: str) -> str:
            return (await replicate.upload(path, mime)).urls.get

        return upload

    async def _find_lost(self, replicate: ReplicateClient, arguments: dict, intent: JobRecord) -> Prediction | None:
        """The prediction a submission whose answer was lost created, from Replicate's own list of predictions:
        this model, created since the intent was journaled, with these inputs (uploaded files aside: each
        attempt uploads anew, under a new URL)."""
        if intent.intent_at is None:
            return None
        since = dt.datetime.fromisoformat(intent.intent_at) - dt.timedelta(seconds=5)  # clocks disagree a little
        async for prediction in replicate.predictions(since):
            ours = prediction.version == self.spec.version if self.spec.version else prediction.model == self.spec.model
            if ours and _same_inputs(prediction.input or {}, arguments) and prediction.status not in TERMINAL_BAD:
                return prediction
        return None

    async def _rejoin(self, replicate: ReplicateClient, context: GeneratorContext) -> Prediction | None:
        record = await self.previous_record(context, _ReplicateRecord)
        if record is None or record.job_id is None:
            return None
        try:
            prediction = await replicate.get(record.job_id)
        except ProviderInputError:  # 404: unknown to Replicate
            return None
        if prediction.status in ("failed", "canceled", "aborted"):
            return None  # nothing to collect: pay for a fresh prediction
        return prediction


TERMINAL_BAD = ("failed", "canceled", "aborted")


def _same_inputs(listed: dict, sent: dict) -> bool:
    def uploaded(value: Any) -> bool:
        if isinstance(value, list):
            return bool(value) and all(uploaded(v) for v in value)
        return isinstance(value, str) and value.startswith(("http://", "https://", "data:"))

    def plain(values: dict) -> dict:
        return {k: v for k, v in values.items() if not uploaded(v)}

    return plain(listed) == plain(sent)


# Compute-second models are estimated from typical run times on their hardware (rough, from the
# model pages' "predictions typically complete within" figures); the actual cost comes from predict_time.
def _esrgan_seconds(i: RealEsrganInput) -> Decimal:
    output_megapixels = Decimal(i.image.width * i.image.height) * Decimal(str(i.scale)) ** 2 / 1_000_000
    return Decimal(2) + Decimal("0.5") * output_megapixels


REPLICATE_SPECS = [
    ReplicateSpec(
        "replicate/flux-schnell",
        "black-forest-labs/flux-schnell",
        "image",
        "FLUX.1 [schnell] on Replicate: fast text to image.",
        FluxSchnellInput,
        REPLICATE_PRICES["black-forest-labs/flux-schnell"],
        lambda i: i.num_outputs,
        max_wait_s=120,
        output=UriList,
    ),
    ReplicateSpec(
        "replicate/minimax-video-01",
        "minimax/video-01",
        "video",
        "MiniMax Hailuo video-01: a 6 s 720p clip from text (or a first frame).",
        VideoInput,
        REPLICATE_PRICES["minimax/video-01"],
        lambda i: 1,
        max_wait_s=1800,
    ),
    ReplicateSpec(
        "replicate/real-esrgan",
        "nightmareai/real-esrgan",
        "image",
        "Real-ESRGAN upscaling with optional face enhancement.",
        RealEsrganInput,
        REPLICATE_PRICES["nightmareai/real-esrgan"],
        _esrgan_seconds,
        max_wait_s=600,
        version="f121d640bd286e1fdc67f9799164c1d5be36ff74576ee11c803ae5b665dd46aa",
    ),
    ReplicateSpec(
        "replicate/musicgen",
        "meta/musicgen",
        "audio",
        "MusicGen: music from a text prompt (or melody).",
        MusicGenInput,
        REPLICATE_PRICES["meta/musicgen"],
        lambda i: 10 + i.duration,
        max_wait_s=900,
        version="671ac645ce5e552cc63a54a2bbff63fcf798043055d2dac5fc9e36a837eedcfb",
    ),
    ReplicateSpec(
        "replicate/whisper",
        "openai/whisper",
        "text",
        "Whisper large-v3 transcription on Replicate.",
        WhisperInput,
        REPLICATE_PRICES["openai/whisper"],
        lambda i: Decimal(5) + Decimal("0.15") * Decimal(str(i.audio.duration)),
        max_wait_s=900,
        version="8099696689d249cf8b122d833c36ac3f75505c666a395ca40ef26f68e7d3d16e",
        output=WhisperOutput,
    ),
]
