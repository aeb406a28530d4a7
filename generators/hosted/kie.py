"""Kie's Suno models as one generator class; the models themselves are entries in generators/catalogue/kie.yaml.

A Suno task makes two tracks from one request (https://docs.kie.ai/cn/suno-api/generate-music, 2026-12-04);
an audio step makes one artifact, so the first track is kept and the second is left at Kie.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from ..context import GeneratorContext
from ..errors import JobFailedError, ProviderInputError, UnexpectedResponseError
from ..providers.http import store_output
from ..providers.kie import KieClient
from ._base import HostedGenerator, JobRecord, output_for


class KieGenerator(HostedGenerator):
    client_class = KieClient

    async def generate(self, inputs: Any, context: GeneratorContext) -> BaseModel:
        async with self.client() as kie:
            task_id = await self._rejoin(kie, context)
            if task_id is None:
                arguments = await self.provider_arguments(inputs, context, _no_uploads)
                body = {**arguments, "model": self.spec.model}
                # Kie documents no listing of tasks, so a lost answer cannot be looked up: it is counted.
                task_id = await self.submit_once(context, lambda: kie.generate_music(body))
            await context.set_external_job_id(task_id, provider="kie", model=self.spec.model)
            record = await kie.wait(task_id, timeout=self.spec.max_wait_s, progress=context.publish_progress)
            if record.failed:
                await context.clear_job()
                raise JobFailedError(
                    f"task {task_id} ended {record.status}: {record.errorMessage or 'no message given'}",
                    provider="kie",
                    hint="SENSITIVE_WORD_ERROR: change the prompt, style or title."
                    if "SENSITIVE" in record.status
                    else None,
                )
            if not record.tracks:
                raise UnexpectedResponseError(
                    f"task {task_id} succeeded with no track URL", provider="kie", body=record.model_dump_json()[:500]
                )
            context.publish_progress(0.9, "kie: downloading the track")
            artifact = await store_output(context, self.artifact_type, record.tracks[0].audioUrl or "")
            await context.clear_job()
        return output_for(self.artifact_type, [artifact])

    async def _rejoin(self, kie: KieClient, context: GeneratorContext) -> str | None:
        record = await self.previous_record(context, JobRecord)
        if record is None or record.job_id is None:
            return None
        try:
            found = await kie.music_record(record.job_id)
        except ProviderInputError:  # Kie no longer knows the task
            return None
        return None if found.failed else record.job_id


async def _no_uploads(path, mime: str) -> str:
    raise ProviderInputError(f"kie: this model takes no files ({path.name}, {mime})", provider="kie")
