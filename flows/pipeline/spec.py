"""The pipeline spec (YAML or Python) and its `${…}` references."""

from __future__ import annotations

import difflib
import functools
import math
import re
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from generators.errors import InputError

from .safe_yaml import load_yaml

PIPELINES_DIR = Path(__file__).resolve().parents[2] / "pipelines"  # the pipelines shipped with boardflow
ParamType = Literal["string", "integer", "number", "boolean", "list", "object"]
_PY_TYPES = {"string": str, "integer": int, "number": (int, float), "boolean": bool, "list": list, "object": dict}


class ParamSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: ParamType = "string"
    default: Any = None
    description: str = ""
    required: bool = False
    item_defaults: dict[str, Any] = Field(
        default={}, description="For a list of mappings: keys each item gets when it leaves them out."
    )

    def check(self, name: str, value: Any) -> Any:
        expected = _PY_TYPES[self.type]
        if self.type == "number" and isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise InputError(f"Parameter {name!r} must be a number, got {value[:80]!r}.") from None
        if self.type == "number" and isinstance(value, float) and not math.isfinite(value):
            raise InputError(f"Parameter {name!r} must be a finite number, got {value!r}.")
        elif self.type == "integer" and isinstance(value, str) and value.lstrip("-").isdigit():
            value = int(value)
        elif self.type == "boolean" and isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        if not isinstance(value, expected) or (self.type != "boolean" and isinstance(value, bool)):
            shown = repr(value)
            shown = shown if len(shown) <= 80 else shown[:77] + "..."
            article = "an" if self.type[0] in "aeiou" else "a"
            raise InputError(f"Parameter {name!r} must be {article} {self.type}, got {type(value).__name__} {shown}.")
        if self.item_defaults and isinstance(value, list):
            value = [{**self.item_defaults, **item} if isinstance(item, dict) else item for item in value]
        return value


