"""Shared pieces of the orchestration tests: a small real test generator, a tiny pipeline, Prefect read-backs."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from generators.artifacts import ImageArtifact, TextArtifact
from generators.base import BaseGenerator
from generators.context import GeneratorContext

COUNTER_ENV = "BOARDFLOW_TEST_COUNTER"  # a file each Echo execution appends a line to (seen across processes)


class EchoInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=200, description="What to write.")
    source: TextArtifact | None = Field(default=None, description="Upstream text appended to ours.")
    image: ImageArtifact | None = Field(default=None, description="An image whose bytes are read and fingerprinted.")


class EchoOutput(BaseModel):
    text: TextArtifact


@dataclass
class Call:
    at: float  # time.monotonic() when generate() started
    text: str


class Echo(BaseGenerator):
    """Writes its text (plus what it read from its inputs) as a text artifact; counts every execution.

    It can charge (`estimate`, `actual`), take time (`work_seconds`) and fail on cue (`fail_on(n)`
    returns the exception for the n-th execution, or None), so orchestration can be tested on it.
    """

    artifact_type = "text"
    description = "Test generator: echoes its text; charges, takes time or fails on cue."

    def __init__(
        self,
        name: str = "test/echo",
        *,
        provider: str = "test",
        estimate: str = "0",
        actual: str | None = None,
        work_seconds: float = 0.0,
        fail_on: Callable[[int], BaseException | None] | None = None,
    ) -> None:
        self.name = name
        self.provider = provider
        self.estimate = Decimal(estimate)
        self.actual = Decimal(actual) if actual is not None else None
        self.work_seconds = work_seconds
        self.fail_on = fail_on
        self.calls: list[Call] = []

    def get_input_schema(self) -> type[BaseModel]:
        return EchoInput

    def get_output_schema(self) -> type[BaseModel]:
        return EchoOutput

    async def estimate_cost(self, inputs: EchoInput) -> Decimal:
        return self.estimate

    async def generate(self, inputs: EchoInput, context: GeneratorContext) -> EchoOutput:
        self.calls.append(Call(time.monotonic(), inputs.text))
        if counter := os.environ.get(COUNTER_ENV):
            with open(counter, "a", encoding="utf-8") as fh:
                fh.write(f"{self.name} {inputs.text}\n")
        if self.fail_on and (exc := self.fail_on(len(self.calls))):
            raise exc
        if self.work_seconds:
            await asyncio.sleep(self.work_seconds)  # stands in for a provider's processing time
        parts = [inputs.text]
        if inputs.source is not None:
            parts.append(inputs.source.content)
        if inputs.image is not None:
            data = (await context.resolve_artifact(inputs.image)).read_bytes()
            parts.append(f"image {hashlib.sha256(data).hexdigest()[:12]} ({len(data)} bytes)")
        if self.actual is not None:
            context.record_cost(self.actual)
        return EchoOutput(text=await context.store_text_result(" | ".join(parts)))


def tiny_spec(name: str = "tiny") -> dict[str, Any]:
    """Real local generators at small sizes, plus the counting Echo at the end of a chain."""
    return {
        "name": name,
        "params": {"line": {"type": "string", "default": "Hello from the tiny pipeline."}},
        "steps": {
            "still": {
                "generator": "local/procedural-image",
                "inputs": {"prompt": "a red fox in snow", "size": "512x512"},
            },
            "clip": {
                "generator": "local/ken-burns",
                "inputs": {"image": "${steps.still.image}", "resolution": "320x180", "duration": 1, "fps": 24},
            },
            "voice": {"generator": "local/tts", "inputs": {"text": "${params.line}"}},
            "caption": {
                "generator": "local/text-template",
                "inputs": {"template": "Caption: {line}", "parameters": {"line": "${params.line}"}},
            },
            "echo": {"generator": "test/echo", "inputs": {"text": "tiny", "source": "${steps.caption.text}"}},
        },
        "outputs": {"video": "${steps.clip.video}", "voice": "${steps.voice.audio}", "echo": "${steps.echo.text}"},
    }


async def run_spec(spec: dict[str, Any], **kwargs: Any) -> tuple[Any, Any]:
    """Run the pipeline flow; (final state, its result as JSON — what a deployment's caller reads — or the
    exception it failed with)."""
    from flows.pipeline import PipelineRun, run_pipeline

    state = await run_pipeline(spec=spec, return_state=True, **kwargs)
    result = await state.result(raise_on_failure=False)
    return state, result.model_dump(mode="json") if isinstance(result, PipelineRun) else result


async def bound(generator: BaseGenerator, inputs: dict[str, Any], label: str = "step") -> Any:
    """A StepCall of `generator` on `inputs`, bound as a pipeline binds its steps (to call a task directly)."""
    from flows.pipeline.bind import bind_raw
    from flows.pipeline.spec import StepSpec

    return await bind_raw(label, label, inputs, StepSpec(generator=generator.name, inputs=inputs), generator)


def by_step(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        found.setdefault(record["step"], []).append(record)
    return found


async def task_runs(flow_run_id: Any) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    async with get_client() as client:
        return await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))


async def flow_run_artifacts(flow_run_id: Any) -> dict[str, Any]:
    """The keyed artifacts of one flow run, by key."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    async with get_client() as client:
        found = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {a.key: a for a in found if a.key}


def table_data(artifact: Any) -> list[dict[str, Any]]:
    """The rows of a Prefect table artifact (the API returns them as JSON text)."""
    return json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data
