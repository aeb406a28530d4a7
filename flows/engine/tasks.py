"""One factory turns any generator into a Prefect task: retries, content cache, timeout, tags, progress."""

from __future__ import annotations

import asyncio
import os
import random
from typing import TYPE_CHECKING, Any, TypedDict

from prefect import Task, get_run_logger, task
from prefect.artifacts import acreate_progress_artifact, aupdate_progress_artifact
from prefect.context import TaskRunContext

from generators.base import BaseGenerator, GeneratorResult
from generators.context import GeneratorContext
from generators.errors import RateLimitError, is_retryable
from generators.storage import ArtifactStore

from ..events import EventSink, StepProgress, current_sink
from .caching import GeneratorCachePolicy, ResultIndex, result_storage_path
from .locks import lock_manager

if TYPE_CHECKING:
    from ..pipeline.bind import StepCall


class TaskConfig(TypedDict, total=False):
    """Per-step task settings; a pipeline step may override any of them."""

    retries: int  # extra attempts for transient faults only (429, 5xx, timeouts, resets)
    backoff_seconds: float  # first retry delay; doubles each attempt, with ±50 % jitter
    backoff_max_seconds: float
    timeout_seconds: float
    refresh_cache: bool  # run even when a cached result exists
    tags: list[str]


DEFAULTS: TaskConfig = {
    "retries": 3,
    "backoff_seconds": 2.0,
    "backoff_max_seconds": 120.0,
    "timeout_seconds": 3600.0,
    "refresh_cache": False,
    "tags": [],
}


def task_tags(generator: BaseGenerator, extra: list[str]) -> list[str]:
    """Tags for a generator's task runs: none unless asked for (BOARDFLOW_TASK_TAGS=1 or a step's `tags`).

    Prefect takes a tag-concurrency slot on the API for every tagged task run, limit or not: two
    writes per step which, on the SQLite server, collide with the run's other writes and come back
    503, each costing the client a 2 s back-off (measured: most of the orchestration overhead). Turn
    them on to filter task runs by generator/provider in the UI or cap them with tag limits.
    """
    if os.environ.get("BOARDFLOW_TASK_TAGS", "").strip().lower() in ("1", "true", "yes", "on"):
        return [generator.name, f"provider:{generator.provider}", f"type:{generator.artifact_type}", *extra]
    return list(extra)


def retry_delay(attempt: int, exc: BaseException, config: TaskConfig) -> float:
    """Exponential backoff with jitter; never shorter than a provider's Retry-After."""
    base = min(config["backoff_max_seconds"], config["backoff_seconds"] * 2 ** (attempt - 1))
    delay = base * random.uniform(0.5, 1.5)
    if isinstance(exc, RateLimitError) and exc.retry_after:
        delay = max(delay, exc.retry_after)
    return delay


def _retry_only_transient(task: Task, task_run, state) -> bool:
    # The engine hands us Failed(data=<the exception>) for an exception raised by the task.
    exc = state.data if isinstance(state.data, BaseException) else None
    return exc is not None and is_retryable(exc)


class _TaskProgress:
    """Generator progress → the run's event sink, Prefect logs (every 10 %) and a progress artifact on the task run."""

    def __init__(self, step: str, sink: EventSink) -> None:
        self.step = step
        self.sink = sink
        self.logger = get_run_logger()
        self.artifact_id = None
        self._logged = -1
        self._pending: set[asyncio.Task] = set()
        self._last_sent = 0.0

    async def start(self) -> None:
        self.artifact_id = await acreate_progress_artifact(progress=0.0, description=f"{self.step}: progress")

    def __call__(self, fraction: float, message: str) -> None:
        self.sink(StepProgress(self.step, fraction, message))
        tenth = int(fraction * 10)
        if tenth > self._logged:
            self._logged = tenth
            self.logger.info("%s: %3.0f%% %s", self.step, fraction * 100, message)
        if self.artifact_id and fraction - self._last_sent >= 0.05:
            self._last_sent = fraction
            job = asyncio.get_running_loop().create_task(
                aupdate_progress_artifact(self.artifact_id, progress=round(fraction * 100, 1))
            )
            self._pending.add(job)
            job.add_done_callback(self._pending.discard)

    async def finish(self) -> None:
        await asyncio.gather(*self._pending, return_exceptions=True)
        if self.artifact_id:
            await aupdate_progress_artifact(self.artifact_id, progress=100.0)


