"""`boardflow batch --on-workers`: a batch whose rows are flow runs of the `pipeline` deployment, on the pool's workers.

The batch itself runs as a flow in the calling process (checked and planned exactly like the in-process batch,
its results table, progress and cost artifacts on its own run); each row with work to do becomes one run of
`boardflow-named-pipeline/pipeline` (deployments/fanout.py), which any worker of the pool may take, on any
machine. At most `concurrency` rows are submitted and unfinished at a time; a row's return value (outputs and
cost records) is read from the workers' store (flows/engine/records.py), so the table is the same one.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import WorkerStatus
from prefect.exceptions import ObjectNotFound
from prefect.runtime import flow_run

from deployments.fanout import DEPLOYMENT, read_runs, run_result, submit_rows
from flows.batch import results as batch_results
from flows.batch.flow import open_batch
from flows.batch.results import RowResult
from flows.batch.rows import BatchPlan, BatchRow
from flows.events import RowDone
from flows.pipeline.flow import open_run_store
from flows.pipeline.runner import PipelineRunner
from flows.pipeline.spec import PipelineSpec
from flows.reporting import costs
from generators.errors import ConfigurationError, InputError
from generators.registry import get_registry
from generators.storage import ArtifactStore

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun

POLL_SECONDS = 1.0


async def check_workers(deployment: str = DEPLOYMENT) -> str:
    """The deployment exists, its work pool exists and a worker polls it; returns the pool's name.

    Each missing piece is one error that names it and the command that makes it.
    """
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        raise ConfigurationError(
            "--on-workers needs the Prefect server the workers poll, and PREFECT_API_URL is not set.",
            hint="Start one with `boardflow server`, then `export PREFECT_API_URL=http://HOST:4200/api` here and on "
            "the workers' machines.",
        )
    async with get_client() as client:
        try:
            found = await client.read_deployment_by_name(deployment)
        except ObjectNotFound:
            raise ConfigurationError(
                f"The Prefect server at {url} has no deployment {deployment}.",
                hint="Run `prefect deploy --all` from the project folder (prefect.yaml), after "
                "`prefect work-pool create boardflow --type process`.",
            ) from None
        pool = found.work_pool_name
        if not pool:
            raise ConfigurationError(f"Deployment {deployment} has no work pool.", hint="Deploy it with prefect.yaml.")
        try:
            await client.read_work_pool(pool)
        except ObjectNotFound:
            raise ConfigurationError(
                f"Deployment {deployment} sends its runs to work pool {pool!r}, which does not exist at {url}.",
                hint=f"Create it with `prefect work-pool create {pool} --type process`, then start workers on it.",
            ) from None
        workers = await client.read_workers_for_work_pool(pool)
    if not any(w.status == WorkerStatus.ONLINE for w in workers):
        raise ConfigurationError(
            f"No worker is polling work pool {pool!r} at {url}: the rows would wait forever.",
            hint=f"Start one on each machine: `prefect worker start --pool {pool}` (with PREFECT_API_URL and the "
            "shared BOARDFLOW_STORE set).",
        )
    return pool


@dataclass
class RowBudget:
    """The batch's cap while rows run on workers: a row is submitted only while spent + in flight + its own new
    work stays within the cap. Work is counted by cache key, once: a key another row is making or has made costs
    nothing more (it will be a cache hit)."""

    cap: Decimal | None
    spent: Decimal = Decimal(0)
    held: dict[int, dict[str, Decimal]] = field(default_factory=dict)  # row → its new work, by key
    made: set[str] = field(default_factory=set)

    def reserve(self, row: BatchRow) -> str | None:
        """Hold the row's new work; the reason it may not run, when it would cross the cap."""
        taken = {key for work in self.held.values() for key in work} | self.made
        work = {key: cost for key, cost in _new_work(row).items() if key not in taken}
        running = sum((c for w in self.held.values() for c in w.values()), Decimal(0))
        extra = sum(work.values(), Decimal(0))
        if self.cap is not None and extra > 0 and self.spent + running + extra > self.cap:
            return (
                f"not run: spent {costs.usd(self.spent)} + running {costs.usd(running)} + this row "
                f"{costs.usd(extra)} would cross the batch's cap {costs.usd(self.cap)}"
            )
        self.held[row.row] = work
        return None

    def settle(self, row: BatchRow, spent: Decimal) -> None:
        self.made |= set(self.held.pop(row.row, {}))
        self.spent += spent


def _new_work(row: BatchRow) -> dict[str, Decimal]:
    """The row's steps the plan did not find in the cache, by cache key, with their estimates."""
    assert row.plan is not None
    work: dict[str, Decimal] = {}
    for planned in row.plan.steps:
        for n, (estimate, hit, key) in enumerate(zip(planned.estimates, planned.cached, planned.keys, strict=True)):
            if not hit:
                work[key or f"{row.row}:{planned.step}:{n}"] = estimate
    return work


