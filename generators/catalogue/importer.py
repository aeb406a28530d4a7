"""`boardflow generators import`: a catalogue entry written from the provider's own published schema.

fal publishes one OpenAPI document per endpoint (FAL_OPENAPI_URL, default fal's queue OpenAPI); Replicate
returns each model's latest version with its Cog `openapi_schema` (`GET /v1/models/{owner}/{name}`).
The input schema is carried over field by field (types, enums, bounds, defaults, descriptions); a field
that takes a file URL becomes an artifact input when its name says which kind (image_url, audio, mask…).
Neither API publishes a price in that document, so the entry's price is `unknown` until a person adds one.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError, InputError, UnexpectedResponseError
from . import dump_entry
from .entry import parse_entry

FAL_OPENAPI_URL = "https://fal.ai/api/openapi/queue/openapi.json"
_KEEP = (
    "type", "enum", "default", "description", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "minLength", "maxLength", "pattern", "minItems", "maxItems",
)  # fmt: skip
_KINDS = {"image": "image", "video": "video", "audio": "audio", "speech": "audio", "music": "audio", "text": "text"}
_NAME_KINDS = [
    (re.compile(r"video"), "video"),
    (re.compile(r"audio|speech|voice|music|sound"), "audio"),
    (re.compile(r"image|img|mask|photo|face|frame|picture"), "image"),
]


def artifact_kind(name: str) -> str | None:
    """Which artifact a URL field takes, read from its name; None when the name does not say."""
    for pattern, kind in _NAME_KINDS:
        if pattern.search(name.lower()):
            return kind
    return None


class _Schemas:
    def __init__(self, components: dict[str, Any]) -> None:
        self.components = components

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        """`schema` with a $ref (or a one-item allOf of one) replaced by its target, keeping local keys."""
        if "$ref" in schema:
            target = self.components.get(schema["$ref"].rsplit("/", 1)[-1])
            if target is None:
                raise UnexpectedResponseError(
                    f"schema names {schema['$ref']}, which it does not define", provider="", body=""
                )
            return {**self.resolve(target), **{k: v for k, v in schema.items() if k != "$ref"}}
        if len(schema.get("allOf", [])) == 1:
            rest = {k: v for k, v in schema.items() if k != "allOf"}
            return {**self.resolve(schema["allOf"][0]), **rest}
        return schema

    def field(self, name: str, schema: dict[str, Any], url_kind: str | None = None) -> dict[str, Any]:
        """One property in the catalogue's JSON Schema subset."""
        schema = self.resolve(schema)
        if "anyOf" in schema:
            options = [o for o in schema["anyOf"] if o.get("type") != "null"]
            rest = {k: v for k, v in schema.items() if k != "anyOf"}
            if len(options) == 1:
                return self.field(name, {**rest, **self.resolve(options[0])}, url_kind)
            out = {k: rest[k] for k in _KEEP if k in rest}
            return {**out, "anyOf": [self.field(name, o) for o in options]}
        if schema.get("type") == "string" and (kind := url_kind or _url_field_kind(name, schema)):
            described = {"description": schema["description"]} if "description" in schema else {}
            return {"x-artifact": kind, **described}
        out = {k: schema[k] for k in _KEEP if k in schema}
        if schema.get("type") == "array" and "items" in schema:
            item_kind = artifact_kind(name) if _is_url_list(name) else None
            out["items"] = self.field(name, schema["items"], item_kind)
        if schema.get("type") == "object" and "properties" in schema:
            out |= self.object(schema)
        if "enum" in out:
            out.pop("type", None)
        if "type" not in out and "enum" not in out and "items" not in out and "anyOf" not in out:
            out["type"] = "string"  # an untyped field: accept text, the provider validates the rest
        return out

    def object(self, schema: dict[str, Any]) -> dict[str, Any]:
        schema = self.resolve(schema)
        properties = {n: self.field(n, s) for n, s in schema.get("properties", {}).items()}
        required = [n for n in schema.get("required", []) if n in properties]
        return {"required": required, "properties": properties} if required else {"properties": properties}


def _url_field_kind(name: str, schema: dict[str, Any]) -> str | None:
    takes_url = schema.get("format") == "uri" or name.endswith("_url") or name == "url"
    return artifact_kind(name) if takes_url else None


def _is_url_list(name: str) -> bool:
    return name.endswith("_urls") or name.endswith("images") or name.endswith("files")


