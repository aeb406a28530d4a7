"""A deployable flow that runs a shipped pipeline by name, so a deployment's form asks for params, not a spec."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import flows  # noqa: F401  (offline-safe Prefect defaults, results under the data folder, before prefect loads)

# isort: split
from prefect import flow
from prefect.runtime import flow_run

from flows.caching import result_storage_path
from flows.pipeline import execute_pipeline
from flows.spec import PipelineSpec
from generators.errors import ConfigurationError

_GENERATED_NAME = re.compile(r"[a-z]+-[a-z]+")  # Prefect names an unnamed run with two words, "crafty-heron"


def run_name(current: str | None, pipeline: str | None) -> str:
    """The run's name: the one its caller gave (a batch fan-out's "slideshow · row 3") or the pipeline's."""
    if current and not _GENERATED_NAME.fullmatch(current):
        return current
    return str(pipeline or "pipeline")


def _run_name() -> str:
    return run_name(flow_run.name, flow_run.parameters.get("pipeline"))


PIPELINES_DIR = Path(__file__).resolve().parents[1] / "pipelines"


def load_named_spec(pipeline: str) -> PipelineSpec:
    named = PIPELINES_DIR / f"{pipeline}.yaml"
    path = named if named.exists() else Path(pipeline)
    if not path.exists():
        raise ConfigurationError(
            f"No pipeline {pipeline!r}: {path} does not exist.",
            hint="Use a file name from pipelines/ without .yaml (e.g. slideshow), or a path relative to the project.",
        )
    return PipelineSpec.load(path)


# The result (outputs, cost records) persists as JSON beside the task results (the worker's BOARDFLOW_DATA_DIR),
# so a caller of the deployment can read it back. Named explicitly: a worker imports prefect before this module.
@flow(
    name="boardflow-named-pipeline",
    flow_run_name=_run_name,
    validate_parameters=True,
    persist_result=True,
    result_storage=result_storage_path(),
    result_serializer="json",
)
async def run_named_pipeline(
    pipeline: str,
    params: dict[str, Any] | None = None,
    refresh: bool = False,
    store_url: str | None = None,
    store_block: str | None = None,
) -> dict[str, Any]:
    """Run one shipped pipeline with these params; the worker's BOARDFLOW_STORE decides where outputs go.

    Args:
        pipeline: A pipeline in pipelines/ without .yaml (slideshow, storyboard…), or a YAML path.
        params: The pipeline's params (see `boardflow plan PIPELINE`); missing ones take their defaults.
        refresh: Run every step even when a cached result exists.
        store_url: Artifact store for this run (default: the worker's BOARDFLOW_STORE).
        store_block: Name of a saved artifact-store block to use instead of `store_url`.
    """
    spec = load_named_spec(pipeline)
    return await execute_pipeline(spec.model_dump(mode="json"), params or {}, refresh, store_url, store_block)
