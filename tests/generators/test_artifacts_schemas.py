"""Input schemas as the reference writes them, validation errors that list every field, results and lineage."""

from __future__ import annotations

import io
import json
import re
import wave
from decimal import Decimal
from enum import Enum
from typing import Optional, Self

import numpy as np
import pytest
from PIL import Image, ImageOps
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from pydantic.warnings import PydanticDeprecatedSince20

from generators.artifacts import AudioArtifact, ImageArtifact, TextArtifact, VideoArtifact
from generators.base import BaseGenerator, GeneratorResult
from generators.context import GeneratorContext
from generators.errors import InputValidationError

# -- input models written the way creating-generators.md writes them ---------------------------


class ImageSize(str, Enum):  # noqa: UP042 — as in the reference
    SMALL = "512x512"
    MEDIUM = "768x768"
    LARGE = "1024x1024"


class StyleInput(BaseModel):
    prompt: str = Field(description="Text description of what to generate", min_length=1, max_length=1000)
    negative_prompt: str = ""
    strength: float = Field(default=0.75, description="Generation strength", ge=0.0, le=1.0)
    steps: int = Field(default=50, description="Number of generation steps", ge=1, le=500)
    size: ImageSize = Field(default=ImageSize.MEDIUM, description="Output image size")
    aspect_ratio: str = Field(default="1:1", description="Image aspect ratio", pattern="^(1:1|4:3|16:9|3:4|9:16)$")
    seed: Optional[int] = None  # noqa: UP045 — spelled as in the reference
    reference_image: ImageArtifact = Field(description="Reference image for style transfer")
    background_music: Optional[AudioArtifact] = Field(None, description="Optional background music to add")  # noqa: UP045
    source_images: list[ImageArtifact] = Field(description="Images to combine", min_length=2, max_length=10)

    @field_validator("prompt")
    @classmethod
    def validate_prompt(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("Prompt cannot be empty")
        if any(term in v.lower() for term in ["violence", "hate", "explicit"]):
            raise ValueError("Prompt contains inappropriate content")
        return v

    @field_validator("seed")
    @classmethod
    def validate_seed(cls, v: Optional[int]) -> Optional[int]:  # noqa: UP045
        if v is not None and (v < 0 or v > 2**32):
            raise ValueError("Seed must be between 0 and 2^32")
        return v

    @model_validator(mode="after")
    def validate_prompt_combination(self) -> Self:
        overlap = set(self.prompt.lower().split()) & set(self.negative_prompt.lower().split())
        if overlap:
            raise ValueError(f"Conflicting terms in prompts: {', '.join(sorted(overlap))}")
        return self


class StyleOutput(BaseModel):
    image: ImageArtifact
    notes: TextArtifact


class StackInput(BaseModel):
    images: list[ImageArtifact] = Field(min_length=2, max_length=4, description="Stacked top to bottom.")
    mirror: bool = False


class StackOutput(BaseModel):
    image: ImageArtifact


class StackImages(BaseGenerator):
    """Stacks images vertically (optionally mirrored) with Pillow: small, real, and keeps lineage."""

    name = "test/stack-images"
    artifact_type = "image"
    description = "Stack images top to bottom."

    def get_input_schema(self) -> type[BaseModel]:
        return StackInput

    def get_output_schema(self) -> type[BaseModel]:
        return StackOutput

    async def estimate_cost(self, inputs: StackInput) -> Decimal:
        return Decimal("0.002") * len(inputs.images)

    async def generate(self, inputs: StackInput, context) -> StackOutput:
        parts = [Image.open(await context.resolve_artifact(a)).convert("RGB") for a in inputs.images]
        sheet = Image.new("RGB", (max(p.width for p in parts), sum(p.height for p in parts)))
        top = 0
        for part in parts:
            sheet.paste(ImageOps.mirror(part) if inputs.mirror else part, (0, top))
            top += part.height
        out = context.temp_path(".png")
        sheet.save(out)
        context.publish_progress(1.0, "stacked")
        return StackOutput(image=await context.store_image_result(out))


class DescribeStyle(BaseGenerator):
    """Accepts the full reference-style input; writes a text note and re-stores the reference image."""

    name = "test/describe-style"
    artifact_type = "text"
    description = "Echo the style inputs."

    def get_input_schema(self) -> type[BaseModel]:
        return StyleInput

    def get_output_schema(self) -> type[BaseModel]:
        return StyleOutput

    async def generate(self, inputs: StyleInput, context) -> StyleOutput:
        image = await context.store_image_result(await context.resolve_artifact(inputs.reference_image))
        notes = await context.store_text_result(f"{inputs.prompt} at {inputs.size.value}")
        return StyleOutput(image=image, notes=notes)


# -- real artifacts to feed them --------------------------------------------------------------


def _png(color: tuple[int, int, int], size=(24, 16)) -> bytes:
    img = Image.new("RGB", size, color)
    img.putpixel((0, 0), (255, 255, 255))  # a marker that shows flips
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _wav(seconds: float = 0.3, rate: int = 16000) -> bytes:
    samples = (np.sin(2 * np.pi * 440 * np.arange(int(seconds * rate)) / rate) * 12000).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return buf.getvalue()


@pytest.fixture
async def images(ctx) -> list[ImageArtifact]:
    return [await ctx.store_image_result(_png(c)) for c in ((200, 0, 0), (0, 200, 0), (0, 0, 200))]


@pytest.fixture
async def music(ctx) -> AudioArtifact:
    return await ctx.store_audio_result(_wav())


def _fields(exc: ValidationError | InputValidationError) -> set[str]:
    if isinstance(exc, InputValidationError):
        return {field for field, _ in exc.problems}
    return {".".join(str(p) for p in err["loc"]) for err in exc.errors()}


# -- artifact-typed fields --------------------------------------------------------------------


async def test_artifact_fields_work_as_single_optional_and_list_fields(images, music):
    one = StyleInput(prompt="a lighthouse", reference_image=images[0], source_images=images[:2])
    assert one.background_music is None
    with_music = StyleInput(
        prompt="a lighthouse", reference_image=images[0], source_images=images, background_music=music
    )
    # From JSON, as a pipeline spec or the CLI hands them over: typed artifacts come back.
    again = StyleInput.model_validate(json.loads(with_music.model_dump_json()))
    assert again == with_music
    assert isinstance(again.reference_image, ImageArtifact) and isinstance(again.background_music, AudioArtifact)
    assert [a.sha256 for a in again.source_images] == [a.sha256 for a in images]


@pytest.mark.parametrize(("count", "error"), [(0, "at least 2"), (1, "at least 2"), (11, "at most 10")])
async def test_list_artifact_fields_enforce_min_and_max_items(images, count, error):
    with pytest.raises(ValidationError, match=error) as info:
        StyleInput(prompt="x", reference_image=images[0], source_images=(images * 4)[:count])
    assert _fields(info.value) == {"source_images"}


async def test_the_reference_spelling_min_items_max_items_still_works(images):
    with pytest.warns(PydanticDeprecatedSince20):

        class ReferenceSpelling(BaseModel):
            source_images: list[ImageArtifact] = Field(description="Images to combine", min_items=2, max_items=10)

    assert len(ReferenceSpelling(source_images=images[:2]).source_images) == 2
    with pytest.raises(ValidationError, match="at least 2"):
        ReferenceSpelling(source_images=images[:1])


async def test_an_artifact_of_the_wrong_kind_or_shape_is_refused(images, music):
    video_like = {**images[0].model_dump(mode="json"), "kind": "video", "duration": 1.0, "fps": 24.0}
    bad = {
        "prompt": "x",
        "reference_image": video_like,  # a video where an image belongs
        "background_music": images[0].model_dump(mode="json"),  # an image where audio belongs
        "source_images": [images[0].model_dump(mode="json"), {"sha256": "not-a-hash"}],
    }
    with pytest.raises(ValidationError) as info:
        StyleInput.model_validate(bad)
    fields = _fields(info.value)
    assert any(f.startswith("reference_image") for f in fields)
    assert any(f.startswith("background_music") for f in fields)
    assert any(f.startswith("source_images.1") for f in fields)
    with pytest.raises(ValidationError):
        VideoArtifact.model_validate(images[0].model_dump())  # width but no duration/fps


# -- constraints, enums, patterns, validators (the reference's examples) -----------------------


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"prompt": ""}, "prompt", "at least 1 character"),
        ({"prompt": "x" * 1001}, "prompt", "at most 1000"),
        ({"prompt": "   "}, "prompt", "Prompt cannot be empty"),
        ({"prompt": "explicit scene"}, "prompt", "inappropriate content"),
        ({"strength": 1.5}, "strength", "less than or equal to 1"),
        ({"steps": 0}, "steps", "greater than or equal to 1"),
        ({"size": "999x999"}, "size", "'512x512', '768x768' or '1024x1024'"),
        ({"aspect_ratio": "2:1"}, "aspect_ratio", "should match pattern"),
        ({"seed": 2**33}, "seed", "Seed must be between 0 and 2^32"),
        ({"prompt": "a red cat", "negative_prompt": "blurry cat"}, "", "Conflicting terms in prompts: cat"),
    ],
)
async def test_field_constraints_enums_patterns_and_validators(images, change, field, words):
    raw = {"prompt": "a lighthouse", "reference_image": images[0], "source_images": images[:2], **change}
    with pytest.raises(ValidationError, match=re.escape(words)) as info:
        StyleInput.model_validate(raw)
    assert _fields(info.value) == {field}