@flow(name="boardflow-batch-on-workers", flow_run_name="{pipeline} batch on workers", validate_parameters=False)
async def batch_on_workers(
    pipeline: str,
    rows: list[dict[str, Any]] | str,
    overrides: dict[str, Any] | None = None,
    strict: bool = False,
    max_cost_usd: float | None = None,
    concurrency: int = 2,
    refresh: bool = False,
    store_url: str | None = None,
    store_block: str | None = None,
    results_path: str | None = None,
    only_failed: str | None = None,
    previews: int = 6,
    max_rows: int | None = None,
    deployment: str = DEPLOYMENT,
) -> dict[str, Any]:
    """Run a pipeline once per row, each row a run of the `pipeline` deployment on the pool's workers.

    Args are those of `boardflow-batch` (flows/batch/flow.py); `pipeline` is a name in pipelines/ or a YAML path
    the workers can read, and `concurrency` is how many rows are submitted and unfinished at a time.
    """
    if concurrency < 1:
        raise InputError(f"concurrency must be at least 1, got {concurrency}.")
    spec = PipelineSpec.resolve(pipeline)
    store = await open_run_store(store_url, store_block)
    batch = await open_batch(spec, rows, overrides, strict, max_cost_usd, refresh, store, only_failed, max_rows)
    if batch is None:
        return {"pipeline": spec.name, "rows": 0, "only_failed": only_failed}
    writer, progress = batch.writer(results_path)
    params = {"refresh": refresh, "store_url": store_url, "store_block": store_block}
    budget = RowBudget(batch.plan.max_cost_usd)

    async def run_part(part: BatchPlan) -> None:
        on_workers = RowsOnWorkers(spec, store, pipeline, deployment, budget, params, progress)
        await on_workers.run(part.valid_rows, concurrency)

    await batch.run_parts(writer, progress, run_part)
    return await batch.finish(writer, previews)


@dataclass
class RowsOnWorkers:
    """Submits rows as deployment runs, at most `concurrency` unfinished at once, and turns each into a RowResult."""

    spec: PipelineSpec
    store: ArtifactStore
    pipeline: str  # what the deployment is told to run: a name in pipelines/ or a YAML path
    deployment: str
    budget: RowBudget
    params: dict[str, Any]  # the deployment's other parameters (refresh, store)
    sink: Any

    async def run(self, rows: list[BatchRow], concurrency: int) -> list[RowResult]:
        progress = batch_results.Progress(self.spec.name, len(rows))
        await progress.start()
        results: list[RowResult] = []
        waiting = list(reversed(rows))
        flying: dict[UUID, tuple[BatchRow, float]] = {}
        tag = f"batch:{flow_run.id}"
        try:
            async with get_client() as client:
                while waiting or flying:
                    while waiting and len(flying) < concurrency:
                        row = waiting.pop()
                        if (done := await self._without_workers(row)) is not None:
                            results.append(await self._done(done, progress, len(rows)))
                            continue
                        (run_id,) = await submit_rows(
                            self.deployment, self.pipeline, [row.params], tags=[tag], client=client, start=row.row,
                            parameters=self.params,
                        )  # fmt: skip
                        flying[run_id] = (row, time.perf_counter())
                    if not flying:
                        continue
                    for run in await read_runs(list(flying), client=client):
                        if run.state is not None and run.state.is_final():
                            row, started = flying.pop(run.id)
                            result = await self._result(row, run, time.perf_counter() - started)
                            results.append(await self._done(result, progress, len(rows)))
                    if flying:
                        await asyncio.sleep(POLL_SECONDS)
        finally:
            if flying:  # stopped (Ctrl-C, SIGTERM, an error): rows still queued or running are called off
                await _cancel(list(flying))
            await progress.finish()
        return results

    async def _without_workers(self, row: BatchRow) -> RowResult | None:
        """A row the plan found wholly in the cache (read back, as the in-process batch does), or one the cap
        refuses; None when it goes to the workers."""
        if row.fully_cached and not self.params["refresh"]:
            assert row.plan is not None
            reader = PipelineRunner(self.spec, row.plan, get_registry(), self.store)
            reader.results = dict(row.plan.results)
            return batch_results.from_cache(self.spec.name, row, reader.outputs())
        if (refused := self.budget.reserve(row)) is not None:
            return batch_results.crashed(self.spec.name, row.row, refused, 0.0, "")
        return None

    async def _result(self, row: BatchRow, run: FlowRun, wall: float) -> RowResult:
        run_id = str(run.id)
        try:
            value = await run_result(run)
        except Exception as exc:  # the row's own error (its failed steps), or why its value cannot be read
            self.budget.settle(row, Decimal(0))
            worker = run.labels.get("prefect.worker.name") if run.labels else None
            where = f" on {worker}" if worker else ""
            return batch_results.crashed(self.spec.name, row.row, f"{run.state_name}{where}: {exc}", wall, run_id)
        result = batch_results.from_records(self.spec.name, row.row, value.records, value.outputs, None, wall, run_id)
        self.budget.settle(row, result.cost_usd)
        return result

    async def _done(self, result: RowResult, progress: batch_results.Progress, total: int) -> RowResult:
        await progress.row_done(result)
        self.sink(RowDone(result, progress.done, progress.failed, total))
        return result


async def _cancel(ids: list[UUID]) -> None:
    from prefect.states import Cancelling

    async with get_client() as client:
        for run_id in ids:
            try:
                await client.set_flow_run_state(run_id, Cancelling(message="The batch was stopped."), force=True)
            except Exception:  # best effort: the batch is stopping anyway
                get_run_logger().warning("could not cancel flow run %s", run_id)
