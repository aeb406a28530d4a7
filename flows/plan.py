"""Cost plan of a pipeline before it runs: per step and total, with expected cache hits at $0."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from generators.base import GeneratorResult
from generators.errors import InputError, InputValidationError
from generators.registry import Registry
from generators.storage import ArtifactStore

from .caching import ResultIndex, cache_key
from .costs import usd
from .scope import Scope
from .spec import PipelineSpec, find_refs


@dataclass
class PlannedStep:
    step: str
    generator: str
    provider: str
    estimates: list[Decimal] = field(default_factory=list)  # one per item
    cached: list[bool] = field(default_factory=list)
    uncertain: bool = False  # depends on outputs that do not exist yet: estimated on stand-ins
    keys: list[str | None] = field(default_factory=list)  # cache key per item; None where inputs are stand-ins

    @property
    def count(self) -> int:
        return len(self.estimates)

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
    results: dict[str, Any] = field(default_factory=dict)  # per step: the cached result(s) found, or None

    @property
    def total_usd(self) -> Decimal:
        return sum((s.total_usd for s in self.steps), Decimal(0))

    @property
    def saved_usd(self) -> Decimal:
        return sum((s.saved_usd for s in self.steps), Decimal(0))

    @property
    def over_budget(self) -> bool:
        return self.max_cost_usd is not None and self.total_usd > self.max_cost_usd

    def rows(self) -> list[dict[str, Any]]:
        return [
            {
                "step": s.step,
                "generator": s.generator,
                "runs": s.count,
                "cached": sum(s.cached),
                "estimate_usd": float(s.total_usd),
                "approximate": s.uncertain,
            }
            for s in self.steps
        ]

    def rich_table(self):
        from rich.table import Table

        table = Table(title=f"Plan for {self.pipeline}")
        for col in ("step", "generator", "runs", "from cache", "estimate"):
            table.add_column(col, justify="right" if col in ("runs", "from cache", "estimate") else "left")
        for s in self.steps:
            table.add_row(
                s.step, s.generator, str(s.count), str(sum(s.cached)), ("≈" if s.uncertain else "") + usd(s.total_usd)
            )
        cap = f" (cap {usd(self.max_cost_usd)})" if self.max_cost_usd is not None else ""
        table.add_row(
            "total",
            "",
            str(sum(s.count for s in self.steps)),
            str(sum(sum(s.cached) for s in self.steps)),
            usd(self.total_usd) + cap,
            style="bold",
        )
        return table


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
            scopes = [base]
        else:
            items, uncertain = _plan_items(step.for_each, base, counts)
            scopes = [base.for_item(item, i) for i, item in enumerate(items)]
            for scope in scopes:
                scope.used_placeholder = uncertain
        found: list[GeneratorResult | None] = []
        for scope in scopes:
            raw = scope.resolve(step.inputs)
            try:
                inputs = gen.parse_inputs(raw, where=name)
            except InputValidationError:
                if not scope.used_placeholder:
                    raise
                # A cross-field check tripped over stand-in values: estimate from the raw values instead.
                inputs = gen.get_input_schema().model_construct(**raw)
            entry.estimates.append(await gen.estimate_cost(inputs))
            key = None if scope.used_placeholder else cache_key(gen, inputs.model_dump(mode="json"))
            hit = await index.usable(key) if key is not None and not refresh else None
            entry.keys.append(key)
            entry.cached.append(hit is not None)
            entry.uncertain |= scope.used_placeholder
            found.append(hit)
        counts[name] = len(scopes)
        known = all(r is not None for r in found)
        results[name] = (found if step.for_each is not None else found[0]) if known else None
        planned.append(entry)
    return Plan(spec.name, order, planned, spec.max_cost_usd, results)


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
