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

from contextvars import ContextVar
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
    BatchRow,
    BatchValidationError,
    batch_plan,
    check_columns,
    check_overrides,
    plan_row,
    read_rows,
    require_rows,
    row_params,
)
from flows.batch.runner import BatchRunner
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
    def __init__(self, pipeline: str, failed: list[RowResult], results_csv: str):
        self.failed = failed
        lines = "\n".join(f"  - row {r.row}: {r.error[:300]}" for r in failed[:20])
        more = f"\n  … and {len(failed) - 20} more" if len(failed) > 20 else ""
        super().__init__(
            f"Batch of {pipeline!r}: {len(failed)} row(s) failed (the others finished):\n{lines}{more}",
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
    """
    async with run_hygiene(str(flow_run.id)):  # its rows run in this process: a SIGKILL leaves them to mark Crashed
        return await _batch(
            spec, rows, overrides, strict, max_cost_usd, concurrency, refresh, store_url, store_block, results_path,
            only_failed, previews,
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
) -> dict[str, Any]:
    logger = get_run_logger()
    if concurrency < 1:
        raise InputError(f"concurrency must be at least 1, got {concurrency}.")
    registry = get_registry()
    spec = PipelineSpec.resolve(spec)
    sink = current_sink()
    store = await open_run_store(store_url, store_block)
    numbered = list(enumerate(read_rows(rows), start=1))
    if not only_failed:
        require_rows([raw for _, raw in numbered], rows)
    if only_failed:
        wanted = batch_results.failed_rows(only_failed, spec.name, len(numbered))
        numbered = [(n, raw) for n, raw in numbered if n in wanted]
        logger.info("Re-running %d failed row(s) of %s", len(numbered), only_failed)
    if not numbered:
        logger.info("No rows to run: every row of %s succeeded.", only_failed)
        summary = {"pipeline": spec.name, "rows": 0, "only_failed": only_failed}
        sink(BatchFinished(summary, []))
        return summary
    cap = Decimal(str(max_cost_usd)) if max_cost_usd is not None else None
    plan = await prepare_batch(spec, numbered, overrides or {}, registry, store, refresh, cap)
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
    providers = {registry.get(g).provider for s in spec.steps.values() for g in [s.generator, *s.fallbacks]}
    runner = BatchRunner(
        spec, registry, store, refresh, ProviderSlots(await ensure_provider_limits(providers)),
        Budget(plan.max_cost_usd, what="the batch's cap"), TaskExecutor(store), sink,
    )  # fmt: skip
    results = await runner.run(plan, concurrency, _row_subflow)
    results += [batch_results.invalid(r, spec.name) for r in plan.rows if not r.valid]
    results.sort(key=lambda r: r.row)
    stem = Path(results_path) if results_path else default_results_path(spec.name)
    csv_path, parquet_path = batch_results.write(results, stem)
    summary = batch_results.summary(spec.name, results, str(csv_path), str(parquet_path))
    await batch_results.publish(spec.name, results, summary, store, previews)
    sink(BatchFinished(summary, results))
    failed = [r for r in results if r.status == "failed"]
    if failed:
        raise BatchFailedError(spec.name, failed, str(csv_path))
    return summary


async def prepare_batch(
    spec: PipelineSpec,
    raw_rows: list[tuple[int, dict[str, Any]]],
    overrides: dict[str, Any],
    registry: Registry,
    store: ArtifactStore,
    refresh: bool = False,
    max_cost_usd: Decimal | None = None,
) -> BatchPlan:
    """Check the pipeline once and every row against it, plan every good row; nothing is run."""
    order = validate(spec, registry)
    check_columns(spec, [raw for _, raw in raw_rows])
    fixed = check_overrides(spec, overrides)
    planned: list[BatchRow] = []
    for number, raw in raw_rows:
        row = row_params(spec, number, raw, fixed)
        if row.valid:
            await plan_row(spec, order, row, registry, store, refresh)
        planned.append(row)
    cap = max_cost_usd if max_cost_usd is not None else spec.max_cost_usd
    return batch_plan(spec.name, planned, cap)


def default_results_path(pipeline: str) -> Path:
    """Where a batch writes its results when not told: <data folder>/batches/<pipeline>-<time> (.csv, .parquet)."""
    return get_settings().data_dir / "batches" / f"{pipeline}-{datetime.now():%Y%m%d-%H%M%S}"