class TaskOptions(BaseModel):
    """A step's `task:` overrides of the task defaults (flows.engine.tasks.DEFAULTS); only what is set is used."""

    model_config = ConfigDict(extra="forbid")
    retries: int | None = Field(default=None, ge=0, le=50, description="Extra attempts for transient faults.")
    backoff_seconds: float | None = Field(default=None, ge=0, le=3600, description="First retry delay.")
    backoff_max_seconds: float | None = Field(default=None, ge=0, le=86400, description="Longest retry delay.")
    timeout_seconds: float | None = Field(default=None, gt=0, le=7 * 86400, description="Time limit of one attempt.")
    tags: list[str] | None = Field(default=None, description="Extra Prefect tags of the step's task runs.")

    def overrides(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class StepSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    generator: str
    inputs: dict[str, Any] = {}
    for_each: Any = Field(default=None, description="A list (or reference to one): run once per item.")
    fallbacks: list[str] = Field(default=[], description="Generators of the same type tried if this one fails.")
    after: list[str] = Field(default=[], description="Steps that must finish first (besides references).")
    task: TaskOptions = Field(default_factory=TaskOptions, description="Task settings of this step.")


class PipelineSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    description: str = ""
    params: dict[str, ParamSpec] = {}
    steps: dict[str, StepSpec]
    outputs: dict[str, Any] = {}
    max_cost_usd: Decimal | None = None

    @field_validator("steps")
    @classmethod
    def _step_names(cls, steps: dict[str, StepSpec]) -> dict[str, StepSpec]:
        for name in steps:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", name):
                raise ValueError(f"step name {name!r} must be letters, digits, _ or -, starting with a letter")
        if not steps:
            raise ValueError("a pipeline needs at least one step")
        return steps

    @classmethod
    def load(cls, path: str | Path) -> PipelineSpec:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InputError(
                f"No pipeline spec at {path}.", hint="Pass the path of a YAML file (see pipelines/)."
            ) from None
        except UnicodeDecodeError as exc:
            raise InputError(f"{path} is not UTF-8 text (byte {exc.start}).", hint="Save the spec as UTF-8.") from None
        return cls.parse(load_yaml(text, str(path)), source=str(path))

    @classmethod
    def parse(cls, data: Any, source: str = "spec") -> PipelineSpec:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            lines = "\n".join(f"  - {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise InputError(
                f"{source} is not a valid pipeline spec:\n{lines}", hint="See pipelines/storyboard.yaml for the format."
            ) from exc

    @classmethod
    def resolve(cls, spec: PipelineSpec | dict[str, Any] | str | Path) -> PipelineSpec:
        """The one way a spec is found. A spec or a dict is taken as it is; a string or path names a file
        when one exists there, and otherwise a pipeline shipped in pipelines/ (`storyboard`, `slideshow`)."""
        if isinstance(spec, PipelineSpec):
            return spec
        if isinstance(spec, dict):
            return cls.parse(spec)
        path = Path(spec)
        if path.is_file():
            return cls.load(path)
        shipped = PIPELINES_DIR / f"{spec}.yaml"
        if shipped.is_file():
            return cls.load(shipped)
        names = ", ".join(shipped_pipelines()) or "none"
        raise InputError(
            f"No pipeline {str(spec)!r}: there is no such file, and no shipped pipeline of that name.",
            hint=f"Pass the path of a YAML spec, or one of the shipped pipelines: {names}.",
        )

    def resolve_params(self, given: dict[str, Any]) -> dict[str, Any]:
        """Defaults plus given values, type-checked; unknown or missing parameters are errors.

        A None counts as not given, so resolved parameters (an optional one left out is None) resolve to
        themselves: a batch row planned here runs the same on a worker that resolves them again.
        """
        unknown = sorted(set(given) - set(self.params))
        if unknown:
            close = [f"{m[0]!r} for {u!r}" for u in unknown if (m := difflib.get_close_matches(u, self.params, n=1))]
            raise InputError(
                f"Unknown parameter(s) {', '.join(map(repr, unknown))} for pipeline {self.name}"
                + (f" (did you mean {', '.join(close)}?)" if close else "."),
                hint=f"Known parameters: {', '.join(self.params) or 'none'} (`boardflow plan {self.name}` lists them).",
            )
        values: dict[str, Any] = {}
        for name, spec in self.params.items():
            if given.get(name) is not None:
                values[name] = spec.check(name, given[name])
            elif spec.default is not None:
                values[name] = spec.default
            elif spec.required:
                raise InputError(
                    f"Parameter {name!r} is required by pipeline {self.name}.", hint=f"Pass it with -p {name}=VALUE."
                )
            else:
                values[name] = None
        return values


def shipped_pipelines() -> list[str]:
    return sorted(p.stem for p in PIPELINES_DIR.glob("*.yaml"))


# -- references ------------------------------------------------------------------------------------
_WHOLE = re.compile(r"^\$\{\s*([^}]+?)\s*\}$")
_ANY = re.compile(r"\$\{\s*([^}]+?)\s*\}")
_EXPR = re.compile(r"^(?P<path>[A-Za-z_][\w.\-\[\]]*)\s*(?:(?P<op>[+\-*])\s*(?P<num>-?\d+(?:\.\d+)?))?$")


class Ref(BaseModel):
    """A parsed `${root.path…}` reference, with an optional `+ n`, `- n` or `* n`."""

    model_config = ConfigDict(frozen=True)  # shared by every caller of the memoised `parse_ref`

    root: str  # params | steps | item | index
    path: list[str | int]
    op: str | None = None
    number: float | None = None
    text: str

    @property
    def step(self) -> str | None:
        return str(self.path[0]) if self.root == "steps" and self.path else None


@functools.lru_cache(maxsize=4096)
def parse_ref(expr: str) -> Ref:
    """The reference in `${expr}`. Memoised: a batch resolves the same few references in every row, and a
    `Ref` is never changed once made (callers copy its path before they slice it)."""
    match = _EXPR.match(expr.strip())
    if not match:
        raise ValueError(
            f"cannot read reference ${{{expr}}}: use ${{params.x}}, ${{steps.name.field}}, "
            f"${{item.field}} or ${{index}}, optionally followed by + - or * and a number"
        )
    parts: list[str | int] = []
    for token in re.findall(r"[^.\[\]]+|\[\d+\]", match["path"]):
        parts.append(int(token[1:-1]) if token.startswith("[") else token)
    root, *rest = parts
    if root not in ("params", "steps", "item", "index"):
        raise ValueError(f"reference ${{{expr}}} must start with params, steps, item or index")
    if root in ("params", "steps") and not rest:
        raise ValueError(f"reference ${{{expr}}} must name a {root[:-1]}")
    return Ref(
        root=str(root), path=rest, op=match["op"], number=float(match["num"]) if match["num"] else None, text=expr
    )


def find_refs(value: Any) -> list[Ref]:
    """Every reference inside a literal structure (strings, lists, dicts)."""
    if isinstance(value, str):
        return [parse_ref(m) for m in _ANY.findall(value)]
    if isinstance(value, list):
        return [r for v in value for r in find_refs(v)]
    if isinstance(value, dict):
        return [r for v in value.values() for r in find_refs(v)]
    return []


def substitute(value: Any, lookup) -> Any:
    """Replace references using `lookup(ref) -> value`; a whole-string reference keeps its type."""
    if isinstance(value, str):
        whole = _WHOLE.match(value)
        if whole:
            return lookup(parse_ref(whole[1]))
        return _ANY.sub(lambda m: _as_text(lookup(parse_ref(m[1]))), value)
    if isinstance(value, list):
        return [substitute(v, lookup) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, lookup) for k, v in value.items()}
    return value


def _as_text(value: Any) -> str:
    if isinstance(value, dict) and "content" in value:
        return str(value["content"])  # a text artifact interpolates as its text
    return str(value)


def apply_op(ref: Ref, value: Any) -> Any:
    if ref.op is None:
        return value
    if not isinstance(value, (int, float)):
        raise InputError(f"${{{ref.text}}}: cannot apply {ref.op} to {type(value).__name__} {value!r}.")
    return {"+": value + ref.number, "-": value - ref.number, "*": value * ref.number}[ref.op]
