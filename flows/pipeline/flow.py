"""A pipeline as one Prefect flow: validate, plan (refusing a plan over its cap), run, publish costs and previews."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from pydantic import BaseModel, Field, field_validator

from generators.artifacts import Artifact, as_artifact, is_artifact, output_artifacts
from generators.errors import BudgetExceededError
from generators.registry import Registry, get_registry
from generators.storage import ArtifactStore, open_store

from ..engine.liveness import run_hygiene
from ..events import Event, RunFinished, RunStarted, current_sink
from ..reporting import costs
from ..reporting.costs import CostRecord
from ..reporting.previews import Previews
from .plan import Plan, make_plan
from .runner import PipelineFailedError, PipelineRunner
from .spec import PipelineSpec
from .validate import lifecycle_warnings, validate


class PipelineRun(BaseModel):
    """What a pipeline run returns: its outputs (artifacts typed), the cost records, the plan and the totals."""

    pipeline: str
    flow_run_id: str | None = None
    outputs: dict[str, Any] = Field(description="Each spec output: an artifact, a list of them, or a plain value.")
    records: list[CostRecord]
    plan: list[dict[str, Any]] = []
    totals: dict[str, Decimal] = {}

    @field_validator("outputs", mode="before")
    @classmethod
    def _typed_artifacts(cls, outputs: dict[str, Any]) -> dict[str, Any]:
        def typed(value: Any) -> Any:
            if isinstance(value, list) and value and all(is_artifact(v) for v in value):
                return [typed(v) for v in value]
            return as_artifact(value) if is_artifact(value) else value

        return {name: typed(value) for name, value in outputs.items()}

    def artifacts(self) -> list[tuple[str, int | None, Artifact]]:
        """(output name, index in a list output or None, artifact) for every artifact output, in spec order."""
        return output_artifacts(self.outputs)


def _flow_run_name() -> str:
    spec = flow_run.parameters.get("spec")
    if isinstance(spec, PipelineSpec):
        return spec.name
    if isinstance(spec, dict):
        return str(spec.get("name", "pipeline"))
    return Path(str(spec)).stem if spec else "pipeline"


@flow(name="boardflow-pipeline", flow_run_name=_flow_run_name, validate_parameters=False)
async def run_pipeline(
    spec: PipelineSpec | dict[str, Any] | str,
    params: dict[str, Any] | None = None,
    refresh: bool = False,
    store_url: str | None = None,
    store_block: str | None = None,
) -> PipelineRun:
    """Validate, plan (refusing a plan over max_cost_usd), run every step, and publish costs and previews.

    `spec` is a spec as a mapping, a YAML path, or the name of a shipped pipeline (see PipelineSpec.resolve).
    """
    return await execute_pipeline(PipelineSpec.resolve(spec), params, refresh, store_url, store_block)


async def open_run_store(store_url: str | None = None, store_block: str | None = None) -> ArtifactStore:
    """The artifact store of a run: a saved artifact-store block by name, else a URL, else BOARDFLOW_STORE."""
    if store_block:
        from blocks.storage import ArtifactStoreBlock

        block = await ArtifactStoreBlock.aload(store_block)
        return block.get_store()
    return open_store(store_url)


async def execute_pipeline(
    spec: PipelineSpec,
    params: dict[str, Any] | None = None,
    refresh: bool = False,
    store_url: str | None = None,
    store_block: str | None = None,
    registry: Registry | None = None,
) -> PipelineRun:
    """The body of a pipeline flow; call it from inside any flow run."""
    async with run_hygiene(str(flow_run.id)):  # a SIGKILL of this process leaves it marked Crashed next time
        return await _execute(spec, params, refresh, store_url, store_block, registry)


async def _execute(
    spec: PipelineSpec,
    params: dict[str, Any] | None,
    refresh: bool,
    store_url: str | None,
    store_block: str | None,
    registry: Registry | None,
) -> PipelineRun:
    registry = registry or get_registry()
    store = await open_run_store(store_url, store_block)
    plan = await plan_pipeline(spec, params or {}, store, refresh, registry)
    get_run_logger().info(
        "Plan: %d step run(s), estimated %s, %s expected from cache",
        plan.step_count,
        costs.usd(plan.total_usd),
        costs.usd(plan.saved_usd),
    )
    if plan.over_budget and plan.unpriced_steps:
        raise BudgetExceededError(
            f"Pipeline {spec.name!r}: {', '.join(plan.unpriced_steps)} use a model with no known price, so "
            f"max_cost_usd {costs.usd(spec.max_cost_usd or 0)} cannot be kept; nothing was run.",
            planned_usd=plan.total_usd,
            cap_usd=spec.max_cost_usd or Decimal(0),
            hint="Add the provider's price to the model's catalogue entry (price.terms), or drop the cap.",
        )
    if plan.over_budget:
        raise BudgetExceededError(
            f"Pipeline {spec.name!r} plans {costs.usd(plan.total_usd)}, over max_cost_usd "
            f"{costs.usd(spec.max_cost_usd or 0)}; nothing was run.",
            planned_usd=plan.total_usd,
            cap_usd=spec.max_cost_usd,
        )
    outer = current_sink()
    async with Previews(store) as previews:

        def sink(event: Event) -> None:
            outer(event)
            previews.follow(event)  # each step's previews are made while the others run

        runner = PipelineRunner(spec, plan, registry, store, refresh, run_id=str(flow_run.id), sink=sink)
        sink(RunStarted(spec.name, str(flow_run.id), plan.step_count))
        finished = False
        try:
            await runner.run()
            finished = True
        finally:  # a failed run still shows its costs; a cancelled one (Ctrl-C, SIGTERM) too, then goes
            sink(RunFinished(spec.name, runner.records))
            await costs.publish(spec.name, runner.records)
        outputs = runner.outputs() if finished and not runner.failures else {}
        await previews.publish(spec.name, runner.results, outputs)
    if runner.failures:
        raise PipelineFailedError(spec.name, runner.failures)
    return PipelineRun(
        pipeline=spec.name,
        flow_run_id=str(flow_run.id),
        outputs=outputs,
        records=runner.records,
        plan=plan.rows(),
        totals=costs.totals(runner.records),
    )


async def plan_pipeline(
    spec: PipelineSpec,
    params: dict[str, Any],
    store: ArtifactStore | None = None,
    refresh: bool = False,
    registry: Registry | None = None,
) -> Plan:
    """Validate and plan without running anything (no Prefect needed)."""
    registry = registry or get_registry()
    values = spec.resolve_params(params)
    order = validate(spec, registry, values)
    plan = await make_plan(spec, order, values, registry, store or open_store(), refresh)
    plan.warnings = [str(w) for w in lifecycle_warnings(spec, registry)]
    return plan
