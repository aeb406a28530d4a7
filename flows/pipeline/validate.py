"""Static checks of a pipeline spec before anything is spent: every problem, with its step and field."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from generators.errors import GeneratorNotFoundError, InputError
from generators.registry import Registry

from .scope import artifact_kind, output_kinds, placeholder_artifact
from .spec import PipelineSpec, Ref, find_refs


@dataclass(frozen=True)
class Problem:
    step: str
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.step}.{self.field}" if self.field else self.step
        return f"{where}: {self.message}"


class PipelineValidationError(InputError):
    def __init__(self, pipeline: str, problems: list[Problem]):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"Pipeline {pipeline!r} has {len(problems)} problem(s); nothing was run:\n{lines}",
            hint="Fix them and run `boardflow plan SPEC` again.",
        )


def validate(spec: PipelineSpec, registry: Registry, params: dict[str, Any] | None = None) -> list[str]:
    """Check the spec; return the steps in a runnable order, or raise PipelineValidationError."""
    problems: list[Problem] = []
    gens = {}
    for name, step in spec.steps.items():
        for gid in [step.generator, *step.fallbacks]:
            try:
                gen = registry.get(gid)
            except GeneratorNotFoundError as exc:
                problems.append(Problem(name, "generator", str(exc)))
                continue
            gens.setdefault(name, gen)
            if not registry.is_enabled(gid):
                problems.append(Problem(name, "generator", f"{gid} is disabled by the config file."))
            avail = gen.availability()
            if not avail.ok:
                problems.append(Problem(name, "generator", f"{gid} is unavailable: {avail.reason} Fix: {avail.fix}"))
        if step.fallbacks and name in gens:
            kinds = {registry.get(g).artifact_type for g in step.fallbacks if g in registry}
            if kinds - {gens[name].artifact_type}:
                problems.append(Problem(name, "fallbacks", "fallbacks must make the same artifact type."))
    for name, step in spec.steps.items():
        for fname, value in step.inputs.items():  # per field, so each problem names the input it is in
            problems += _check_refs(spec, name, value, gens, fname)
        problems += _check_refs(spec, name, step.for_each, gens, "for_each")
        for dep in step.after:
            if dep not in spec.steps:
                problems.append(Problem(name, "after", f"unknown step {dep!r}."))
        if name in gens:
            problems += _check_inputs(spec, name, gens, params or {})
    for out, value in spec.outputs.items():
        problems += _check_refs(spec, "outputs", value, gens, out)
    order, cycle = _order(spec)
    if cycle:
        problems.append(Problem(cycle[0], "", "steps form a cycle: " + " → ".join(cycle)))
    if problems:
        raise PipelineValidationError(spec.name, problems)
    return order


def lifecycle_warnings(spec: PipelineSpec, registry: Registry) -> list[Problem]:
    """Steps that use a model its provider has deprecated: the day it shuts down and what to use instead.

    A shut-down model is refused by `validate` (it is unavailable); a deprecated one still runs, with this.
    """
    warnings = []
    for name, step in spec.steps.items():
        for gid in [step.generator, *step.fallbacks]:
            if gid in registry and (gen := registry.get(gid)).lifecycle.status == "deprecated":
                warnings.append(Problem(name, "generator", gen.lifecycle.message(gid, gen.provider)))
    return warnings


def dependencies(spec: PipelineSpec, name: str) -> set[str]:
    step = spec.steps[name]
    refs = find_refs(step.inputs) + find_refs(step.for_each)
    return {r.step for r in refs if r.step} | set(step.after)


def _order(spec: PipelineSpec) -> tuple[list[str], list[str]]:
    deps = {n: {d for d in dependencies(spec, n) if d in spec.steps} for n in spec.steps}
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> list[str]:
        if state.get(node) == 2:
            return []
        if state.get(node) == 1:
            return path[path.index(node) :] + [node]
        state[node] = 1
        for dep in sorted(deps[node]):
            if cycle := visit(dep, path + [node]):
                return cycle
        state[node] = 2
        order.append(node)
        return []

    for node in spec.steps:
        if cycle := visit(node, []):
            return order, cycle
    return order, []


def _check_refs(spec: PipelineSpec, step: str, value: Any, gens: dict, where: str) -> list[Problem]:
    problems = []
    try:
        refs = find_refs(value)
    except ValueError as exc:
        return [Problem(step, where, str(exc))]
    fanned = step in spec.steps and spec.steps[step].for_each is not None
    for ref in refs:
        if ref.root in ("item", "index") and not fanned:
            problems.append(Problem(step, where, f"${{{ref.text}}} is only allowed in a step with for_each."))
        elif ref.root == "params" and ref.path[0] not in spec.params:
            close = difflib.get_close_matches(str(ref.path[0]), spec.params, n=1)
            problems.append(
                Problem(
                    step,
                    where,
                    f"${{{ref.text}}}: no parameter {ref.path[0]!r}"
                    + (f" (did you mean {close[0]!r}?)" if close else "."),
                )
            )
        elif ref.root == "steps":
            problems += _check_step_ref(spec, step, ref, gens, where)
    return problems


def _check_step_ref(spec: PipelineSpec, step: str, ref: Ref, gens: dict, where: str) -> list[Problem]:
    target = ref.step
    if target not in spec.steps:
        close = difflib.get_close_matches(target or "", spec.steps, n=1)
        return [
            Problem(
                step,
                where,
                f"${{{ref.text}}}: no step {target!r}" + (f" (did you mean {close[0]!r}?)" if close else "."),
            )
        ]
    if target == step:
        return [Problem(step, where, f"${{{ref.text}}}: a step cannot use its own output.")]
    if target not in gens:
        return []
    rest = [p for p in ref.path[1:] if not isinstance(p, int)]
    if not rest:
        return []
    kinds = output_kinds(gens[target].get_output_schema())
    if rest[0] not in kinds:
        return [
            Problem(
                step,
                where,
                f"${{{ref.text}}}: {gens[target].name} has no output {rest[0]!r}; its outputs are {', '.join(kinds)}.",
            )
        ]
    kind = kinds[rest[0]][0]
    if kind and len(rest) > 1:
        fields = placeholder_artifact(kind).keys() | _artifact_fields(kind)
        if rest[1] not in fields:
            return [Problem(step, where, f"${{{ref.text}}}: a {kind} artifact has no field {rest[1]!r}.")]
    return []


def _artifact_fields(kind: str) -> set[str]:
    from generators.artifacts import ARTIFACT_CLASSES

    return set(ARTIFACT_CLASSES[kind].model_fields)


def _ref_kind(spec: PipelineSpec, ref: Ref, gens: dict) -> str | None:
    """The artifact kind a whole-value step reference yields, or None when it yields a plain value."""
    if ref.root != "steps" or ref.step not in gens or ref.op:
        return None
    rest = [p for p in ref.path[1:] if not isinstance(p, int)]
    gen = gens[ref.step]
    if not rest:
        return gen.artifact_type
    kind, _ = output_kinds(gen.get_output_schema()).get(rest[0], (None, False))
    return kind if len(rest) == 1 else None


def _check_inputs(spec: PipelineSpec, name: str, gens: dict, params: dict[str, Any]) -> list[Problem]:
    """Kinds of referenced artifacts against the input schema, and literals through the schema."""
    gen = gens[name]
    schema = gen.get_input_schema()
    step = spec.steps[name]
    problems: list[Problem] = []
    trial: dict[str, Any] = {}
    with_refs: set[str] = set()
    for fname, value in step.inputs.items():
        if fname not in schema.model_fields:
            close = difflib.get_close_matches(fname, schema.model_fields, n=1)
            problems.append(
                Problem(
                    name,
                    fname,
                    f"{gen.name} has no input {fname!r}" + (f" (did you mean {close[0]!r}?)" if close else "."),
                )
            )
            continue
        expected, expects_list = artifact_kind(schema.model_fields[fname].annotation)
        try:
            refs = find_refs(value)
        except ValueError:
            continue  # already reported
        if not refs:
            trial[fname] = value
            continue
        with_refs.add(fname)
        for item in value if isinstance(value, list) else [value]:
            item_refs = find_refs(item)
            if len(item_refs) != 1 or not isinstance(item, str) or not item.strip().startswith("${"):
                continue
            got = _ref_kind(spec, item_refs[0], gens)
            if expected and got and got != expected:
                problems.append(
                    Problem(
                        name,
                        fname,
                        f"expects {'a list of ' if expects_list else ''}{expected} "
                        f"artifact(s) but ${{{item_refs[0].text}}} is {got}.",
                    )
                )
            elif expected is None and got:
                problems.append(
                    Problem(
                        name,
                        fname,
                        f"is not an artifact field, but ${{{item_refs[0].text}}} "
                        f"is a {got} artifact; reference one of its fields instead.",
                    )
                )
    for fname in with_refs:  # stand-ins so required-field checks pass; their own errors are ignored
        kind, is_list = artifact_kind(schema.model_fields[fname].annotation)
        trial[fname] = ([placeholder_artifact(kind)] * 2 if is_list else placeholder_artifact(kind)) if kind else None
    try:
        schema.model_validate(trial)
    except ValidationError as exc:
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else ""
            if field not in with_refs and not (field == "" and with_refs):
                problems.append(Problem(name, ".".join(map(str, err["loc"])), err["msg"]))
    return problems
