"""Run a pipeline spec as one Prefect flow: steps as generator tasks, concurrent where independent."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from prefect import Task, flow, get_run_logger
from prefect.runtime import flow_run

from generators.base import BaseGenerator, GeneratorResult
from generators.errors import BoardflowError, BudgetExceededError, InputError
from generators.registry import Registry, get_registry
from generators.storage import ArtifactStore, open_store

from . import costs
from .caching import ResultIndex, cache_key
from .costs import CostRecord
from .plan import Plan, make_plan
from .scope import Scope
from .spec import PipelineSpec
from .tasks import generator_task
from .validate import validate

Listener = Callable[[str, str, dict[str, Any]], None]  # (event, step label, details)
_listeners: list[Listener] = []


def add_listener(listener: Listener) -> Callable[[], None]:
    """Follow step events (start/done/failed) of runs in this process; returns a remover."""
    _listeners.append(listener)
    return lambda: _listeners.remove(listener)


def _emit(event: str, label: str, **details: Any) -> None:
    for listener in list(_listeners):
        listener(event, label, details)


class PipelineFailedError(BoardflowError):
    def __init__(self, pipeline: str, failures: dict[str, str]):
        self.failures = failures
        lines = "\n".join(f"  - {step}: {why}" for step, why in failures.items())
        super().__init__(
            f"Pipeline {pipeline!r}: {len(failures)} step(s) failed:\n{lines}",
            hint="Fix the cause and run again: finished steps come from the cache at $0.",
        )


def provider_limit(provider: str) -> int:
    """How many steps of one provider run at once: $BOARDFLOW_CONCURRENCY_<PROVIDER>, else a default."""
    default = max(1, os.cpu_count() or 1) if provider == "local" else 8
    return int(os.environ.get(f"BOARDFLOW_CONCURRENCY_{provider.upper()}", default))


@dataclass
class PipelineRunner:
    spec: PipelineSpec
    order: list[str]
    params: dict[str, Any]
    registry: Registry
    store: ArtifactStore
    refresh: bool = False
    run_id: str | None = None
    records: list[CostRecord] = field(default_factory=list)
    results: dict[str, GeneratorResult | list[GeneratorResult] | None] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    spent: Decimal = Decimal(0)
    reserved: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        self._tasks: dict[tuple, Task] = {}
        self._limits: dict[str, asyncio.Semaphore] = {}
        self._index = ResultIndex(self.store)
        self._fanned = {n for n, s in self.spec.steps.items() if s.for_each is not None}
        self._schemas = {n: self.registry.get(s.generator).get_output_schema() for n, s in self.spec.steps.items()}

    async def run(self) -> None:
        done: dict[str, asyncio.Future] = {name: asyncio.get_running_loop().create_future() for name in self.order}

        async def run_step(name: str) -> None:
            from .validate import dependencies

            deps = dependencies(self.spec, name)
            ok = True
            for dep in deps:
                ok &= await done[dep]
            if not ok:
                self.failures[name] = "skipped: an upstream step failed"
                step = self.spec.steps[name]
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
                _emit("skipped", name)
                done[name].set_result(False)
                return
            try:
                await self._run_step(name)
                done[name].set_result(True)
            except Exception as exc:  # recorded; independent branches go on
                self.failures.setdefault(name, str(exc))
                done[name].set_result(False)

        await asyncio.gather(*(run_step(name) for name in self.order))

    async def _run_step(self, name: str) -> None:
        step = self.spec.steps[name]
        scope = Scope(self.params, self.results, self._schemas, self._fanned)
        if step.for_each is None:
            self.results[name] = await self._run_item(name, name, scope)
            return
        items = scope.resolve(step.for_each)
        if not isinstance(items, list):
            raise InputError(f"{name}.for_each must give a list, got {type(items).__name__}.")
        outcomes = await asyncio.gather(
            *(self._run_item(name, f"{name}[{i}]", scope.for_item(item, i)) for i, item in enumerate(items)),
            return_exceptions=True,
        )
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        if errors:
            raise errors[0]
        self.results[name] = list(outcomes)

    async def _run_item(self, name: str, label: str, scope: Scope) -> GeneratorResult:
        step = self.spec.steps[name]
        raw = scope.resolve(step.inputs)
        last: BaseException | None = None
        for attempt, gid in enumerate([step.generator, *step.fallbacks]):
            gen = self.registry.get(gid)
            try:
                return await self._run_generator(gen, name, label, raw, step.task, fallback=attempt > 0)
            except InputError:
                raise  # the input is wrong: another generator will not fix it
            except Exception as exc:
                last = exc
                if attempt < len(step.fallbacks):
                    get_run_logger().warning(
                        "%s: %s failed (%s); trying fallback %s", label, gid, exc, step.fallbacks[attempt]
                    )
        assert last is not None
        raise last

    async def _run_generator(
        self, gen: BaseGenerator, name: str, label: str, raw: dict[str, Any], overrides: dict[str, Any], fallback: bool
    ) -> GeneratorResult:
        inputs = gen.parse_inputs(raw, where=label)
        estimate = await gen.estimate_cost(inputs)
        payload = inputs.model_dump(mode="json")
        key = cache_key(gen, payload)
        refresh = self.refresh
        if not refresh and await self._index.get(key) is not None and await self._index.usable(key) is None:
            refresh = True  # cached once, but its artifacts are gone from the store: make them again
        record = CostRecord(
            run_id=self.run_id,
            pipeline=self.spec.name,
            step=label,
            generator=gen.name,
            provider=gen.provider,
            status="failed",
            estimated_usd=estimate,
            actual_usd=Decimal(0),
            actual_is_estimate=False,
            cached=False,
        )
        self.records.append(record)  # before the budget check, so a refused step shows in the tally too
        try:
            self._reserve(label, estimate)
        except BudgetExceededError as exc:
            record.error = str(exc)
            _emit("failed", label, error=str(exc))
            raise
        _emit("start", label, generator=gen.name, fallback=fallback)
        started = time.perf_counter()
        try:
            async with self._limit(gen.provider):
                state = await self._task(gen, overrides, refresh)(inputs=payload, step=label, return_state=True)
            record.wall_seconds = time.perf_counter() - started
            if not state.is_completed():
                exc = await state.result(raise_on_failure=False)
                record.error = str(exc)
                _emit("failed", label, error=str(exc))
                raise exc if isinstance(exc, BaseException) else RuntimeError(str(exc))
            result: GeneratorResult = await state.result()
        finally:
            self.reserved -= estimate
        record.cached = state.name == "Cached" or result.reused
        record.status = "cached" if record.cached else "completed"
        record.compute_seconds = 0.0 if record.cached else result.compute_seconds
        if record.cached:
            record.saved_usd = result.cost_usd
        else:
            record.actual_usd = result.cost_usd
            record.actual_is_estimate = result.actual_cost_usd is None
            self.spent += result.cost_usd
        _emit("done", label, record=record, result=result)
        return result

    def _reserve(self, label: str, estimate: Decimal) -> None:
        """No paid step is submitted when it could push spending over max_cost_usd."""
        cap = self.spec.max_cost_usd
        if cap is not None and estimate > 0 and self.spent + self.reserved + estimate > cap:
            raise BudgetExceededError(
                f"{label} was not submitted: spent {costs.usd(self.spent)} + running {costs.usd(self.reserved)} "
                f"+ this step {costs.usd(estimate)} would cross max_cost_usd {costs.usd(cap)}.",
                planned_usd=self.spent + self.reserved + estimate,
                cap_usd=cap,
            )
        self.reserved += estimate

    def _limit(self, provider: str) -> asyncio.Semaphore:
        if provider not in self._limits:
            self._limits[provider] = asyncio.Semaphore(provider_limit(provider))
        return self._limits[provider]

    def _task(self, gen: BaseGenerator, overrides: dict[str, Any], refresh: bool) -> Task:
        key = (gen.name, refresh, tuple(sorted(overrides.items())))
        if key not in self._tasks:
            self._tasks[key] = generator_task(gen, self.store, refresh_cache=refresh, **overrides)
        return self._tasks[key]

    def outputs(self) -> dict[str, Any]:
        scope = Scope(self.params, self.results, self._schemas, self._fanned)
        return {name: scope.resolve(value) for name, value in self.spec.outputs.items()}


def _flow_run_name() -> str:
    spec = flow_run.parameters.get("spec") or {}
    return f"{spec.get('name', 'pipeline')}" if isinstance(spec, dict) else "pipeline"


@flow(name="boardflow-pipeline", flow_run_name=_flow_run_name, validate_parameters=False)
async def run_pipeline(
    spec: dict[str, Any],
    params: dict[str, Any] | None = None,
    refresh: bool = False,
    store_url: str | None = None,
    store_block: str | None = None,
) -> dict[str, Any]:
    """Validate, plan (refusing a plan over max_cost_usd), run every step, and publish costs and previews."""
    return await execute_pipeline(spec, params, refresh, store_url, store_block)


async def open_run_store(store_url: str | None = None, store_block: str | None = None) -> ArtifactStore:
    """The artifact store of a run: a saved artifact-store block by name, else a URL, else BOARDFLOW_STORE."""
    if store_block:
        from blocks.storage import ArtifactStoreBlock

        block = await ArtifactStoreBlock.aload(store_block)
        return block.get_store()
    return open_store(store_url)


async def execute_pipeline(
    spec: dict[str, Any],
    params: dict[str, Any] | None = None,
    refresh: bool = False,
    store_url: str | None = None,
    store_block: str | None = None,
) -> dict[str, Any]:
    """The body of a pipeline flow; call it from inside any flow run."""
    from .previews import publish_previews

    model = PipelineSpec.parse(spec)
    registry = get_registry()
    store = await open_run_store(store_url, store_block)
    values = model.resolve_params(params or {})
    order = validate(model, registry, values)
    plan = await make_plan(model, order, values, registry, store, refresh)
    logger = get_run_logger()
    logger.info(
        "Plan: %d step run(s), estimated %s, %s expected from cache",
        sum(s.count for s in plan.steps),
        costs.usd(plan.total_usd),
        costs.usd(plan.saved_usd),
    )
    if plan.over_budget:
        raise BudgetExceededError(
            f"Pipeline {model.name!r} plans {costs.usd(plan.total_usd)}, over max_cost_usd "
            f"{costs.usd(model.max_cost_usd)}; nothing was run.",
            planned_usd=plan.total_usd,
            cap_usd=model.max_cost_usd,
        )
    runner = PipelineRunner(model, order, values, registry, store, refresh, run_id=str(flow_run.id))
    _emit("flow", model.name, flow_run_id=str(flow_run.id))
    try:
        await runner.run()
    finally:
        _emit("finished", model.name, records=runner.records)
        await costs.publish(model.name, runner.records)
        outputs = runner.outputs() if not runner.failures else {}
        await publish_previews(model.name, runner, outputs, store)
    if runner.failures:
        raise PipelineFailedError(model.name, runner.failures)
    return {
        "pipeline": model.name,
        "outputs": outputs,
        "records": [r.model_dump(mode="json") for r in runner.records],
        "plan": plan.rows(),
        "totals": {k: str(v) for k, v in costs.totals(runner.records).items()},
    }


async def plan_pipeline(
    spec: PipelineSpec, params: dict[str, Any], store: ArtifactStore | None = None, refresh: bool = False
) -> Plan:
    """Validate and plan without running anything (no Prefect needed)."""
    registry = get_registry()
    values = spec.resolve_params(params)
    order = validate(spec, registry, values)
    return await make_plan(spec, order, values, registry, store or open_store(), refresh)
