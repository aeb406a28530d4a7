"""Batch runs as Prefect flows: one pipeline over many rows (CSV or list), checked and planned first.

Each row that has work to do runs as its own subflow run ("slideshow · row 3"): in the Prefect UI a row has
its own state, task runs, logs and cost table, so a failed row is one click away. That costs about ten API
calls per row (0.3–0.4 s on a loaded 2-core box, `bench.batch_bench`), small next to a row's media work; on
a SQLite server boardflow did not start, add ~2 s a row for "database is locked" (deployments/database.py).
A row the plan finds wholly in the cache is not run at all: its outputs are read from the result index,
which is what its tasks would return.

A deployment entrypoint (prefect.yaml), so its imports are absolute: Prefect loads it by file path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.client.schemas.objects import State
from prefect.runtime import flow_run

from flows.batch import results as batch_results
from flows.batch.limits import ProviderSlots, ensure_provider_limits
from flows.batch.results import RowResult
from flows.batch.rows import (
    BatchPlan,
    BatchPlanner,
    BatchRow,
    BatchValidationError,
    check_columns,
    check_overrides,
    checked_rows,
    only_rows,
    planned_parts,
)
from flows.batch.runner import BatchRunner
from flows.batch.source import RowSource, require_rows
from flows.batch.source import max_rows as row_cap
from flows.batch.writer import ResultsWriter, RowsWritten
from flows.engine.liveness import run_hygiene
from flows.engine.tasks import TaskExecutor
from flows.events import BatchFinished, BatchPlanned, current_sink
from flows.pipeline.flow import open_run_store
from flows.pipeline.limits import Budget
from flows.pipeline.runner import PipelineFailedError, PipelineRunner
from flows.pipeline.spec import PipelineSpec
from flows.pipeline.validate import validate
from flows.reporting import costs
from generators.errors import BoardflowError, BudgetExceededError, InputError
from generators.registry import Registry, get_registry
from generators.settings import get_settings
from generators.storage import ArtifactStore

# The runner of the row whose subflow is starting: set by the batch around the subflow call (a context
# variable, so rows running side by side each see their own), read by the subflow's body.
_row_runner: ContextVar[PipelineRunner] = ContextVar("boardflow_row_runner")


class BatchFailedError(BoardflowError):
    def __init__(self, pipeline: str, failed: list[RowResult], results_csv: str, count: int | None = None):
        self.failed = failed  # the first of them (a big batch keeps 20), `count` in all
        count = len(failed) if count is None else count
        lines = "\n".join(f"  - row {r.row}: {r.error[:300]}" for r in failed[:20])
        more = f"\n  … and {count - 20} more" if count > 20 else ""
        super().__init__(
            f"Batch of {pipeline!r}: {count} row(s) failed (the others finished):\n{lines}{more}",
            hint=f"Fix the cause, then re-run only those rows with --only-failed {results_csv}.",
        )


@flow(name="boardflow-batch-row", flow_run_name="{pipeline} · row {row}", validate_parameters=False)
async def batch_row(pipeline: str, row: int, params: dict[str, Any]) -> dict[str, Any]:
    """One row of a batch: the pipeline's steps through the batch's shared slots and budget; its own cost table."""
    runner = _row_runner.get()
    runner.run_id = str(flow_run.id)
    try:
        await runner.run()
    finally:
        await costs.publish(pipeline, runner.records)
    if runner.failures:
        raise PipelineFailedError(pipeline, runner.failures)
    return {"row": row, "outputs": runner.outputs()}


async def _row_subflow(row: BatchRow, runner: PipelineRunner) -> State:
    token = _row_runner.set(runner)
    try:
        return await batch_row(runner.spec.name, row.row, row.params, return_state=True)
    finally:
        _row_runner.reset(token)


def _batch_run_name() -> str:
    spec = flow_run.parameters.get("spec")
    if isinstance(spec, PipelineSpec):
        name = spec.name
    elif isinstance(spec, dict):
        name = spec.get("name", "pipeline")
    else:
        name = Path(str(spec)).stem
    return f"{name} batch {datetime.now():%Y-%m-%d %H:%M}"


@flow(name="boardflow-batch", flow_run_name=_batch_run_name, validate_parameters=False)
async def batch(
    spec: PipelineSpec | dict[str, Any] | str,
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
) -> dict[str, Any]:
    """Run a pipeline once per row of a CSV (path) or a list of parameter dicts.

    Every row is checked and planned before anything runs; bad rows are skipped (or, with `strict`, the
    batch stops). The run form shows each argument's line below (see flows/storyboard.py).

    Args:
        spec: The pipeline: a name in pipelines/ (slideshow, storyboard…), a YAML path, or a spec mapping.
        rows: A CSV path (one row per run, a column per pipeline param) or a list of param mappings.
        overrides: Params applied to every row, over the CSV's values.
        strict: Stop before running anything when a row is invalid (by default bad rows are skipped).
        max_cost_usd: Refuse a batch whose plan costs more, in USD (default: the pipeline's max_cost_usd).
        concurrency: How many rows run at the same time.
        refresh: Run every step even when a cached result exists.
        store_url: Artifact store for this run (default: the worker's BOARDFLOW_STORE).
        store_block: Name of a saved artifact-store block to use instead of `store_url`.
        results_path: Where the results .csv and .parquet go (default: batches/ in the data folder).
        only_failed: An earlier results CSV: run only its failed and invalid rows.
        previews: How many rows' outputs get a preview on the batch's run.
        max_rows: Refuse an input of more rows (default: $BOARDFLOW_MAX_BATCH_ROWS, else 100,000).
    """
    async with run_hygiene(str(flow_run.id)):  # its rows run in this process: a SIGKILL leaves them to mark Crashed
        return await _batch(
            spec, rows, overrides, strict, max_cost_usd, concurrency, refresh, store_url, store_block, results_path,
            only_failed, previews, max_rows,
        )  # fmt: skip


async def _batch(
    spec: PipelineSpec | dict[str, Any] | str,
    rows: list[dict[str, Any]] | str,
    overrides: dict[str, Any] | None,
    strict: bool,
    max_cost_usd: float | None,
    concurrency: int,
    refresh: bool,
    store_url: str | None,
    store_block: str | None,
    results_path: str | None,
    only_failed: str | None,
    previews: int,
    max_rows: int | None,
) -> dict[str, Any]:
    if concurrency < 1:
        raise InputError(f"concurrency must be at least 1, got {concurrency}.")
    registry = get_registry()
    spec = PipelineSpec.resolve(spec)
    store = await open_run_store(store_url, store_block)
    batch = await open_batch(spec, rows, overrides, strict, max_cost_usd, refresh, store, only_failed, max_rows)
    if batch is None:
        return {"pipeline": spec.name, "rows": 0, "only_failed": only_failed}
    providers = {registry.get(g).provider for s in spec.steps.values() for g in [s.generator, *s.fallbacks]}
    writer, progress = batch.writer(results_path)
    runner = BatchRunner(
        spec, registry, store, refresh, ProviderSlots(await ensure_provider_limits(providers)),
        Budget(batch.plan.max_cost_usd, what="the batch's cap"), TaskExecutor(store), progress,
    )  # fmt: skip

    async def run_part(part: BatchPlan) -> None:
        await runner.run(part, concurrency, _row_subflow)

    await batch.run_parts(writer, progress, run_part)
    return await batch.finish(writer, previews)


@dataclass
class OpenBatch:
    """A checked, planned batch and where its rows come from; the in-process and the on-workers batch run it."""

    spec: PipelineSpec
    source: RowSource
    wanted: set[int] | None  # --only-failed: only these rows
    plan: BatchPlan
    overrides: dict[str, Any]
    store: ArtifactStore
    refresh: bool

    def writer(self, results_path: str | None) -> tuple[ResultsWriter, RowsWritten]:
        """The results files, and the event sink that writes each finished row to them."""
        writer = ResultsWriter(
            Path(results_path) if results_path else default_results_path(self.spec.name), self.spec.name
        )
        return writer, RowsWritten(writer, current_sink(), self.plan.valid_count)

    async def run_parts(
        self, writer: ResultsWriter, progress: RowsWritten, run_part: Callable[[BatchPlan], Awaitable[None]]
    ) -> None:
        """Each planned part through `run_part`, its invalid rows written as they come; on any error (or a stop)
        the rows that finished stay in the files."""
        registry = get_registry()
        try:
            parts = planned_parts(
                self.spec, self.plan, self.source, self.overrides, registry, self.store, self.refresh, self.wanted
            )
            async for part in parts:
                writer.expect([r.row for r in part.rows])
                for row in part.rows:
                    if not row.valid:
                        writer.add(batch_results.invalid(row, self.spec.name))
                await run_part(part)
                progress.part_done()
        except BaseException:
            writer.close(finished=False)
            raise

    async def finish(self, writer: ResultsWriter, previews: int) -> dict[str, Any]:
        """The files closed, the summary published; a batch with a failed row fails, naming them."""
        csv_path, parquet_path = writer.close()
        summary = writer.summary()
        await batch_results.publish(self.spec.name, writer.kept, summary, self.store, previews)
        current_sink()(BatchFinished(summary, writer.kept))
        if writer.counts["failed"]:
            raise BatchFailedError(self.spec.name, writer.failed, str(csv_path), writer.counts["failed"])
        return summary


async def open_batch(
    spec: PipelineSpec,
    rows: list[dict[str, Any]] | str,
    overrides: dict[str, Any] | None,
    strict: bool,
    max_cost_usd: float | None,
    refresh: bool,
    store: ArtifactStore,
    only_failed: str | None,
    max_rows: int | None,
) -> OpenBatch | None:
    """The rows counted (within the cap), checked and planned, and the plan's refusals raised (a bad row with
    `strict`, a plan over the cap): nothing has run. None when --only-failed leaves no row to run."""
    logger, sink = get_run_logger(), current_sink()
    source = RowSource(rows, row_cap(max_rows))
    count = source.count()
    wanted = None
    if only_failed:
        wanted = batch_results.failed_rows(only_failed, spec.name, count)
        logger.info("Re-running %d failed row(s) of %s", len(wanted), only_failed)
    else:
        require_rows(count, source)
    if wanted is not None and not wanted:
        logger.info("No rows to run: every row of %s succeeded.", only_failed)
        sink(BatchFinished({"pipeline": spec.name, "rows": 0, "only_failed": only_failed}, []))
        return None
    cap = Decimal(str(max_cost_usd)) if max_cost_usd is not None else None
    plan = await prepare_batch(spec, source, overrides or {}, get_registry(), store, refresh, cap, wanted)
    sink(BatchPlanned(plan))
    logger.info("Batch plan: %s", plan.summary())
    for problem in plan.problems:
        logger.warning("Skipping %s", problem)
    if plan.problems and strict:
        raise BatchValidationError(spec.name, plan.problems)
    if plan.over_budget:
        raise BudgetExceededError(
            f"Batch of {spec.name!r} plans {costs.usd(plan.total_usd)}, over the cap "
            f"{costs.usd(plan.max_cost_usd or 0)}; nothing was run.",
            planned_usd=plan.total_usd,
            cap_usd=plan.max_cost_usd,
        )
    return OpenBatch(spec, source, wanted, plan, overrides or {}, store, refresh)


async def prepare_batch(
    spec: PipelineSpec,
    rows: RowSource,
    overrides: dict[str, Any],
    registry: Registry,
    store: ArtifactStore,
    refresh: bool = False,
    max_cost_usd: Decimal | None = None,
    wanted: set[int] | None = None,
) -> BatchPlan:
    """Check the pipeline once and every row against it, plan every good row, as the rows stream; nothing is run.

    `wanted`: only these row numbers (--only-failed). The plan keeps the first rows whole (see `BatchPlan`).
    """
    order = validate(spec, registry)
    check_columns(spec, rows.columns())
    fixed = check_overrides(spec, overrides)
    cap = max_cost_usd if max_cost_usd is not None else spec.max_cost_usd
    planner = BatchPlanner(spec.name, cap)
    async for row in checked_rows(spec, order, only_rows(rows, wanted), fixed, registry, store, refresh):
        planner.add(row)
    return planner.plan


def default_results_path(pipeline: str) -> Path:
    """Where a batch writes its results when not told: <data folder>/batches/<pipeline>-<time> (.csv, .parquet)."""
    return get_settings().data_dir / "batches" / f"{pipeline}-{datetime.now():%Y%m%d-%H%M%S}"