async def test_parse_inputs_lists_every_bad_field_together(images):
    gen = DescribeStyle()
    raw = {
        "prompt": "",
        "strength": 3,
        "steps": 9999,
        "size": "huge",
        "aspect_ratio": "2:1",
        "reference_image": {"kind": "image"},
        "source_images": [images[0].model_dump(mode="json")],
    }
    with pytest.raises(InputValidationError) as info:
        gen.parse_inputs(raw, where="step 'hero'")
    err = info.value
    fields = _fields(err)
    for name in ("prompt", "strength", "steps", "size", "aspect_ratio", "source_images"):
        assert name in fields, f"{name} missing from {fields}"
        assert f"  - {name}:" in str(err)
    assert any(f.startswith("reference_image.") for f in fields)  # which parts of the artifact are missing
    assert str(err).startswith("step 'hero': invalid inputs for test/describe-style")
    assert "boardflow generators show test/describe-style" in err.hint


async def test_parse_inputs_accepts_models_and_dicts(images):
    gen = StackImages()
    model = StackInput(images=images[:2])
    assert gen.parse_inputs(model) is model
    parsed = gen.parse_inputs({"images": [a.model_dump(mode="json") for a in images[:2]]})
    assert parsed == model


def test_json_schema_of_an_input_model_describes_its_artifact_fields():
    schema = DescribeStyle().get_input_schema().model_json_schema()
    props, defs = schema["properties"], schema["$defs"]
    assert props["reference_image"]["$ref"] == "#/$defs/ImageArtifact"
    assert {"$ref": "#/$defs/AudioArtifact"} in props["background_music"]["anyOf"]
    assert {"type": "null"} in props["background_music"]["anyOf"]
    music = props["source_images"]
    assert (music["type"], music["minItems"], music["maxItems"]) == ("array", 2, 10)
    assert music["items"] == {"$ref": "#/$defs/ImageArtifact"}
    assert {"reference_image", "source_images", "prompt"} <= set(schema["required"])
    image_def = defs["ImageArtifact"]
    assert {"sha256", "storage_url", "width", "height"} <= set(image_def["required"])
    assert image_def["properties"]["sha256"]["pattern"] == "^[0-9a-f]{64}$"
    assert defs["ImageSize"]["enum"] == ["512x512", "768x768", "1024x1024"]
    assert props["aspect_ratio"]["pattern"] == "^(1:1|4:3|16:9|3:4|9:16)$"


