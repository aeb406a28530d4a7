"""Resolving `${…}` references against params, finished steps and the current for_each item."""

from __future__ import annotations

import functools
import typing
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from generators.artifacts import ARTIFACT_CLASSES, Artifact
from generators.base import GeneratorResult
from generators.errors import InputError

from .spec import Ref, apply_op, substitute

# Stand-ins used only while *planning*, for outputs of steps that have not run yet: they let an
# estimate and a schema check proceed, and mark the plan as uncertain. They are never stored.
_PLACEHOLDER_FIELDS = {
    "width": 1024,
    "height": 1024,
    "duration": 5.0,
    "fps": 24.0,
    "sample_rate": 44100,
    "channels": 2,
    "content": "…",
    "has_audio": True,  # permissive: a check that needs sound (mix video_audio=keep) must not fail on a stand-in
}


PLANNED_URL = "planned://not-yet-made"


def placeholder_artifact(kind: str) -> dict[str, Any]:
    return dict(_placeholder_template(kind))  # a copy: a caller may fill it in


@functools.cache
def _placeholder_template(kind: str) -> dict[str, Any]:
    cls = ARTIFACT_CLASSES[kind]
    data = {
        "kind": kind,
        "sha256": "0" * 64,
        "storage_url": PLANNED_URL,
        "format": "planned",
        "size_bytes": 0,
    }
    data.update({k: v for k, v in _PLACEHOLDER_FIELDS.items() if k in cls.model_fields})
    return data


def artifact_kind(annotation: Any) -> tuple[str | None, bool]:
    """(artifact kind, is_list) of a schema field annotation; kind None when not an artifact field."""
    is_list = False
    for _ in range(4):
        origin = typing.get_origin(annotation)
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if origin in (list, tuple, typing.Sequence) and args:
            is_list, annotation = True, args[0]
        elif (
            origin in (typing.Union, getattr(__import__("types"), "UnionType", None))
            and len(args) == 1
            or origin is typing.Annotated
        ):
            annotation = args[0]
        else:
            break
    if isinstance(annotation, type) and issubclass(annotation, Artifact):
        return annotation.artifact_type, is_list
    return None, is_list


@functools.cache  # a schema is a class, fixed once imported; a batch asks for the same few in every row
def output_kinds(schema: type[BaseModel]) -> dict[str, tuple[str | None, bool]]:
    return {name: artifact_kind(f.annotation) for name, f in schema.model_fields.items()}


class Uncertain(Exception):
    """A value that only exists once an upstream step has run."""


@dataclass
class Scope:
    params: dict[str, Any]
    results: dict[str, GeneratorResult | list[GeneratorResult] | None]
    output_schemas: dict[str, type[BaseModel]]  # step -> output schema, for placeholders
    fanned: set[str] = field(default_factory=set)
    item: Any = None
    index: int | None = None
    planning: bool = False
    used_placeholder: bool = False
    counts: dict[str, int] = field(default_factory=dict)  # planned item counts of fan-out steps

    def for_item(self, item: Any, index: int) -> Scope:
        return Scope(
            self.params, self.results, self.output_schemas, self.fanned, item, index, self.planning, counts=self.counts
        )

    def resolve(self, value: Any) -> Any:
        return substitute(value, self.lookup)

    def lookup(self, ref: Ref) -> Any:
        if ref.root == "index":
            return apply_op(ref, self._need_index(ref))
        if ref.root == "item":
            return apply_op(ref, _walk(self.item, ref.path, ref.text))
        if ref.root == "params":
            return apply_op(ref, _walk(self.params, ref.path, ref.text))
        return apply_op(ref, self._step_value(ref))

    def _need_index(self, ref: Ref) -> int:
        if self.index is None:
            raise InputError(f"${{{ref.text}}} is only meaningful inside a step with for_each.")
        return self.index

    def _step_value(self, ref: Ref) -> Any:
        step, rest = str(ref.path[0]), list(ref.path[1:])
        result = self.results.get(step)
        if rest and isinstance(rest[0], int):  # ${steps.s[2].field}: one item of a fan-out
            if result is None and step in self.fanned:  # not made yet: a stand-in while planning
                return self._from_result(None, step, rest[1:], ref)
            if not isinstance(result, list):
                raise InputError(f"${{{ref.text}}}: step {step!r} has no for_each, so it has no items to index.")
            return self._from_result(result[rest[0]], step, rest[1:], ref)
        if isinstance(result, list) or (result is None and step in self.fanned):
            if self.index is not None:  # sibling fan-outs pair up by index
                return self._from_result(result[self.index] if result else None, step, rest, ref)
            if result is None:
                self.used_placeholder = True
                return [self._from_result(None, step, rest, ref)] * self.counts.get(step, 1)
            return [self._from_result(r, step, rest, ref) for r in result]
        return self._from_result(result, step, rest, ref)

    def _from_result(self, result: GeneratorResult | None, step: str, rest: list, ref: Ref) -> Any:
        if result is None:
            if not self.planning:
                raise Uncertain(step)
            self.used_placeholder = True
            outputs = {
                name: ([placeholder_artifact(kind)] if many else placeholder_artifact(kind)) if kind else None
                for name, (kind, many) in output_kinds(self.output_schemas[step]).items()
            }
        else:
            outputs = result.outputs
        if not rest:
            firsts = (v[0] if isinstance(v, list) and v else v for v in outputs.values())
            primary = next((v for v in firsts if isinstance(v, dict) and "kind" in v), None)
            if primary is None:
                raise InputError(f"${{{ref.text}}}: step {step!r} produced no artifact; name an output field.")
            return primary
        return _walk(outputs, rest, ref.text)


def _walk(value: Any, path: list, text: str) -> Any:
    for part in path:
        try:
            value = value[part]
        except (KeyError, IndexError, TypeError):
            raise InputError(f"${{{text}}}: nothing at {part!r}.") from None
    return value
