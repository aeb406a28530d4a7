"""One factory turns any generator into a Prefect task: retries, content cache, timeout, tags, progress."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

from prefect import Task, get_run_logger, task
from prefect.artifacts import acreate_progress_artifact, aupdate_progress_artifact
from prefect.context import TaskRunContext

from generators.base import BaseGenerator, GeneratorResult
from generators.context import GeneratorContext
from generators.errors import RateLimitError, is_retryable
from generators.integrity import first_damage
from generators.sidecars import MadeBy, restore_sidecars
from generators.storage import ArtifactStore

from ..events import EventSink, StepProgress, current_sink
from ..reporting.costs import artifact_key
from .caching import GeneratorCachePolicy, ResultIndex
from .locks import lock_manager
from .records import result_storage, with_result_storage

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
    """Generator progress → the run's event sink, Prefect logs (every 10 %), and for a step that runs long a
    progress artifact on its task run.

    The artifact is made only once the step has run for LONG_STEP_SECONDS: a short step would only clutter the
    run's Artifacts tab with a finished bar, at two API calls on the run's critical path.
    """

    LONG_STEP_SECONDS = 10.0

    def __init__(self, step: str, generator: str, sink: EventSink) -> None:
        self.step = step
        self.generator = generator
        self._message = ""
        self.sink = sink
        self.logger = get_run_logger()
        self.started = time.monotonic()
        self.artifact_id: Any = None
        self._logged = -1
        self._pending: set[asyncio.Task] = set()
        self._sending = asyncio.Lock()  # one create, then updates in order
        self._last_sent = 0.0

    def __call__(self, fraction: float, message: str) -> None:
        self.sink(StepProgress(self.step, fraction, message))
        tenth = int(fraction * 10)
        if tenth > self._logged:
            self._logged = tenth
            self.logger.info("%s: %3.0f%% %s", self.step, fraction * 100, message)
        if time.monotonic() - self.started < self.LONG_STEP_SECONDS or fraction - self._last_sent < 0.05:
            return
        self._last_sent = fraction
        self._message = message
        job = asyncio.get_running_loop().create_task(self._send(round(fraction * 100, 1)))
        self._pending.add(job)
        job.add_done_callback(self._pending.discard)

    def description(self, percent: float, message: str) -> str:
        """What the card says: whose progress it is and where it stands (a bare bar, keyless, said nothing)."""
        said = f" · {message}" if message else ""
        return f"Progress of step `{self.step}` ({self.generator}): {percent:.0f}%{said}"

    async def _send(self, percent: float) -> None:
        async with self._sending:
            description = self.description(percent, self._message)
            if self.artifact_id is None:
                self.artifact_id = await acreate_progress_artifact(
                    progress=percent, key=artifact_key(self.step, "progress"), description=description
                )
            else:
                await aupdate_progress_artifact(self.artifact_id, progress=percent, description=description)

    async def finish(self) -> None:
        await asyncio.gather(*self._pending, return_exceptions=True)
        if self.artifact_id is not None:
            elapsed = time.monotonic() - self.started
            await aupdate_progress_artifact(
                self.artifact_id, progress=100.0, description=self.description(100.0, f"done in {elapsed:.0f} s")
            )


# Opens the slot a step's generator runs in (a provider's concurrency limit); none by default.
Hold = Callable[[], AbstractAsyncContextManager[Any]]


def _free() -> AbstractAsyncContextManager[Any]:
    return contextlib.nullcontext()


def generator_task(generator: BaseGenerator, store: ArtifactStore, **overrides: Any) -> Task:
    """A Prefect task running `generator`. Call it as `await t(call=<a bound StepCall>, step=label)` from a flow.

    The call carries the validated inputs, the cache key (which the cache policy reads) and the estimate,
    all worked out when the step was bound; the task only runs it. `hold` opens the slot the generator's
    work runs in: a cache hit, and the task run's own start and finish, take no slot.
    """
    config: TaskConfig = {**DEFAULTS, **overrides}  # type: ignore[typeddict-item]

    async def run_generator(call: StepCall, step: str, hold: Hold = _free) -> GeneratorResult:
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
        progress = _TaskProgress(step, generator.name, current_sink())
        run_id = str(run_ctx.task_run.flow_run_id) if run_ctx and run_ctx.task_run.flow_run_id else None
        async with GeneratorContext(store, run_id=run_id, step=step, cache_key=key, progress=progress) as ctx:
            try:
                async with hold():  # the provider's slot covers the generator's work, not Prefect's bookkeeping
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
    made = task(run_generator).with_options(
        name=generator.name,
        description=generator.description,
        task_run_name="{step} · " + generator.name,
        tags=task_tags(generator, config["tags"]),
        cache_policy=policy,
        persist_result=True,
        result_serializer="json",
        refresh_cache=config["refresh_cache"],
        retries=config["retries"],
        retry_delay_seconds=0,  # the delay (backoff, Retry-After) is slept above, where the error is known
        retry_condition_fn=_retry_only_transient,
        timeout_seconds=config["timeout_seconds"],
    )
    # Results and cache records beside the artifacts in an S3 store, so every machine sees them (records.py).
    return with_result_storage(made, result_storage(store))


@dataclass(frozen=True)
class Outcome:
    """What running a call gave: its result, whether that came from the cache, and, when a cached answer
    could not be served and the step was made again, why ("re-made: object missing" / "re-made: bytes changed")."""

    result: GeneratorResult
    cached: bool
    remade: str | None = None


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

    async def run(self, call: StepCall, refresh: bool, hold: Hold = _free) -> Outcome:
        """The call's Outcome; the step's exception when it failed.

        A cached answer counts only when every artifact it names is intact in the store, whichever record
        gave it (Prefect's cache record, the result index, another machine's): otherwise the step is made
        again, its new result replacing the record that answered.
        """
        result, cached = await self._run(call, refresh, hold)
        if not cached:
            return Outcome(result, False)
        if not _vouched(call, result) and (damage := await first_damage(self.store, result.artifacts())):
            get_run_logger().warning(
                "%s: the cached result names %s, %s: making it again", call.label, damage.artifact.short, damage.problem
            )
            result, _ = await self._run(call, True, hold)
            return Outcome(result, False, damage.reason)
        # A hit names its artifacts; one whose sidecar was lost gets it back, so lineage finds it.
        made_by = MadeBy(generator=call.generator.name, input_digest=call.key, step=call.label)
        if restored := await restore_sidecars(self.store, result.artifacts(), made_by):
            get_run_logger().info("%s: restored %d missing sidecar(s)", call.label, len(restored))
        return Outcome(result, True)

    async def _run(self, call: StepCall, refresh: bool, hold: Hold) -> tuple[GeneratorResult, bool]:
        task = self.task(call.generator, call.options, refresh)
        state = await task(call=call, step=call.label, hold=hold, return_state=True)
        if not state.is_completed():
            exc = await state.result(raise_on_failure=False)
            raise exc if isinstance(exc, BaseException) else RuntimeError(str(exc))
        result: GeneratorResult = await state.result()
        return result, state.name == "Cached" or result.reused


def _vouched(call: StepCall, result: GeneratorResult) -> bool:
    """Checked already: the result the index gave when the call was bound (and whose bytes were checked
    then), or one the task took from the index itself (checked in the task)."""
    if result.reused:
        return True
    checked = call.lookup.result
    return checked is not None and _names(checked) == _names(result)


def _names(result: GeneratorResult) -> list[tuple[str, str]]:
    return [(a.sha256, a.storage_url) for a in result.artifacts()]
