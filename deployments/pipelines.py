"""A deployable flow that runs a shipped pipeline by name, so a deployment's form asks for params, not a spec."""

from __future__ import annotations

import re
from typing import Any

import flows  # noqa: F401  (offline-safe Prefect defaults, results under the data folder, before prefect loads)

# isort: split
from prefect import flow
from prefect.runtime import flow_run

from flows.engine.records import default_result_storage, with_result_storage
from flows.pipeline.flow import PipelineRun, execute_pipeline
from flows.pipeline.spec import PipelineSpec

_GENERATED_NAME = re.compile(r"[a-z]+-[a-z]+")  # Prefect names an unnamed run with two words, "crafty-heron"


def run_name(current: str | None, pipeline: str | None) -> str:
    """The run's name: the one its caller gave (a batch fan-out's "slideshow · row 3") or the pipeline's."""
    if current and not _GENERATED_NAME.fullmatch(current):
        return current
    return str(pipeline or "pipeline")


def _run_name() -> str:
    return run_name(flow_run.name, flow_run.parameters.get("pipeline"))


# The result (outputs, cost records) persists as JSON beside the task results, so a caller of the deployment can
# read it back: in the worker's S3 store (any machine), else its BOARDFLOW_DATA_DIR. Named explicitly: a worker
# imports prefect before this module.
@flow(
    name="boardflow-named-pipeline",
    flow_run_name=_run_name,
    validate_parameters=True,
    persist_result=True,
    result_serializer="json",
)
async def run_named_pipeline(
    pipeline: str,
    params: dict[str, Any] | None = None,
    refresh: bool = False,
    store_url: str | None = None,
    store_block: str | None = None,
) -> PipelineRun:
    """Run one shipped pipeline with these params; the worker's BOARDFLOW_STORE decides where outputs go.

    Args:
        pipeline: A pipeline in pipelines/ without .yaml (slideshow, storyboard…), or a YAML path.
        params: The pipeline's params (see `boardflow plan PIPELINE`); missing ones take their defaults.
        refresh: Run every step even when a cached result exists.
        store_url: Artifact store for this run (default: the worker's BOARDFLOW_STORE).
        store_block: Name of a saved artifact-store block to use instead of `store_url`.
    """
    return await execute_pipeline(PipelineSpec.resolve(pipeline), params or {}, refresh, store_url, store_block)


with_result_storage(run_named_pipeline, default_result_storage())
