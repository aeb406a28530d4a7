"""Running a planned pipeline: steps as generator tasks, concurrent where independent, within slots and budget."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from prefect import get_run_logger

from generators.base import GeneratorResult
from generators.errors import BoardflowError, BudgetExceededError, DamagedArtifactError, InputError, is_retryable
from generators.registry import Registry
from generators.storage import ArtifactStore

from ..engine.caching import Lookup, ResultIndex
from ..engine.tasks import Hold, Outcome, TaskExecutor
from ..events import EventSink, StepDone, StepFailed, StepSkipped, StepStarted, discard
from ..reporting.costs import CostRecord
from .bind import StepCall, bind_raw
from .limits import Budget, LocalSlots, Slots
from .plan import Plan
from .scope import Scope
from .spec import PipelineSpec
from .validate import dependencies

StepResults = dict[str, GeneratorResult | list[GeneratorResult] | None]


class Executor(Protocol):
    async def run(self, call: StepCall, refresh: bool, hold: Hold) -> Outcome:
        """Run the call, its generator's work inside `hold()`: its result, whether that came from the cache
        (and why a cached answer was not served); raises what the step failed with."""
        ...


class PipelineFailedError(BoardflowError):
    def __init__(self, pipeline: str, failures: dict[str, str]):
        self.failures = failures
        lines = "\n".join(f"  - {step}: {why}" for step, why in failures.items())
        super().__init__(
            f"Pipeline {pipeline!r}: {len(failures)} step(s) failed:\n{lines}",
            hint="Fix the cause and run again: finished steps come from the cache at $0.",
        )


@dataclass
class PipelineRunner:
    """Runs the steps of `plan` in dependency order. Its collaborators are passed in, never overridden:
    `slots` (steps of a provider at once), `budget` (money), `executor` (Prefect tasks by default), `sink`."""

    spec: PipelineSpec
    plan: Plan
    registry: Registry
    store: ArtifactStore
    refresh: bool = False
    run_id: str | None = None
    slots: Slots = field(default_factory=LocalSlots)
    budget: Budget | None = None
    executor: Executor | None = None
    sink: EventSink = discard
    records: list[CostRecord] = field(default_factory=list)
    results: StepResults = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    errors: dict[str, BaseException] = field(default_factory=dict)  # what each failed step raised

    @property
    def failed_transiently(self) -> bool:
        """Every step that failed did so for a fault a retry can cure (429, 5xx, timeouts, dropped connections)."""
        return bool(self.errors) and all(is_retryable(e) for e in self.errors.values())

    def __post_init__(self) -> None:
        self._calls: dict[str, StepCall] = {}  # by label: the call each finished step ran
        self._remaking: dict[str, asyncio.Future[None]] = {}  # by sha256: a producer being made again
        self.budget = self.budget or Budget(self.spec.max_cost_usd)
        self.executor = self.executor or TaskExecutor(self.store)
        self._index = ResultIndex(self.store)
        self._fanned = {n for n, s in self.spec.steps.items() if s.for_each is not None}
        self._schemas = {n: self.registry.get(s.generator).get_output_schema() for n, s in self.spec.steps.items()}

    @property
    def spent(self) -> Decimal:
        return sum((r.actual_usd for r in self.records), Decimal(0))

    def scope(self) -> Scope:
        return Scope(self.plan.params, self.results, self._schemas, self._fanned)

    async def run(self) -> None:
        done: dict[str, asyncio.Future[bool]] = {n: asyncio.get_running_loop().create_future() for n in self.plan.order}

        async def run_step(name: str) -> None:
            ok = True
            for dep in dependencies(self.spec, name):
                ok &= await done[dep]
            if not ok:
                self._skip(name)
                done[name].set_result(False)
                return
            try:
                await self._run_step(name)
                done[name].set_result(True)
            except Exception as exc:  # recorded; independent branches go on
                self.failures.setdefault(name, str(exc))
                self.errors.setdefault(name, exc)
                done[name].set_result(False)

        await asyncio.gather(*(run_step(name) for name in self.plan.order))

    def _skip(self, name: str) -> None:
        step = self.spec.steps[name]
        self.failures[name] = "skipped: an upstream step failed"
        self.records.append(
            CostRecord(
                run_id=self.run_id,
                pipeline=self.spec.name,
                step=name,
                generator=step.generator,
                provider=self.registry.get(step.generator).provider,
                status="skipped",
                estimated_usd=Decimal(0),
                actual_usd=Decimal(0),
                actual_is_estimate=False,
                cached=False,
                error="upstream failed",
            )
        )
        self.sink(StepSkipped(name, "an upstream step failed"))

    async def _run_step(self, name: str) -> None:
        step = self.spec.steps[name]
        scope = self.scope()
        if step.for_each is None:
            self.results[name] = await self._run_item(name, name, None, scope)
            return
        items = scope.resolve(step.for_each)
        if not isinstance(items, list):
            raise InputError(f"{name}.for_each must give a list, got {type(items).__name__}.")
        outcomes = await asyncio.gather(
            *(self._run_item(name, f"{name}[{i}]", i, scope.for_item(item, i)) for i, item in enumerate(items)),
            return_exceptions=True,
        )
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        if errors:
            raise errors[0]
        self.results[name] = list(outcomes)  # type: ignore[arg-type]

    async def _run_item(self, name: str, label: str, index: int | None, scope: Scope) -> GeneratorResult:
        try:
            return await self._run_generators(name, label, index, scope)
        except DamagedArtifactError as exc:
            # An input the store no longer holds intact: make the step that produced it again, then this one
            # (once: a producer whose fresh bytes are damaged again is a store problem, reported as it is).
            if not await self._remake_producer(exc):
                raise
            # The attempt that found the damage is not a failure of the run; the next one has its own record.
            self.records[:] = [r for r in self.records if not (r.step == label and r.status == "failed")]
            return await self._run_generators(name, label, index, scope)  # its results are the runner's: fresh

    async def _run_generators(self, name: str, label: str, index: int | None, scope: Scope) -> GeneratorResult:
        step = self.spec.steps[name]
        raw = scope.resolve(step.inputs)
        last: BaseException | None = None
        for attempt, gid in enumerate([step.generator, *step.fallbacks]):
            try:
                call = await self._call(name, label, index, raw, gid, attempt)
                return await self._execute(call)
            except (InputError, DamagedArtifactError):
                raise  # the input is wrong: another generator will not fix it
            except Exception as exc:
                last = exc
                if attempt < len(step.fallbacks):
                    get_run_logger().warning(
                        "%s: %s failed (%s); trying fallback %s", label, gid, exc, step.fallbacks[attempt]
                    )
        assert last is not None
        raise last

    async def _call(
        self, name: str, label: str, index: int | None, raw: dict[str, Any], gid: str, attempt: int
    ) -> StepCall:
        """The plan's call when it was bound on these very inputs; otherwise bind now (and look it up once)."""
        planned = self.plan.call(name, index) if attempt == 0 else None
        if planned is not None and planned.raw == raw:
            call = planned
            if call.lookup.usable:
                return call
        else:
            call = await bind_raw(name, label, raw, self.spec.steps[name], self.registry.get(gid), fallback=attempt)
        if self.refresh or call.key is None:
            return call
        # Not stored when planned: another step (or row) with the same key may have made it since.
        return dataclasses.replace(call, lookup=await self._index.lookup(call.key))

    async def _remake_producer(self, exc: DamagedArtifactError) -> bool:
        """Make again the step whose result holds the damaged artifact; False when no step of this run did."""
        if exc.sha256 in self._remaking:
            await self._remaking[exc.sha256]
            return True
        found = self._producer(exc.sha256)
        if found is None:
            return False
        name, index, call = found
        done = self._remaking[exc.sha256] = asyncio.get_running_loop().create_future()
        try:
            get_run_logger().warning("%s: an output it made is damaged (%s): making it again", call.label, exc.problem)
            # A broken lookup: the executor makes it again, the budget counts its estimate, the tally says why.
            result = await self._execute(dataclasses.replace(call, lookup=Lookup(indexed=True, problem=exc.problem)))
            if index is None:
                self.results[name] = result
            else:
                items = self.results[name]
                assert isinstance(items, list)
                items[index] = result
        finally:
            done.set_result(None)
        return True

    def _producer(self, sha256: str) -> tuple[str, int | None, StepCall] | None:
        for name, value in self.results.items():
            items = value if isinstance(value, list) else [value]
            for i, result in enumerate(items):
                if result is not None and any(a.sha256 == sha256 for a in result.artifacts()):
                    index = i if isinstance(value, list) else None
                    label = name if index is None else f"{name}[{index}]"
                    if (call := self._calls.get(label)) is not None:
                        return name, index, call
        return None

    async def _execute(self, call: StepCall) -> GeneratorResult:
        assert self.budget is not None and self.executor is not None
        gen = call.generator
        record = CostRecord(
            run_id=self.run_id,
            pipeline=self.spec.name,
            step=call.label,
            generator=gen.name,
            provider=gen.provider,
            status="failed",
            estimated_usd=call.estimate,
            actual_usd=Decimal(0),
            actual_is_estimate=False,
            cached=False,
        )
        self.records.append(record)  # before the budget check, so a refused step shows in the tally too
        try:
            self.budget.reserve(call, owner=self)
        except BudgetExceededError as exc:
            record.error = str(exc)
            self.sink(StepFailed(call.label, str(exc)))
            raise
        self.sink(StepStarted(call.label, gen.name, fallback=call.fallback > 0))
        # Cached once, but its artifacts are gone or changed in the store: make them again rather than hand
        # back URLs of bytes that are not there.
        refresh = self.refresh or call.lookup.broken
        remake = f"re-made: {call.lookup.problem}" if call.lookup.broken and not self.refresh else None
        started = time.perf_counter()
        spent = Decimal(0)
        try:
            outcome = await self.executor.run(call, refresh, hold=lambda: self.slots.slot(gen.provider))
        except Exception as exc:
            record.wall_seconds = time.perf_counter() - started
            record.error = str(exc)
            if (charged := getattr(exc, "charged_usd", None)) is not None:  # a failure the provider still bills
                spent = record.actual_usd = charged
                record.actual_is_estimate = True
            self.sink(StepFailed(call.label, str(exc)))
            self.budget.settle(call, self, spent)
            raise
        result, cached = outcome.result, outcome.cached
        self._calls[call.label] = call
        record.remade = remake or outcome.remade
        record.wall_seconds = time.perf_counter() - started
        record.cached = cached
        record.status = "cached" if cached else "completed"
        record.compute_seconds = 0.0 if cached else result.compute_seconds
        if cached:
            record.saved_usd = result.cost_usd
        else:
            spent = record.actual_usd = result.cost_usd
            record.actual_is_estimate = result.actual_cost_usd is None
            record.possible_duplicates = result.possible_duplicate_charges
        self.budget.settle(call, self, spent)
        self.sink(StepDone(call.label, record, result))
        return result

    def outputs(self) -> dict[str, Any]:
        scope = self.scope()
        return {name: scope.resolve(value) for name, value in self.spec.outputs.items()}
