"""Binding a step: its generator, validated inputs, cache key and estimate, worked out once and passed along.

The plan binds every step whose inputs it can know; the runner runs those same calls (and binds only what
the plan could not: steps fed by outputs that did not exist yet, and fallbacks). The task receives the
call, and the cache policy reads its key: nothing downstream parses, estimates or hashes a step again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from generators.base import BaseGenerator
from generators.errors import InputValidationError

from ..engine.caching import NOT_INDEXED, Lookup, ResultIndex, cache_key
from .scope import PLANNED_URL, Scope
from .spec import StepSpec


@dataclass(frozen=True)
class StepCall:
    """One run of one generator on concrete inputs: what a plan shows and what a task executes."""

    step: str  # the spec's step name
    label: str  # the step, with its for_each index: "clip[2]"
    generator: BaseGenerator
    raw: dict[str, Any]  # the inputs with references resolved, before validation (a fallback binds from these)
    inputs: BaseModel  # validated against the generator's input schema
    payload: dict[str, Any]  # `inputs` as JSON
    key: str | None  # content cache key; None while the inputs are planning stand-ins
    estimate: Decimal
    options: dict[str, Any] = field(default_factory=dict)  # the step's `task:` overrides
    fallback: int = 0  # 0: the step's own generator; n: its n-th fallback
    lookup: Lookup = NOT_INDEXED  # what the result index said of `key` when the call was bound

    @property
    def stand_in(self) -> bool:
        """Bound on stand-ins for outputs not yet made: an estimate only, never run."""
        return self.key is None


async def bind(
    name: str,
    label: str,
    step: StepSpec,
    generator: BaseGenerator,
    scope: Scope,
    fallback: int = 0,
    index: ResultIndex | None = None,
) -> StepCall:
    """Resolve the step's references in `scope` and bind the result to `generator`; with an `index`, the call
    carries what the index says of its key (a plan's look-up, made here so the call is built once)."""
    raw = scope.resolve(step.inputs)
    return await bind_raw(
        name, label, raw, step, generator, stand_in=scope.used_placeholder, fallback=fallback, index=index
    )


async def bind_raw(
    name: str,
    label: str,
    raw: dict[str, Any],
    step: StepSpec,
    generator: BaseGenerator,
    *,
    stand_in: bool = False,
    fallback: int = 0,
    index: ResultIndex | None = None,
) -> StepCall:
    try:
        inputs = generator.parse_inputs(raw, where=label)
        payload = inputs.model_dump(mode="json")
    except InputValidationError as exc:
        # On stand-ins a check may trip over a planned output's made-up fields: then estimate from the raw
        # values (the call never runs). A problem in a field that holds no stand-in is real, and says so now.
        planned = {name for name, value in raw.items() if _holds_stand_in(value)}
        real = [(f, m) for f, m in exc.problems if f.split(".")[0] and f.split(".")[0] not in planned]
        if not stand_in or real:
            raise
        inputs = generator.get_input_schema().model_construct(**raw)
        payload = dict(raw)
    key = None if stand_in else cache_key(generator, payload)
    return StepCall(
        step=name,
        label=label,
        generator=generator,
        raw=raw,
        inputs=inputs,
        payload=payload,
        key=key,
        estimate=await generator.estimate_cost(inputs),
        options=step.task.overrides(),
        fallback=fallback,
        lookup=await index.lookup(key) if index is not None and key is not None else NOT_INDEXED,
    )


def _holds_stand_in(value: Any) -> bool:
    if isinstance(value, dict):
        return value.get("storage_url") == PLANNED_URL or any(_holds_stand_in(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_stand_in(v) for v in value)
    return False
