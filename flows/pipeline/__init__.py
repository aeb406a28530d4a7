"""Pipelines: spec → validate → plan (each step bound once) → runner → flow."""

from .bind import StepCall, bind
from .flow import PipelineRun, execute_pipeline, open_run_store, plan_pipeline, run_pipeline
from .plan import Plan, PlannedStep, make_plan
from .runner import PipelineFailedError, PipelineRunner
from .spec import PipelineSpec
from .validate import PipelineValidationError, validate

__all__ = [
    "Plan",
    "PlannedStep",
    "PipelineFailedError",
    "PipelineRun",
    "PipelineRunner",
    "PipelineSpec",
    "PipelineValidationError",
    "StepCall",
    "bind",
    "execute_pipeline",
    "make_plan",
    "open_run_store",
    "plan_pipeline",
    "run_pipeline",
    "validate",
]