def generator_task(generator: BaseGenerator, store: ArtifactStore, **overrides: Any) -> Task:
    """A Prefect task running `generator`. Call it as `await t(call=<a bound StepCall>, step=label)` from a flow.

    The call carries the validated inputs, the cache key (which the cache policy reads) and the estimate,
    all worked out when the step was bound; the task only runs it.
    """
    config: TaskConfig = {**DEFAULTS, **overrides}  # type: ignore[typeddict-item]

    async def run_generator(call: StepCall, step: str) -> GeneratorResult:
        run_ctx = TaskRunContext.get()
        attempt = run_ctx.task_run.run_count if run_ctx else 1
        key = call.key
        assert key is not None, f"{step} was bound on stand-ins and cannot run"
        index = ResultIndex(store)
        if not config["refresh_cache"] and (found := await index.usable(key)) is not None:
            # A run that stopped (killed, crashed) between indexing this result and Prefect recording its
            # cache entry: the work is done and stored, so hand it back rather than make it again.
            get_run_logger().info("%s: reusing the indexed result of an earlier run (no cache record)", step)
            return found.model_copy(update={"reused": True})
        progress = _TaskProgress(step, current_sink())
        await progress.start()
        run_id = str(run_ctx.task_run.flow_run_id) if run_ctx and run_ctx.task_run.flow_run_id else None
        async with GeneratorContext(store, run_id=run_id, step=step, cache_key=key, progress=progress) as ctx:
            try:
                result = await generator.run(call.inputs, ctx, estimate=call.estimate)
            except Exception as exc:
                if is_retryable(exc) and attempt <= config["retries"]:
                    delay = retry_delay(attempt, exc, config)
                    progress.logger.warning(
                        "%s: %s — retry %d/%d in %.1fs", step, exc, attempt, config["retries"], delay
                    )
                    await asyncio.sleep(delay)
                raise
        await index.put(key, result)
        await progress.finish()
        return result

    policy = GeneratorCachePolicy(store_url=store.root_url, isolation_level="SERIALIZABLE", lock_manager=lock_manager())
    return task(run_generator).with_options(
        name=generator.name,
        description=generator.description,
        task_run_name="{step} · " + generator.name,
        tags=task_tags(generator, config["tags"]),
        cache_policy=policy,
        persist_result=True,
        result_storage=result_storage_path(),
        result_serializer="json",
        refresh_cache=config["refresh_cache"],
        retries=config["retries"],
        retry_delay_seconds=0,  # the delay (backoff, Retry-After) is slept above, where the error is known
        retry_condition_fn=_retry_only_transient,
        timeout_seconds=config["timeout_seconds"],
    )


class TaskExecutor:
    """Runs bound calls as Prefect tasks: the task of each (generator, task options, refresh) is made once.

    A batch hands one to all its rows, so a thousand rows do not build a thousand copies of each task.
    """

    def __init__(self, store: ArtifactStore) -> None:
        self.store = store
        self._made: dict[tuple[Any, ...], Task] = {}

    def task(self, generator: BaseGenerator, options: dict[str, Any], refresh: bool) -> Task:
        key = (id(generator), generator.name, refresh, repr(sorted(options.items())))
        if key not in self._made:
            self._made[key] = generator_task(generator, self.store, refresh_cache=refresh, **options)
        return self._made[key]

    async def run(self, call: StepCall, refresh: bool) -> tuple[GeneratorResult, bool]:
        """(result, whether it came from the cache); the step's exception when it failed."""
        state = await self.task(call.generator, call.options, refresh)(call=call, step=call.label, return_state=True)
        if not state.is_completed():
            exc = await state.result(raise_on_failure=False)
            raise exc if isinstance(exc, BaseException) else RuntimeError(str(exc))
        result: GeneratorResult = await state.result()
        return result, state.name == "Cached" or result.reused
