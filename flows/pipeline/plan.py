"""Cost plan of a pipeline before it runs: per step and total, with expected cache hits at $0."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from generators.base import GeneratorResult
from generators.errors import InputError
from generators.registry import Registry
from generators.storage import ArtifactStore

from ..engine.caching import ResultIndex
from .bind import StepCall, bind
from .scope import Scope
from .spec import PipelineSpec, find_refs


@dataclass
class PlannedStep:
    step: str
    generator: str
    provider: str
    calls: list[StepCall] = field(default_factory=list)  # one per item, in item order

    @property
    def count(self) -> int:
        return len(self.calls)

    @property
    def estimates(self) -> list[Decimal]:
        return [c.estimate for c in self.calls]

    @property
    def cached(self) -> list[bool]:
        return [c.lookup.usable for c in self.calls]

    @property
    def keys(self) -> list[str | None]:
        """Cache key per item; None where the inputs are stand-ins."""
        return [c.key for c in self.calls]

    @property
    def uncertain(self) -> bool:
        """Depends on outputs that do not exist yet: estimated on stand-ins."""
        return any(c.stand_in for c in self.calls)

    @property
    def unpriced(self) -> bool:
        """Runs a model whose price is unknown (an imported entry): its estimate is not a price."""
        return any(not c.generator.priced and not c.lookup.usable for c in self.calls)

    @property
    def total_usd(self) -> Decimal:
        return sum((e for e, c in zip(self.estimates, self.cached, strict=True) if not c), Decimal(0))

    @property
    def saved_usd(self) -> Decimal:
        return sum((e for e, c in zip(self.estimates, self.cached, strict=True) if c), Decimal(0))


@dataclass
class Plan:
    pipeline: str
    order: list[str]
    steps: list[PlannedStep]
    max_cost_usd: Decimal | None
    params: dict[str, Any] = field(default_factory=dict)  # the checked values the plan was made for
    results: dict[str, Any] = field(default_factory=dict)  # per step: the cached result(s) found, or None
    warnings: list[str] = field(default_factory=list)  # e.g. a step on a deprecated model, with its shut-down day

    @property
    def step_count(self) -> int:
        return sum(s.count for s in self.steps)

    def call(self, step: str, index: int | None) -> StepCall | None:
        """The call bound for a step (item `index` of a for_each), unless the plan had to bind it on stand-ins."""
        planned = next((s for s in self.steps if s.step == step), None)
        if planned is None:
            return None
        i = 0 if index is None else index
        found = planned.calls[i] if i < len(planned.calls) else None
        return None if found is None or found.stand_in else found

    @property
    def total_usd(self) -> Decimal:
        return sum((s.total_usd for s in self.steps), Decimal(0))

    @property
    def saved_usd(self) -> Decimal:
        return sum((s.saved_usd for s in self.steps), Decimal(0))

    @property
    def unpriced_steps(self) -> list[str]:
        return [s.step for s in self.steps if s.unpriced]

    @property
    def over_budget(self) -> bool:
        """Over the cap, or under a cap with a step whose price nobody knows (it could cost anything)."""
        cap = self.max_cost_usd
        return cap is not None and (self.total_usd > cap or bool(self.unpriced_steps))

    def rows(self) -> list[dict[str, Any]]:
        return [
            {
                "step": s.step,
                "generator": s.generator,
                "runs": s.count,
                "cached": sum(s.cached),
                "estimate_usd": None if s.unpriced else float(s.total_usd),
                "approximate": s.uncertain,
            }
            for s in self.steps
        ]


async def make_plan(
    spec: PipelineSpec,
    order: list[str],
    params: dict[str, Any],
    registry: Registry,
    store: ArtifactStore,
    refresh: bool = False,
) -> Plan:
    """Walk the steps in order; where inputs are known, look the step up in the cache index."""
    index = ResultIndex(store)
    fanned = {n for n, s in spec.steps.items() if s.for_each is not None}
    schemas = {n: registry.get(s.generator).get_output_schema() for n, s in spec.steps.items()}
    results: dict[str, GeneratorResult | list[GeneratorResult] | None] = {}
    counts: dict[str, int] = {}
    planned: list[PlannedStep] = []
    for name in order:
        step = spec.steps[name]
        gen = registry.get(step.generator)
        base = Scope(params, results, schemas, fanned, planning=True, counts=counts)
        entry = PlannedStep(name, gen.name, gen.provider)
        if step.for_each is None:
            scopes, labels = [base], [name]
        else:
            items, uncertain = _plan_items(step.for_each, base, counts)
            scopes = [base.for_item(item, i) for i, item in enumerate(items)]
            labels = [f"{name}[{i}]" for i in range(len(items))]
            for scope in scopes:
                scope.used_placeholder = uncertain
        for scope, label in zip(scopes, labels, strict=True):
            entry.calls.append(await bind(name, label, step, gen, scope, index=None if refresh else index))
        counts[name] = len(scopes)
        found = [c.lookup.result for c in entry.calls]
        known = all(r is not None for r in found)
        results[name] = (found if step.for_each is not None else found[0]) if known else None
        planned.append(entry)
    return Plan(spec.name, order, planned, spec.max_cost_usd, params, results)


def _plan_items(for_each: Any, scope: Scope, counts: dict[str, int]) -> tuple[list[Any], bool]:
    """The items a for_each will iterate, or stand-ins (counted from the producing step) if not made yet."""
    refs = find_refs(for_each)
    if isinstance(for_each, str) and len(refs) == 1 and refs[0].step and scope.results.get(refs[0].step) is None:
        ref = refs[0]
        stand_in = scope._from_result(None, ref.step, [p for p in ref.path[1:] if not isinstance(p, int)], ref)
        return [stand_in] * counts.get(ref.step, 1), True
    items = scope.resolve(for_each)
    if not isinstance(items, list):
        raise InputError(f"for_each must give a list, got {type(items).__name__}.")
    return items, scope.used_placeholder
