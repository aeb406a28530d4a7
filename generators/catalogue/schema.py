"""An entry's input schema (a JSON Schema subset, as providers publish it) turned into a pydantic model.

Supported per field: `type` (string, integer, number, boolean, array, object), `enum`, `anyOf`, `default`,
`description`, `minimum`/`maximum`, `exclusiveMinimum`/`exclusiveMaximum`, `minLength`/`maxLength`, `pattern`,
`minItems`/`maxItems`, `items`, `properties`/`required` for objects, and `x-artifact: image|video|audio|text`
for a field that takes an artifact (uploaded, or sent as its URL, by the provider's generator). Unknown
fields are refused, as the providers' own validators refuse them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from ..artifacts import AudioArtifact, ImageArtifact, TextArtifact, VideoArtifact
from ..errors import ConfigurationError
from . import expr

ARTIFACTS: dict[str, type] = {
    "image": ImageArtifact,
    "video": VideoArtifact,
    "audio": AudioArtifact,
    "text": TextArtifact,
}
_SCALARS: dict[str, type] = {"string": str, "integer": int, "number": float, "boolean": bool}
_BOUNDS = {
    "minimum": "ge",
    "maximum": "le",
    "exclusiveMinimum": "gt",
    "exclusiveMaximum": "lt",
    "minLength": "min_length",
    "maxLength": "max_length",
    "pattern": "pattern",
    "minItems": "min_length",
    "maxItems": "max_length",
}
KNOWN_KEYS = {
    "type", "enum", "anyOf", "default", "description", "items", "properties", "required", "x-artifact", "title",
    "examples", *_BOUNDS,
}  # fmt: skip


class EntryInput(BaseModel):
    """Base of every entry's input model: unknown fields refused; the entry's cross-field checks applied."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _entry_checks(self):
        for tree, message in type(self).__dict__.get("__entry_checks__", ()):
            names = {f: getattr(self, f) for f in type(self).model_fields}
            if not expr.evaluate(tree, names, expr.BUILTINS):
                raise ValueError(message)
        return self


def field_type(schema: dict[str, Any], where: str) -> Any:
    """The Python type (with its constraints) for one JSON Schema field."""
    if unknown := sorted(set(schema) - KNOWN_KEYS):
        raise ConfigurationError(f"{where}: unknown schema key(s) {', '.join(unknown)}.")
    kind = schema.get("x-artifact")
    if kind is not None:
        if kind not in ARTIFACTS:
            raise ConfigurationError(f"{where}: x-artifact {kind!r} is not one of {', '.join(ARTIFACTS)}.")
        return ARTIFACTS[kind]
    bounds = {_BOUNDS[k]: v for k, v in schema.items() if k in _BOUNDS}
    if "enum" in schema:
        base: Any = Literal[tuple(schema["enum"])]
    elif "anyOf" in schema:
        options = [field_type(option, f"{where}.anyOf[{i}]") for i, option in enumerate(schema["anyOf"])]
        base = Union[tuple(options)]  # noqa: UP007  (a runtime-built union)
    elif schema.get("type") == "array":
        base = list[field_type(schema.get("items", {}), f"{where}.items")]
    elif schema.get("type") == "object":
        base = object_model(schema, where)
    elif schema.get("type") in _SCALARS:
        base = _SCALARS[schema["type"]]
    else:
        raise ConfigurationError(f"{where}: a field needs a type, an enum, anyOf or x-artifact.")
    return Annotated[base, Field(**bounds)] if bounds else base


def _field(name: str, schema: dict[str, Any], required: bool, where: str) -> tuple[Any, Any]:
    kind = field_type(schema, f"{where}.{name}")
    described = {"description": schema["description"]} if "description" in schema else {}
    if "default" in schema:
        return kind, Field(schema["default"], **described)
    if required:
        return kind, Field(..., **described)
    return kind | None, Field(None, **described)


def object_model(schema: dict[str, Any], where: str, base: type[BaseModel] | None = None) -> type[BaseModel]:
    """A pydantic model for an object schema; extra keys are refused."""
    required = set(schema.get("required", []))
    properties = schema.get("properties", {})
    if missing := sorted(required - set(properties)):
        raise ConfigurationError(f"{where}: required names unknown field(s) {', '.join(missing)}.")
    fields: dict[str, Any] = {name: _field(name, s, name in required, where) for name, s in properties.items()}
    name = "".join(part.capitalize() for part in where.replace("/", " ").replace(".", " ").split()) or "Input"
    if base is None:
        return create_model(name, __config__=ConfigDict(extra="forbid"), **fields)
    return create_model(name, __base__=base, **fields)


def input_model(entry_id: str, schema: dict[str, Any], checks: list[dict[str, str]]) -> type[BaseModel]:
    """The input model of an entry: its fields, plus `checks` (formula that must hold, message when it does not)."""
    model = object_model(schema, entry_id, base=EntryInput)
    model.__entry_checks__ = tuple(  # type: ignore[attr-defined]
        (expr.check(c["require"], f"{entry_id} checks"), c["message"]) for c in checks
    )
    return model


def artifact_fields(schema: dict[str, Any]) -> dict[str, str]:
    """Which fields take artifacts, and of which kind (a list field counts by its items)."""
    found = {}
    for name, field in schema.get("properties", {}).items():
        kind = field.get("x-artifact") or field.get("items", {}).get("x-artifact")
        if kind:
            found[name] = kind
    return found
