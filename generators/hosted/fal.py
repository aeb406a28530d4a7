"""fal.ai models as one generator class; the models themselves are entries in generators/catalogue/fal.yaml.

An entry's `output.field` names the result field holding the file(s) (`images`, `image`, `video`, `audio`…).
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..context import GeneratorContext
from ..errors import JobFailedError, ProviderError, ProviderInputError
from ..providers.fal import FalClient, FalJob
from ..providers.http import parse_data, store_output
from ._base import HostedGenerator, JobRecord, output_for

IMAGE_SIZES: dict[str, tuple[int, int]] = {
    "square_hd": (1024, 1024),
    "square": (512, 512),
    "portrait_4_3": (768, 1024),
    "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768),
    "landscape_16_9": (1024, 576),
}
# fal's pages say images are "billed by rounding up to the nearest megapixel"; its pricing examples price a
# 1024x1024 image as one megapixel, so a megapixel here is 2**20 pixels (see docs/catalogue.md for the source).
FAL_MEGAPIXEL = 1024 * 1024


def size_of(image_size: Any) -> tuple[int, int]:
    if isinstance(image_size, str):
        return IMAGE_SIZES[image_size]
    return (image_size.width, image_size.height)


def billed_megapixels(size: tuple[Any, Any]) -> int:
    width, height = size
    return max(1, math.ceil(Decimal(int(width) * int(height)) / FAL_MEGAPIXEL))


class FalFile(BaseModel):
    model_config = ConfigDict(extra="ignore")

    url: str
    content_type: str | None = None
    width: int | None = None  # images report their size; fal bills by it
    height: int | None = None


class _FalResult(BaseModel):
    model_config = ConfigDict(extra="ignore")

    files: list[FalFile] = Field(min_length=1)
    has_nsfw_concepts: list[bool] = []  # absent when the safety checker is off


def parse_result(data: Any, field: str, model: str) -> _FalResult:
    """The file(s) under `field` of a fal result (one file or a list), and the safety checker's verdicts."""
    if not isinstance(data, dict) or field not in data:
        parse_data(_FalResult, {}, "fal", f"{model} result (no {field!r} field)")
    value = data[field]
    files = value if isinstance(value, list) else [value]
    files = [{"url": f} if isinstance(f, str) else f for f in files]  # some endpoints answer a bare URL
    return parse_data(
        _FalResult,
        {"files": files, "has_nsfw_concepts": data.get("has_nsfw_concepts") or []},
        "fal",
        f"{model} result",
    )


def _text_of(data: Any, spec: Any) -> str:
    field = spec.output["text"]
    if not isinstance(data, dict) or not isinstance(data.get(field), str):
        parse_data(_FalResult, {}, "fal", f"{spec.model} result (no text field {field!r})")
    return data[field]


class _FalRecord(JobRecord):
    status_url: str
    response_url: str
    cancel_url: str


class FalGenerator(HostedGenerator):
    client_class = FalClient
    price_functions = {"billed_megapixels": billed_megapixels, "size": size_of}

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
                await self._raise_failed(fal, job, inputs, context, status.error)
            data = await fal.result(job)
            if "text" in self.spec.output:  # speech to text: the transcript is a field of the answer
                await context.clear_job()
                return output_for("text", [await context.store_text_result(_text_of(data, self.spec))])
            result = parse_result(data, self.spec.output.get("field", "images"), self.spec.model)
            if any(result.has_nsfw_concepts):
                raise JobFailedError(
                    "fal's safety checker replaced an image with a black one",
                    provider="fal",
                    hint="Change the prompt, or set enable_safety_checker to false.",
                )
            context.publish_progress(0.9, "fal: downloading the output")
            artifacts = [await store_output(context, self.artifact_type, f.url) for f in result.files]
            if all(f.width and f.height for f in result.files):
                units = sum(billed_megapixels((f.width, f.height)) for f in result.files)
                if (actual := self.spec.pricing.reported({"megapixels": units})) is not None:
                    context.record_cost(actual)
            await context.clear_job()
        return output_for(self.artifact_type, artifacts)

    async def _raise_failed(self, fal: FalClient, job: FalJob, inputs: Any, context: GeneratorContext, error: str):
        """A request that completed with an error. fal may charge one its runner rejected as invalid input
        (HTTP 422 on the result) after spending GPU time on it; server errors (5xx) are never charged (fal FAQ,
        https://docs.fal.ai/faq, checked 2026-12-03). The estimate is recorded as what it may have cost."""
        try:
            await fal.result(job)
        except ProviderInputError as exc:
            if exc.status_code == 422:
                await context.clear_job()  # a resubmission of the same inputs fails the same way
                exc.charged_usd = await self.estimate_cost(inputs)
                context.record_cost(exc.charged_usd)
                raise
        except ProviderError:
            pass  # the failed request's own answer (a 5xx, never charged): its status already said why
        raise JobFailedError(f"request {job.request_id} failed: {error}", provider="fal")

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
