"""Running the rows of a planned batch: each row a pipeline runner that shares the batch's slots, budget and tasks."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from prefect.client.schemas.objects import State

from generators.registry import Registry
from generators.storage import ArtifactStore

from ..engine.tasks import TaskExecutor
from ..events import EventSink, RowDone
from ..pipeline.limits import Budget, Slots
from ..pipeline.runner import PipelineRunner
from ..pipeline.spec import PipelineSpec
from . import results as batch_results
from .results import RowResult
from .rows import BatchPlan, BatchRow

# Runs one row as a subflow: (row, runner) → the subflow's final state. The flow module supplies it.
RowFlow = Callable[[BatchRow, PipelineRunner], Awaitable[State]]


@dataclass
class RowRetries:
    """Row runs a batch may spend, within one pass, on rows that failed only for transient faults.

    A step's own task retries come first; a row that still failed on a 429, a 5xx or a dropped connection is
    run again (its finished steps come from the cache, a lost submission is found or counted) after a short
    back-off, until `per_row` re-runs of it or `total` re-runs of the batch are spent. Then it stays failed
    for `--only-failed`.
    """

    total: int
    per_row: int = 3
    backoff_seconds: float = 1.0
    used: int = 0

    def take(self, tries: int) -> bool:
        if tries >= self.per_row or self.used >= self.total:
            return False
        self.used += 1
        return True

    def delay(self, tries: int) -> float:
        return min(30.0, self.backoff_seconds * 2**tries) * random.uniform(0.5, 1.5)


@dataclass
class BatchRunner:
    """What the rows of one batch share (spec, store, provider slots, budget, tasks, sink), and how to run them."""

    spec: PipelineSpec
    registry: Registry
    store: ArtifactStore
    refresh: bool
    slots: Slots
    budget: Budget
    executor: TaskExecutor
    sink: EventSink
    retries: RowRetries | None = None  # None: per_row 3, and as many re-runs in all as the batch has rows

    def row_runner(self, row: BatchRow, run_id: str | None = None) -> PipelineRunner:
        assert row.plan is not None
        return PipelineRunner(
            self.spec,
            row.plan,
            self.registry,
            self.store,
            self.refresh,
            run_id=run_id,
            slots=self.slots,
            budget=self.budget,
            executor=self.executor,
            sink=self.sink,
        )

    async def run(self, plan: BatchPlan, concurrency: int, row_flow: RowFlow) -> list[RowResult]:
        """Every valid row, at most `concurrency` at a time; a failing row is recorded and the others go on."""
        rows = plan.valid_rows
        self.retries = self.retries or RowRetries(total=max(10, len(rows)))
        gate = asyncio.Semaphore(concurrency)
        progress = batch_results.Progress(self.spec.name, len(rows))
        await progress.start()

        async def one(row: BatchRow) -> RowResult:
            async with gate:
                if row.fully_cached and not self.refresh:
                    result = self.from_cache(row)
                else:
                    result = await self._run_row(row, row_flow)
            await progress.row_done(result)
            self.sink(RowDone(result, progress.done, progress.failed, len(rows)))
            return result

        try:
            return list(await asyncio.gather(*(one(r) for r in rows)))
        finally:
            await progress.finish()

    def from_cache(self, row: BatchRow) -> RowResult:
        """A row the plan found wholly in the cache is not run: its outputs are what its tasks would return."""
        runner = self.row_runner(row)
        assert row.plan is not None
        runner.results = dict(row.plan.results)
        return batch_results.from_cache(self.spec.name, row, runner.outputs())

    async def _run_row(self, row: BatchRow, row_flow: RowFlow) -> RowResult:
        assert self.retries is not None
        started = time.perf_counter()
        tries = 0
        while True:
            runner = self.row_runner(row)
            state = await row_flow(row, runner)
            if state.is_completed() or not runner.failed_transiently or not self.retries.take(tries):
                break
            await asyncio.sleep(self.retries.delay(tries))
            tries += 1
        wall = time.perf_counter() - started
        run_id = str(state.state_details.flow_run_id or "")
        error = None
        if not state.is_completed():
            failures = runner.failures or {"row": await _failure(state)}
            error = "; ".join(f"{step}: {why}" for step, why in failures.items())
        outputs = runner.outputs() if error is None else {}
        return batch_results.from_records(self.spec.name, row.row, runner.records, outputs, error, wall, run_id)


async def _failure(state: State) -> str:
    error = await state.result(raise_on_failure=False)
    return str(error or state.message)
