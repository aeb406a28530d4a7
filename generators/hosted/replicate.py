"""Replicate models as one generator class.

Official models run by name and are priced per output; community models run by version id and are billed
per second of hardware time, so their actual cost is `metrics.predict_time` x the hardware's price.
The models themselves are entries in generators/catalogue/replicate.yaml; `output.shape` says how a
prediction's output maps to artifacts: `uri` (one file), `uris` (a list) or `text` (a field of its JSON).
"""

from __future__ import annotations

import datetime as dt
import functools
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, RootModel

from ..context import GeneratorContext
from ..errors import JobFailedError, ProviderInputError, UnexpectedResponseError
from ..providers.http import parse_data, store_output
from ..providers.replicate import Prediction, ReplicateClient
from ._base import HostedGenerator, JobRecord, output_for


class Uri(RootModel[str]):
    def urls(self) -> list[str]:
        return [self.root]


class UriList(RootModel[list[str]]):
    def urls(self) -> list[str]:
        return self.root


SHAPES: dict[str, type[BaseModel]] = {"uri": Uri, "uris": UriList}


def text_of(output: Any, field: str, model: str) -> str:
    """The text under `field` of a model's JSON output (e.g. Whisper's `transcription`)."""
    if not isinstance(output, dict) or not isinstance(output.get(field), str):
        raise UnexpectedResponseError(
            f"{model} output has no text field {field!r}", provider="replicate", body=str(output)[:500]
        )
    return output[field]


class ReplicateGenerator(HostedGenerator):
    client_class = ReplicateClient

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
            context.publish_progress(0.9, "replicate: storing the output")
            shape = self.spec.output.get("shape", "uri")
            if shape == "text":
                text = text_of(done.output, self.spec.output["field"], self.spec.model)
                artifacts = [await context.store_text_result(text)]
            else:
                output: Any = parse_data(SHAPES[shape], done.output, "replicate", f"{self.spec.model} output")
                artifacts = [await store_output(context, self.artifact_type, u) for u in output.urls()]
            self._record_compute(done, context)
            await context.clear_job()
        return output_for(self.artifact_type, artifacts)

    def _record_compute(self, done: Prediction, context: GeneratorContext) -> None:
        if done.metrics is None or done.metrics.predict_time is None:
            return
        actual = self.spec.pricing.reported({"predict_time": Decimal(str(done.metrics.predict_time))})
        if actual is not None:  # billed by hardware time: the seconds Replicate reports are what it charges
            context.record_compute_seconds(done.metrics.predict_time)
            context.record_cost(actual)

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
        record = await self.previous_record(context, JobRecord)
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
