"""The fake server's view of provider schema snapshots (tests/fakes/snapshots/): lookup, and validation of a
request against one with jsonschema, the way the provider's own validator answers (fields, types, enums, bounds).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema

ROOT = Path(__file__).parent / "snapshots"
_CODES = {  # jsonschema keyword -> the error type pydantic-based APIs (fal, Cog) report
    "type": "type_error",
    "enum": "enum",
    "minimum": "greater_than_equal",
    "maximum": "less_than_equal",
    "exclusiveMinimum": "greater_than",
    "exclusiveMaximum": "less_than",
    "minLength": "string_too_short",
    "maxLength": "string_too_long",
    "required": "missing",
    "additionalProperties": "extra_forbidden",
    "multipleOf": "multiple_of",
}


@functools.cache
def fal_doc(endpoint: str) -> dict[str, Any] | None:
    path = ROOT / "fal" / f"{endpoint.replace('/', '__')}.json"
    return json.loads(path.read_text()) if path.exists() else None


@functools.cache
def replicate_model(ref: str) -> dict[str, Any] | None:
    path = ROOT / "replicate" / f"{ref.replace('/', '__')}.json"
    return json.loads(path.read_text()) if path.exists() else None


def replicate_version(version: str) -> dict[str, Any] | None:
    """The snapshot whose latest version is `version`."""
    for path in (ROOT / "replicate").glob("*.json"):
        model = replicate_model(path.stem.replace("__", "/"))
        if model and model["latest_version"]["id"] == version:
            return model
    return None


def fal_input_schema(doc: dict[str, Any], endpoint: str) -> dict[str, Any]:
    ref = doc["paths"][f"/{endpoint}"]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    return {"$ref": ref, "components": doc["components"]}


def replicate_input_schema(model: dict[str, Any]) -> dict[str, Any]:
    schema = model["latest_version"]["openapi_schema"]
    return {"$ref": "#/components/schemas/Input", "components": schema["components"]}


def problems(schema: dict[str, Any], value: Any) -> list[dict[str, Any]]:
    """Every way `value` breaks `schema`, as [{loc, msg, type}] with the field path in loc."""
    validator = jsonschema.Draft202012Validator(schema)
    found = []
    for error in sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path)):
        loc = [str(p) for p in error.absolute_path]
        if error.validator == "required":
            loc.append(error.message.split("'")[1])
        found.append({"loc": loc, "msg": error.message, "type": _CODES.get(str(error.validator), "value_error")})
    return found


@functools.cache
def openai_doc() -> dict[str, Any]:
    return json.loads((ROOT / "openai.json").read_text())


@functools.cache
def kie_doc() -> dict[str, Any]:
    return json.loads((ROOT / "kie.json").read_text())


@functools.cache
def elevenlabs_doc() -> dict[str, Any]:
    return json.loads((ROOT / "elevenlabs.json").read_text())


def form_values(fields: dict[str, str]) -> dict[str, Any]:
    """Multipart fields as the API reads them: the numeric ones parsed (a value that is not one stays text)."""
    numbers = set(openai_doc()["x-form-numbers"])
    out: dict[str, Any] = {}
    for name, value in fields.items():
        try:
            out[name] = float(value) if name in numbers and "." in value else int(value) if name in numbers else value
        except ValueError:
            out[name] = value
    return out
