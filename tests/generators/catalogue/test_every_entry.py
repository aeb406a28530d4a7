"""Every catalogue entry, parametrised (a new entry gets these for free): it round-trips, the strict fake accepts
a minimal request for it, the fake refuses one request per constraint kind the entry has (as boardflow does
first), and its lifecycle is handled. Estimates are in tests/generators/hosted/test_hosted_estimates.py."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from generators.catalogue import dump_entry
from generators.catalogue.entry import parse_entry
from generators.errors import InputValidationError, ProviderInputError
from generators.hosted import HOSTED_GENERATORS
from generators.providers.elevenlabs import ElevenLabsClient
from generators.providers.fal import FalClient
from generators.providers.kie import KieClient
from generators.providers.openai import OpenAIClient
from generators.providers.replicate import ReplicateClient
from tests.fakes import media
from tests.fakes.fixtures import hosted

ENTRIES = [g for g in HOSTED_GENERATORS]
ACTIVE = [g for g in ENTRIES if g.lifecycle.status != "shut_down"]
KINDS = ("enum", "maximum", "minimum", "maxLength", "type", "required")
FILES = {
    "image": ("png", lambda: media.image(64, 48, "png", 1)),
    "audio": ("mp3", lambda: media.audio(2.0, "mp3")),
    "video": ("mp4", lambda: media.video(64, 48, 1.0, 24, 1)),
}


def ids(gen) -> str:
    return gen.name


@pytest.mark.parametrize("gen", ENTRIES, ids=ids)
def test_the_entry_round_trips_through_yaml(gen):
    doc = gen.spec.doc
    assert parse_entry(doc, "again").doc == doc
    (reloaded,) = yaml.safe_load(dump_entry(dict(doc)))
    assert parse_entry(reloaded, "dumped").doc == doc
    assert gen.spec.schema_source.startswith("https://") and gen.spec.pricing.source.startswith("https://")


def minimal_inputs(gen, ctx_files: dict[str, Any]) -> dict[str, Any]:
    """The required fields only: a prompt-like text, a number, an enum's first value, or an artifact of its kind."""
    schema = gen.spec.input_schema
    inputs = {}
    for name in schema.get("required", []):
        field = schema["properties"][name]
        kind = field.get("x-artifact") or field.get("items", {}).get("x-artifact")
        if kind:
            inputs[name] = [ctx_files[kind]] if field.get("type") == "array" else ctx_files[kind]
        elif "enum" in field:
            inputs[name] = field["enum"][0]
        elif field.get("type") in ("integer", "number"):
            inputs[name] = field.get("minimum", 5)
        elif field.get("type") == "boolean":
            inputs[name] = True
        else:
            inputs[name] = "a quiet harbour at dawn"
    return inputs


@pytest.fixture
async def files(hosted_ctx):
    return {
        "image": await hosted_ctx.store_image_result(FILES["image"][1]()),
        "audio": await hosted_ctx.store_audio_result(FILES["audio"][1]()),
        "video": await hosted_ctx.store_video_result(FILES["video"][1]()),
    }


@pytest.mark.parametrize("gen", ACTIVE, ids=ids)
async def test_the_strict_fake_accepts_a_minimal_request_and_the_output_is_stored(fake, hosted_ctx, files, gen):
    result = await hosted(gen.name).run(minimal_inputs(gen, files), hosted_ctx)
    assert result.primary.kind == gen.artifact_type
    assert len(fake.submissions()) == 1


def violations(gen) -> list[tuple[str, str, Any]]:
    """(kind, field, bad value): one per constraint kind the entry's schema has, on the first field that has it."""
    found: dict[str, tuple[str, str, Any]] = {}
    schema = gen.spec.input_schema
    for name, field in schema["properties"].items():
        if "enum" in field:
            found.setdefault("enum", ("enum", name, "not-an-option"))
        if isinstance(field.get("maximum"), int | float) and field.get("type") in ("integer", "number"):
            found.setdefault("maximum", ("maximum", name, field["maximum"] + 1))
        if isinstance(field.get("minimum"), int | float) and field.get("type") in ("integer", "number"):
            found.setdefault("minimum", ("minimum", name, field["minimum"] - 1))
        if "maxLength" in field:
            found.setdefault("maxLength", ("maxLength", name, "x" * (field["maxLength"] + 1)))
        if field.get("type") in ("integer", "number", "boolean"):
            found.setdefault("type", ("type", name, "not-a-number"))
    if schema.get("required"):
        found["required"] = ("required", schema["required"][0], None)
    return [found[k] for k in KINDS if k in found]


CASES = [(g, v) for g in ACTIVE for v in violations(g)]
# Where an entry is stricter than the provider's schema (a bound its description states but its schema does not
# enforce): boardflow refuses the value before any spend, the provider would take it.
STRICTER = {
    ("replicate/whisper", "temperature"): "the Cog schema has no bound; the model only makes sense in 0-1",
    ("openai/whisper-1", "language"): "ISO-639-1 is asked for in prose; the schema takes any string",
    ("openai/gpt-4o-transcribe", "language"): "ISO-639-1 is asked for in prose; the schema takes any string",
}


@pytest.mark.parametrize(("gen", "violation"), CASES, ids=[f"{g.name}-{v[0]}-{v[1]}" for g, v in CASES])
async def test_a_request_breaking_a_constraint_is_refused_by_boardflow_and_by_the_fake(fake, files, gen, violation):
    kind, field, bad = violation
    good = minimal_inputs(gen, files)
    broken = {k: v for k, v in good.items() if k != field} if kind == "required" else {**good, field: bad}
    with pytest.raises(InputValidationError, match=field):
        gen.parse_inputs(broken)
    body = await provider_body(fake, gen, good)
    if kind == "required":
        body.pop(field)
    else:
        body[field] = bad
    if (gen.name, field) in STRICTER:
        await send(gen, body, files)  # the provider takes it: only boardflow's check stands in the way
        return
    with pytest.raises(ProviderInputError) as info:
        await send(gen, body, files)
    assert info.value.status_code in (400, 422) and field in str(info.value), str(info.value)


