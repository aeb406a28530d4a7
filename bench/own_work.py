"""A row's own work: the same pipeline steps run directly (plan, then each step a plain generator call), no Prefect.

The benches subtract it from a row's time through Prefect, so "overhead above the row's work" is measured,
not assumed to be zero.
"""

from __future__ import annotations

import time
from typing import Any


class DirectExecutor:
    """Each step one plain generator call instead of a Prefect task; the runner's scheduling is the same."""

    def __init__(self, store) -> None:
        self.store = store
        self.compute: list[float] = []

    async def run(self, call, refresh, hold):
        from flows.engine.tasks import Outcome
        from generators.context import GeneratorContext

        async with GeneratorContext(self.store, step=call.label) as ctx, hold():
            result = await call.generator.run(call.inputs, ctx, estimate=call.estimate)
        self.compute.append(result.compute_seconds)
        return Outcome(result, False)


async def run_direct(spec: Any, params: dict[str, Any]) -> DirectExecutor:
    """Plan and run one row's steps directly; returns the executor (its `compute` lists each step's seconds)."""
    from flows.pipeline import PipelineRunner, make_plan
    from flows.pipeline.spec import PipelineSpec
    from flows.pipeline.validate import validate
    from generators.registry import get_registry
    from generators.storage import open_store

    spec = PipelineSpec.resolve(spec)
    registry, store = get_registry(), open_store()
    values = spec.resolve_params(params)
    executor = DirectExecutor(store)
    plan = await make_plan(spec, validate(spec, registry, values), values, registry, store, refresh=True)
    runner = PipelineRunner(spec, plan, registry, store, refresh=True, executor=executor)
    await runner.run()
    if runner.failures:
        raise SystemExit(f"direct run failed: {runner.failures}")
    return executor


async def own_seconds_per_row(spec: Any, rows: list[dict[str, Any]]) -> float:
    """Wall seconds per row of running `rows` one after another directly (the rows of a batch at concurrency 1)."""
    started = time.perf_counter()
    for params in rows:
        await run_direct(spec, params)
    return (time.perf_counter() - started) / len(rows)
