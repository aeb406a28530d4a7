"""Batch runs: one pipeline over many rows (CSV or list), checked and planned first, run within provider limits.

Each row that has work to do runs as its own subflow run ("slideshow · row 3"): in the Prefect UI a row has
its own state, task runs, logs and cost table, so a failed row is one click away. That costs a few API calls
per row (~0.5 s on a busy 2-core box), small next to a row's media work. A row the plan finds wholly in the
cache is not run at all: its outputs are read from the result index, which is what its tasks would return.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from generators.base import BaseGenerator, GeneratorResult
from generators.errors import BoardflowError, BudgetExceededError, InputError
from generators.registry import Registry, get_registry
from generators.settings import get_settings
from generators.storage import ArtifactStore

from . import batch_results, costs
from .batch_limits import ProviderSlots, SharedBudget, ensure_provider_limits
from .batch_results import RowResult
from .batch_rows import (
    BatchPlan,
    BatchRow,
    BatchValidationError,
    batch_plan,
    check_columns,
    check_overrides,
    plan_row,
    read_rows,
    row_params,
)
from .caching import cache_key
from .pipeline import PipelineFailedError, PipelineRunner, open_run_store
from .spec import PipelineSpec
from .validate import validate

PIPELINES_DIR = Path(__file__).resolve().parents[1] / "pipelines"

Listener = Callable[[str, dict[str, Any]], None]  # (event, details): plan, row, finished
_listeners: list[Listener] = []


def add_batch_listener(listener: Listener) -> Callable[[], None]:
    """Follow batches run in this process (the CLI's progress display); returns a remover."""
    _listeners.append(listener)
    return lambda: _listeners.remove(listener)


def _emit(event: str, **details: Any) -> None:
    for listener in list(_listeners):
        listener(event, details)


class BatchFailedError(BoardflowError):
    def __init__(self, pipeline: str, failed: list[RowResult], results_csv: str):
        self.failed = failed
        lines = "\n".join(f"  - row {r.row}: {r.error[:300]}" for r in failed[:20])
        more = f"\n  … and {len(failed) - 20} more" if len(failed) > 20 else ""
        super().__init__(
            f"Batch of {pipeline!r}: {len(failed)} row(s) failed (the others finished):\n{lines}{more}",
            hint=f"Fix the cause, then re-run only those rows with --only-failed {results_csv}.",
        )


@dataclass
class BatchContext:
    """What the row subflows of one batch share: the spec, the store, the slots and the budget."""

    spec: PipelineSpec
    order: list[str]
    registry: Registry
    store: ArtifactStore
    refresh: bool
    slots: ProviderSlots
    budget: SharedBudget
    runners: dict[int, RowRunner] = field(default_factory=dict)


@dataclass
class RowRunner(PipelineRunner):
    """The pipeline runner with the batch's provider slots and shared budget in place of its own."""

    batch: BatchContext | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self._step_keys: dict[str, tuple[str, bool]] = {}  # label -> (cache key, already stored)

    async def _run_generator(
        self, gen: BaseGenerator, name: str, label: str, raw: dict[str, Any], overrides: dict[str, Any], fallback: bool
    ) -> GeneratorResult:
        assert self.batch is not None
        # Known before the budget check, so a step that will be a cache hit is not counted against the cap.
        key = cache_key(gen, gen.parse_inputs(raw, where=label).model_dump(mode="json"))
        self._step_keys[label] = (key, not self.refresh and await self._index.usable(key) is not None)
        try:
            return await super()._run_generator(gen, name, label, raw, overrides, fallback)
        finally:
            self.batch.budget.release(self, label)

    def _limit(self, provider: str):  # type: ignore[override]
        assert self.batch is not None
        return self.batch.slots.slot(provider)

    def _reserve(self, label: str, estimate: Decimal) -> None:
        assert self.batch is not None
        key, stored = self._step_keys.get(label, (None, False))
        self.batch.budget.reserve(self, label, Decimal(0) if stored else estimate, key)
        self.reserved += estimate  # the base runner takes it back when the step ends


_active: dict[str, BatchContext] = {}  # batch flow run id → its context, for its row subflows


@flow(name="boardflow-batch-row", flow_run_name="{pipeline} · row {row}", validate_parameters=False)
async def batch_row(pipeline: str, row: int, params: dict[str, Any], batch_id: str) -> dict[str, Any]:
    """One row of a batch: the pipeline's steps through the shared provider slots; its own cost table."""
    ctx = _active[batch_id]
    runner = RowRunner(ctx.spec, ctx.order, params, ctx.registry, ctx.store, ctx.refresh, str(flow_run.id), batch=ctx)
    ctx.runners[row] = runner
    ctx.budget.runners.append(runner)
    try:
        await runner.run()
    finally:
        await costs.publish(pipeline, runner.records)
    if runner.failures:
        raise PipelineFailedError(pipeline, runner.failures)
    return {"row": row, "outputs": runner.outputs()}


def _batch_run_name() -> str:
    spec = flow_run.parameters.get("spec")
    name = spec.get("name", "pipeline") if isinstance(spec, dict) else Path(str(spec)).stem
    return f"{name} batch {datetime.now():%Y-%m-%d %H:%M}"


@flow(name="boardflow-batch", flow_run_name=_batch_run_name, validate_parameters=False)
async def batch(
    spec: dict[str, Any] | str,
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
    batch stops). A plan over `max_cost_usd` (default: the pipeline's) is refused. `overrides` apply to every
    row; `only_failed` names an earlier results CSV whose failed rows are the only ones run.
    """
    return await execute_batch(
        spec, rows, overrides, strict, max_cost_usd, concurrency, refresh, store_url, store_block,
        results_path, only_failed, previews,
    )  # fmt: skip


async def prepare_batch(
    spec: PipelineSpec,
    raw_rows: list[tuple[int, dict[str, Any]]],
    overrides: dict[str, Any],
    registry: Registry,
    store: ArtifactStore,
    refresh: bool = False,
    max_cost_usd: Decimal | None = None,
) -> tuple[list[str], BatchPlan]:
    """Check the pipeline once and every row against it, plan every good row; nothing is run."""
    order = validate(spec, registry)
    check_columns(spec, [raw for _, raw in raw_rows])
    fixed = check_overrides(spec, overrides)
    rows: list[BatchRow] = []
    for number, raw in raw_rows:
        row = row_params(spec, number, raw, fixed)
        if row.valid:
            await plan_row(spec, order, row, registry, store, refresh)
        rows.append(row)
    cap = max_cost_usd if max_cost_usd is not None else spec.max_cost_usd
    return order, batch_plan(spec.name, rows, cap)


async def execute_batch(
    spec: dict[str, Any] | str,
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
    """The body of the batch flow; call it from inside any flow run."""
    logger = get_run_logger()
    if concurrency < 1:
        raise InputError(f"concurrency must be at least 1, got {concurrency}.")
    model = load_spec(spec)
    registry = get_registry()
    store = await open_run_store(store_url, store_block)
    numbered = list(enumerate(read_rows(rows), start=1))
    if only_failed:
        wanted = batch_results.failed_rows(only_failed, model.name, len(numbered))
        numbered = [(n, raw) for n, raw in numbered if n in wanted]
        logger.info("Re-running %d failed row(s) of %s", len(numbered), only_failed)
    if not numbered:
        logger.info("No rows to run.")
        _emit("finished", summary={"pipeline": model.name, "rows": 0}, results=[])
        return {"pipeline": model.name, "rows": 0}
    cap = Decimal(str(max_cost_usd)) if max_cost_usd is not None else None
    order, plan = await prepare_batch(model, numbered, overrides or {}, registry, store, refresh, cap)
    _emit("plan", plan=plan)
    logger.info("Batch plan: %s", plan.summary())
    for problem in plan.problems:
        logger.warning("Skipping %s", problem)
    if plan.problems and strict:
        raise BatchValidationError(model.name, plan.problems)
    if plan.over_budget:
        raise BudgetExceededError(
            f"Batch of {model.name!r} plans {costs.usd(plan.total_usd)}, over the cap "
            f"{costs.usd(plan.max_cost_usd)}; nothing was run.",
            planned_usd=plan.total_usd,
            cap_usd=plan.max_cost_usd,
        )
    providers = {registry.get(g).provider for s in model.steps.values() for g in [s.generator, *s.fallbacks]}
    ctx = BatchContext(
        model, order, registry, store, refresh, ProviderSlots(await ensure_provider_limits(providers)),
        SharedBudget(plan.max_cost_usd),
    )  # fmt: skip
    results = await _run_rows(ctx, plan, concurrency, str(flow_run.id))
    results += [batch_results.invalid(r, model.name) for r in plan.rows if not r.valid]
    results.sort(key=lambda r: r.row)
    stem = Path(results_path) if results_path else _default_results_path(model.name)
    csv_path, parquet_path = batch_results.write(results, stem)
    summary = batch_results.summary(model.name, results, str(csv_path), str(parquet_path))
    await batch_results.publish(model.name, results, summary, ctx, previews)
    _emit("finished", summary=summary, results=results)
    failed = [r for r in results if r.status == "failed"]
    if failed:
        raise BatchFailedError(model.name, failed, str(csv_path))
    return summary


async def _run_rows(ctx: BatchContext, plan: BatchPlan, concurrency: int, batch_id: str) -> list[RowResult]:
    """Every valid row, at most `concurrency` at a time; a failing row is recorded and the others go on."""
    rows = plan.valid_rows
    gate = asyncio.Semaphore(concurrency)
    progress = batch_results.Progress(ctx.spec.name, len(rows))
    await progress.start()
    _active[batch_id] = ctx

    async def one(row: BatchRow) -> RowResult:
        async with gate:
            if row.fully_cached and not ctx.refresh:
                result = batch_results.from_cache(ctx, row)
            else:
                result = await _run_row(ctx, row, batch_id)
        await progress.row_done(result)
        _emit("row", result=result, done=progress.done, failed=progress.failed, total=len(rows))
        return result

    try:
        return list(await asyncio.gather(*(one(r) for r in rows)))
    finally:
        _active.pop(batch_id, None)
        await progress.finish()


async def _run_row(ctx: BatchContext, row: BatchRow, batch_id: str) -> RowResult:
    started = time.perf_counter()
    state = await batch_row(ctx.spec.name, row.row, row.params, batch_id, return_state=True)
    wall = time.perf_counter() - started
    runner = ctx.runners.pop(row.row, None)
    run_id = str(state.state_details.flow_run_id or "")
    if runner is None:  # the subflow failed before its runner existed
        error = await state.result(raise_on_failure=False)
        return batch_results.crashed(ctx.spec.name, row.row, str(error or state.message), wall, run_id)
    error = None
    if not state.is_completed():
        failures = runner.failures or {"row": str(state.message)}
        error = "; ".join(f"{step}: {why}" for step, why in failures.items())
    outputs = runner.outputs() if error is None else {}
    return batch_results.from_runner(ctx.spec.name, row.row, runner, outputs, error, wall, run_id)


def load_spec(spec: dict[str, Any] | str | PipelineSpec) -> PipelineSpec:
    """A spec dict, a YAML path, or the name of a pipeline shipped in pipelines/."""
    if isinstance(spec, PipelineSpec):
        return spec
    if isinstance(spec, dict):
        return PipelineSpec.parse(spec)
    path = Path(spec)
    if not path.exists() and (PIPELINES_DIR / f"{spec}.yaml").exists():
        path = PIPELINES_DIR / f"{spec}.yaml"
    return PipelineSpec.load(path)


def _default_results_path(pipeline: str) -> Path:
    return get_settings().data_dir / "batches" / f"{pipeline}-{datetime.now():%Y%m%d-%H%M%S}"