async def provider_body(fake, gen, inputs: dict[str, Any]) -> dict[str, Any]:
    """The JSON body the provider gets for `inputs` (artifacts as URLs of their bytes on the fake)."""
    body = copy.deepcopy(gen.parse_inputs(inputs).model_dump(mode="json", exclude_none=True))
    for name, value in inputs.items():
        if hasattr(value, "storage_url"):
            ext, make = FILES[value.artifact_type]
            body[name] = fake.add_file(make(), ext)
        elif isinstance(value, list) and value and hasattr(value[0], "storage_url"):
            ext, make = FILES[value[0].artifact_type]
            body[name] = [fake.add_file(make(), ext) for _ in value]
    return body


async def send(gen, body: dict[str, Any], files) -> None:
    spec = gen.spec
    if gen.provider == "fal":
        async with FalClient(poll_interval=0.01, max_poll_interval=0.05) as fal:
            job = await fal.submit(spec.model, body)
            await fal.wait(job, timeout=10)
            await fal.result(job)
    elif gen.provider == "replicate":
        async with ReplicateClient() as rep:
            target = {"version": spec.version} if spec.version else {"model": spec.model}
            await rep.create(input=body, **target)
    elif gen.provider == "openai":
        await _send_openai(gen, body)
    elif gen.provider == "kie":
        async with KieClient() as kie:
            await kie.generate_music(body | {"model": spec.model})
    else:
        async with ElevenLabsClient() as eleven:
            fields = {k: v for k, v in body.items() if k not in ("voice_id", "output_format")}
            fields["model_id"] = spec.model
            out = {"output_format": body.get("output_format", "mp3_44100_128"), "dest": _tmp_dest()}
            if spec.endpoint == "text-to-speech":
                await eleven.text_to_speech(body.get("voice_id", "voice"), fields, **out)
            else:
                await eleven.sound_effect(fields, **out)


async def _send_openai(gen, body: dict[str, Any]) -> None:
    spec = gen.spec
    async with OpenAIClient() as openai:
        if spec.endpoint == "images/generations":
            await openai.generate_images(body | {"model": spec.model})
        elif spec.endpoint == "audio/speech":
            await openai.speech(body | {"model": spec.model}, _tmp_dest())
        elif spec.endpoint == "images/edits":
            image = _tmp_file("png", media.image(64, 48, "png", 1))
            fields = {k: v for k, v in body.items() if k not in ("image", "mask")}
            await openai.edit_images(fields | {"model": spec.model}, [(image, "image/png")])
        else:
            fields = {k: v for k, v in body.items() if k != "file"}
            if "file" not in body:  # the required-field case: a multipart form with no file part at all
                parts = {k: (None, str(v)) for k, v in (fields | {"model": spec.model}).items()}
                await openai.request("POST", openai.url("audio/transcriptions"), files=parts)
                return
            audio = _tmp_file("mp3", media.audio(2.0, "mp3"))
            await openai.transcribe(audio, "audio/mpeg", fields | {"model": spec.model})


def _tmp_dest():
    import tempfile
    from pathlib import Path

    return Path(tempfile.mkdtemp(prefix="entry-test-")) / "out.bin"


def _tmp_file(ext: str, data: bytes):
    path = _tmp_dest().with_suffix(f".{ext}")
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("gen", ENTRIES, ids=ids)
def test_lifecycle_is_handled(gen, monkeypatch):
    for var in ("FAL_KEY", "REPLICATE_API_TOKEN", "OPENAI_API_KEY", "ELEVENLABS_API_KEY", "KIE_API_KEY"):
        monkeypatch.setenv(var, "set-for-this-test")
    life, availability = gen.lifecycle, gen.availability()
    if life.status == "shut_down":
        assert (
            not availability.ok
            and life.replacement in availability.fix
            and life.date.isoformat() in availability.reason
        )
        assert hosted(life.replacement).lifecycle.status == "active"
    elif life.status == "deprecated":
        assert availability.ok and life.date and (life.replacement or life.note)
        assert life.date.isoformat() in life.message(gen.name, gen.provider)
    else:
        assert availability.ok and life.date is None


@pytest.mark.parametrize("gen", [g for g in ENTRIES if g.lifecycle.status == "shut_down"], ids=ids)
async def test_the_fake_refuses_a_shut_down_model_like_the_provider(fake, files, gen):
    body = await provider_body(fake, gen, minimal_inputs(gen, files))
    with pytest.raises(ProviderInputError, match="does not exist"):
        await send(gen, body, files)


@pytest.mark.parametrize("provider", ["fal", "replicate", "openai", "elevenlabs", "kie"])
async def test_the_fake_refuses_a_model_id_the_provider_does_not_have(fake, files, provider):
    import dataclasses

    gen = next(
        g
        for g in ACTIVE
        if g.provider == provider
        and not any(
            "x-artifact" in f or "x-artifact" in f.get("items", {}) for f in g.spec.input_schema["properties"].values()
        )
    )
    unknown = dataclasses.replace(gen.spec, model="no-such/model-x", version="0" * 64 if gen.spec.version else None)
    body = await provider_body(fake, gen, minimal_inputs(gen, files))
    with pytest.raises(ProviderInputError) as info:
        await send(type(gen)(unknown), body, files)
    assert info.value.status_code in (400, 404, 422) and fake.submissions() == []