# -- results and lineage ----------------------------------------------------------------------


async def test_run_records_lineage_in_the_artifact_and_its_sidecar(images, store):
    progress: list[tuple[float, str]] = []
    async with GeneratorContext(
        store, run_id="run-42", step="stack", progress=lambda f, m: progress.append((f, m))
    ) as ctx:
        result = await StackImages().run({"images": [images[2], images[0], images[2]], "mirror": True}, ctx)

    out = result.primary
    assert isinstance(out, ImageArtifact) and out.generator == "test/stack-images"
    assert out.parents == (images[2].sha256, images[0].sha256)  # each input once, in order
    assert (out.width, out.height) == (24, 48)
    assert result.estimated_cost_usd == Decimal("0.006") and result.cost_usd == Decimal("0.006")
    assert progress[-1] == (1.0, "stacked")

    # What a person sees: blue on top, red below, blue again, each mirrored (marker at the right edge).
    pixels = Image.open(store.local_path(store.key_for(out.storage_url))).convert("RGB")
    assert pixels.getpixel((5, 5)) == (0, 0, 200) and pixels.getpixel((5, 21)) == (200, 0, 0)
    assert pixels.getpixel((23, 16)) == (255, 255, 255) and pixels.getpixel((0, 16)) == (200, 0, 0)

    sidecar = await store.read_json(f"objects/{out.sha256[:2]}/{out.sha256}.json")
    assert sidecar["type"] == "image" and sidecar["runs"] == ["run-42"]
    assert sidecar["made_by"] == [
        {"generator": "test/stack-images", "parents": list(out.parents), "input_digest": None, "step": "stack"}
    ]


async def test_invalid_inputs_stop_run_before_anything_is_made(images, ctx, store):
    before = await store.list_keys("objects")
    with pytest.raises(InputValidationError, match="images"):
        await StackImages().run({"images": images[:1]}, ctx)
    assert await store.list_keys("objects") == before


async def test_generator_result_round_trips_through_json_with_typed_artifacts(images, music, ctx):
    raw = {
        "prompt": "a lighthouse",
        "reference_image": images[1],
        "source_images": images[:2],
        "background_music": music,
    }
    result = await DescribeStyle().run(raw, ctx)
    ctx.record_cost(Decimal("0.0125"))
    result = result.model_copy(update={"actual_cost_usd": ctx.actual_cost_usd})

    again = GeneratorResult.model_validate_json(result.model_dump_json())
    assert again == result
    assert again.cost_usd == Decimal("0.0125")
    arts = again.artifacts()
    assert [type(a) for a in arts] == [ImageArtifact, TextArtifact]
    assert again.primary == arts[0] and again.primary.sha256 == images[1].sha256
    assert arts[1].content == "a lighthouse at 768x768"
    # Lineage covers every input artifact: the single, optional and list fields.
    assert set(arts[1].parents) == {images[1].sha256, images[0].sha256, music.sha256}


def test_a_result_without_artifacts_says_so():
    empty = GeneratorResult(generator="test/none", version="1", outputs={"n": 3}, estimated_cost_usd=Decimal(0))
    assert empty.artifacts() == []
    with pytest.raises(LookupError, match="test/none produced no artifact"):
        _ = empty.primary
