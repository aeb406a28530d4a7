"""What the per-provider hosted generator classes share: one instance per model spec, outputs, uploads, rejoining."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..artifacts import Artifact, AudioArtifact, ImageArtifact, TextArtifact, VideoArtifact
from ..base import Availability, BaseGenerator
from ..catalogue.entry import HostedSpec
from ..context import GeneratorContext
from ..errors import ProviderError
from ..providers.http import ProviderClient, mime_type

log = logging.getLogger("boardflow")
R = TypeVar("R", bound="JobRecord")
J = TypeVar("J")
Upload = Callable[[Path, str], Awaitable[str]]  # (local file, MIME type) -> URL the provider can read


class ImagesOutput(BaseModel):
    images: list[ImageArtifact] = Field(min_length=1)


class VideoOutput(BaseModel):
    video: VideoArtifact


class AudioOutput(BaseModel):
    audio: AudioArtifact


class TextOutput(BaseModel):
    text: TextArtifact


OUTPUTS: dict[str, type[BaseModel]] = {
    "image": ImagesOutput,
    "video": VideoOutput,
    "audio": AudioOutput,
    "text": TextOutput,
}


def output_for(kind: str, artifacts: Sequence[Artifact]) -> BaseModel:
    """The output model for `kind`; validation checks each artifact is of the kind's own class."""
    if kind == "image":
        return ImagesOutput.model_validate({"images": list(artifacts)})
    (only,) = artifacts  # video, audio and text models make exactly one
    return OUTPUTS[kind].model_validate({kind: only})


class JobRecord(BaseModel):
    """A journal entry (generators/context.py) as this generator wrote it; unknown keys are ignored.

    `job_id` is None for an intent: written before a paid submission, it stays when the answer was lost.
    """

    model_config = ConfigDict(extra="ignore")

    job_id: str | None = None
    generator: str | None = None
    provider: str
    intent_at: str | None = None


class HostedGenerator(BaseGenerator):
    """Base of FalGenerator, ReplicateGenerator, OpenAIGenerator, ElevenLabsGenerator: data, not copies.

    `client_options` go to the provider client (base_url, http, poll_interval…); `configured()` returns a
    copy with some changed, e.g. a shared httpx client for a batch or fast polling in tests.
    """

    client_class: ClassVar[type[ProviderClient]]
    # Helpers the provider's price formulas may call (e.g. fal's megapixel rounding), by name.
    price_functions: ClassVar[dict[str, Callable[..., Any]]] = {}

    def __init__(self, spec: HostedSpec, **client_options: Any) -> None:
        self.spec = spec
        self.name = spec.id
        self.artifact_type = spec.artifact_type
        self.description = spec.description
        self.provider = self.client_class.info.name
        self.credentials = (self.client_class.info.credential,)
        self.cost_model = spec.pricing.describe()
        self.lifecycle = spec.lifecycle
        self.priced = not spec.pricing.unknown
        self.client_options = client_options

    def availability(self) -> Availability:
        """A shut-down model cannot run whatever keys are set: say so, with the replacement, before any spend."""
        if self.lifecycle.status == "shut_down":
            fix = f"Use {self.lifecycle.replacement}." if self.lifecycle.replacement else "Pick another model."
            return Availability(False, self.lifecycle.message(self.name, self.provider), fix)
        return super().availability()

    def configured(self, **client_options: Any) -> HostedGenerator:
        return type(self)(self.spec, **{**self.client_options, **client_options})

    def get_input_schema(self) -> type[BaseModel]:
        return self.spec.input

    def get_output_schema(self) -> type[BaseModel]:
        return OUTPUTS[self.spec.artifact_type]

    async def estimate_cost(self, inputs: Any) -> Decimal:
        """The entry's price rule applied to these inputs; $0 when the price is unknown (see `priced`)."""
        estimate = self.spec.pricing.estimate(inputs, self.spec.tables, self.price_functions)
        return Decimal(0) if estimate is None else estimate

    def client(self) -> Any:
        return self.client_class(**self.client_options)

    async def provider_arguments(self, inputs: BaseModel, context: GeneratorContext, upload: Upload) -> dict:
        """The inputs as the provider's JSON: schema fields mirror the provider's names, and each artifact
        field (single, optional or list) becomes the URL of its bytes, uploaded with `upload`."""
        arguments = inputs.model_dump(mode="json", exclude_none=True)
        for field in type(inputs).model_fields:
            value = getattr(inputs, field)
            if isinstance(value, Artifact):
                arguments[field] = await self._upload(value, context, upload)
            elif isinstance(value, list) and value and isinstance(value[0], Artifact):
                arguments[field] = [await self._upload(item, context, upload) for item in value]
        return arguments

    @staticmethod
    async def _upload(artifact: Artifact, context: GeneratorContext, upload: Upload) -> str:
        path = await context.resolve_artifact(artifact)
        return await upload(path, mime_type(artifact.format, artifact.artifact_type))

    async def previous_record(self, context: GeneratorContext, record: type[R]) -> R | None:
        """The job an earlier attempt of this same step (same cache key) submitted, if it was ours."""
        raw = await context.previous_job()
        if raw is None or (raw.get("job_id") is None and record is not JobRecord):
            return None  # nothing journaled, or an intent whose job id never came: no job to rejoin by id
        try:
            found = record.model_validate(raw)
        except ValidationError as exc:
            log.warning("%s: ignoring a journal entry that is not a %s job (%s)", self.name, self.provider, exc)
            return None
        if found.provider != self.provider or found.generator not in (None, self.name):
            return None
        return found

    async def submit_once(
        self,
        context: GeneratorContext,
        submit: Callable[[], Awaitable[J]],
        find: Callable[[JobRecord], Awaitable[J | None]] | None = None,
        *,
        listing_complete: bool = True,
    ) -> J:
        """Submit a paid job, paying for it once when a submission's answer is lost.

        The intent is journaled first. An answer that never came (a dropped connection, a timeout) leaves it
        there, so the next attempt knows the provider may have taken and billed the job: it asks `find` (the
        provider's own listing) for that job before submitting again. A provider with no way to find it is
        submitted to again and the resubmission is counted as a possible duplicate charge, never silently.
        An answered refusal (429, 5xx, 4xx) billed nothing: the intent is cleared.
        `listing_complete=False` where a billed job may be missing from what `find` searches (ElevenLabs keeps
        no history of zero-retention requests): not found, the resubmission is still counted.
        """
        pending = await self.previous_record(context, JobRecord)
        unfound = pending is not None and pending.job_id is None
        if pending is not None and unfound and find is not None:
            if (found := await find(pending)) is not None:
                return found
            unfound = not listing_complete  # a complete listing without it: it was never billed
        if unfound:
            log.warning("%s: an earlier submission's answer was lost; submitting again may bill twice", self.name)
            context.count_possible_duplicate()
        await context.journal_intent(provider=self.provider, model=self.spec.model)
        try:
            return await submit()
        except ProviderError as exc:
            if exc.status_code is None:
                raise  # no answer: the provider may have taken this one too, and the intent says so
            # Answered: the provider refused this submission and billed nothing for it. An earlier lost one
            # stays unknown, so its intent stays for the next attempt to count; otherwise nothing is pending.
            if unfound:
                context.possible_duplicate_charges -= 1
                await context.journal_intent(provider=self.provider, model=self.spec.model)
            else:
                await context.clear_job()
            raise