def fal_entry(doc: dict[str, Any], endpoint: str, today: dt.date, source: str) -> dict[str, Any]:
    """An entry for a fal endpoint from its queue OpenAPI document."""
    schemas = _Schemas(doc.get("components", {}).get("schemas", {}))
    paths = doc.get("paths", {})
    try:
        body = paths[f"/{endpoint}"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    except KeyError:
        raise UnexpectedResponseError(
            f"fal's OpenAPI for {endpoint} has no POST /{endpoint} request body", provider="fal", body=str(doc)[:500]
        ) from None
    result = paths.get(f"/{endpoint}/requests/{{request_id}}", {}).get("get", {})
    out_schema = result.get("responses", {}).get("200", {}).get("content", {}).get("application/json", {})
    output = schemas.resolve(out_schema.get("schema", {}))
    field = next((n for n, s in output.get("properties", {}).items() if _is_file(schemas, s)), None)
    category = doc.get("info", {}).get("x-fal-metadata", {}).get("category", "")
    kind = _KINDS.get(category.rpartition("-to-")[2] or category)
    if kind is None or field is None:
        raise InputError(
            f"fal's OpenAPI for {endpoint} does not say what it makes (category {category!r}, file output {field!r}).",
            hint="Pass --kind image|video|audio|text; the output must be a file field.",
        )
    slug = endpoint.removeprefix("fal-ai/").replace("/", "-")
    return {
        "id": f"fal/{slug}",
        "provider": "fal",
        "model": endpoint,
        "kind": kind,
        "description": doc.get("info", {}).get("title", endpoint).removeprefix("Queue OpenAPI for ") + " on fal.",
        "schema_source": source,
        "schema_checked": today.isoformat(),
        "input": schemas.object(body),
        "output": {"field": field},
        "price": {"unknown": True, "source": f"https://fal.ai/models/{endpoint}", "checked": today.isoformat()},
    }


def _is_file(schemas: _Schemas, schema: dict[str, Any]) -> bool:
    schema = schemas.resolve(schema)
    if schema.get("type") == "array":
        schema = schemas.resolve(schema.get("items", {}))
    return "url" in schema.get("properties", {})


def replicate_entry(model: dict[str, Any], kind: str | None, today: dt.date, source: str) -> dict[str, Any]:
    """An entry for a Replicate model's latest version from its Cog openapi_schema."""
    owner, name = model.get("owner"), model.get("name")
    version = model.get("latest_version") or {}
    components = version.get("openapi_schema", {}).get("components", {}).get("schemas", {})
    if not owner or not name or "Input" not in components:
        raise UnexpectedResponseError(
            "the model has no latest version with an openapi_schema", provider="replicate", body=str(model)[:500]
        )
    schemas = _Schemas(components)
    output = schemas.resolve(components.get("Output", {}))
    shape = "uris" if output.get("type") == "array" else "uri"
    inputs = schemas.object(components["Input"])
    kind = kind or _guess_replicate_kind(inputs)
    if kind is None:
        raise InputError(
            f"{owner}/{name}'s schema does not say what it makes.", hint="Pass --kind image|video|audio|text."
        )
    return {
        "id": f"replicate/{owner}-{name}".lower(),
        "provider": "replicate",
        "model": f"{owner}/{name}",
        "version": version["id"],
        "kind": kind,
        "description": (model.get("description") or f"{owner}/{name}").strip()[:200],
        "schema_source": source,
        "schema_checked": today.isoformat(),
        "input": inputs,
        "output": {"shape": shape},
        "price": {"unknown": True, "source": f"https://replicate.com/{owner}/{name}", "checked": today.isoformat()},
    }


def _guess_replicate_kind(inputs: dict[str, Any]) -> str | None:
    """A restorer or upscaler makes what it takes: the kind of its only artifact input, if there is one."""
    kinds = {p["x-artifact"] for p in inputs["properties"].values() if "x-artifact" in p}
    return kinds.pop() if len(kinds) == 1 else None


async def import_model(
    source: str, folder: Path, *, kind: str | None = None, entry_id: str | None = None, force: bool = False
) -> tuple[Path, dict[str, Any]]:
    """Fetch the provider's schema for `source` (fal:<endpoint> or replicate:<owner>/<name>) and write the entry."""
    from ..providers.fal import FalClient
    from ..providers.replicate import ReplicateClient

    provider, _, ref = source.partition(":")
    today = dt.date.today()
    if provider == "fal" and ref:
        url = os.environ.get("FAL_OPENAPI_URL", FAL_OPENAPI_URL)
        async with FalClient(api_key="not-needed-for-openapi") as fal:  # a public document: no key is sent
            answer = await fal.request("GET", url, auth=False, params={"endpoint_id": ref})
        doc = fal_entry(answer.json(), ref, today, f"{FAL_OPENAPI_URL}?endpoint_id={ref}")
        if kind:
            doc["kind"] = kind
    elif provider == "replicate" and re.fullmatch(r"[\w.-]+/[\w.-]+", ref):
        async with ReplicateClient() as replicate:
            answer = await replicate.request("GET", replicate.url(f"models/{ref}"))
        doc = replicate_entry(answer.json(), kind, today, f"https://api.replicate.com/v1/models/{ref}")
    else:
        raise InputError(
            f"{source!r} is not a model reference.",
            hint="Write fal:<endpoint-id> (e.g. fal:fal-ai/seedvr/upscale/image) or replicate:<owner>/<name>.",
        )
    if entry_id:
        doc["id"] = entry_id
    parse_entry(doc, source)  # the entry must load before it is written
    path = folder / f"{doc['id'].replace('/', '--')}.yaml"
    if path.exists() and not force:
        raise ConfigurationError(
            f"{path} already exists.", hint="Pass --force to replace it, or --id to import under another id."
        )
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(dump_entry(doc), encoding="utf-8")
    tmp.replace(path)  # never a half-written entry in the folder
    return path, doc
