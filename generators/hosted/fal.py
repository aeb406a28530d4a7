"""fal.ai models (FLUX, Clarity upscaler, Kling video) as one generator class and a table of model specs.

Input schemas mirror each endpoint's documented parameters and bounds (fal.ai/models/<endpoint>/llms.txt).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..artifacts import ImageArtifact
from ..context import GeneratorContext
from ..errors import JobFailedError, ProviderInputError
from ..pricing.fal import FAL_PRICES
from ..providers.fal import FalClient, FalJob
from ..providers.http import parse_data, store_output
from ._base import HostedGenerator, HostedSpec, JobRecord, output_for

ImageSizeName = Literal["square_hd", "square", "portrait_4_3", "portrait_16_9", "landscape_4_3", "landscape_16_9"]
IMAGE_SIZES: dict[str, tuple[int, int]] = {
    "square_hd": (1024, 1024),
    "square": (512, 512),
    "portrait_4_3": (768, 1024),
    "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768),
    "landscape_16_9": (1024, 576),
}
FAL_MEGAPIXEL = 1024 * 1024  # fal rounds each image up to whole megapixels; 1024x1024 is one


class ImageSize(BaseModel):
    width: int = Field(512, ge=1, le=14142)
    height: int = Field(512, ge=1, le=14142)


def size_of(image_size: str | ImageSize) -> tuple[int, int]:
    return IMAGE_SIZES[image_size] if isinstance(image_size, str) else (image_size.width, image_size.height)


def billed_megapixels(width: int, height: int) -> int:
    return max(1, math.ceil(width * height / FAL_MEGAPIXEL))


class FluxDevInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, description="What to draw.")
    image_size: ImageSizeName | ImageSize = Field("landscape_4_3", description="A preset or {width, height}.")
    num_inference_steps: int = Field(28, ge=1, le=50)
    seed: int | None = Field(None, ge=0, description="Same seed and prompt give the same image.")
    guidance_scale: float = Field(3.5, ge=1, le=20, description="How closely to follow the prompt.")
    num_images: int = Field(1, ge=1, le=4)
    enable_safety_checker: bool = True
    output_format: Literal["jpeg", "png"] = "jpeg"
    acceleration: Literal["none", "regular", "high"] = "none"


class FluxSchnellInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1)
    image_size: ImageSizeName | ImageSize = "landscape_4_3"
    num_inference_steps: int = Field(4, ge=1, le=12, description="Schnell is made for 1-4 steps.")
    seed: int | None = Field(None, ge=0)
    num_images: int = Field(1, ge=1, le=4)
    enable_safety_checker: bool = True
    output_format: Literal["jpeg", "png"] = "jpeg"
    acceleration: Literal["none", "regular", "high"] = "none"


class ClarityUpscalerInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image_url: ImageArtifact = Field(description="The image to upscale (uploaded to fal storage).")
    prompt: str = "masterpiece, best quality, highres"
    upscale_factor: float = Field(2, ge=1, le=4)
    negative_prompt: str = "(worst quality, low quality, normal quality:2)"
    creativity: float = Field(0.35, ge=0, le=1, description="Higher invents more detail.")
    resemblance: float = Field(0.6, ge=0, le=1, description="Higher stays closer to the original.")
    guidance_scale: float = Field(4, ge=0, le=20)
    num_inference_steps: int = Field(18, ge=4, le=50)
    seed: int | None = Field(None, ge=0)
    enable_safety_checker: bool = True


class KlingImageToVideoInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, max_length=2500, description="The motion and scene to animate.")
    image_url: ImageArtifact = Field(description="The first frame (uploaded to fal storage).")
    duration: Literal["5", "10"] = Field("5", description="Seconds of video.")
    negative_prompt: str = Field("blur, distort, and low quality", max_length=2500)
    cfg_scale: float = Field(0.5, ge=0, le=1)


class KlingTextToVideoInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, max_length=2500)
    duration: Literal["5", "10"] = "5"
    aspect_ratio: Literal["16:9", "9:16", "1:1"] = "16:9"
    negative_prompt: str = Field("blur, distort, and low quality", max_length=2500)
    cfg_scale: float = Field(0.5, ge=0, le=1)


class FalFile(BaseModel):
    model_config = ConfigDict(extra="ignore")

    url: str
    content_type: str | None = None
    width: int | None = None  # images report their size; fal bills by it
    height: int | None = None


class FalImagesResult(BaseModel):
    model_config = ConfigDict(extra="ignore")

    images: list[FalFile] = Field(min_length=1)
    has_nsfw_concepts: list[bool] = []  # absent when the safety checker is off

    def files(self) -> list[FalFile]:
        return self.images


class FalImageResult(BaseModel):
    model_config = ConfigDict(extra="ignore")

    image: FalFile

    def files(self) -> list[FalFile]:
        return [self.image]


class FalVideoResult(BaseModel):
    model_config = ConfigDict(extra="ignore")

    video: FalFile

    def files(self) -> list[FalFile]:
        return [self.video]


@dataclass(frozen=True)
class FalSpec(HostedSpec):
    result: type[BaseModel] = FalImagesResult
    per_megapixel: bool = False  # bill from the sizes fal reports


class _FalRecord(JobRecord):
    status_url: str
    response_url: str
    cancel_url: str


class FalGenerator(HostedGenerator):
    client_class = FalClient
    spec: FalSpec

    async def generate(self, inputs: Any, context: GeneratorContext) -> BaseModel:
        async with self.client() as fal:
            job = await self._rejoin(fal, context)
            if job is None:
                arguments = await self.provider_arguments(inputs, context, fal.upload)
                # fal's queue has no way to find a request whose submit answer was lost (no listing, no
                # client-chosen id: https://docs.fal.ai/model-endpoints/queue, 2026-12-03): counted, not hidden.
                job = await self.submit_once(context, lambda: fal.submit(self.spec.model, arguments))
            # Journal the request before waiting: a crash, retry or re-run with this cache key rejoins it.
            await context.set_external_job_id(
                job.request_id,
                provider="fal",
                model=self.spec.model,
                status_url=job.status_url,
                response_url=job.response_url,
                cancel_url=job.cancel_url,
            )
            status = await fal.wait(job, timeout=self.spec.max_wait_s, progress=context.publish_progress)
            if status.error:
                raise JobFailedError(f"request {job.request_id} failed: {status.error}", provider="fal")
            result: Any = parse_data(self.spec.result, await fal.result(job), "fal", f"{self.spec.model} result")
            if any(getattr(result, "has_nsfw_concepts", [])):
                raise JobFailedError(
                    "fal's safety checker replaced an image with a black one",
                    provider="fal",
                    hint="Change the prompt, or set enable_safety_checker to false.",
                )
            context.publish_progress(0.9, "fal: downloading the output")
            artifacts = [await store_output(context, self.artifact_type, f.url) for f in result.files()]
            if self.spec.per_megapixel and all(f.width and f.height for f in result.files()):
                units = sum(billed_megapixels(f.width, f.height) for f in result.files())
                context.record_cost(self.spec.price.times(units))
            await context.clear_job()
        return output_for(self.artifact_type, artifacts)

    async def _rejoin(self, fal: FalClient, context: GeneratorContext) -> FalJob | None:
        record = await self.previous_record(context, _FalRecord)
        if record is None or record.job_id is None:
            return None
        job = FalJob(
            request_id=record.job_id,
            status_url=record.status_url,
            response_url=record.response_url,
            cancel_url=record.cancel_url,
        )
        try:
            status = await fal.status(job)
        except ProviderInputError:  # 404: fal no longer knows the request
            return None
        if status.status == "COMPLETED" and status.error:
            return None  # it failed or was cancelled: nothing to collect, submit a fresh one
        return job


def _flux_units(i: Any) -> int:
    return billed_megapixels(*size_of(i.image_size)) * i.num_images


def _clarity_units(i: ClarityUpscalerInput) -> int:
    return billed_megapixels(
        math.floor(i.image_url.width * i.upscale_factor), math.floor(i.image_url.height * i.upscale_factor)
    )


FAL_SPECS = [
    FalSpec(
        "fal/flux-dev",
        "fal-ai/flux/dev",
        "image",
        "FLUX.1 [dev] text to image on fal.",
        FluxDevInput,
        FAL_PRICES["fal-ai/flux/dev"],
        _flux_units,
        max_wait_s=300,
        per_megapixel=True,
    ),
    FalSpec(
        "fal/flux-schnell",
        "fal-ai/flux/schnell",
        "image",
        "FLUX.1 [schnell]: fast 1-4 step text to image.",
        FluxSchnellInput,
        FAL_PRICES["fal-ai/flux/schnell"],
        _flux_units,
        max_wait_s=120,
        per_megapixel=True,
    ),
    FalSpec(
        "fal/clarity-upscaler",
        "fal-ai/clarity-upscaler",
        "image",
        "Clarity upscaler: 1-4x with added detail.",
        ClarityUpscalerInput,
        FAL_PRICES["fal-ai/clarity-upscaler"],
        _clarity_units,
        max_wait_s=600,
        result=FalImageResult,
        per_megapixel=True,
    ),
    FalSpec(
        "fal/kling-2.1-image-to-video",
        "fal-ai/kling-video/v2.1/standard/image-to-video",
        "video",
        "Kling 2.1 Standard: animate an image into a 5 or 10 s clip.",
        KlingImageToVideoInput,
        FAL_PRICES["fal-ai/kling-video/v2.1/standard/image-to-video"],
        lambda i: int(i.duration),
        max_wait_s=1800,
        result=FalVideoResult,
    ),
    FalSpec(
        "fal/kling-2.5-text-to-video",
        "fal-ai/kling-video/v2.5-turbo/pro/text-to-video",
        "video",
        "Kling 2.5 Turbo Pro: a 5 or 10 s clip from text.",
        KlingTextToVideoInput,
        FAL_PRICES["fal-ai/kling-video/v2.5-turbo/pro/text-to-video"],
        lambda i: int(i.duration),
        max_wait_s=1800,
        result=FalVideoResult,
    ),
]
