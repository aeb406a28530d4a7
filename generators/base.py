"""The generator contract: typed inputs, `generate`, `estimate_cost`, availability, and the result."""

from __future__ import annotations

import importlib.util
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ValidationError

from .artifacts import Artifact, output_artifacts
from .catalogue.entry import Lifecycle
from .credentials import Credential, block_problem
from .errors import InputValidationError, block_alternative

if TYPE_CHECKING:
    from .context import GeneratorContext

__all__ = [
    "Availability",
    "BaseGenerator",
    "Credential",  # defined in .credentials; importable from here as it always was
    "GeneratorResult",
    "collect_artifacts",
]


@dataclass(frozen=True)
class Availability:
    ok: bool
    reason: str = ""
    fix: str = ""


class GeneratorResult(BaseModel):
    """What one generator run produced: outputs as JSON (artifacts by reference, never bytes) and cost."""

    generator: str
    version: str
    outputs: dict[str, Any]
    estimated_cost_usd: Decimal
    actual_cost_usd: Decimal | None = None
    compute_seconds: float = 0.0
    external_job_ids: list[str] = []
    # True when an orchestrator handed back an earlier run's stored result instead of running again:
    # nothing was spent or computed this time (a cache hit by another route).
    reused: bool = False
    # Paid submissions sent again after an earlier one's answer was lost, where the provider offers no way to
    # find the job it may have made: each may have been billed twice.
    possible_duplicate_charges: int = 0

    @property
    def cost_usd(self) -> Decimal:
        """The actual cost where the provider reported one, else the estimate."""
        return self.actual_cost_usd if self.actual_cost_usd is not None else self.estimated_cost_usd

    def artifacts(self) -> list[Artifact]:
        """Every artifact in the outputs, in field order (lists flattened)."""
        return [artifact for _, _, artifact in output_artifacts(self.outputs)]

    @property
    def primary(self) -> Artifact:
        arts = self.artifacts()
        if not arts:
            raise LookupError(f"{self.generator} produced no artifact")
        return arts[0]


class BaseGenerator(ABC):
    """Subclass this, set the class attributes, and implement the four methods.

    Generators know nothing of Prefect: orchestration wraps them from the outside.
    """

    # Not ClassVars: a local generator sets these on its class, but a data-driven one (HostedGenerator,
    # one instance per model spec) sets them per instance in __init__.
    name: str  # stable id, provider/model style: "local/ken-burns", "fal/flux-dev"
    artifact_type: str  # image | video | audio | text | lora
    description: str
    provider: str = "local"
    credentials: tuple[Credential, ...] = ()
    cost_model: str = "free (runs locally)"
    lifecycle: Lifecycle = Lifecycle()  # hosted models: deprecated or shut down by their provider
    priced: bool = True  # False: the provider publishes no price, so the estimate ($0) is not a price
    version: ClassVar[str] = "1"  # bump to invalidate cached results
    requires_modules: ClassVar[tuple[str, ...]] = ()  # optional imports; missing → unavailable

    @abstractmethod
    def get_input_schema(self) -> type[BaseModel]: ...

    @abstractmethod
    def get_output_schema(self) -> type[BaseModel]: ...

    @abstractmethod
    async def generate(self, inputs: Any, context: GeneratorContext) -> BaseModel: ...

    async def estimate_cost(self, inputs: Any) -> Decimal:
        return Decimal("0")

    def availability(self) -> Availability:
        for module in self.requires_modules:
            if not _importable(module):
                return Availability(False, f"Python package {module!r} is not installed.", f"pip install {module}")
        for cred in self.credentials:
            if not cred.is_set():
                block = block_alternative(cred.env_var, cred.block_type)
                return Availability(
                    False, f"{cred.env_var} is not set.", f"Set {cred.env_var}{block}; get a key at {cred.signup_url}"
                )
            if (problem := block_problem(cred)) is not None:
                return Availability(False, problem.message, problem.hint or "")
        return Availability(True)

    def parse_inputs(self, raw: BaseModel | dict[str, Any], *, where: str = "") -> BaseModel:
        """Validate raw inputs against the input schema; errors list every bad field."""
        schema = self.get_input_schema()
        if isinstance(raw, schema):
            return raw
        data = raw.model_dump() if isinstance(raw, BaseModel) else raw
        try:
            return schema.model_validate(data)
        except ValidationError as exc:
            raise InputValidationError.from_pydantic(self.name, exc, where=where) from exc

    async def run(
        self, raw_inputs: BaseModel | dict[str, Any], context: GeneratorContext, *, estimate: Decimal | None = None
    ) -> GeneratorResult:
        """Validate, estimate, generate, and wrap the outputs with cost and timing.

        An orchestrator that has already validated the inputs and estimated them passes both in (the
        validated model is taken as it is), so neither is worked out twice.
        """
        inputs = self.parse_inputs(raw_inputs)
        if estimate is None:
            estimate = await self.estimate_cost(inputs)
        context.bind(generator=self.name, input_artifacts=collect_artifacts(inputs))
        started = time.perf_counter()
        output = await self.generate(inputs, context)
        elapsed = time.perf_counter() - started
        checked = self.get_output_schema().model_validate(output.model_dump())
        return GeneratorResult(
            generator=self.name,
            version=self.version,
            outputs=checked.model_dump(mode="json"),
            estimated_cost_usd=estimate,
            actual_cost_usd=context.actual_cost_usd,
            compute_seconds=context.compute_seconds if context.compute_seconds is not None else elapsed,
            external_job_ids=list(context.external_job_ids),
            possible_duplicate_charges=context.possible_duplicate_charges,
        )


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a dotted name whose parent package is missing raises
        return False


def collect_artifacts(model: BaseModel) -> list[Artifact]:
    """Every artifact in a model's fields (single, optional and list fields)."""
    found: list[Artifact] = []
    for name in type(model).model_fields:
        value = getattr(model, name)
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(item, Artifact):
                found.append(item)
    return found
