"""A deployable flow that runs a shipped pipeline by name, so a deployment's form asks for params, not a spec."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.runtime import flow_run

from flows.cli import resolve_spec_path
from flows.pipeline import execute_pipeline
from flows.spec import PipelineSpec
from generators.errors import ConfigurationError


def _run_name() -> str:
    return str(flow_run.parameters.get("pipeline") or "pipeline")


def load_named_spec(pipeline: str) -> PipelineSpec:
    path = resolve_spec_path(pipeline)
    if not path.exists():
        raise ConfigurationError(
            f"No pipeline {pipeline!r}: {path} does not exist.",
            hint="Use a file name from pipelines/ without .yaml (e.g. slideshow), or a path relative to the project.",
        )
    return PipelineSpec.load(path)


@flow(name="boardflow-named-pipeline", flow_run_name=_run_name, validate_parameters=True)
async def run_named_pipeline(
    pipeline: str,
    params: dict[str, Any] | None = None,
    refresh: bool = False,
    store_url: str | None = None,
) -> dict[str, Any]:
    """Run one shipped pipeline with these params; the worker's BOARDFLOW_STORE decides where outputs go.

    Args:
        pipeline: A pipeline in pipelines/ without .yaml (slideshow, storyboard…), or a YAML path.
        params: The pipeline's params (see `boardflow plan PIPELINE`); missing ones take their defaults.
        refresh: Run every step even when a cached result exists.
        store_url: Artifact store for this run (default: the worker's BOARDFLOW_STORE).
    """
    spec = load_named_spec(pipeline)
    return await execute_pipeline(spec.model_dump(mode="json"), params or {}, refresh, store_url)
